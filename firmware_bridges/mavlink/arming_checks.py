"""PX4's health-and-arming-checks report, read from its events as QGroundControl reads it.

PX4's commander evaluates its checks continuously and reports the results as a sequence of
events (``HealthAndArmingChecks/Common.cpp``, ``Report::report``), whenever they change and
whenever MAV_CMD_RUN_PREARM_CHECKS asks for a fresh report:

1. ``commander_arming_check_summary`` (group ``arming_check``, type ``summary``, log level
   protocol): chunk index, health components with arming errors, with arming warnings (both
   ``health_component_t`` bitfields), then the navigation-mode groups that *can arm* and that
   *can run* (``navigation_mode_group_t`` bitfields; a group's bit is ``1 << nav_state``:
   manual 1, altctl 2, posctl 4, mission 8, loiter 16, rtl 32, ..., takeoff 1 << 17,
   land 1 << 18);
2. one event per failing check (group ``arming_check`` or ``health``), whose arguments start
   with the mode groups it affects and the index of the health component it concerns
   (``1 << index`` in ``health_component_t``; 0 is "none"), its own arguments following; its
   log level says how serious it is;
3. ``commander_health_summary`` (group ``health``, type ``summary``): chunk index, then the
   health components present, in error, in warning.

:class:`ArmingCheckTracker` follows that sequence the way libevents'
``HealthAndArmingChecks`` does (an arming summary starts a report, checks accumulate, the
health summary with the same chunk index completes it; anything out of order resets), with one
addition: it orders events by their sequence number, so that an event lost on the link and
received again through REQUEST_EVENT still lands in its report; a report whose missing events
never come is completed, marked incomplete, once :data:`GAP_HOLD_S` have passed since its health
summary (checked at the next event, and while someone waits for a report).

Without the vehicle's metadata (before the download finishes, or for a vehicle offering none)
the summaries are still understood through :data:`.wire.px4_events.FALLBACK_METADATA`; an event
the fallback does not know that arrives between the summaries is taken as a check with PX4's
fixed leading arguments (mode groups ``uint32``, component index ``uint8``) and shown as
``event 0x........``. The latest report is kept and re-rendered when metadata arrives.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware_bridges.mavlink import translate
from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.event_metadata import EnumDef, RenderedEvent
from fleet.events import Severity

GAP_HOLD_S = 2.0
"""A report missing events is completed this long (world s) after its health summary."""
BUFFER_SPAN = 256
"""Events older (by sequence) than the newest minus this are forgotten."""
RESTART_BACKWARDS = 64
"""A sequence number this far behind the newest means the vehicle's sequence restarted."""
_CHECK_HEAD = struct.Struct("<IB")
_KIND_ARMING = "arming"
_KIND_HEALTH = "health"
_KIND_CHECK = "check"
_KIND_MAYBE = "maybe"
"""An unknown event (fallback): a check if it lies between the two summaries."""


@dataclass(frozen=True, slots=True)
class ModeGroup:
    """One navigation-mode group of a report."""

    name: str
    """Metadata name: ``manual``, ``altctl``, ``posctl``, ``mission``, ``loiter``, ``rtl``..."""
    description: str
    bit: int
    can_arm: bool
    """The vehicle may arm in a mode of this group."""
    can_run: bool
    """A mode of this group may run (be switched to, or keep running, while armed)."""


@dataclass(frozen=True, slots=True)
class HealthComponent:
    """One health component (sensor, estimator, subsystem) of a report."""

    name: str
    description: str
    bit: int
    present: bool
    error: bool
    """Health error (health summary)."""
    warning: bool
    arming_error: bool
    """Arming check error (arming summary)."""
    arming_warning: bool


@dataclass(frozen=True, slots=True)
class Problem:
    """One failing check: the vehicle's own message and what it affects."""

    message: str
    description: str
    event: str | None
    """The check's event name (e.g. ``check_modes_global_pos``); None when unknown."""
    event_id: int
    level: int
    """External log level (MAV_SEVERITY scale)."""
    modes: tuple[str, ...]
    """Mode groups the check affects."""
    component: str | None
    """The health component it concerns; None for none."""
    group: str = ""
    """``arming_check`` or ``health`` (empty when the event is unknown)."""

    @property
    def severity(self) -> Severity:
        return translate.severity(self.level)

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "severity": str(self.severity),
            "modes": list(self.modes),
            "component": self.component,
            "event": self.event,
        }


