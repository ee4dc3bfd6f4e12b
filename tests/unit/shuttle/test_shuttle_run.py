"""``ShuttleRun`` on fake vans and the manual clock: every transition of a van trip, what it
books (picks, drops, goods brought back) and what happens to its work when the van cannot
finish it (requeued, stranded, recovered when the van is heard again).

The wire (VDA 5050 over MQTT, the sim van's physics) is tested in
``tests/integration/test_vda5050_*``; with the service in
``tests/integration/test_shuttle_faults.py`` (a cancel on the road, a restart while a van is
out) and ``tests/e2e/test_shuttle_shift.py``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from fleet.fakes import FakeVan
from fleet.store.tables import Mission
from missions.shuttle import van_service_available
from missions.states import MissionState, RequestState
from tests.unit.missions.harness import FakeFleet, open_fleet

pytestmark = pytest.mark.timeout(60)


async def trip_for(
    fleet: FakeFleet, community: str = "C12", *, van: FakeVan | None = None, **items: int
) -> tuple[FakeVan, str, Mission]:
    """A van on a shuttle plan at the W1 dock, stock, a request and its trip under way."""
    if van is None:
        van = await fleet.add_van()
        await fleet.receive("mask", 20_000)
        await fleet.receive("alcohol", 2_400)
        await fleet.shuttle_plan([van.vehicle_id])
    rid = await fleet.request(community, **(items or {"mask": 5000}))
    await fleet.advance(6)  # the planner looks at new work every few seconds
    m = await fleet.mission_for(rid, MissionState.UNDERWAY)
    return van, rid, m


async def moves(fleet: FakeFleet, request_id: str) -> dict[tuple[str, str], int]:
    """(kind, mission id) -> units, for one request."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for kind, qty, mission_id in await fleet.ledger(request_id):
        out[(kind, mission_id or "")] += qty
    return dict(out)


async def phases_of(fleet: FakeFleet, mission_id: str) -> list[str]:
    return [
        str(e.data["phase"]) for e in await fleet.events(mission_id=mission_id) if e.kind == "phase"
    ]


async def test_a_trip_picks_drops_and_books_each_load_once(fleet: FakeFleet) -> None:
    van, rid, m = await trip_for(fleet, "C12", mask=5000)
    [trip] = van.trips
    assert trip.trip_id == m.id and van.commands == ["send_trip"]
    steps = await van.drive()
    assert steps[:2] == [steps[0], f"picked {m.id}.C12"] and f"dropped {m.id}.C12" in steps
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    assert done.reason == "delivered 10 boxes (1 loads); back at the dock"
    assert sorted(done.result["booked"]) == [f"drop:{m.id}.C12", f"pick:{m.id}.C12"]
    assert await phases_of(fleet, m.id) == [
        "preflight",
        "pick_up",
        "go_to",
        "drop_off",
        "return",
        "done",
    ]
    assert await moves(fleet, rid) == {
        ("reserve", ""): 5000,
        ("load", m.id): 5000,
        ("deliver", m.id): 5000,
    }
    req = await fleet.get_request(rid)
    assert req.request.state == RequestState.DELIVERED and req.items[0].delivered == 5000
    drops = [
        e
        for e in await fleet.events(request_id=rid)
        if e.kind == "payload" and e.data.get("action") == "drop"
    ]
    assert [e.data["load_id"] for e in drops] == [f"{m.id}.C12"]
    assert await fleet.stock("mask") == (15_000, 0)
    assert not van.load_ids


async def test_a_trip_the_van_refuses_fails_and_its_work_waits(fleet: FakeFleet) -> None:
    van = await fleet.add_van()
    van.refuse("send_trip", "orderError", times=1)
    await fleet.receive("mask", 20_000)
    await fleet.shuttle_plan([van.vehicle_id])
    rid = await fleet.request("C12", mask=5000)
    await fleet.advance(6)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert m.reason.startswith("the van did not take the trip: van van-VAN-01 rejected trip")
    assert "orderError" in m.reason
    assert await moves(fleet, rid) == {("reserve", ""): 5000}  # nothing was loaded
    req = await fleet.wait_request(rid, RequestState.APPROVED)
    assert req.items[0].allocated == 5000
    # the van is free again: the work is planned again (after the planner's re-plan pause)
    await fleet.advance(fleet.settings.shuttle.replan_interval_s + 1)
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert again.id != m.id
    await van.drive()
    await fleet.wait_request(rid, RequestState.DELIVERED)


