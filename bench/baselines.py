"""The two baselines ``bench.dispatch`` compares the service's dispatch against, each swapped into
the service in place of one of its parts, everything else unchanged:

* :func:`fcfs_share`: **first come, first served allocation**, in place of the weighted
  max-min rule (``missions.pools.share_pool``; installed through
  ``AllocationStep.share``). Requests take, in approval order, all they still want while the
  pool lasts; what a request already carries stays its own, as in the service. No community
  weights, no priority classes. The same planners then plan what it allocated, so the
  difference isolates what fair allocation and priorities buy.
* :func:`greedy_plan_vans`: a **greedy cheapest-insertion van router**, in place of PyVRP
  (``missions.routing.plan_vans``, which ``missions.shuttle.planner`` calls). Stops in class
  then deadline order, each inserted where it adds the least van time (any position of any
  planned trip with room, or a new trip), as long as the van is back by the end of its shift.
  Same stops, same timing model (``missions.routing.schedule_trips``), same allocation, so the
  difference isolates what routing buys.

Both are pure and have the signatures of what they replace.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

from missions.allocation import AllocationRule, jain_index
from missions.pools import CommunityOutcome, PoolLine, PoolOutcome
from missions.routing import (
    Decision,
    DecisionKind,
    Trip,
    Unserved,
    Van,
    VanPlan,
    VanProblem,
    VanRoutingSettings,
    VanStop,
    schedule_trips,
)
from missions.routing.shuttle import continue_started, loading_time, service_time


def fcfs_share(
    warehouse_id: str,
    sku_id: str,
    available: int,
    wants: Sequence[PoolLine],
    weights: Mapping[str, int | float],
) -> tuple[PoolOutcome, dict[str, int], dict[str, str]]:
    """First come, first served (see the module docstring); the signature of
    ``missions.pools.share_pool``."""
    carried = sum(w.carried for w in wants)
    held = sum(w.held for w in wants)
    free = available + held
    targets: dict[str, int] = {}
    reasons: dict[str, str] = {}

    def arrival(w: PoolLine) -> tuple[float, str]:
        r = w.rec.request
        return ((r.approved_at or r.created_at).timestamp(), r.id)

    for w in sorted(wants, key=arrival):
        if w.want <= 0:
            continue
        give = min(w.want, free)
        free -= give
        targets[w.request_id] = give
        reasons[w.request_id] = "first come, first served (baseline)"
    by_c: dict[str, list[PoolLine]] = defaultdict(list)
    for w in wants:
        by_c[w.community_id].append(w)
    communities = tuple(
        CommunityOutcome(
            community_id=c,
            weight=float(weights[c]),
            asked=sum(w.item.quantity for w in ws),
            carried=sum(w.carried for w in ws),
            allocated=sum(w.carried + targets.get(w.request_id, 0) for w in ws),
            reason="first come, first served (baseline)",
        )
        for c, ws in sorted(by_c.items())
    )
    asked = sum(co.asked for co in communities)
    fractions = [co.satisfied for co in communities]
    ws_ = [co.weight for co in communities]
    outcome = PoolOutcome(
        warehouse_id=warehouse_id,
        sku_id=sku_id,
        # the rule enum names the service's cases only; the reasons say "first come"
        rule=AllocationRule.COVERED
        if asked <= available + held + carried
        else AllocationRule.TOO_FEW,
        available=available,
        held=held,
        carried=carried,
        asked=asked,
        allocated=sum(co.allocated for co in communities),
        level=0.0,
        jain_index=jain_index(fractions, ws_),
        jain_unweighted=jain_index(fractions),
        starved=tuple(co.community_id for co in communities if co.allocated == 0),
        communities=communities,
    )
    return outcome, targets, reasons


def greedy_plan_vans(
    problem: VanProblem,
    settings: VanRoutingSettings | None = None,
    *,
    previous: VanPlan | None = None,
) -> VanPlan:
    """Greedy cheapest insertion (see the module docstring); the signature of
    ``missions.routing.plan_vans`` (``previous`` is ignored: nothing to warm-start)."""
    del previous
    cfg = settings or VanRoutingSettings()
    t0 = time.perf_counter()
    m, depot = problem.matrix, problem.depot
    vans = [v for v in problem.vans if v.available]
    kept: dict[str, Trip] = {}
    free_at: dict[str, float] = {}
    for v in vans:
        if v.started is not None:
            kept[v.id] = continue_started(v, depot=depot, matrix=m, settings=cfg)
            free_at[v.id] = kept[v.id].return_at
        else:
            free_at[v.id] = max(problem.now, v.ready_at or problem.now)
    trips: dict[str, list[list[VanStop]]] = {v.id: [] for v in vans}
    unserved: list[Unserved] = []

    def fits(v: Van, trip: Sequence[VanStop], s: VanStop) -> bool:
        return (
            sum(x.boxes for x in trip) + s.boxes <= v.max_boxes
            and sum(x.kg for x in trip) + s.kg <= v.max_kg + 1e-9
        )

    def leg(a: int, b: int) -> float:
        return m.seconds(a, b) + (cfg.stop_fixed_s if b != a and b != depot else 0.0)

    def within_shift(v: Van, plan: list[list[VanStop]]) -> bool:
        sched = schedule_trips(v.id, free_at[v.id], plan, depot=depot, matrix=m, settings=cfg)
        end = v.shift_end if v.shift_end is not None else problem.shift_end
        if sched and sched[-1].return_at > end + 1e-6:
            return False
        if v.range_m is not None and sched and sched[0].distance_m > v.range_m:
            return False
        return not (v.max_trips is not None and len(plan) > v.max_trips)

    order = sorted(
        problem.stops,
        key=lambda s: (s.priority.rank, s.deadline if s.deadline is not None else math.inf, s.id),
    )
    for s in order:
        if math.isinf(m.seconds(depot, s.place)):
            unserved.append(Unserved(s, "no road from the dock to its gate"))
            continue
        best: tuple[float, str, list[list[VanStop]]] | None = None
        for v in vans:
            if s.boxes > v.max_boxes or s.kg > v.max_kg + 1e-9:
                continue
            plan = trips[v.id]
            options: list[tuple[float, int, int]] = []
            for ti, trip in enumerate(plan):
                if not fits(v, trip, s):
                    continue
                places = [depot, *(x.place for x in trip), depot]
                for pos in range(len(trip) + 1):
                    a, b = places[pos], places[pos + 1]
                    added = leg(a, s.place) + leg(s.place, b) - leg(a, b)
                    added += service_time(s, cfg) + cfg.load_per_box_s * s.boxes
                    options.append((added, ti, pos))
            new_trip = (
                loading_time(s.boxes, cfg) + leg(depot, s.place) + service_time(s, cfg)
                + m.seconds(s.place, depot)
            )  # fmt: skip
            options.append((new_trip, len(plan), 0))
            for added, ti, pos in sorted(options):
                trial = [list(t) for t in plan]
                if ti == len(trial):
                    trial.append([s])
                else:
                    trial[ti].insert(pos, s)
                if within_shift(v, trial):
                    if best is None or (added, v.id) < (best[0], best[1]):
                        best = (added, v.id, trial)
                    break
        if best is None:
            unserved.append(Unserved(s, "no van can take it and be back by the end of its shift"))
            continue
        trips[best[1]] = best[2]
    out: list[Trip] = list(kept.values())
    decisions: list[Decision] = []
    for v in vans:
        for planned in schedule_trips(
            v.id, free_at[v.id], trips[v.id], depot=depot, matrix=m, settings=cfg
        ):
            out.append(planned)
            for visit in planned.visits:
                decisions.append(
                    Decision(
                        kind=DecisionKind.ASSIGNMENT,
                        subject_id=visit.stop.id,
                        reason=f"greedy insertion (baseline): {planned.ref}",
                        vehicle_id=v.id,
                        plan_ref=planned.ref,
                        request_ids=visit.stop.request_ids,
                    )
                )
    for u in unserved:
        decisions.append(
            Decision(
                kind=DecisionKind.UNSERVED,
                subject_id=u.stop.id,
                reason=u.reason,
                request_ids=u.stop.request_ids,
            )
        )
    cost = sum(t.return_at - (t.load_start or problem.now) for t in out)
    return VanPlan(
        now=problem.now,
        trips=tuple(out),
        unserved=tuple(unserved),
        decisions=tuple(decisions),
        feasible=not any(u.stop.required for u in unserved),
        cost=cost,
        runtime_s=time.perf_counter() - t0,
        iterations=0,
    )
