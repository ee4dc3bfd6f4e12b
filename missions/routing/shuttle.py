"""Van shuttle work as the planner models it: stops, vans, trips, and their exact schedule.

A *stop* is a load for one community gate; a *trip* loads at the warehouse dock, visits gates
in order, unloads, and drives back; a van runs trips back to back until its shift ends. The
schedule functions here are the one timing model of van work: the router reports times from
them, re-plans time a started trip with them, and the benchmarks time their baselines with
them, so plans are compared on equal terms.

Timing model: loading at the dock takes ``dock_fixed_s + load_per_box_s * boxes`` and starts
when the van is free and every box of the trip is at the dock (``ready_at``); travel times come
from the :class:`~missions.routing.matrix.TravelMatrix`; arriving at a gate other than the one
just served adds ``stop_fixed_s`` (parking, handover); unloading starts when the gate is open
(``earliest``) and takes ``service_s`` or ``unload_per_box_s * boxes``; a stop is on time when
unloading finishes by its deadline. Times are world seconds (``Clock.time()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from missions.routing.decisions import Decision
from missions.routing.matrix import TravelMatrix
from missions.states import Priority

_EPS = 1e-9

# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VanStop:
    """A load for one gate: boxes to unload there, with its time limits."""

    id: str
    place: int
    """Index of the gate in the travel matrix."""
    boxes: int
    kg: float = 0.0
    service_s: float | None = None
    """Unloading time; ``None``: ``unload_per_box_s * boxes``."""
    earliest: float | None = None
    """Gate opens (unloading may not start before)."""
    latest: float | None = None
    """Gate closes (unloading must start by then): a hard limit."""
    deadline: float | None = None
    """Unloading should be finished by then: a soft limit with a cost."""
    priority: Priority = Priority.STANDARD
    ready_at: float | None = None
    """When its boxes are at the dock, ready to load."""
    required: bool = False
    """Must be served (no non-service option; used by benchmarks)."""
    request_ids: tuple[str, ...] = ()
    """Requests whose boxes it carries."""
    task_ids: tuple[str, ...] = ()
    """Tasks it is made of."""


@dataclass(frozen=True, slots=True)
class StartedTrip:
    """What is left of a trip a van has started: kept as it is by every re-plan."""

    remaining: tuple[VanStop, ...]
    """Stops not yet unloaded, in driving order."""
    next_arrival: float
    """When the van reaches ``remaining[0]`` (or the dock when nothing remains)."""
    ref: str | None = None
    """Mission id of the trip."""
    distance_m: float = 0.0
    """Distance still to drive to the first remaining stop (counts against the range)."""


@dataclass(frozen=True, slots=True)
class Van:
    """A van as the planner sees it."""

    id: str
    max_boxes: int = 150
    max_kg: float = 1000.0
    ready_at: float | None = None
    """When it is at the dock and free (``None``: now); ignored when it has a started trip."""
    shift_start: float | None = None
    """``None``: the problem's shift start."""
    shift_end: float | None = None
    """Back at the dock by then; ``None``: the problem's shift end."""
    available: bool = True
    """False: out of service; its started trip's stops are re-planned onto others."""
    started: StartedTrip | None = None
    max_trips: int | None = None
    """New trips it may still run in this shift (``None``: no limit)."""
    range_m: float | None = None
    """Driving range left on the current charge (``None``: unlimited)."""


@dataclass(frozen=True, slots=True)
class VanProblem:
    """Everything the router needs; no I/O behind it."""

    now: float
    depot: int
    """Index of the warehouse dock in the matrix."""
    matrix: TravelMatrix
    stops: tuple[VanStop, ...]
    vans: tuple[Van, ...]
    shift_end: float
    shift_start: float | None = None
    """``None``: now."""


@dataclass(frozen=True, slots=True)
class VanRoutingSettings:
    """Service times, costs and solver limits."""

    dock_fixed_s: float = 300.0
    """At the dock per trip before loading: docking, checks, paperwork."""
    load_per_box_s: float = 5.0
    """Loading one box at the dock."""
    stop_fixed_s: float = 120.0
    """Parking and handover at a gate, once per gate visited."""
    unload_per_box_s: float = 5.0
    """Unloading one box at a gate (when a stop has no ``service_s``)."""
    risk_margin_s: float = 300.0
    """A stop planned to finish within this of its deadline is costed as late."""
    time_weight: float = 1.0
    """Cost per second of van time (route duration, waiting included)."""
    distance_weight: float = 0.01
    """Cost per metre driven (0.01: a kilometre costs as much as 10 s)."""
    late_penalty: float = 1800.0
    """Cost of a late stop (times the class weight), plus ``late_penalty_per_box`` per box."""
    late_penalty_per_box: float = 60.0
    unserved_penalty: float = 4 * 3600.0
    """Cost of leaving a stop out (times the class weight), plus the per-box part."""
    unserved_penalty_per_box: float = 600.0
    time_resolution_s: float = 1.0
    """Times are rounded to this for the solver."""
    distance_resolution_m: float = 1.0
    time_limit_s: float = 1.0
    """Wall-clock limit of a whole ``plan_vans`` call: the solver gets what is left after
    the model is built, less ``finish_reserve_s`` for the exact schedule and reasons."""
    finish_reserve_s: float = 0.05
    max_iterations: int | None = None
    """Solver iteration limit (deterministic; tests use it)."""
    no_improvement_iterations: int | None = 2000
    """Stop early after this many iterations without a better solution."""
    seed: int = 0


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visit:
    """A stop in a trip, with its predicted times."""

    stop: VanStop
    arrival: float
    """At the gate, parked."""
    start: float
    """Unloading starts (after waiting for the gate to open, if early)."""
    finish: float
    """Unloaded."""

    @property
    def on_time(self) -> bool | None:
        """Finished by the deadline (``None``: no deadline)."""
        d = self.stop.deadline
        return None if d is None else self.finish <= d + _EPS

    @property
    def slack_s(self) -> float | None:
        """Deadline minus finish (negative: late)."""
        d = self.stop.deadline
        return None if d is None else d - self.finish


