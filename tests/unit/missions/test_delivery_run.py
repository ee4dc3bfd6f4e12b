"""``DroneDeliveryRun`` on a fake drone and the manual clock: every transition of a delivery
sortie, with its bookkeeping (mission and request states, phases, the stock ledger).

The wire (MAVLink, PX4's own verdicts) is tested in ``tests/unit/mavlink`` and flown end to end
in ``tests/e2e/test_drone_delivery.py``, ``test_drone_scenarios.py`` and ``test_restart.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fleet.fakes import FakeDrone
from fleet.safety import FAILSAFE_PARAMETERS, airborne_limit_s
from fleet.store.tables import Mission
from missions.dispatcher import REST_AFTER_REFUSAL_S
from missions.states import MissionState, Phase, Priority, RequestState
from tests.unit.missions.harness import FakeFleet

pytestmark = pytest.mark.timeout(60)

URGENT = Priority.URGENT_MEDICAL
POLICY = ["set_parameter"] * len(FAILSAFE_PARAMETERS) + ["get_parameter"] * len(FAILSAFE_PARAMETERS)
"""The failsafe policy set, then read back (missions.preflight)."""
SECURE = [*POLICY, "upload_geofence", "download_geofence", "upload_rally", "download_rally"]
"""Every safety step before the plan is uploaded."""


async def underway(
    fleet: FakeFleet, community: str = "C05", quantity: int = 12
) -> tuple[FakeDrone, str, Mission]:
    """One drone on W1's first pad, medicine in stock, a request flying."""
    drone = await fleet.add_drone(0)
    await fleet.receive("medicine", 50)
    rid = await fleet.request(community, URGENT, medicine=quantity)
    m = await fleet.mission_for(rid, MissionState.UNDERWAY)
    return drone, rid, m


async def states_of(fleet: FakeFleet, mission_id: str) -> list[str]:
    return [
        str(e.to_state)
        for e in await fleet.events(mission_id=mission_id)
        if e.kind == "state" and e.request_id is None
    ]


async def phases_of(fleet: FakeFleet, mission_id: str) -> list[str]:
    return [
        str(e.data["phase"]) for e in await fleet.events(mission_id=mission_id) if e.kind == "phase"
    ]


async def test_a_delivery_is_flown_released_landed_and_booked(fleet: FakeFleet) -> None:
    drone, rid, m = await underway(fleet)
    assert drone.commands == [
        *SECURE,
        "upload_mission",
        "start_mission",
    ]
    assert drone.fences and drone.plans[-1].items[0] == drone.plan.items[0]  # type: ignore[union-attr]
    await drone.fly()

    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    assert done.reason.startswith("delivered and landed 0.0 m from pad W1-P1")
    assert await states_of(fleet, m.id) == ["planned", "authorized", "underway", "completed"]
    assert await phases_of(fleet, m.id) == [
        "preflight",
        "takeoff",
        "go_to",
        "drop_off",
        "return",
        "landing",
        "done",
    ]
    assert done.result["release_distance_m"] == 0.0 and done.result["landing_distance_m"] == 0.0
    [release] = drone.releases
    assert done.result["release_position"][:2] == [release.position.lat, release.position.lon]
    reasons = await fleet.reasons(mission_id=m.id)
    assert any("drone-1 chosen: free on pad W1-P1" in r for r in reasons)
    assert any(r.startswith("payload released 0.0 m from the drop point of C05") for r in reasons)

    assert await fleet.ledger(rid) == [
        ("reserve", 12, None),
        ("load", 12, m.id),
        ("deliver", 12, m.id),
    ]
    assert await fleet.stock("medicine") == (38, 0)
    req = await fleet.get_request(rid)
    assert req.request.state == RequestState.DELIVERED
    assert req.items[0].delivered == 12
    request_states = [e.to_state for e in await fleet.events(request_id=rid) if e.kind == "state"]
    assert request_states == ["submitted", "approved", "scheduled", "in_progress", "delivered"]


