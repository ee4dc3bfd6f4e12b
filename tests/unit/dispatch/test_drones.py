"""Drone assignment: energy model, payload, range with reserve, availability, deadlines."""

from __future__ import annotations

import pytest

from fleet.errors import ValidationError
from missions.routing import (
    DecisionKind,
    Drone,
    DroneAssignmentSettings,
    DroneSpec,
    DroneTask,
    assign_drones,
    estimate,
)
from missions.states import Priority

NOW = 10 * 3600.0
SPEC = DroneSpec()


def task(tid: str, x: float, kg: float = 1.0, **kw: object) -> DroneTask:
    return DroneTask(tid, (x, 0.0), kg, **kw)  # type: ignore[arg-type]


def test_energy_model_by_hand() -> None:
    e = estimate(SPEC, 1500.0, 1500.0, 2.0)
    factor = 1 + 0.07 * 2.0
    loaded_vertical_min = (10 + 40 / 1.5 + 32 / 1.0) / 60
    empty_vertical_min = (4 + 32 / 1.5 + 40 / 1.0) / 60
    expected = factor * (1.5 * 0.10 + loaded_vertical_min * 0.030) + (
        1.5 * 0.10 + empty_vertical_min * 0.030
    )
    assert e.energy == pytest.approx(expected)
    assert e.to_drop_s == pytest.approx(10 + 40 / 1.5 + 1500 / 5 + 32)
    assert e.flight_s == pytest.approx(e.to_drop_s + 1500 / 5 + 4 + 32 / 1.5 + 40)
    # heavier loads cost more; distance costs more
    assert estimate(SPEC, 1500, 1500, 2.5).energy > e.energy
    assert estimate(SPEC, 2000, 2000, 2.0).energy > e.energy


def test_the_earliest_safe_drop_wins_and_others_are_explained() -> None:
    near = Drone("near", (1000.0, 0.0))
    far = Drone("far", (-500.0, 0.0))
    plan = assign_drones([task("t1", 2000.0, deadline=NOW + 3600)], [far, near], NOW)
    (s,) = plan.sorties
    assert s.drone_id == "near" and s.on_time
    assert s.battery_after == pytest.approx(1.0 - s.energy)
    d = next(d for d in plan.decisions if d.kind is DecisionKind.ASSIGNMENT)
    assert d.vehicle_id == "near" and "drops at" in d.reason
    (alt,) = d.alternatives
    assert alt.vehicle_id == "far" and alt.feasible and "could drop at" in alt.reason


def test_payload_is_never_exceeded() -> None:
    small = Drone("small", (0.0, 0.0))
    big = Drone("big", (0.0, 0.0), DroneSpec(payload_kg=5.0))
    plan = assign_drones([task("heavy", 500.0, kg=3.2)], [small, big], NOW)
    assert plan.sorties[0].drone_id == "big"
    plan = assign_drones([task("heavy", 500.0, kg=3.2)], [small], NOW)
    assert not plan.sorties
    assert "small carries 2.5 kg, the load is 3.2 kg" in plan.unassigned[0].reason
    assert plan.decisions[0].kind is DecisionKind.UNSERVED


def test_range_with_reserve_is_never_exceeded() -> None:
    # 75 % usable: the round trip to 4 km does not fit, to 2 km does
    plan = assign_drones([task("far", 4000.0), task("ok", 2000.0)], [Drone("d", (0, 0))], NOW)
    assert [s.task.id for s in plan.sorties] == ["ok"]
    assert "out of range" in plan.unassigned[0].reason
    assert "plus the 25% reserve" in plan.unassigned[0].reason
    for s in plan.sorties:
        assert s.battery_after >= SPEC.reserve_fraction - 1e-9


