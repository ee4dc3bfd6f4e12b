"""Settling a broadcast request after each flight: the proof of the occurrence it flew, and what
the request does next (wait for its next occurrence, fly the occurrence again, or end).

An *attempt* (one mission per drone of a plan, created together) is over when every one of its
missions has ended. :func:`settle` then looks at them together:

* all ``completed``: the occurrence is **completed**; its proof of coverage is computed from the
  playback records the missions keep (:mod:`.record`) and summarised in the request's occurrence
  log (:mod:`.occurrences`);
* one ``cancelled`` by an operator: the occurrence is **cancelled**;
* otherwise (``failed``, ``interrupted``) it is flown again by a new attempt while attempts are
  left (``broadcast.max_attempts``) and, for a timed occurrence, its time is less than
  ``broadcast.max_delay_s`` past; after that it is **failed**.

Then the request goes back to ``approved`` when an occurrence is still to come (or to be flown
again), and otherwise ends ``completed``, ``failed`` or ``cancelled``
(:func:`missions.broadcast.occurrences.final_state`) with the reason.

Runs call :func:`settle` right after their mission ends, the dispatcher before it plans, and the
composition root once at start (for flights that ended while the service was down). Calls for one
request are serialised in the process and checked against the record's state, so settling twice
changes nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from fleet.errors import Conflict, NotFound
from fleet.store.tables import Mission
from fleet.world import World
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.occurrences import (
    OccurrenceState,
    describe_entry,
    entries,
    final_state,
    later_occurrences,
    occurrence_key,
    settled_keys,
    too_late,
    with_entry,
)
from missions.broadcast.record import is_share, records_from_result, track_from_json
from missions.broadcast.report import CoverageReport, TrackRow, build_report
from missions.broadcast.request import broadcast_from_dict
from missions.context import MissionContext
from missions.journal import EventKind
from missions.states import (
    MISSION_ACTIVE,
    REQUEST_OPEN,
    MissionState,
    RequestKind,
    RequestState,
)

log = structlog.get_logger(__name__)

_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def request_lock(request_id: str) -> asyncio.Lock:
    """The lock serialising changes to one broadcast request's occurrences in this process."""
    lock = _LOCKS.get(request_id)
    if lock is None:
        lock = asyncio.Lock()
        _LOCKS[request_id] = lock
    return lock


def speaker_model(ctx: MissionContext) -> SpeakerModel:
    """The speaker model of the settings (``broadcast.speaker``)."""
    return SpeakerModel(**ctx.settings.broadcast.speaker.model_dump())


@dataclass(frozen=True)
class Attempt:
    """The missions of one attempt at one occurrence."""

    occurrence: str
    attempt: int
    missions: tuple[Mission, ...]

    @property
    def active(self) -> bool:
        return any(m.state in MISSION_ACTIVE for m in self.missions)

    @property
    def outcome(self) -> OccurrenceState:
        """Meaningful once no mission is active. A mission cancelled to be planned again (a
        re-plan, ``result.requeue``) counts as failed: the occurrence is flown again."""
        states = {MissionState(m.state) for m in self.missions}
        if states == {MissionState.COMPLETED}:
            return OccurrenceState.COMPLETED
        if any(
            m.state == MissionState.CANCELLED and not m.result.get("requeue") for m in self.missions
        ):
            return OccurrenceState.CANCELLED
        return OccurrenceState.FAILED

    def reasons(self) -> str:
        return "; ".join(
            f"{m.vehicle_id}: {m.state}" + (f" ({m.reason})" if m.reason else "")
            for m in self.missions
            if m.state != MissionState.COMPLETED
        )


async def attempts_of(ctx: MissionContext, request_id: str) -> list[Attempt]:
    """Every attempt at the request's occurrences, oldest first."""
    tasks = await ctx.store.request_tasks(request_id)
    missions = await ctx.store.missions_by_id(t.mission_id for t in tasks if t.mission_id)
    return _group(missions.values())