async def test_a_plan_the_drone_refuses_fails_in_its_words_and_the_work_waits(
    fleet: FakeFleet,
) -> None:
    drone = await fleet.add_drone(0)
    drone.refuse("upload_mission", "Geofence violation for waypoint 3")
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert m.reason == (
        "vehicle refused the mission: drone-1 rejected the mission: "
        "Geofence violation for waypoint 3"
    )
    assert "start_mission" not in drone.commands and not drone.truth.armed
    assert await states_of(fleet, m.id) == ["planned", "failed"]
    # nothing lost: the request waits with its stock still reserved, nothing was loaded
    req = await fleet.wait_request(rid, RequestState.APPROVED)
    assert req.items[0].allocated == 4 and req.items[0].delivered == 0
    assert await fleet.ledger(rid) == [("reserve", 4, None)]
    assert await fleet.stock("medicine") == (50, 4)
    # the drone rests before it is offered work again; then it flies the request
    dispatcher = fleet.service.dispatcher
    assert dispatcher.resting("drone-1") == (
        "drone-1 rejected the mission: Geofence violation for waypoint 3"
    )
    await fleet.round()
    assert [x.id for x in await fleet.missions_of(rid)] == [m.id]
    reasons = await fleet.reasons(request_id=rid)
    assert any("refused its last mission" in r and "resting" in r for r in reasons), reasons
    drone.allow()
    await fleet.advance(REST_AFTER_REFUSAL_S + 1)
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert again.id != m.id
    await drone.fly()
    assert (await fleet.wait_mission(again.id)).state == MissionState.COMPLETED
    await fleet.wait_request(rid, RequestState.DELIVERED)


async def test_a_start_the_drone_refuses_fails_and_books_the_load_back(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.refuse("start_mission", "Arming denied: resolve health failures first")
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert "Arming denied: resolve health failures first" in m.reason
    assert await states_of(fleet, m.id) == ["planned", "authorized", "failed"]
    # it was loaded when authorized; it comes back to stock and the request waits again
    await fleet.wait_request(rid, RequestState.APPROVED)
    await fleet.round()
    # the next round allocates the returned stock to it again (the drone rests meanwhile)
    assert await fleet.ledger(rid) == [
        ("reserve", 4, None),
        ("load", 4, m.id),
        ("return", 4, m.id),
        ("reserve", 4, None),
    ]
    assert await fleet.stock("medicine") == (50, 4)
    assert fleet.service.dispatcher.resting("drone-1") is not None


async def test_an_upload_the_drone_never_answers_fails_the_mission(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.time_out("upload_geofence")
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert "fence upload timed out" in m.reason
    assert drone.commands == [*POLICY, "upload_geofence"]
    await fleet.wait_request(rid, RequestState.APPROVED)


async def test_a_cancel_before_take_off_stops_at_once(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.hold_back("upload_mission")  # the upload takes its time
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.PLANNED)
    await fleet.until(lambda: drone.waiting("upload_mission"), "the upload under way")
    await fleet.service.cancel_mission(m.id, "operator", "wrong community")
    drone.let_through("upload_mission")
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert done.reason == "cancelled by operator: wrong community"
    assert "start_mission" not in drone.commands
    # an operator's cancel cancels the request it carried, and releases its reservation
    req = await fleet.wait_request(rid, RequestState.CANCELLED)
    assert req.request.reason
    assert await fleet.stock("medicine") == (50, 0)
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "release"]


async def test_cancelling_a_request_stops_its_unstarted_mission(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.hold_back("upload_geofence")
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.PLANNED)
    await fleet.until(lambda: drone.waiting("upload_geofence"), "the fence upload under way")
    rec = await fleet.service.cancel_request(rid, "staff", "resident moved")
    assert rec.request.state == RequestState.CANCELLED
    done = await fleet.mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert "cancelled by staff: resident moved" in done.reason
    assert await fleet.stock("medicine") == (50, 0)
    drone.let_through("upload_geofence")
    await fleet.round()
    assert "start_mission" not in drone.commands
    assert not fleet.service.is_busy("drone-1")


async def test_a_priority_change_before_take_off_plans_the_work_again(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.hold_back("upload_mission")
    await fleet.receive("test_kit", 50)
    rid = await fleet.request("C05", test_kit=5)
    m = await fleet.mission_for(rid, MissionState.PLANNED)
    await fleet.until(lambda: drone.waiting("upload_mission"), "the upload under way")
    await fleet.service.change_priority(rid, Priority.VULNERABLE, "operator", "re-triaged")
    first = await fleet.mission(m.id)
    assert first.state == MissionState.CANCELLED
    assert first.reason == "re-planned: priority changed to vulnerable"
    decisions = [e for e in await fleet.events(request_id=rid) if e.kind == "decision"]
    assert any(e.data.get("kind") == "reassignment" for e in decisions)
    drone.let_through("upload_mission")
    # requeued, not cancelled: the next round plans it again, under the new class
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert again.id != m.id
    req = await fleet.get_request(rid)
    assert req.request.priority == Priority.VULNERABLE
    await drone.fly()
    await fleet.wait_request(rid, RequestState.DELIVERED)


async def test_a_cancel_in_flight_sends_the_drone_home_and_ends_after_landing(
    fleet: FakeFleet,
) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await fleet.service.cancel_mission(m.id, "operator", "airspace closed")
    await fleet.wait_phase(m.id, Phase.RETURN)
    assert "return_to_launch" in drone.commands
    steps = await drone.fly()
    assert steps[-1] == "landed and disarmed" and not drone.releases
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert done.reason.startswith("cancelled (cancelled by operator: airspace closed); landed")
    assert await fleet.ledger(rid) == [
        ("reserve", 12, None),
        ("load", 12, m.id),
        ("return", 12, m.id),
    ]
    assert await fleet.stock("medicine") == (50, 0)
    req = await fleet.wait_request(rid, RequestState.CANCELLED)
    assert req.items[0].delivered == 0


async def test_a_cancel_after_the_release_keeps_the_delivery(fleet: FakeFleet) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly(lambda d: bool(d.releases))
    await fleet.until(
        lambda: fleet.service.runs[m.id].mission.result.get("released"), "the release is booked"
    )
    await fleet.service.cancel_mission(m.id, "operator", "weather")
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "load", "deliver"]
    req = await fleet.get_request(rid)
    assert req.request.state == RequestState.DELIVERED and req.items[0].delivered == 12


async def test_a_landing_without_the_release_fails_and_requeues(fleet: FakeFleet) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await drone.return_to_launch()  # a failsafe or the pilot: not the service
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert "without releasing the payload (mode rtl)" in done.reason
    assert [k for k, _, _ in await fleet.ledger(rid)][:3] == ["reserve", "load", "return"]
    await fleet.until(
        lambda: fleet.service.is_busy("drone-1"), "the request is planned again at once"
    )


async def test_link_lost_and_regained_is_noted_and_the_flight_goes_on(fleet: FakeFleet) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await drone.lose_link()
    await drone.fly(lambda d: d.truth.mission.current > 7)  # released while unheard
    assert (await fleet.mission(m.id)).phase == Phase.GO_TO
    await drone.regain_link()
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    notes = [e.reason for e in await fleet.events(mission_id=m.id) if e.kind == "vehicle"]
    assert notes == ["link lost; the drone continues its mission", "link regained"]
    # the release was seen late: booked once, where the drone was when it was heard again
    assert done.result["release_distance_m"] > 0
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "load", "deliver"]


