"""The dispatch plan: delivery tasks split between drones and vans, each with its reason.

Input is the open work (delivery tasks cut from approved, allocated requests), the fleet as it
is now (vans with their started trips, drones with their charge and next free time) and the
street's geometry (van travel matrix, drone drop points). Output is a van plan, a drone plan
and one outcome per task: which vehicle, when it should arrive, whether that meets the
deadline, and why.

Rules, in order:

1. **Drones for light urgent loads**: a task goes to the drone queue when its priority class is
   in ``drone_classes`` (urgent medical by default), its SKUs may fly and its mass is within
   the largest drone payload. :func:`~missions.routing.drones.assign_drones` picks the drone;
   a task no drone can fly (payload, range with reserve, availability) falls back to the vans,
   with that reason.
2. **Vans for the rest**: a community's van tasks of one priority class are loaded together as
   one stop when their deadlines lie within ``consolidation_window_s`` of the earliest and
   their boxes fit ``max_stop_boxes`` (default: the smallest van's capacity); a task larger
   than that is cut into parts. :func:`~missions.routing.vans.plan_vans` routes the stops
   (multi-trip, capacity, windows, shift end, deadline risk in the cost).
3. **Rolling**: work a vehicle has started is passed in as started trips (vans) or as a later
   ``ready_at`` and lower charge (drones) and is never re-planned; stops of a started trip
   whose van failed are planned again. ``previous`` warm-starts the van solver so successive
   plans stay close.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from fleet.errors import ValidationError
from missions.priorities import class_label
from missions.routing.decisions import Decision, DecisionKind
from missions.routing.drones import (
    XY,
    Distance,
    Drone,
    DroneAssignmentSettings,
    DronePlan,
    DroneTask,
    assign_drones,
    straight,
)
from missions.routing.matrix import TravelMatrix
from missions.routing.shuttle import Van, VanPlan, VanProblem, VanRoutingSettings, VanStop
from missions.routing.vans import plan_vans
from missions.states import Priority


@dataclass(frozen=True, slots=True)
class DeliveryTask:
    """One unit of delivery work: a load for one community, cut from one request."""

    id: str
    community_id: str
    boxes: int
    kg: float
    priority: Priority
    deadline: float
    ready_at: float | None = None
    """When the load is at the warehouse, ready to go."""
    request_ids: tuple[str, ...] = ()
    drone_eligible: bool = True
    """False when a SKU in it may not fly."""


@dataclass(frozen=True, slots=True)
class CommunitySite:
    """Where vehicles deliver to a community."""

    id: str
    gate: int
    """Van stop: place index in the travel matrix."""
    drop: XY
    """Drone drop point, local frame metres."""


@dataclass(frozen=True, slots=True)
class DispatchProblem:
    """Open work, fleet and geometry."""

    now: float
    tasks: tuple[DeliveryTask, ...]
    communities: tuple[CommunitySite, ...]
    depot: int
    """Warehouse dock: place index in the travel matrix."""
    matrix: TravelMatrix
    vans: tuple[Van, ...]
    drones: tuple[Drone, ...]
    shift_end: float
    shift_start: float | None = None


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Policy of the dispatch plan."""

    drone_classes: frozenset[Priority] = frozenset({Priority.URGENT_MEDICAL})
    """Priority classes whose light loads fly."""
    consolidation_window_s: float = 3600.0
    max_stop_boxes: int | None = None
    vans: VanRoutingSettings = field(default_factory=VanRoutingSettings)
    drones: DroneAssignmentSettings = field(default_factory=DroneAssignmentSettings)


class Mode(StrEnum):
    """How a task travels."""

    DRONE = "drone"
    """A drone sortie."""
    VAN = "van"
    """A stop of a van trip."""
    UNSERVED = "unserved"
    """Nothing takes it in this plan; it stays queued."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What the plan does with one task."""

    task_id: str
    mode: Mode
    vehicle_id: str | None
    plan_ref: str | None
    """The trip or sortie (``van-1/trip-2``, ``drone-3/sortie-1``)."""
    delivered_at: float | None
    """Predicted unloading finish (van) or release (drone)."""
    deadline: float | None
    reason: str

    @property
    def on_time(self) -> bool | None:
        if self.delivered_at is None or self.deadline is None:
            return None
        return self.delivered_at <= self.deadline + 1e-9


