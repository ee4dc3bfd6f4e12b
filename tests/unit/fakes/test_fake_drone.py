"""``FakeDrone`` honours the ``DroneControl`` contract as the MAVLink bridge does
(``tests/unit/mavlink/test_commands.py``, ``test_mission.py``, ``tests/integration/
test_mavlink_sim.py``): the same errors with the same fields, and the live status a mission
follows."""

from __future__ import annotations

import asyncio

import pytest

from fleet.clock import ManualClock
from fleet.drone import (
    DroneControl,
    FlightPlan,
    Geofence,
    Gripper,
    Land,
    Takeoff,
    Waypoint,
)
from fleet.errors import CommandRejected, CommandTimeout, LinkLost, MissionUploadError
from fleet.fakes import FakeDrone
from fleet.geo import LatLon, offset_latlon
from fleet.registry import VehicleRegistry
from fleet.vehicle import FlightMode, LandedState, LinkState, MissionRunState

HOME = LatLon(22.5270418, 114.0314461)


def plan() -> FlightPlan:
    lat, lon = offset_latlon(HOME.lat, HOME.lon, 200.0, 100.0)
    return FlightPlan(
        (
            Takeoff(20.0),
            Waypoint(lat, lon, 20.0),
            Waypoint(lat, lon, 8.0),
            Gripper(),
            Waypoint(HOME.lat, HOME.lon, 20.0),
            Land(HOME.lat, HOME.lon),
        )
    )


@pytest.fixture
def drone() -> FakeDrone:
    return FakeDrone("drone-1", HOME, registry=VehicleRegistry(), clock=ManualClock())


def test_it_is_a_drone_control_in_the_registry(drone: FakeDrone) -> None:
    assert isinstance(drone, DroneControl)
    assert drone.registry is not None
    entry = drone.registry.get("drone-1")
    assert entry.control is drone and entry.info.kind == "drone"
    st = entry.status
    assert st.link == LinkState.ONLINE and st.ready_for_mission and not st.armed
    assert st.landed == LandedState.ON_GROUND and st.home == st.position
    assert st.mission.state == MissionRunState.NO_MISSION


async def test_a_rejected_plan_raises_mission_upload_error_with_the_vehicles_words(
    drone: FakeDrone,
) -> None:
    drone.refuse("upload_mission", "Geofence violation for waypoint 3")
    with pytest.raises(MissionUploadError) as info:
        await drone.upload_mission(plan())
    # as MavlinkDrone._await_verdict raises it
    assert info.value.fields["reason"] == "Geofence violation for waypoint 3"
    assert info.value.fields["result"] == "INVALID"
    assert info.value.message == "drone-1 rejected the mission: Geofence violation for waypoint 3"
    assert drone.status.mission.state == MissionRunState.INVALID
    with pytest.raises(CommandRejected):
        await drone.start_mission()  # PX4 denies MISSION_START without a valid plan


async def test_refusals_timeouts_and_a_lost_link_raise_what_the_bridge_raises(
    drone: FakeDrone,
) -> None:
    drone.refuse("start_mission", "Arming denied: resolve health failures first", times=1)
    await drone.upload_mission(plan())
    with pytest.raises(CommandRejected) as info:
        await drone.start_mission()
    err = info.value
    assert err.fields["command"] == "MAV_CMD_MISSION_START" and err.fields["result"] == "DENIED"
    assert err.fields["reason"] == "Arming denied: resolve health failures first"
    await drone.start_mission()  # only once
    drone.time_out("return_to_launch")
    with pytest.raises(CommandTimeout):
        await drone.return_to_launch()
    drone.time_out("upload_geofence", times=1)
    with pytest.raises(MissionUploadError) as upload:
        await drone.upload_geofence(Geofence())
    assert upload.value.fields["result"] == "TIMEOUT"
    drone.allow()
    await drone.lose_link()
    with pytest.raises(LinkLost):
        await drone.return_to_launch()


async def test_a_flight_goes_through_every_stage_in_the_status(drone: FakeDrone) -> None:
    registry = drone.registry
    assert registry is not None
    await drone.upload_mission(plan())
    st = drone.status
    assert (st.mission.state, st.mission.total) == (MissionRunState.NOT_STARTED, 6)
    version = registry.get("drone-1").version
    await drone.start_mission()
    assert registry.get("drone-1").version > version  # every change touches the registry
    assert st.armed and st.mode == FlightMode.MISSION
    assert (st.mission.state, st.mission.current) == (MissionRunState.ACTIVE, 0)
    seen = []
    while drone.flying:
        await drone.step()
        seen.append((st.mission.current, st.landed, st.armed, st.mission.state))
    assert seen[0] == (1, LandedState.IN_AIR, True, MissionRunState.ACTIVE)
    assert [c for c, *_ in seen] == [1, 2, 3, 4, 5, 5, 5]
    assert seen[-2][1] == LandedState.LANDING
    assert seen[-1] == (5, LandedState.ON_GROUND, False, MissionRunState.COMPLETE)
    [release] = drone.releases  # at the gripper item, over the drop point
    wp = plan().items[2]
    assert isinstance(wp, Waypoint)
    assert (release.position.lat, release.position.lon) == (wp.lat, wp.lon)
    assert st.position is not None and st.position.rel_alt == 0.0
    assert await drone.step() is None  # on the ground, disarmed: nothing to do


async def test_return_to_launch_flies_home_and_lands(drone: FakeDrone) -> None:
    await drone.upload_mission(plan())
    await drone.start_mission()
    await drone.fly_to_item(2)
    await drone.return_to_launch()
    st = drone.status
    assert st.mode == FlightMode.RTL and st.mission.state == MissionRunState.PAUSED
    steps = await drone.fly()
    assert steps == ["back over home", "landing at home", "landed and disarmed"]
    assert st.position is not None and (st.position.lat, st.position.lon) == (HOME.lat, HOME.lon)
    assert not drone.releases


async def test_with_the_link_lost_it_flies_on_unheard_and_catches_up(drone: FakeDrone) -> None:
    await drone.upload_mission(plan())
    await drone.start_mission()
    await drone.fly_to_item(1)
    await drone.lose_link()
    st = drone.status
    assert st.link == LinkState.LOST
    await drone.fly_to_item(4)
    assert st.mission.current == 1  # the last report before the loss
    assert drone.truth.mission.current == 4
    await drone.regain_link()
    assert st.link == LinkState.ONLINE and st.mission.current == 4


async def test_a_held_back_command_waits_until_let_through(drone: FakeDrone) -> None:
    drone.hold_back("upload_mission")
    task = asyncio.create_task(drone.upload_mission(plan()))
    await asyncio.sleep(0)
    assert drone.waiting("upload_mission") and not task.done()
    drone.let_through("upload_mission")
    await task
    assert drone.status.mission.state == MissionRunState.NOT_STARTED