async def latest_attempt(ctx: MissionContext, request_id: str) -> Attempt | None:
    """The request's most recent attempt (its missions are created together)."""
    tasks = await ctx.store.request_tasks(request_id)
    if not tasks:
        return None
    newest = max(t.created_at for t in tasks)
    missions = await ctx.store.missions_by_id(
        t.mission_id
        for t in tasks
        if t.mission_id and t.created_at >= newest - timedelta(seconds=1)
    )
    groups = _group(missions.values())
    return groups[-1] if groups else None


def _group(missions: Iterable[Mission]) -> list[Attempt]:
    by: dict[tuple[str, int], list[Mission]] = {}
    for m in missions:
        if is_share(m.plan):
            by.setdefault((m.plan["occurrence"], int(m.plan["attempt"])), []).append(m)
    return [
        Attempt(occ, n, tuple(sorted(ms, key=lambda m: int(m.plan["share"]))))
        for (occ, n), ms in sorted(by.items())
    ]


def attempt_report(
    world: World,
    details: dict[str, Any],
    missions: Sequence[Mission],
    model: SpeakerModel,
) -> CoverageReport:
    """The proof of coverage of an attempt, from what its missions recorded."""
    records = [r for m in missions for r in records_from_result(m.result)]
    track: list[TrackRow] = []
    for m in missions:
        track.extend(track_from_json(m.result.get("track", [])))
    return build_report(
        details["resolved_area"]["vertices"],
        world.frame,
        records,
        int(details["repeats"]),
        model=model,
        track=track,
    )


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat()


def attempt_entry(
    att: Attempt, report: CoverageReport, state: OccurrenceState, target: float
) -> dict[str, Any]:
    """The occurrence log entry of a settled attempt."""
    return {
        "at": att.occurrence,
        "state": str(state),
        "attempt": att.attempt,
        "missions": [m.id for m in att.missions],
        "vehicles": [m.vehicle_id for m in att.missions],
        "repeats": report.repeats_required,
        "target_coverage": target,
        "predicted_coverage": att.missions[0].plan.get("predicted_coverage"),
        "covered_fraction": round(report.covered_fraction, 4),
        "heard_once_fraction": round(report.heard_once_fraction, 4),
        "no_playback_outside": report.no_playback_outside,
        "samples_outside": report.samples_outside,
        "playback_outside_s": round(report.playback_outside_s, 2),
        "max_outside_m": round(report.max_outside_m, 2),
        "plays_completed": report.plays_completed,
        "plays_total": report.plays_total,
        "missing_records": len(report.missing_seqs),
        "started_at": _iso(report.started_at),
        "ended_at": _iso(report.ended_at),
        "reason": att.reasons(),
    }


async def settle(ctx: MissionContext, request_id: str) -> bool:
    """Settle the request's latest attempt if it is over (see module docstring); returns
    whether the request changed."""
    async with request_lock(request_id):
        rec = await ctx.store.get_request(request_id)
        req = rec.request
        if req.kind != RequestKind.BROADCAST or req.state not in REQUEST_OPEN:
            return False
        att = await latest_attempt(ctx, request_id)
        if att is None or att.active or att.occurrence in settled_keys(req.details):
            return False
        cfg = ctx.settings.broadcast
        details = dict(req.details)
        new = broadcast_from_dict(details)
        first = req.approved_at or req.created_at
        now = ctx.clock.now()
        outcome = att.outcome
        state = RequestState(req.state)
        retry = (
            outcome is OccurrenceState.FAILED
            and att.attempt < cfg.max_attempts
            and not too_late(new.schedule, att.occurrence, now, cfg.max_delay_s)
        )
        if retry:
            if state == RequestState.APPROVED:
                return False  # already waiting for its next attempt
            reason = (
                f"attempt {att.attempt} at the broadcast of {att.occurrence} did not complete "
                f"({att.reasons()}); it will be flown again"
            )
            return await _move(ctx, req.id, state, RequestState.APPROVED, reason, details, att)
        report = await asyncio.to_thread(
            attempt_report, ctx.world, details, att.missions, speaker_model(ctx)
        )
        entry = attempt_entry(att, report, outcome, cfg.target_coverage)
        details = with_entry(details, entry)
        said = describe_entry(entry)
        if outcome is OccurrenceState.FAILED:
            said = (
                f"failed after {att.attempt} attempt(s) ({att.reasons()}); "
                f"{report.covered_fraction:.1%} of the area heard it {report.repeats_required} "
                "times"
            )
        settled = settled_keys(details)
        later = [
            t
            for t in later_occurrences(new.schedule, first, att.occurrence)
            if occurrence_key(t) not in settled
        ]
        if later:
            reason = f"broadcast of {att.occurrence} {said}; next at {occurrence_key(later[0])}"
            return await _move(ctx, req.id, state, RequestState.APPROVED, reason, details, att)
        dst, reason = final_state(entries(details))
        return await _move(ctx, req.id, state, dst, reason, details, att)