async def test_a_trip_the_van_never_confirms_fails(fleet: FakeFleet) -> None:
    van = await fleet.add_van()
    van.time_out("send_trip", times=1)
    await fleet.receive("mask", 20_000)
    await fleet.shuttle_plan([van.vehicle_id])
    rid = await fleet.request("C12", mask=5000)
    await fleet.advance(6)
    m = await fleet.mission_for(rid, MissionState.FAILED)
    assert "did not confirm send_trip" in m.reason
    await fleet.wait_request(rid, RequestState.APPROVED)


@pytest.mark.parametrize("answer", ["refuse", "time_out"])
async def test_a_cancel_the_van_does_not_confirm_leaves_the_trip_running_with_an_alert(
    fleet: FakeFleet, answer: str
) -> None:
    van, rid, m = await trip_for(fleet, "C12", mask=5000)
    await van.drive(lambda v: v.truth.last_node_id == "J13")
    await fleet.wait_phase(m.id, "go_to")
    if answer == "refuse":
        van.refuse("cancel_trip", "cancel order already pending")
    else:
        van.time_out("cancel_trip")
    await fleet.service.cancel_mission(m.id, "operator", "road closed")
    await fleet.until(lambda: "cancel_trip" in van.commands, "the cancel is sent")
    await van.drive()  # the van goes on and delivers
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    assert "was not confirmed by the van" in done.reason, done.reason
    notes = [
        e
        for e in await fleet.events(mission_id=m.id)
        if e.data.get("alert") == "cancel_not_confirmed"
    ]
    assert len(notes) == 1 and notes[0].reason.startswith("ALERT: the cancel is not confirmed")
    assert (await fleet.get_request(rid)).request.state == RequestState.DELIVERED


async def test_a_cancel_before_the_van_takes_the_trip_stops_it(fleet: FakeFleet) -> None:
    van = await fleet.add_van()
    van.hold_back("send_trip")
    await fleet.receive("mask", 20_000)
    await fleet.shuttle_plan([van.vehicle_id])
    rid = await fleet.request("C12", mask=5000)
    await fleet.advance(6)
    m = await fleet.mission_for(rid, MissionState.AUTHORIZED)
    await fleet.until(lambda: van.waiting("send_trip"), "the trip is being sent")
    rec = await fleet.service.cancel_request(rid, "staff", "resident moved")
    assert rec.request.state == RequestState.CANCELLED
    done = await fleet.mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert await fleet.stock("mask") == (20_000, 0)
    assert [k for (k, _) in await moves(fleet, rid)] == ["reserve", "release"]


async def test_a_trip_cancelled_on_the_road_comes_back_to_the_dock_and_unloads(
    fleet: FakeFleet,
) -> None:
    van, rid, m = await trip_for(fleet, "C12", mask=5000)  # the farthest gate
    await van.drive(lambda v: v.truth.last_node_id == "J13")
    await fleet.wait_phase(m.id, "go_to")
    await fleet.service.cancel_mission(m.id, "operator", "road closed")
    unload = await fleet.until(lambda: len(van.trips) == 2 and van.trips[1], "the unload trip")
    assert van.commands[:3] == ["send_trip", "cancel_trip", "send_trip"]
    assert unload.trip_id == f"{m.id}.u1" and unload.nodes[0].node_id == "J13"
    assert unload.nodes[-1].node_id == fleet.world.dock_node("W1").id
    await van.drive()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.CANCELLED, done.reason
    assert done.result["returned"] == [f"{m.id}.C12"]
    assert done.reason.startswith("cancelled (cancelled by operator: road closed); 0 of 1 loads")
    got = await moves(fleet, rid)
    assert got[("load", m.id)] == 5000 and got[("return", m.id)] == 5000
    assert ("deliver", m.id) not in got
    assert await fleet.stock("mask") == (20_000, 0)
    assert (await fleet.get_request(rid)).request.state == RequestState.CANCELLED
    assert not van.load_ids and van.truth.last_node_id == fleet.world.dock_node("W1").id
    assert any("bringing 1 loads back" in r for r in await fleet.reasons(mission_id=m.id))


