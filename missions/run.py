"""The base of mission runs: one task per running mission, driving its vehicle through phases.

A run takes a mission from ``planned`` to a terminal state. Every transition is stored with its
reason together with what it implies (stock movements, task and request states) in one
transaction, then announced on the bus. Vehicle errors fail the mission with the vehicle's reason
and put its work back in the queue; nothing is torn up once the vehicle has started it, and a
mission found ``underway`` after a restart is followed again rather than restarted.

Each mission kind subclasses :class:`MissionRun` (``missions.delivery_run``,
``missions.broadcast``, ``missions.shuttle``) and registers it with the
:class:`missions.service.MissionService`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import structlog

from fleet.errors import Conflict, StreetfleetError
from fleet.store.tables import Mission, MissionEvent, Task
from missions.context import MissionContext
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
        """The warehouse whose stock the mission's loads come from (``plan.warehouse_id``)."""
        return str(self.mission.plan["warehouse_id"])

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

    async def cancel_unstarted(self, why: str) -> None:
        """Cancel a mission whose vehicle has not started: release its reservations."""

        async def undo(s: Any) -> list[MissionEvent]:
            events = await self._release_reservations(s, f"mission cancelled: {why}")
            for task in await self._tasks():
                task.state = TaskState.CANCELLED
                await self.ctx.store.update_task(task, s)
            return events

        await self.transition(MissionState.CANCELLED, why, phase=Phase.DONE, extra=undo)

    @abstractmethod
    async def _run(self) -> None:
        """Drive the mission to a terminal state (or until cancelled on shutdown)."""

    async def _fail(self, reason: str) -> None:
        """End the mission ``failed`` (subclasses undo stock effects as their kind needs)."""
        await self.transition(MissionState.FAILED, reason, phase=Phase.DONE)
