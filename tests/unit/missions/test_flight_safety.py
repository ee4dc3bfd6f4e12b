"""Flight safety on fake drones and the manual clock (``docs/safety.md``): the failsafe policy
set and read back before each flight (and no dispatch where it cannot be), the in-flight energy
recall with the work dispatched again, the vehicle's own failsafe reported in its words, and
airspace reservations keeping two sorties from the same warehouse apart."""

from __future__ import annotations

import pytest

from fleet.events import Severity, VehicleEvent, VehicleEventKind
from fleet.safety import FAILSAFE_PARAMETERS, failsafe_policy
from fleet.store.tables import MissionEvent
from missions.states import MissionState, Priority, RequestState
from tests.unit.missions.harness import FakeFleet

pytestmark = pytest.mark.timeout(60)

URGENT = Priority.URGENT_MEDICAL


async def test_the_failsafe_policy_is_set_read_back_and_recorded(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.UNDERWAY)
    policy = failsafe_policy(
        fleet.settings.safety, fleet.world, fleet.settings.drone_missions.cruise_alt_m
    )
    assert {k: drone.parameters[k] for k in FAILSAFE_PARAMETERS} == policy
    assert policy["NAV_DLL_ACT"] == 2  # return on data-link loss, not PX4's "do nothing"
    assert policy["GF_MAX_VER_DIST"] == fleet.world.max_altitude_m
    # set, then every one read back, before the fence, the rally points and the plan
    first_get = drone.commands.index("get_parameter")
    assert drone.commands[:first_get] == ["set_parameter"] * len(FAILSAFE_PARAMETERS)
    assert drone.commands.index("upload_mission") > drone.commands.index("download_rally")
    # rally points: the pads of other warehouses only (the world has one): none, and checked
    assert drone.rally == [] and "download_rally" in drone.commands
    [secured] = [
        e
        for e in await fleet.events(mission_id=m.id)
        if e.kind == "safety" and e.reason.startswith("failsafe policy set and read back")
    ]
    assert secured.data["parameters"] == policy
    await drone.fly()
    await fleet.wait_request(rid, RequestState.DELIVERED)


async def test_a_drone_whose_failsafes_cannot_be_set_is_not_dispatched(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.refuse("set_parameter", "parameter is read-only")
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert m.reason.startswith("not dispatched, the drone is not secured: drone-1: failsafe")
    assert "NAV_DLL_ACT cannot be set" in m.reason and "read-only" in m.reason
    assert "upload_mission" not in drone.commands and "start_mission" not in drone.commands
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve"]  # nothing loaded
    await fleet.wait_request(rid, RequestState.APPROVED)
    assert fleet.service.dispatcher.resting("drone-1") is not None


async def test_a_failsafe_read_back_that_differs_stops_the_flight(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    keeps = drone.set_parameter

    async def stubborn(name: str, value: float) -> None:
        await keeps(name, 0.0 if name == "NAV_DLL_ACT" else value)  # echoes, keeps its own

    drone.set_parameter = stubborn  # type: ignore[method-assign]
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert "failsafe parameter NAV_DLL_ACT reads 0 after being set to 2" in m.reason
    assert "upload_mission" not in drone.commands


async def test_a_battery_short_of_the_rest_of_the_sortie_recalls_and_redispatches(
    fleet: FakeFleet,
) -> None:
    drone = await fleet.add_drone(0)
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.UNDERWAY)
    await drone.fly_to_item(2)
    drone.set_battery(0.3)  # the sag: far below what the rest needs plus the 25 % reserve
    await drone.step()
    await fleet.until(lambda: "return_to_launch" in drone.commands, "the recall")
    steps = await drone.fly()
    assert steps[-1] == "landed and disarmed" and not drone.releases
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert "recalled: battery 30% is below the" in done.reason, done.reason
    alerts = [
        e for e in await fleet.events(mission_id=m.id) if e.kind == "safety" and e.data.get("alert")
    ]
    assert any("the rest of the sortie needs" in e.reason for e in alerts)
    # the unfinished work goes back to the queue and is flown by another drone
    await fleet.wait_request(rid, RequestState.APPROVED)
    second = await fleet.add_drone(1)
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert again.id != m.id and again.vehicle_id == second.vehicle_id
    await second.fly()
    await fleet.wait_request(rid, RequestState.DELIVERED)


async def test_a_vehicle_failsafe_is_reported_in_the_vehicles_words(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.UNDERWAY)
    await drone.fly_to_item(2)
    words = "Geofence violated: maximum altitude exceeded"
    fleet.ctx.bus.publish(
        VehicleEvent(
            at=fleet.clock.time(),
            vehicle_id=drone.vehicle_id,
            kind=VehicleEventKind.STATUS_TEXT,
            message=words,
            severity=Severity.ERROR,
        )
    )
    await drone.return_to_launch()  # what PX4's GF_ACTION 3 does
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert done.reason.endswith(f"the vehicle said: {words}"), done.reason
    assert f"vehicle: {words}" in await fleet.reasons(mission_id=m.id)


async def test_two_sorties_from_neighbouring_pads_are_kept_apart(fleet: FakeFleet) -> None:
    a = await fleet.add_drone(0)
    b = await fleet.add_drone(1)
    await fleet.receive("medicine", 50)
    r1 = await fleet.request("C05", URGENT, medicine=4)
    m1 = await fleet.mission_for(r1, MissionState.UNDERWAY)
    r2 = await fleet.request("C04", URGENT, medicine=4)
    m2 = await fleet.mission_for(r2, MissionState.PLANNED)
    book = fleet.service.ctx.airspace
    await fleet.until(lambda: book.get(m2.id) is not None, "the second flight's reservation")
    first, second = book.get(m1.id), book.get(m2.id)
    assert first is not None and second is not None
    # the second leaves later or on another layer, never into the first one's volume
    assert second.start > first.start or second.layer_m is not None

    async def reserved() -> list[MissionEvent]:
        return [
            e
            for e in await fleet.events(mission_id=m2.id)
            if e.kind == "safety" and e.reason.startswith("airspace reserved")
        ]

    [note] = await fleet.until(reserved, "the reservation on the record")
    assert m1.id in note.data["waited_for"], note.reason
    await fleet.advance(second.start - fleet.clock.time() + 1, step=5)
    await fleet.mission_for(r2, MissionState.UNDERWAY)
    await a.fly()
    await b.fly()
    await fleet.wait_request(r1, RequestState.DELIVERED)
    await fleet.wait_request(r2, RequestState.DELIVERED)
    assert len(book) == 0  # released once both landed
