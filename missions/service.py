"""The mission service: owns the dispatcher loop and one task per running mission.

An async context manager. On entry it recovers what a previous process left: missions that were
``underway`` are followed again (the vehicle holds its plan and flies on); missions ``planned`` or
``authorized`` but never started are interrupted and their work requeued. On exit it stops its
tasks without touching the record, so the next start recovers them the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import structlog

from fleet.errors import Conflict, NotFound
from fleet.events import VehicleEvent, VehicleEventKind
from fleet.store.repository import RequestRecord
from fleet.store.tables import Mission, MissionEvent
from missions.broadcast.dispatch import BroadcastPlanner
from missions.broadcast.run import DroneBroadcastRun
from missions.context import MissionContext
from missions.delivery_run import DroneDeliveryRun
from missions.dispatcher import Dispatcher, DroneDeliveryPlanner
from missions.journal import EventKind
from missions.requests import RequestService
from missions.run import MissionRun
from missions.shuttle.service import ShuttleService
from missions.states import (
    MISSION_ACTIVE,
    MissionState,
    RequestState,
    TaskState,
)

log = structlog.get_logger(__name__)


RunFactory = Callable[[MissionContext, Mission, Callable[[str], None]], MissionRun]
"""Builds the run of one mission (a ``MissionRun`` subclass)."""


class MissionService:
    """Dispatcher, executor and recovery, as one owned set of tasks.

    Mission kinds plug in with :meth:`register_run` (how to execute a mission of that kind) and
    ``dispatcher.add_planner`` (how to turn approved requests into missions).
    """

    def __init__(self, ctx: MissionContext) -> None:
        self.ctx = ctx
        self.runs: dict[str, MissionRun] = {}
        self.run_factories: dict[str, RunFactory] = {}
        self.resumable: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[None]] = []
        self.dispatcher = Dispatcher(ctx)
        self.dispatcher.add_planner(
            DroneDeliveryPlanner(ctx, self.dispatcher, busy=self.is_busy, start_mission=self.spawn)
        )
        self.requests = RequestService(
            store=ctx.store,
            world=ctx.world,
            clock=ctx.clock,
            journal=ctx.journal,
            settings=ctx.settings.requests,
            on_approved=self.dispatcher.kick,
        )
        self.register_run(DroneDeliveryRun)
        self.dispatcher.add_planner(
            BroadcastPlanner(ctx, self.dispatcher, busy=self.is_busy, start_mission=self.spawn)
        )
        self.register_run(DroneBroadcastRun)
        self.shuttle = ShuttleService.install(self)

    def register_run(self, run: type[MissionRun]) -> None:
        """Execute missions of ``run.kind`` with ``run``."""
        self.run_factories[run.kind] = run
        if run.resumable:
            self.resumable.add(run.kind)

    def is_busy(self, vehicle_id: str) -> bool:
        return any(r.mission.vehicle_id == vehicle_id for r in self.runs.values())

    async def __aenter__(self) -> Self:
        await self.requests.refresh_catalogue()
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
        self.runs.pop(mission_id, None)
        self._tasks.pop(mission_id, None)
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
        loaded = m.state in (MissionState.AUTHORIZED, MissionState.UNDERWAY)

        async def undo(s: Any) -> list[MissionEvent]:
            kind, why = ("return", "unloaded: " + reason) if loaded else ("release", reason)
            events = await run._stock_for_tasks(s, kind, why)
            for task in await run._tasks():
                task.state = TaskState.FAILED
                await self.ctx.store.update_task(task, s)
            events += await run._requests_to(
                s,
                RequestState.APPROVED,
                f"{reason}; back in the queue",
                from_states=[RequestState.SCHEDULED],
            )
            return events

        await run.transition(MissionState.INTERRUPTED, reason, extra=undo)

    # --- operations the API offers -----------------------------------------------------------

    async def cancel_request(self, request_id: str, actor: str, reason: str) -> RequestRecord:
        """Cancel a request that can still be stopped (its unstarted missions are cancelled)."""
        rec = await self.ctx.store.get_request(request_id)
        self.requests.check_cancellable(rec)
        why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
        if rec.request.state == RequestState.SCHEDULED:
            for task in await self.ctx.store.request_tasks(request_id):
                run = self.runs.get(task.mission_id or "")
                if run is not None and run.mission.state == MissionState.PLANNED:
                    run.cancel(why)
                    self._tasks[run.mission.id].cancel()
                    await run.cancel_unstarted(why)
                elif run is not None:
                    raise Conflict(
                        f"request {request_id} is already loaded on mission {run.mission.id}; "
                        "cancel the mission",
                        request_id=request_id,
                        mission_id=run.mission.id,
                    )
        ev = self.ctx.journal.event(
            EventKind.STATE,
            why,
            request_id=request_id,
            from_state=rec.request.state,
            to_state=RequestState.CANCELLED,
        )
        await self.ctx.store.update_request(
            request_id,
            expected_states=[rec.request.state],
            events=[ev],
            state=RequestState.CANCELLED,
            reason=why,
            closed_at=self.ctx.clock.now(),
        )
        self.ctx.journal.published(ev)
        return await self.ctx.store.get_request(request_id)

    async def cancel_mission(self, mission_id: str, actor: str, reason: str) -> Mission:
        """Cancel a mission: before take-off it stops at once; in flight the drone returns and
        the mission ends ``cancelled`` when it has landed (the load comes back to stock)."""
        m = await self.ctx.store.get_mission(mission_id)
        if m.state not in MISSION_ACTIVE:
            raise Conflict(f"mission {mission_id} is already {m.state}", mission_id=mission_id)
        run = self.runs.get(mission_id)
        if run is None:
            raise NotFound("running mission", mission_id)
        why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
        run.cancel(why)
        self.ctx.registry.touch(run.vehicle_id)  # let the run see it now
        return run.mission
