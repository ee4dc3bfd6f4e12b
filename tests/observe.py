"""What the service observed of its drones during a test, as comparable sequences.

A :class:`Recorder` subscribes to a running service's event bus and keeps, per vehicle, the
sequence of what the MAVLink bridge reported: flight-mode changes, landed states, mission-state
transitions, readiness changes and the vehicle's events by name (STATUSTEXTs without an event
are kept by text). :meth:`Recorder.trace` turns that, plus a mission's phases read from the
API, into a :class:`Trace`: plain lists, consecutive repeats collapsed, so that two runs of the
same scenario on different autopilots (the sim and PX4 SITL) can be compared item by item
(:mod:`tests.sitl.differential`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from fleet.events import EventBus, FleetEvent, Severity, VehicleEvent, VehicleEventKind

CATEGORIES = ("phases", "modes", "mission_states", "landed", "events")
"""What a trace compares, in report order."""

_KINDS = frozenset(
    {
        VehicleEventKind.MODE_CHANGED,
        VehicleEventKind.LANDED_STATE,
        VehicleEventKind.MISSION_STATE,
        VehicleEventKind.READINESS,
        VehicleEventKind.STATUS_TEXT,
        VehicleEventKind.ARMED,
        VehicleEventKind.DISARMED,
    }
)


@dataclass(frozen=True, slots=True)
class Seen:
    """One observation: world time, vehicle, kind and value."""

    at: float
    vehicle_id: str
    kind: VehicleEventKind
    value: str
    severity: Severity
    data: dict[str, Any]


def collapse(values: Iterable[str]) -> list[str]:
    """``values`` with consecutive repeats removed."""
    out: list[str] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


@dataclass
class Trace:
    """One vehicle's observations during one mission, by category."""

    phases: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    mission_states: list[str] = field(default_factory=list)
    landed: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def category(self, name: str) -> list[str]:
        values: list[str] = getattr(self, name)
        return values

    def as_dict(self) -> dict[str, list[str]]:
        return {c: self.category(c) for c in CATEGORIES}


def event_key(seen: Seen) -> str | None:
    """How a text is compared: an event by its name, a STATUSTEXT by its words; None for texts
    not worth comparing (debug level, events nobody could name)."""
    if seen.severity is Severity.DEBUG:
        return None
    name = seen.data.get("event_name")
    if seen.data.get("source") == "event":
        return str(name) if name else None
    return f"text: {seen.value}"


class Recorder:
    """Collects a service's vehicle observations; use as a context manager around a scenario."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.seen: list[Seen] = []
        self._sub: Any = None

    def __enter__(self) -> Recorder:
        self._sub = self._bus.subscribe(self._wanted, maxsize=100_000)
        return self

    def __exit__(self, *exc: object) -> None:
        self.drain()
        if self._sub is not None:
            self._sub.close()

    @staticmethod
    def _wanted(event: FleetEvent) -> bool:
        return isinstance(event, VehicleEvent) and event.kind in _KINDS

    def drain(self) -> None:
        """Move what the bus delivered so far into :attr:`seen`."""
        if self._sub is None:
            return
        while (event := self._sub.get_nowait()) is not None:
            assert isinstance(event, VehicleEvent)
            self.seen.append(
                Seen(
                    event.at,
                    event.vehicle_id,
                    event.kind,
                    _value(event),
                    event.severity,
                    dict(event.data),
                )
            )

    def of(
        self, vehicle_id: str, start: float = float("-inf"), end: float = float("inf")
    ) -> list[Seen]:
        self.drain()
        return [s for s in self.seen if s.vehicle_id == vehicle_id and start <= s.at <= end]

    async def trace(self, http: httpx.AsyncClient, mission_id: str) -> Trace:
        """The trace of ``mission_id``: its phases (from the API) and what its vehicle reported
        from the mission's creation until the end of the recording."""
        mission = (await http.get(f"/v1/missions/{mission_id}")).json()
        vehicle_id = mission["vehicle_id"]
        events = mission["events"]
        phases = [e["data"]["phase"] for e in events if e["kind"] == "phase"]
        start = _world_time(events[0]["at"]) if events else float("-inf")
        by_kind: dict[VehicleEventKind, list[str]] = defaultdict(list)
        texts: list[str] = []
        for s in self.of(vehicle_id, start=start - 1.0):
            if s.kind is VehicleEventKind.STATUS_TEXT:
                key = event_key(s)
                if key is not None:
                    texts.append(key)
            else:
                by_kind[s.kind].append(s.value)
        return Trace(
            phases=collapse(phases),
            modes=collapse(by_kind[VehicleEventKind.MODE_CHANGED]),
            mission_states=collapse(by_kind[VehicleEventKind.MISSION_STATE]),
            landed=collapse(by_kind[VehicleEventKind.LANDED_STATE]),
            events=texts,
        )


def _value(event: VehicleEvent) -> str:
    data = event.data
    if event.kind is VehicleEventKind.MODE_CHANGED:
        return str(data.get("mode", event.message))
    if event.kind is VehicleEventKind.LANDED_STATE:
        return str(data.get("landed", event.message))
    if event.kind is VehicleEventKind.MISSION_STATE:
        return str(data.get("state", event.message))
    if event.kind is VehicleEventKind.READINESS:
        return "ready" if data.get("ready") else "not ready"
    return event.message or str(event.kind)


def _world_time(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
