"""The PyVRP side of van routing: builds the solver's model of a shift and reads its answer.

See :mod:`missions.routing.vans` for the model in words. Everything PyVRP-specific (integer
scaling, client groups for soft deadlines, reload depots for multi-trip, warm starts) lives
here, so that a PyVRP upgrade touches one module.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyvrp
from pyvrp import stop as pyvrp_stop
from pyvrp.exceptions import PenaltyBoundWarning

from missions.priorities import class_weight
from missions.routing.shuttle import (
    Trip,
    Van,
    VanPlan,
    VanProblem,
    VanRoutingSettings,
    VanStop,
    loading_time,
    service_time,
)

COST_SCALE = 100
"""PyVRP costs are integers: every cost and penalty is multiplied by this before rounding."""
GRAMS_PER_KG = 1000
"""Kilograms are handed to PyVRP as integer grams."""
UNREACHABLE = 10**9
"""Solver distance and duration of a pair with no road between them (never worth taking)."""
_EPS = 1e-9


@dataclass
class VanContext:
    """A van's situation for this plan."""

    van: Van
    free_at: float
    """At the dock and free (after its started trip, if any)."""
    shift_start: float
    shift_end: float
    range_left: float | None
    kept: Trip | None
    """Its started trip, kept."""
    usable: bool
    """Can take new trips in this plan."""
    why_not: str = ""
    """Why it cannot, when it cannot."""


@dataclass
class _Client:
    stop_index: int
    late_copy: bool


@dataclass
class SolverAnswer:
    """Trips per van as indices into the stop pool, and solver figures."""

    routes: dict[str, list[list[int]]] = field(default_factory=dict)
    iterations: int = 0
    feasible: bool = True


def model_loading(v: Van, s: VanRoutingSettings) -> float:
    """Dock time in the solver's (conservative) model: loading a full van."""
    return loading_time(v.max_boxes, s)