@dataclass(frozen=True, slots=True)
class ArmingReport:
    """One complete health-and-arming-checks report."""

    at: float
    """Clock ``monotonic()`` when the report completed."""
    mode_groups: tuple[ModeGroup, ...]
    health: tuple[HealthComponent, ...]
    problems: tuple[Problem, ...]
    with_metadata: bool
    """Rendered with the vehicle's own metadata (False: the built-in fallback)."""
    complete: bool = True
    """False when some events of the report were never received."""

    def group(self, name: str) -> ModeGroup | None:
        return next((g for g in self.mode_groups if g.name == name), None)

    def can_arm(self, group: str) -> bool:
        """Whether the vehicle may arm in mode group ``group`` (e.g. ``"mission"``)."""
        g = self.group(group)
        return g is not None and g.can_arm

    def can_run(self, group: str) -> bool:
        g = self.group(group)
        return g is not None and g.can_run

    @property
    def arm_groups(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.mode_groups if g.can_arm)

    @property
    def run_groups(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.mode_groups if g.can_run)

    def problems_for(self, group: str) -> tuple[Problem, ...]:
        """The problems that affect mode group ``group``."""
        return tuple(p for p in self.problems if group in p.modes)

    @property
    def errors(self) -> tuple[str, ...]:
        """Health components in error (health or arming check)."""
        return tuple(h.name for h in self.health if h.error or h.arming_error)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.health if h.warning or h.arming_warning)

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-able summary (what ``VehicleStatus.extra["arming"]`` holds)."""
        return {
            "can_arm": list(self.arm_groups),
            "can_run": list(self.run_groups),
            "problems": [p.as_dict() for p in self.problems],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "metadata": self.with_metadata,
            "complete": self.complete,
        }


@dataclass(slots=True)
class _Entry:
    kind: str | None
    event: RenderedEvent
    level: int
    arrived: float


Renderer = Callable[[int, bytes], RenderedEvent]


def _kind(event: RenderedEvent, with_metadata: bool) -> str | None:
    if not event.known:
        return None if with_metadata else _KIND_MAYBE
    if event.group not in ("arming_check", "health"):
        return None
    if event.is_summary:
        return _KIND_ARMING if event.group == "arming_check" else _KIND_HEALTH
    return _KIND_CHECK if event.type == "" else None


class ArmingCheckTracker:
    """Assembles reports from the events of one vehicle (feed them in any order)."""

    def __init__(self, hold_s: float = GAP_HOLD_S) -> None:
        self.hold_s = hold_s
        self.report: ArmingReport | None = None
        """The latest complete report."""
        self.reports = 0
        """Reports completed so far."""
        self.interrupted = 0
        """Sequences dropped because a new one started or the chunk index did not match."""
        self._buffer: dict[int, _Entry] = {}
        self._last: tuple[int, int] | None = None
        """(wrapped, unwrapped) sequence of the newest event."""
        self._last_entries: list[_Entry] = []
        self._last_complete = True
        self._with_metadata = False

    def reset(self) -> None:
        """Forget partial reports (the vehicle's event sequence restarted)."""
        self._buffer.clear()
        self._last = None

    def _unwrap(self, seq: int) -> int:
        if self._last is None:
            self._last = (seq, seq)
            return seq
        wrapped, unwrapped = self._last
        delta = ((seq - wrapped + 0x8000) & 0xFFFF) - 0x8000
        u = unwrapped + delta
        if delta < -RESTART_BACKWARDS:
            self.reset()
            self._last = (seq, seq)
            return seq
        if delta > 0:
            self._last = (seq, u)
        return u

    def feed(
        self, seq: int, event: RenderedEvent, level: int, now: float, *, with_metadata: bool
    ) -> bool:
        """Take one event (every event, so gaps can be told from unrelated ones); True when it
        belongs to a report (the caller then need not show it as a text)."""
        kind = _kind(event, with_metadata)
        self._with_metadata = with_metadata
        u = self._unwrap(seq)
        self._buffer[u] = _Entry(kind, event, level, now)
        newest = self._last[1] if self._last is not None else u
        for old in [k for k in self._buffer if k < newest - BUFFER_SPAN]:
            del self._buffer[old]
        consumed = kind in (_KIND_ARMING, _KIND_HEALTH, _KIND_CHECK) or (
            kind == _KIND_MAYBE and self._inside_report(u)
        )
        self.poll(now)
        return consumed

    def _inside_report(self, u: int) -> bool:
        before = [k for k, e in self._buffer.items() if k < u and e.kind == _KIND_ARMING]
        if not before:
            return False
        start = max(before)
        return not any(e.kind == _KIND_HEALTH for k, e in self._buffer.items() if start < k < u)

    def poll(self, now: float) -> ArmingReport | None:
        """Complete the newest report whose events are all here (or whose wait is over)."""
        healths = sorted(k for k, e in self._buffer.items() if e.kind == _KIND_HEALTH)
        for h in reversed(healths):
            starts = [k for k, e in self._buffer.items() if k < h and e.kind == _KIND_ARMING]
            if not starts:
                continue
            a = max(starts)
            if len(starts) > 1:
                self.interrupted += len(starts) - 1  # reports a newer summary cut short
            missing = [k for k in range(a + 1, h) if k not in self._buffer]
            if missing and now - self._buffer[h].arrived < self.hold_s:
                return None  # a lost event may still come back (REQUEST_EVENT)
            entries = [self._buffer[k] for k in range(a, h + 1) if k in self._buffer]
            for k in [k for k in self._buffer if k <= h]:
                del self._buffer[k]
            arming, health = entries[0].event, entries[-1].event
            if not arming.values or not health.values or arming.values[0] != health.values[0]:
                self.interrupted += 1
                return None
            report = _build(entries, now, not missing, self._with_metadata)
            if report is None:
                self.interrupted += 1
                return None
            self._last_entries = entries
            self._last_complete = not missing
            self.report = report
            self.reports += 1
            return report
        # health summaries with no arming summary before them start nothing
        for h in healths:
            if not any(k < h and e.kind == _KIND_ARMING for k, e in self._buffer.items()):
                del self._buffer[h]
        return None

    def rerender(self, render: Renderer, *, with_metadata: bool) -> ArmingReport | None:
        """Render the latest report again (metadata arrived); returns the new report."""
        if self.report is None or not self._last_entries:
            return None
        entries = [
            _Entry(
                _kind(ev := render(e.event.event_id, e.event.arguments), with_metadata),
                ev,
                e.level,
                e.arrived,
            )
            for e in self._last_entries
        ]
        entries[0].kind, entries[-1].kind = _KIND_ARMING, _KIND_HEALTH
        for e in entries[1:-1]:
            if e.kind == _KIND_MAYBE:
                e.kind = _KIND_CHECK
        report = _build(entries, self.report.at, self._last_complete, with_metadata)
        if report is not None:
            self._last_entries = entries
            self.report = report
        return report


def _enum(event: RenderedEvent, index: int, fallback: str) -> EnumDef | None:
    return event.enum_of(index) or px4_events.FALLBACK_METADATA.enum(fallback)


def _build(
    entries: list[_Entry], now: float, complete: bool, with_metadata: bool
) -> ArmingReport | None:
    arming, health = entries[0].event, entries[-1].event
    if len(arming.values) < 5 or len(health.values) < 4:
        return None
    modes_enum = _enum(arming, 3, "px4::navigation_mode_group_t")
    health_enum = _enum(arming, 1, "px4::health_component_t")
    if modes_enum is None or health_enum is None:
        return None
    _chunk, arm_error, arm_warning, can_arm, can_run = (int(v) for v in arming.values[:5])
    _chunk, present, error, warning = (int(v) for v in health.values[:4])
    groups = tuple(
        ModeGroup(e.name, e.description, bit, bool(can_arm & bit), bool(can_run & bit))
        for bit, e in sorted(modes_enum.entries.items())
    )
    components = tuple(
        HealthComponent(
            e.name,
            e.description,
            bit,
            bool(present & bit),
            bool(error & bit),
            bool(warning & bit),
            bool(arm_error & bit),
            bool(arm_warning & bit),
        )
        for bit, e in sorted(health_enum.entries.items())
    )
    problems = []
    for entry in entries[1:-1]:
        if entry.kind not in (_KIND_CHECK, _KIND_MAYBE):
            continue
        ev = entry.event
        if ev.known and len(ev.values) >= 2:
            modes, index = int(ev.values[0]), int(ev.values[1])
        else:
            modes, index = _CHECK_HEAD.unpack_from(ev.arguments.ljust(_CHECK_HEAD.size, b"\0"))
        component = health_enum.entries.get(1 << index) if 0 < index < 64 else None
        problems.append(
            Problem(
                ev.message,
                ev.description,
                ev.name,
                ev.event_id,
                entry.level,
                modes_enum.bit_names(modes),
                component.name if component is not None else None,
                ev.group,
            )
        )
    return ArmingReport(now, groups, components, tuple(problems), with_metadata, complete)