async def record_missed(
    ctx: MissionContext, request_id: str, times: Sequence[datetime], why: str
) -> None:
    """Log occurrences whose time passed without a flight (the dispatcher calls it)."""
    async with request_lock(request_id):
        rec = await ctx.store.get_request(request_id)
        req = rec.request
        if req.state not in REQUEST_OPEN:
            return
        details = dict(req.details)
        for t in times:
            details = with_entry(
                details,
                {"at": occurrence_key(t), "state": str(OccurrenceState.MISSED), "reason": why},
            )
        keys = ", ".join(occurrence_key(t) for t in times)
        ev = ctx.journal.event(
            EventKind.DECISION,
            f"broadcast of {keys} missed: {why}",
            request_id=request_id,
            occurrences=[occurrence_key(t) for t in times],
        )
        await ctx.store.update_request(
            request_id, expected_states=[req.state], events=[ev], details=details
        )
        ctx.journal.published(ev)


async def finish(ctx: MissionContext, request_id: str) -> None:
    """End a request whose every occurrence is settled (the dispatcher calls it)."""
    async with request_lock(request_id):
        rec = await ctx.store.get_request(request_id)
        req = rec.request
        if req.state not in REQUEST_OPEN:
            return
        dst, reason = final_state(entries(req.details))
        await _move(ctx, request_id, RequestState(req.state), dst, reason, dict(req.details), None)


async def _move(
    ctx: MissionContext,
    request_id: str,
    src: RequestState,
    dst: RequestState,
    reason: str,
    details: dict[str, Any],
    att: Attempt | None,
) -> bool:
    data: dict[str, Any] = {}
    if att is not None:
        data = {"occurrence": att.occurrence, "attempt": att.attempt}
    ev = ctx.journal.event(
        EventKind.STATE, reason, request_id=request_id, from_state=src, to_state=dst, **data
    )
    changes: dict[str, Any] = {"state": dst, "details": details}
    if dst not in REQUEST_OPEN:
        changes["closed_at"] = ctx.clock.now()
        changes["reason"] = reason[:1000]
    try:
        await ctx.store.update_request(request_id, expected_states=[src], events=[ev], **changes)
    except (Conflict, NotFound):
        log.info("broadcast.settle_raced", request_id=request_id, to_state=str(dst))
        return False
    ctx.journal.published(ev)
    log.info("broadcast.settled", request_id=request_id, to_state=str(dst), reason=reason)
    return True


async def settle_all(ctx: MissionContext) -> int:
    """Settle every open broadcast request whose latest flight is over (at start)."""
    changed = 0
    open_states = [RequestState.SCHEDULED, RequestState.IN_PROGRESS, RequestState.APPROVED]
    for rec in await ctx.store.list_requests(
        states=open_states, kind=RequestKind.BROADCAST, limit=10_000
    ):
        changed += await settle(ctx, rec.request.id)
    return changed