def solve(
    problem: VanProblem,
    s: VanRoutingSettings,
    pool: list[VanStop],
    usable: list[VanContext],
    candidates: list[int],
    late_only: set[int],
    previous: VanPlan | None,
    started: float,
) -> SolverAnswer:
    """Solve for ``candidates`` (indices into ``pool``) on the ``usable`` vans; stops in
    ``late_only`` cannot meet their deadline and carry the late price whatever happens."""
    m = problem.matrix
    now = problem.now
    tres = s.time_resolution_s
    dres = s.distance_resolution_m

    def tt(x: float) -> int:  # absolute time -> solver time (rounded down: conservative)
        return max(0, math.floor((x - now) / tres + _EPS))

    def tt_up(x: float) -> int:
        return max(0, math.ceil((x - now) / tres - _EPS))

    def dur(x: float) -> int:
        return max(0, math.ceil(x / tres - _EPS))

    # places used: depot first, then the gates of candidate stops
    places = [problem.depot]
    place_idx = {problem.depot: 0}
    for i in candidates:
        p = pool[i].place
        if p not in place_idx:
            place_idx[p] = len(places)
            places.append(p)
    dist_m, dur_s = m.submatrix(places)
    dist_int = np.rint(np.where(np.isfinite(dist_m), dist_m / dres, UNREACHABLE)).astype(np.int64)
    dur_int = np.ceil(np.where(np.isfinite(dur_s), dur_s / tres - _EPS, UNREACHABLE)).astype(
        np.int64
    )
    park = dur(s.stop_fixed_s)
    if park:
        dur_int[:, 1:] += park
        np.fill_diagonal(dur_int, 0)
    dur_int = np.maximum(dur_int, 0)

    locations = [pyvrp.Location(x=0.0, y=0.0, name=m.label(p)) for p in places]
    # Identical vans share one vehicle type (and vans with the same loading time one dock
    # depot): fewer types make PyVRP's search faster and any van of a type is as good.
    depot_of: dict[int, int] = {}
    depots: list[pyvrp.Depot] = []
    type_keys: dict[tuple[object, ...], int] = {}
    type_vans: list[list[VanContext]] = []
    vtypes: list[pyvrp.VehicleType] = []
    unit_dur = round(s.time_weight * tres * COST_SCALE)
    unit_dist = round(s.distance_weight * dres * COST_SCALE)
    for c in usable:
        v = c.van
        service = dur(model_loading(v, s))
        if service not in depot_of:
            depot_of[service] = len(depots)
            depots.append(pyvrp.Depot(location=0, service_duration=service, name="dock"))
        d = depot_of[service]
        extra: dict[str, int] = {}
        if c.range_left is not None:
            extra["max_distance"] = max(0, math.floor(c.range_left / dres))
        if v.max_trips is not None:
            extra["max_reloads"] = max(0, v.max_trips - 1)
        capacity = [v.max_boxes, math.floor(v.max_kg * GRAMS_PER_KG + _EPS)]
        tw = (tt_up(c.free_at), tt(c.shift_end))
        key = (d, *capacity, *tw, tuple(sorted(extra.items())))
        if key in type_keys:
            type_vans[type_keys[key]].append(c)
            continue
        type_keys[key] = len(vtypes)
        type_vans.append([c])
        vtypes.append(
            pyvrp.VehicleType(
                num_available=1,
                capacity=capacity,
                start_depot=d,
                end_depot=d,
                reload_depots=[d],
                tw_early=tw[0],
                tw_late=tw[1],
                unit_distance_cost=unit_dist,
                unit_duration_cost=unit_dur,
                name=v.id,
                **extra,
            )
        )
    vtypes = [
        vt.replace(num_available=len(vans), name=",".join(c.van.id for c in vans))
        for vt, vans in zip(vtypes, type_vans, strict=True)
    ]

    clients: list[pyvrp.Client] = []
    groups: list[pyvrp.ClientGroup] = []
    cmap: list[_Client] = []
    horizon = max(c.shift_end for c in usable)
    for i in candidates:
        st = pool[i]
        loc = place_idx[st.place]
        svc = dur(service_time(st, s))
        load = [st.boxes, math.ceil(st.kg * GRAMS_PER_KG - _EPS)]
        early = tt_up(st.earliest) if st.earliest is not None else 0
        hard_late = tt(st.latest) if st.latest is not None else tt(horizon)
        release = tt_up(st.ready_at) if st.ready_at is not None else 0
        w = class_weight(st.priority)
        p_unserved = round(
            w * (s.unserved_penalty + s.unserved_penalty_per_box * st.boxes) * COST_SCALE
        )
        p_late = round(w * (s.late_penalty + s.late_penalty_per_box * st.boxes) * COST_SCALE)
        p_late = min(p_late, max(0, p_unserved - 1))
        common = {"location": loc, "delivery": load, "pickup": [0, 0], "release_time": release}
        # the on-time copy's window closes risk_margin_s before the deadline (or at it, when
        # the margin leaves no room); no copy when the deadline cannot bind or cannot be met
        on_time_late: int | None = None
        late = False
        if st.deadline is not None:
            due = st.deadline - service_time(st, s)
            cand = tt(due - s.risk_margin_s)
            if cand < early:
                cand = tt(due)
            if i in late_only or cand < early:
                late = True
            elif cand < hard_late:
                on_time_late = cand
        if on_time_late is not None:
            g = len(groups)
            groups.append(pyvrp.ClientGroup(required=st.required, name=st.id))
            clients.append(
                pyvrp.Client(
                    **common,
                    service_duration=svc,
                    tw_early=early,
                    tw_late=on_time_late,
                    prize=p_unserved,
                    required=False,
                    group=g,
                    name=st.id,
                )
            )
            cmap.append(_Client(i, False))
            clients.append(
                pyvrp.Client(
                    **common,
                    service_duration=svc,
                    tw_early=early,
                    tw_late=hard_late,
                    prize=p_unserved - p_late,
                    required=False,
                    group=g,
                    name=st.id + "~late",
                )
            )
            cmap.append(_Client(i, True))
            groups[g].add_client(len(clients) - 2)
            groups[g].add_client(len(clients) - 1)
        else:
            clients.append(
                pyvrp.Client(
                    **common,
                    service_duration=svc,
                    tw_early=early,
                    tw_late=hard_late,
                    prize=(p_unserved - p_late) if late else p_unserved,
                    required=st.required,
                    name=st.id,
                )
            )
            cmap.append(_Client(i, late))
    data = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=vtypes,
        distance_matrices=[dist_int],
        duration_matrices=[dur_int],
        groups=groups,
    )
    left = s.time_limit_s - (time.perf_counter() - started) - s.finish_reserve_s
    criteria: list[pyvrp_stop.StoppingCriterion] = [pyvrp_stop.MaxRuntime(max(0.01, left))]
    if s.max_iterations is not None:
        criteria.append(pyvrp_stop.MaxIterations(s.max_iterations))
    if s.no_improvement_iterations is not None:
        criteria.append(pyvrp_stop.NoImprovement(s.no_improvement_iterations))
    stop_rule = criteria[0] if len(criteria) == 1 else pyvrp_stop.MultipleCriteria(criteria)
    init = _initial_solution(data, dur_int, previous, pool, cmap, type_vans)
    with warnings.catch_warnings():
        # PyVRP warns when its penalties saturate on hard instances; the answer is re-checked
        # against every hard limit by the caller, and infeasibility is reported there.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp.solve(
            data,
            stop_rule,
            seed=s.seed,
            collect_stats=False,
            display=False,
            initial_solution=init,
        )
    best = result.best
    routes: dict[str, list[list[int]]] = {}
    free = [list(vans) for vans in type_vans]
    for route in best.routes():
        van_id = free[route.vehicle_type()].pop(0).van.id
        trips: list[list[int]] = [[]]
        for act in route.schedule():
            if act.is_depot():
                if trips[-1]:
                    trips.append([])
            elif act.is_client():
                trips[-1].append(cmap[act.idx].stop_index)
        routes[van_id] = [t for t in trips if t]
    return SolverAnswer(routes, result.num_iterations, best.is_feasible())


