"""The dispatcher: each round shares scarce stock, closes overdue requests and turns allocated
work into planned missions on suitable vehicles.

A round runs whenever the dispatcher is woken (a request approved, stock received, a vehicle
freed or discovered) and at a steady interval, under :attr:`Dispatcher.lock`:

1. **Closing**: open delivery requests whose deadline passed and whose allocated units were
   all delivered close ``partially_delivered`` or ``failed`` (``missions.bookkeeping``).
2. **Allocation**: :class:`missions.allocation_step.AllocationStep` shares each warehouse's
   stock between the open requests and reserves each request's share.
3. **Planners**, in registration order (drone deliveries first, then vans, then broadcasts):
   each plans the allocated, unassigned work of its kind (``missions.open_work``) and never
   reserves stock. The drone planner sends a load by drone when :func:`Dispatcher.mode_for`
   says so, and chooses drones with :func:`missions.routing.assign_drones` (earliest safe drop,
   deadline risk in the cost, busy drones counted when they will be back).

Every decision is recorded with its reason (``missions.decision_log``): what was allocated and
why, which vehicle and why, or why the work waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol

import structlog

from fleet.airspace import path_length, router_for
from fleet.errors import Conflict, PlanningError
from fleet.geo import distance_m
from fleet.registry import VehicleEntry
from fleet.speaker import SpeakerControl
from fleet.store.repository import RequestRecord
from fleet.store.tables import Mission, MissionEvent, Task
from fleet.vehicle import Capability, LandedState, LinkState, VehicleKind
from fleet.world import Pad
from missions.allocation_step import AllocationStep
from missions.bookkeeping import (
    DELIVERY_OPEN,
    close_at_deadline,
    due_for_closing,
    settle_request,
)
from missions.context import MissionContext
from missions.decision_log import decision_event
from missions.delivery_mode import ModeChoice, choose_mode, load_kg
from missions.drone_delivery import plan_delivery, plan_to_json
from missions.journal import EventKind
from missions.open_work import Lines, assigned_units, describe, load_json, unassigned_lines
from missions.routing.decisions import Decision, DecisionKind
from missions.routing.drones import (
    XY,
    Drone,
    DroneAssignmentSettings,
    DronePlan,
    DroneSpec,
    DroneTask,
    Sortie,
    assign_drones,
    estimate,
)
from missions.states import (
    MissionKind,
    MissionState,
    Priority,
    RequestKind,
    RequestState,
    TaskState,
)

log = structlog.get_logger(__name__)

PAD_MATCH_M = 15.0
"""A drone is on a pad when its home position is within this distance of it."""


class RequestPlanner(Protocol):
    """Turns approved requests of one kind into planned missions."""

    request_kind: str
    """The ``RequestKind`` value it plans."""

    async def dispatch(self, pending: list[RequestRecord]) -> int:
        """Plan what can be planned now; return how many missions were planned. Requests that
        must wait get a recorded reason.

        ``pending`` is in queue order (:func:`queue_key`). Delivery planners receive every open
        delivery request (``approved``, ``scheduled``, ``in_progress``) and plan only their
        unassigned allocated lines (:func:`missions.open_work.unassigned_lines`); other
        planners receive the ``approved`` requests of their kind."""
        ...


VanService = Callable[..., Awaitable[bool]]
"""``await van_service(ctx, community_id=..., warehouse_id=...)``: whether a van can take
delivery work for that community from that warehouse now."""


async def vans_online(
    ctx: MissionContext, *, community_id: str | None = None, warehouse_id: str | None = None
) -> bool:
    """The default van availability: any shuttle van is online (the van service replaces it
    with one that also knows the shuttle plans' hours)."""
    del community_id, warehouse_id
    return any(
        e.info.kind == VehicleKind.VAN
        and Capability.SHUTTLE in e.info.capabilities
        and e.status.link == LinkState.ONLINE
        for e in ctx.registry
    )


MIN_REAL_INTERVAL_S = 0.25
"""Real seconds at least between two unprompted dispatch rounds."""
REST_AFTER_REFUSAL_S = 120.0
"""World seconds a vehicle that refused a mission is not offered another."""


class Dispatcher:
    """Runs dispatch rounds: closing, allocation, then the registered request planners."""

    def __init__(self, ctx: MissionContext) -> None:
        self.ctx = ctx
        self.planners: list[RequestPlanner] = []
        self.allocation = AllocationStep(ctx, serves=self.serves)
        self.lock = asyncio.Lock()
        """Held by every round and by operations that change allocations or tasks outside a
        round (cancel, priority change): hold it to turn allocated lines into tasks outside a
        round."""
        self.van_service: VanService = vans_online
        """Whether vans can take work now (see :data:`VanService`); replace it to use the
        shuttle plans' hours."""
        self._wake = asyncio.Event()
        self._waiting: dict[str, tuple[str | None, str]] = {}
        """Last (key, reason) recorded for a request that waits."""
        self.interval_s = 5.0
        self._resting: dict[str, tuple[float, str]] = {}
        """Vehicles that refused a mission: (world time until, reason)."""
        self.rounds = 0
        """Rounds completed (tests and monitoring)."""

    def rest(self, vehicle_id: str, reason: str) -> None:
        """Offer ``vehicle_id`` no work for :data:`REST_AFTER_REFUSAL_S` (it refused a mission
        for ``reason``): re-planning onto it every round would only repeat the refusal."""
        until = self.ctx.clock.time() + REST_AFTER_REFUSAL_S
        self._resting[vehicle_id] = (until, reason)
        log.info("dispatch.vehicle_rests", vehicle_id=vehicle_id, reason=reason)

    def resting(self, vehicle_id: str) -> str | None:
        """Why ``vehicle_id`` rests now, or None."""
        rest = self._resting.get(vehicle_id)
        if rest is None:
            return None
        until, reason = rest
        if self.ctx.clock.time() >= until:
            del self._resting[vehicle_id]
            return None
        return reason

    def add_planner(self, planner: RequestPlanner) -> None:
        """Run ``planner`` in every round, after those already registered."""
        self.planners.append(planner)

    def kick(self) -> None:
        """Ask for a dispatch round soon."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch rounds forever (cancel to stop)."""
        while True:
            self._wake.clear()
            try:
                await self.dispatch_once()
            except Exception:
                log.exception("dispatcher.round_failed")
            with contextlib.suppress(TimeoutError):
                await self.ctx.clock.wait_for(self._wake.wait(), self._idle_interval())

    def _idle_interval(self) -> float:
        """World seconds between unprompted rounds: ``interval_s``, but never less than
        :data:`MIN_REAL_INTERVAL_S` of real time (an accelerated clock would otherwise spin
        rounds; anything that matters wakes the dispatcher with :meth:`kick`)."""
        speed = self.ctx.clock.speed
        if math.isinf(speed):
            return self.interval_s
        return max(self.interval_s, MIN_REAL_INTERVAL_S * speed)

    async def dispatch_once(self) -> int:
        """One round (see the module docstring): returns how many missions were planned."""
        planned = 0
        async with self.lock:
            try:
                await self.close_due()
            except Exception:
                log.exception("dispatcher.closing_failed")
            try:
                await self.allocation.run()
            except Exception:
                log.exception("dispatcher.allocation_failed")
            for planner in self.planners:
                if planner.request_kind == RequestKind.DELIVERY:
                    states = list(DELIVERY_OPEN)
                else:
                    states = [RequestState.APPROVED]
                pending = await self.ctx.store.list_requests(
                    states=states, kind=planner.request_kind, limit=1_000_000
                )
                if not pending and planner.request_kind != RequestKind.DELIVERY:
                    continue
                pending.sort(key=queue_key)
                planned += await planner.dispatch(pending)
            self.rounds += 1
        return planned

    # --- closing at the deadline -----------------------------------------------------------

    async def close_due(self) -> int:
        """Close the approved delivery requests whose deadline passed with nothing left to
        deliver (see ``missions.bookkeeping``); returns how many closed."""
        now = self.ctx.clock.now()
        due = [
            r
            for r in await self.ctx.store.list_requests(
                states=[RequestState.APPROVED], kind=RequestKind.DELIVERY, limit=1_000_000
            )
            if r.request.deadline is not None and r.request.deadline <= now
        ]
        if not due:
            return 0
        assigned = assigned_units(await self.ctx.store.tasks_of_requests(r.request.id for r in due))
        closed = 0
        for rec in due:
            if not due_for_closing(rec, assigned, now):
                waiting = sum(
                    i.allocated - i.delivered - assigned.get((rec.request.id, i.sku_id), 0)
                    for i in rec.items
                )
                await self.record_wait(
                    rec,
                    f"deadline passed: {waiting} allocated units still wait for a vehicle; "
                    "it closes once they are delivered",
                    key="deadline-passed",
                    kind=DecisionKind.DEADLINE,
                )
                continue
            try:
                async with self.ctx.store.transaction() as s:
                    events = await close_at_deadline(self.ctx, s, rec)
            except Conflict:
                continue  # moved on meanwhile (a vehicle delivered, an operator cancelled)
            self.ctx.journal.published(*events)
            self._waiting.pop(rec.request.id, None)
            closed += 1
        return closed

    # --- mode choice -----------------------------------------------------------------------

    def drone_spec(self, entry: VehicleEntry | None = None) -> DroneSpec:
        """The energy and payload figures of a delivery drone (settings; the vehicle's own
        payload when it reports one)."""
        cfg = self.ctx.settings.drone_missions
        payload = entry.info.payload_kg if entry is not None and entry.info.payload_kg else None
        return DroneSpec(
            payload_kg=payload or cfg.payload_kg,
            cruise_alt_m=cfg.cruise_alt_m,
            drop_alt_m=cfg.drop_alt_m,
            drop_hold_s=cfg.drop_hold_s,
            reserve_fraction=cfg.reserve_fraction,
        )

    def flight_distance(self, a: XY, b: XY) -> float:
        """Flight path length between two local-frame points, around no-fly zones (metres;
        ``inf`` when no path exists)."""
        return _flight_distance(self.ctx.world, *self._airspace(), a, b)

    def _airspace(self) -> tuple[float, float]:
        cfg = self.ctx.settings.drone_missions
        return cfg.cruise_alt_m, cfg.no_fly_margin_m

    def drone_unreachable(self, warehouse_id: str, community_id: str, kg: float) -> str | None:
        """Why no drone from ``warehouse_id``'s pads can fly ``kg`` to the community's drop
        point and back with the reserve on a full battery (None when one can)."""
        world = self.ctx.world
        pads = world.pads_of(warehouse_id)
        if not pads:
            return f"warehouse {warehouse_id} has no drone pad"
        drop = world.xy(world.community(community_id).drop_point)
        spec = self.drone_spec()
        best = math.inf
        for pad in pads:
            d = self.flight_distance(world.xy(pad.location), drop)
            best = min(best, estimate(spec, d, d, kg).energy)
        if best <= 1.0 - spec.reserve_fraction:
            return None
        if math.isinf(best):
            return f"no flight path from {warehouse_id}'s pads to the drop point of {community_id}"
        return (
            f"the drop point of {community_id} is out of drone range: the sortie needs "
            f"{best:.0%} of a full battery plus the {spec.reserve_fraction:.0%} reserve"
        )

    def delivery_drones(self, warehouse_id: str | None) -> list[tuple[VehicleEntry, Pad]]:
        """Delivery drones online at a pad of ``warehouse_id`` (any warehouse when None),
        busy or not, with their pad. Drones carrying a loudspeaker payload are not delivery
        drones: their payload bay holds the speaker."""
        world = self.ctx.world
        pads = [
            p
            for p in world.pads
            if p.warehouse_id is not None
            and (warehouse_id is None or p.warehouse_id == warehouse_id)
        ]
        out = []
        speaker_hosts = {
            e.control.host_vehicle_id
            for e in self.ctx.registry
            if isinstance(e.control, SpeakerControl)
        }
        for entry in self.ctx.registry:
            info, st = entry.info, entry.status
            if info.kind != VehicleKind.DRONE or Capability.DELIVERY not in info.capabilities:
                continue
            if info.id in speaker_hosts:
                continue  # its payload bay holds a loudspeaker, not a gripper load
            where = st.home or st.position
            if where is None:
                continue
            pad = min(pads, key=lambda p: distance_m(p.location, where), default=None)
            if pad is None or distance_m(pad.location, where) > PAD_MATCH_M:
                continue
            out.append((entry, pad))
        return out

    async def serves(self, warehouse_id: str, community_id: str, flyable: bool) -> bool:
        """Whether a vehicle can take work from ``warehouse_id`` to ``community_id`` now: a
        delivery drone online at its pads (for a ``flyable`` load) or a van (shuttle plans)."""
        if flyable and any(
            e.status.link == LinkState.ONLINE for e, _ in self.delivery_drones(warehouse_id)
        ):
            return True
        return await self.van_service(
            self.ctx, community_id=community_id, warehouse_id=warehouse_id
        )

    async def mode_for(
        self, rec: RequestRecord, lines: Lines, *, drones_available: bool | None = None
    ) -> ModeChoice:
        """How ``lines`` of ``rec`` travel (:func:`missions.delivery_mode.choose_mode` with
        the live fleet): the one mode choice every delivery planner follows."""
        req = rec.request
        warehouse_id = req.warehouse_id
        van = await self.van_service(
            self.ctx, community_id=req.community_id, warehouse_id=warehouse_id
        )
        if drones_available is None:
            drones_available = any(
                e.status.link == LinkState.ONLINE for e, _ in self.delivery_drones(warehouse_id)
            )
        unreachable = (
            self.drone_unreachable(warehouse_id, req.community_id, load_kg(lines))
            if warehouse_id is not None
            else None
        )
        return choose_mode(
            lines,
            Priority(req.priority),
            payload_kg=self.ctx.settings.drone_missions.payload_kg,
            van_available=van,
            drones_available=drones_available,
            unreachable=unreachable,
        )

    # --- recording -------------------------------------------------------------------------

    async def record_wait(
        self,
        rec: RequestRecord,
        reason: str,
        *,
        key: str | None = None,
        kind: DecisionKind = DecisionKind.UNSERVED,
        **data: Any,
    ) -> None:
        """Record why a request waits, once per distinct reason (or per ``key``, for reasons
        whose figures change every round)."""
        rid = rec.request.id
        last = self._waiting.get(rid)
        if last is not None and (last[0] == key if key is not None else last == (None, reason)):
            return
        self._waiting[rid] = (key, reason)
        d = Decision(kind=kind, subject_id=rid, reason=reason, request_ids=(rid,), data=data)
        ev = decision_event(self.ctx, d, request_id=rid)
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)

    async def record(self, decision: Decision, **where: Any) -> None:
        """Store and publish one decision (``where``: request_id, mission_id, vehicle_id)."""
        ev = decision_event(self.ctx, decision, **where)
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)

    def planned(self, request_id: str) -> None:
        """Forget the wait reason of a request that got a mission."""
        self._waiting.pop(request_id, None)