def test_low_battery_means_a_swap_first_or_a_refusal() -> None:
    low = Drone("low", (0.0, 0.0), battery=0.4)
    plan = assign_drones([task("t", 2000.0)], [low], NOW)
    (s,) = plan.sorties
    assert s.swapped and s.takeoff == NOW + SPEC.swap_s and s.battery_before == 1.0
    stuck = Drone("stuck", (0.0, 0.0), battery=0.4, can_swap=False)
    plan = assign_drones([task("t", 2000.0)], [stuck], NOW)
    assert "no charged battery is at its pad" in plan.unassigned[0].reason


def test_unavailable_drones_get_no_work() -> None:
    down = Drone("down", (0.0, 0.0), available=False, why_unavailable="down: lost link")
    up = Drone("up", (5000.0, 0.0))
    plan = assign_drones([task("t", 4000.0)], [down, up], NOW)
    assert plan.sorties[0].drone_id == "up"
    d = next(d for d in plan.decisions if d.kind is DecisionKind.ASSIGNMENT)
    assert any(a.vehicle_id == "down" and "lost link" in a.reason for a in d.alternatives)
    plan = assign_drones([task("t", 100.0)], [down], NOW)
    assert not plan.sorties and "lost link" in plan.unassigned[0].reason


def test_one_drone_flies_sorties_back_to_back_and_battery_runs_down() -> None:
    tasks = [task(f"t{i}", 1500.0, deadline=NOW + 4 * 3600) for i in range(4)]
    plan = assign_drones(tasks, [Drone("d", (0.0, 0.0))], NOW)
    assert [s.number for s in plan.sorties] == [1, 2, 3, 4]
    for a, b in zip(plan.sorties, plan.sorties[1:], strict=False):
        assert b.takeoff >= a.ready_again
        assert b.battery_before == pytest.approx(1.0 if b.swapped else a.battery_after)
    assert any(s.swapped for s in plan.sorties)  # ~40 % per sortie: a swap is needed


def test_urgent_first_then_earlier_deadline() -> None:
    tasks = [
        task("std", 1000.0, priority=Priority.STANDARD, deadline=NOW + 600),
        task("urgent-late", 1000.0, deadline=NOW + 7200),
        task("urgent-soon", 1000.0, deadline=NOW + 3600),
    ]
    plan = assign_drones(tasks, [Drone("d", (0.0, 0.0))], NOW)
    assert [s.task.id for s in plan.sorties] == ["urgent-soon", "urgent-late", "std"]


def test_an_infeasible_deadline_is_reported() -> None:
    hopeless = task("t", 2000.0, deadline=NOW + 60)
    plan = assign_drones([hopeless], [Drone("d", (0.0, 0.0))], NOW)
    assert plan.sorties[0].on_time is False
    dl = [d for d in plan.decisions if d.kind is DecisionKind.DEADLINE]
    assert len(dl) == 1 and "cannot meet" in dl[0].reason and "min late" in dl[0].reason
    plan = assign_drones(
        [hopeless], [Drone("d", (0.0, 0.0))], NOW, DroneAssignmentSettings(allow_late=False)
    )
    assert not plan.sorties and "left for the vans" in plan.unassigned[0].reason


def test_deadline_risk_prefers_a_safe_drone_over_a_marginal_one() -> None:
    # "busy" is closer but free later: it would drop inside the risk margin
    busy = Drone("busy", (1500.0, 0.0), ready_at=NOW + 420)
    idle = Drone("idle", (0.0, 0.0))
    e_idle = estimate(SPEC, 2000, 2000, 1.0)
    deadline = NOW + e_idle.to_drop_s + 400  # idle: 400 s slack; busy drops later
    plan = assign_drones([task("t", 2000.0, deadline=deadline)], [busy, idle], NOW)
    assert plan.sorties[0].drone_id == "idle"


def test_bad_input() -> None:
    with pytest.raises(ValidationError):
        assign_drones([task("a", 1.0), task("a", 2.0)], [Drone("d", (0, 0))], NOW)
    with pytest.raises(ValidationError):
        DroneSpec(reserve_fraction=1.0)