@dataclass
class _Slot:
    """One van while the starting plan is built (solver integer units)."""

    vtype: int
    dock: int
    service: int
    cap: list[int]
    end: int
    free: int
    max_trips: int
    trips: list[list[int]] = field(default_factory=list)
    cur: list[int] = field(default_factory=list)
    t: int = 0
    loc: int = 0
    load: list[int] = field(default_factory=list)
    depart: int = 0


class _Builder:
    """A quick list-scheduling of stops onto vans in the solver's integer model: the starting
    point handed to PyVRP. Its search removes optional clients well but rarely opens a new
    trip just to insert one, so starting from a plan that already serves what fits keeps
    multi-trip plans complete."""

    def __init__(
        self, data: pyvrp.ProblemData, dur: np.ndarray, type_vans: list[list[VanContext]]
    ) -> None:
        self.data = data
        self.dur = dur
        self.slots: list[_Slot] = []
        for k, vans in enumerate(type_vans):
            vt = data.vehicle_type(k)
            service = data.depot(vt.start_depot).service_duration
            for _ in vans:
                self.slots.append(
                    _Slot(
                        k,
                        vt.start_depot,
                        service,
                        list(vt.capacity),
                        vt.tw_late,
                        vt.tw_early,
                        vt.max_trips,
                    )
                )

    def option(self, v: int, ci: int, new_trip: bool) -> tuple[int, int] | None:
        """(finish, departure of its trip) if client ``ci`` goes next on van ``v``."""
        sl = self.slots[v]
        c = self.data.client(ci)
        if new_trip or not sl.cur:
            if len(sl.trips) + (1 if sl.cur else 0) >= sl.max_trips:
                return None
            back = sl.t + int(self.dur[sl.loc, 0]) if sl.cur else sl.free
            depart = max(back, c.release_time) + sl.service
            t, loc, load = depart, 0, [0] * len(sl.cap)
        else:
            if c.release_time > sl.depart:
                return None
            depart, t, loc, load = sl.depart, sl.t, sl.loc, sl.load
        if any(load[d] + c.delivery[d] > sl.cap[d] for d in range(len(sl.cap))):
            return None
        start = max(t + int(self.dur[loc, c.location]), c.tw_early)
        if start > c.tw_late:
            return None
        finish = start + c.service_duration
        if finish + int(self.dur[c.location, 0]) > sl.end:
            return None
        return finish, depart

    def add(self, v: int, ci: int, new_trip: bool) -> None:
        opt = self.option(v, ci, new_trip)
        assert opt is not None
        sl = self.slots[v]
        c = self.data.client(ci)
        if new_trip or not sl.cur:
            if sl.cur:
                sl.trips.append(sl.cur)
            sl.cur, sl.load, sl.depart = [], [0] * len(sl.cap), opt[1]
        sl.cur.append(ci)
        sl.t, sl.loc = opt[0], c.location
        sl.load = [sl.load[d] + c.delivery[d] for d in range(len(sl.load))]

    def place(self, choices: list[int]) -> bool:
        """Put the first feasible client of ``choices`` (one stop's copies, preferred first)
        where it finishes earliest."""
        best: tuple[int, int, int, bool] | None = None
        for ci in choices:
            for v in range(len(self.slots)):
                for new_trip in (False, True):
                    opt = self.option(v, ci, new_trip)
                    if opt is not None and (best is None or opt[0] < best[0]):
                        best = (opt[0], v, ci, new_trip)
            if best is not None:
                break
        if best is None:
            return False
        self.add(best[1], best[2], best[3])
        return True

    def routes(self) -> list[pyvrp.Route]:
        out = []
        for sl in self.slots:
            trips = [*sl.trips, sl.cur] if sl.cur else list(sl.trips)
            if not trips:
                continue
            acts: list[pyvrp.Activity] = []  # start and end depots are implied
            for n, trip in enumerate(trips):
                if n:
                    acts.append(pyvrp.Activity(pyvrp.ActivityType.DEPOT, sl.dock))
                acts.extend(pyvrp.Activity(pyvrp.ActivityType.CLIENT, ci) for ci in trip)
            out.append(pyvrp.Route(self.data, acts, sl.vtype))
        return out


