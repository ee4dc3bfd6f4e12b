"""Drone delivery runs: upload fence and plan, start, follow the phases, book the release and
the landing (see ``missions.delivery.plan`` for the plan)."""

from __future__ import annotations

from typing import Any

from fleet.airspace import world_geofence
from fleet.errors import VehicleError
from fleet.geo import LatLon, distance_m
from fleet.registry import VehicleEntry
from fleet.store.repository import Session
from fleet.store.tables import Mission, MissionEvent
from fleet.vehicle import LandedState, MissionRunState
from missions.context import MissionContext
from missions.delivery.plan import DeliveryPlan, plan_from_json
from missions.follow import Follower, Notes
from missions.journal import EventKind
from missions.run import DroneRun
from missions.states import MissionKind, MissionState, Phase, TaskState


class DroneDeliveryRun(DroneRun):
    """Executes one drone delivery mission."""

    kind = MissionKind.DRONE_DELIVERY
    resumable = True

    def __init__(self, ctx: MissionContext, mission: Mission, on_done: Any) -> None:
        super().__init__(ctx, mission, on_done)
        self.dp: DeliveryPlan = plan_from_json(mission.plan)
        self.cfg = ctx.settings.drone_missions

    async def _run(self) -> None:
        if MissionState(self.mission.state) == MissionState.PLANNED and not await self._start():
            return
        await self._follow()

    async def _start(self) -> bool:
        """Upload, authorize, load and start. False if the mission ended instead."""
        try:
            entry, ctl = self._drone()
            await self.set_phase(Phase.PREFLIGHT, "uploading geofence and mission")
            await ctl.upload_geofence(world_geofence(self.ctx.world))
            await ctl.upload_mission(self.dp.plan)
            if self._cancel_requested:
                await self.cancel_unstarted(self._cancel_requested)
                return False

            async def load(s: Session) -> list[MissionEvent]:
                return await self._stock_for_tasks(s, "load", "loaded onto the drone")

            battery = entry.status.battery_fraction
            await self.transition(
                MissionState.AUTHORIZED,
                f"plan of {len(self.dp.plan.items)} items accepted by {self.vehicle_id}; "
                "legs clear of no-fly zones"
                + (f"; battery {battery:.0%}" if battery is not None else ""),
                extra=load,
            )
            await ctl.start_mission()
        except VehicleError as exc:
            self.refused = exc.message
            await self._fail(f"vehicle refused the mission: {exc.message}")
            return False

        async def started(s: Session) -> list[MissionEvent]:
            return await self._settle_requests(s, f"mission {self.mission.id} underway")

        await self.transition(
            MissionState.UNDERWAY,
            "mission started on the vehicle",
            phase=Phase.TAKEOFF,
            extra=started,
        )
        return True

    def _phase_of(self, seq: int) -> Phase:
        dp = self.dp
        if seq <= 0:
            return Phase.TAKEOFF
        if seq < dp.drop_index:
            return Phase.GO_TO
        if seq < dp.return_index:
            return Phase.DROP_OFF
        if seq < dp.land_index:
            return Phase.RETURN
        return Phase.LANDING

    async def _follow(self) -> None:
        """Follow the vehicle until it is back on the ground and disarmed
        (:class:`missions.follow.Follower`).

        Also used after a restart: the vehicle may not be discovered yet, and what happened
        while nobody watched (a release, a landing) is read from its mission progress.
        """
        clock = self.ctx.clock
        started = self.mission.started_at.timestamp() if self.mission.started_at else clock.time()
        released = bool(self.mission.result.get("released"))
        took_off = bool(self.mission.result.get("took_off"))
        resumed = self.mission.started_at is not None and self._resuming
        fresh = resumed  # after a restart the registry holds nothing stale
        follower = Follower(
            self.ctx.registry,
            clock,
            self.vehicle_id,
            deadline=started + self.cfg.max_flight_s,
            notes=Notes(lost="link lost; the drone continues its mission"),
        )

        async def update(entry: VehicleEntry) -> bool:
            nonlocal released, took_off, resumed, fresh
            st = entry.status
            progress = st.mission
            if progress.state == MissionRunState.UNKNOWN:
                return False  # wait for its first mission report before judging anything
            recalled = follower.stop_sent
            if not took_off and st.landed == LandedState.IN_AIR:
                took_off = True
                await self.save_result(took_off=True)
            if progress.state == MissionRunState.ACTIVE:
                fresh = True
            # until this mission runs, progress describes the vehicle's previous mission (PX4
            # keeps reporting it, and repeats MISSION_ITEM_REACHED for a while)
            if fresh:
                seq = progress.current
                if progress.state == MissionRunState.COMPLETE:
                    seq = len(self.dp.plan.items)
                if took_off and not recalled:
                    await self.set_phase(self._phase_of(seq))
                if not released and took_off and seq > self.dp.gripper_index and not recalled:
                    released = True
                    # after a restart the release may have happened unobserved: no position
                    await self._released(entry, observed=not resumed)
                resumed = False
            if took_off and st.landed == LandedState.ON_GROUND and not st.armed:
                await self._landed(entry, released)
                return True
            return False

        async def overdue() -> None:
            await self._recall(f"not back after {self.cfg.max_flight_s:.0f} s")

        await follower.follow(
            update,
            overdue=overdue,
            note=self._vehicle_note,
            stop_requested=self._wants_stop,
            stop=self._recall_for_cancel,
        )

    async def _released(self, entry: VehicleEntry, observed: bool = True) -> None:
        pos = entry.status.position if observed else None
        at = LatLon(pos.lat, pos.lon) if pos else None
        dist = distance_m(at, self.dp.drop) if at else None
        result: dict[str, Any] = {
            "released": True,
            "release_at": self.ctx.clock.now().isoformat(),
            "release_position": [pos.lat, pos.lon, pos.rel_alt] if pos else None,
            "release_distance_m": round(dist, 2) if dist is not None else None,
        }
        if not observed:
            reason = "payload released while the service was restarting (position not observed)"
        elif dist is None:
            reason = "payload released (position not reported)"
        else:
            reason = f"payload released {dist:.1f} m from the drop point of {self.dp.community_id}"

        async def book(s: Session) -> list[MissionEvent]:
            tasks = [t for t in await self._tasks(s) if t.state == TaskState.ASSIGNED]
            return await self._book_delivery(
                s, tasks, f"released at {self.dp.community_id}", reason
            )

        ev = self.ctx.journal.event(
            EventKind.PAYLOAD,
            reason,
            mission_id=self.mission.id,
            vehicle_id=self.vehicle_id,
            **result,
        )
        events: list[MissionEvent] = []
        async with self.ctx.store.transaction() as s:
            updated = await self.ctx.store.update_mission(
                self.mission.id,
                events=[ev],
                session=s,
                result={**self.mission.result, **result},
            )
            events = await book(s)
        self.mission = updated  # once committed (see MissionRun.transition)
        self.ctx.journal.published(ev, *events)

    async def _landed(self, entry: VehicleEntry, released: bool) -> None:
        pos = entry.status.position
        pad = self.ctx.world.pad(self.dp.pad_id)
        dist = distance_m(LatLon(pos.lat, pos.lon), pad.location) if pos else None
        result: dict[str, Any] = {
            "landed_at": self.ctx.clock.now().isoformat(),
            "landing_position": [pos.lat, pos.lon] if pos else None,
            "landing_distance_m": round(dist, 2) if dist is not None else None,
        }
        where = f"{dist:.1f} m from pad {pad.id}" if dist is not None else "at an unknown position"
        if self._cancel_requested:
            await self._end_with_load_back(
                MissionState.CANCELLED,
                f"cancelled ({self._cancel_requested}); landed {where}",
                result,
                released,
            )
        elif released:
            await self.transition(
                MissionState.COMPLETED,
                f"delivered and landed {where}",
                phase=Phase.DONE,
                result=result,
            )
        else:
            await self._end_with_load_back(
                MissionState.FAILED,
                f"landed {where} without releasing the payload (mode {entry.status.mode})",
                result,
                released,
            )

    async def _end_with_load_back(
        self, dst: MissionState, reason: str, result: dict[str, Any], released: bool
    ) -> None:
        """End a mission whose load did not reach its community: the goods come back to
        stock; a cancelled mission's requests are cancelled, a failed one's requeued."""
        del released  # delivered work is booked already; only the rest is unwound

        cancelled = dst == MissionState.CANCELLED

        async def back(s: Session) -> list[MissionEvent]:
            return await self._unwind(
                s,
                f"{dst}: {reason}",
                task_state=TaskState.CANCELLED if cancelled else TaskState.FAILED,
                cancel_requests=cancelled and not self._cancel_requeue,
            )

        await self.transition(dst, reason, phase=Phase.DONE, result=result, extra=back)

    async def _recall(self, why: str) -> None:
        await self._send_home(why)
        await self._fail(why)
