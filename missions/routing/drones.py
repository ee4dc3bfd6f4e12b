"""Drone assignment for light urgent loads: which drone flies which delivery, and when.

A delivery drone flies one load per sortie: take off from its pad, cruise to the community's
drop point, descend, release, climb, cruise back, land; then a turnaround (load the next
parcel, pre-flight checks) and, when the battery is too low for the next sortie, a battery
swap to full. Nothing here talks to a drone: the result is a list of sorties with predicted
times, energy and reasons, which the mission layer turns into flight plans.

**Energy model** (battery fractions, documented so operators can check a refusal by hand)::

    loaded factor  L = 1 + payload_factor_per_kg * payload_kg
    energy = L * (out_km * cruise_per_km + loaded_vertical_min * hover_per_min)
           +     (back_km * cruise_per_km + empty_vertical_min * hover_per_min)

Vertical minutes are the climbs, descents, the hold at the drop point and the take-off
overhead, flown at hover power. A sortie is allowed only when ``battery - energy >=
reserve_fraction``; a drone that cannot do it even on a full battery is out of range for it.
The model and its default figures are :mod:`fleet.energy`, the one energy model of the project
(5 m/s cruise, 1.5 m/s climb, 1 m/s descent, about 3.5 % of a battery per minute when loaded).

**Assignment**: tasks in priority-class order, then deadline, then readiness; each goes to the
drone with the lowest cost ``drop time + energy_weight_s * energy + late_penalty_s`` (the last
term only when the drop would land within ``risk_margin_s`` of the deadline or after it), so
the earliest safe drop wins and energy breaks near-ties. A drone is never given a load over
its payload, a sortie its battery cannot fly with the reserve, or any work while unavailable.
A task that no drone can drop before its deadline is still assigned to the earliest drone and
reported as a deadline decision (or left to the vans with ``allow_late=False``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from fleet import energy as em
from fleet.errors import ValidationError
from missions.priorities import class_label
from missions.routing.decisions import Alternative, Decision, DecisionKind, hhmm
from missions.states import Priority

XY = tuple[float, float]
"""A point in the world's local frame, metres (x east, y north)."""


@dataclass(frozen=True, slots=True)
class DroneSpec:
    """Performance of a delivery drone (see the module's energy model)."""

    payload_kg: float = em.REFERENCE_PAYLOAD_KG
    cruise_speed_mps: float = em.CRUISE_SPEED_MPS
    climb_speed_mps: float = em.CLIMB_SPEED_MPS
    descent_speed_mps: float = em.DESCENT_SPEED_MPS
    cruise_alt_m: float = 40.0
    drop_alt_m: float = 8.0
    drop_hold_s: float = 4.0
    overhead_s: float = em.TAKEOFF_OVERHEAD_S
    """Arming, spool-up and landing settle per sortie, flown at hover power."""
    cruise_per_km: float = em.CRUISE_PER_KM
    """Battery fraction per km of cruise, empty."""
    hover_per_min: float = em.HOVER_PER_MIN
    """Battery fraction per minute of vertical flight or hover, empty."""
    payload_factor_per_kg: float = em.PAYLOAD_FACTOR_PER_KG
    """Extra consumption per kg carried (0.07: +17.5 % with 2.5 kg)."""
    reserve_fraction: float = 0.25
    """Battery that must remain on landing."""
    turnaround_s: float = 180.0
    """Landing to the next take-off: unload the gripper, load the next parcel, checks."""
    swap_s: float = 120.0
    """Extra time to swap the battery for a full one."""

    def __post_init__(self) -> None:
        for name in ("payload_kg", "cruise_speed_mps", "climb_speed_mps", "descent_speed_mps"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} must be positive", field=name)
        if not 0 <= self.reserve_fraction < 1:
            raise ValidationError("reserve must be in [0, 1)", field="reserve_fraction")
        if self.drop_alt_m > self.cruise_alt_m:
            raise ValidationError("drop altitude above cruise altitude", field="drop_alt_m")