async def test_a_drone_lost_for_good_keeps_its_work_until_it_cannot_be_flying(
    fleet: FakeFleet,
) -> None:
    """The lost-link policy (docs/safety.md): past its deadline an unheard drone is not given
    up while its last battery could keep it in the air; after that its work goes back."""
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await drone.lose_link()
    await fleet.advance(fleet.settings.drone_missions.max_flight_s + 1, step=60)
    assert (await fleet.mission(m.id)).state == MissionState.UNDERWAY
    assert "return_to_launch" not in drone.commands  # never recalled while unheard
    safety = [e for e in await fleet.events(mission_id=m.id) if e.kind == "safety"]
    assert any(e.data.get("alert") and "link lost" in e.reason for e in safety)
    # 95 % battery at the empty hover rate (3 %/min) is 1900 s in the air, plus 60 s
    limit = airborne_limit_s(0.95) + fleet.settings.safety.lost_link_margin_s
    await fleet.advance(limit - fleet.settings.drone_missions.max_flight_s - 90, step=30)
    assert (await fleet.mission(m.id)).state == MissionState.UNDERWAY  # not yet
    await fleet.advance(120, step=30)
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert done.reason.startswith("drone lost: link lost for "), done.reason
    assert "presumed down" in done.reason
    # the load is booked back; the next round may already reserve the stock for it again
    assert [k for k, _, _ in await fleet.ledger(rid)][:3] == ["reserve", "load", "return"]
    await fleet.wait_request(rid, RequestState.APPROVED)


