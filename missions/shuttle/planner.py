"""The van planner: turns pending delivery work into van trips, one trip at a time per van.

Registered with the dispatcher as a request planner (it runs after the drone planner). In each
dispatch round, for every shuttle plan whose shift is under way:

1. its vans are sorted out: *free* (online, in service, at the warehouse dock, no order
   running, nothing on board, battery fine), *busy* (on a trip: free again at the trip's
   planned return), *charging*, or away. A free van under ``shuttle.charge_below`` is told to
   charge at the dock first; it takes trips again from ``shuttle.charge_until``;
2. if a van is free, the pending work of the plan's communities is collected: allocated units
   not yet delivered nor on a vehicle (``missions.open_work``) of open delivery requests that
   the dispatcher's mode choice sends by van (``Dispatcher.mode_for``; light urgent loads fly),
   cut into stops (boxes and kg within a van's capacity, by priority class and deadline);
3. the whole rest of the shift is routed with PyVRP (:func:`missions.routing.plan_vans`, road
   travel times at the vans' speed cap (and the slowest free van's top speed), deadlines as
   soft windows, the shift end as a hard one, remaining range as a limit), warm-started from
   the previous plan;
4. each free van's *first* trip becomes a ``van_shuttle`` mission, with at most as many
   communities as the van takes loads (``VanCapabilities.max_loads``; the rest waits for the
   next trip) (one load per community: a
   pick at the dock and a drop at the gate; tasks per request and load; requests
   ``scheduled``) and starts at once. Later trips stay a forecast (:attr:`forecast`) and are
   planned again when the van is back, so new requests and failed vans are taken into account.

Re-plans happen when a van becomes free or the pending work changes, and at least every
``shuttle.replan_interval_s`` while a van waits. Requests that wait get one recorded reason
(per change of reason): the trip they are planned on, or why no van can take them.

Why this module is longer than the project's ~600-line guide: the round, the routing problem it
builds and the trip it commits share the planner's state (the forecast, the vans' views, the
reasons already recorded); the routing itself is in :mod:`missions.routing`, the loads in
:mod:`.loads` and the bookings in :mod:`.booking`.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa
import structlog
from sqlmodel import col, select

from fleet.errors import Conflict, StreetfleetError
from fleet.registry import VehicleEntry
from fleet.store.repository import Session
from fleet.store.rows import Record
from fleet.store.tables import Mission, MissionEvent, ShuttleTrip, Sku, new_id
from fleet.van import VanCapabilities, VanControl, VanState
from fleet.vehicle import LinkState, VehicleKind
from missions.context import MissionContext
from missions.dispatcher import Dispatcher
from missions.journal import EventKind
from missions.open_work import unassigned_lines
from missions.routing import (
    TravelMatrix,
    Van,
    VanPlan,
    VanProblem,
    VanRoutingSettings,
    VanStop,
)
from missions.routing import (
    Trip as RoutedTrip,
)
from missions.routing.decisions import DecisionKind, hhmm
from missions.routing.vans import plan_vans
from missions.run import MissionRun
from missions.shuttle.loads import Line, StopLoad, cut_stops, lines_of
from missions.shuttle.plans import PlanSpec, Shift
from missions.shuttle.records import plan_specs
from missions.shuttle.run import ShuttleRun, drivable
from missions.shuttle.timing import world_floor
from missions.shuttle.trips import DELIVERY, LoadLine, LoadPlan, TripPlan, load_id_for
from missions.states import (
    MissionKind,
    MissionState,
    RequestKind,
    RequestState,
    TaskState,
)

log = structlog.get_logger(__name__)

DOCK_RADIUS_M = 15.0
"""A van within this distance of its dock node stands at the dock."""
DEFAULT_MAX_BOXES = 150
"""Box capacity of a van that reports none (the reference van)."""
DEFAULT_MAX_KG = 1000.0
"""Payload of a van that reports none."""
PLANS_REFRESH_S = 5.0
"""World seconds between re-reads of the shuttle plans (at least one real second)."""
WORK_REFRESH_S = 5.0
"""World seconds between looks at the pending work while nothing else changes (at least half
a real second)."""
OPEN_STATES = (RequestState.APPROVED, RequestState.SCHEDULED, RequestState.IN_PROGRESS)
"""Request states whose allocated units vans may still carry."""


class ShuttleHost(Protocol):
    """What the planner needs from the mission service."""

    ctx: MissionContext
    runs: dict[str, MissionRun]

    @property
    def dispatcher(self) -> Dispatcher: ...

    def is_busy(self, vehicle_id: str) -> bool: ...

    def spawn(self, mission: Mission) -> None: ...


@dataclass(frozen=True, slots=True)
class VanView:
    """A van of a plan as the planner sees it this round."""

    id: str
    entry: VehicleEntry
    state: VanState | None
    status: str
    """``free``, ``busy``, ``charging``, ``away`` or ``offline``."""
    ready_at: float | None = None
    why: str = ""

    @property
    def capabilities(self) -> VanCapabilities | None:
        caps = self.entry.status.extra.get("van_capabilities")
        return caps if isinstance(caps, VanCapabilities) else None

    @property
    def max_boxes(self) -> int:
        caps = self.capabilities
        return (caps.max_boxes if caps and caps.max_boxes else 0) or (
            self.entry.info.max_boxes or DEFAULT_MAX_BOXES
        )

    @property
    def max_kg(self) -> float:
        caps = self.capabilities
        return (caps.max_load_kg if caps and caps.max_load_kg else 0.0) or (
            self.entry.info.payload_kg or DEFAULT_MAX_KG
        )

    @property
    def max_loads(self) -> int | None:
        """Consignments (communities) per trip; None: not limited."""
        caps = self.capabilities
        return caps.max_loads if caps is not None else None

    def unfit(self, spec: PlanSpec) -> str:
        """Why this van cannot take the plan's work at all (empty when it can): what its
        factsheet lacks, or a site of the plan whose clearance it exceeds."""
        caps = self.capabilities
        if caps is None:
            return ""
        if caps.unsupported:
            return "; ".join(caps.unsupported)
        sites = [x for x in (spec.warehouse_id, *spec.community_ids) if x in caps.unfit_sites]
        return f"too large for {', '.join(sites)}" if sites else ""


@dataclass(slots=True)
class _Trip:
    """A van trip built as a mission with its rows and records, not yet stored
    (``VanShuttlePlanner._build_trip``)."""

    van: VanView
    routed: RoutedTrip
    mission: Mission
    plan: TripPlan
    number: int
    trip_row: dict[str, Any]
    """Its ``shuttle_trip`` row."""
    tasks: list[dict[str, Any]]
    """Its ``task`` rows, one per request and load."""
    loads: list[LoadPlan]
    head: MissionEvent
    """The trip's ``planned`` event."""
    per_load: list[tuple[MissionEvent, list[tuple[str, MissionEvent]]]]
    """Each load's decision, with each request's record of what the load carries of it."""


