"""The in-process event bus: fleet events fan out to subscribers through bounded queues.

Publishers never block: each subscriber has its own bounded queue, and a subscriber that falls
behind loses its oldest events and is told how many it missed (``Subscription.dropped``). The
bus is for live consumers (dashboard streams, monitors, the store's event writer); the durable
record of mission events is the store. Events are frozen dataclasses deriving from
:class:`FleetEvent`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetEvent:
    """Base of every event on the bus."""

    at: float
    """World time (clock ``time()``) when it happened."""


class Severity(StrEnum):
    """How much attention an event needs (MAV_SEVERITY collapsed to four levels)."""

    DEBUG = "debug"
    """Diagnostics."""
    INFO = "info"
    """Normal operation."""
    WARNING = "warning"
    """Needs attention soon."""
    ERROR = "error"
    """Something failed."""


class VehicleEventKind(StrEnum):
    """What happened to a vehicle."""

    DISCOVERED = "discovered"
    """First message from a new vehicle."""
    LINK_LOST = "link_lost"
    """Silent for longer than the link timeout."""
    LINK_REGAINED = "link_regained"
    """Heard again after a loss."""
    STATUS_TEXT = "status_text"
    """Text the vehicle sent (MAVLink STATUSTEXT/EVENT, VDA 5050 error)."""
    MODE_CHANGED = "mode_changed"
    """Flight mode or operating mode changed."""
    ARMED = "armed"
    """Motors armed."""
    DISARMED = "disarmed"
    """Motors disarmed."""
    FAILSAFE = "failsafe"
    """The vehicle took a failsafe action."""
    PAYLOAD = "payload"
    """Payload action (release, broadcast playback)."""
    LANDED_STATE = "landed_state"
    """The vehicle's landed state changed (on ground, taking off, in air, landing)."""
    MISSION_STATE = "mission_state"
    """The vehicle's verdict on its stored mission changed (no mission, invalid, not started,
    active, paused, complete)."""
    READINESS = "readiness"
    """The vehicle became ready, or stopped being ready, to fly a mission (with the reasons)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleEvent(FleetEvent):
    """Something a vehicle reported or that happened to its link."""

    vehicle_id: str
    kind: VehicleEventKind
    message: str = ""
    severity: Severity = Severity.INFO
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """A subscriber's view of the bus; iterate it to receive events."""

    def __init__(
        self, bus: EventBus, predicate: Callable[[FleetEvent], bool] | None, maxsize: int
    ) -> None:
        self._bus = bus
        self._predicate = predicate
        self._queue: asyncio.Queue[FleetEvent] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        """Events lost because this subscriber fell behind."""

    def _offer(self, event: FleetEvent) -> None:
        if self._predicate is not None and not self._predicate(event):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> FleetEvent:
        return await self._queue.get()

    def get_nowait(self) -> FleetEvent | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[FleetEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[FleetEvent]:
        while True:
            yield await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of fleet events to any number of subscribers."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def publish(self, event: FleetEvent) -> None:
        """Deliver ``event`` to every matching subscriber; never blocks."""
        for sub in tuple(self._subscribers):
            sub._offer(event)

    def subscribe(
        self,
        predicate: Callable[[FleetEvent], bool] | None = None,
        *,
        maxsize: int = 1000,
    ) -> Subscription:
        """Start receiving events (those ``predicate`` accepts); use as a context manager."""
        sub = Subscription(self, predicate, maxsize)
        self._subscribers.add(sub)
        return sub