@lru_cache(maxsize=4096)
def _flight_distance(world: Any, alt_m: float, margin_m: float, a: XY, b: XY) -> float:
    try:
        return path_length(router_for(world, alt_m, margin_m).path(a, b))
    except PlanningError:
        return math.inf


@dataclass(frozen=True, slots=True)
class _Load:
    """A request's unassigned lines the mode choice sends to drones, as a drone task."""

    rec: RequestRecord
    lines: Lines
    task: DroneTask


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
        self._busy = busy
        self._start_mission = start_mission
        self._mission_of = mission_of
        self.settings = DroneAssignmentSettings()

    async def _wait(self, rec: RequestRecord, reason: str, **kw: Any) -> None:
        await self.dispatcher.record_wait(rec, reason, **kw)

    async def dispatch(self, pending: list[RequestRecord]) -> int:
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
            distance=self.dispatcher.flight_distance,
        )
        by_task = {ld.task.id: (ld.rec, ld.lines) for ld in loads}
        by_drone = {c.drone.id: c for c in candidates}
        taken: set[str] = set()
        planned = 0
        for sortie in sorted(plan.sorties, key=lambda so: (so.takeoff, so.drone_id)):
            rec, lines = by_task[sortie.task.id]
            cand = by_drone[sortie.drone_id]
            decision = _decision_for(plan, sortie.task.id, DecisionKind.ASSIGNMENT)
            late = _decision_for(plan, sortie.task.id, DecisionKind.DEADLINE)
            if cand.free and sortie.drone_id not in taken and sortie.takeoff <= now + 1e-6:
                taken.add(sortie.drone_id)
                if await self._commit(rec, lines, cand, sortie, decision, late):
                    planned += 1
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
        return planned

    async def _commit(
        self,
        rec: RequestRecord,
        lines: Lines,
        cand: Candidate,
        sortie: Sortie,
        decision: Decision | None,
        late: Decision | None,
    ) -> bool:
        req = rec.request
        cfg = self.ctx.settings.drone_missions
        community = self.ctx.world.community(req.community_id)
        try:
            dp = plan_delivery(self.ctx.world, cand.pad, community, cfg)
        except PlanningError as exc:
            await self._wait(rec, f"cannot be flown from pad {cand.pad.id}: {exc.message}")
            return False
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
        j = self.ctx.journal
        events: list[MissionEvent] = []
        try:
            async with self.ctx.store.transaction() as s:
                s.add(mission)
                await s.flush()
                task.mission_id = mission.id
                s.add(task)
                await s.flush()
                chosen = replace(chosen, plan_ref=mission.id)
                events.append(
                    decision_event(
                        self.ctx, chosen, mission_id=mission.id, request_id=req.id, vehicle_id=vid
                    )
                )
                if late is not None:
                    events.append(
                        decision_event(self.ctx, late, mission_id=mission.id, request_id=req.id)
                    )
                events.append(
                    j.event(
                        EventKind.STATE,
                        "mission planned",
                        mission_id=mission.id,
                        vehicle_id=vid,
                        to_state=MissionState.PLANNED,
                    )
                )
                for ev in events:
                    s.add(ev)
                events += await settle_request(
                    self.ctx,
                    s,
                    req.id,
                    f"scheduled on mission {mission.id} ({vid})",
                    mission_id=mission.id,
                    vehicle_id=vid,
                )
        except Conflict as exc:
            await self._wait(rec, f"could not be planned now: {exc.message}")
            return False
        j.published(*events)
        self.dispatcher.planned(req.id)
        log.info("dispatch.planned", request_id=req.id, mission_id=mission.id, vehicle_id=vid)
        self._start_mission(mission)
        return True

    def _fleet(self) -> dict[str, list[Candidate]]:
        """Delivery drones at warehouse pads, per warehouse, as the assignment sees them."""
        now = self.ctx.clock.time()
        world = self.ctx.world
        out: dict[str, list[Candidate]] = defaultdict(list)
        for entry, pad in self.dispatcher.delivery_drones(None):
            info, st = entry.info, entry.status
            spec = self.dispatcher.drone_spec(entry)
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


def queue_key(rec: RequestRecord) -> tuple[int, float, float]:
    """Queue order: priority class, then deadline, then arrival."""
    r = rec.request
    deadline = r.deadline.timestamp() if r.deadline else float("inf")
    return (Priority(r.priority).rank, deadline, r.created_at.timestamp())


__all__ = [
    "PAD_MATCH_M",
    "Candidate",
    "Dispatcher",
    "DroneDeliveryPlanner",
    "RequestPlanner",
    "VanService",
    "queue_key",
    "vans_online",
]
