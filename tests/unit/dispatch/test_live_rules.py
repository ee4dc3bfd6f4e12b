"""The live dispatcher's pure rules: the mode choice, the unassigned allocated lines planners
plan, closing at the deadline, and the single sources of the ledger table and energy model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet import energy
from fleet.ledger import MOVEMENT_EFFECTS, MovementKind, effect, quantity_problem
from fleet.store import repository
from fleet.store.repository import RequestRecord
from fleet.store.tables import Request, RequestItem, Task
from missions import inventory
from missions.bookkeeping import due_for_closing
from missions.catalogue import default_skus
from missions.delivery import plan as drone_delivery
from missions.delivery.mode import choose_mode
from missions.modes import Mode
from missions.open_work import assigned_units, carried_units, unassigned_units
from missions.routing import DroneSpec, estimate
from missions.states import Priority, RequestState, TaskState

SKU = {s.id: s for s in default_skus()}
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


# --- mode choice -------------------------------------------------------------------------------


def mode(lines: list[tuple[str, int]], priority: Priority, **kw: object) -> tuple[Mode, str]:
    defaults: dict[str, object] = {"payload_kg": 2.5, "van_available": True}
    defaults.update(kw)
    c = choose_mode([(SKU[s], q) for s, q in lines], priority, **defaults)  # type: ignore[arg-type]
    return c.mode, c.reason


@pytest.mark.parametrize("priority", [Priority.URGENT_MEDICAL, Priority.VULNERABLE])
def test_light_urgent_and_vulnerable_loads_fly_even_while_vans_run(priority: Priority) -> None:
    m, why = mode([("medicine", 12)], priority)
    assert m is Mode.DRONE and "flies by drone" in why


def test_standard_loads_wait_for_a_van_while_vans_run_and_fly_when_none_can() -> None:
    m, why = mode([("test_kit", 20)], Priority.STANDARD)
    assert m is Mode.VAN and "waits for a van" in why
    m, why = mode([("test_kit", 20)], Priority.STANDARD, van_available=False)
    assert m is Mode.DRONE and "no van" in why


def test_what_cannot_fly_waits_for_a_van_whatever_the_class() -> None:
    m, why = mode([("alcohol", 2)], Priority.URGENT_MEDICAL, van_available=False)
    assert m is Mode.VAN and "alcohol may not fly" in why
    m, why = mode([("medicine", 30)], Priority.URGENT_MEDICAL)  # 3 kg
    assert m is Mode.VAN and "exceeds the drone payload" in why
    m, why = mode([("medicine", 5)], Priority.URGENT_MEDICAL, unreachable="out of drone range")
    assert m is Mode.VAN and "out of drone range" in why


def test_urgent_loads_take_a_van_when_no_drone_serves_the_warehouse() -> None:
    m, _ = mode([("medicine", 5)], Priority.URGENT_MEDICAL, drones_available=False)
    assert m is Mode.VAN
    m, _ = mode(
        [("medicine", 5)], Priority.URGENT_MEDICAL, drones_available=False, van_available=False
    )
    assert m is Mode.DRONE  # nothing else will take it: it waits for a drone


# --- unassigned allocated lines -------------------------------------------------------------


def record(
    *lines: tuple[str, int, int, int], state: RequestState = RequestState.APPROVED
) -> RequestRecord:
    """Lines as (sku, quantity, allocated, delivered)."""
    req = Request(
        id="r1",
        kind="delivery",
        community_id="C01",
        state=state,
        priority="standard",
        created_at=NOW,
        deadline=NOW + timedelta(hours=5),
    )
    items = [
        RequestItem(request_id="r1", sku_id=s, quantity=q, allocated=a, delivered=d)
        for s, q, a, d in lines
    ]
    return RequestRecord(req, items)


def task(state: TaskState, **load: int) -> Task:
    return Task(
        request_id="r1",
        kind="drone_delivery",
        community_id="C01",
        state=state,
        load=[{"sku_id": k, "quantity": v} for k, v in load.items()],
        created_at=NOW,
    )


def test_unassigned_is_allocated_minus_delivered_minus_assigned() -> None:
    rec = record(("medicine", 20, 15, 4), ("test_kit", 10, 10, 0))
    tasks = [
        task(TaskState.DONE, medicine=4),  # delivered: counted in ``delivered``
        task(TaskState.ASSIGNED, medicine=6),  # on a vehicle's work
        task(TaskState.FAILED, medicine=5, test_kit=10),  # planned again
        task(TaskState.CANCELLED, test_kit=3),
    ]
    assigned = assigned_units(tasks)
    assert assigned == {("r1", "medicine"): 6}
    assert unassigned_units(rec, assigned) == {"medicine": 5, "test_kit": 10}
    assert carried_units(rec, assigned) == {"medicine": 10, "test_kit": 0}
    done = record(("medicine", 20, 10, 4))
    assert unassigned_units(done, assigned) == {}


# --- closing at the deadline -------------------------------------------------------------------


def test_a_request_closes_at_its_deadline_only_when_nothing_waits_for_a_vehicle() -> None:
    later = NOW + timedelta(hours=6)
    short = record(("medicine", 12, 5, 5))
    assert not due_for_closing(short, {}, NOW)
    assert due_for_closing(short, {}, later)
    holding = record(("medicine", 12, 5, 0))  # 5 reserved, no vehicle yet
    assert not due_for_closing(holding, {}, later)
    flying = record(("medicine", 12, 5, 0))
    assert not due_for_closing(flying, {("r1", "medicine"): 5}, later)
    scheduled = record(("medicine", 12, 0, 0), state=RequestState.SCHEDULED)
    assert not due_for_closing(scheduled, {}, later)
    nothing = record(("medicine", 12, 0, 0))
    assert due_for_closing(nothing, {}, later)


# --- one source of truth ----------------------------------------------------------------------


def test_the_store_and_the_ledger_rules_use_one_movement_table() -> None:
    assert repository.MOVEMENT_EFFECTS is MOVEMENT_EFFECTS
    assert inventory.MovementKind is MovementKind
    assert set(MOVEMENT_EFFECTS) == set(MovementKind)
    assert effect("adjust", -12) == (-12, 0)  # adjust is signed, like the ledger says
    assert effect("load", 3) == (-3, -3)
    assert quantity_problem("adjust", -5) is None
    assert quantity_problem("reserve", -5) is not None
    assert quantity_problem("adjust", 0) is not None
    ledger = inventory.Ledger()
    ledger.apply(inventory.Movement(MovementKind.RECEIVE, "W1", "mask", 10))
    assert ledger.apply(inventory.Movement(MovementKind.ADJUST, "W1", "mask", -4)).on_hand == 6


def test_planners_and_flight_plans_share_one_energy_model() -> None:
    spec = DroneSpec()
    assert spec.cruise_speed_mps == energy.CRUISE_SPEED_MPS == drone_delivery.CRUISE_SPEED_MPS
    assert spec.climb_speed_mps == energy.CLIMB_SPEED_MPS == drone_delivery.CLIMB_SPEED_MPS
    assert spec.descent_speed_mps == energy.DESCENT_SPEED_MPS == drone_delivery.DESCENT_SPEED_MPS
    assert spec.hover_per_min == energy.HOVER_PER_MIN
    # the whole-flight rate of flight plans is the model's rate with the full payload
    assert (
        pytest.approx(energy.HOVER_PER_MIN * energy.loaded_factor(spec.payload_kg))
        == drone_delivery.HOVER_POWER_FRACTION_PER_MIN
    )
    direct = energy.estimate_sortie(1000, 1000, 2.0, cruise_alt_m=40, drop_alt_m=8, drop_hold_s=4)
    assert estimate(spec, 1000, 1000, 2.0) == direct
