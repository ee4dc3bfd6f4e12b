"""The base of mission runs: one task per running mission, driving its vehicle through phases.

A run takes a mission from ``planned`` to a terminal state. Every transition is stored with its
reason together with what it implies (stock movements, task and request states) in one
transaction, then announced on the bus. Vehicle errors fail the mission with the vehicle's reason
and put its work back in the queue; nothing is torn up once the vehicle has started it, and a
mission found ``underway`` after a restart is followed again rather than restarted.

Stock (``docs/dispatch.md``): the allocation step reserved the goods for the requests before
the mission was planned; a run never reserves. ``load`` consumes the reservation
(:meth:`MissionRun._stock_for_tasks`), ``deliver`` books the hand-over
(:meth:`MissionRun._book_delivery`), and a mission that ends without delivering books what it
loaded back with ``return`` (:meth:`MissionRun._unwind`); reservations of work it never
loaded stay with their requests, which the planners plan again.

Each mission kind subclasses :class:`MissionRun` (``missions.delivery.run``,
``missions.broadcast``, ``missions.shuttle``) and registers it with the
:class:`missions.service.MissionService`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog

from fleet.deconfliction import Option, Slot
from fleet.drone import DroneControl
from fleet.errors import Conflict, NotFound, PlanningError, StreetfleetError
from fleet.ledger import MovementKind
from fleet.registry import VehicleEntry
from fleet.store.repository import Session
from fleet.store.retry import retrying
from fleet.store.tables import Mission, MissionEvent, StockMovement, Task
from missions.bookkeeping import cancel_request, settle_request
from missions.context import MissionContext
from missions.follow import Follower
from missions.journal import EventKind
from missions.preflight import secure_drone
from missions.states import (
    MISSION_TERMINAL,
    MissionState,
    Phase,
    RequestState,
    TaskState,
    check_mission_transition,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StopCommand:
    """How the vehicle is stopped when a cancel comes with its own command (an operator's
    ``land`` instead of the return a cancel sends; an operator's ``cancel_order``): the run's
    ``stop`` hook sends it in place of its own, so that the command and the cancel are one."""

    send: Callable[[], Awaitable[None]]
    """Sends the command; raises the ``VehicleError`` of a refusal."""
    phase: Phase | None = None
    """The phase the mission enters once the vehicle took it (None: the run's own)."""
    doing: str = ""
    """What the vehicle does now, for the record (``landing where it is``)."""


class MissionRun(ABC):
    """Executes one mission; subclasses implement :meth:`_run` for their kind."""

    kind: ClassVar[str]
    """The ``MissionKind`` value this run executes."""
    resumable: ClassVar[bool] = False
    """Whether an ``underway`` mission found after a restart is followed again."""

    def __init__(self, ctx: MissionContext, mission: Mission, on_done: Callable[[str], None]):
        self.ctx = ctx
        self.mission = mission
        self.on_done = on_done
        self._cancel_requested: str | None = None
        self.refused: str | None = None
        """Why the vehicle refused this mission before starting it (set by the run); the
        dispatcher then rests the vehicle for a while instead of offering it the next one."""
        self._cancel_requeue = False
        self._stop_command: StopCommand | None = None
        self._resuming = MissionState(mission.state) == MissionState.UNDERWAY
        self.follower: Follower | None = None
        """The follower of the vehicle once the run follows it (runs set it)."""
        self.held_by: str | None = None
        """Who holds the vehicle and why, while an operator holds it (``held by ...``)."""

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
        extra: Callable[[Session], Awaitable[list[MissionEvent]]] | None = None,
        **data: Any,
    ) -> None:
        """Move the mission to ``dst`` (checked), with its event, in one transaction.

        ``extra(session)`` runs in the same transaction (stock movements, request updates).
        """
        src = MissionState(self.mission.state)
        check_mission_transition(src, dst)
        j = self.ctx.journal

        async def attempt() -> tuple[Mission, list[MissionEvent], list[MissionEvent]]:
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
                updated = await self.ctx.store.update_mission(
                    self.mission.id, expected_states=[src], events=events, session=s, **changes
                )
                if extra is not None:
                    extra_events = list(await extra(s) or [])
            return updated, events, extra_events

        # a busy database wrote nothing: the whole change (and ``extra``) is made again
        updated, events, extra_events = await retrying(attempt)
        self.mission = updated  # once committed: a rolled-back row is expired and unreadable
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

        def event() -> MissionEvent:
            return self.ctx.journal.event(
                EventKind.PHASE,
                reason or f"phase {phase}",
                mission_id=self.mission.id,
                vehicle_id=self.vehicle_id,
                phase=str(phase),
                **data,
            )

        async def attempt() -> tuple[Mission, MissionEvent]:
            ev = event()
            return await self.ctx.store.update_mission(
                self.mission.id, events=[ev], phase=phase
            ), ev

        self.mission, ev = await retrying(attempt)
        self.ctx.journal.published(ev)

    async def note(self, kind: str, reason: str, **data: Any) -> None:
        async def attempt() -> MissionEvent:
            ev = self.ctx.journal.event(
                kind, reason, mission_id=self.mission.id, vehicle_id=self.vehicle_id, **data
            )
            await self.ctx.store.add_events([ev])
            return ev

        self.ctx.journal.published(await retrying(attempt))

    # --- stock and request bookkeeping ------------------------------------------------------

    async def _tasks(self, s: Session | None = None) -> list[Task]:
        return list(await self.ctx.store.mission_tasks(self.mission.id, session=s))

    def _warehouse_id(self) -> str:
        """The warehouse whose stock the mission's loads come from (``plan.warehouse_id``)."""
        return str(self.mission.plan["warehouse_id"])

    def _stock_event(self, mv: StockMovement, request_id: str | None, note: str) -> MissionEvent:
        return self.ctx.journal.event(
            EventKind.STOCK,
            f"{mv.kind} {mv.quantity} {mv.sku_id}: {note}",
            mission_id=self.mission.id,
            request_id=request_id,
            vehicle_id=self.mission.vehicle_id,
            movement_id=mv.id,
            sku_id=mv.sku_id,
            quantity=mv.quantity,
            movement=mv.kind,
        )

    async def _stock_for_tasks(self, s: Session, kind: str, note: str) -> list[MissionEvent]:
        """Apply one stock movement per line of the mission's ``assigned`` tasks (``load``
        consumes the reservations the allocation step made for their requests); returns the
        events recording them (already in the session)."""
        events = []
        now = self.ctx.clock.now()
        for task in await self._tasks(s):
            if task.state != TaskState.ASSIGNED:
                continue
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
                ev = self._stock_event(mv, task.request_id, note)
                s.add(ev)
                events.append(ev)
        return events

    async def _book_delivery(
        self, s: Session, tasks: list[Task], note: str, reason: str
    ) -> list[MissionEvent]:
        """``tasks`` were handed over: one ``deliver`` movement per line, the request lines'
        ``delivered`` grow, the tasks are done and their requests settle (``delivered`` when
        complete; else back in the queue for more stock, see ``missions.bookkeeping``)."""
        events = []
        now = self.ctx.clock.now()
        for task in tasks:
            for line in task.load:
                mv = await self.ctx.store.move_stock(
                    MovementKind.DELIVER,
                    self._warehouse_id(),
                    line["sku_id"],
                    line["quantity"],
                    at=now,
                    request_id=task.request_id,
                    mission_id=self.mission.id,
                    note=note,
                    session=s,
                )
                ev = self._stock_event(mv, task.request_id, note)
                s.add(ev)
                events.append(ev)
                await self.ctx.store.count_item(
                    task.request_id, line["sku_id"], delivered=line["quantity"], session=s
                )
            task.state = TaskState.DONE
            await self.ctx.store.update_task(task, s)
        for rid in dict.fromkeys(t.request_id for t in tasks):
            events += await settle_request(
                self.ctx,
                s,
                rid,
                reason,
                mission_id=self.mission.id,
                vehicle_id=self.mission.vehicle_id,
            )
        return events

    async def _in_transit(self, s: Session) -> dict[tuple[str, str], int]:
        """Units this mission loaded and neither delivered nor returned, per (request, SKU),
        from its ledger lines."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        for mv in await self.ctx.store.ledger(
            mission_id=self.mission.id, limit=1_000_000, session=s
        ):
            if mv.request_id is None:
                continue
            sign = {"load": 1, "deliver": -1, "return": -1}.get(mv.kind, 0)
            out[(mv.request_id, mv.sku_id)] += sign * mv.quantity
        return {k: v for k, v in out.items() if v > 0}

    async def _unwind(
        self, s: Session, why: str, *, task_state: TaskState, cancel_requests: bool = False
    ) -> list[MissionEvent]:
        """Take back the mission's undelivered work, in the caller's transaction.

        Goods it loaded and did not deliver are booked back to stock (``return``; the request's
        allocation shrinks by them and the allocation step may reserve them again); reservations
        of work never loaded stay with their requests. Its ``assigned`` tasks become
        ``task_state``. Its requests settle back in the queue, or, with ``cancel_requests``,
        are cancelled unless other missions still carry them.
        """
        events: list[MissionEvent] = []
        now = self.ctx.clock.now()
        for (rid, sku_id), qty in sorted((await self._in_transit(s)).items()):
            mv = await self.ctx.store.move_stock(
                MovementKind.RETURN,
                self._warehouse_id(),
                sku_id,
                qty,
                at=now,
                request_id=rid,
                mission_id=self.mission.id,
                note=f"load came back undelivered: {why}",
                session=s,
            )
            ev = self._stock_event(mv, rid, f"load came back undelivered: {why}")
            s.add(ev)
            events.append(ev)
            await self.ctx.store.count_item(rid, sku_id, allocated=-qty, session=s)
        touched = []
        for task in await self._tasks(s):
            touched.append(task.request_id)
            if task.state == TaskState.ASSIGNED:
                task.state = task_state
                await self.ctx.store.update_task(task, s)
        for rid in dict.fromkeys(touched):
            if cancel_requests and not await self._carried_elsewhere(s, rid):
                events += await cancel_request(
                    self.ctx,
                    s,
                    rid,
                    why,
                    mission_id=self.mission.id,
                    vehicle_id=self.mission.vehicle_id,
                )
            else:
                events += await settle_request(
                    self.ctx,
                    s,
                    rid,
                    f"mission {self.mission.id} {why}; its work is back in the queue",
                    mission_id=self.mission.id,
                    vehicle_id=self.mission.vehicle_id,
                )
        return events

    async def _carried_elsewhere(self, s: Session, request_id: str) -> bool:
        return any(
            t.state == TaskState.ASSIGNED and t.mission_id != self.mission.id
            for t in await self.ctx.store.request_tasks(request_id, session=s)
        )

    async def _requests_to(
        self,
        s: Session,
        dst: RequestState,
        reason: str,
        *,
        from_states: list[RequestState],
        task_state: TaskState | None = None,
        **changes: Any,
    ) -> list[MissionEvent]:
        """Move every request the mission carries to ``dst`` (those in ``from_states``).

        Delivery runs use :meth:`_settle_requests` instead, which derives the state from all
        of a request's work."""
        events = []
        for task in await self._tasks(s):
            if task_state is not None:
                task.state = task_state
                await self.ctx.store.update_task(task, s)
            current = (await self.ctx.store.get_request(task.request_id, session=s)).request.state
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

    async def _settle_requests(self, s: Session, reason: str) -> list[MissionEvent]:
        """Settle every request the mission carries (``missions.bookkeeping.settle_request``)."""
        events = []
        for rid in dict.fromkeys(t.request_id for t in await self._tasks(s)):
            events += await settle_request(
                self.ctx,
                s,
                rid,
                reason,
                mission_id=self.mission.id,
                vehicle_id=self.mission.vehicle_id,
            )
        return events

    # --- the run ----------------------------------------------------------------------------

    async def save_result(self, **result: Any) -> None:
        """Merge ``result`` into the mission's stored result."""
        self.mission = await retrying(
            lambda: self.ctx.store.update_mission(
                self.mission.id, result={**self.mission.result, **result}
            )
        )

    async def _vehicle_note(self, text: str) -> None:
        """Note on the record what the vehicle's link did (the follower's ``note`` hook)."""
        await self.note(EventKind.VEHICLE, text)

    async def _wants_stop(self) -> bool:
        """Whether the run was asked to stop (the follower's ``stop_requested`` hook)."""
        return self._cancel_requested is not None

    def cancel(
        self, reason: str, *, requeue: bool = False, stop: StopCommand | None = None
    ) -> None:
        """Ask the run to stop: before take-off it stops at once, in flight the drone returns.
        Its requests are cancelled with it, or with ``requeue`` go back to the queue. ``stop``
        replaces the command the run sends its vehicle (an operator's command)."""
        self._cancel_requested = reason
        self._cancel_requeue = requeue
        self._stop_command = stop
        if self.follower is not None:
            self.follower.release()  # a hold ends with the mission

    def withdraw_cancel(self) -> None:
        """Forget a cancel whose operator's command the vehicle refused: the vehicle goes on
        with the mission, and so does the run (a later cancel stops it again)."""
        self._cancel_requested = None
        self._cancel_requeue = False
        self._stop_command = None
        if self.follower is not None:
            self.follower.stop_sent = False

    def _take_stop_command(self) -> StopCommand | None:
        """The operator's stop command, once."""
        stop, self._stop_command = self._stop_command, None
        return stop

    async def hold_for(self, text: str, **data: Any) -> None:
        """An operator holds the vehicle (a drone in Hold, a van paused): noted on the record;
        the mission's deadline stops running until :meth:`end_hold`."""
        self.held_by = text
        if self.follower is not None:
            self.follower.hold()
        await self.note(EventKind.DECISION, text, held=True, **data)

    async def end_hold(self, text: str, **data: Any) -> None:
        """The operator's hold ended (the vehicle resumed): noted; the deadline runs again,
        later by the time held."""
        self.held_by = None
        if self.follower is not None:
            self.follower.release()
        await self.note(EventKind.DECISION, text, held=False, **data)

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

    async def cancel_unstarted(self, why: str) -> None:
        """Cancel a mission whose vehicle has not started it. Its tasks are cancelled and
        any load comes back to stock; its requests are cancelled too (the operator stopped the
        delivery), or go back to the queue when :meth:`cancel` asked to ``requeue`` (a
        re-plan)."""

        async def undo(s: Session) -> list[MissionEvent]:
            return await self._unwind(
                s,
                f"cancelled: {why}",
                task_state=TaskState.CANCELLED,
                cancel_requests=not self._cancel_requeue,
            )

        await self.transition(MissionState.CANCELLED, why, phase=Phase.DONE, extra=undo)

    @abstractmethod
    async def _run(self) -> None:
        """Drive the mission to a terminal state (or until cancelled on shutdown)."""

    async def _fail(self, reason: str) -> None:
        """End the mission ``failed``: its undelivered work goes back to the queue (goods it
        loaded are booked back to stock; see :meth:`_unwind`)."""

        async def undo(s: Session) -> list[MissionEvent]:
            return await self._unwind(s, f"failed: {reason}", task_state=TaskState.FAILED)

        await self.transition(MissionState.FAILED, reason, phase=Phase.DONE, extra=undo)


class DroneRun(MissionRun):
    """A mission flown by one drone (a delivery sortie, a broadcast flight): the drone's
    control, the safety steps before take-off (failsafe policy, fence and rally points read
    back, the airspace reserved: :meth:`_secure`, :meth:`_reserve_airspace`), sending it home
    when the mission is cancelled in flight or overdue."""

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            if MissionState(self.mission.state) in MISSION_TERMINAL:
                self.ctx.airspace.release(self.mission.id)

    def cancel(
        self, reason: str, *, requeue: bool = False, stop: StopCommand | None = None
    ) -> None:
        super().cancel(reason, requeue=requeue, stop=stop)
        if MissionState(self.mission.state) != MissionState.UNDERWAY:
            self.ctx.airspace.release(self.mission.id)  # it will not take off

    async def _secure(
        self,
        entry: VehicleEntry,
        drone: DroneControl,
        cruise_alt_m: float,
        highest_alt_m: float | None = None,
    ) -> None:
        """Set the fleet's failsafe policy and read it back, upload and verify the geofence and
        rally points (:func:`missions.preflight.secure_drone`; the fence for a flight at up to
        ``highest_alt_m``); noted on the record. Raises the ``VehicleError`` that stopped it."""
        secured = await secure_drone(
            self.ctx, drone, entry.status.home, cruise_alt_m, highest_alt_m
        )
        await self.note(
            EventKind.SAFETY,
            secured.describe(),
            parameters=secured.parameters,
            fence_polygons=secured.fence_polygons,
            rally_points=secured.rally_points,
        )

    async def _reserve_airspace(self, options: Sequence[Option], lead_s: float) -> Slot | None:
        """Reserve the flight's 4D volume (:class:`fleet.deconfliction.AirspaceBook`) and wait
        until ``lead_s`` before its start; None when deconfliction is off or the run was
        cancelled meanwhile. Raises ``PlanningError`` when no start within
        ``safety.max_start_delay_s`` is free."""
        safety = self.ctx.settings.safety
        if not safety.deconfliction:
            return None
        clock = self.ctx.clock
        now = clock.time()
        slot = self.ctx.airspace.reserve(
            self.mission.id,
            self.vehicle_id,
            options,
            now,
            latest=now + safety.max_start_delay_s,
        )
        if slot is None:
            raise PlanningError(
                f"no free airspace for this flight within {safety.max_start_delay_s:.0f} s"
            )
        waits = slot.start - now
        layer = f" at {slot.layer_m:g} m" if slot.layer_m is not None else ""
        if slot.waited_for:
            why = f"; crossing the reservation(s) of mission(s) {', '.join(slot.waited_for)}"
        else:
            why = ""
        await self.note(
            EventKind.SAFETY,
            (
                f"airspace reserved{layer}, take-off in {waits:.0f} s"
                if waits > 1
                else f"airspace reserved{layer}, take-off now"
            )
            + why,
            start=slot.start,
            layer_m=slot.layer_m,
            waited_for=list(slot.waited_for),
        )
        while clock.time() < slot.start - lead_s:
            if self._cancel_requested:
                return None
            await clock.sleep(min(1.0, slot.start - lead_s - clock.time()))
        return slot

    async def _keep_slot(self, slot: Slot, option: Option) -> None:
        """Just before take-off: a start that slipped past its slack is reserved again (same
        layer) and waited for."""
        clock = self.ctx.clock
        safety = self.ctx.settings.safety
        if clock.time() <= slot.start + safety.start_slack_s:
            return
        again = self.ctx.airspace.reserve(self.mission.id, self.vehicle_id, [option], clock.time())
        assert again is not None
        await self.note(
            EventKind.SAFETY,
            f"take-off slipped past its reserved start; airspace reserved again, take-off in "
            f"{again.start - clock.time():.0f} s",
            start=again.start,
        )
        while clock.time() < again.start:
            await clock.sleep(min(1.0, again.start - clock.time()))

    def _drone(self) -> tuple[VehicleEntry, DroneControl]:
        entry = self.ctx.registry.get(self.vehicle_id)
        if not isinstance(entry.control, DroneControl):
            raise NotFound("drone control", self.vehicle_id)
        return entry, entry.control

    async def _recall_for_cancel(self) -> None:
        """The mission was cancelled in flight: the drone returns (the follower's ``stop``), or
        does what the operator's command that cancelled it says (:class:`StopCommand`)."""
        stop = self._take_stop_command()
        try:
            if stop is not None:
                await stop.send()
                await self.set_phase(
                    stop.phase or Phase.RETURN,
                    f"cancelled: {self._cancel_requested}; {stop.doing or 'returning'}",
                )
                return
            _, drone = self._drone()
            await drone.return_to_launch()
            await self.set_phase(Phase.RETURN, f"cancelled: {self._cancel_requested}; returning")
        except StreetfleetError as exc:
            what = "the operator's command" if stop is not None else "return to launch"
            await self.note(EventKind.VEHICLE, f"{what} failed: {exc.message}")

    async def _send_home(self, why: str) -> None:
        """Command a return to launch because ``why``, noting the outcome."""
        try:
            _, drone = self._drone()
            await drone.return_to_launch()
            await self.note(EventKind.DECISION, f"return to launch commanded: {why}")
        except StreetfleetError as exc:
            await self.note(EventKind.VEHICLE, f"return to launch failed: {exc.message}")
