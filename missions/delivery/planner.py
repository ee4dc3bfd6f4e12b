"""The drone delivery planner: delivery loads the mode choice sends to drones, one sortie per
load, the drone chosen by :func:`missions.routing.assign_drones` (earliest safe drop, deadline
risk in the cost, busy drones counted when they will be back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from fleet.errors import Conflict, PlanningError
from fleet.registry import VehicleEntry
from fleet.store.repository import Session
from fleet.store.rows import Record
from fleet.store.tables import Mission, MissionEvent, Task
from fleet.vehicle import LandedState, LinkState
from fleet.world import Pad
from missions.bookkeeping import settle_planned
from missions.context import MissionContext
from missions.decision_log import decision_event
from missions.delivery.fleet import DroneFleet
from missions.delivery.mode import load_kg
from missions.delivery.plan import plan_delivery, plan_to_json
from missions.dispatcher import Dispatcher
from missions.journal import EventKind
from missions.open_work import Lines, describe, load_json, unassigned_lines
from missions.routing.decisions import Decision, DecisionKind
from missions.routing.drones import (
    Drone,
    DroneAssignmentSettings,
    DronePlan,
    DroneTask,
    assign_drones,
)
from missions.states import MissionKind, MissionState, Priority, RequestKind, TaskState

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Load:
    """A request's unassigned lines the mode choice sends to drones, as a drone task."""

    rec: Record
    lines: Lines
    task: DroneTask


