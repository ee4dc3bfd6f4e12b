"""The dispatch plan: drone or van per task, consolidation into stops, rolling re-plans."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.errors import ValidationError
from missions.routing import (
    CommunitySite,
    DecisionKind,
    DeliveryTask,
    DispatchProblem,
    DispatchSettings,
    Drone,
    Mode,
    StartedTrip,
    TravelMatrix,
    Trip,
    Van,
    VanRoutingSettings,
    plan_dispatch,
)
from missions.states import Priority

U, V, S = Priority.URGENT_MEDICAL, Priority.VULNERABLE, Priority.STANDARD
NOW = 9 * 3600.0
POINTS = [(0.0, 0.0), (1200.0, 300.0), (-800.0, 900.0), (600.0, -1500.0), (9000.0, 0.0)]
MATRIX = TravelMatrix.from_points(POINTS, speed_mps=8.0, labels=["dock", "A", "B", "C", "FAR"])
SITES = tuple(
    CommunitySite(cid, i, POINTS[i]) for i, cid in enumerate(["dock", "A", "B", "C", "FAR"]) if i
)
FAST = DispatchSettings(
    vans=VanRoutingSettings(
        time_limit_s=60, max_iterations=300, no_improvement_iterations=None, seed=2
    )
)


def problem(
    tasks: list[DeliveryTask], vans: list[Van] | None = None, drones: list[Drone] | None = None
) -> DispatchProblem:
    return DispatchProblem(
        now=NOW,
        tasks=tuple(tasks),
        communities=SITES,
        depot=0,
        matrix=MATRIX,
        vans=tuple(vans if vans is not None else [Van("van-1"), Van("van-2")]),
        drones=tuple(drones if drones is not None else [Drone("drone-1", (0.0, 0.0))]),
        shift_end=NOW + 8 * 3600,
    )


def t(
    tid: str,
    cid: str,
    boxes: int,
    kg: float,
    prio: Priority,
    hours: float = 5.0,
    drone_eligible: bool = True,
) -> DeliveryTask:
    return DeliveryTask(
        tid,
        cid,
        boxes,
        kg,
        prio,
        NOW + hours * 3600,
        request_ids=(f"r-{tid}",),
        drone_eligible=drone_eligible,
    )


def test_light_urgent_loads_fly_and_the_rest_drive() -> None:
    tasks = [
        t("med", "A", 1, 1.2, U),
        t("bulk", "B", 40, 320.0, S),
        t("elderly", "C", 2, 1.0, V),
        t("heavy-med", "A", 3, 9.0, U),
        t("liquid-med", "C", 1, 1.0, U, drone_eligible=False),
    ]
    plan = plan_dispatch(problem(tasks), FAST)
    modes = {o.task_id: o.mode for o in plan.outcomes}
    assert modes == {
        "med": Mode.DRONE,
        "bulk": Mode.VAN,
        "elderly": Mode.VAN,
        "heavy-med": Mode.VAN,
        "liquid-med": Mode.VAN,
    }
    assert "flown by drone" in plan.outcome("med").reason
    assert "over the 2.5 kg drone payload" in plan.outcome("heavy-med").reason
    assert "drones are kept for urgent light loads" in plan.outcome("elderly").reason
    assert "may not fly" in plan.outcome("liquid-med").reason
    assert plan.on_time_share == 1.0
    assert all(o.vehicle_id and o.plan_ref and o.delivered_at for o in plan.outcomes)


def test_a_task_no_drone_can_fly_falls_back_to_a_van_with_the_reason() -> None:
    plan = plan_dispatch(problem([t("far-med", "FAR", 1, 1.0, U)]), FAST)
    o = plan.outcome("far-med")
    assert o.mode is Mode.VAN
    assert "meant for a drone, but no drone can fly it" in o.reason and "out of range" in o.reason


def test_tasks_of_one_community_and_class_share_a_stop_and_big_ones_are_cut() -> None:
    tasks = [
        t("a1", "A", 30, 100.0, S, hours=2),
        t("a2", "A", 40, 100.0, S, hours=2.5),
        t("a3", "A", 10, 50.0, S, hours=4.5),  # outside the one-hour window of a1
        t("big", "B", 320, 900.0, S),
    ]
    plan = plan_dispatch(problem(tasks), FAST)
    by_stop = {s.id: s.task_ids for s in plan.stops}
    assert by_stop["A/standard/1"] == ("a1", "a2")
    assert by_stop["A/standard/2"] == ("a3",)
    parts = [tid for s in plan.stops for tid in s.task_ids if tid.startswith("big#")]
    assert parts == ["big#1", "big#2", "big#3"]
    assert [s.boxes for s in plan.stops if s.task_ids[0].startswith("big#")] == [150, 150, 20]
    assert plan.stops[0].deadline == NOW + 2 * 3600
    # the task is delivered when its last part is
    finish = max(v.finish for _, v in plan.vans.visits() if v.stop.task_ids[0].startswith("big"))
    assert plan.outcome("big").delivered_at == finish


def test_every_task_gets_an_outcome_with_reasons_even_when_unserved() -> None:
    tasks = [t(f"s{i}", "C", 150, 500.0, S) for i in range(12)]  # far more than one van-hour
    p = replace(problem(tasks, [Van("van-1")]), shift_end=NOW + 3600)
    plan = plan_dispatch(p, FAST)
    assert {o.task_id for o in plan.outcomes} == {f"s{i}" for i in range(12)}
    left = [o for o in plan.outcomes if o.mode is Mode.UNSERVED]
    assert left and all("no van time left" in o.reason for o in left)
    assert 0 < plan.on_time_share < 1


def test_a_van_failing_mid_trip_keeps_started_work_and_reassigns_the_rest() -> None:
    # three loads of 120 boxes due within 90 minutes: one van cannot do it alone
    tasks = [t(f"{c}{i}", c, 60, 240.0, S, hours=1.5) for c in "ABC" for i in range(2)]
    vans = [Van("van-1"), Van("van-2")]
    first = plan_dispatch(problem(tasks, vans), FAST)
    trip1 = first.vans.trips_of("van-1")[0]
    trip2 = first.vans.trips_of("van-2")[0]

    # both vans left the dock; van-1 broke down on its way to its first stop
    def started(trip: Trip, done: int) -> StartedTrip:
        rest = tuple(v.stop for v in trip.visits[done:])
        return StartedTrip(rest, next_arrival=trip.visits[done].arrival if rest else trip.return_at)

    broken = Van("van-1", available=False, started=started(trip1, 0))
    running = Van("van-2", started=started(trip2, 0))
    stranded = {v.stop.id for v in trip1.visits}
    started_ids = {tid for v in trip1.visits for tid in v.stop.task_ids} | {
        tid for v in trip2.visits for tid in v.stop.task_ids
    }
    open_tasks = [x for x in tasks if x.id not in started_ids]
    assert trip1.depart is not None
    later = replace(problem(open_tasks, [broken, running]), now=trip1.depart + 120)
    second = plan_dispatch(later, FAST, previous=first)

    assert not second.vans.trips_of("van-1")
    kept = second.vans.trips_of("van-2")[0]
    assert kept.started and [v.stop.id for v in kept.visits] == [v.stop.id for v in trip2.visits]
    moved = {v.stop.id for tr in second.vans.trips_of("van-2")[1:] for v in tr.visits}
    assert stranded <= moved
    kinds = {d.subject_id: d.kind for d in second.decisions if d.kind is DecisionKind.REASSIGNMENT}
    assert set(kinds) == stranded
    for sid in stranded:
        tids = next(v.stop.task_ids for _, v in second.vans.visits() if v.stop.id == sid)
        for tid in tids:
            assert second.outcome(tid).vehicle_id == "van-2"


def test_bad_tasks_are_refused() -> None:
    with pytest.raises(ValidationError):
        plan_dispatch(problem([t("x", "NOWHERE", 1, 1.0, S)]), FAST)
    with pytest.raises(ValidationError):
        plan_dispatch(problem([t("x", "A", 1, 1.0, S), t("x", "B", 1, 1.0, S)]), FAST)


def test_decision_records_are_json_for_the_store() -> None:
    import json

    tasks = [t("med", "A", 1, 1.2, U), t("bulk", "B", 40, 320.0, S), t("far", "FAR", 200, 9.0, S)]
    plan = plan_dispatch(problem(tasks), FAST)
    events = [d.as_event() for d in plan.decisions]
    assert json.loads(json.dumps(events, allow_nan=False)) == events
    kinds = {e["kind"] for e in events}
    assert {"assignment"} <= kinds
    assert all(e["reason"] for e in events)