async def test_link_lost_and_regained_within_the_grace_is_noted_and_the_trip_goes_on(
    fleet: FakeFleet,
) -> None:
    van, rid, m = await trip_for(fleet, "C12", mask=5000)
    await van.drive(lambda v: v.truth.last_node_id == "J13")
    await van.lose_link()
    await van.drive(lambda v: not v.load_ids)  # dropped while unheard
    await fleet.advance(60)
    assert (await fleet.mission(m.id)).state == MissionState.UNDERWAY
    await van.come_back()
    await van.drive()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    notes = [e.reason for e in await fleet.events(mission_id=m.id) if e.kind == "vehicle"]
    assert notes == ["link lost; the van keeps driving its trip", "link regained"]
    assert await moves(fleet, rid) == {
        ("reserve", ""): 5000,
        ("load", m.id): 5000,
        ("deliver", m.id): 5000,
    }


async def test_a_van_lost_mid_trip_is_given_up_its_stops_go_to_another_and_its_load_comes_back(
    fleet: FakeFleet,
) -> None:
    vans = [await fleet.add_van("van-VAN-01"), await fleet.add_van("van-VAN-02")]
    await fleet.receive("alcohol", 2_400)
    await fleet.shuttle_plan([v.vehicle_id for v in vans])
    assert await van_service_available(fleet.ctx, community_id="C11")
    rid = await fleet.request("C11", alcohol=480)  # 20 boxes, 250 kg
    await fleet.advance(6)
    first = await fleet.mission_for(rid, MissionState.UNDERWAY)
    lost = fleet.vans[first.vehicle_id or ""]
    other = next(v for v in vans if v is not lost)
    await lost.drive(lambda v: v.truth.last_node_id == "J13")
    await lost.break_down()  # it breaks down on the road...
    await lost.lose_link()  # ...and drops off the network

    grace = fleet.settings.shuttle.link_lost_grace_s
    await fleet.advance(grace + 60, step=30)
    gone = await fleet.wait_mission(first.id, MissionState.INTERRUPTED)
    assert gone.result["stranded"] == [{"load_id": f"{first.id}.C11", "loaded": True}]
    assert "link lost" in gone.reason
    # its stops go to the other van
    await fleet.advance(fleet.settings.shuttle.replan_interval_s + 1)
    second = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert second.vehicle_id == other.vehicle_id
    await other.drive()
    await fleet.wait_request(rid, RequestState.DELIVERED)
    got = await moves(fleet, rid)
    assert got[("load", first.id)] == 480
    assert got[("load", second.id)] == 480 and got[("deliver", second.id)] == 480
    assert ("return", first.id) not in got  # its goods are still on the broken van

    # back on the network, still broken down, still holding the old order: told to drop it
    await lost.come_back()
    await fleet.advance(31)
    await fleet.until(
        lambda: told_to_stop(fleet, lost.vehicle_id), "the recovery tells the van to stop its order"
    )
    assert lost.commands[-1] == "cancel_trip" and not lost.busy
    assert lost.load_ids == [f"{first.id}.C11"]  # still loaded
    await lost.repair()  # repaired: it is brought home and unloaded
    await fleet.advance(31)
    back = await fleet.until(lambda: len(lost.trips) == 2 and lost.trips[1], "a return trip")
    await lost.drive()
    got = await fleet.until(
        lambda: _returned(fleet, rid, first.id, 480), "the stranded load is booked back"
    )
    assert not lost.load_ids and lost.truth.last_node_id == fleet.world.dock_node("W1").id
    gone = await fleet.mission(first.id)
    assert gone.result["stranded"] == []
    assert gone.result["recovered"]["returning"] == [f"{first.id}.C11"]
    recovery = await fleet.wait_mission(gone.result["recovered"]["by"], MissionState.COMPLETED)
    assert recovery.plan["purpose"] == "return" and recovery.id == back.trip_id
    assert await fleet.stock("alcohol") == (2_400 - 480, 0)


