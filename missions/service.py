"""The mission service: owns the dispatcher loop and one task per running mission.

An async context manager. On entry it recovers what a previous process left: missions that were
``underway`` are followed again (the vehicle holds its plan and flies on); missions ``planned`` or
``authorized`` but never started are interrupted and their work requeued. On exit it stops its
tasks without touching the record, so the next start recovers them the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

import structlog

from fleet.errors import Conflict, InsufficientStock, NotFound, ValidationError
from fleet.events import VehicleEvent, VehicleEventKind
from fleet.ledger import MovementKind
from fleet.store.repository import RequestRecord, Session
from fleet.store.tables import AuditLog, Mission, MissionEvent, StockMovement
from fleet.vehicle import VehicleKind
from missions import bookkeeping
from missions.context import MissionContext
from missions.dispatcher import Dispatcher
from missions.journal import EventKind
from missions.kinds import KindPlugin
from missions.requests import RequestService
from missions.routing.decisions import Decision, DecisionKind
from missions.run import MissionRun, StopCommand
from missions.states import (
    MISSION_ACTIVE,
    REQUEST_OPEN,
    MissionState,
    Priority,
    TaskState,
)

log = structlog.get_logger(__name__)


RunFactory = Callable[[MissionContext, Mission, Callable[[str], None]], MissionRun]
"""Builds the run of one mission (a ``MissionRun`` subclass)."""


class MissionService:
    """Dispatcher, executor and recovery, as one owned set of tasks.

    Mission kinds plug in through :mod:`missions.kinds`: the service installs the
    :class:`~missions.kinds.KindPlugin` s it is given, in order, each registering its run
    (:meth:`register_run`) and its planner (``dispatcher.add_planner``). The service names no
    kind; :meth:`kind` returns what a kind's ``install`` returned (e.g. the shuttle service).
    """

    def __init__(self, ctx: MissionContext, kinds: Sequence[KindPlugin] = ()) -> None:
        self.ctx = ctx
        self.runs: dict[str, MissionRun] = {}
        self.run_factories: dict[str, RunFactory] = {}
        self.resumable: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[None]] = []
        self._dispatcher = Dispatcher(ctx)
        self.requests = RequestService(
            store=ctx.store,
            world=ctx.world,
            clock=ctx.clock,
            journal=ctx.journal,
            settings=ctx.settings.requests,
            on_approved=self.dispatcher.kick,
        )
        self.kinds: dict[str, object] = {}
        """What each installed kind's ``install`` returned, by kind name."""
        for plugin in kinds:
            if plugin.name in self.kinds:
                raise ValueError(f"mission kind {plugin.name} installed twice")
            self.kinds[plugin.name] = plugin.install(self)

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    def kind(self, name: str) -> object:
        """What kind ``name`` installed (raises ``NotFound`` when it is not installed)."""
        try:
            return self.kinds[name]
        except KeyError:
            raise NotFound("mission kind", name) from None

    def register_run(self, run: type[MissionRun]) -> None:
        """Execute missions of ``run.kind`` with ``run``."""
        self.run_factories[run.kind] = run
        if run.resumable:
            self.resumable.add(run.kind)

    def is_busy(self, vehicle_id: str) -> bool:
        return any(r.mission.vehicle_id == vehicle_id for r in self.runs.values())

    async def __aenter__(self) -> Self:
        await self.requests.refresh_catalogue()
        self.ctx.out_of_service.update(
            v.id for v in await self.ctx.store.vehicles() if not v.in_service
        )
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            await self._recover()
        except BaseException:
            await self._tg.__aexit__(None, None, None)
            raise
        self._background = [
            self._tg.create_task(self.dispatcher.run(), name="dispatcher"),
            self._tg.create_task(self._watch_vehicles(), name="vehicle-watch"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        for task in [*self._background, *self._tasks.values()]:
            task.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)

    async def _watch_vehicles(self) -> None:
        """Wake the dispatcher when a vehicle appears or lands, so waiting work moves on."""
        wanted = {
            VehicleEventKind.DISCOVERED,
            VehicleEventKind.LINK_REGAINED,
            VehicleEventKind.DISARMED,
        }
        with self.ctx.bus.subscribe(
            lambda e: isinstance(e, VehicleEvent) and e.kind in wanted
        ) as sub:
            async for _ in sub:
                self.dispatcher.kick()

    def spawn(self, mission: Mission) -> None:
        """Start executing a planned mission (planners call this)."""
        assert self._tg is not None
        run = self.run_factories[mission.kind](self.ctx, mission, self._finished)
        self.runs[mission.id] = run
        self._tasks[mission.id] = self._tg.create_task(run.run(), name=f"mission-{mission.id}")

    def _finished(self, mission_id: str) -> None:
        run = self.runs.pop(mission_id, None)
        self._tasks.pop(mission_id, None)
        if run is not None and run.refused is not None and run.mission.vehicle_id:
            self.dispatcher.rest(run.mission.vehicle_id, run.refused)
        self.dispatcher.kick()

    async def _recover(self) -> None:
        active = await self.ctx.store.list_missions(states=list(MISSION_ACTIVE), limit=10_000)
        for m in active:
            if m.kind not in self.run_factories:
                log.warning("mission.unknown_kind", mission_id=m.id, kind=m.kind)
                continue
            if m.state == MissionState.UNDERWAY and m.kind in self.resumable:
                log.info("mission.resume", mission_id=m.id, vehicle_id=m.vehicle_id)
                await self._note(m, "service restarted; following the mission again")
                self.spawn(m)
            else:
                await self._interrupt_unstarted(m, "service restarted before the mission started")

    async def _note(self, m: Mission, reason: str) -> None:
        ev = self.ctx.journal.event(
            EventKind.DECISION, reason, mission_id=m.id, vehicle_id=m.vehicle_id
        )
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)

    async def _interrupt_unstarted(self, m: Mission, reason: str) -> None:
        run = self.run_factories[m.kind](self.ctx, m, lambda _id: None)

        async def undo(s: Session) -> list[MissionEvent]:
            return await run._unwind(s, f"interrupted: {reason}", task_state=TaskState.FAILED)

        await run.transition(MissionState.INTERRUPTED, reason, extra=undo)

    # --- operations the API offers -----------------------------------------------------------

    def mission_of(self, vehicle_id: str) -> Mission | None:
        """The mission a vehicle is running, if any."""
        for run in self.runs.values():
            if run.mission.vehicle_id == vehicle_id:
                return run.mission
        return None

    async def _stop_unstarted(self, mission_id: str, why: str, *, requeue: bool) -> bool:
        """Stop a mission whose vehicle has not started it (``planned`` or ``authorized``):
        its run is stopped and the mission cancelled (its load, if any, back to stock; its
        requests cancelled, or requeued with ``requeue``). False when it had already started."""
        run = self.runs.get(mission_id)
        if run is None:
            return False
        if MissionState(run.mission.state) not in (MissionState.PLANNED, MissionState.AUTHORIZED):
            return False
        run.cancel(why, requeue=requeue)
        task = self._tasks.get(mission_id)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # its last transition has committed or rolled back
        run.mission = await self.ctx.store.get_mission(mission_id)
        if MissionState(run.mission.state) not in (MissionState.PLANNED, MissionState.AUTHORIZED):
            return False  # it started (or ended) in the meantime
        await run.cancel_unstarted(why)
        return True

    async def _missions_carrying(self, request_id: str) -> dict[str, Mission]:
        tasks = await self.ctx.store.request_tasks(request_id)
        return await self.ctx.store.missions_by_id(
            t.mission_id for t in tasks if t.state == TaskState.ASSIGNED and t.mission_id
        )

    async def _carries_only(self, mission_id: str, request_id: str) -> bool:
        return all(
            t.request_id == request_id
            for t in await self.ctx.store.mission_tasks(mission_id)
            if t.state == TaskState.ASSIGNED
        )

    async def cancel_request(self, request_id: str, actor: str, reason: str) -> RequestRecord:
        """Cancel a request that can still be stopped: its missions that have not started are
        stopped (other requests they carry go back to the queue), the stock reserved for it is
        released, and it ends ``cancelled``. 409 when a vehicle has started its work."""
        async with self.dispatcher.lock:
            rec = await self.ctx.store.get_request(request_id)
            self.requests.check_cancellable(rec)
            why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
            missions = await self._missions_carrying(request_id)
            for m in missions.values():
                if m.state not in (MissionState.PLANNED, MissionState.AUTHORIZED):
                    raise Conflict(
                        f"request {request_id} is already on its way on mission {m.id}; "
                        "cancel the mission",
                        request_id=request_id,
                        mission_id=m.id,
                    )
            for m in missions.values():
                only = await self._carries_only(m.id, request_id)
                if not await self._stop_unstarted(m.id, why, requeue=not only):
                    raise Conflict(
                        f"mission {m.id} carrying request {request_id} started meanwhile; "
                        "cancel the mission",
                        request_id=request_id,
                        mission_id=m.id,
                    )
            async with self.ctx.store.transaction() as s:
                events = await bookkeeping.cancel_request(self.ctx, s, request_id, why)
            self.ctx.journal.published(*events)
            self.dispatcher.planned(request_id)
        self.dispatcher.kick()
        return await self.ctx.store.get_request(request_id)

    async def change_priority(
        self, request_id: str, priority: Priority, actor: str, reason: str
    ) -> RequestRecord:
        """Change an open request's priority class and re-plan it: its missions that have not
        started are cancelled and its work goes back to the queue, where the next round
        allocates and plans it under the new class; work a vehicle has started is kept."""
        if not reason.strip():
            raise ValidationError("say why the priority changes", field="reason")
        async with self.dispatcher.lock:
            rec = await self.ctx.store.get_request(request_id)
            old = rec.request.state
            if old not in REQUEST_OPEN:
                raise Conflict(
                    f"request {request_id} is {old}; its priority can no longer change",
                    request_id=request_id,
                    state=old,
                )
            before = Priority(rec.request.priority)
            if before == priority:
                return rec
            now = self.ctx.clock.now()
            ev = self.ctx.journal.event(
                EventKind.DECISION,
                f"priority changed from {before} to {priority} by {actor}: {reason}",
                request_id=request_id,
                from_priority=before.value,
                to_priority=priority.value,
                actor=actor,
            )
            audit = AuditLog(
                at=now,
                actor=actor,
                action="request.priority",
                object_type="request",
                object_id=request_id,
                detail={"from": before.value, "to": priority.value, "reason": reason},
            )
            async with self.ctx.store.transaction() as s:
                await self.ctx.store.update_request(
                    request_id, events=[ev], session=s, priority=priority.value
                )
                s.add(audit)
            self.ctx.journal.published(ev)
            why = f"re-planned: priority changed to {priority}"
            for m in (await self._missions_carrying(request_id)).values():
                if await self._stop_unstarted(m.id, why, requeue=True):
                    decision = Decision(
                        kind=DecisionKind.REASSIGNMENT,
                        subject_id=request_id,
                        reason=f"mission {m.id} on {m.vehicle_id} had not started: cancelled "
                        f"and its work planned again as {priority}",
                        vehicle_id=m.vehicle_id,
                        plan_ref=m.id,
                        request_ids=(request_id,),
                    )
                else:
                    decision = Decision(
                        kind=DecisionKind.KEPT,
                        subject_id=request_id,
                        reason=f"mission {m.id} on {m.vehicle_id} has started: kept as it is; "
                        f"the new priority applies to the rest of the request",
                        vehicle_id=m.vehicle_id,
                        plan_ref=m.id,
                        request_ids=(request_id,),
                    )
                await self.dispatcher.record(decision, request_id=request_id, mission_id=m.id)
            self.dispatcher.planned(request_id)
        self.dispatcher.kick()
        return await self.ctx.store.get_request(request_id)

    async def adjust_stock(
        self, warehouse_id: str, sku_id: str, quantity: int, actor: str, reason: str
    ) -> StockMovement:
        """Correct a count (``adjust``, signed). Taking off more than is available first
        releases reservations not yet on a vehicle (least urgent requests first; the next
        round shares the rest again); ``InsufficientStock`` (409) when even that is not
        enough, with nothing changed."""
        if not reason.strip():
            raise ValidationError("say why the stock is corrected", field="reason")
        events: list[MissionEvent] = []
        async with self.dispatcher.lock:
            now = self.ctx.clock.now()
            current = {st.sku_id: st for st in await self.ctx.store.stock(warehouse_id)}
            st = current.get(sku_id)
            on_hand, reserved = (st.on_hand, st.reserved) if st is not None else (0, 0)
            short = reserved - (on_hand + quantity)
            if on_hand + quantity < 0:
                raise InsufficientStock(
                    f"adjusting {sku_id} at {warehouse_id} by {quantity} would leave "
                    f"{on_hand + quantity} on hand",
                    warehouse_id=warehouse_id,
                    sku_id=sku_id,
                    quantity=quantity,
                    on_hand=on_hand,
                    reserved=reserved,
                )
            async with self.ctx.store.transaction() as s:
                if short > 0:
                    released, events = await self.dispatcher.allocation.release_for_adjustment(
                        s, warehouse_id, sku_id, short, reason
                    )
                    if released < short:
                        raise InsufficientStock(
                            f"adjusting {sku_id} at {warehouse_id} by {quantity} would take "
                            f"{short - released} units that are loaded or planned on missions "
                            f"(on hand {on_hand}, reserved {reserved}); cancel those missions "
                            "or correct the count after they leave",
                            warehouse_id=warehouse_id,
                            sku_id=sku_id,
                            quantity=quantity,
                            on_hand=on_hand,
                            reserved=reserved,
                        )
                mv = await self.ctx.store.move_stock(
                    MovementKind.ADJUST,
                    warehouse_id,
                    sku_id,
                    quantity,
                    at=now,
                    actor=actor,
                    note=reason,
                    session=s,
                )
                s.add(
                    AuditLog(
                        at=now,
                        actor=actor,
                        action="stock.adjust",
                        object_type="warehouse",
                        object_id=warehouse_id,
                        detail={"sku_id": sku_id, "quantity": quantity, "reason": reason},
                    )
                )
        self.ctx.journal.published(*events)
        self.dispatcher.kick()
        return mv

    def run_of(self, vehicle_id: str) -> MissionRun | None:
        """The run of the mission a vehicle is running, if any."""
        for run in self.runs.values():
            if run.mission.vehicle_id == vehicle_id:
                return run
        return None

    async def set_in_service(
        self, vehicle_id: str, in_service: bool, actor: str, reason: str
    ) -> bool:
        """Take a vehicle out of service, or put it back: the planners offer it no work while
        it is out; a drone flying a mission is called home and the mission's work goes back
        in the queue for another vehicle (a van's run sees the record and cancels its order,
        ``missions.shuttle.run``). Recorded as a vehicle event. Returns whether it changed."""
        vehicle = await self.ctx.store.vehicle(vehicle_id)
        if vehicle is None:
            raise NotFound("vehicle", vehicle_id)
        if vehicle.in_service == in_service:
            return False
        await self.ctx.store.set_vehicle_in_service(vehicle_id, in_service)
        if in_service:
            self.ctx.out_of_service.discard(vehicle_id)
        else:
            self.ctx.out_of_service.add(vehicle_id)
        what = "back in service" if in_service else "taken out of service"
        why = f"{what} by {actor}" + (f": {reason}" if reason else "")
        ev = self.ctx.journal.event(
            "vehicle",
            why,
            vehicle_id=vehicle_id,
            event="in_service" if in_service else "out_of_service",
            severity="info" if in_service else "warning",
            actor=actor,
        )
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)
        if not in_service and vehicle.kind == VehicleKind.DRONE:
            for run in list(self.runs.values()):
                if run.vehicle_id == vehicle_id:
                    run.cancel(why, requeue=True)  # home, and its work to another drone
        self.ctx.registry.touch(vehicle_id)
        self.dispatcher.kick()
        return True

    async def cancel_mission(
        self, mission_id: str, actor: str, reason: str, *, stop: StopCommand | None = None
    ) -> Mission:
        """Cancel a mission: before take-off it stops at once; in flight the drone returns and
        the mission ends ``cancelled`` when it has landed (the load comes back to stock).
        ``stop``: an operator's command that stops the vehicle instead of the run's own
        (``missions.commands``: a ``land``, a ``cancel_order``)."""
        m = await self.ctx.store.get_mission(mission_id)
        if m.state not in MISSION_ACTIVE:
            raise Conflict(f"mission {mission_id} is already {m.state}", mission_id=mission_id)
        run = self.runs.get(mission_id)
        if run is None:
            raise NotFound("running mission", mission_id)
        why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
        run.cancel(why, stop=stop)
        self.ctx.registry.touch(run.vehicle_id)  # let the run see it now
        return run.mission