@dataclass(frozen=True, slots=True)
class Trip:
    """One trip of one van: load at the dock, visit gates, come back."""

    vehicle_id: str
    number: int
    """1, 2, ... for planned trips; 0 for the started trip kept from before."""
    started: bool
    load_start: float | None
    """Loading begins at the dock (``None`` for a started trip)."""
    depart: float | None
    """Leaves the dock (``None`` for a started trip)."""
    return_at: float
    visits: tuple[Visit, ...]
    distance_m: float

    @property
    def ref(self) -> str:
        return f"{self.vehicle_id}/trip-{self.number}"

    @property
    def boxes(self) -> int:
        return sum(v.stop.boxes for v in self.visits)

    @property
    def kg(self) -> float:
        return sum(v.stop.kg for v in self.visits)


@dataclass(frozen=True, slots=True)
class Unserved:
    """A stop no van takes in this plan, and why."""

    stop: VanStop
    reason: str


@dataclass(frozen=True, slots=True)
class VanPlan:
    """The routing result."""

    now: float
    trips: tuple[Trip, ...]
    unserved: tuple[Unserved, ...]
    decisions: tuple[Decision, ...]
    feasible: bool
    """False only when ``required`` stops could not all be served within the limits."""
    cost: float
    """Objective value in cost units (seconds of van time by default)."""
    runtime_s: float
    iterations: int

    def trips_of(self, vehicle_id: str) -> list[Trip]:
        return [t for t in self.trips if t.vehicle_id == vehicle_id]

    def visits(self) -> list[tuple[Trip, Visit]]:
        return [(t, v) for t in self.trips for v in t.visits]

    def visit(self, stop_id: str) -> tuple[Trip, Visit] | None:
        for t in self.trips:
            for v in t.visits:
                if v.stop.id == stop_id:
                    return t, v
        return None

    @property
    def distance_m(self) -> float:
        return sum(t.distance_m for t in self.trips)

    @property
    def late(self) -> list[Visit]:
        return [v for t in self.trips for v in t.visits if v.on_time is False]


# --- the exact schedule ----------------------------------------------------------------------


def service_time(stop: VanStop, settings: VanRoutingSettings) -> float:
    """Unloading time of ``stop``."""
    if stop.service_s is not None:
        return stop.service_s
    return settings.unload_per_box_s * stop.boxes


def loading_time(boxes: int, settings: VanRoutingSettings) -> float:
    """Time at the dock for a trip carrying ``boxes``."""
    return settings.dock_fixed_s + settings.load_per_box_s * boxes


def drive_visits(
    stops: Sequence[VanStop],
    t: float,
    pos: int,
    matrix: TravelMatrix,
    settings: VanRoutingSettings,
    *,
    first_arrival: float | None = None,
) -> tuple[list[Visit], float, int, float]:
    """Drive from ``pos`` at time ``t`` through ``stops``; returns the visits, the time and
    place after the last one and the distance driven. ``first_arrival`` overrides the arrival
    at the first stop (a van already on its way)."""
    visits: list[Visit] = []
    dist = 0.0
    for i, s in enumerate(stops):
        if i == 0 and first_arrival is not None:
            arrive = first_arrival
        else:
            arrive = t + matrix.seconds(pos, s.place)
            dist += matrix.metres(pos, s.place)
            if s.place != pos:
                arrive += settings.stop_fixed_s
        start = arrive if s.earliest is None else max(arrive, s.earliest)
        finish = start + service_time(s, settings)
        visits.append(Visit(s, arrive, start, finish))
        t, pos = finish, s.place
    return visits, t, pos, dist


def schedule_trips(
    vehicle_id: str,
    free_at: float,
    trips: Sequence[Sequence[VanStop]],
    *,
    depot: int,
    matrix: TravelMatrix,
    settings: VanRoutingSettings,
    first_number: int = 1,
) -> list[Trip]:
    """The exact schedule of ``trips`` run back to back by a van free at the dock at
    ``free_at``: loading of the actual boxes starts when the van is free and every box of the
    trip is at the dock, then the gates in order, then back."""
    out: list[Trip] = []
    t = free_at
    for k, stops in enumerate(trips):
        if not stops:
            continue
        ready = max((s.ready_at for s in stops if s.ready_at is not None), default=t)
        load_start = max(t, ready)
        depart = load_start + loading_time(sum(s.boxes for s in stops), settings)
        visits, t_end, pos, dist = drive_visits(stops, depart, depot, matrix, settings)
        back = t_end + matrix.seconds(pos, depot)
        dist += matrix.metres(pos, depot)
        out.append(
            Trip(vehicle_id, first_number + k, False, load_start, depart, back, tuple(visits), dist)
        )
        t = back
    return out


def continue_started(
    van: Van, *, depot: int, matrix: TravelMatrix, settings: VanRoutingSettings
) -> Trip:
    """The rest of ``van``'s started trip, timed from its next arrival."""
    st = van.started
    assert st is not None
    if st.remaining:
        visits, t_end, pos, dist = drive_visits(
            st.remaining, st.next_arrival, depot, matrix, settings, first_arrival=st.next_arrival
        )
        back = t_end + matrix.seconds(pos, depot)
        dist += matrix.metres(pos, depot) + st.distance_m
    else:
        visits, back, dist = [], st.next_arrival, st.distance_m
    return Trip(van.id, 0, True, None, None, back, tuple(visits), dist)
