"""The broadcast request planner: turns approved broadcast requests into broadcast missions.

Each dispatcher round, for every approved broadcast request in queue order (priority class,
deadline, arrival):

1. the request's last flight is settled if it is over (:func:`.outcome.settle`);
2. its schedule says what is due (:func:`.occurrences.next_step`): occurrences whose time passed
   more than ``broadcast.max_delay_s`` ago are recorded as missed; an occurrence is due
   ``broadcast.lead_s`` before its time (``now`` at once); a request with nothing left ends;
3. the free drones that carry a speaker payload (:func:`fleet.speaker.speaker_on`: the payload's
   registration names its host drone) are its candidates: online, on the ground, disarmed,
   ready to arm, not on another mission, their speaker online and not in error; each may fly
   as long as its battery allows with ``broadcast.reserve_fraction`` left on landing (the
   energy model of :mod:`fleet.energy`, hover power with the speaker's mass), at most
   ``broadcast.max_flight_s``;
4. :func:`.planner.plan_broadcast` plans the coverage from the candidates' positions (the
   strongest batteries first, adding weaker drones while the plan needs them) and predicts the
   coverage; a plan below ``broadcast.target_coverage`` is refused and the request waits with the
   planner's reason;
5. one ``drone_broadcast`` mission per share of the plan (:mod:`.record`) and one task each
   are stored with the decision and the request's move to ``scheduled`` in one transaction,
   then started; the run of a later **sortie** of a drone (an area the free drones cannot
   cover in one battery each) waits, keeping the drone for it, until the drone's previous
   sortie has ended and the drone is back on its pad with a battery that flies it
   (:meth:`.run.DroneBroadcastRun._await_turn`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from fleet import energy
from fleet.errors import PlanningError, StreetfleetError
from fleet.registry import VehicleEntry
from fleet.settings import BroadcastSettings
from fleet.speaker import SpeakerControl, SpeakerState
from fleet.store.repository import RequestRecord
from fleet.store.tables import Mission, MissionEvent, Task
from fleet.vehicle import LandedState, LinkState, VehicleKind
from missions.broadcast.occurrences import (
    next_step,
    occurrence_key,
    settled_keys,
)
from missions.broadcast.outcome import (
    finish,
    latest_attempt,
    record_missed,
    request_lock,
    settle,
    speaker_model,
)
from missions.broadcast.planner import BroadcastParams, BroadcastPlan, DroneStart, plan_broadcast
from missions.broadcast.record import share_to_json
from missions.broadcast.request import (
    NewBroadcast,
    ResolvedArea,
    broadcast_from_dict,
    resolve_area,
)
from missions.context import MissionContext
from missions.dispatcher import Dispatcher, queue_key
from missions.journal import EventKind
from missions.states import (
    MissionKind,
    MissionState,
    RequestKind,
    RequestState,
    TaskState,
)

log = structlog.get_logger(__name__)

MIN_ENDURANCE_S = 180.0
"""A drone that may fly less than this is not offered to the planner."""


def endurance_s(battery: float | None, cfg: BroadcastSettings) -> float:
    """Seconds a drone carrying the speaker may fly on ``battery`` and land with the reserve
    (:mod:`fleet.energy`: a broadcast hovers and creeps, so it uses hover power throughout);
    at most ``max_flight_s``, which is also assumed when the battery is not reported."""
    if battery is None:
        return cfg.max_flight_s
    per_min = energy.HOVER_PER_MIN * energy.loaded_factor(cfg.speaker_payload_kg)
    usable = max(0.0, battery - cfg.reserve_fraction)
    return min(cfg.max_flight_s, usable / per_min * 60.0)


def broadcast_params(
    cfg: BroadcastSettings, new: NewBroadcast, max_flight_s: float | None = None
) -> BroadcastParams:
    """The planner's parameters for a request under the ``broadcast`` settings."""
    return BroadcastParams(
        repeats=new.repeats,
        volume=new.volume,
        altitude_m=cfg.altitude_m,
        period_s=new.period_s,
        pause_s=cfg.pause_s,
        target_coverage=cfg.target_coverage,
        max_flight_s=max_flight_s if max_flight_s is not None else cfg.max_flight_s,
        max_sorties=cfg.max_sorties,
        boundary_margin_m=cfg.boundary_margin_m,
        no_fly_margin_m=cfg.no_fly_margin_m,
    )


@dataclass(frozen=True)
class SpeakerDrone:
    """A free drone with a speaker payload, and how long it may fly."""

    entry: VehicleEntry
    speaker: SpeakerControl
    lat: float
    lon: float
    endurance_s: float

    @property
    def vehicle_id(self) -> str:
        return self.entry.info.id