@dataclass(frozen=True, slots=True)
class _Sortie:
    """A sortie that starts now, built and not yet stored."""

    rec: Record
    vehicle_id: str
    mission: Mission
    task: Task
    chosen: Decision
    late: Decision | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A delivery drone the assignment may use, with its pad and state."""

    entry: VehicleEntry
    pad: Pad
    drone: Drone
    free: bool
    """On its pad, disarmed and ready now (otherwise busy until ``drone.ready_at``, or out
    of service)."""


class DroneDeliveryPlanner:
    """Delivery loads the mode choice sends to drones: one sortie per load, the drone chosen
    by :func:`missions.routing.assign_drones`; only sorties a free drone can start now become
    missions, the others are recorded as waits and planned again next round."""

    request_kind: str = RequestKind.DELIVERY

    def __init__(
        self,
        ctx: MissionContext,
        dispatcher: Dispatcher,
        busy: Callable[[str], bool],
        start_mission: Callable[[Mission], None],
        mission_of: Callable[[str], Mission | None] = lambda _vid: None,
    ) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.drones = DroneFleet(ctx)
        self._busy = busy
        self._start_mission = start_mission
        self._mission_of = mission_of
        self.settings = DroneAssignmentSettings()

    async def _wait(self, rec: Record, reason: str, **kw: Any) -> None:
        await self.dispatcher.record_wait(rec, reason, **kw)

    async def dispatch(self, pending: Sequence[Record]) -> int:
        if not pending:
            return 0
        skus = {s.id: s for s in await self.ctx.store.skus()}
        work = await unassigned_lines(self.ctx.store, pending, skus)
        if not work:
            return 0
        world = self.ctx.world
        fleet = self._fleet()
        by_wh: dict[str, list[_Load]] = defaultdict(list)
        for rec in pending:
            lines = work.get(rec.request.id)
            req = rec.request
            if not lines or req.warehouse_id is None:
                continue
            online = [c for c in fleet.get(req.warehouse_id, []) if c.drone.available]
            choice = await self.dispatcher.mode_for(rec, lines, drones_available=bool(online))
            if not choice.by_drone:
                await self._wait(rec, choice.reason, key="mode:van")
                continue
            drop = world.xy(world.community(req.community_id).drop_point)
            task = DroneTask(
                id=req.id,
                drop=drop,
                kg=load_kg(lines),
                priority=Priority(req.priority),
                deadline=req.deadline.timestamp() if req.deadline else None,
                community_id=req.community_id,
                request_ids=(req.id,),
            )
            by_wh[req.warehouse_id].append(_Load(rec, lines, task))
        planned = 0
        for warehouse_id, items in by_wh.items():
            planned += await self._assign(warehouse_id, items, fleet.get(warehouse_id, []))
        return planned

    async def _assign(
        self,
        warehouse_id: str,
        loads: list[_Load],
        candidates: list[Candidate],
    ) -> int:
        if not candidates:
            for load in loads:
                await self._wait(
                    load.rec,
                    f"waits for a delivery drone: none is online at the pads of {warehouse_id}",
                    key="no-drone",
                )
            return 0
        now = self.ctx.clock.time()
        plan = assign_drones(
            [ld.task for ld in loads],
            [c.drone for c in candidates],
            now,
            self.settings,
            distance=self.drones.flight_distance,
        )
        by_task = {ld.task.id: (ld.rec, ld.lines) for ld in loads}
        by_drone = {c.drone.id: c for c in candidates}
        taken: set[str] = set()
        starting: list[_Sortie] = []
        for sortie in sorted(plan.sorties, key=lambda so: (so.takeoff, so.drone_id)):
            rec, lines = by_task[sortie.task.id]
            cand = by_drone[sortie.drone_id]
            decision = _decision_for(plan, sortie.task.id, DecisionKind.ASSIGNMENT)
            late = _decision_for(plan, sortie.task.id, DecisionKind.DEADLINE)
            if cand.free and sortie.drone_id not in taken and sortie.takeoff <= now + 1e-6:
                taken.add(sortie.drone_id)
                built = await self._build(rec, lines, cand, decision, late)
                if built is not None:
                    starting.append(built)
                continue
            reason = (
                f"waits for {sortie.drone_id}, the earliest safe drop: {decision.reason}"
                if decision is not None
                else f"waits for {sortie.drone_id}"
            )
            await self._wait(rec, reason, key=f"sortie:{sortie.drone_id}")
            if late is not None:
                await self.dispatcher.record(late, request_id=rec.request.id)
        for u in plan.unassigned:
            rec, _ = by_task[u.task.id]
            await self._wait(rec, f"no drone can fly it now: {u.reason}", key="unassigned")
        return await self._commit_all(starting)

    async def _commit_all(self, sorties: list[_Sortie]) -> int:
        """Commit the sorties that start now and start their missions: all in one
        transaction, and one by one (each in its own) when that one refuses, so that a request
        that moved on meanwhile does not hold back the others; returns how many started.

        Why one transaction, written as plain rows (``Store.insert_missions``,
        ``insert_tasks``, ``insert_events``) with the requests settled together
        (:func:`~missions.bookkeeping.settle_planned`): the first round of a day starts a
        sortie on every free drone, and one transaction each (a mission, its task, its
        events, the request read and settled) was a large part of the drone planner's time
        (``docs/benchmarks.md``, dispatch)."""
        if len(sorties) > 1:
            try:
                async with self.ctx.store.transaction() as s:
                    events = await self._write(s, sorties)
            except Conflict as exc:
                log.info("dispatch.sorties_conflict", error=exc.message, sorties=len(sorties))
            else:
                self.ctx.journal.published(*events)
                for so in sorties:
                    self._started(so)
                return len(sorties)
        planned = 0
        for so in sorties:
            try:
                async with self.ctx.store.transaction() as s:
                    events = await self._write(s, [so])
            except Conflict as exc:
                await self._wait(so.rec, f"could not be planned now: {exc.message}")
                continue
            self.ctx.journal.published(*events)
            self._started(so)
            planned += 1
        return planned

    async def _build(
        self,
        rec: Record,
        lines: Lines,
        cand: Candidate,
        decision: Decision | None,
        late: Decision | None,
    ) -> _Sortie | None:
        """The mission and task of a sortie that starts now (None, with a recorded wait, when
        its flight cannot be planned from the drone's pad)."""
        req = rec.request
        cfg = self.ctx.settings.drone_missions
        community = self.ctx.world.community(req.community_id)
        try:
            dp = plan_delivery(self.ctx.world, cand.pad, community, cfg)
        except PlanningError as exc:
            await self._wait(rec, f"cannot be flown from pad {cand.pad.id}: {exc.message}")
            return None
        vid = cand.entry.info.id
        battery = cand.entry.status.battery_fraction or 0.0
        head = (
            f"{vid} chosen: free on pad {cand.pad.id} with {battery:.0%} battery for "
            f"{describe(lines)} ({load_kg(lines):.2f} kg)"
        )
        reason = f"{head}; {decision.reason}" if decision is not None else head
        chosen = (
            replace(decision, reason=reason, subject_id=req.id)
            if decision is not None
            else Decision(
                kind=DecisionKind.ASSIGNMENT,
                subject_id=req.id,
                reason=reason,
                vehicle_id=vid,
                request_ids=(req.id,),
            )
        )
        now = self.ctx.clock.now()
        mission = Mission(
            kind=MissionKind.DRONE_DELIVERY,
            vehicle_id=vid,
            state=MissionState.PLANNED,
            created_at=now,
            plan=plan_to_json(dp),
        )
        task = Task(
            request_id=req.id,
            kind="drone_delivery",
            community_id=req.community_id,
            state=TaskState.ASSIGNED,
            load=load_json(lines),
            created_at=now,
        )
        return _Sortie(rec, vid, mission, task, chosen, late)

    async def _write(self, s: Session, sorties: Sequence[_Sortie]) -> list[MissionEvent]:
        """Store sorties in the transaction ``s``: their missions, tasks and events, and their
        requests settled (``scheduled``); returns the events to publish once it commits."""
        store, j = self.ctx.store, self.ctx.journal
        events: list[MissionEvent] = []
        for so in sorties:
            req, mission, vid = so.rec.request, so.mission, so.vehicle_id
            so.task.mission_id = mission.id
            chosen = replace(so.chosen, plan_ref=mission.id)
            events.append(
                decision_event(
                    self.ctx,
                    chosen,
                    mission_id=mission.id,
                    request_id=req.id,
                    vehicle_id=vid,
                    row=True,
                )
            )
            if so.late is not None:
                events.append(
                    decision_event(
                        self.ctx, so.late, mission_id=mission.id, request_id=req.id, row=True
                    )
                )
            events.append(
                j.row(
                    EventKind.STATE,
                    "mission planned",
                    mission_id=mission.id,
                    vehicle_id=vid,
                    to_state=MissionState.PLANNED,
                )
            )
        await store.insert_missions([so.mission for so in sorties], s)
        await store.insert_tasks([so.task for so in sorties], s)
        await store.insert_events(events, s)
        events += await settle_planned(
            self.ctx,
            s,
            [
                (
                    so.rec.request.id,
                    f"scheduled on mission {so.mission.id} ({so.vehicle_id})",
                    so.mission.id,
                    so.vehicle_id,
                )
                for so in sorties
            ],
        )
        return events

    def _started(self, so: _Sortie) -> None:
        req_id, mission = so.rec.request.id, so.mission
        self.dispatcher.planned(req_id)
        log.info(
            "dispatch.planned", request_id=req_id, mission_id=mission.id, vehicle_id=so.vehicle_id
        )
        self._start_mission(mission)

    def _fleet(self) -> dict[str, list[Candidate]]:
        """Delivery drones at warehouse pads, per warehouse, as the assignment sees them."""
        now = self.ctx.clock.time()
        world = self.ctx.world
        out: dict[str, list[Candidate]] = defaultdict(list)
        for entry, pad in self.drones.delivery_drones(None):
            info, st = entry.info, entry.status
            spec = self.drones.drone_spec(entry)
            home = world.xy(pad.location)
            battery = st.battery_fraction
            free = False
            ready_at: float | None = None
            why = ""
            if self._busy(info.id):
                m = self._mission_of(info.id)
                ready_at, battery = _back_at(m, now, battery, spec.turnaround_s)
            elif st.link != LinkState.ONLINE:
                why = f"{info.id} link is {st.link}"
            elif (refusal := self.dispatcher.resting(info.id)) is not None:
                why = f"{info.id} refused its last mission ({refusal}); resting"
            elif battery is None:
                why = f"{info.id} has not reported its battery"
            elif st.armed or st.landed != LandedState.ON_GROUND:
                why = f"{info.id} is not on the ground and disarmed"
            elif not st.ready_for_mission:
                why = f"{info.id} cannot fly a mission yet: " + (
                    "; ".join(st.not_ready) or "the vehicle has not said it is ready"
                )
            else:
                free = True
            drone = Drone(
                id=info.id,
                home=home,
                spec=spec,
                battery=battery if battery is not None else 0.0,
                ready_at=ready_at,
                available=not why,
                why_unavailable=why,
                can_swap=False,
            )
            assert pad.warehouse_id is not None
            out[pad.warehouse_id].append(Candidate(entry, pad, drone, free))
        return out


def _decision_for(plan: DronePlan, task_id: str, kind: DecisionKind) -> Decision | None:
    for d in plan.decisions:
        if d.subject_id == task_id and d.kind is kind:
            return d
    return None


def _back_at(
    mission: Mission | None, now: float, battery: float | None, turnaround_s: float
) -> tuple[float, float | None]:
    """When a busy drone is free again and with how much battery, from its mission's plan."""
    if mission is None:
        return now + turnaround_s, battery
    duration = float(mission.plan.get("duration_s", 0.0))
    energy = float(mission.plan.get("energy_fraction", 0.0))
    started = mission.started_at.timestamp() if mission.started_at else now
    end = max(now, started + duration)
    left = (end - now) / duration if duration > 0 else 0.0
    after = None if battery is None else max(0.0, battery - energy * min(1.0, left))
    return end + turnaround_s, after