def _initial_solution(
    data: pyvrp.ProblemData,
    dur: np.ndarray,
    previous: VanPlan | None,
    pool: list[VanStop],
    cmap: list[_Client],
    type_vans: list[list[VanContext]],
) -> pyvrp.Solution | None:
    """Starting point: the previous plan's trips (kept stable between re-plans), then every
    other stop by priority and deadline where it finishes earliest."""
    if previous is None and all(pool[cl.stop_index].required for cl in cmap):
        return None  # nothing optional to lose: PyVRP's own start does better (Solomon)
    copies: dict[int, list[int]] = {}
    for ci, cl in enumerate(cmap):
        copies.setdefault(cl.stop_index, []).append(ci)  # on-time copy first
    b = _Builder(data, dur, type_vans)
    van_index = {c.van.id: n for n, c in enumerate(c for vans in type_vans for c in vans)}
    placed: set[int] = set()
    if previous is not None:
        by_id = {pool[i].id: i for i in copies}
        for van_id, v in van_index.items():
            for trip in previous.trips_of(van_id):
                if trip.started:
                    continue
                first = True
                for vis in trip.visits:
                    i = by_id.get(vis.stop.id)
                    if i is None or i in placed:
                        continue
                    for ci in copies[i]:
                        if b.option(v, ci, first) is not None:
                            b.add(v, ci, first)
                            placed.add(i)
                            first = False
                            break
    order = sorted(
        (i for i in copies if i not in placed),
        key=lambda i: (
            pool[i].priority.rank,
            pool[i].deadline if pool[i].deadline is not None else math.inf,
            pool[i].id,
        ),
    )
    for i in order:
        b.place(copies[i])
    try:
        routes = b.routes()
        return pyvrp.Solution(data, routes) if routes else None
    except (ValueError, IndexError, RuntimeError):  # a start is a help, never a must
        return None
