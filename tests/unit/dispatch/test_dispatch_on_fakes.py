"""The dispatcher and the runs together on fake vehicles and the manual clock: what a request
gets when stock is scarce and how it closes at its deadline, a priority change after take-off,
deadlines no drone can meet, the warehouse a request is served from, and urgent medicine flown
by a drone while a van runs its trip.

These were end-to-end tests over sim vehicles (``tests/e2e/test_dispatch_drones.py``,
``test_dispatch_warehouses.py``, ``test_shuttle_with_drones.py``); nothing in them crosses the
wire that ``tests/e2e/test_drone_delivery.py``, ``test_drone_scenarios.py``, ``test_restart.py``
and ``test_shuttle_shift.py`` do not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.geo import distance_m
from missions.states import MissionState, Priority, RequestState
from tests.service import WORLDS
from tests.unit.missions.harness import FakeFleet, open_fleet

pytestmark = pytest.mark.timeout(60)

URGENT = Priority.URGENT_MEDICAL


async def test_partial_allocation_flies_what_it_got_and_closes_at_the_deadline(
    tmp_path: Path,
) -> None:
    async with open_fleet(tmp_path, requests={"deadline_h": 0.25}) as fleet:
        drone = await fleet.add_drone(0)
        await fleet.receive("medicine", 5)
        rid = await fleet.request("C02", URGENT, medicine=12)
        m = await fleet.mission_for(rid, MissionState.UNDERWAY, message="the 5 packs fly")
        assert (await fleet.get_request(rid)).request.state == RequestState.IN_PROGRESS
        await drone.fly_to_item(2)

        # a priority change after take-off does not tear the flight up
        rec = await fleet.service.change_priority(
            rid, Priority.VULNERABLE, "operator", "re-triaged by the clinic"
        )
        assert rec.request.priority == Priority.VULNERABLE
        kept = [
            e
            for e in await fleet.events(request_id=rid)
            if e.kind == "decision" and e.data.get("kind") == "kept"
        ]
        assert kept and kept[0].mission_id == m.id
        assert (await fleet.mission(m.id)).state == MissionState.UNDERWAY

        await drone.fly()
        assert (await fleet.wait_mission(m.id)).state == MissionState.COMPLETED
        req = await fleet.wait_request(rid, RequestState.APPROVED)  # open for more stock
        assert req.items[0].delivered == 5 and req.items[0].allocated == 5

        await fleet.advance(0.25 * 3600 + 10)
        req = await fleet.wait_request(rid, RequestState.PARTIALLY_DELIVERED)
        assert "delivered 5 of 12 medicine" in req.request.reason
        assert "short 7 medicine" in req.request.reason
        events = await fleet.events(request_id=rid)
        [ev] = [e for e in events if e.to_state == "partially_delivered"]
        assert ev.data["shortfall"] == {"medicine": 7}

        [task] = await fleet.store.mission_tasks(m.id)
        assert task.load == [{"sku_id": "medicine", "quantity": 5}]
        assert await fleet.ledger(rid) == [
            ("reserve", 5, None),
            ("load", 5, m.id),
            ("deliver", 5, m.id),
        ]
        assert len(drone.releases) == 1


async def test_a_deadline_no_drone_can_meet_is_reported(tmp_path: Path) -> None:
    # 72 s: no drone drops at C05 that fast
    async with open_fleet(tmp_path, requests={"deadline_h": 0.02}) as fleet:
        await fleet.add_drone(0)
        await fleet.add_drone(1)
        await fleet.receive("medicine", 50)
        rid = await fleet.request("C05", URGENT, medicine=10)
        m = await fleet.mission_for(rid)  # still flown, as early as possible

        async def late() -> list[object]:
            return [
                e
                for e in await fleet.events(request_id=rid)
                if e.kind == "decision" and e.data.get("kind") == "deadline"
            ]

        [ev] = await fleet.until(late, "a deadline decision")
        assert "cannot meet its" in ev.reason and "min late" in ev.reason  # type: ignore[attr-defined]
        assert ev.mission_id == m.id  # type: ignore[attr-defined]
        chosen = [
            e
            for e in await fleet.events(mission_id=m.id)
            if e.kind == "decision" and e.data.get("kind") == "assignment"
        ]
        assert chosen and "chosen" in chosen[0].reason
        # the other drone was considered and the decision says why not
        assert chosen[0].data["alternatives"], chosen[0].data
        assert chosen[0].data["data"]["on_time"] is False


async def test_a_request_moves_to_the_warehouse_whose_drones_can_fly_it(tmp_path: Path) -> None:
    # Binjiang: drones only at the north depot
    async with open_fleet(tmp_path, world={"path": str(WORLDS / "binjiang.geojson")}) as fleet:
        world = fleet.world
        north, south = world.warehouses[0], world.warehouses[1]
        # the community nearest the south depot: served from there if any vehicle were there
        target = min(world.communities, key=lambda c: distance_m(c.gate, south.location))
        assert distance_m(target.gate, south.location) < distance_m(target.gate, north.location)
        for wh in (north.id, south.id):
            await fleet.receive("medicine", 100, warehouse_id=wh)
        rid = await fleet.request(target.id, URGENT, medicine=5)

        async def held_at_south() -> bool:
            rec = await fleet.get_request(rid)
            return rec.request.warehouse_id == south.id and rec.items[0].allocated == 5

        # no vehicle anywhere yet: the nearest warehouse with stock holds it
        await fleet.until(held_at_south, "allocated at the south depot")
        drone = await fleet.add_drone(world.pads_of(north.id)[0].id)
        m = await fleet.mission_for(rid, MissionState.UNDERWAY)
        await drone.fly()
        req = await fleet.wait_request(rid, RequestState.DELIVERED)
        assert req.request.warehouse_id == north.id
        assert (await fleet.mission(m.id)).plan["warehouse_id"] == north.id
        assert any(f"instead of {south.id}" in r for r in await fleet.reasons(request_id=rid))
        assert await fleet.stock("medicine", south.id) == (100, 0)  # nothing left held there
        assert await fleet.stock("medicine", north.id) == (95, 0)


async def test_a_request_waits_with_its_reason_while_no_drone_is_free(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)
    await fleet.receive("medicine", 50)
    first = await fleet.request("C05", URGENT, medicine=4)
    m = await fleet.mission_for(first, MissionState.UNDERWAY)
    second = await fleet.request("C02", URGENT, medicine=4)
    await fleet.round()
    reasons = await fleet.reasons(request_id=second)
    assert any(r.startswith("waits for drone-1, the earliest safe drop") for r in reasons), reasons
    await drone.fly()
    assert (await fleet.wait_mission(m.id)).state == MissionState.COMPLETED
    # the drone is back: the waiting request flies next
    m2 = await fleet.mission_for(second, MissionState.UNDERWAY)
    await drone.fly()
    assert (await fleet.wait_mission(m2.id)).state == MissionState.COMPLETED
    await fleet.wait_request(second, RequestState.DELIVERED)


async def test_medicine_flies_while_the_van_runs_its_shift(fleet: FakeFleet) -> None:
    drones = [await fleet.add_drone(0), await fleet.add_drone(1)]
    van = await fleet.add_van()
    for sku, qty in {"medicine": 200, "mask": 20_000, "gloves": 5_000}.items():
        await fleet.receive(sku, qty)
    plan = await fleet.shuttle_plan([van.vehicle_id])
    van_requests = [
        await fleet.request("C03", mask=6000, gloves=1000),
        await fleet.request("C04", mask=4000, gloves=1000),
    ]
    await fleet.advance(6)
    trip = await fleet.mission_for(van_requests[0], MissionState.UNDERWAY, message="van trip")
    assert (await fleet.mission_for(van_requests[1])).id == trip.id
    await van.drive(lambda v: v.truth.last_node_id == "J10")
    await fleet.advance(60)

    # the mode choice flies the light urgent load while the van is out
    med = await fleet.request("C05", URGENT, medicine=12)
    sortie = await fleet.mission_for(med, MissionState.UNDERWAY, message="the medicine flies")
    assert sortie.kind == "drone_delivery"
    drone = fleet.drones[sortie.vehicle_id or ""]
    assert drone in drones
    await drone.fly()
    await fleet.advance(60)
    await van.drive()
    for rid in [med, *van_requests]:
        await fleet.wait_request(rid, RequestState.DELIVERED)

    sortie = await fleet.wait_mission(sortie.id, MissionState.COMPLETED)
    assert any(e.kind == "payload" for e in await fleet.events(mission_id=sortie.id))
    van_missions = set()
    for rid in van_requests:
        drops = [
            e
            for e in await fleet.events(request_id=rid)
            if e.kind == "payload" and e.data.get("action") == "drop"
        ]
        assert drops and all(e.data["load_id"].startswith(e.mission_id or "?") for e in drops)
        van_missions |= {e.mission_id for e in drops}
    assert van_missions == {trip.id}
    # the drone flew while the van was out on its trip
    trip = await fleet.wait_mission(trip.id, MissionState.COMPLETED)
    assert trip.started_at is not None and trip.ended_at is not None
    assert sortie.started_at is not None and sortie.ended_at is not None
    assert trip.started_at < sortie.started_at and sortie.ended_at < trip.ended_at
    reports = await fleet.shuttles.trips(plan.id)
    delivered = {c for r in reports for c in r.boxes_by_community(delivered_only=True)}
    assert delivered == {"C03", "C04"}