class BroadcastPlanner:
    """Approved broadcast requests → ``drone_broadcast`` missions (see module docstring)."""

    request_kind: str = RequestKind.BROADCAST

    def __init__(
        self,
        ctx: MissionContext,
        dispatcher: Dispatcher,
        busy: Callable[[str], bool],
        start_mission: Callable[[Mission], None],
    ) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self._busy = busy
        self._start_mission = start_mission
        self._waits: dict[str, str] = {}
        """The last reason each request waited for (said when an occurrence is missed)."""

    async def dispatch(self, pending: list[RequestRecord]) -> int:
        # flights that ended put their requests back in the queue (or end them) first
        others = await self.ctx.store.list_requests(
            states=[RequestState.SCHEDULED, RequestState.IN_PROGRESS],
            kind=RequestKind.BROADCAST,
            limit=10_000,
        )
        changed = False
        for rec in [*others, *pending]:
            changed |= await settle(self.ctx, rec.request.id)
        if changed:
            pending = await self.ctx.store.list_requests(
                states=[RequestState.APPROVED], kind=RequestKind.BROADCAST, limit=10_000
            )
            pending.sort(key=queue_key)
        planned = 0
        for rec in pending:
            try:
                planned += await self._dispatch_request(rec)
            except StreetfleetError as exc:  # one request's trouble never stops the others
                log.warning("broadcast.dispatch_failed", request_id=rec.request.id, error=str(exc))
                await self._wait(rec, f"could not be planned: {exc.message}")
        return planned

    async def _dispatch_request(self, rec: RequestRecord) -> int:
        ctx, cfg = self.ctx, self.ctx.settings.broadcast
        req = rec.request
        details = req.details
        new = broadcast_from_dict(details)
        first = req.approved_at or req.created_at
        latest = await latest_attempt(ctx, req.id)
        if latest is not None and latest.active:
            await self._wait(rec, f"waits for its flight of {latest.occurrence} to end")
            return 0
        now = ctx.clock.now()
        step = next_step(
            new.schedule,
            first,
            settled_keys(details),
            now,
            lead_s=cfg.lead_s,
            max_delay_s=cfg.max_delay_s,
        )
        if step.missed:
            why = self._waits.get(req.id) or "no flight could start in time"
            await record_missed(ctx, req.id, step.missed, why)
        if step.finished:
            await finish(ctx, req.id)
            return 0
        if step.due is None:
            assert step.waiting_for is not None
            await self._wait(
                rec, f"waits for its next broadcast at {occurrence_key(step.waiting_for)}"
            )
            return 0
        key = occurrence_key(step.due)
        attempt = 1
        if latest is not None and latest.occurrence == key:
            attempt = latest.attempt + 1
        drones = self._free_speaker_drones()
        if not drones:
            await self._wait(rec, "waits for a free drone carrying a speaker payload")
            return 0
        try:
            area = resolve_area(new.area, ctx.world)
            plan = await asyncio.to_thread(
                self._plan, area, new, float(details["clip"]["duration_s"]), drones
            )
        except PlanningError as exc:
            await self._wait(rec, f"cannot be flown now: {exc.message}")
            return 0
        return await self._create(rec, plan, drones, key, attempt)

    async def _wait(self, rec: RequestRecord, reason: str) -> None:
        self._waits[rec.request.id] = reason
        await self.dispatcher.record_wait(rec, reason)

    def _plan(
        self,
        area: ResolvedArea,
        new: NewBroadcast,
        clip_duration_s: float,
        drones: list[SpeakerDrone],
    ) -> BroadcastPlan:
        """Plan with the strongest drones first, adding weaker ones while the plan fails (each
        try caps every flight at the weakest drone's endurance)."""
        cfg = self.ctx.settings.broadcast
        model = speaker_model(self.ctx)
        last: PlanningError | None = None
        for cap in sorted({d.endurance_s for d in drones}, reverse=True):
            group = sorted(
                (d for d in drones if d.endurance_s >= cap), key=lambda d: -d.endurance_s
            )
            starts = [DroneStart(d.vehicle_id, d.lat, d.lon) for d in group]
            try:
                return plan_broadcast(
                    area,
                    self.ctx.world,
                    starts,
                    clip_duration_s,
                    broadcast_params(cfg, new, cap),
                    model,
                )
            except PlanningError as exc:
                last = exc
        assert last is not None
        raise last

    def _free_speaker_drones(self) -> list[SpeakerDrone]:
        cfg = self.ctx.settings.broadcast
        speakers: dict[str, SpeakerControl] = {}
        for entry in self.ctx.registry:
            control = entry.control
            if isinstance(control, SpeakerControl) and control.host_vehicle_id:
                if entry.status.link != LinkState.ONLINE:
                    continue
                if control.status.state == SpeakerState.ERROR:
                    continue
                speakers[control.host_vehicle_id] = control
        out = []
        for entry in self.ctx.registry:
            info, st = entry.info, entry.status
            speaker = speakers.get(info.id)
            if (
                speaker is None
                or info.kind != VehicleKind.DRONE
                or self._busy(info.id)
                or info.id in self.ctx.out_of_service
                or st.link != LinkState.ONLINE
                or st.armed
                or st.landed != LandedState.ON_GROUND
                or not st.ready_for_mission
            ):
                continue
            where = st.home or st.position
            if where is None:
                continue
            endurance = endurance_s(st.battery_fraction, cfg)
            if endurance < MIN_ENDURANCE_S:
                continue
            out.append(SpeakerDrone(entry, speaker, where.lat, where.lon, endurance))
        return out

    async def _create(
        self,
        rec: RequestRecord,
        plan: BroadcastPlan,
        drones: list[SpeakerDrone],
        occurrence: str,
        attempt: int,
    ) -> int:
        ctx = self.ctx
        req = rec.request
        by_id = {d.vehicle_id: d for d in drones}
        now = ctx.clock.now()
        sha = str(req.details["clip"]["sha256"])
        missions: list[Mission] = []
        tasks: list[Task] = []
        for i, d in enumerate(plan.drones):
            missions.append(
                Mission(
                    kind=MissionKind.DRONE_BROADCAST,
                    vehicle_id=d.vehicle_id,
                    state=MissionState.PLANNED,
                    created_at=now,
                    plan={
                        **share_to_json(
                            d,
                            plan,
                            request_id=req.id,
                            occurrence=occurrence,
                            attempt=attempt,
                            share=i,
                            clip_sha256=sha,
                        ),
                        "summary": plan.summary(),
                    },
                )
            )
            tasks.append(
                Task(
                    request_id=req.id,
                    kind=MissionKind.DRONE_BROADCAST,
                    community_id=req.community_id,
                    state=TaskState.ASSIGNED,
                    load=[],
                    created_at=now,
                )
            )
        chosen = "; ".join(
            (
                f"{d.vehicle_id} (speaker {by_id[d.vehicle_id].speaker.payload_id}, battery "
                f"{_pct(by_id[d.vehicle_id].entry.status.battery_fraction)}, flight "
                if d.sortie == 0
                else f"{d.vehicle_id} again after a battery swap (sortie {d.sortie + 1}, flight "
            )
            + f"{d.duration_s / 60:.1f} min, {d.stations} stations)"
            for d in plan.drones
        )
        others = sorted(set(by_id) - {d.vehicle_id for d in plan.drones})
        reason = (
            f"broadcast of {occurrence} (attempt {attempt}) on {plan.describe_flights()}: "
            f"{chosen}; predicted coverage {plan.predicted_coverage:.1%} of "
            f"{plan.area.area_m2:,.0f} m² at {plan.params.altitude_m:g} m, lanes "
            f"{plan.lane_spacing_m:.0f} m apart (audible radius {plan.audible_radius_m:.0f} m)"
            + (f"; other free speaker drones: {', '.join(others)}" if others else "")
        )
        j = ctx.journal
        events: list[MissionEvent] = []
        async with request_lock(req.id):
            try:
                async with ctx.store.transaction() as s:
                    previous: dict[str, str] = {}  # the drone's previous sortie
                    for m, t in zip(missions, tasks, strict=True):
                        assert m.vehicle_id is not None
                        if m.vehicle_id in previous:
                            m.plan = {**m.plan, "after": previous[m.vehicle_id]}
                        s.add(m)
                        await s.flush()
                        previous[m.vehicle_id] = m.id
                        t.mission_id = m.id
                        s.add(t)
                        events.append(
                            j.event(
                                EventKind.DECISION,
                                reason,
                                mission_id=m.id,
                                request_id=req.id,
                                vehicle_id=m.vehicle_id,
                                occurrence=occurrence,
                                attempt=attempt,
                                summary=plan.summary(),
                            )
                        )
                        events.append(
                            j.event(
                                EventKind.STATE,
                                "mission planned",
                                mission_id=m.id,
                                vehicle_id=m.vehicle_id,
                                to_state=MissionState.PLANNED,
                            )
                        )
                    events.append(
                        j.event(
                            EventKind.STATE,
                            f"scheduled on mission(s) {', '.join(m.id for m in missions)}",
                            request_id=req.id,
                            from_state=RequestState.APPROVED,
                            to_state=RequestState.SCHEDULED,
                            occurrence=occurrence,
                            attempt=attempt,
                        )
                    )
                    await ctx.store.update_request(
                        req.id,
                        expected_states=[RequestState.APPROVED],
                        session=s,
                        state=RequestState.SCHEDULED,
                    )
                    for ev in events:
                        s.add(ev)
            except StreetfleetError as exc:  # e.g. cancelled meanwhile
                log.info("broadcast.plan_not_stored", request_id=req.id, error=str(exc))
                return 0
        j.published(*events)
        self.dispatcher.planned(req.id)
        self._waits.pop(req.id, None)
        for m in missions:
            log.info(
                "dispatch.planned", request_id=req.id, mission_id=m.id, vehicle_id=m.vehicle_id
            )
            self._start_mission(m)  # a later sortie's run waits for its turn
        return len(missions)


def _pct(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.0%}"
