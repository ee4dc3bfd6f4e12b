"""The broadcast service: accepting broadcast requests, clips, and the proof of each occurrence.

:meth:`BroadcastService.submit` checks a request against the world (:func:`.request
.validate_broadcast`), renders its text to speech **at submission** (so staff learn at once when
the text cannot be spoken, can preview the clip, and the planner knows the clip's length), checks
that the area can be covered at all (a plan with a drone on every pad of the world must reach
the coverage target), and stores the request with its details in one transaction before
answering. Approved requests wake the dispatcher.

The stored ``Request.details`` are the request as :func:`.request.broadcast_to_dict` writes it
(so :func:`.request.broadcast_from_dict` reads it back), plus:

* ``community_id``: the community the request is for;
* ``resolved_area``: ``{name, vertices, area_m2, community_ids}``;
* ``clip``: ``{sha256, duration_s, source}`` (``source`` is ``tts`` or ``upload``);
* ``preview``: the feasibility plan's figures (predicted coverage, drones, flight time);
* ``occurrences``: the log of settled occurrences (:mod:`.occurrences`).

:meth:`BroadcastService.report` computes the proof of an occurrence from the playback records its
missions keep (cached per occurrence and mission versions).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from fleet.clock import Clock
from fleet.errors import NotFound, PlanningError, ValidationError
from fleet.settings import Settings
from fleet.speaker import speaker_on
from fleet.store.repository import RequestRecord, Store
from fleet.store.tables import AuditLog, Mission, Request
from fleet.world import World
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.clips import Clip, ClipStore
from missions.broadcast.dispatch import broadcast_params, endurance_s
from missions.broadcast.occurrences import all_occurrences, entries
from missions.broadcast.outcome import Attempt, attempt_report, attempts_of
from missions.broadcast.planner import BroadcastPlan, DroneStart, plan_broadcast
from missions.broadcast.record import record_to_json
from missions.broadcast.report import CoverageReport, render_png
from missions.broadcast.request import (
    ClipMessage,
    CommunityArea,
    NewBroadcast,
    Now,
    ResolvedArea,
    SpokenMessage,
    broadcast_to_dict,
    validate_broadcast,
)
from missions.broadcast.speech import SpeechEngine
from missions.context import MissionContext
from missions.journal import EventKind, Journal
from missions.states import MISSION_ACTIVE, RequestKind, RequestState

log = structlog.get_logger(__name__)

REPORT_CACHE_SIZE = 32
"""Proofs kept in memory (each holds a grid of a few thousand cells)."""


@dataclass(frozen=True)
class Submitted:
    """A stored broadcast request and whether this call created it."""

    record: RequestRecord
    created: bool


@dataclass(frozen=True)
class OccurrenceProof:
    """The proof of one attempt at one occurrence."""

    request_id: str
    occurrence: str
    attempt: int
    state: str
    """The occurrence's state (``completed``, ``failed``, ...) or ``in_progress``."""
    missions: tuple[Mission, ...]
    report: CoverageReport