@dataclass(frozen=True, slots=True)
class Drone:
    """A delivery drone as the planner sees it."""

    id: str
    home: XY
    """Its pad, where every sortie starts and ends."""
    spec: DroneSpec = DroneSpec()
    battery: float = 1.0
    """Charge (0..1) it will have when free at ``ready_at``."""
    ready_at: float | None = None
    """On its pad and free (after a started sortie); ``None``: now."""
    available: bool = True
    """False: out of service (failed, grounded, lost link); gets no work."""
    why_unavailable: str = ""
    can_swap: bool = True
    """A charged battery is at its pad for a swap."""


@dataclass(frozen=True, slots=True)
class DroneTask:
    """A light load for one community's drop point."""

    id: str
    drop: XY
    kg: float
    priority: Priority = Priority.URGENT_MEDICAL
    deadline: float | None = None
    ready_at: float | None = None
    """When the load is at the pad."""
    community_id: str = ""
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DroneAssignmentSettings:
    """Costs of the drone assignment."""

    risk_margin_s: float = 300.0
    """A drop planned within this of the deadline is at risk and costs ``late_penalty_s``."""
    late_penalty_s: float = 3600.0
    energy_weight_s: float = 600.0
    """Seconds of delay worth a full battery: energy breaks near-ties between drones."""
    allow_late: bool = True
    """Assign a task no drone can deliver on time (reported); False leaves it unassigned."""
    max_alternatives: int = 6
    """How many not-chosen drones a decision lists."""


SortieEstimate = em.SortieEstimate
"""What one sortie of one drone for one load would take (:class:`fleet.energy.SortieEstimate`)."""


