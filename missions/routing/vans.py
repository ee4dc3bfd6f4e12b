"""Van routing: multi-stop, multi-trip shuttle plans for a shift, optimised with PyVRP.

One warehouse dock (``depot`` place) and community gates (the other places of a
:class:`~missions.routing.matrix.TravelMatrix`). Every van runs trips: load at the dock, drive
to one or more gates, unload, come back, load again, until its shift ends. The plan covers the
rest of the shift; only trips a van has *started* are fixed (rolling horizon).

**Model handed to PyVRP** (version 0.14, multi-trip through reload depots):

* one vehicle type per van: capacity in boxes and in grams, earliest start when the van is
  free at the dock, latest return at its shift end, reload at the dock between trips
  (``max_trips`` caps them), optional driving range (``max_distance``);
* the dock's service time is the loading time of a *full* van (``dock_fixed_s +
  max_boxes * load_per_box_s``): PyVRP charges depot service per visit, not per box, so the
  model is conservative and every time it computes is an upper bound of the real one;
* one client per stop: unloading time as service, the gate's opening hours as a hard time
  window, the moment its boxes are at the dock as release time. Parking at a gate
  (``stop_fixed_s``) is added to the travel time into a gate, so consecutive stops at the same
  gate pay it once;
* the deadline as a *soft* window, modelled as two mutually exclusive copies of the stop (a PyVRP
  client group): an *on-time* copy whose window closes ``risk_margin_s`` before the deadline
  and a *late* copy open until the shift ends. Visiting the late copy costs the late penalty,
  leaving the stop out costs the non-service penalty; both grow with the box count and are
  multiplied by the priority class weight (4, 2, 1), so urgent work is served and served first;
* cost = ``time_weight`` per second of van time + ``distance_weight`` per metre + penalties.

After solving, the schedule is recomputed exactly (loading time of the actual boxes), which
can only make times earlier, and re-checked against every hard limit before it is returned.
Stops that no van can take get a reason; deadlines no van can meet are reported as such.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from fleet.errors import ValidationError
from missions.priorities import class_label, class_weight
from missions.routing.decisions import Alternative, Decision, DecisionKind, hhmm
from missions.routing.shuttle import (
    StartedTrip,
    Trip,
    Unserved,
    Van,
    VanPlan,
    VanProblem,
    VanRoutingSettings,
    VanStop,
    Visit,
    continue_started,
    schedule_trips,
    service_time,
)
from missions.routing.vrp import SolverAnswer, VanContext, model_loading, solve

__all__ = [
    "StartedTrip",
    "Trip",
    "Unserved",
    "Van",
    "VanPlan",
    "VanProblem",
    "VanRoutingSettings",
    "VanStop",
    "Visit",
    "plan_vans",
]

_EPS = 1e-9


@dataclass
class _Prepared:
    vans: list[VanContext]
    pool: list[VanStop]
    reassigned: dict[str, str] = field(default_factory=dict)
    """stop id -> van it was taken from"""


def plan_vans(
    problem: VanProblem,
    settings: VanRoutingSettings | None = None,
    *,
    previous: VanPlan | None = None,
) -> VanPlan:
    """Plan the rest of the shift for ``problem.vans`` (see the module docstring).

    Trips vans have started are kept; the stops of a started trip whose van is no longer
    available are planned again (reported as reassignments). ``previous`` (the last plan)
    warm-starts the solver, which keeps plans stable between re-plans. Raises
    :class:`ValidationError` on malformed input (bad place, duplicate stop id, non-positive
    boxes).
    """
    s = settings or VanRoutingSettings()
    t0 = time.perf_counter()
    prep = _prepare(problem, s)
    decisions: list[Decision] = []
    kept_trips = [c.kept for c in prep.vans if c.kept is not None]
    for c in prep.vans:
        if c.kept is not None:
            decisions.extend(_kept_decisions(c.kept))
    usable = [c for c in prep.vans if c.usable]

    unserved: dict[int, str] = {}
    deadline_notes: dict[int, str] = {}
    candidates: list[int] = []
    for i, stop in enumerate(prep.pool):
        why, note = _screen(stop, usable, prep.vans, problem, s)
        if why is not None:
            unserved[i] = why
            continue
        if note:
            deadline_notes[i] = note
        candidates.append(i)

    answer = SolverAnswer()
    if candidates and usable:
        answer = solve(problem, s, prep.pool, usable, candidates, set(deadline_notes), previous, t0)
    routes, iterations, feasible = answer.routes, answer.iterations, answer.feasible

    # exact schedules, repaired against every hard limit
    trips: list[Trip] = list(kept_trips)
    planned: set[int] = set()
    for c in usable:
        seqs = routes.get(c.van.id, [])
        van_trips, dropped = _schedule_and_repair(c, seqs, prep.pool, problem, s)
        for i, why in dropped.items():
            unserved[i] = why
        for tr in van_trips:
            trips.append(tr)
        planned.update(i for seq in seqs for i in seq if i not in dropped)
    for i in candidates:
        if i not in planned and i not in unserved:
            unserved[i] = _leftover_reason(prep.pool[i], usable, trips)
    if any(prep.pool[i].required for i in unserved):
        feasible = False

    decisions.extend(_assignment_decisions(trips, prep, deadline_notes, usable, s))
    for i, why in sorted(unserved.items()):
        stop = prep.pool[i]
        decisions.append(
            Decision(
                kind=DecisionKind.UNSERVED,
                subject_id=stop.id,
                reason=why,
                quantity=stop.boxes,
                request_ids=stop.request_ids,
                alternatives=tuple(
                    Alternative(c.van.id, c.why_not) for c in prep.vans if not c.usable
                ),
                data={
                    "boxes": stop.boxes,
                    "priority": stop.priority.value,
                    "task_ids": list(stop.task_ids),
                },
            )
        )
        if i in deadline_notes:
            decisions.append(_deadline_decision(stop, deadline_notes[i]))
    for sid, van_id in prep.reassigned.items():
        decisions.append(
            Decision(
                kind=DecisionKind.REASSIGNMENT,
                subject_id=sid,
                reason=(
                    f"was on {van_id}'s started trip; {van_id} is out of service, so the stop "
                    "is planned again from the dock (its boxes must be loaded again)"
                ),
                vehicle_id=van_id,
            )
        )
    trips.sort(key=lambda t: (t.vehicle_id, t.number))
    return VanPlan(
        now=problem.now,
        trips=tuple(trips),
        unserved=tuple(Unserved(prep.pool[i], why) for i, why in sorted(unserved.items())),
        decisions=tuple(decisions),
        feasible=feasible,
        cost=plan_cost(trips, [prep.pool[i] for i in unserved], s),
        runtime_s=time.perf_counter() - t0,
        iterations=iterations,
    )


def plan_cost(trips: list[Trip], unserved: list[VanStop], s: VanRoutingSettings) -> float:
    """The objective of a plan, in cost units, from its exact schedule: van time (from each
    van's first loading to its last return, waits included) and distance of the new trips,
    plus lateness and non-service penalties."""
    cost = 0.0
    by_van: dict[str, list[Trip]] = {}
    for t in trips:
        if not t.started:
            by_van.setdefault(t.vehicle_id, []).append(t)
    for ts in by_van.values():
        first = min(t.load_start or t.return_at for t in ts)
        cost += s.time_weight * (max(t.return_at for t in ts) - first)
        cost += s.distance_weight * sum(t.distance_m for t in ts)
    for t in trips:
        for v in t.visits:
            if v.on_time is False:
                w = class_weight(v.stop.priority)
                cost += w * (s.late_penalty + s.late_penalty_per_box * v.stop.boxes)
    for st in unserved:
        w = class_weight(st.priority)
        cost += w * (s.unserved_penalty + s.unserved_penalty_per_box * st.boxes)
    return cost


# --- preparation and screening ----------------------------------------------------------------


def _prepare(problem: VanProblem, s: VanRoutingSettings) -> _Prepared:
    m = problem.matrix
    if not 0 <= problem.depot < m.size:
        raise ValidationError(f"depot place {problem.depot} is not in the matrix", field="depot")
    ids: set[str] = set()
    for v in problem.vans:
        if v.id in ids:
            raise ValidationError(f"van {v.id} appears twice", field="vans")
        ids.add(v.id)
        if v.max_boxes <= 0 or v.max_kg <= 0:
            raise ValidationError(f"van {v.id}: capacities must be positive", field="vans")
    seen: set[str] = set()

    def check(stop: VanStop) -> None:
        if stop.id in seen:
            raise ValidationError(f"stop {stop.id} appears twice", field="stops")
        seen.add(stop.id)
        if not 0 <= stop.place < m.size or stop.place == problem.depot:
            raise ValidationError(
                f"stop {stop.id}: place {stop.place} is not a gate of the matrix", field="stops"
            )
        if not isinstance(stop.boxes, int) or stop.boxes <= 0:
            raise ValidationError(f"stop {stop.id}: boxes must be positive", field="stops")
        if stop.kg < 0:
            raise ValidationError(f"stop {stop.id}: kg must be >= 0", field="stops")
        if stop.earliest is not None and stop.latest is not None and stop.latest < stop.earliest:
            raise ValidationError(f"stop {stop.id}: window closes before it opens", field="stops")

    shift_start_default = problem.now if problem.shift_start is None else problem.shift_start
    ctxs: list[VanContext] = []
    pool: list[VanStop] = []
    reassigned: dict[str, str] = {}
    for v in problem.vans:
        shift_start = v.shift_start if v.shift_start is not None else shift_start_default
        shift_end = v.shift_end if v.shift_end is not None else problem.shift_end
        kept = None
        free_at = max(problem.now, shift_start, v.ready_at if v.ready_at is not None else -math.inf)
        range_left = v.range_m
        if v.started is not None:
            for st in v.started.remaining:
                check(st)
            if v.available:
                kept = continue_started(v, depot=problem.depot, matrix=m, settings=s)
                free_at = max(free_at, kept.return_at)
                if range_left is not None:
                    range_left -= kept.distance_m
            else:
                for st in v.started.remaining:
                    pool.append(st)
                    reassigned[st.id] = v.id
        ctx = VanContext(v, free_at, shift_start, shift_end, range_left, kept, True)
        if not v.available:
            ctx.usable, ctx.why_not = False, f"{v.id} is out of service"
        elif v.max_trips is not None and v.max_trips <= 0:
            ctx.usable, ctx.why_not = False, f"{v.id} has no trips left in its shift"
        elif free_at >= shift_end:
            ctx.usable = False
            ctx.why_not = f"{v.id} is not free before its shift ends at {hhmm(shift_end)}"
        elif range_left is not None and range_left <= 0:
            ctx.usable, ctx.why_not = False, f"{v.id} has no driving range left"
        ctxs.append(ctx)
    for st in problem.stops:
        check(st)
        pool.append(st)
    return _Prepared(ctxs, pool, reassigned)


def _screen(
    stop: VanStop,
    usable: list[VanContext],
    all_vans: list[VanContext],
    problem: VanProblem,
    s: VanRoutingSettings,
) -> tuple[str | None, str]:
    """(reason it cannot be served by any van, deadline note) for ``stop`` on its own."""
    if not usable:
        if not all_vans:
            return "no van in the fleet", ""
        return "no van can take work: " + "; ".join(c.why_not for c in all_vans), ""
    m = problem.matrix
    fails: list[str] = []
    best_finish = math.inf
    if not (m.reachable(problem.depot, stop.place) and m.reachable(stop.place, problem.depot)):
        return f"no road between the dock and {m.label(stop.place)}", ""
    for c in usable:
        v = c.van
        if stop.boxes > v.max_boxes:
            fails.append(f"{v.id} carries {v.max_boxes} boxes, the stop needs {stop.boxes}")
            continue
        if stop.kg > v.max_kg + _EPS:
            fails.append(f"{v.id} carries {v.max_kg:g} kg, the stop weighs {stop.kg:g} kg")
            continue
        ready = stop.ready_at if stop.ready_at is not None else c.free_at
        depart = max(c.free_at, ready) + model_loading(v, s)
        arrive = depart + m.seconds(problem.depot, stop.place) + s.stop_fixed_s
        begin = arrive if stop.earliest is None else max(arrive, stop.earliest)
        if stop.latest is not None and begin > stop.latest + _EPS:
            fails.append(
                f"{v.id} reaches the gate at {hhmm(arrive)} at the earliest, after it "
                f"closes at {hhmm(stop.latest)}"
            )
            continue
        finish = begin + service_time(stop, s)
        back = finish + m.seconds(stop.place, problem.depot)
        if back > c.shift_end + _EPS:
            fails.append(
                f"{v.id} would be back at {hhmm(back)}, after its shift ends at {hhmm(c.shift_end)}"
            )
            continue
        round_trip = m.metres(problem.depot, stop.place) + m.metres(stop.place, problem.depot)
        if c.range_left is not None and round_trip > c.range_left + _EPS:
            fails.append(
                f"{v.id} has {c.range_left / 1000:.1f} km of range left, the round trip is "
                f"{round_trip / 1000:.1f} km"
            )
            continue
        best_finish = min(best_finish, finish)
    if best_finish == math.inf:
        return "no van can serve it: " + "; ".join(fails), ""
    note = ""
    if stop.deadline is not None and best_finish > stop.deadline + _EPS:
        note = (
            f"deadline {hhmm(stop.deadline)} cannot be met: even a van sent straight there "
            f"would finish unloading at {hhmm(best_finish)} at the earliest"
        )
    return None, note


# --- schedules, repair and reasons -------------------------------------------------------------


def _schedule_and_repair(
    c: VanContext,
    seqs: list[list[int]],
    pool: list[VanStop],
    problem: VanProblem,
    s: VanRoutingSettings,
) -> tuple[list[Trip], dict[int, str]]:
    """Exact schedule of the solver's trips; any stop breaking a hard limit is dropped with a
    reason (the solver's model is conservative, so this only happens when the solver returned
    an infeasible solution)."""
    v = c.van
    dropped: dict[int, str] = {}
    index_of = {id(st): i for i, st in enumerate(pool)}
    work = [list(t) for t in seqs]
    for t in work:
        while sum(pool[i].boxes for i in t) > v.max_boxes or (
            sum(pool[i].kg for i in t) > v.max_kg + _EPS
        ):
            dropped[t.pop()] = f"no room left on {v.id} within its capacity in this plan"
    while True:
        trips = schedule_trips(
            v.id,
            c.free_at,
            [[pool[i] for i in t] for t in work],
            depot=problem.depot,
            matrix=problem.matrix,
            settings=s,
        )
        bad: int | None = None
        why = ""
        for tr in trips:
            for vis in tr.visits:
                if vis.stop.latest is not None and vis.start > vis.stop.latest + _EPS:
                    bad = index_of[id(vis.stop)]
                    why = f"{v.id} cannot reach it before the gate closes in this plan"
                    break
            if bad is not None:
                break
        if bad is None and trips and trips[-1].return_at > c.shift_end + _EPS:
            last = next(t for t in reversed(work) if t)
            bad = last[-1]
            why = f"no time left on {v.id} before its shift ends in this plan"
        dist = sum(t.distance_m for t in trips)
        if bad is None and c.range_left is not None and dist > c.range_left + _EPS:
            last = next(t for t in reversed(work) if t)
            bad = last[-1]
            why = f"not enough driving range left on {v.id} in this plan"
        if bad is None:
            return trips, dropped
        dropped[bad] = why
        for t in work:
            if bad in t:
                t.remove(bad)
        work = [t for t in work if t]


def _leftover_reason(stop: VanStop, usable: list[VanContext], trips: list[Trip]) -> str:
    busy = []
    for c in usable:
        mine = [t for t in trips if t.vehicle_id == c.van.id]
        if mine:
            busy.append(f"{c.van.id} until {hhmm(max(t.return_at for t in mine))}")
    head = (
        f"no van time left for it in this plan ({class_label(stop.priority)}, {stop.boxes} boxes)"
    )
    if busy:
        head += ": vans are busy — " + ", ".join(busy)
    return head + "; it stays queued for the next plan"


def _assignment_decisions(
    trips: list[Trip],
    prep: _Prepared,
    deadline_notes: dict[int, str],
    usable: list[VanContext],
    s: VanRoutingSettings,
) -> list[Decision]:
    out: list[Decision] = []
    notes_by_id = {prep.pool[i].id: n for i, n in deadline_notes.items()}
    unusable = tuple(Alternative(c.van.id, c.why_not) for c in prep.vans if not c.usable)
    for tr in trips:
        if tr.started:
            continue
        others = tuple(
            Alternative(
                c.van.id,
                f"{c.van.id} is planned for other stops (free at the dock from {hhmm(c.free_at)})",
                feasible=True,
            )
            for c in usable
            if c.van.id != tr.vehicle_id
        )
        for pos, vis in enumerate(tr.visits, start=1):
            st = vis.stop
            timing = f"arrives {hhmm(vis.arrival)}, unloaded by {hhmm(vis.finish)}"
            if st.earliest is not None and vis.start > vis.arrival + _EPS:
                timing += f" (waits for the gate to open at {hhmm(st.earliest)})"
            if st.deadline is not None:
                slack = st.deadline - vis.finish
                if slack >= 0:
                    timing += f", {slack / 60:.0f} min before its {hhmm(st.deadline)} deadline"
                else:
                    timing += f", {-slack / 60:.0f} min after its {hhmm(st.deadline)} deadline"
            reason = (
                f"{tr.vehicle_id} trip {tr.number}, stop {pos} of {len(tr.visits)} (leaves the "
                f"dock {hhmm(tr.depart or 0)} with {tr.boxes} boxes): {timing}. Chosen by the "
                f"route optimiser: least van time plus lateness cost, {class_label(st.priority)} "
                f"weighted x{class_weight(st.priority)}"
            )
            out.append(
                Decision(
                    kind=DecisionKind.ASSIGNMENT,
                    subject_id=st.id,
                    reason=reason,
                    vehicle_id=tr.vehicle_id,
                    plan_ref=tr.ref,
                    quantity=st.boxes,
                    request_ids=st.request_ids,
                    alternatives=unusable + others,
                    data={
                        "trip": tr.number,
                        "position": pos,
                        "arrival": vis.arrival,
                        "finish": vis.finish,
                        "deadline": st.deadline,
                        "on_time": vis.on_time,
                        "boxes": st.boxes,
                        "trip_boxes": tr.boxes,
                        "task_ids": list(st.task_ids),
                    },
                )
            )
            if vis.on_time is False:
                note = notes_by_id.get(st.id) or (
                    f"planned {-(vis.slack_s or 0) / 60:.0f} min late: the vans cannot reach it "
                    "in time with more urgent or earlier work ahead"
                )
                out.append(_deadline_decision(st, note, tr.vehicle_id, tr.ref))
    return out


def _kept_decisions(tr: Trip) -> list[Decision]:
    return [
        Decision(
            kind=DecisionKind.KEPT,
            subject_id=vis.stop.id,
            reason=(
                f"{tr.vehicle_id} has started this trip; the stop stays on it "
                f"(arrives {hhmm(vis.arrival)})"
            ),
            vehicle_id=tr.vehicle_id,
            plan_ref=tr.ref,
            quantity=vis.stop.boxes,
            request_ids=vis.stop.request_ids,
        )
        for vis in tr.visits
    ]


def _deadline_decision(
    stop: VanStop, note: str, vehicle_id: str | None = None, ref: str | None = None
) -> Decision:
    return Decision(
        kind=DecisionKind.DEADLINE,
        subject_id=stop.id,
        reason=note,
        vehicle_id=vehicle_id,
        plan_ref=ref,
        quantity=stop.boxes,
        request_ids=stop.request_ids,
        data={"deadline": stop.deadline, "priority": stop.priority.value},
    )
