"""Decision records: every choice the dispatcher makes, with the reason a person can read.

A :class:`Decision` is what the store persists as a ``mission_event`` of kind ``decision`` (or
on the request when no mission exists yet) and what the API shows under "why": why this
quantity (allocation), why this vehicle and this slot (assignment), why nothing could take the
work now (unserved), and deadlines that cannot be met (reported, never hidden). ``data`` holds
the figures behind the sentence, JSON-safe, so the API and audits can show them without
re-running the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DecisionKind(StrEnum):
    """What a decision is about."""

    ALLOCATION = "allocation"
    """How much of a scarce SKU a request or community receives."""
    ASSIGNMENT = "assignment"
    """Which vehicle (and trip or sortie) carries a task, and when it should arrive."""
    UNSERVED = "unserved"
    """No vehicle can take the task in this plan; the reason says what is missing."""
    DEADLINE = "deadline"
    """The task cannot meet its deadline with any vehicle; it is still planned as early as
    possible (or left unserved) and an operator is told."""
    REASSIGNMENT = "reassignment"
    """A re-plan moved work away from a vehicle that failed or left."""
    KEPT = "kept"
    """Work a vehicle has started and a re-plan left in place."""


@dataclass(frozen=True, slots=True)
class Alternative:
    """A vehicle that was considered and not chosen, and why."""

    vehicle_id: str
    reason: str
    feasible: bool = False
    """True when it could do it, just worse than the chosen one."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision with its reason."""

    kind: DecisionKind
    subject_id: str
    """The task, stop or request the decision is about."""
    reason: str
    """One or two sentences for people: the why, with the figures that matter."""
    vehicle_id: str | None = None
    plan_ref: str | None = None
    """The trip or sortie in the plan (``van-1/trip-2``, ``drone-3/sortie-1``)."""
    quantity: int | None = None
    request_ids: tuple[str, ...] = ()
    """Requests the subject carries (traceability)."""
    alternatives: tuple[Alternative, ...] = ()
    """Others considered (why not them)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Figures behind the reason, JSON-safe."""

    def as_event(self) -> dict[str, Any]:
        """JSON-safe form for a ``mission_event.data`` column."""
        return {
            "kind": self.kind.value,
            "subject_id": self.subject_id,
            "reason": self.reason,
            "vehicle_id": self.vehicle_id,
            "plan_ref": self.plan_ref,
            "quantity": self.quantity,
            "request_ids": list(self.request_ids),
            "alternatives": [
                {"vehicle_id": a.vehicle_id, "reason": a.reason, "feasible": a.feasible}
                for a in self.alternatives
            ],
            "data": dict(self.data),
        }


def hhmm(t: float) -> str:
    """World time (epoch seconds) as UTC ``HH:MM`` for reasons."""
    t = t % 86400
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"
