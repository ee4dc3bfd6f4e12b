"""The executor: one task per running mission, driving its vehicle through the mission's phases.

A run takes a mission from ``planned`` to a terminal state. Every transition is stored with its
reason together with what it implies (stock movements, task and request states) in one
transaction, then announced on the bus. Vehicle errors fail the mission with the vehicle's reason
and put its work back in the queue; nothing is torn up once the vehicle has started it, and a
mission found ``underway`` after a restart is followed again rather than restarted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from fleet.airspace import world_geofence
from fleet.drone import DroneControl
from fleet.errors import Conflict, NotFound, StreetfleetError, VehicleError
from fleet.geo import LatLon, distance_m
from fleet.registry import VehicleEntry
from fleet.store.tables import Mission, MissionEvent, Task
from fleet.vehicle import LandedState, LinkState, MissionRunState
from missions.context import MissionContext
from missions.drone_delivery import DeliveryPlan, plan_from_json
from missions.journal import EventKind
from missions.states import (
    MISSION_TERMINAL,
    MissionState,
    Phase,
    RequestState,
    TaskState,
    check_mission_transition,
)

log = structlog.get_logger(__name__)


class MissionRun:
    """Executes one drone delivery mission."""

    def __init__(self, ctx: MissionContext, mission: Mission, on_done: Callable[[str], None]):
        self.ctx = ctx
        self.mission = mission
        self.on_done = on_done
        self.dp: DeliveryPlan = plan_from_json(mission.plan)
        self.cfg = ctx.settings.drone_missions
        self._cancel_requested: str | None = None
        self._resuming = MissionState(mission.state) == MissionState.UNDERWAY

    @property
    def vehicle_id(self) -> str:
        assert self.mission.vehicle_id is not None
        return self.mission.vehicle_id

    # --- state changes -----------------------------------------------------------------------

    async def transition(
        self,
        dst: MissionState,
        reason: str,
        *,
        phase: Phase | None = None,
        result: dict[str, Any] | None = None,
        extra: Callable[[Any], Any] | None = None,
        **data: Any,
    ) -> None:
        """Move the mission to ``dst`` (checked), with its event, in one transaction.

        ``extra(session)`` runs in the same transaction (stock movements, request updates).
        """
        src = MissionState(self.mission.state)
        check_mission_transition(src, dst)
        j = self.ctx.journal
        ev = j.event(
            EventKind.STATE,
            reason,
            mission_id=self.mission.id,
            vehicle_id=self.mission.vehicle_id,
            from_state=src,
            to_state=dst,
            **data,
        )
        changes: dict[str, Any] = {"state": dst}
        now = self.ctx.clock.now()
        events = [ev]
        if phase is not None and phase != self.mission.phase:
            changes["phase"] = phase
            events.append(
                j.event(
                    EventKind.PHASE,
                    f"phase {phase}",
                    mission_id=self.mission.id,
                    vehicle_id=self.mission.vehicle_id,
                    phase=str(phase),
                )
            )
        if dst == MissionState.UNDERWAY:
            changes["started_at"] = now
        if dst in MISSION_TERMINAL:
            changes["ended_at"] = now
            changes["reason"] = reason
        if result:
            changes["result"] = {**self.mission.result, **result}
        extra_events: list[MissionEvent] = []
        async with self.ctx.store.transaction() as s:
            self.mission = await self.ctx.store.update_mission(
                self.mission.id, expected_states=[src], events=events, session=s, **changes
            )
            if extra is not None:
                extra_events = list(await extra(s) or [])
        j.published(*events, *extra_events)
        log.info(
            "mission.state",
            mission_id=self.mission.id,
            vehicle_id=self.vehicle_id,
            from_state=str(src),
            to_state=str(dst),
            reason=reason,
        )

    async def set_phase(self, phase: Phase, reason: str = "", **data: Any) -> None:
        if self.mission.phase == phase:
            return
        ev = self.ctx.journal.event(
            EventKind.PHASE,
            reason or f"phase {phase}",
            mission_id=self.mission.id,
            vehicle_id=self.vehicle_id,
            phase=str(phase),
            **data,
        )
        self.mission = await self.ctx.store.update_mission(
            self.mission.id, events=[ev], phase=phase
        )
        self.ctx.journal.published(ev)

    async def note(self, kind: str, reason: str, **data: Any) -> None:
        ev = self.ctx.journal.event(
            kind, reason, mission_id=self.mission.id, vehicle_id=self.vehicle_id, **data
        )
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)

    # --- stock and request bookkeeping ------------------------------------------------------

    async def _tasks(self) -> list[Task]:
        return list(await self.ctx.store.mission_tasks(self.mission.id))

    def _warehouse_id(self) -> str:
        pad = self.ctx.world.pad(self.dp.pad_id)
        assert pad.warehouse_id is not None
        return pad.warehouse_id

    async def _stock_for_tasks(self, s: Any, kind: str, note: str) -> list[MissionEvent]:
        """Apply one stock movement per task line; returns the events recording them."""
        events = []
        now = self.ctx.clock.now()
        for task in await self._tasks():
            for line in task.load:
                mv = await self.ctx.store.move_stock(
                    kind,
                    self._warehouse_id(),
                    line["sku_id"],
                    line["quantity"],
                    at=now,
                    request_id=task.request_id,
                    mission_id=self.mission.id,
                    note=note,
                    session=s,
                )
                ev = self.ctx.journal.event(
                    EventKind.STOCK,
                    f"{kind} {mv.quantity} {mv.sku_id}: {note}",
                    mission_id=self.mission.id,
                    request_id=task.request_id,
                    vehicle_id=self.vehicle_id,
                    movement_id=mv.id,
                    sku_id=mv.sku_id,
                    quantity=mv.quantity,
                    movement=kind,
                )
                s.add(ev)
                events.append(ev)
        return events

    async def _requests_to(
        self,
        s: Any,
        dst: RequestState,
        reason: str,
        *,
        from_states: list[RequestState],
        task_state: TaskState | None = None,
        **changes: Any,
    ) -> list[MissionEvent]:
        events = []
        for task in await self._tasks():
            if task_state is not None:
                task.state = task_state
                await self.ctx.store.update_task(task, s)
            current = (await self.ctx.store.get_request(task.request_id)).request.state
            ev = self.ctx.journal.event(
                EventKind.STATE,
                reason,
                mission_id=self.mission.id,
                request_id=task.request_id,
                vehicle_id=self.vehicle_id,
                from_state=current,
                to_state=dst,
            )
            try:
                await self.ctx.store.update_request(
                    task.request_id,
                    expected_states=from_states,
                    events=[ev],
                    session=s,
                    state=dst,
                    **changes,
                )
            except Conflict:
                continue  # already moved on (e.g. cancelled); the mission's own event stands
            events.append(ev)
        return events

    async def _release_reservations(self, s: Any, why: str) -> list[MissionEvent]:
        return await self._stock_for_tasks(s, "release", why)

    # --- the run ----------------------------------------------------------------------------

    def cancel(self, reason: str) -> None:
        """Ask the run to stop: before take-off it stops at once, in flight the drone returns."""
        self._cancel_requested = reason

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            log.info("mission.detached", mission_id=self.mission.id, state=str(self.mission.state))
            raise
        except Exception as exc:  # never lose a mission silently
            log.exception("mission.crashed", mission_id=self.mission.id)
            if MissionState(self.mission.state) not in MISSION_TERMINAL:
                try:
                    await self._fail(f"internal error: {exc}")
                except StreetfleetError:
                    log.exception("mission.fail_record_failed", mission_id=self.mission.id)
        finally:
            self.on_done(self.mission.id)

    async def _run(self) -> None:
        if MissionState(self.mission.state) == MissionState.PLANNED and not await self._start():
            return
        await self._follow()

    def _control(self) -> tuple[VehicleEntry, DroneControl]:
        entry = self.ctx.registry.get(self.vehicle_id)
        return entry, entry.control

    async def _start(self) -> bool:
        """Upload, authorize, load and start. False if the mission ended instead."""
        try:
            entry, ctl = self._control()
            await self.set_phase(Phase.PREFLIGHT, "uploading geofence and mission")
            await ctl.upload_geofence(world_geofence(self.ctx.world))
            await ctl.upload_mission(self.dp.plan)
            if self._cancel_requested:
                await self._cancel_before_flight(self._cancel_requested)
                return False

            async def load(s: Any) -> list[MissionEvent]:
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
            await self._fail_before_flight(f"vehicle refused the mission: {exc}")
            return False

        async def started(s: Any) -> list[MissionEvent]:
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
        """Follow the vehicle until it is back on the ground and disarmed.

        Also used after a restart: the vehicle may not be discovered yet, and what happened
        while nobody watched (a release, a landing) is read from its mission progress.
        """
        clock, registry = self.ctx.clock, self.ctx.registry
        released = bool(self.mission.result.get("released"))
        took_off = bool(self.mission.result.get("took_off"))
        resumed = self.mission.started_at is not None and self._resuming
        started = self.mission.started_at.timestamp() if self.mission.started_at else clock.time()
        deadline = started + self.cfg.max_flight_s
        seen = -1
        link_lost_noted = False
        recall_sent = False
        fresh = resumed  # after a restart the registry holds nothing stale
        while True:
            remaining = deadline - clock.time()
            if remaining <= 0:
                await self._recall(f"not back after {self.cfg.max_flight_s:.0f} s")
                return
            try:
                entry = await registry.wait_for(
                    self.vehicle_id,
                    lambda e, v=seen: e.version != v,  # type: ignore[misc]
                    within=min(remaining, 5.0),
                    clock=clock,
                )
            except TimeoutError:
                continue
            except NotFound:  # not (re)discovered yet after a restart
                await clock.sleep(1.0)
                continue
            seen = entry.version
            st = entry.status
            progress = st.mission
            if progress.state == MissionRunState.UNKNOWN:
                continue  # wait for its first mission report before judging anything
            if st.link == LinkState.LOST and not link_lost_noted:
                link_lost_noted = True
                await self.note(EventKind.VEHICLE, "link lost; the drone continues its mission")
            elif st.link == LinkState.ONLINE and link_lost_noted:
                link_lost_noted = False
                await self.note(EventKind.VEHICLE, "link regained")
            if self._cancel_requested and not recall_sent:
                recall_sent = True
                await self._recall_for_cancel()
            if not took_off and st.landed == LandedState.IN_AIR:
                took_off = True
                await self._record_result(took_off=True)
            if progress.state == MissionRunState.ACTIVE:
                fresh = True
            # until this mission runs, progress describes the vehicle's previous mission (PX4
            # keeps reporting it, and repeats MISSION_ITEM_REACHED for a while)
            if fresh:
                seq = progress.current
                if progress.state == MissionRunState.COMPLETE:
                    seq = len(self.dp.plan.items)
                if took_off and not recall_sent:
                    await self.set_phase(self._phase_of(seq))
                if not released and took_off and seq > self.dp.gripper_index and not recall_sent:
                    released = True
                    # after a restart the release may have happened unobserved: no position
                    await self._released(entry, observed=not resumed)
                resumed = False
            if took_off and st.landed == LandedState.ON_GROUND and not st.armed:
                await self._landed(entry, released)
                return

    async def _record_result(self, **result: Any) -> None:
        self.mission = await self.ctx.store.update_mission(
            self.mission.id, result={**self.mission.result, **result}
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

        async def book(s: Any) -> list[MissionEvent]:
            events = await self._stock_for_tasks(
                s, "deliver", f"released at {self.dp.community_id}"
            )
            now = self.ctx.clock.now()
            for task in await self._tasks():
                task.state = TaskState.DONE
                await self.ctx.store.update_task(task, s)
                rec = await self.ctx.store.get_request(task.request_id)
                delivered = {ln["sku_id"]: ln["quantity"] for ln in task.load}
                for item in rec.items:
                    item.delivered += delivered.get(item.sku_id, 0)
                await self.ctx.store.update_items(rec.items, s)
                full = all(i.delivered >= i.quantity for i in rec.items)
                dst = RequestState.DELIVERED if full else RequestState.PARTIALLY_DELIVERED
                ev = self.ctx.journal.event(
                    EventKind.STATE,
                    reason,
                    mission_id=self.mission.id,
                    request_id=task.request_id,
                    vehicle_id=self.vehicle_id,
                    from_state=RequestState.IN_PROGRESS,
                    to_state=dst,
                )
                try:
                    await self.ctx.store.update_request(
                        task.request_id,
                        expected_states=[RequestState.IN_PROGRESS],
                        events=[ev],
                        session=s,
                        state=dst,
                        closed_at=now,
                    )
                    events.append(ev)
                except Conflict:
                    pass
            return events

        ev = self.ctx.journal.event(
            EventKind.PAYLOAD,
            reason,
            mission_id=self.mission.id,
            vehicle_id=self.vehicle_id,
            **result,
        )
        events: list[MissionEvent] = []
        async with self.ctx.store.transaction() as s:
            self.mission = await self.ctx.store.update_mission(
                self.mission.id,
                events=[ev],
                session=s,
                result={**self.mission.result, **result},
            )
            events = await book(s)
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
        stock and the request returns to the queue (or stays cancelled)."""

        async def back(s: Any) -> list[MissionEvent]:
            if released:
                return []
            events = await self._stock_for_tasks(s, "return", "load came back undelivered")
            for task in await self._tasks():
                task.state = (
                    TaskState.FAILED if dst != MissionState.CANCELLED else TaskState.CANCELLED
                )
                await self.ctx.store.update_task(task, s)
            if dst != MissionState.CANCELLED:
                events += await self._requests_to(
                    s,
                    RequestState.APPROVED,
                    f"mission {self.mission.id} {dst}: {reason}; back in the queue",
                    from_states=[RequestState.IN_PROGRESS, RequestState.SCHEDULED],
                )
            else:
                events += await self._requests_to(
                    s,
                    RequestState.CANCELLED,
                    reason,
                    from_states=[RequestState.IN_PROGRESS, RequestState.SCHEDULED],
                )
            return events

        await self.transition(dst, reason, phase=Phase.DONE, result=result, extra=back)

    async def _fail_before_flight(self, reason: str) -> None:
        """Fail a mission that never took off: undo its stock effect, requeue its requests."""
        loaded = MissionState(self.mission.state) == MissionState.AUTHORIZED

        async def undo(s: Any) -> list[MissionEvent]:
            if loaded:
                events = await self._stock_for_tasks(s, "return", "unloaded: mission failed")
            else:
                events = await self._release_reservations(s, "mission failed before loading")
            for task in await self._tasks():
                task.state = TaskState.FAILED
                await self.ctx.store.update_task(task, s)
            events += await self._requests_to(
                s,
                RequestState.APPROVED,
                f"mission {self.mission.id} failed: {reason}; back in the queue",
                from_states=[RequestState.SCHEDULED],
            )
            return events

        await self.transition(MissionState.FAILED, reason, phase=Phase.DONE, extra=undo)

    async def _cancel_before_flight(self, why: str) -> None:
        async def undo(s: Any) -> list[MissionEvent]:
            events = await self._release_reservations(s, f"mission cancelled: {why}")
            for task in await self._tasks():
                task.state = TaskState.CANCELLED
                await self.ctx.store.update_task(task, s)
            return events

        await self.transition(MissionState.CANCELLED, why, phase=Phase.DONE, extra=undo)

    async def _fail(self, reason: str) -> None:
        if MissionState(self.mission.state) in (MissionState.PLANNED, MissionState.AUTHORIZED):
            await self._fail_before_flight(reason)
        else:
            await self.transition(MissionState.FAILED, reason, phase=Phase.DONE)

    async def _recall(self, why: str) -> None:
        try:
            _, ctl = self._control()
            await ctl.return_to_launch()
            await self.note(EventKind.DECISION, f"return to launch commanded: {why}")
        except StreetfleetError as exc:
            await self.note(EventKind.VEHICLE, f"return to launch failed: {exc}")
        await self._fail(why)

    async def _recall_for_cancel(self) -> None:
        try:
            _, ctl = self._control()
            await ctl.return_to_launch()
            await self.set_phase(Phase.RETURN, f"cancelled: {self._cancel_requested}; returning")
        except StreetfleetError as exc:
            await self.note(EventKind.VEHICLE, f"return to launch failed: {exc}")
