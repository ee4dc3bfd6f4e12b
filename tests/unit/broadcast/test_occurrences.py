"""Occurrences of a broadcast schedule and the log of what became of them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from missions.broadcast.occurrences import (
    NextStep,
    OccurrenceState,
    all_occurrences,
    final_state,
    later_occurrences,
    next_step,
    occurrence_key,
    settled_keys,
    too_late,
    with_entry,
)
from missions.broadcast.request import AtTimes, Now, Recurring, Schedule
from missions.states import RequestState

T0 = datetime(2022, 4, 1, 0, 30, tzinfo=UTC)
"""08:30 in Shanghai, a Friday."""


def step(schedule: Schedule, now: datetime, settled: frozenset[str] = frozenset()) -> NextStep:
    return next_step(schedule, T0, set(settled), now, lead_s=120.0, max_delay_s=1800.0)


def test_now_is_one_occurrence_at_approval_and_never_missed() -> None:
    [t] = all_occurrences(Now(), T0.replace(microsecond=123))
    assert t == T0 and occurrence_key(t) == "2022-04-01T00:30:00+00:00"
    s = step(Now(), T0 + timedelta(days=3))
    assert s.due == T0 and s.missed == ()
    assert step(Now(), T0, frozenset({occurrence_key(T0)})).finished
    assert not too_late(Now(), occurrence_key(T0), T0 + timedelta(days=3), 1800.0)


def test_recurring_gives_local_times_on_weekdays_between_the_dates() -> None:
    r = Recurring(
        times_of_day=(time(15, 30), time(9, 0)),
        start_date=date(2022, 4, 1),
        end_date=date(2022, 4, 7),
        weekdays=frozenset({0, 4}),  # Monday and Friday
        timezone="Asia/Shanghai",
    )
    got = all_occurrences(r, T0)
    assert [occurrence_key(t) for t in got] == [
        "2022-04-01T01:00:00+00:00",  # Fri 09:00 +08:00
        "2022-04-01T07:30:00+00:00",  # Fri 15:30
        "2022-04-04T01:00:00+00:00",  # Mon
        "2022-04-04T07:30:00+00:00",
    ]
    assert later_occurrences(r, T0, "2022-04-01T07:30:00+00:00") == got[2:]
    assert later_occurrences(r, T0, "2022-04-04T07:30:00+00:00") == []


def test_timed_occurrences_are_due_with_the_lead_and_missed_after_the_delay() -> None:
    at = AtTimes((T0 + timedelta(hours=2), T0 + timedelta(hours=1)))
    first, second = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    assert all_occurrences(at, T0) == [first, second]
    s = step(at, T0)
    assert s.due is None and s.waiting_for == first and not s.finished
    assert step(at, first - timedelta(seconds=121)).waiting_for == first
    assert step(at, first - timedelta(seconds=120)).due == first
    # 40 minutes after the first: it is missed, the second is next (not due yet)
    s = step(at, first + timedelta(minutes=40))
    assert s.missed == (first,) and s.due is None and s.waiting_for == second
    assert too_late(at, occurrence_key(first), first + timedelta(minutes=31), 1800.0)
    assert not too_late(at, occurrence_key(first), first + timedelta(minutes=29), 1800.0)
    # once both are settled nothing is left
    done = frozenset({occurrence_key(first), occurrence_key(second)})
    assert step(at, second, done).finished
    # long after both, both are missed at once
    late = step(at, second + timedelta(hours=1))
    assert late.missed == (first, second) and late.finished


def test_the_log_keeps_one_entry_per_occurrence_in_order() -> None:
    d: dict[str, Any] = {"repeats": 2}
    d = with_entry(d, {"at": "2022-04-02T00:00:00+00:00", "state": "missed", "reason": "x"})
    d = with_entry(d, {"at": "2022-04-01T00:00:00+00:00", "state": "failed", "reason": "y"})
    d = with_entry(d, {"at": "2022-04-01T00:00:00+00:00", "state": "completed"})
    assert [e["at"] for e in d["occurrences"]] == [
        "2022-04-01T00:00:00+00:00",
        "2022-04-02T00:00:00+00:00",
    ]
    assert settled_keys(d) == {"2022-04-01T00:00:00+00:00", "2022-04-02T00:00:00+00:00"}


@pytest.mark.parametrize(
    ("states", "expected", "words"),
    [
        (["completed"], RequestState.COMPLETED, "broadcast completed: 98.0%"),
        (["completed", "completed"], RequestState.COMPLETED, "all 2 broadcasts completed"),
        (["completed", "missed"], RequestState.COMPLETED, "1 of 2 broadcasts completed; missed"),
        (["failed", "missed"], RequestState.FAILED, "no broadcast completed"),
        (["cancelled"], RequestState.CANCELLED, "every broadcast was cancelled"),
        ([], RequestState.FAILED, "no occurrence"),
    ],
)
def test_final_state_follows_the_log(states: list[str], expected: RequestState, words: str) -> None:
    log = [
        {
            "at": f"2022-04-0{i + 1}T00:00:00+00:00",
            "state": s,
            "covered_fraction": 0.98,
            "repeats": 2,
            "no_playback_outside": True,
            "target_coverage": 0.95,
            "reason": "no drone",
        }
        for i, s in enumerate(states)
    ]
    dst, reason = final_state(log)
    assert dst == expected
    assert words in reason
    assert {OccurrenceState(s) for s in states} <= set(OccurrenceState)
