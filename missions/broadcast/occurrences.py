"""The occurrences of a broadcast request and the log of what became of each.

A request's schedule gives its *occurrences*: one for ``now`` (the moment it was approved), one
per time for ``at``, one per time of day and weekday between the dates for ``recurring``. Each
occurrence is flown by one *attempt* (one mission per drone of its plan), retried by a new
attempt when a flight fails, up to ``broadcast.max_attempts``.

What became of each occurrence is kept in the request's ``details["occurrences"]``, one entry
per settled occurrence, in order::

    {"at": "2022-04-01T01:00:00+00:00", "state": "completed", "attempt": 1,
     "missions": ["..."], "covered_fraction": 0.987, "no_playback_outside": true,
     "started_at": "...", "ended_at": "...", "reason": "..."}

``state`` is one of :class:`OccurrenceState`. An occurrence without an entry is still to come
(or being flown). The functions here are pure: the dispatcher and the settling code call them
with the clock's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from missions.broadcast.request import AtTimes, Now, Recurring, Schedule
from missions.states import RequestState


class OccurrenceState(StrEnum):
    """What became of one occurrence."""

    COMPLETED = "completed"
    """Every drone of an attempt flew its share; the proof of coverage is in the entry."""
    FAILED = "failed"
    """Every attempt allowed failed, or the last one failed too late to try again."""
    MISSED = "missed"
    """No flight could start within ``broadcast.max_delay_s`` of its time."""
    CANCELLED = "cancelled"
    """An operator cancelled its flight."""


def occurrence_key(t: datetime) -> str:
    """The ISO 8601 UTC form that names an occurrence (whole seconds)."""
    return t.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_key(key: str) -> datetime:
    return datetime.fromisoformat(key).astimezone(UTC)


def all_occurrences(schedule: Schedule, first: datetime) -> list[datetime]:
    """Every start instant of ``schedule`` in order (UTC); ``first`` is the ``now`` instant."""
    if isinstance(schedule, Now):
        return [first.astimezone(UTC).replace(microsecond=0)]
    if isinstance(schedule, AtTimes):
        return sorted({t.astimezone(UTC).replace(microsecond=0) for t in schedule.times})
    assert isinstance(schedule, Recurring)
    tz = ZoneInfo(schedule.timezone)
    start = datetime.combine(schedule.start_date, time(0), tzinfo=tz)
    end = datetime.combine(schedule.end_date + timedelta(days=1), time(0), tzinfo=tz)
    return [t.replace(microsecond=0) for t in schedule.occurrences(start, end)]


def entries(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The occurrence log of a request's details."""
    return list(details.get("occurrences", []))


def settled_keys(details: Mapping[str, Any]) -> set[str]:
    return {e["at"] for e in entries(details)}


def with_entry(details: Mapping[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """New details with ``entry`` in the log (replacing one for the same occurrence)."""
    log = [e for e in entries(details) if e["at"] != entry["at"]]
    log.append(entry)
    log.sort(key=lambda e: str(e["at"]))
    return {**details, "occurrences": log}


@dataclass(frozen=True)
class NextStep:
    """What the dispatcher should do about a request now."""

    missed: tuple[datetime, ...] = ()
    """Occurrences to record as missed (their time passed by more than the allowed delay)."""
    due: datetime | None = None
    """The occurrence to fly now."""
    waiting_for: datetime | None = None
    """The next occurrence, not due yet."""
    pending: tuple[datetime, ...] = field(default_factory=tuple)
    """Every occurrence not settled yet (``due`` first)."""

    @property
    def finished(self) -> bool:
        """Nothing is left to fly."""
        return self.due is None and self.waiting_for is None


def next_step(
    schedule: Schedule,
    first: datetime,
    settled: set[str],
    now: datetime,
    *,
    lead_s: float,
    max_delay_s: float,
) -> NextStep:
    """The occurrences to record as missed, the one due now, or the next to wait for.

    A timed occurrence is due ``lead_s`` before its time and missed ``max_delay_s`` after it;
    ``now`` has no time limit.
    """
    todo = [t for t in all_occurrences(schedule, first) if occurrence_key(t) not in settled]
    missed: list[datetime] = []
    for t in todo:
        if not isinstance(schedule, Now) and now > t + timedelta(seconds=max_delay_s):
            missed.append(t)
            continue
        rest = tuple(u for u in todo if u >= t)
        if isinstance(schedule, Now) or now >= t - timedelta(seconds=lead_s):
            return NextStep(tuple(missed), due=t, pending=rest)
        return NextStep(tuple(missed), waiting_for=t, pending=rest)
    return NextStep(tuple(missed))


def later_occurrences(schedule: Schedule, first: datetime, key: str) -> list[datetime]:
    """Occurrences after the one named ``key``."""
    at = parse_key(key)
    return [t for t in all_occurrences(schedule, first) if t > at]


def too_late(schedule: Schedule, key: str, now: datetime, max_delay_s: float) -> bool:
    """Whether an occurrence can no longer be flown again (timed ones only)."""
    if isinstance(schedule, Now):
        return False
    return now > parse_key(key) + timedelta(seconds=max_delay_s)


def final_state(log: Sequence[Mapping[str, Any]]) -> tuple[RequestState, str]:
    """The state a request ends in once every occurrence is settled, and why."""
    states = [OccurrenceState(e["state"]) for e in log]
    done = states.count(OccurrenceState.COMPLETED)
    total = len(states)

    def listed(state: OccurrenceState) -> str:
        return ", ".join(str(e["at"]) for e in log if e["state"] == state)

    if total == 0:
        return RequestState.FAILED, "the schedule has no occurrence left"
    if done == total:
        if total == 1:
            e = log[0]
            return RequestState.COMPLETED, f"broadcast completed: {describe_entry(e)}"
        worst = min(float(e.get("covered_fraction") or 0.0) for e in log)
        return (
            RequestState.COMPLETED,
            f"all {total} broadcasts completed; lowest coverage {worst:.1%}",
        )
    notes = "; ".join(
        f"{s}: {listed(s)}"
        for s in (OccurrenceState.FAILED, OccurrenceState.MISSED, OccurrenceState.CANCELLED)
        if s in states
    )
    if done:
        return RequestState.COMPLETED, f"{done} of {total} broadcasts completed; {notes}"
    if all(s is OccurrenceState.CANCELLED for s in states):
        return RequestState.CANCELLED, f"every broadcast was cancelled ({notes})"
    last = log[-1]
    why = str(last.get("reason") or "")
    return RequestState.FAILED, f"no broadcast completed; {notes}" + (f" ({why})" if why else "")


def describe_entry(e: Mapping[str, Any]) -> str:
    """One line about a settled occurrence (for reasons and events)."""
    state = e["state"]
    if state == OccurrenceState.COMPLETED:
        cov = float(e.get("covered_fraction") or 0.0)
        outside = (
            "no playback outside the area"
            if e.get("no_playback_outside")
            else (f"{e.get('playback_outside_s', 0):.1f} s of playback outside the area")
        )
        target = e.get("target_coverage")
        short = (
            f" (below the {float(target):.0%} target)"
            if target is not None and cov < float(target)
            else ""
        )
        return (
            f"{cov:.1%} of the area heard the message {e.get('repeats', '?')} times{short}; "
            f"{outside}"
        )
    return f"{state}: {e.get('reason', '')}"
