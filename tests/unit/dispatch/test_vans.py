"""Van routing: capacity, windows, shift end, deadlines, priorities, re-planning.

PyVRP runs with an iteration limit (and a generous time limit that never binds), so every
result here is deterministic and the tests stay fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleet.errors import ValidationError
from missions.routing import (
    DecisionKind,
    StartedTrip,
    TravelMatrix,
    Van,
    VanProblem,
    VanRoutingSettings,
    VanStop,
    plan_vans,
    schedule_trips,
)
from missions.states import Priority

FAST = VanRoutingSettings(
    time_limit_s=60.0, max_iterations=300, no_improvement_iterations=None, seed=3
)
T0 = 8 * 3600.0
"""Shift start in these tests (08:00)."""

# dock at 0, gates east at 1, 2, 3 km and one 12 km away; 10 m/s, straight roads
POINTS = [(0.0, 0.0), (1000.0, 0.0), (2000.0, 0.0), (3000.0, 0.0), (12000.0, 0.0)]
MATRIX = TravelMatrix.from_points(POINTS, speed_mps=10.0, detour=1.0)


def problem(
    stops: list[VanStop], vans: list[Van] | None = None, *, hours: float = 8.0, now: float = T0
) -> VanProblem:
    return VanProblem(
        now=now,
        depot=0,
        matrix=MATRIX,
        stops=tuple(stops),
        vans=tuple(vans if vans is not None else [Van("van-1")]),
        shift_end=T0 + hours * 3600,
        shift_start=T0,
    )


def test_schedule_is_exact_for_a_hand_computed_trip() -> None:
    s = VanRoutingSettings(dock_fixed_s=300, load_per_box_s=5, stop_fixed_s=120, unload_per_box_s=4)
    a = VanStop("a", 1, 10)
    b = VanStop("b", 2, 20, earliest=T0 + 3600)
    (trip,) = schedule_trips("van-1", T0, [[a, b]], depot=0, matrix=MATRIX, settings=s)
    assert trip.load_start == T0
    assert trip.depart == T0 + 300 + 30 * 5
    va, vb = trip.visits
    assert va.arrival == pytest.approx(trip.depart + 100 + 120)
    assert va.finish == pytest.approx(va.arrival + 40)
    assert vb.arrival == pytest.approx(va.finish + 100 + 120)
    assert vb.start == T0 + 3600  # waits for the gate
    assert vb.finish == T0 + 3600 + 80
    assert trip.return_at == pytest.approx(vb.finish + 200)
    assert trip.distance_m == pytest.approx(4000)


def test_capacity_in_boxes_and_kg_splits_work_into_trips() -> None:
    stops = [VanStop(f"s{i}", 1 + i % 3, 60, kg=100.0) for i in range(5)]  # 300 boxes
    plan = plan_vans(problem(stops), FAST)
    assert not plan.unserved
    assert len(plan.trips) >= 3
    assert all(t.boxes <= 150 for t in plan.trips)
    heavy = [VanStop(f"h{i}", 1, 10, kg=400.0) for i in range(5)]  # 2000 kg > 1000 kg
    plan = plan_vans(problem(heavy), FAST)
    assert not plan.unserved
    assert all(t.kg <= 1000.0 for t in plan.trips)
    assert len(plan.trips) >= 3
    # trips run back to back
    for a, b in zip(plan.trips, plan.trips[1:], strict=False):
        assert b.load_start is not None and b.load_start >= a.return_at - 1e-6


def test_a_stop_larger_than_any_van_is_unserved_with_the_reason() -> None:
    plan = plan_vans(problem([VanStop("huge", 1, 200)]), FAST)
    assert [u.stop.id for u in plan.unserved] == ["huge"]
    assert "carries 150 boxes, the stop needs 200" in plan.unserved[0].reason
    d = next(d for d in plan.decisions if d.subject_id == "huge")
    assert d.kind is DecisionKind.UNSERVED


def test_gate_hours_are_respected_or_the_stop_is_refused() -> None:
    opens = VanStop("opens-late", 1, 10, earliest=T0 + 2 * 3600)
    closed = VanStop("closed", 2, 10, latest=T0 + 60)  # closes before any van can get there
    plan = plan_vans(problem([opens, closed]), FAST)
    hit = plan.visit("opens-late")
    assert hit is not None and hit[1].start >= T0 + 2 * 3600
    assert [u.stop.id for u in plan.unserved] == ["closed"]
    assert "after it closes at 08:01" in plan.unserved[0].reason


def test_the_shift_end_is_a_hard_limit() -> None:
    far = VanStop("far", 4, 10)  # 12 km: 20 min each way
    plan = plan_vans(problem([far], hours=0.5), FAST)
    assert [u.stop.id for u in plan.unserved] == ["far"]
    assert "after its shift ends at 08:30" in plan.unserved[0].reason
    plan = plan_vans(problem([far], hours=2), FAST)
    assert not plan.unserved
    assert max(t.return_at for t in plan.trips) <= T0 + 2 * 3600


def test_an_infeasible_deadline_is_reported_not_hidden() -> None:
    late = VanStop("late", 4, 10, deadline=T0 + 600)  # 20 min drive; due in 10
    plan = plan_vans(problem([late]), FAST)
    _, visit = plan.visit("late") or (None, None)
    assert visit is not None and visit.on_time is False
    dl = [d for d in plan.decisions if d.kind is DecisionKind.DEADLINE]
    assert [d.subject_id for d in dl] == ["late"]
    assert "cannot be met" in dl[0].reason
    assert plan.late == [visit]


def test_deadlines_order_the_trips() -> None:
    # two full loads; the later-due one must wait for the second trip
    a = VanStop("due-late", 3, 150, deadline=T0 + 5 * 3600)
    b = VanStop("due-soon", 3, 150, deadline=T0 + 45 * 60)
    plan = plan_vans(problem([a, b]), FAST)
    assert [v.stop.id for t in plan.trips for v in t.visits] == ["due-soon", "due-late"]
    assert all(v.on_time for _, v in plan.visits())


def test_scarce_van_time_goes_to_the_more_urgent_stop() -> None:
    # one 40-minute shift, two stops at opposite ends of the time budget: only one fits
    std = VanStop("standard", 3, 100, priority=Priority.STANDARD, deadline=T0 + 3600)
    urg = VanStop("urgent", 2, 100, priority=Priority.URGENT_MEDICAL, deadline=T0 + 3600)
    vans = [Van("van-1", max_trips=1)]
    plan = plan_vans(problem([std, urg], vans, hours=0.75), FAST)
    assert [v.stop.id for _, v in plan.visits()] == ["urgent"]
    assert [u.stop.id for u in plan.unserved] == ["standard"]
    assert "no van time left" in plan.unserved[0].reason


def test_boxes_not_yet_at_the_dock_delay_loading() -> None:
    stop = VanStop("later", 1, 10, ready_at=T0 + 3600)
    plan = plan_vans(problem([stop]), FAST)
    assert plan.trips[0].load_start == T0 + 3600


def test_driving_range_limits_what_a_van_takes() -> None:
    far = VanStop("far", 4, 10)
    plan = plan_vans(problem([far], [Van("van-1", range_m=10_000)]), FAST)
    assert "km of range left" in plan.unserved[0].reason


def test_no_road_to_a_gate_is_a_reason() -> None:
    d = MATRIX.distance_m.copy()
    t = MATRIX.duration_s.copy()
    d[0, 2] = t[0, 2] = math.inf
    m = TravelMatrix(d, t)
    p = VanProblem(T0, 0, m, (VanStop("cut-off", 2, 5),), (Van("van-1"),), T0 + 3600)
    plan = plan_vans(p, FAST)
    assert "no road between the dock" in plan.unserved[0].reason


def test_started_trip_is_kept_and_new_trips_follow_it() -> None:
    remaining = (VanStop("on-board-1", 3, 40), VanStop("on-board-2", 2, 40))
    van = Van("van-1", started=StartedTrip(remaining, next_arrival=T0 + 600, ref="m-7"))
    new = [VanStop("new", 1, 30)]
    plan = plan_vans(problem(new, [van]), FAST)
    kept = plan.trips_of("van-1")[0]
    assert kept.started and kept.number == 0
    assert [v.stop.id for v in kept.visits] == ["on-board-1", "on-board-2"]
    assert kept.visits[0].arrival == T0 + 600
    nxt = plan.trips_of("van-1")[1]
    assert nxt.load_start is not None and nxt.load_start >= kept.return_at
    assert {d.subject_id for d in plan.decisions if d.kind is DecisionKind.KEPT} == {
        "on-board-1",
        "on-board-2",
    }


def test_a_van_failing_mid_trip_hands_its_remaining_stops_to_the_others() -> None:
    remaining = (VanStop("was-on-1", 3, 40, deadline=T0 + 4 * 3600), VanStop("was-on-2", 2, 20))
    broken = Van("van-1", available=False, started=StartedTrip(remaining, next_arrival=T0 + 300))
    busy = Van(
        "van-2",
        started=StartedTrip((VanStop("own", 1, 30),), next_arrival=T0 + 400),
    )
    plan = plan_vans(problem([VanStop("queued", 1, 10)], [broken, busy]), FAST)
    assert not plan.trips_of("van-1")
    trips = plan.trips_of("van-2")
    assert trips[0].started and [v.stop.id for v in trips[0].visits] == ["own"]
    moved = {v.stop.id for t in trips[1:] for v in t.visits}
    assert {"was-on-1", "was-on-2", "queued"} <= moved
    reassigned = {d.subject_id for d in plan.decisions if d.kind is DecisionKind.REASSIGNMENT}
    assert reassigned == {"was-on-1", "was-on-2"}
    why = next(d for d in plan.decisions if d.subject_id == "was-on-1" and d.vehicle_id)
    alts = [a.vehicle_id for d in plan.decisions for a in d.alternatives]
    assert "van-1" in alts
    assert why is not None


def test_no_available_van_leaves_everything_unserved_with_reasons() -> None:
    plan = plan_vans(problem([VanStop("a", 1, 5)], [Van("van-1", available=False)]), FAST)
    assert "van-1 is out of service" in plan.unserved[0].reason


def test_assignment_decisions_explain_trip_and_timing() -> None:
    stop = VanStop("a", 2, 12, deadline=T0 + 3 * 3600, request_ids=("req-1",))
    plan = plan_vans(problem([stop], [Van("van-1"), Van("van-2", available=False)]), FAST)
    d = next(d for d in plan.decisions if d.kind is DecisionKind.ASSIGNMENT)
    assert d.subject_id == "a" and d.vehicle_id == "van-1" and d.request_ids == ("req-1",)
    assert "trip 1" in d.reason and "before its 11:00 deadline" in d.reason
    assert any(a.vehicle_id == "van-2" and "out of service" in a.reason for a in d.alternatives)
    assert d.as_event()["alternatives"][0]["vehicle_id"] == "van-2"


def test_same_seed_same_plan() -> None:
    rng = np.random.default_rng(5)
    stops = [
        VanStop(
            f"s{i}",
            int(rng.integers(1, 4)),
            int(rng.integers(5, 60)),
            deadline=T0 + float(rng.uniform(1, 5)) * 3600,
        )
        for i in range(15)
    ]
    p = problem(stops, [Van("a"), Van("b")])
    one = plan_vans(p, FAST)
    two = plan_vans(p, FAST)
    assert [(t.vehicle_id, [v.stop.id for v in t.visits]) for t in one.trips] == [
        (t.vehicle_id, [v.stop.id for v in t.visits]) for t in two.trips
    ]


def test_previous_plan_warm_starts_the_solver() -> None:
    rng = np.random.default_rng(9)
    stops = [
        VanStop(
            f"s{i}",
            int(rng.integers(1, 4)),
            int(rng.integers(5, 60)),
            deadline=T0 + float(rng.uniform(1, 5)) * 3600,
        )
        for i in range(20)
    ]
    p = problem(stops, [Van("a"), Van("b")])
    first = plan_vans(p, FAST)
    again = plan_vans(
        p,
        VanRoutingSettings(time_limit_s=60, max_iterations=1, no_improvement_iterations=None),
        previous=first,
    )
    assert again.cost <= first.cost + 1e-6


@pytest.mark.parametrize(
    "stops",
    [
        [VanStop("a", 1, 5), VanStop("a", 2, 5)],
        [VanStop("a", 9, 5)],
        [VanStop("a", 0, 5)],  # the dock is not a gate
        [VanStop("a", 1, 0)],
        [VanStop("a", 1, 5, earliest=T0 + 10, latest=T0)],
    ],
)
def test_malformed_stops_are_refused(stops: list[VanStop]) -> None:
    with pytest.raises(ValidationError):
        plan_vans(problem(stops), FAST)


def test_travel_matrix_validation() -> None:
    with pytest.raises(ValidationError):
        TravelMatrix(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValidationError):
        TravelMatrix(np.array([[0, -1], [1, 0]]), np.zeros((2, 2)))
    with pytest.raises(ValidationError):
        TravelMatrix(np.array([[0, np.inf], [1, 0]]), np.zeros((2, 2)))
    m = TravelMatrix.from_points([(0, 0), (300, 400)], speed_mps=5, detour=1.2)
    assert m.metres(0, 1) == pytest.approx(600)
    assert m.seconds(1, 0) == pytest.approx(120)


def test_a_van_joining_later_takes_work_only_from_its_shift_start() -> None:
    joins = T0 + 2 * 3600
    stops = [VanStop(f"s{i}", 1 + i % 3, 150, deadline=T0 + 3.5 * 3600) for i in range(8)]
    vans = [Van("early"), Van("late", shift_start=joins)]
    plan = plan_vans(problem(stops, vans), FAST)
    assert plan.trips_of("late"), "the joining van is used"
    assert all(t.load_start is not None and t.load_start >= joins for t in plan.trips_of("late"))
