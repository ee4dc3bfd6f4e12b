"""Broadcast runs: one drone's share of a broadcast, from the upload to the playback records.

:class:`DroneBroadcastRun` executes a ``drone_broadcast`` mission:

1. ``preflight``: the geofence and the flight plan go to the drone; the speaker payload mounted on
   it (:func:`fleet.speaker.speaker_on`) loads the clip from the service's clip URL (checking its
   SHA-256), sets the volume and starts its session for the area (it sounds only inside the
   area, so starting before take-off is safe) — :func:`.flight.start_broadcast`. The mission is
   then ``authorized``, with the speaker's session id in its result.
2. ``underway``: the drone flies its plan; the phases follow its mission progress (``takeoff``,
   ``go_to`` the first station, ``broadcast`` along the stations, ``return``, ``landing``).
   About one reported position a second is kept (:class:`.flight.TrackRecorder`) and saved with
   the mission every ``TRACK_CHECKPOINT_S``.
3. Back on the ground and disarmed: the session is stopped and every playback record collected
   (:func:`.flight.finish_broadcast`); records and track are kept in ``Mission.result``
   (:mod:`.record`) with a summary of this drone's plays, and the mission ends ``completed``.

Then :func:`.outcome.settle` settles the request once every drone of the attempt is done (the
proof of coverage of the whole area, and what the request does next).

Failures: a refusal before take-off fails the mission (the speaker is stopped); a flight not back
after its time limit is recalled and failed; a cancelled mission returns home and ends
``cancelled`` once landed, its records still collected. The payload enforces the area itself, so
whatever the drone does, nothing sounds outside it. After a restart an ``underway`` mission is
followed again (``resumable``): the session id is in the record, and the payload keeps its
records until they are collected.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import structlog

from fleet.deconfliction import Option, trajectory
from fleet.drone import FlightPlan, Takeoff
from fleet.errors import NotFound, PlanningError, StreetfleetError, VehicleError
from fleet.events import FleetEvent
from fleet.geo import LatLon, distance_m
from fleet.registry import VehicleEntry
from fleet.speaker import ClipRef, PlaybackRecord, SpeakerControl, speaker_on
from fleet.store.repository import Session
from fleet.store.tables import Mission, MissionEvent
from fleet.vehicle import LandedState, LinkState, MissionRunState
from missions.broadcast.dispatch import endurance_s
from missions.broadcast.flight import TrackRecorder, finish_broadcast, start_broadcast
from missions.broadcast.outcome import request_lock, settle
from missions.broadcast.record import (
    record_to_json,
    share_from_json,
    track_from_json,
    track_to_json,
)
from missions.context import MissionContext
from missions.follow import Follower, Notes
from missions.journal import EventKind, MissionEventPublished
from missions.preflight import check_airspace
from missions.run import DroneRun
from missions.states import (
    MISSION_TERMINAL,
    MissionKind,
    MissionState,
    Phase,
    RequestState,
    TaskState,
)

log = structlog.get_logger(__name__)

TRACK_CHECKPOINT_S = 30.0
"""World seconds between two saves of the flight track with the mission."""
RECORDS_WITHIN_S = 60.0
"""World seconds the payload has to deliver every playback record after landing."""
FLIGHT_MARGIN_S = 300.0
"""Added to the predicted flight (×1.3) before a broadcast flight counts as overdue."""


def _cruise_alt(plan: FlightPlan) -> float:
    for item in plan.items:
        if isinstance(item, Takeoff) and item.rel_alt is not None:
            return item.rel_alt
    return 0.0


def clip_url(base_url: str, sha256: str) -> str:
    """Where payloads fetch a clip: ``{base}/v1/clips/{sha256}.wav``."""
    return f"{base_url.rstrip('/')}/v1/clips/{sha256}.wav"


def service_url(ctx: MissionContext) -> str:
    """The URL payloads reach the service at (``service.public_url`` or host and port)."""
    svc = ctx.settings.service
    if svc.public_url:
        return svc.public_url
    host = svc.host if svc.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{svc.port}"


class DroneBroadcastRun(DroneRun):
    """Executes one drone's share of a broadcast (see module docstring)."""

    kind = MissionKind.DRONE_BROADCAST
    resumable = True

    def __init__(self, ctx: MissionContext, mission: Mission, on_done: Any) -> None:
        super().__init__(ctx, mission, on_done)
        self.share = share_from_json(mission.plan)
        self.recorder = TrackRecorder(rows=track_from_json(mission.result.get("track", [])))
        self._saved_at = ctx.clock.time()

    # --- the run --------------------------------------------------------------------------

    async def _run(self) -> None:
        if MissionState(self.mission.state) == MissionState.PLANNED:
            if self.share.sortie > 0 and not await self._await_turn():
                return
            if not await self._start():
                return
        await self._follow()

    async def _await_turn(self) -> bool:
        """A later sortie: wait (keeping the drone for it) until the drone's previous sortie
        (mission ``after``) has ended and the drone sits on its pad, disarmed and ready, with a
        battery (swapped) that flies this share and lands with the reserve; each cause of
        waiting is said once. False if the mission ended instead: the previous sortie did not
        complete (the attempt is flown again anyway), or the drone was not ready within
        ``broadcast.sortie_wait_s`` of that end."""
        sh, cfg, clock = self.share, self.ctx.settings.broadcast, self.ctx.clock
        vid = self.vehicle_id
        which = f"{vid}'s sortie {sh.sortie + 1} (share {sh.share + 1} of {sh.shares})"
        prev = await self._previous_sortie(which) if sh.after else None
        if prev is not None and MissionState(prev.state) != MissionState.COMPLETED:
            await self._end(
                MissionState.CANCELLED,
                f"not flown: {vid}'s previous sortie ({prev.id}) ended {prev.state}; the "
                "attempt is flown again",
                {"requeue": True},
            )
            return False
        deadline = clock.time() + cfg.sortie_wait_s
        said = ""
        while (cause := self._not_ready()) is not None:
            what, why = cause
            if what != said:
                said = what
                await self.note(EventKind.DECISION, f"{which} waits: {why}", sortie=sh.sortie)
            try:
                await self.ctx.registry.wait_for(
                    vid,
                    functools.partial(self._cause_changed, what),
                    max(0.0, deadline - clock.time()),
                    clock,
                )
            except (TimeoutError, NotFound) as exc:
                gone = isinstance(exc, NotFound)
                await self._end(
                    MissionState.FAILED,
                    f"{which} not flown: "
                    + (f"{vid} is gone" if gone else f"after {cfg.sortie_wait_s:.0f} s, {why}"),
                )
                return False
            if self._cancel_requested:
                await self._end(MissionState.CANCELLED, self._cancel_requested, {})
                return False
        battery = self.ctx.registry.get(vid).status.battery_fraction
        await self.note(
            EventKind.DECISION,
            f"{vid} is back on its pad with battery {_pct(battery)}: {which} starts "
            f"({sh.duration_s / 60:.1f} min)",
            sortie=sh.sortie,
        )
        return True

    async def _previous_sortie(self, which: str) -> Mission:
        """The drone's previous sortie of this attempt, once it has ended (its end is awaited
        on the event bus: it ends whatever happens, by its own overdue limit at the latest)."""
        after = self.share.after
        assert after is not None

        def ended(e: FleetEvent) -> bool:
            return (
                isinstance(e, MissionEventPublished)
                and e.mission_id == after
                and e.kind == EventKind.STATE
                and e.to_state in MISSION_TERMINAL
            )

        with self.ctx.bus.subscribe(ended) as sub:  # before reading: no end is missed
            prev = await self.ctx.store.get_mission(after)
            if MissionState(prev.state) in MISSION_TERMINAL:
                return prev
            await self.note(
                EventKind.DECISION,
                f"{which} waits: {self.vehicle_id}'s previous sortie ({after}) has not ended",
                sortie=self.share.sortie,
            )
            async for _ in sub:
                break
        return await self.ctx.store.get_mission(after)

    def _cause_changed(self, cause: str, _entry: VehicleEntry) -> bool:
        now = self._not_ready()
        return now is None or now[0] != cause

    def _not_ready(self) -> tuple[str, str] | None:
        """Why the drone cannot fly this sortie yet (a cause and its words), or None."""
        sh, cfg, vid = self.share, self.ctx.settings.broadcast, self.vehicle_id
        try:
            st = self.ctx.registry.get(vid).status
        except NotFound:
            return "absent", f"{vid} is not connected"
        if st.link != LinkState.ONLINE:
            return "link", f"{vid} is not online ({st.link})"
        if st.armed or st.landed != LandedState.ON_GROUND:
            return "airborne", f"{vid} has not landed and disarmed yet"
        if endurance_s(st.battery_fraction, cfg) < sh.duration_s:
            return "battery", (
                f"{vid}'s battery ({_pct(st.battery_fraction)}) flies less than the "
                f"{sh.duration_s:.0f} s this share needs with the {cfg.reserve_fraction:.0%} "
                "reserve: waiting for the battery swap"
            )
        if not st.ready_for_mission:
            return "not-ready", f"{vid} is not ready to arm"
        return None

    def _speaker(self) -> SpeakerControl:
        return speaker_on(self.ctx.registry, self.vehicle_id)

    async def _start(self) -> bool:
        """Upload, load the clip, start the speaker session, start the flight. False if the
        mission ended instead."""
        sh = self.share
        url = clip_url(service_url(self.ctx), sh.clip_sha256)
        speaker: SpeakerControl | None = None
        try:
            entry, drone = self._drone()
            speaker = self._speaker()
            await self.set_phase(
                Phase.PREFLIGHT,
                f"uploading geofence and plan; speaker {speaker.payload_id} loads clip "
                f"{sh.clip_sha256[:12]} ({sh.clip_duration_s:.1f} s)",
            )
            await self._secure(entry, drone, _cruise_alt(sh.flight_plan))
            home = entry.status.home
            if home is not None:
                check_airspace(self.ctx.world, sh.flight_plan, home.latlon)
                # a broadcast keeps its altitude (its coverage depends on it): a later start only
                await self._reserve_airspace(
                    [Option(None, tuple(trajectory(self.ctx.world, sh.flight_plan, home.latlon)))],
                    0.0,
                )
            session = await start_broadcast(
                drone, speaker, sh, ClipRef(url, sh.clip_sha256), sh.volume, sh.clip_duration_s
            )
        except (VehicleError, NotFound, PlanningError) as exc:
            await self._quiet(speaker)
            await self._end(MissionState.FAILED, f"could not prepare the broadcast: {exc.message}")
            return False
        if self._cancel_requested:
            await self._quiet(speaker)
            await self._end(MissionState.CANCELLED, self._cancel_requested, {})
            return False
        battery = entry.status.battery_fraction
        await self.transition(
            MissionState.AUTHORIZED,
            f"plan of {len(sh.flight_plan.items)} items accepted by {self.vehicle_id}; speaker "
            f"{speaker.payload_id} loaded the clip, volume {sh.volume} %, session {session} "
            "started (silent outside the area)"
            + (f"; battery {battery:.0%}" if battery is not None else ""),
            result={"session_id": session, "payload_id": speaker.payload_id, "clip_url": url},
        )
        try:
            await drone.start_mission()
        except VehicleError as exc:
            await self._quiet(speaker)
            await self._end(MissionState.FAILED, f"vehicle refused to start: {exc.message}")
            return False

        async def started(s: Session) -> list[MissionEvent]:
            return await self._requests_to(
                s,
                RequestState.IN_PROGRESS,
                f"mission {self.mission.id} underway",
                from_states=[RequestState.SCHEDULED],
            )

        await self.transition(
            MissionState.UNDERWAY,
            "mission started on the vehicle",
            phase=Phase.TAKEOFF,
            extra=started,
        )
        return True

    def _phase_of(self, seq: int) -> Phase:
        sh = self.share
        if seq <= 0:
            return Phase.TAKEOFF
        if seq < sh.first_station_index:
            return Phase.GO_TO
        if seq <= sh.last_station_index:
            return Phase.BROADCAST
        return Phase.RETURN

    async def _follow(self) -> None:
        """Follow the drone until it is back on the ground and disarmed (also after a
        restart, when the drone may not be discovered yet): :class:`missions.follow.Follower`."""
        clock = self.ctx.clock
        took_off = bool(self.mission.result.get("took_off"))
        started = self.mission.started_at.timestamp() if self.mission.started_at else clock.time()
        limit = max(self.ctx.settings.broadcast.max_flight_s, 1.3 * self.share.duration_s)
        fresh = False  # progress describes this mission only once it is reported running
        follower = Follower(
            self.ctx.registry,
            clock,
            self.vehicle_id,
            deadline=started + limit + FLIGHT_MARGIN_S,
            notes=Notes(lost="link lost; the drone continues its mission"),
        )
        self.follower = follower

        async def update(entry: VehicleEntry) -> bool:
            nonlocal took_off, fresh
            st = entry.status
            self.recorder.sample(st, clock.time())
            await self._checkpoint()
            progress = st.mission
            if progress.state == MissionRunState.UNKNOWN:
                return False
            if not took_off and st.landed == LandedState.IN_AIR:
                took_off = True
                await self.save_result(took_off=True)
            if progress.state == MissionRunState.ACTIVE:
                fresh = True
            if took_off and not follower.stop_sent:
                if st.landed == LandedState.LANDING:
                    await self.set_phase(Phase.LANDING)
                elif fresh and st.landed != LandedState.ON_GROUND:  # landed: done next
                    seq = progress.current
                    if progress.state == MissionRunState.COMPLETE:
                        seq = len(self.share.flight_plan.items)
                    await self.set_phase(self._phase_of(seq))
            if took_off and st.landed == LandedState.ON_GROUND and not st.armed:
                await self._landed(entry)
                return True
            return False

        async def overdue() -> None:
            await self._overdue(limit + FLIGHT_MARGIN_S)

        await follower.follow(
            update,
            overdue=overdue,
            note=self._vehicle_note,
            stop_requested=self._wants_stop,
            stop=self._recall_for_cancel,
        )

    # --- results --------------------------------------------------------------------------

    async def _checkpoint(self) -> None:
        now = self.ctx.clock.time()
        if now - self._saved_at >= TRACK_CHECKPOINT_S:
            self._saved_at = now
            await self.save_result(track=track_to_json(self.recorder.rows))

    async def _collect(self) -> tuple[list[PlaybackRecord], str]:
        """Stop the session and gather its records; the second value says what is missing."""
        session = self.mission.result.get("session_id")
        if not session:
            return [], "no speaker session was started"
        speaker = await self._speaker_within(RECORDS_WITHIN_S)
        if speaker is None:
            return [], "the speaker payload is not connected: its records are not collected"
        try:
            return await finish_broadcast(speaker, session, RECORDS_WITHIN_S), ""
        except StreetfleetError as exc:
            got = speaker.playback_records(session)
            return got, f"records may be incomplete ({len(got)} received): {exc}"

    async def _speaker_within(self, seconds: float) -> SpeakerControl | None:
        """The drone's speaker, waiting for it to be (re)discovered after a restart."""
        deadline = self.ctx.clock.time() + seconds
        while True:
            try:
                return self._speaker()
            except NotFound:
                if self.ctx.clock.time() >= deadline:
                    return None
                await self.ctx.clock.sleep(1.0)

    def _flight_result(self, records: list[PlaybackRecord], missing: str) -> dict[str, Any]:
        completed = [r for r in records if r.completed]
        return {
            "track": track_to_json(self.recorder.rows),
            "playback": [record_to_json(r) for r in records],
            "records_complete": not missing,
            "records_note": missing,
            "plays": {
                "total": len(records),
                "completed": len(completed),
                "cut": len(records) - len(completed),
                "sounding_s": round(sum(r.duration_s for r in records), 1),
            },
        }

    async def _landed(self, entry: VehicleEntry) -> None:
        pos = entry.status.position
        home = entry.status.home
        dist = (
            distance_m(LatLon(pos.lat, pos.lon), LatLon(home.lat, home.lon))
            if pos is not None and home is not None
            else None
        )
        records, missing = await self._collect()
        result = {
            **self._flight_result(records, missing),
            "landed_at": self.ctx.clock.now().isoformat(),
            "landing_position": [pos.lat, pos.lon] if pos else None,
            "landing_distance_m": round(dist, 2) if dist is not None else None,
        }
        plays = result["plays"]
        said = (
            f"{plays['completed']} complete plays and {plays['cut']} cut, "
            f"{plays['sounding_s']:.0f} s of sound" + (f"; {missing}" if missing else "")
        )
        where = f"{dist:.1f} m from home" if dist is not None else "at an unknown position"
        if self._cancel_requested:
            await self._end(
                MissionState.CANCELLED,
                f"cancelled ({self._cancel_requested}); landed {where}; {said}",
                result,
            )
        else:
            await self._end(
                MissionState.COMPLETED, f"broadcast flown and landed {where}; {said}", result
            )

    async def _end(
        self, dst: MissionState, reason: str, result: dict[str, Any] | None = None
    ) -> None:
        """End the mission (its task with it), then settle the request."""
        task_state = {
            MissionState.COMPLETED: TaskState.DONE,
            MissionState.CANCELLED: TaskState.CANCELLED,
        }.get(dst, TaskState.FAILED)

        async def tasks(s: Session) -> list[MissionEvent]:
            for task in await self._tasks():
                task.state = task_state
                await self.ctx.store.update_task(task, s)
            return []

        if dst == MissionState.CANCELLED:
            # cancelled to be planned again (a re-plan) rather than stopped
            result = result or {}
            requeue = bool(result.get("requeue")) or bool(getattr(self, "_cancel_requeue", False))
            result = {**result, "requeue": requeue}
        await self.transition(dst, reason, phase=Phase.DONE, result=result, extra=tasks)
        await settle(self.ctx, self.share.request_id)

    async def _fail(self, reason: str) -> None:
        await self._end(MissionState.FAILED, reason)

    async def cancel_unstarted(self, why: str) -> None:
        """Cancel before take-off (``MissionRun.cancel_unstarted``: the request is cancelled by
        whoever cancels it); the speaker's session, if started, is stopped too. When
        :meth:`cancel` asked to requeue (a re-plan) the occurrence is flown again by a new
        attempt."""
        requeue = self._cancel_requeue
        async with request_lock(self.share.request_id):
            await super().cancel_unstarted(why)
            if requeue:
                await self.save_result(requeue=True)
        with contextlib.suppress(NotFound):
            await self._quiet(self._speaker())
        if requeue:
            await settle(self.ctx, self.share.request_id)

    async def _quiet(self, speaker: SpeakerControl | None) -> None:
        """Stop the speaker's session, whatever state it is in (best effort)."""
        if speaker is None:
            return
        try:
            await speaker.stop()
        except StreetfleetError as exc:
            log.warning("broadcast.speaker_stop_failed", mission_id=self.mission.id, error=str(exc))

    async def _overdue(self, limit_s: float) -> None:
        why = f"not back after {limit_s:.0f} s"
        await self._send_home(why)
        records, missing = await self._collect()
        await self._end(MissionState.FAILED, why, self._flight_result(records, missing))


def _pct(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.0%}"
