"""The dispatch benchmark's baselines and the allocation seam they plug into: first come, first
served allocation and the greedy insertion router, on hand-checked cases (no timing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.baselines import fcfs_share, greedy_plan_vans
from fleet.store.repository import RequestRecord
from fleet.store.tables import Request, RequestItem
from missions.allocation_step import AllocationStep
from missions.pools import PoolLine, share_pool
from missions.routing import TravelMatrix, Van, VanProblem, VanRoutingSettings, VanStop
from missions.states import Priority

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def line(rid: str, community: str, minute: int, asked: int, carried: int = 0, held: int = 0,
         priority: Priority = Priority.STANDARD) -> PoolLine:  # fmt: skip
    req = Request(
        id=rid,
        kind="delivery",
        community_id=community,
        state="approved",
        priority=priority,
        created_at=T0 + timedelta(minutes=minute),
        approved_at=T0 + timedelta(minutes=minute),
        deadline=T0 + timedelta(hours=5),
    )
    item = RequestItem(request_id=rid, sku_id="mask", quantity=asked, allocated=carried + held)
    return PoolLine(RequestRecord(req, [item]), item, carried, held)


def test_first_come_takes_all_it_wants_while_the_pool_lasts() -> None:
    wants = [
        line("late-urgent", "B", 30, 5, priority=Priority.URGENT_MEDICAL),
        line("first", "A", 0, 6),
        line("second", "A", 10, 6),
    ]
    outcome, targets, reasons = fcfs_share("W1", "mask", 10, wants, {"A": 100, "B": 1000})
    # arrival order only: no weights, no classes
    assert targets == {"first": 6, "second": 4, "late-urgent": 0}
    assert outcome.allocated == 10 and outcome.asked == 17
    assert outcome.starved == ("B",)
    assert all("first come" in r for r in reasons.values())
    _, fair_targets, _ = share_pool("W1", "mask", 10, wants, {"A": 100, "B": 1000})
    assert fair_targets["late-urgent"] == 5  # the service's rule shares by weight and class


def test_what_a_request_carries_stays_its_own_and_held_units_are_shared_again() -> None:
    wants = [line("early", "A", 0, 10, carried=4), line("later", "B", 5, 10, held=3)]
    outcome, targets, _ = fcfs_share("W1", "mask", 2, wants, {"A": 1, "B": 1})
    # in play: 2 available + 3 held; "early" still wants 6 and comes first
    assert targets == {"early": 5, "later": 0}
    assert {c.community_id: c.allocated for c in outcome.communities} == {"A": 9, "B": 0}


def test_the_allocation_step_shares_with_the_policy_it_is_given() -> None:
    step = AllocationStep.__new__(AllocationStep)
    AllocationStep.__init__(step, ctx=None, serves=None)  # type: ignore[arg-type]
    assert step.share is share_pool
    AllocationStep.__init__(step, ctx=None, share=fcfs_share)  # type: ignore[arg-type]
    assert step.share is fcfs_share


def problem(stops: list[VanStop], vans: list[Van], hours: float = 8.0) -> VanProblem:
    xy = [(0.0, 0.0), (1000.0, 0.0), (0.0, 1000.0), (5000.0, 0.0)]
    return VanProblem(
        now=0.0,
        depot=0,
        matrix=TravelMatrix.from_points(xy, speed_mps=5.0),
        stops=tuple(stops),
        vans=tuple(vans),
        shift_end=hours * 3600.0,
    )


FAST = VanRoutingSettings(dock_fixed_s=60.0, load_per_box_s=1.0, stop_fixed_s=60.0,
                          unload_per_box_s=1.0)  # fmt: skip


def test_greedy_inserts_into_trips_with_room_and_opens_new_ones_when_full() -> None:
    stops = [VanStop("a", 1, 60), VanStop("b", 2, 60), VanStop("c", 1, 60)]
    plan = greedy_plan_vans(problem(stops, [Van("v1", max_boxes=130)]), FAST)
    trips = plan.trips_of("v1")
    assert [sorted(v.stop.id for v in t.visits) for t in trips] == [["a", "b"], ["c"]]
    assert trips[0].return_at <= (trips[1].load_start or 0.0)  # back to back, exact schedule
    assert not plan.unserved
    assert {d.subject_id for d in plan.decisions} == {"a", "b", "c"}


def test_greedy_serves_classes_then_deadlines_first_and_leaves_out_what_does_not_fit() -> None:
    stops = [
        VanStop("std", 3, 10, deadline=100.0),
        VanStop("urgent", 3, 10, deadline=5000.0, priority=Priority.URGENT_MEDICAL),
    ]
    # a shift that allows one round trip to the far gate (5 km at 5 m/s x 1.3, twice)
    plan = greedy_plan_vans(problem(stops, [Van("v1", max_boxes=10)], hours=1.0), FAST)
    assert [v.stop.id for _, v in plan.visits()] == ["urgent"]
    assert [u.stop.id for u in plan.unserved] == ["std"]
    assert "end of its shift" in plan.unserved[0].reason