class BroadcastService:
    """Broadcast requests, their clips and their proofs (see module docstring)."""

    def __init__(
        self,
        ctx: MissionContext,
        clips: ClipStore,
        on_approved: Callable[[], None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.clips = clips
        self.on_approved = on_approved
        self._reports: OrderedDict[tuple[Any, ...], OccurrenceProof] = OrderedDict()

    @classmethod
    def from_settings(
        cls, ctx: MissionContext, on_approved: Callable[[], None] = lambda: None
    ) -> BroadcastService:
        cfg = ctx.settings.broadcast
        clips = ClipStore(cfg.clip_dir, SpeechEngine(executable=cfg.espeak_executable))
        return cls(ctx, clips, on_approved)

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def world(self) -> World:
        return self.ctx.world

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def journal(self) -> Journal:
        return self.ctx.journal

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def model(self) -> SpeakerModel:
        return SpeakerModel(**self.settings.broadcast.speaker.model_dump())

    # --- submission -----------------------------------------------------------------------

    async def prepare(
        self, new: NewBroadcast, community_id: str | None = None
    ) -> tuple[ResolvedArea, str, Clip, BroadcastPlan]:
        """Validate ``new``, render or find its clip and plan it with a drone on every pad.

        Raises ``ValidationError`` (a field), ``ConfigError`` (the speech engine is missing or
        lacks the language) or ``PlanningError`` (the area cannot be covered).
        """
        clip: Clip | None = None
        if isinstance(new.message, ClipMessage):
            try:
                clip = await self.clips.get(new.message.sha256)
            except NotFound:
                clip = None
        found = clip

        def lookup(sha: str) -> float | None:
            return found.duration_s if found is not None and found.sha256 == sha else None

        area = validate_broadcast(new, self.world, self.clock.now(), lookup)
        community = self._community(new, area, community_id)
        if isinstance(new.message, SpokenMessage):
            m = new.message
            clip = await self.clips.speak(m.text, m.language, m.voice, rate_wpm=m.rate_wpm)
            if new.period_s is not None and new.period_s < clip.duration_s:
                raise ValidationError(
                    f"period_s ({new.period_s:g} s) is shorter than the spoken message "
                    f"({clip.duration_s:.1f} s)",
                    field="period_s",
                )
        assert clip is not None
        plan = await asyncio.to_thread(self._feasibility, area, new, clip.duration_s)
        return area, community, clip, plan

    def _community(self, new: NewBroadcast, area: ResolvedArea, given: str | None) -> str:
        if isinstance(new.area, CommunityArea):
            if given is not None and given != new.area.community_id:
                raise ValidationError(
                    f"the request is for {given} but the area is community {new.area.community_id}",
                    field="community_id",
                )
            return new.area.community_id
        if given is not None:
            try:
                self.world.community(given)
            except NotFound:
                raise ValidationError(
                    f"unknown community {given!r} in world {self.world.name}",
                    field="community_id",
                ) from None
            return given
        if not area.community_ids:
            raise ValidationError(
                "the drawn area overlaps no community: say which community the request is for",
                field="community_id",
            )
        # the community the drawn area overlaps most
        return max(
            area.community_ids,
            key=lambda cid: self.world.community(cid).polygon.intersection(area.polygon).area,
        )

    def _feasibility(self, area: ResolvedArea, new: NewBroadcast, duration: float) -> BroadcastPlan:
        starts = [
            DroneStart(f"pad {p.id}", p.location.lat, p.location.lon) for p in self.world.pads
        ]
        if not starts:
            raise PlanningError(f"world {self.world.name} has no drone pads")
        try:
            return plan_broadcast(
                area,
                self.world,
                starts,
                duration,
                # a flight lasts what a full battery gives with the reserve left on landing,
                # not just the ``max_flight_s`` cap: a plan past that is never flown
                broadcast_params(
                    self.settings.broadcast, new, endurance_s(1.0, self.settings.broadcast)
                ),
                self.model(),
            )
        except PlanningError as exc:
            raise PlanningError(
                f"the area cannot be covered even with a drone on every pad: {exc.message}",
                **exc.fields,
            ) from exc

    async def submit(
        self, new: NewBroadcast, actor: str, community_id: str | None = None
    ) -> Submitted:
        """Validate, speak and store a broadcast request (see module docstring)."""
        if new.idempotency_key:
            earlier = await self.store.request_by_key(new.idempotency_key)
            if earlier is not None:
                return Submitted(earlier, False)
        area, community, clip, plan = await self.prepare(new, community_id)
        now = self.clock.now()
        details = {
            **broadcast_to_dict(new),
            "community_id": community,
            "resolved_area": {
                "name": area.name,
                "vertices": [[lat, lon] for lat, lon in area.vertices],
                "area_m2": round(area.area_m2, 1),
                "community_ids": list(area.community_ids),
            },
            "clip": {
                "sha256": clip.sha256,
                "duration_s": round(clip.duration_s, 3),
                "source": clip.source.get("kind", "upload"),
            },
            "preview": preview_summary(plan),
            "occurrences": [],
        }
        req = Request(
            kind=RequestKind.BROADCAST,
            community_id=community,
            state=RequestState.SUBMITTED,
            priority=new.priority,
            requested_by=new.requested_by or actor,
            note=new.note,
            idempotency_key=new.idempotency_key,
            created_at=now,
            details=details,
        )
        first = (
            f"broadcast request submitted: {area.name} ({area.area_m2:,.0f} m²), clip "
            f"{clip.sha256[:12]} of {clip.duration_s:.1f} s, {new.repeats} hearings, predicted "
            f"coverage {plan.predicted_coverage:.1%} with {plan.describe_flights()}"
        )
        events = [
            self.journal.event(EventKind.STATE, first, to_state=RequestState.SUBMITTED, actor=actor)
        ]
        rs = self.settings.requests
        if rs.auto_approve:
            req.state = RequestState.APPROVED
            req.approved_at = now
            req.deadline = self._deadline(new, now)
            events.append(
                self.journal.event(
                    EventKind.STATE,
                    "approved by rule requests.auto_approve",
                    from_state=RequestState.SUBMITTED,
                    to_state=RequestState.APPROVED,
                    deadline=req.deadline.isoformat() if req.deadline else None,
                )
            )
        audit = AuditLog(
            at=now,
            actor=actor,
            action="broadcast.submit",
            object_type="request",
            object_id="",
            detail={"community_id": community, "clip_sha256": clip.sha256},
        )
        record, created = await self.store.create_request(req, [], events, audit)
        if created:
            self.journal.published(*events)
            if record.request.state == RequestState.APPROVED:
                self.on_approved()
        return Submitted(record, created)

    def _deadline(self, new: NewBroadcast, now: datetime) -> datetime:
        """When the (last) broadcast must have happened."""
        if isinstance(new.schedule, Now):
            return now + timedelta(hours=self.settings.requests.deadline_h)
        last = all_occurrences(new.schedule, now)[-1]
        return last + timedelta(seconds=self.settings.broadcast.max_delay_s)

    # --- reads ----------------------------------------------------------------------------

    async def get(self, request_id: str) -> RequestRecord:
        """A broadcast request (``NotFound`` for another kind)."""
        rec = await self.store.get_request(request_id)
        if rec.request.kind != RequestKind.BROADCAST:
            raise NotFound("broadcast request", request_id)
        return rec

    async def proof(self, request_id: str, occurrence: str | None = None) -> OccurrenceProof:
        """The proof of an occurrence (default: the latest flown), from its missions' records.

        ``NotFound`` when nothing has been flown yet (or no such occurrence).
        """
        rec = await self.get(request_id)
        attempts = await attempts_of(self.ctx, request_id)
        log_by_at = {e["at"]: e for e in entries(rec.request.details)}
        chosen: Attempt | None = None
        for att in attempts:
            if occurrence is not None and att.occurrence != occurrence:
                continue
            entry = log_by_at.get(att.occurrence)
            if entry is not None and int(entry.get("attempt", 0)) != att.attempt:
                continue  # a failed attempt that was flown again
            if not any(m.started_at is not None for m in att.missions):
                continue  # nothing flown
            chosen = att
        if chosen is None:
            what = f"flight of occurrence {occurrence}" if occurrence else "flight"
            raise NotFound(f"broadcast {what} (nothing flown yet) for request", request_id)
        entry = log_by_at.get(chosen.occurrence)
        state = str(entry["state"]) if entry else "in_progress"
        live = chosen.active
        key = (
            request_id,
            chosen.occurrence,
            chosen.attempt,
            tuple((m.id, m.version) for m in chosen.missions),
        )
        cached = None if live else self._reports.get(key)
        if cached is not None:
            self._reports.move_to_end(key)
            return cached
        missions = [self._with_live_records(m) for m in chosen.missions]
        report = await asyncio.to_thread(
            attempt_report, self.world, rec.request.details, missions, self.model()
        )
        proof = OccurrenceProof(
            request_id, chosen.occurrence, chosen.attempt, state, chosen.missions, report
        )
        if live:
            return proof
        self._reports[key] = proof
        while len(self._reports) > REPORT_CACHE_SIZE:
            self._reports.popitem(last=False)
        return proof

    def _with_live_records(self, m: Mission) -> Mission:
        """A mission still flying, with the records its speaker has delivered so far."""
        if m.state not in MISSION_ACTIVE or "playback" in m.result or not m.vehicle_id:
            return m
        session = m.result.get("session_id")
        if not session:
            return m
        try:
            speaker = speaker_on(self.ctx.registry, m.vehicle_id)
        except NotFound:
            return m
        records = speaker.playback_records(session)
        return Mission(
            **{
                **m.model_dump(),
                "result": {**m.result, "playback": [record_to_json(r) for r in records]},
            }
        )

    async def proof_png(self, request_id: str, occurrence: str | None = None) -> bytes:
        proof = await self.proof(request_id, occurrence)
        return await asyncio.to_thread(render_png, proof.report)


def preview_summary(plan: BroadcastPlan) -> dict[str, Any]:
    """Figures of a feasibility plan, for the stored details and the API."""
    s = plan.summary()
    return {
        "predicted_coverage": s["predicted_coverage"],
        "target_coverage": s["target_coverage"],
        "drones_needed": len(plan.vehicles),
        "flights": len(plan.drones),
        "longest_flight_s": round(plan.duration_s, 1),
        "audible_radius_m": s["audible_radius_m"],
        "lane_spacing_m": s["lane_spacing_m"],
        "lanes": s["lanes"],
        "altitude_m": s["altitude_m"],
        "period_s": s["period_s"],
        "loops": s["loops"],
        "mean_speed_mps": s["mean_speed_mps"],
    }