@dataclass(frozen=True, slots=True)
class DispatchPlan:
    """Everything the dispatcher decided in one planning round."""

    now: float
    vans: VanPlan
    drones: DronePlan
    outcomes: tuple[TaskOutcome, ...]
    decisions: tuple[Decision, ...]
    stops: tuple[VanStop, ...]
    """The van stops built from the tasks (consolidated and cut)."""
    runtime_s: float

    def outcome(self, task_id: str) -> TaskOutcome:
        for o in self.outcomes:
            if o.task_id == task_id:
                return o
        raise KeyError(task_id)

    @property
    def on_time_share(self) -> float:
        """Share of the tasks planned to be delivered by their deadline."""
        if not self.outcomes:
            return 1.0
        return sum(1 for o in self.outcomes if o.on_time) / len(self.outcomes)


def plan_dispatch(
    problem: DispatchProblem,
    settings: DispatchSettings | None = None,
    *,
    previous: DispatchPlan | None = None,
    distance: Distance = straight,
) -> DispatchPlan:
    """Plan ``problem`` by the module's rules; pure, deterministic for a given solver seed and
    iteration limit. ``distance`` measures drone flight paths (default: straight lines)."""
    s = settings or DispatchSettings()
    t0 = time.perf_counter()
    sites = {c.id: c for c in problem.communities}
    seen: set[str] = set()
    for t in problem.tasks:
        if t.id in seen:
            raise ValidationError(f"task {t.id} appears twice", field="tasks")
        seen.add(t.id)
        if t.community_id not in sites:
            raise ValidationError(f"task {t.id}: unknown community {t.community_id}", field="tasks")
        if not isinstance(t.boxes, int) or t.boxes <= 0:
            raise ValidationError(f"task {t.id}: boxes must be positive", field="tasks")

    # 1. drones
    max_payload = max((d.spec.payload_kg for d in problem.drones if d.available), default=0.0)
    drone_tasks: list[DroneTask] = []
    mode_reason: dict[str, str] = {}
    van_tasks: list[DeliveryTask] = []
    for t in problem.tasks:
        why = _van_because(t, s, max_payload)
        if why:
            mode_reason[t.id] = why
            van_tasks.append(t)
            continue
        mode_reason[t.id] = (
            f"light ({t.kg:g} kg within the {max_payload:g} kg drone payload) and "
            f"{class_label(t.priority)}: flown by drone"
        )
        site = sites[t.community_id]
        drone_tasks.append(
            DroneTask(
                id=t.id,
                drop=site.drop,
                kg=t.kg,
                priority=t.priority,
                deadline=t.deadline,
                ready_at=t.ready_at,
                community_id=t.community_id,
                request_ids=t.request_ids,
            )
        )
    drone_plan = assign_drones(
        drone_tasks, problem.drones, problem.now, s.drones, distance=distance
    )
    by_id = {t.id: t for t in problem.tasks}
    for u in drone_plan.unassigned:
        mode_reason[u.task.id] = f"meant for a drone, but {u.reason}; carried by van instead"
        van_tasks.append(by_id[u.task.id])

    # 2. vans
    cap = s.max_stop_boxes or min((v.max_boxes for v in problem.vans), default=150)
    stops = _consolidate(van_tasks, sites, cap, s.consolidation_window_s)
    van_plan = plan_vans(
        VanProblem(
            now=problem.now,
            depot=problem.depot,
            matrix=problem.matrix,
            stops=tuple(stops),
            vans=problem.vans,
            shift_end=problem.shift_end,
            shift_start=problem.shift_start,
        ),
        s.vans,
        previous=previous.vans if previous is not None else None,
    )

    # 3. outcomes per task
    outcomes: list[TaskOutcome] = []
    for so in drone_plan.sorties:
        t = by_id[so.task.id]
        outcomes.append(
            TaskOutcome(
                t.id,
                Mode.DRONE,
                so.drone_id,
                so.ref,
                so.drop_at,
                t.deadline,
                f"{mode_reason[t.id]}; {_reason_of(drone_plan.decisions, t.id)}",
            )
        )
    stop_reason = {
        d.subject_id: d.reason
        for d in van_plan.decisions
        if d.kind in (DecisionKind.ASSIGNMENT, DecisionKind.UNSERVED, DecisionKind.KEPT)
    }
    done: dict[str, tuple[float | None, str | None, str | None, str]] = {}
    for trip, vis in van_plan.visits():
        for tid in vis.stop.task_ids:
            base = tid.split("#", 1)[0]
            prev = done.get(base)
            if prev is None or (prev[0] is not None and vis.finish > prev[0]):
                done[base] = (vis.finish, trip.vehicle_id, trip.ref, stop_reason[vis.stop.id])
    missing: dict[str, str] = {}
    for left in van_plan.unserved:
        for tid in left.stop.task_ids:
            missing[tid.split("#", 1)[0]] = left.reason
    van_ids = {tid.split("#", 1)[0] for st in stops for tid in st.task_ids}
    van_ids |= set(done) | set(missing)
    for tid in sorted(van_ids):
        t_or_none = by_id.get(tid)
        deadline = t_or_none.deadline if t_or_none else None
        head = mode_reason.get(tid, "re-planned from a van that left")
        if tid in missing:  # any part unserved: the task is not delivered in this plan
            outcomes.append(
                TaskOutcome(
                    tid, Mode.UNSERVED, None, None, None, deadline, f"{head}; {missing[tid]}"
                )
            )
        elif tid in done:
            fin, vid, ref, why = done[tid]
            outcomes.append(TaskOutcome(tid, Mode.VAN, vid, ref, fin, deadline, f"{head}; {why}"))
    outcomes.sort(key=lambda o: o.task_id)
    return DispatchPlan(
        now=problem.now,
        vans=van_plan,
        drones=drone_plan,
        outcomes=tuple(outcomes),
        decisions=drone_plan.decisions + van_plan.decisions,
        stops=tuple(stops),
        runtime_s=time.perf_counter() - t0,
    )


