"""Stranded loads: goods left on a van whose trip ended without it (link lost, trip timed out,
van taken out of service), and how they get back into the record.

A trip that ends that way lists its undelivered loads in ``Mission.result["stranded"]`` (with
``loaded``: whether the ledger booked them out of the warehouse). Their work is already back in
the queue. When the van is heard again, online, in service and idle, each round of the van
planner reconciles what the van reports:

* the van still reports the old order and a stranded load's **drop finished**: it was
  delivered while nobody watched; booked as delivered then (``deliver``; the request's
  allocation is given back what it lost) — the request may end up with more than it asked,
  since its work was planned again meanwhile, and the record says so;
* the van **carries** the load: a *return mission* drives it to its dock (from where it
  stands) and unloads it there; the goods are booked back into stock (``return``) against the
  mission that loaded them;
* neither: the goods' location is **unknown**; they stay *in transit* in the ledger against
  their mission and request, and an event asks for a count (an ``adjust`` movement after the
  count settles the books).

Goods a van picked while unobserved (``loaded`` false: the ledger never booked them out) are
unloaded the same way without any stock movement, or reported if they reached a gate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlmodel import col, select

from fleet.errors import StreetfleetError
from fleet.store.repository import Session
from fleet.store.tables import Mission, MissionEvent, ShuttleTrip, new_id
from fleet.van import ActionStatus, VanControl, VanState
from fleet.vehicle import LinkState
from missions.journal import EventKind
from missions.shuttle import booking
from missions.shuttle.planner import VanShuttlePlanner
from missions.shuttle.run import POLL_REAL_FLOOR_S, POLL_S, drivable, way_home
from missions.shuttle.timing import world_floor
from missions.shuttle.trips import DELIVERY, RETURN, LoadLine, LoadPlan, TripPlan, build_trip
from missions.states import MissionKind, MissionState

log = structlog.get_logger(__name__)

LOOKBACK_DAYS = 7
"""Stranded loads of trips that ended longer ago than this are left to an operator."""


class StrandedRecovery:
    """Runs at the start of each van-planner round (throttled)."""

    def __init__(self, planner: VanShuttlePlanner) -> None:
        self.planner = planner
        self.ctx = planner.ctx
        self._next = -1e18
        self._cancelled: set[str] = set()
        """Trips whose order the recovery told a van to cancel."""

    async def __call__(self) -> None:
        clock = self.ctx.clock
        if clock.monotonic() < self._next:
            return
        self._next = clock.monotonic() + world_floor(clock.speed, POLL_S, 4 * POLL_REAL_FLOOR_S)
        for m in await self._stranded():
            try:
                await self._recover(m)
            except StreetfleetError as exc:
                log.warning("shuttle.recovery_failed", mission_id=m.id, error=str(exc))

    async def _stranded(self) -> list[Mission]:
        since = self.ctx.clock.now() - timedelta(days=LOOKBACK_DAYS)
        async with self.ctx.store.transaction() as s:
            q = select(Mission).where(
                Mission.kind == MissionKind.VAN_SHUTTLE,
                col(Mission.state).in_(
                    [MissionState.INTERRUPTED, MissionState.FAILED, MissionState.CANCELLED]
                ),
                col(Mission.ended_at) >= since,
            )
            rows = (await s.exec(q)).all()
        return [m for m in rows if m.result.get("stranded")]

    async def _ready(self, vehicle_id: str, trip_id: str) -> VanState | None:
        """The van's state if it can be reconciled now. A van still driving the order of a
        trip that was given up (its stops were planned again) is told to stop it first."""
        entry = self.ctx.registry.find(vehicle_id)
        if entry is None or entry.status.link != LinkState.ONLINE:
            return None
        if vehicle_id in self.planner.out_of_service or self.planner.host.is_busy(vehicle_id):
            return None
        ctl = entry.control
        if not isinstance(ctl, VanControl):
            return None
        vs = ctl.state
        if vs is None:
            return None
        if vs.busy and vs.trip_id == trip_id and trip_id not in self._cancelled:
            self._cancelled.add(trip_id)
            try:
                await ctl.cancel_trip()
            except StreetfleetError as exc:
                log.warning("shuttle.recovery_cancel_failed", vehicle_id=vehicle_id, error=str(exc))
                return None
            ev = self.ctx.journal.event(
                EventKind.DECISION,
                f"{vehicle_id} is heard again, still driving trip {trip_id} whose stops were "
                "planned again: told to stop it (cancelOrder)",
                vehicle_id=vehicle_id,
                trip_id=trip_id,
            )
            await self.ctx.store.add_events([ev])
            self.ctx.journal.published(ev)
            vs = ctl.state
        if vs is None or vs.busy or not drivable(vs):
            return None  # wait until the order is over and the van takes orders
        return vs

    async def _recover(self, m: Mission) -> None:
        assert m.vehicle_id is not None
        tp = TripPlan.from_json(m.plan)
        vs = await self._ready(m.vehicle_id, tp.order_id)
        if vs is None:
            return
        entries: list[dict[str, Any]] = list(m.result["stranded"])
        same_order = vs.trip_id == tp.order_id
        carried = {x.load_id for x in vs.loads} if vs.loads is not None else None
        late: list[LoadPlan] = []
        seen_at_gate: list[LoadPlan] = []
        unloaded: list[LoadPlan] = []
        home: list[LoadPlan] = []
        unknown: list[LoadPlan] = []
        for e in entries:
            ld = tp.load(e["load_id"])
            if ld is None:
                continue
            drop = vs.action(ld.drop_action_id) if same_order else None
            dropped = drop is not None and drop.status is ActionStatus.FINISHED
            if dropped and tp.purpose == DELIVERY:
                (late if e["loaded"] else seen_at_gate).append(ld)
            elif dropped:  # the return order unloaded it at the dock while unobserved
                unloaded.append(ld)
            elif (carried is not None and ld.load_id in carried) or (
                carried is None and e["loaded"]
            ):
                home.append(ld)
            elif e["loaded"]:
                unknown.append(ld)
        return_mission = self._return_mission(m, tp, vs, home, e_loaded=entries) if home else None
        j = self.ctx.journal

        async def settle(s: Session) -> list[MissionEvent]:
            events: list[MissionEvent] = []
            for ld in late:
                events += await booking.book_drop(
                    self.ctx, s, m, tp.warehouse_id, ld, node_id=ld.node_id, late=True
                )
            for ld in unloaded:
                if not ld.booked:
                    continue
                for carried_by in sorted({ln.mission_id or m.id for ln in ld.lines}):
                    part = LoadPlan(
                        ld.load_id,
                        ld.community_id,
                        ld.node_id,
                        tuple(ln for ln in ld.lines if (ln.mission_id or m.id) == carried_by),
                        ld.kg,
                        ld.pick_action_id,
                        ld.drop_action_id,
                    )
                    events += await booking.book_return(
                        self.ctx,
                        s,
                        m,
                        tp.warehouse_id,
                        part,
                        carried_by,
                        "unloaded at the dock while the link was lost",
                    )
            for ld in seen_at_gate:
                events.append(
                    j.event(
                        EventKind.PAYLOAD,
                        f"{ld.describe()} was dropped at its gate while unobserved, but its "
                        "pick was never booked: count the goods and book an adjustment",
                        mission_id=m.id,
                        vehicle_id=m.vehicle_id,
                        load_id=ld.load_id,
                    )
                )
            for ld in unknown:
                events.append(
                    j.event(
                        EventKind.PAYLOAD,
                        f"{ld.describe()} is not on {m.vehicle_id} any more and was not seen "
                        "dropped: location unknown; it stays in transit in the ledger until a "
                        "count settles it (adjust)",
                        mission_id=m.id,
                        vehicle_id=m.vehicle_id,
                        load_id=ld.load_id,
                    )
                )
            if return_mission is not None:
                s.add(return_mission)
                await s.flush()
                rtp = TripPlan.from_json(return_mission.plan)
                if tp.shuttle_plan_id is not None:
                    row = (
                        await s.exec(select(ShuttleTrip).where(ShuttleTrip.mission_id == m.id))
                    ).first()
                    if row is not None:
                        s.add(
                            ShuttleTrip(
                                mission_id=return_mission.id,
                                shuttle_plan_id=row.shuttle_plan_id,
                                vehicle_id=row.vehicle_id,
                                shift_day=row.shift_day,
                                number=row.number,
                                created_at=self.ctx.clock.now(),
                            )
                        )
                events.append(
                    j.event(
                        EventKind.STATE,
                        f"return trip planned: {m.vehicle_id} brings "
                        f"{', '.join(ld.load_id for ld in rtp.loads)} back to the dock",
                        mission_id=return_mission.id,
                        vehicle_id=m.vehicle_id,
                        to_state=MissionState.PLANNED,
                        recovers=m.id,
                    )
                )
            events.append(
                j.event(
                    EventKind.DECISION,
                    f"{m.vehicle_id} heard again: {len(late)} stranded loads delivered late, "
                    f"{len(home)} going back to stock, {len(unknown)} of unknown location",
                    mission_id=m.id,
                    vehicle_id=m.vehicle_id,
                    return_mission_id=return_mission.id if return_mission else None,
                )
            )
            for ev in events:
                s.add(ev)
            booked = set(m.result.get("booked", []))
            booked |= {f"drop:{ld.load_id}" for ld in late + unloaded}
            await self.ctx.store.update_mission(
                m.id,
                session=s,
                result={
                    **m.result,
                    "booked": sorted(booked),
                    "stranded": [],
                    "recovered": {
                        "late": [ld.load_id for ld in late],
                        "returning": [ld.load_id for ld in home],
                        "unloaded": [ld.load_id for ld in unloaded],
                        "unknown": [ld.load_id for ld in unknown + seen_at_gate],
                        "by": return_mission.id if return_mission else None,
                    },
                },
            )
            return events

        async with self.ctx.store.transaction() as s:
            events = await settle(s)
        j.published(*events)
        if return_mission is not None:
            self.planner.host.spawn(return_mission)

    def _return_mission(
        self,
        m: Mission,
        tp: TripPlan,
        vs: VanState,
        loads: list[LoadPlan],
        *,
        e_loaded: list[dict[str, Any]],
    ) -> Mission:
        booked_ids = {e["load_id"] for e in e_loaded if e["loaded"]}
        path: list[str] = []
        if vs.trip_id == tp.order_id:
            path = [
                n.node_id
                for n in build_trip(
                    self.ctx.world, tp, self.ctx.settings.shuttle.max_speed_kmh
                ).nodes
            ]
        stops, deviation = way_home(self.ctx.world, vs, tp.dock_node_id, path)
        mission_id = new_id()
        rtp = TripPlan(
            trip_id=mission_id,
            purpose=RETURN,
            warehouse_id=tp.warehouse_id,
            dock_node_id=tp.dock_node_id,
            stops=stops,
            loads=tuple(
                LoadPlan(
                    ld.load_id,
                    ld.community_id,
                    tp.dock_node_id,
                    tuple(
                        LoadLine(
                            ln.request_id,
                            ln.sku_id,
                            ln.units,
                            ln.boxes,
                            ln.task_id,
                            ln.mission_id or m.id,
                        )
                        for ln in ld.lines
                    ),
                    ld.kg,
                    pick_action_id="",
                    booked=ld.load_id in booked_ids and ld.booked,
                )
                for ld in loads
            ),
            shuttle_plan_id=tp.shuttle_plan_id,
            shift_day=tp.shift_day,
            number=tp.number,
            start_deviation_m=deviation,
        )
        return Mission(
            id=mission_id,
            kind=MissionKind.VAN_SHUTTLE,
            vehicle_id=m.vehicle_id,
            state=MissionState.PLANNED,
            created_at=self.ctx.clock.now(),
            plan=rtp.to_json(),
        )