async def told_to_stop(fleet: FakeFleet, vehicle_id: str) -> bool:
    return any("told to stop it" in r for r in await fleet.reasons(vehicle_id=vehicle_id))


async def _returned(fleet: FakeFleet, request_id: str, mission_id: str, qty: int) -> bool:
    return (await moves(fleet, request_id)).get(("return", mission_id)) == qty


async def test_a_van_taken_out_of_service_mid_trip_keeps_its_load_until_it_is_back(
    fleet: FakeFleet,
) -> None:
    van, rid, m = await trip_for(fleet, "C10", mask=3000)
    await van.drive(lambda v: v.truth.last_node_id == "J11")
    await fleet.store.set_vehicle_in_service(van.vehicle_id, False)
    await fleet.advance(31)  # the run looks at the service flag every 30 s
    gone = await fleet.wait_mission(m.id, MissionState.INTERRUPTED)
    assert "taken out of service" in gone.reason
    assert van.commands[-1] == "cancel_trip"
    assert van.load_ids and not van.busy  # stopped on the road, still loaded
    req = await fleet.wait_request(rid, RequestState.APPROVED)
    assert req.items[0].delivered == 0
    await fleet.advance(3)  # the vans' availability is read again every 2 s
    assert not await van_service_available(fleet.ctx, community_id="C10")

    await fleet.store.set_vehicle_in_service(van.vehicle_id, True)
    await fleet.advance(31)
    await fleet.until(lambda: len(van.trips) == 2, "a return trip brings the load home")
    await van.drive()
    await fleet.until(lambda: _returned(fleet, rid, m.id, 3000), "the load is booked back")
    await fleet.advance(fleet.settings.shuttle.replan_interval_s + 1)
    await fleet.until(lambda: len(van.trips) == 3, "a new trip for the request")
    await van.drive()
    await fleet.wait_request(rid, RequestState.DELIVERED)
    got = await moves(fleet, rid)
    assert got[("load", m.id)] == 3000 and got[("return", m.id)] == 3000
    assert sum(q for (kind, _), q in got.items() if kind == "deliver") == 3000


async def test_a_restart_while_a_van_is_out_books_what_happened_meanwhile(
    fleet: FakeFleet,
) -> None:
    van = await fleet.add_van()
    await fleet.receive("mask", 9000)
    await fleet.shuttle_plan([van.vehicle_id], ["C08", "C10"])
    # both requests are in before the next round (a round between the two submissions, on a
    # loaded machine, would send the van out with the first alone)
    async with fleet.service.dispatcher.lock:
        rids = [await fleet.request("C08", mask=4000), await fleet.request("C10", mask=5000)]
    await fleet.advance(6)
    m = await fleet.mission_for(rids[0], MissionState.UNDERWAY)
    assert (await fleet.mission_for(rids[1])).id == m.id
    await van.drive(lambda v: v.truth.last_node_id == "J10")
    await fleet.stop()
    await van.drive(lambda v: not v.load_ids)  # both dropped while the service is down
    await fleet.start()
    await van.drive()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    assert "service restarted; following the mission again" in await fleet.reasons(mission_id=m.id)
    for rid, qty in zip(rids, (4000, 5000), strict=True):
        req = await fleet.wait_request(rid, RequestState.DELIVERED)
        assert req.items[0].delivered == qty
        got = await moves(fleet, rid)
        assert got[("load", m.id)] == qty and got[("deliver", m.id)] == qty
    # a second restart books nothing twice
    await fleet.restart()
    await fleet.round()
    for rid, qty in zip(rids, (4000, 5000), strict=True):
        assert (await moves(fleet, rid))[("deliver", m.id)] == qty


async def test_a_restart_before_the_van_took_the_trip_interrupts_and_requeues(
    fleet: FakeFleet,
) -> None:
    van = await fleet.add_van()
    van.hold_back("send_trip")
    await fleet.receive("mask", 20_000)
    await fleet.shuttle_plan([van.vehicle_id])
    rid = await fleet.request("C12", mask=5000)
    await fleet.advance(6)
    m = await fleet.mission_for(rid, MissionState.AUTHORIZED)
    await fleet.until(lambda: van.waiting("send_trip"), "the trip is being sent")
    await fleet.stop()
    van.let_through("send_trip")
    await fleet.start()
    first = await fleet.mission(m.id)
    assert first.state == MissionState.INTERRUPTED
    await fleet.wait_request(rid, RequestState.APPROVED)
    assert await moves(fleet, rid) == {("reserve", ""): 5000}