@dataclass(frozen=True, slots=True)
class Sortie:
    """A planned sortie."""

    drone_id: str
    number: int
    task: DroneTask
    takeoff: float
    drop_at: float
    """Release time: the delivery time."""
    landed: float
    ready_again: float
    """Free for the next sortie (after turnaround)."""
    distance_m: float
    energy: float
    battery_before: float
    battery_after: float
    swapped: bool
    """A battery swap precedes it."""

    @property
    def ref(self) -> str:
        return f"{self.drone_id}/sortie-{self.number}"

    @property
    def on_time(self) -> bool | None:
        d = self.task.deadline
        return None if d is None else self.drop_at <= d + 1e-9

    @property
    def slack_s(self) -> float | None:
        d = self.task.deadline
        return None if d is None else d - self.drop_at


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A task no drone takes, and why."""

    task: DroneTask
    reason: str


@dataclass(frozen=True, slots=True)
class DronePlan:
    """The assignment result."""

    sorties: tuple[Sortie, ...]
    unassigned: tuple[Unassigned, ...]
    decisions: tuple[Decision, ...]
    runtime_s: float

    def sortie(self, task_id: str) -> Sortie | None:
        for s in self.sorties:
            if s.task.id == task_id:
                return s
        return None

    @property
    def late(self) -> list[Sortie]:
        return [s for s in self.sorties if s.on_time is False]


Distance = Callable[[XY, XY], float]
"""Flight path length between two local-frame points (default: straight line)."""


def straight(a: XY, b: XY) -> float:
    return math.dist(a, b)


def estimate(spec: DroneSpec, out_m: float, back_m: float, kg: float) -> SortieEstimate:
    """Time and energy of a sortie flying ``out_m`` loaded and ``back_m`` empty
    (:func:`fleet.energy.estimate_sortie` with the drone's figures)."""
    return em.estimate_sortie(
        out_m,
        back_m,
        kg,
        cruise_alt_m=spec.cruise_alt_m,
        drop_alt_m=spec.drop_alt_m,
        drop_hold_s=spec.drop_hold_s,
        cruise_speed_mps=spec.cruise_speed_mps,
        climb_speed_mps=spec.climb_speed_mps,
        descent_speed_mps=spec.descent_speed_mps,
        cruise_per_km=spec.cruise_per_km,
        hover_per_min=spec.hover_per_min,
        payload_factor_per_kg=spec.payload_factor_per_kg,
        overhead_s=spec.overhead_s,
    )


@dataclass
class _DroneState:
    drone: Drone
    ready: float
    battery: float
    count: int = 0


def assign_drones(
    tasks: Sequence[DroneTask],
    drones: Sequence[Drone],
    now: float,
    settings: DroneAssignmentSettings | None = None,
    *,
    distance: Distance = straight,
) -> DronePlan:
    """Assign ``tasks`` to ``drones`` (see the module docstring); pure and deterministic."""
    s = settings or DroneAssignmentSettings()
    t0 = time.perf_counter()
    ids = set()
    for t in tasks:
        if t.id in ids:
            raise ValidationError(f"task {t.id} appears twice", field="tasks")
        ids.add(t.id)
        if not t.kg >= 0:
            raise ValidationError(f"task {t.id}: kg must be >= 0", field="tasks")
    if len({d.id for d in drones}) != len(drones):
        raise ValidationError("a drone appears twice", field="drones")
    states = [
        _DroneState(d, max(now, d.ready_at if d.ready_at is not None else now), min(1.0, d.battery))
        for d in drones
    ]
    order = sorted(
        tasks,
        key=lambda t: (
            t.priority.rank,
            t.deadline if t.deadline is not None else math.inf,
            t.ready_at if t.ready_at is not None else now,
            t.id,
        ),
    )
    sorties: list[Sortie] = []
    unassigned: list[Unassigned] = []
    decisions: list[Decision] = []
    for task in order:
        options: list[tuple[tuple[float, float, str], _DroneState, Sortie, SortieEstimate]] = []
        refusals: list[Alternative] = []
        for st in states:
            why, sortie, est = _try(st, task, now, s, distance)
            if sortie is None or est is None:
                refusals.append(Alternative(st.drone.id, why))
                continue
            risky = task.deadline is not None and sortie.drop_at > task.deadline - s.risk_margin_s
            cost = sortie.drop_at + s.energy_weight_s * est.energy
            cost += s.late_penalty_s if risky else 0.0
            options.append(((cost, sortie.drop_at, st.drone.id), st, sortie, est))
        if not options:
            reason = "no drone can fly it: " + (
                "; ".join(a.reason for a in refusals) if refusals else "no drones"
            )
            unassigned.append(Unassigned(task, reason))
            decisions.append(_decision(DecisionKind.UNSERVED, task, reason, None, refusals, s))
            continue
        options.sort(key=lambda o: o[0])
        _, best_state, best, est = options[0]
        if best.on_time is False and not s.allow_late:
            reason = (
                f"no drone can drop it by its {hhmm(task.deadline or 0)} deadline (earliest "
                f"{hhmm(best.drop_at)} by {best.drone_id}); left for the vans"
            )
            unassigned.append(Unassigned(task, reason))
            decisions.append(_decision(DecisionKind.DEADLINE, task, reason, None, refusals, s))
            continue
        best_state.count += 1
        best = _renumber(best, best_state.count)
        best_state.ready = best.ready_again
        best_state.battery = best.battery_after
        sorties.append(best)
        alternatives = [
            Alternative(
                o[1].drone.id,
                f"could drop at {hhmm(o[2].drop_at)} "
                f"({(o[2].drop_at - best.drop_at) / 60:+.0f} min), using {o[3].energy:.0%} "
                "of a battery",
                feasible=True,
            )
            for o in options[1:]
        ]
        decisions.append(_assignment(task, best, est, alternatives + refusals, len(options), s))
        if best.on_time is False:
            decisions.append(
                _decision(
                    DecisionKind.DEADLINE,
                    task,
                    f"cannot meet its {hhmm(task.deadline or 0)} deadline: the earliest drop, "
                    f"by {best.drone_id}, is {hhmm(best.drop_at)} "
                    f"({-(best.slack_s or 0) / 60:.0f} min late)",
                    best,
                    [],
                    s,
                )
            )
    return DronePlan(tuple(sorties), tuple(unassigned), tuple(decisions), time.perf_counter() - t0)


def _try(
    st: _DroneState, task: DroneTask, now: float, s: DroneAssignmentSettings, distance: Distance
) -> tuple[str, Sortie | None, SortieEstimate | None]:
    d = st.drone
    spec = d.spec
    if not d.available:
        return (d.why_unavailable or f"{d.id} is out of service"), None, None
    if task.kg > spec.payload_kg + 1e-9:
        return (f"{d.id} carries {spec.payload_kg:g} kg, the load is {task.kg:g} kg"), None, None
    est = estimate(spec, distance(d.home, task.drop), distance(task.drop, d.home), task.kg)
    usable_full = 1.0 - spec.reserve_fraction
    if est.energy > usable_full + 1e-12:
        return (
            (
                f"{d.id} is out of range: the {(est.out_m + est.back_m) / 1000:.1f} km sortie "
                f"needs {est.energy:.0%} of a full battery plus the "
                f"{spec.reserve_fraction:.0%} reserve"
            ),
            None,
            None,
        )
    start = max(st.ready, now, task.ready_at if task.ready_at is not None else now)
    battery = st.battery
    swapped = False
    if battery - est.energy < spec.reserve_fraction - 1e-12:
        if not d.can_swap:
            return (
                (
                    f"{d.id} has {battery:.0%} battery, the sortie needs {est.energy:.0%} plus the "
                    f"{spec.reserve_fraction:.0%} reserve, and no charged battery is at its pad"
                ),
                None,
                None,
            )
        start += spec.swap_s
        battery = 1.0
        swapped = True
    drop_at = start + est.to_drop_s
    landed = start + est.flight_s
    return (
        "",
        Sortie(
            drone_id=d.id,
            number=0,
            task=task,
            takeoff=start,
            drop_at=drop_at,
            landed=landed,
            ready_again=landed + spec.turnaround_s,
            distance_m=est.out_m + est.back_m,
            energy=est.energy,
            battery_before=battery,
            battery_after=battery - est.energy,
            swapped=swapped,
        ),
        est,
    )


def _renumber(sortie: Sortie, number: int) -> Sortie:
    return replace(sortie, number=number)


def _assignment(
    task: DroneTask,
    best: Sortie,
    est: SortieEstimate,
    alternatives: list[Alternative],
    feasible: int,
    s: DroneAssignmentSettings,
) -> Decision:
    timing = f"takes off {hhmm(best.takeoff)}, drops at {hhmm(best.drop_at)}"
    if task.deadline is not None:
        slack = task.deadline - best.drop_at
        when = "before" if slack >= 0 else "after"
        timing += f", {abs(slack) / 60:.0f} min {when} its {hhmm(task.deadline)} deadline"
    swap = " after a battery swap" if best.swapped else ""
    reason = (
        f"{best.drone_id}: {timing}; {best.distance_m / 1000:.1f} km round trip with "
        f"{task.kg:g} kg uses {best.energy:.0%} of the battery{swap}, landing with "
        f"{best.battery_after:.0%}. Earliest safe drop of the {feasible} drone(s) able to fly "
        f"it ({class_label(task.priority)}; near-ties go to less energy, then the lower id)"
    )
    return Decision(
        kind=DecisionKind.ASSIGNMENT,
        subject_id=task.id,
        reason=reason,
        vehicle_id=best.drone_id,
        plan_ref=best.ref,
        quantity=None,
        request_ids=task.request_ids,
        alternatives=tuple(alternatives[: s.max_alternatives]),
        data={
            "takeoff": best.takeoff,
            "drop_at": best.drop_at,
            "landed": best.landed,
            "deadline": task.deadline,
            "on_time": best.on_time,
            "energy": round(est.energy, 4),
            "battery_after": round(best.battery_after, 4),
            "distance_m": round(best.distance_m, 1),
            "kg": task.kg,
            "swapped": best.swapped,
        },
    )


def _decision(
    kind: DecisionKind,
    task: DroneTask,
    reason: str,
    sortie: Sortie | None,
    alternatives: list[Alternative],
    s: DroneAssignmentSettings,
) -> Decision:
    return Decision(
        kind=kind,
        subject_id=task.id,
        reason=reason,
        vehicle_id=sortie.drone_id if sortie else None,
        plan_ref=sortie.ref if sortie else None,
        request_ids=task.request_ids,
        alternatives=tuple(alternatives[: s.max_alternatives]),
        data={"deadline": task.deadline, "priority": task.priority.value, "kg": task.kg},
    )
