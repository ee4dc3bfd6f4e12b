"""The dispatcher: turns approved requests into planned missions on suitable vehicles.

Runs whenever it is woken (a request approved, a vehicle freed or discovered) and at a steady
interval. Requests are served in priority-class order, then by deadline, then by arrival. A
delivery whose load fits a drone goes to the best free drone at a pad of its warehouse; stock is
reserved in the same transaction that plans the mission, so two missions never count on the same
boxes. Every decision is recorded with its reason: which vehicle and why, or why the request waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from fleet.errors import InsufficientStock, PlanningError
from fleet.geo import distance_m
from fleet.registry import VehicleEntry
from fleet.store.repository import RequestRecord
from fleet.store.tables import Mission, MissionEvent, Sku, Task
from fleet.vehicle import Capability, LandedState, LinkState, VehicleKind
from fleet.world import Pad
from missions.context import MissionContext
from missions.drone_delivery import (
    DeliveryPlan,
    check_energy,
    drone_can_carry,
    plan_delivery,
    plan_to_json,
)
from missions.journal import EventKind
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


@dataclass(frozen=True, slots=True)
class Candidate:
    """A free drone that could fly a request, with its pad."""

    entry: VehicleEntry
    pad: Pad


class RequestPlanner(Protocol):
    """Turns approved requests of one kind into planned missions."""

    request_kind: str
    """The ``RequestKind`` value it plans."""

    async def dispatch(self, pending: list[RequestRecord]) -> int:
        """Plan what can be planned now (``pending`` is in queue order); return how many
        missions were planned. Requests that must wait get a recorded reason."""
        ...


class Dispatcher:
    """Runs dispatch rounds over the registered request planners."""

    def __init__(self, ctx: MissionContext) -> None:
        self.ctx = ctx
        self.planners: list[RequestPlanner] = []
        self._wake = asyncio.Event()
        self._waiting_reason: dict[str, str] = {}
        """Last reason recorded for a request that waits (recorded again only if it changes)."""
        self.interval_s = 5.0

    def add_planner(self, planner: RequestPlanner) -> None:
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
                await self.ctx.clock.wait_for(self._wake.wait(), self.interval_s)

    async def dispatch_once(self) -> int:
        """One round over every planner: returns how many missions were planned."""
        planned = 0
        for planner in self.planners:
            pending = await self.ctx.store.list_requests(
                states=[RequestState.APPROVED], kind=planner.request_kind, limit=10_000
            )
            if pending:
                pending.sort(key=queue_key)
                planned += await planner.dispatch(pending)
        return planned

    async def record_wait(self, rec: RequestRecord, reason: str, **data: Any) -> None:
        """Record why a request waits (once per distinct reason)."""
        rid = rec.request.id
        if self._waiting_reason.get(rid) == reason:
            return
        self._waiting_reason[rid] = reason
        ev = self.ctx.journal.event(EventKind.DECISION, reason, request_id=rid, **data)
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)

    def planned(self, request_id: str) -> None:
        """Forget the wait reason of a request that got a mission."""
        self._waiting_reason.pop(request_id, None)


class DroneDeliveryPlanner:
    """Delivery requests whose load fits a drone: one sortie on the best free drone."""

    request_kind: str = RequestKind.DELIVERY

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

    async def _wait(self, rec: RequestRecord, reason: str, **data: Any) -> None:
        await self.dispatcher.record_wait(rec, reason, **data)

    async def dispatch(self, pending: list[RequestRecord]) -> int:
        skus = {s.id: s for s in await self.ctx.store.skus()}
        planned = 0
        for rec in pending:
            if await self._dispatch_request(rec, skus):
                planned += 1
        return planned

    async def _dispatch_request(self, rec: RequestRecord, skus: dict[str, Sku]) -> bool:
        req = rec.request
        lines = [
            (skus[i.sku_id], i.quantity - i.delivered)
            for i in rec.items
            if i.quantity > i.delivered
        ]
        cfg = self.ctx.settings.drone_missions
        fits, why = drone_can_carry(lines, cfg.payload_kg)
        if not fits:
            await self._wait(rec, f"waits for a van: {why}")
            return False
        community = self.ctx.world.community(req.community_id)
        candidates = self._free_drones(req.warehouse_id)
        if not candidates:
            await self._wait(rec, "waits for a free drone at the warehouse")
            return False
        choice: tuple[Candidate, DeliveryPlan] | None = None
        rejected: list[str] = []
        for cand in sorted(candidates, key=lambda c: -(c.entry.status.battery_fraction or 0)):
            try:
                dp = plan_delivery(self.ctx.world, cand.pad, community, cfg)
                check_energy(dp, cand.entry.status.battery_fraction, cfg.reserve_fraction)
            except PlanningError as exc:
                rejected.append(f"{cand.entry.info.id}: {exc.message}")
                continue
            choice = (cand, dp)
            break
        if choice is None:
            await self._wait(rec, "no free drone can fly it: " + "; ".join(rejected))
            return False
        cand, dp = choice
        warehouse_id = cand.pad.warehouse_id
        assert warehouse_id is not None
        vid = cand.entry.info.id
        others = ", ".join(
            f"{c.entry.info.id} {c.entry.status.battery_fraction or 0:.0%}"
            for c in candidates
            if c is not cand
        )
        reason = (
            f"{vid} chosen: free on pad {cand.pad.id}, battery "
            f"{cand.entry.status.battery_fraction or 0:.0%}, sortie "
            f"{dp.distance_m:.0f} m ≈ {dp.duration_s / 60:.1f} min using "
            f"{dp.energy_fraction:.0%}; {why}"
            + (f"; other free drones: {others}" if others else "")
        )
        now = self.ctx.clock.now()
        mission = Mission(
            kind=MissionKind.DRONE_DELIVERY,
            vehicle_id=vid,
            state=MissionState.PLANNED,
            created_at=now,
            plan=plan_to_json(dp),
        )
        load = [{"sku_id": sku.id, "quantity": qty} for sku, qty in lines]
        task = Task(
            request_id=req.id,
            kind="drone_delivery",
            community_id=req.community_id,
            state=TaskState.ASSIGNED,
            load=load,
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
                for sku, qty in lines:
                    mv = await self.ctx.store.move_stock(
                        "reserve",
                        warehouse_id,
                        sku.id,
                        qty,
                        at=now,
                        request_id=req.id,
                        mission_id=mission.id,
                        note="reserved for drone delivery",
                        session=s,
                    )
                    events.append(
                        j.event(
                            EventKind.STOCK,
                            f"reserve {qty} {sku.id}",
                            mission_id=mission.id,
                            request_id=req.id,
                            movement_id=mv.id,
                            sku_id=sku.id,
                            quantity=qty,
                            movement="reserve",
                        )
                    )
                    for item in rec.items:
                        if item.sku_id == sku.id:
                            item.allocated = item.delivered + qty
                await self.ctx.store.update_items(rec.items, s)
                events.append(
                    j.event(
                        EventKind.DECISION,
                        reason,
                        mission_id=mission.id,
                        request_id=req.id,
                        vehicle_id=vid,
                    )
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
                events.append(
                    j.event(
                        EventKind.STATE,
                        f"scheduled on mission {mission.id}",
                        request_id=req.id,
                        mission_id=mission.id,
                        from_state=RequestState.APPROVED,
                        to_state=RequestState.SCHEDULED,
                    )
                )
                await self.ctx.store.update_request(
                    req.id,
                    expected_states=[RequestState.APPROVED],
                    session=s,
                    state=RequestState.SCHEDULED,
                    warehouse_id=warehouse_id,
                )
                for ev in events:
                    s.add(ev)
        except InsufficientStock as exc:
            await self._wait(
                rec,
                f"waits for stock at {warehouse_id}: {exc.message}",
                sku_id=exc.fields.get("sku_id"),
            )
            return False
        j.published(*events)
        self.dispatcher.planned(req.id)
        log.info("dispatch.planned", request_id=req.id, mission_id=mission.id, vehicle_id=vid)
        self._start_mission(mission)
        return True

    def _free_drones(self, warehouse_id: str | None) -> list[Candidate]:
        world = self.ctx.world
        pads = [
            p
            for p in world.pads
            if p.warehouse_id is not None
            and (warehouse_id is None or p.warehouse_id == warehouse_id)
        ]
        out = []
        for entry in self.ctx.registry:
            info, st = entry.info, entry.status
            if (
                info.kind != VehicleKind.DRONE
                or Capability.DELIVERY not in info.capabilities
                or self._busy(info.id)
                or st.link != LinkState.ONLINE
                or st.armed
                or st.landed != LandedState.ON_GROUND
                or not st.ready_to_arm
            ):
                continue
            where = st.home or st.position
            if where is None:
                continue
            pad = min(pads, key=lambda p: distance_m(p.location, where), default=None)
            if pad is None or distance_m(pad.location, where) > PAD_MATCH_M:
                continue
            out.append(Candidate(entry, pad))
        return out


def queue_key(rec: RequestRecord) -> tuple[int, float, float]:
    """Queue order: priority class, then deadline, then arrival."""
    r = rec.request
    deadline = r.deadline.timestamp() if r.deadline else float("inf")
    return (Priority(r.priority).rank, deadline, r.created_at.timestamp())