async def test_an_overdue_drone_that_still_answers_is_sent_home(fleet: FakeFleet) -> None:
    drone, _, m = await underway(fleet)
    await drone.fly_to_item(2)
    await drone.hold()
    await fleet.advance(fleet.settings.drone_missions.max_flight_s + 1, step=60)
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert "return_to_launch" in drone.commands
    reasons = await fleet.reasons(mission_id=m.id)
    assert "return to launch commanded: not back after 1800 s" in reasons


async def test_a_restart_in_flight_follows_the_mission_again_and_books_once(
    fleet: FakeFleet,
) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await fleet.stop()
    await drone.fly(lambda d: d.truth.mission.current > 6)  # released while the service is down
    await fleet.start()
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    reasons = await fleet.reasons(mission_id=m.id)
    assert "service restarted; following the mission again" in reasons
    assert any("released while the service was restarting" in r for r in reasons)
    assert done.result["release_position"] is None
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "load", "deliver"]
    # a second restart finds nothing left to do and books nothing twice
    await fleet.restart()
    await fleet.round()
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "load", "deliver"]
    assert (await fleet.get_request(rid)).request.state == RequestState.DELIVERED


async def test_a_restart_after_the_landing_completes_the_mission(fleet: FakeFleet) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await fleet.stop()
    await drone.fly()  # the whole rest of the flight while nobody watches
    await fleet.start()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "load", "deliver"]
    await fleet.wait_request(rid, RequestState.DELIVERED)


async def test_a_restart_before_the_start_interrupts_and_requeues(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    drone.hold_back("upload_mission")
    await fleet.receive("medicine", 50)
    rid = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(rid, MissionState.PLANNED)
    await fleet.until(lambda: drone.waiting("upload_mission"), "the upload under way")
    await fleet.stop()
    drone.allow()
    drone.let_through("upload_mission")
    await fleet.start()
    first = await fleet.mission(m.id)
    assert first.state == MissionState.INTERRUPTED
    assert first.reason == "service restarted before the mission started"
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert again.id != m.id
    await drone.fly()
    await fleet.wait_request(rid, RequestState.DELIVERED)
    assert await fleet.stock("medicine") == (46, 0)


async def test_a_stop_in_the_middle_of_a_state_change_leaves_the_service_sound(
    fleet: FakeFleet,
) -> None:
    # the service stops (or a re-plan stops the run) while a transition's transaction is open:
    # it rolls back, and the run must end as a cancelled task with its last committed mission
    # (never an expired ORM object), reporting itself done
    drone = await fleet.add_drone(0)
    await fleet.receive("medicine", 50)
    held = asyncio.Event()
    inside = asyncio.Event()
    move_stock = fleet.store.move_stock

    async def slow_move_stock(kind: str, *args: Any, **kw: Any) -> Any:
        if kind == "load":  # inside the transition to authorized
            inside.set()
            await held.wait()
        return await move_stock(kind, *args, **kw)

    fleet.store.move_stock = slow_move_stock  # type: ignore[method-assign]
    rid = await fleet.request("C05", URGENT, medicine=4)
    await fleet.until(inside.is_set, "the transition to authorized is under way")
    [m] = await fleet.missions_of(rid)
    run = fleet.service.runs[m.id]
    await fleet.stop()  # must not raise
    assert run.mission.state == MissionState.PLANNED  # the committed state, readable
    fleet.store.move_stock = move_stock  # type: ignore[method-assign]
    held.set()
    await fleet.start()
    assert (await fleet.mission(m.id)).state == MissionState.INTERRUPTED
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    await drone.fly()
    assert (await fleet.wait_mission(again.id)).state == MissionState.COMPLETED


async def test_a_drone_never_heard_again_after_a_restart_fails_when_overdue(
    fleet: FakeFleet,
) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    await fleet.stop()
    del fleet.drones[drone.vehicle_id]  # it crashed meanwhile: no link discovers it again
    await fleet.start()
    await fleet.advance(fleet.settings.drone_missions.max_flight_s + 1, step=60)
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED and done.reason == "not back after 1800 s"
    reasons = await fleet.reasons(mission_id=m.id)
    assert any(r.startswith("return to launch failed:") for r in reasons), reasons
    assert [k for k, _, _ in await fleet.ledger(rid)][:3] == ["reserve", "load", "return"]
