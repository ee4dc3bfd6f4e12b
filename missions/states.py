"""The documented state vocabularies of requests, tasks and missions, and their transitions.

One vocabulary for air and ground. Every transition the service makes is checked here and stored
as a mission event with its reason (``missions.events``). See ``docs/missions.md`` for the
diagrams.

Mission::

    planned ──> authorized ──> underway ──> completed
       │             │             ├──────> failed
       │             │             ├──────> interrupted   (work must be re-dispatched)
       └─────────────┴─────────────┴──────> cancelled

Request::

    submitted ──> approved ──> scheduled ──> in_progress ──> delivered / partially_delivered
        │             │            │  ^            │         / completed (broadcast) / failed
        └> rejected   │            └──┘ (re-plan)  │
                      └────────────┴───────────────┴──> cancelled (while it can be stopped)
"""

from __future__ import annotations

from enum import StrEnum

from fleet.errors import Conflict


class MissionState(StrEnum):
    """Lifecycle of a mission (one vehicle's piece of work)."""

    PLANNED = "planned"
    """Route and actions computed, vehicle chosen; nothing sent to the vehicle yet."""
    AUTHORIZED = "authorized"
    """Safety checks passed and the plan is on the vehicle; ready to start."""
    UNDERWAY = "underway"
    """The vehicle is executing it."""
    COMPLETED = "completed"
    """Every phase done and the vehicle is back."""
    FAILED = "failed"
    """It could not be done; the reason says why; its work goes back to the queue."""
    CANCELLED = "cancelled"
    """Stopped on request before completion."""
    INTERRUPTED = "interrupted"
    """Stopped by events (vehicle lost, service restart) with work left to re-dispatch."""


MISSION_TERMINAL = frozenset(
    {MissionState.COMPLETED, MissionState.FAILED, MissionState.CANCELLED, MissionState.INTERRUPTED}
)
"""States a mission never leaves."""

MISSION_ACTIVE = frozenset({MissionState.PLANNED, MissionState.AUTHORIZED, MissionState.UNDERWAY})
"""States in which a mission holds its vehicle."""

_MISSION_NEXT: dict[MissionState, frozenset[MissionState]] = {
    MissionState.PLANNED: frozenset(
        {
            MissionState.AUTHORIZED,
            MissionState.FAILED,
            MissionState.CANCELLED,
            MissionState.INTERRUPTED,
        }
    ),
    MissionState.AUTHORIZED: frozenset(
        {
            MissionState.UNDERWAY,
            MissionState.FAILED,
            MissionState.CANCELLED,
            MissionState.INTERRUPTED,
        }
    ),
    MissionState.UNDERWAY: frozenset(
        {
            MissionState.COMPLETED,
            MissionState.FAILED,
            MissionState.CANCELLED,
            MissionState.INTERRUPTED,
        }
    ),
}


def mission_transition_allowed(src: MissionState, dst: MissionState) -> bool:
    return dst in _MISSION_NEXT.get(src, frozenset())


def check_mission_transition(src: MissionState, dst: MissionState) -> None:
    """Raise ``Conflict`` unless ``src`` → ``dst`` is a documented transition."""
    if not mission_transition_allowed(src, dst):
        raise Conflict(f"a mission cannot go from {src} to {dst}", from_state=src, to_state=dst)


class Phase(StrEnum):
    """What a mission is doing now (air and ground)."""

    PREFLIGHT = "preflight"
    """Uploading the plan, checks, arming."""
    TAKEOFF = "takeoff"
    """Climbing from the pad."""
    GO_TO = "go_to"
    """Travelling to the next stop."""
    PICK_UP = "pick_up"
    """Loading at a warehouse or stop."""
    DROP_OFF = "drop_off"
    """Descending and releasing, or unloading at a gate."""
    BROADCAST = "broadcast"
    """Flying the coverage path with the speaker playing."""
    WAIT = "wait"
    """Holding (operator pause, failsafe hold)."""
    RETURN = "return"
    """Going back to base."""
    LANDING = "landing"
    """Descending onto the pad."""
    DONE = "done"
    """Back and disarmed or parked."""


class RequestState(StrEnum):
    """Lifecycle of a request."""

    SUBMITTED = "submitted"
    """Accepted and stored; waiting for approval."""
    APPROVED = "approved"
    """Approved (by rule or operator); deadline running; waiting for allocation and a vehicle."""
    REJECTED = "rejected"
    """Refused by an operator or a rule; the reason says why."""
    SCHEDULED = "scheduled"
    """Stock allocated and its tasks placed on planned missions."""
    IN_PROGRESS = "in_progress"
    """At least one of its missions is underway."""
    DELIVERED = "delivered"
    """Everything allocated was delivered (delivery requests)."""
    PARTIALLY_DELIVERED = "partially_delivered"
    """Closed with less than asked (scarcity); the shortfall is recorded."""
    COMPLETED = "completed"
    """A broadcast finished with its coverage report."""
    FAILED = "failed"
    """Could not be carried out; the reason says why."""
    CANCELLED = "cancelled"
    """Cancelled before it finished."""


REQUEST_OPEN = frozenset(
    {
        RequestState.SUBMITTED,
        RequestState.APPROVED,
        RequestState.SCHEDULED,
        RequestState.IN_PROGRESS,
    }
)
"""States of a request still being worked on."""

REQUEST_CANCELLABLE = frozenset(
    {RequestState.SUBMITTED, RequestState.APPROVED, RequestState.SCHEDULED}
)
"""States in which a cancel can still stop the work without recalling a vehicle in flight.

An ``in_progress`` request is cancelled by cancelling its missions (drones return with the load).
"""


class Priority(StrEnum):
    """Priority class of a request; earlier members are served first."""

    URGENT_MEDICAL = "urgent_medical"
    """Medicine or medical equipment needed now."""
    VULNERABLE = "vulnerable"
    """For vulnerable residents such as elderly people living alone."""
    STANDARD = "standard"
    """Everything else."""

    @property
    def rank(self) -> int:
        """0 for the most urgent class."""
        return list(Priority).index(self)


class TaskState(StrEnum):
    """Lifecycle of a task (a load for one community or one broadcast area)."""

    PENDING = "pending"
    """Waiting for a mission."""
    ASSIGNED = "assigned"
    """On a planned or running mission."""
    DONE = "done"
    """Delivered or broadcast."""
    FAILED = "failed"
    """Its mission failed; a new task carries the work again."""
    CANCELLED = "cancelled"
    """Its request was cancelled."""


class MissionKind(StrEnum):
    """Kinds of missions."""

    DRONE_DELIVERY = "drone_delivery"
    """Take off, fly to a drop point, release, return, land."""
    DRONE_BROADCAST = "drone_broadcast"
    """Fly a coverage path while the speaker plays."""
    VAN_SHUTTLE = "van_shuttle"
    """A van trip from the warehouse to several community gates and back."""


class RequestKind(StrEnum):
    """Kinds of requests."""

    DELIVERY = "delivery"
    """Items and quantities for a community."""
    BROADCAST = "broadcast"
    """A message over an area."""