def _van_because(t: DeliveryTask, s: DispatchSettings, max_payload: float) -> str:
    """Why ``t`` goes by van ('' when it is for the drones)."""
    if t.priority not in s.drone_classes:
        return f"{class_label(t.priority)}: drones are kept for urgent light loads"
    if not t.drone_eligible:
        return "contains goods that may not fly"
    if max_payload <= 0:
        return "no drone available"
    if t.kg > max_payload + 1e-9:
        return f"{t.kg:g} kg is over the {max_payload:g} kg drone payload"
    return ""


_Piece = tuple[str, DeliveryTask, int, float]
"""(task or part id, task, boxes, kg)."""


def _consolidate(
    tasks: Sequence[DeliveryTask],
    sites: dict[str, CommunitySite],
    cap: int,
    window: float,
) -> list[VanStop]:
    """Van stops from tasks: per community and class, by deadline, within ``window`` and
    ``cap`` boxes; tasks over ``cap`` are cut into parts ``<task>#1``, ``#2``, ..."""
    groups: dict[tuple[str, int], list[DeliveryTask]] = defaultdict(list)
    for t in tasks:
        groups[(t.community_id, t.priority.rank)].append(t)
    out: list[VanStop] = []
    for (cid, _rank), ts in sorted(groups.items()):
        ts.sort(key=lambda t: (t.deadline, t.id))
        chunks: list[list[_Piece]] = []
        for piece in _pieces(ts, cap):
            chunk = chunks[-1] if chunks else None
            if (
                chunk is None
                or sum(q[2] for q in chunk) + piece[2] > cap
                or piece[1].deadline - chunk[0][1].deadline > window
            ):
                chunks.append([piece])
            else:
                chunk.append(piece)
        for n, chunk in enumerate(chunks, start=1):
            out.append(_stop(f"{cid}/{chunk[0][1].priority.value}/{n}", sites[cid].gate, chunk))
    return out


def _pieces(tasks: Sequence[DeliveryTask], cap: int) -> list[_Piece]:
    out: list[_Piece] = []
    for t in tasks:
        if t.boxes <= cap:
            out.append((t.id, t, t.boxes, t.kg))
            continue
        parts = math.ceil(t.boxes / cap)
        left_b, left_kg = t.boxes, t.kg
        for k in range(1, parts + 1):
            b = min(cap, left_b)
            kg = t.kg * b / t.boxes if k < parts else left_kg
            out.append((f"{t.id}#{k}", t, b, kg))
            left_b -= b
            left_kg -= kg
    return out


def _stop(stop_id: str, gate: int, chunk: list[_Piece]) -> VanStop:
    first = chunk[0][1]
    ready = [p[1].ready_at for p in chunk if p[1].ready_at is not None]
    return VanStop(
        id=stop_id,
        place=gate,
        boxes=sum(p[2] for p in chunk),
        kg=sum(p[3] for p in chunk),
        deadline=min(p[1].deadline for p in chunk),
        priority=first.priority,
        ready_at=max(ready) if ready else None,
        request_ids=tuple(dict.fromkeys(r for p in chunk for r in p[1].request_ids)),
        task_ids=tuple(p[0] for p in chunk),
    )


def _reason_of(decisions: Sequence[Decision], subject: str) -> str:
    for d in decisions:
        if d.subject_id == subject and d.kind is DecisionKind.ASSIGNMENT:
            return d.reason
    return ""
