"""The MAVLink bridge flying a sim drone over real UDP, with an accelerated clock.

The bridge knows only what comes over the wire; the assertions about what really happened
(where the payload dropped, where it landed) come from the sim's ground truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.link import MavlinkLink, register
from fleet.clock import AcceleratedClock
from fleet.drone import FencePolygon, FlightPlan, Geofence, Gripper, Land, Takeoff, Waypoint
from fleet.errors import CommandRejected, MissionUploadError
from fleet.events import EventBus, VehicleEvent, VehicleEventKind
from fleet.geo import LatLon, distance_m, offset_latlon
from fleet.link import LinkContext, create_link
from fleet.registry import VehicleRegistry
from fleet.vehicle import FlightMode, LandedState, LinkState, MissionRunState
from sim.drone.autopilot import Home
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.support import eventually, free_port

SPEED = 10.0
"""World seconds per real second."""
HOME = Home(22.5273, 114.0544, 12.0)


@dataclass
class Flight:
    link: MavlinkLink
    fleet: SimFleet
    drone: MavlinkDrone
    registry: VehicleRegistry
    bus: EventBus
    clock: AcceleratedClock


@pytest.fixture
async def flight() -> AsyncIterator[Flight]:
    clock = AcceleratedClock(SPEED)
    registry, bus = VehicleRegistry(), EventBus()
    port = free_port(__import__("socket").SOCK_DGRAM)
    register()  # the mavlink+udpin/udpout schemes, as the composition root does
    link = create_link(f"mavlink+udpin://127.0.0.1:{port}", LinkContext(registry, bus, clock, {}))
    assert isinstance(link, MavlinkLink)
    async with link, SimFleet(1, clock=clock, homes=[HOME], first_port=port) as fleet:
        await registry.wait_added(1, within=30, clock=clock)
        drone = registry.get("drone-1").control
        assert isinstance(drone, MavlinkDrone)
        status = drone.status
        await eventually(
            lambda: status.ready_to_arm and status.home is not None,
            timeout=20,
            message="sim drone ready to arm with a home position",
        )
        yield Flight(link, fleet, drone, registry, bus, clock)


async def test_arm_takeoff_land(flight: Flight) -> None:
    drone, status = flight.drone, flight.drone.status
    assert status.link == LinkState.ONLINE and status.landed == LandedState.ON_GROUND
    failsafes = flight.bus.subscribe(
        lambda e: getattr(e, "kind", None) == VehicleEventKind.FAILSAFE
    )
    await drone.arm()
    await eventually(lambda: status.armed)
    await drone.takeoff(10.0)
    await eventually(
        lambda: status.position is not None and status.position.rel_alt > 9.0, timeout=30
    )
    # PX4 loiters (Hold) once the take-off altitude is reached
    await eventually(lambda: status.mode == FlightMode.HOLD, timeout=20)
    await drone.land()
    await eventually(
        lambda: not status.armed and status.landed == LandedState.ON_GROUND, timeout=30
    )
    truth = flight.fleet[0].truth
    kinds = [e.kind for e in truth.events]
    assert TruthKind.TAKEOFF in kinds and TruthKind.LANDING in kinds
    assert failsafes.get_nowait() is None  # take-off -> hold -> land is normal flying
    failsafes.close()


async def test_delivery_mission_with_gripper(flight: Flight) -> None:
    drone, status = flight.drone, flight.drone.status
    # on the wire positions are degE7: start from representable ones to compare exactly
    drop_lat, drop_lon = (round(v, 7) for v in offset_latlon(HOME.lat, HOME.lon, 60.0, 40.0))
    plan = FlightPlan(
        (
            Takeoff(15.0),
            Waypoint(drop_lat, drop_lon, 15.0),
            Waypoint(drop_lat, drop_lon, 8.0),
            Gripper(),
            Waypoint(drop_lat, drop_lon, 8.0, hold_s=2.0),
            Waypoint(HOME.lat, HOME.lon, 15.0),
            Land(HOME.lat, HOME.lon),
        )
    )
    await drone.upload_mission(plan)
    assert status.mission.state == MissionRunState.NOT_STARTED
    assert status.mission.total == len(plan.items)
    assert await drone.download_mission() == FlightPlan(
        (Takeoff(15.0, HOME.lat, HOME.lon), *plan.items[1:])
    )
    with flight.bus.subscribe(lambda e: isinstance(e, VehicleEvent)) as events:
        await drone.start_mission()  # PX4 arms and starts
        await eventually(lambda: status.armed, timeout=10)
        await eventually(
            lambda: (
                status.mission.state == MissionRunState.COMPLETE
                or (not status.armed and status.mission.reached >= len(plan.items) - 1)
            ),
            timeout=60,
            message="mission finished",
        )
        await eventually(lambda: not status.armed, timeout=30, message="disarmed after landing")
        seen = set()
        while (ev := events.get_nowait()) is not None:
            assert isinstance(ev, VehicleEvent)
            seen.add(ev.kind)
        assert {
            VehicleEventKind.ARMED,
            VehicleEventKind.MODE_CHANGED,
            VehicleEventKind.DISARMED,
        } <= seen
        assert VehicleEventKind.FAILSAFE not in seen
    truth = flight.fleet[0].truth
    releases = [e for e in truth.events if e.kind == TruthKind.RELEASE]
    assert len(releases) == 1
    assert releases[0].distance_to(LatLon(drop_lat, drop_lon)) < 5.0
    landings = [e for e in truth.events if e.kind == TruthKind.LANDING]
    assert landings and landings[-1].distance_to(LatLon(HOME.lat, HOME.lon)) < 5.0
    assert status.position is not None
    assert distance_m(status.position, LatLon(HOME.lat, HOME.lon)) < 5.0


async def test_infeasible_mission_reason_and_direct_gripper(flight: Flight) -> None:
    drone = flight.drone
    # a waypoint outside the uploaded fence: MISSION_ACK ACCEPTED, then reported invalid
    corners = [
        offset_latlon(HOME.lat, HOME.lon, e, n)
        for e, n in ((-100, -100), (100, -100), (100, 100), (-100, 100))
    ]
    fence = Geofence(polygons=(FencePolygon(tuple(corners), inclusion=True),))
    await drone.upload_geofence(fence)
    outside = offset_latlon(HOME.lat, HOME.lon, 300.0, 0.0)
    with pytest.raises(MissionUploadError) as info:
        await drone.upload_mission(
            FlightPlan((Takeoff(10.0), Waypoint(outside[0], outside[1], 10.0)))
        )
    assert info.value.fields["result"] == "INVALID"
    assert info.value.fields["reason"] == "Geofence violation for waypoint 2"
    assert drone.status.mission.state == MissionRunState.INVALID
    with pytest.raises(CommandRejected):
        await drone.start_mission()
    # direct gripper: IN_PROGRESS then ACCEPTED about a second later
    await drone.release_payload()
    assert any(e.kind == TruthKind.RELEASE for e in flight.fleet[0].truth.events)
    assert await drone.get_parameter("MIS_TAKEOFF_ALT") > 0
    await drone.set_parameter("NAV_DLL_ACT", 2)
    assert await drone.get_parameter("NAV_DLL_ACT") == 2


async def test_link_lost_when_sim_link_is_cut(flight: Flight) -> None:
    status = flight.drone.status
    with flight.bus.subscribe(
        lambda e: getattr(e, "kind", None) == VehicleEventKind.LINK_LOST
    ) as lost:
        flight.fleet[0].set_link_down(True)
        await asyncio.wait_for(lost.get(), 5)
        assert status.link == LinkState.LOST
    flight.fleet[0].set_link_down(False)
    await eventually(lambda: status.link == LinkState.ONLINE, timeout=5)