async def test_a_load_missing_at_the_gate_fails_the_drop_and_is_sent_again(
    fleet: FakeFleet,
) -> None:
    van, rid, m = await trip_for(fleet, "C06", mask=2500)
    await van.drive(lambda v: v.truth.last_node_id == "J10")
    await van.lose_load(f"{m.id}.C06")  # the consignment goes missing on the way
    await van.drive()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED and "drop failed" in done.reason, done.reason
    assert "load is not on board" in done.reason
    reasons = await fleet.reasons(mission_id=m.id)
    assert any("location is unknown" in r for r in reasons), reasons
    await fleet.advance(fleet.settings.shuttle.replan_interval_s + 1)
    again = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert again.id != m.id
    await van.drive()
    await fleet.wait_request(rid, RequestState.DELIVERED)
    got = await moves(fleet, rid)
    # the lost goods stay in transit against the first trip until a count settles them
    assert got[("load", m.id)] == 2500 and ("return", m.id) not in got
    assert got[("load", again.id)] == 2500 and got[("deliver", again.id)] == 2500


async def test_a_pick_that_fails_requeues_the_load(fleet: FakeFleet) -> None:
    van, rid, m = await trip_for(fleet, "C06", mask=2500)
    await van.fail_next(f"{m.id}.C06", "forklift broken")
    await van.drive()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert f"{m.id}.C06: pick failed: forklift broken" in done.reason
    assert await moves(fleet, rid) == {("reserve", ""): 2500}
    await fleet.wait_request(rid, RequestState.APPROVED)


async def test_a_low_battery_van_charges_before_its_trip(tmp_path: Path) -> None:
    async with open_fleet(tmp_path, shuttle={"charge_below": 0.3, "charge_until": 0.35}) as fleet:
        van = await fleet.add_van(battery=0.25)
        await fleet.receive("food_box", 100)
        await fleet.shuttle_plan([van.vehicle_id])
        rid = await fleet.request("C05", food_box=12)
        await fleet.advance(6)
        await fleet.until(lambda: van.truth.charging, "the van charges")
        assert await fleet.missions_of(rid) == []  # no trip while it charges
        await van.set_battery(0.36)
        await fleet.advance(6)
        m = await fleet.mission_for(rid, MissionState.UNDERWAY)
        assert not van.truth.charging and "stop_charging" in van.commands
        await van.drive()
        assert (await fleet.wait_mission(m.id)).state == MissionState.COMPLETED
        [stop] = [r for r in await fleet.reasons(mission_id=m.id) if r.startswith("stops charging")]
        assert stop.startswith("stops charging at 36%")
        await fleet.wait_request(rid, RequestState.DELIVERED)
        [decision] = [
            e for e in await fleet.events(vehicle_id=van.vehicle_id) if "charges at" in e.reason
        ]
        assert decision.data["battery"] < 0.3 and decision.mission_id is None


async def test_a_van_never_heard_again_after_a_restart_is_given_up(fleet: FakeFleet) -> None:
    van, rid, m = await trip_for(fleet, "C12", mask=5000)
    await van.drive(lambda v: v.truth.last_node_id == "J13")
    await fleet.stop()
    del fleet.vans[van.vehicle_id]  # not on the network when the service comes back
    await fleet.start()
    await fleet.advance(fleet.settings.shuttle.link_lost_grace_s + 60, step=30)
    gone = await fleet.wait_mission(m.id, MissionState.INTERRUPTED)
    assert gone.reason.startswith("van not heard for 600 s; its undelivered work is planned again")
    assert gone.result["stranded"] == [{"load_id": f"{m.id}.C12", "loaded": True}]
    req = await fleet.wait_request(rid, RequestState.APPROVED)
    assert req.items[0].delivered == 0