@dataclass(slots=True)
class _Routing:
    """A shift's routing under way: what its commit needs, and PyVRP's answer to come."""

    spec: PlanSpec
    shift: Shift
    free: tuple[VanView, ...]
    by_id: dict[str, StopLoad]
    solving: asyncio.Future[VanPlan]


class VanShuttlePlanner:
    """Plans van trips for delivery requests (a ``RequestPlanner``; see the module docstring)."""

    request_kind: str = RequestKind.DELIVERY

    def __init__(self, host: ShuttleHost) -> None:
        self.host = host
        self.ctx = host.ctx
        self.cfg = host.ctx.settings.shuttle
        self._plans: list[PlanSpec] = []
        self._plans_read_at = -math.inf
        self.out_of_service: set[str] = set()
        """Vehicles an operator took out of service (read with the plans)."""
        self._previous: dict[str, VanPlan] = {}
        self._signature: dict[str, Any] = {}
        self._planned_at: dict[str, float] = {}
        self._work_at: dict[str, float] = {}
        self._free_before: dict[str, frozenset[str]] = {}
        self._waits: dict[str, str] = {}
        self._charge_noted: dict[str, bool] = {}
        self._matrices: dict[tuple[str, ...], TravelMatrix] = {}
        self.forecast: dict[str, list[RoutedTrip]] = {}
        """Trips of the latest routing of each shuttle plan that did not become missions."""
        self.on_round: list[Callable[[], Any]] = []
        """Coroutines run at the start of every round (stranded-load recovery)."""
        self._routings: list[_Routing] | None = None
        """Routings :meth:`prepare` started for this round's :meth:`dispatch`."""

    def invalidate(self) -> None:
        """Plans changed (API): read them again in the next round."""
        self._plans_read_at = -math.inf
        self._signature.clear()

    # --- the round ----------------------------------------------------------------------------

    async def prepare(self, pending: Sequence[Record]) -> None:
        """Start this round's van routing before the planners ahead of this one commit (the
        dispatcher's :class:`~missions.dispatcher.PreparingPlanner` step): the plans are read,
        the round hooks run and, for every shift with a free van whose work changed, the van
        problem is built and PyVRP starts in a worker thread; :meth:`dispatch` commits.

        Why: PyVRP takes its whole time budget (``shuttle.routing_time_limit_s``, 1 s) in
        every round that routes, and waiting for it after the drone planner made it the
        largest single part of a round (``docs/benchmarks.md``, dispatch). The van work does
        not depend on what the drone planner commits: the mode choice sends each request's
        unassigned lines by drone or by van, never both, and the drone planner plans only the
        lines it sends by drone, so the problem built now is the one built after it."""
        self.discard()
        self._routings = await self._start_round(pending)

    def discard(self) -> None:
        """Drop routings :meth:`prepare` started and :meth:`dispatch` did not commit (the round
        ended early): their threads finish within the time budget, their answers unread."""
        for routing in self._routings or ():
            if not routing.solving.done():
                routing.solving.cancel()
        self._routings = None

    async def dispatch(self, pending: Sequence[Record]) -> int:
        """``pending``: every open delivery request, in queue order (the dispatcher's)."""
        routings = self._routings
        self._routings = None
        if routings is None:  # not prepared (called on its own): route now
            routings = await self._start_round(pending)
        planned = 0
        try:
            while routings:
                routing = routings.pop(0)
                try:
                    planned += await self._commit_shift(routing)
                except StreetfleetError as exc:
                    log.warning(
                        "shuttle.plan_failed", shuttle_plan_id=routing.spec.id, error=str(exc)
                    )
        finally:
            for routing in routings:
                routing.solving.cancel()
        return planned

    async def _start_round(self, pending: Sequence[Record]) -> list[_Routing]:
        """The start of the planner's round: the plans (re-read every few seconds), the round
        hooks, then each active shift's routing started (see :meth:`_route_shift`)."""
        clock = self.ctx.clock
        if clock.monotonic() - self._plans_read_at > world_floor(clock.speed, PLANS_REFRESH_S, 1.0):
            self._plans = await plan_specs(self.ctx.store)
            self.out_of_service = {
                v.id for v in await self.ctx.store.vehicles() if not v.in_service
            }
            self._plans_read_at = clock.monotonic()
        for hook in self.on_round:
            await hook()
        now = clock.now()
        routings: list[_Routing] = []
        try:
            for spec in self._plans:
                shift = spec.shift_at(now)
                if shift is None:
                    continue
                try:
                    routing = await self._route_shift(spec, shift, pending)
                except StreetfleetError as exc:
                    log.warning("shuttle.plan_failed", shuttle_plan_id=spec.id, error=str(exc))
                    continue
                if routing is not None:
                    routings.append(routing)
        except BaseException:
            for routing in routings:
                routing.solving.cancel()
            raise
        return routings

    def vans_of(self, spec: PlanSpec) -> list[VanView]:
        """The plan's vans, sorted out (see the module docstring)."""
        out = []
        dock = self.ctx.world.dock_node(spec.warehouse_id)
        now = self.ctx.clock.time()
        for vid in spec.vehicle_ids:
            entry = self.ctx.registry.find(vid)
            if entry is None or entry.info.kind != VehicleKind.VAN:
                continue
            ctl = entry.control
            vs = ctl.state if isinstance(ctl, VanControl) else None
            if entry.status.link != LinkState.ONLINE:
                out.append(VanView(vid, entry, vs, "offline", why=f"link {entry.status.link}"))
                continue
            if vid in self.out_of_service:
                out.append(VanView(vid, entry, vs, "offline", why="out of service"))
                continue
            view = VanView(vid, entry, vs, "away")
            unfit = view.unfit(spec)
            if unfit and not self.host.is_busy(vid):
                out.append(VanView(vid, entry, vs, "away", why=unfit))
                continue
            if self.host.is_busy(vid):
                ready = now
                for run in self.host.runs.values():
                    if run.mission.vehicle_id == vid and isinstance(run, ShuttleRun):
                        ready = max(ready, run.trip.return_at or now)
                out.append(VanView(vid, entry, vs, "busy", ready_at=ready, why="on a trip"))
                continue
            if vs is None:
                out.append(VanView(vid, entry, vs, "away", why="no state reported yet"))
                continue
            if vs.busy:
                out.append(VanView(vid, entry, vs, "away", why=f"runs order {vs.trip_id}"))
                continue
            if not drivable(vs):
                out.append(
                    VanView(vid, entry, vs, "away", why=f"{vs.operating_mode}, e-stop {vs.e_stop}")
                )
                continue
            at_dock = vs.last_node_id == dock.id and (
                vs.map_pose is None
                or math.dist((vs.map_pose[0], vs.map_pose[1]), dock.xy) <= DOCK_RADIUS_M
            )
            if not at_dock:
                out.append(VanView(vid, entry, vs, "away", why="not at the dock"))
                continue
            if vs.loads:
                out.append(
                    VanView(vid, entry, vs, "away", why="loads on board from an earlier trip")
                )
                continue
            soc = vs.battery_fraction
            if vs.charging and soc < self.cfg.charge_until:
                out.append(VanView(vid, entry, vs, "charging", why=f"charging at {soc:.0%}"))
                continue
            if soc < self.cfg.charge_below:
                out.append(VanView(vid, entry, vs, "charging", why=f"battery {soc:.0%} is low"))
                continue
            out.append(VanView(vid, entry, vs, "free"))
        return out

    async def _route_shift(
        self, spec: PlanSpec, shift: Shift, pending: Sequence[Record]
    ) -> _Routing | None:
        """Sort the shift's vans out and, when a free van has work that changed (or the
        re-plan interval passed), build the van problem and start PyVRP on it in a worker
        thread; None when there is nothing to route."""
        clock = self.ctx.clock
        vans = self.vans_of(spec)
        for v in vans:
            if v.status == "charging":
                await self._charge(spec, v)
        free = [v for v in vans if v.status == "free"]
        if not free:
            self._free_before[spec.id] = frozenset()
            return None
        free_ids = frozenset(v.id for v in free)
        newly_free = free_ids != self._free_before.get(spec.id)
        self._free_before[spec.id] = free_ids
        since_work = clock.monotonic() - self._work_at.get(spec.id, -math.inf)
        if not newly_free and since_work < world_floor(clock.speed, WORK_REFRESH_S, 0.5):
            return None
        self._work_at[spec.id] = clock.monotonic()
        skus = {s.id: s for s in await self.ctx.store.skus()}
        lines = await self._work(spec, skus, pending)
        if not lines:
            self._signature.pop(spec.id, None)
            return None
        signature = (free_ids, tuple(sorted((x.request_id, x.sku_id, x.units) for x in lines)))
        since_plan = clock.monotonic() - self._planned_at.get(spec.id, -math.inf)
        if self._signature.get(spec.id) == signature and since_plan < world_floor(
            clock.speed, self.cfg.replan_interval_s, 5.0
        ):
            return None
        self._signature[spec.id] = signature
        self._planned_at[spec.id] = clock.monotonic()
        max_boxes = min(v.max_boxes for v in free)
        max_kg = min(v.max_kg for v in free)
        stops = cut_stops(lines, skus, max_boxes=max_boxes, max_kg=max_kg)
        speeds = [
            v.capabilities.speed_max_mps * 3.6
            for v in free
            if v.capabilities is not None and v.capabilities.speed_max_mps > 0
        ]
        speed_kmh = min([self.cfg.max_speed_kmh, *speeds])
        problem, by_id = self._problem(spec, shift, stops, vans, speed_kmh)
        settings = self._routing_settings(free)
        solving = asyncio.ensure_future(
            asyncio.to_thread(plan_vans, problem, settings, previous=self._previous.get(spec.id))
        )
        return _Routing(spec, shift, tuple(free), by_id, solving)

    async def _commit_shift(self, routing: _Routing) -> int:
        """Wait for the routing's answer, then commit each free van's first trip as a mission
        and record why the rest waits."""
        spec, shift, free, by_id = routing.spec, routing.shift, routing.free, routing.by_id
        vp = await routing.solving
        self._previous[spec.id] = vp
        planned = 0
        committed: dict[str, tuple[str, RoutedTrip]] = {}
        firsts: list[tuple[VanView, RoutedTrip]] = []
        for v in free:
            trips = sorted((t for t in vp.trips_of(v.id) if not t.started), key=lambda t: t.number)
            if trips:
                firsts.append((v, trips[0]))
        for v, trip, mission in await self._commit_trips(spec, shift, firsts, by_id, vp):
            committed[v.id] = (mission.id, trip)
            self.host.spawn(mission)
            planned += 1
        taken = {id(t) for _, t in committed.values()}
        self.forecast[spec.id] = [t for t in vp.trips if not t.started and id(t) not in taken]
        await self._record_waits(vp, by_id, committed)
        return planned

    # --- work, problem, settings --------------------------------------------------------------

    async def _work(
        self, spec: PlanSpec, skus: dict[str, Sku], pending: Sequence[Record]
    ) -> list[Line]:
        """The plan's van work: unassigned allocated lines (``missions.open_work``) of open
        delivery requests for its communities and warehouse that the mode choice sends by
        van (``Dispatcher.mode_for``)."""
        served = set(spec.community_ids)
        records = [
            r
            for r in pending
            if r.request.kind == RequestKind.DELIVERY
            and r.request.state in OPEN_STATES
            and r.request.community_id in served
            and r.request.warehouse_id in (None, spec.warehouse_id)
        ]
        if not records:
            return []
        work = await unassigned_lines(self.ctx.store, records, skus)
        lines: list[Line] = []
        for rec in records:
            todo = work.get(rec.request.id)
            if not todo:
                continue
            choice = await self.host.dispatcher.mode_for(rec, todo)
            if choice.by_drone:
                continue
            lines += lines_of(rec, {sku.id: q for sku, q in todo}, skus)
        return lines

    def _matrix(self, nodes: tuple[str, ...], speed: float) -> TravelMatrix:
        m = self._matrices.get((*nodes, f"{speed:.3f}"))
        if m is None:
            net = self.ctx.world.road_network
            m = TravelMatrix(
                np.asarray(net.matrix(list(nodes), "distance", max_speed_kmh=speed), np.float64),
                np.asarray(net.matrix(list(nodes), "time", max_speed_kmh=speed), np.float64),
                labels=nodes,
            )
            self._matrices[(*nodes, f"{speed:.3f}")] = m
        return m

    def _problem(
        self,
        spec: PlanSpec,
        shift: Shift,
        stops: Sequence[StopLoad],
        vans: Sequence[VanView],
        speed_kmh: float,
    ) -> tuple[VanProblem, dict[str, StopLoad]]:
        world = self.ctx.world
        communities = sorted({st.community_id for st in stops})
        nodes = (
            world.dock_node(spec.warehouse_id).id,
            *(world.gate_node(c).id for c in communities),
        )
        place = {c: i + 1 for i, c in enumerate(communities)}
        by_id = {st.id: st for st in stops}
        van_stops = tuple(
            VanStop(
                id=st.id,
                place=place[st.community_id],
                boxes=st.boxes,
                kg=round(st.kg, 3),
                deadline=st.deadline,
                priority=st.priority,
                request_ids=st.request_ids,
            )
            for st in stops
        )
        now = self.ctx.clock.time()
        fleet: list[Van] = []
        for v in vans:
            if v.status not in ("free", "busy"):
                continue
            reach = v.state.reach_m if v.state is not None else None
            fleet.append(
                Van(
                    id=v.id,
                    max_boxes=v.max_boxes,
                    max_kg=v.max_kg,
                    ready_at=v.ready_at if v.status == "busy" else now,
                    range_m=(
                        reach * (1 - self.cfg.range_reserve_fraction)
                        if reach is not None and v.status == "free"
                        else None
                    ),
                )
            )
        problem = VanProblem(
            now=now,
            depot=0,
            matrix=self._matrix(nodes, speed_kmh),
            stops=van_stops,
            vans=tuple(fleet),
            shift_end=shift.end.timestamp(),
            shift_start=shift.start.timestamp(),
        )
        return problem, by_id

    def _routing_settings(self, free: Sequence[VanView]) -> VanRoutingSettings:
        caps = [v.capabilities for v in free if v.capabilities is not None]
        load = (
            max((c.pick_time_per_box_s for c in caps if c.pick_time_per_box_s), default=None)
            or self.cfg.load_per_box_s
        )
        unload = (
            max((c.drop_time_per_box_s for c in caps if c.drop_time_per_box_s), default=None)
            or self.cfg.unload_per_box_s
        )
        return VanRoutingSettings(
            dock_fixed_s=self.cfg.dock_fixed_s,
            load_per_box_s=load,
            stop_fixed_s=self.cfg.stop_fixed_s,
            unload_per_box_s=unload,
            time_limit_s=self.cfg.routing_time_limit_s,
        )

    # --- committing a trip --------------------------------------------------------------------

    async def _commit_trips(
        self,
        spec: PlanSpec,
        shift: Shift,
        firsts: Sequence[tuple[VanView, RoutedTrip]],
        by_id: dict[str, StopLoad],
        vp: VanPlan,
    ) -> list[tuple[VanView, RoutedTrip, Mission]]:
        """Commit each van's first trip: all in one transaction, and one by one (each in its
        own) when that one refuses, so that a trip whose request closed meanwhile does not hold
        back the others.

        Why one transaction, written as plain rows (``Store.insert_rows``, one statement per
        table for all the trips; ``Store.move_requests`` for the requests they schedule): a
        round that sends 40 vans out committed 40 transactions, then one ORM ``Task`` per
        request carried (about 1,500 in the first round over 5,000 open requests) with a
        flush per trip; together they were the largest part of the van planner on the round's
        path (``docs/benchmarks.md``, dispatch)."""
        numbers = await self._trip_numbers(spec, shift, [v.id for v, _ in firsts])
        built = [
            self._build_trip(spec, shift, v, t, by_id, vp, numbers.get(v.id, 0) + 1)
            for v, t in firsts
        ]
        if len(built) > 1:
            try:
                async with self.ctx.store.transaction() as s:
                    events = await self._write_trips(s, spec, built)
            except Conflict as exc:
                log.info("shuttle.trips_conflict", error=exc.message, trips=len(built))
            else:
                self._trips_committed(events, built)
                return [(b.van, b.routed, b.mission) for b in built]
        out = []
        for b in built:
            try:
                async with self.ctx.store.transaction() as s:
                    events = await self._write_trips(s, spec, [b])
            except Conflict as exc:
                log.info("shuttle.trip_conflict", vehicle_id=b.van.id, error=exc.message)
                self._signature.pop(spec.id, None)
                continue
            self._trips_committed(events, [b])
            out.append((b.van, b.routed, b.mission))
        return out

    async def _trip_numbers(
        self, spec: PlanSpec, shift: Shift, van_ids: list[str]
    ) -> dict[str, int]:
        """Trips each of ``van_ids`` has been given in this shift of the plan (one query)."""
        if not van_ids:
            return {}
        async with self.ctx.store.transaction() as s:
            q = (
                select(ShuttleTrip.vehicle_id, sa.func.count())
                .where(
                    ShuttleTrip.shuttle_plan_id == spec.id,
                    col(ShuttleTrip.vehicle_id).in_(van_ids),
                    ShuttleTrip.shift_day == shift.day,
                )
                .group_by(col(ShuttleTrip.vehicle_id))
            )
            return {vid: int(n) for vid, n in (await s.exec(q)).all()}

    def _trips_committed(self, events: list[MissionEvent], built: Sequence[_Trip]) -> None:
        self.ctx.journal.published(*events)
        for b in built:
            for ld in b.loads:
                for rid in ld.request_ids:
                    self._waits.pop(rid, None)
            log.info(
                "shuttle.trip_planned",
                mission_id=b.mission.id,
                vehicle_id=b.van.id,
                boxes=b.plan.boxes,
                communities=len(b.loads),
            )

    def _build_trip(
        self,
        spec: PlanSpec,
        shift: Shift,
        van: VanView,
        routed: RoutedTrip,
        by_id: dict[str, StopLoad],
        vp: VanPlan,
        number: int,
    ) -> _Trip:
        """One trip as a mission with its rows and records, not yet stored (number ``number``
        of the van's shift)."""
        world, now = self.ctx.world, self.ctx.clock.now()
        mission_id = new_id()
        groups: dict[str, list[StopLoad]] = {}
        eta: dict[str, float] = {}
        for visit in routed.visits:
            st = by_id[visit.stop.id]
            if st.community_id not in groups and len(groups) == (van.max_loads or math.inf):
                continue  # the van takes no more loads: the rest waits for its next trip
            groups.setdefault(st.community_id, []).append(st)
            eta[st.community_id] = visit.finish
        tasks: list[dict[str, Any]] = []
        loads: list[LoadPlan] = []
        for community, parts in groups.items():
            load_id = load_id_for(mission_id, community)
            merged: dict[tuple[str, str], list[Line]] = defaultdict(list)
            for st in parts:
                for ln in st.lines:
                    merged[(ln.request_id, ln.sku_id)].append(ln)
            per_request: dict[str, dict[str, Any]] = {}
            lines: list[LoadLine] = []
            for (rid, sku_id), group in merged.items():
                task = per_request.get(rid)
                if task is None:
                    task = per_request[rid] = {
                        "id": new_id(),
                        "request_id": rid,
                        "mission_id": mission_id,
                        "kind": "van_delivery",
                        "community_id": community,
                        "state": TaskState.ASSIGNED.value,
                        "load": [],
                        "created_at": now,
                    }
                units = sum(x.units for x in group)
                boxes = sum(x.boxes for x in group)
                task["load"].append(
                    {"sku_id": sku_id, "quantity": units, "boxes": boxes, "load_id": load_id}
                )
                lines.append(LoadLine(rid, sku_id, units, boxes, task["id"]))
            tasks += per_request.values()
            loads.append(
                LoadPlan(
                    load_id=load_id,
                    community_id=community,
                    node_id=world.gate_node(community).id,
                    lines=tuple(lines),
                    kg=sum(st.kg for st in parts),
                    eta=eta[community],
                    deadline=min(
                        (st.deadline for st in parts if st.deadline is not None), default=None
                    ),
                )
            )
        dock_node = world.dock_node(spec.warehouse_id)
        dock = dock_node.id
        pose = van.state.map_pose if van.state is not None else None
        off = math.dist((pose[0], pose[1]), dock_node.xy) if pose is not None else 0.0
        tp = TripPlan(
            trip_id=mission_id,
            purpose=DELIVERY,
            warehouse_id=spec.warehouse_id,
            dock_node_id=dock,
            stops=(dock, *(ld.node_id for ld in loads), dock),
            loads=tuple(loads),
            shuttle_plan_id=spec.id,
            shift_day=shift.day.isoformat(),
            number=number,
            start_deviation_m=round(off + 2.0, 2) if off > 0.5 else None,
            distance_m=routed.distance_m,
            depart=routed.depart,
            return_at=routed.return_at,
        )
        mission = Mission(
            id=mission_id,
            kind=MissionKind.VAN_SHUTTLE,
            vehicle_id=van.id,
            state=MissionState.PLANNED,
            created_at=now,
            plan=tp.to_json(),
        )
        reasons = {
            d.subject_id: d.reason for d in vp.decisions if d.kind == DecisionKind.ASSIGNMENT
        }
        late = {d.subject_id: d.reason for d in vp.decisions if d.kind == DecisionKind.DEADLINE}
        # rows built without the ORM's bookkeeping (Journal.row), stored with
        # Store.insert_events: a trip records one per request it carries
        j = self.ctx.journal
        head = j.row(
            EventKind.STATE,
            f"trip {number} of {van.id}'s shift planned: {tp.boxes} boxes, "
            f"{tp.kg:.0f} kg to {len(loads)} communities, back at "
            f"{hhmm(tp.return_at or 0)}",
            mission_id=mission_id,
            vehicle_id=van.id,
            to_state=MissionState.PLANNED,
            shuttle_plan_id=spec.id,
        )
        per_load: list[tuple[MissionEvent, list[tuple[str, MissionEvent]]]] = []
        for ld in loads:
            parts = groups[ld.community_id]
            why = " | ".join(reasons[st.id] for st in parts if st.id in reasons)
            notes = [late[st.id] for st in parts if st.id in late]
            load_ev = j.row(
                EventKind.DECISION,
                f"load {ld.load_id}: {ld.describe()}. {why}"
                + (f" Deadline: {'; '.join(notes)}" if notes else ""),
                mission_id=mission_id,
                vehicle_id=van.id,
                load_id=ld.load_id,
                request_ids=list(ld.request_ids),
                boxes=ld.boxes,
                kg=round(ld.kg, 2),
                eta=ld.eta,
                deadline=ld.deadline,
            )
            carried_evs = []
            for rid in ld.request_ids:
                carried = {ln.sku_id: ln.units for ln in ld.lines if ln.request_id == rid}
                what = ", ".join(f"{q} {k}" for k, q in carried.items())
                carried_evs.append(
                    (
                        rid,
                        j.row(
                            EventKind.DECISION,
                            f"{what} on {van.id}'s trip {number} (load {ld.load_id}), "
                            f"unloaded at the gate by {hhmm(ld.eta or 0)}",
                            mission_id=mission_id,
                            request_id=rid,
                            vehicle_id=van.id,
                            load_id=ld.load_id,
                            units=carried,
                        ),
                    )
                )
            per_load.append((load_ev, carried_evs))
        trip_row = {
            "mission_id": mission_id,
            "shuttle_plan_id": spec.id,
            "vehicle_id": van.id,
            "shift_day": shift.day,
            "number": number,
            "created_at": now,
        }
        return _Trip(van, routed, mission, tp, number, trip_row, tasks, loads, head, per_load)

    async def _write_trips(
        self, s: Session, spec: PlanSpec, built: Sequence[_Trip]
    ) -> list[MissionEvent]:
        """Store ``built`` trips in the transaction ``s``: their missions, trip records, tasks
        and events, and each request they carry checked open (its row locked) and scheduled
        when it was ``approved``; returns the events to publish once it commits. ``Conflict``
        when a request is no longer open."""
        store, j = self.ctx.store, self.ctx.journal
        rids = {r for b in built for ld in b.loads for r in ld.request_ids}
        state = await store.request_states(rids, s)
        events: list[MissionEvent] = []
        scheduled: list[tuple[str, str | None]] = []
        for b in built:
            events.append(b.head)
            for load_ev, carried_evs in b.per_load:
                events.append(load_ev)
                for rid, ev in carried_evs:
                    st = state.get(rid)
                    if st is None or st not in OPEN_STATES:
                        raise Conflict(f"request {rid} is no longer open", request_id=rid)
                    events.append(ev)
                    if st == RequestState.APPROVED:
                        events.append(
                            j.row(
                                EventKind.STATE,
                                f"scheduled on mission {b.mission.id} ({b.van.id}, "
                                f"trip {b.number})",
                                mission_id=b.mission.id,
                                request_id=rid,
                                vehicle_id=b.van.id,
                                from_state=RequestState.APPROVED,
                                to_state=RequestState.SCHEDULED,
                            )
                        )
                        state[rid] = RequestState.SCHEDULED
                        scheduled.append((rid, spec.warehouse_id))
        await store.insert_missions([b.mission for b in built], s)
        await store.insert_rows("shuttle_trip", [b.trip_row for b in built], s)
        await store.insert_rows("task", [t for b in built for t in b.tasks], s)
        await store.move_requests(
            scheduled,
            from_state=RequestState.APPROVED,
            to_state=RequestState.SCHEDULED,
            session=s,
        )
        await store.insert_events(events, s)
        return events

    # --- reasons and charging -----------------------------------------------------------------

    async def _record_waits(
        self,
        vp: VanPlan,
        by_id: dict[str, StopLoad],
        committed: dict[str, tuple[str, RoutedTrip]],
    ) -> None:
        now_trips = {id(t) for _, t in committed.values()}
        reasons: dict[str, str] = {}
        for trip in vp.trips:
            if trip.started or id(trip) in now_trips:
                continue
            for visit in trip.visits:
                for rid in visit.stop.request_ids:
                    reasons.setdefault(
                        rid,
                        f"waits for a van: planned on a later trip of {trip.vehicle_id} "
                        f"(leaves the dock about {hhmm(trip.depart or 0)})",
                    )
        for u in vp.unserved:
            st = by_id.get(u.stop.id)
            for rid in st.request_ids if st else u.stop.request_ids:
                reasons.setdefault(rid, f"waits for a van: {u.reason}")
        events = []
        for rid, reason in reasons.items():
            if self._waits.get(rid) == reason:
                continue
            self._waits[rid] = reason
            events.append(self.ctx.journal.row(EventKind.DECISION, reason, request_id=rid))
        if events:
            await self.ctx.store.add_events(events)
            self.ctx.journal.published(*events)

    async def _charge(self, spec: PlanSpec, v: VanView) -> None:
        vs = v.state
        if vs is None or vs.charging or not isinstance(v.entry.control, VanControl):
            return
        dock = self.ctx.world.dock_node(spec.warehouse_id)
        if vs.last_node_id != dock.id or vs.busy:
            return
        try:
            await v.entry.control.start_charging()
        except StreetfleetError as exc:
            if not self._charge_noted.get(v.id):
                self._charge_noted[v.id] = True
                log.warning("shuttle.charge_failed", vehicle_id=v.id, error=str(exc))
            return
        self._charge_noted[v.id] = False
        ev = self.ctx.journal.event(
            EventKind.DECISION,
            f"{v.id} charges at the {spec.warehouse_id} dock: battery {vs.battery_fraction:.0%} "
            f"is below {self.cfg.charge_below:.0%}; it takes trips again from "
            f"{self.cfg.charge_until:.0%}",
            vehicle_id=v.id,
            battery=vs.battery_fraction,
        )
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)


__all__ = ["ShuttleHost", "VanShuttlePlanner", "VanView"]
