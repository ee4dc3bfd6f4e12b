"""Dispatch benchmark: the service's own dispatch rounds over a generated, seeded day.

What runs is what the service runs: :class:`missions.service.MissionService` with the built-in
mission kinds (``missions.builtin.KINDS``) on a real store (an SQLite file, or ``--database``
PostgreSQL) and a ``ManualClock``; its :class:`~missions.dispatcher.Dispatcher` does every
round (closing, :class:`~missions.allocation_step.AllocationStep`, the drone delivery planner,
then :class:`~missions.shuttle.planner.VanShuttlePlanner` routing with PyVRP). The street and
the day come from :mod:`bench.street` (seeded): a grid street with one warehouse and
``--communities`` communities, ``--requests`` requests (a ``--backlog`` share approved at
08:00, the rest arriving until 14:00, each due 5 h after approval), the scarce SKUs received in
tranches short of what is asked (:func:`bench.street.deliveries`). The fleet is ``--vehicles``
vehicles, :data:`VAN_SHARE` of them vans on one shuttle plan for the whole street
(08:00-16:00), the others delivery drones on the warehouse's pads.

The vehicles are stand-ins in the live registry (as the bridges would fill it): drones online,
disarmed on their pads, ready, with a battery; vans online at the dock. The runs the planners
start are the service's own run classes, driven by :class:`DaySim` along the plan they were
given instead of a vehicle's reports: a drone sortie is authorized and loaded at once,
releases its load at half its planned duration and lands at its end (turnaround 3 min, a
battery swap when under half); a van trip loads its boxes when it departs, drops each load at
its planned finish and is back at its planned return. Every booking goes through the runs'
own bookkeeping (``MissionRun`` and ``missions.shuttle.booking``), so stock, requests and
tasks move exactly as in the service. A round runs every ``--round-every`` world seconds.
The service runs one on every kick and at least every 5 s; the default step (30 min) keeps a
day of 5,000 requests within minutes on 2 cores, where rounds over thousands of open requests
take tens of seconds (see ``docs/benchmarks.md``); a coarser step only delays when idle
vehicles are given work. ``python -m bench`` compares the methods on a smaller day with a
round every 2 min.

Where the time goes is measured, not guessed: :class:`PhaseClock` times each part of every
round, and a sampling profiler (:mod:`bench.sampling`) records the rounds' stacks; both are
printed for the service (the profile when the target is missed). ``--rounds N`` cuts the day
after N rounds (a large size's first rounds; the sweep uses it).

Three methods, each in its own process on its own database, on the same street and day:

* **service**: the service as configured;
* **fcfs**: first come, first served allocation (:func:`bench.baselines.fcfs_share`) with the
  same planners: what fair allocation and priorities buy;
* **greedy**: the service's allocation with a greedy insertion van router
  (:func:`bench.baselines.greedy_plan_vans`) in place of PyVRP: what routing buys.

Printed for each: the share of requests served on time by priority class (every unit
allocated to it delivered by its deadline, and at least one), units on time, Jain's index of
the communities' on-time satisfied fraction (boxes delivered on time / boxes asked, weighted as
the allocation weights them), boxes delivered per van-hour of shift, and the round planning
time p50 / p99 / max with the open requests at the rounds.

Target: with 5,000 requests, 60 communities and 100 vehicles, round p99 < 2 s.

    python -m bench.dispatch [--requests 5000] [--communities 60] [--vehicles 100] [--seed 7]
    python -m bench.dispatch --sweep 1000,5000,20000 --methods service --rounds 2
                                                      # the curve, var/bench/dispatch.*
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import heapq
import io
import itertools
import logging
import math
import multiprocessing as mp
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import report, sampling
from bench.sampling import Sampler

TARGET_REQUESTS = 5000
TARGET_COMMUNITIES = 60
TARGET_VEHICLES = 100
TARGET_P99_S = 2.0
VAN_SHARE = 0.4
"""Share of the vehicles that are vans (the rest are delivery drones)."""
TZ = "Asia/Shanghai"
DAY = date(2026, 3, 2)
SHIFT = (8, 16)
"""Van shift hours (local time); the day's arrivals stop two hours before its end."""
TURNAROUND_S = 180.0
"""A drone is offered work again this long after landing (next parcel, checks)."""
SWAP_S = 120.0
"""...plus this when its battery was swapped (under half)."""
METHODS = ("service", "fcfs", "greedy")
PROFILE_LINES = 25
"""Functions shown in the sampled profile of the rounds."""


@dataclass(frozen=True)
class Config:
    requests: int
    communities: int
    vehicles: int
    seed: int
    round_every_s: float
    backlog: float
    database: str | None

    @property
    def vans(self) -> int:
        return max(1, round(self.vehicles * VAN_SHARE))

    @property
    def drones(self) -> int:
        return max(0, self.vehicles - self.vans)


def _quiet() -> None:
    import structlog

    logging.basicConfig(level=logging.ERROR)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        cache_logger_on_first_use=False,
    )


# --- the day ---------------------------------------------------------------------------------


class PhaseClock:
    """Wall time of each part of every round, from wrappers the bench puts around the
    service's own objects (their code is unchanged): closing (``Dispatcher.close_due``), the
    allocation step, each planner's ``dispatch`` and, inside the planners, the mode choice
    (``Dispatcher.mode_for``), van routing (``plan_vans`` or its baseline, in a worker thread)
    and drone assignment (``assign_drones``). The rest of a round is listing the open requests
    for the planners."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, float]] = []
        self._now: dict[str, float] = defaultdict(float)

    def begin(self) -> None:
        self._now = defaultdict(float)

    def end(self, total: float) -> None:
        self._now["round"] = total
        self.rounds.append(dict(self._now))

    def wrap(self, fn: Callable[..., Awaitable[Any]], label: str) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self._now[label] += time.perf_counter() - t0

        return timed

    def wrap_sync(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._now[label] += time.perf_counter() - t0

        return timed


class DaySim:
    """Events on the world clock: request arrivals, the steps of every planned mission, and
    dispatch rounds (see the module docstring)."""

    def __init__(self, service: Any, shift_start: float, shift_end: float) -> None:
        self.service = service
        self.ctx = service.ctx
        self.start, self.end = shift_start, shift_end
        self._events: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        self._seq = itertools.count()
        self.rounds: list[tuple[float, float, int]] = []
        """(world time, seconds the round took, open requests)."""
        self.progress = True
        """Print every tenth round (and slow ones) as it ends."""
        self.profiler: cProfile.Profile | None = None
        """Set to profile the rounds (``--profile``; it slows them)."""
        self.sampler: Sampler | None = None
        """Samples the rounds' stacks (cheap; printed when the target is missed)."""
        self.phases = PhaseClock()
        """Where each round's time goes (see :class:`PhaseClock`)."""
        self.max_rounds: int | None = None
        """Stop the day after this many rounds (``--rounds``)."""
        self.cut_at: float | None = None
        """World time the day was cut at (None: it ran to its end)."""
        self.van_boxes = 0
        self.van_trips = 0
        self.sorties = 0

    def at(self, t: float, step: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self._events, (t, next(self._seq), step))

    # runs: the service's spawn() hands every planned mission here
    def started(self, run: Any) -> None:
        from missions.delivery.run import DroneDeliveryRun
        from missions.shuttle.run import ShuttleRun

        now = self.ctx.clock.time()
        if isinstance(run, DroneDeliveryRun):
            self.sorties += 1
            self._drone(run, now)
        elif isinstance(run, ShuttleRun):
            self.van_trips += 1
            self._van(run, now)
        else:  # broadcasts are not part of this day

            async def done() -> None:
                self._finish(run)

            self.at(now, done)

    def _drone(self, run: Any, now: float) -> None:
        from missions.states import MissionState, Phase, TaskState

        duration = float(run.mission.plan.get("duration_s", 600.0))
        energy = float(run.mission.plan.get("energy_fraction", 0.2))

        async def take_off() -> None:
            async def load(s: Any) -> Any:
                return await run._stock_for_tasks(s, "load", "loaded onto the drone")

            await run.transition(MissionState.AUTHORIZED, "plan accepted (bench)", extra=load)

            async def started(s: Any) -> Any:
                return await run._settle_requests(s, f"mission {run.mission.id} underway")

            await run.transition(
                MissionState.UNDERWAY, "mission started (bench)", phase=Phase.TAKEOFF,
                extra=started,
            )  # fmt: skip

        async def release() -> None:
            async with self.ctx.store.transaction() as s:
                tasks = [t for t in await run._tasks(s) if t.state == TaskState.ASSIGNED]
                events = await run._book_delivery(
                    s, tasks, f"released at {run.dp.community_id}", "payload released (bench)"
                )
            self.ctx.journal.published(*events)

        async def land() -> None:
            await run.transition(MissionState.COMPLETED, "delivered and landed (bench)",
                                 phase=Phase.DONE)  # fmt: skip
            entry = self.ctx.registry.get(run.vehicle_id)
            st = entry.status
            battery = max(0.0, (st.battery_fraction or 0.0) - energy)
            rest = TURNAROUND_S
            if battery < 0.5:
                battery, rest = 1.0, rest + SWAP_S
            st.battery_fraction = battery
            st.ready_for_mission = False
            st.not_ready = ("turnaround",)
            self._finish(run)

            async def ready() -> None:
                st.ready_for_mission = True
                st.not_ready = ()

            self.at(self.ctx.clock.time() + rest, ready)

        self.at(now, take_off)
        self.at(now + duration / 2, release)
        self.at(now + duration, land)

    def _van(self, run: Any, now: float) -> None:
        from missions.shuttle import booking
        from missions.states import MissionState, Phase

        tp = run.trip

        async def authorize() -> None:
            await run.transition(MissionState.AUTHORIZED, "trip checked (bench)",
                                 phase=Phase.PREFLIGHT)  # fmt: skip

            async def started(s: Any) -> Any:
                ids = [rid for ld in tp.loads for rid in ld.request_ids]
                return await booking.settle(
                    self.ctx, s, run.mission, ids, f"on its way on {run.vehicle_id}"
                )

            await run.transition(MissionState.UNDERWAY, "trip accepted (bench)",
                                 phase=Phase.PICK_UP, extra=started)  # fmt: skip

        async def pick() -> None:
            async with self.ctx.store.transaction() as s:
                events = []
                for ld in tp.loads:
                    events += await booking.book_pick(self.ctx, s, run.mission, tp.warehouse_id, ld)
            self.ctx.journal.published(*events)

        def drop(ld: Any) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                async with self.ctx.store.transaction() as s:
                    events = await booking.book_drop(
                        self.ctx, s, run.mission, tp.warehouse_id, ld, node_id=ld.node_id
                    )
                self.ctx.journal.published(*events)
                self.van_boxes += ld.boxes

            return go

        async def back() -> None:
            await run.transition(MissionState.COMPLETED, "back at the dock (bench)",
                                 phase=Phase.DONE)  # fmt: skip
            self._finish(run)

        depart = tp.depart if tp.depart is not None else now
        self.at(now, authorize)
        self.at(max(now, depart), pick)
        for ld in tp.loads:
            self.at(max(now, ld.eta if ld.eta is not None else depart), drop(ld))
        self.at(max(now, tp.return_at if tp.return_at is not None else depart), back)

    def _finish(self, run: Any) -> None:
        run.on_done(run.mission.id)

    # the clock and the rounds
    async def _advance_to(self, t: float) -> None:
        clock = self.ctx.clock
        dt = t - clock.time()
        if dt > 0:
            await clock.advance(dt)

    async def open_requests(self) -> int:
        from sqlalchemy import text

        async with self.ctx.store.transaction() as s:
            row = await s.execute(
                text(
                    "SELECT count(*) FROM request WHERE kind = 'delivery' AND state IN "
                    "('approved', 'scheduled', 'in_progress')"
                )
            )
            return int(row.scalar_one())

    async def run(self, round_every_s: float) -> None:
        dispatcher = self.service.dispatcher
        next_round = self.start
        while self._events or next_round <= self.end:
            t_event = self._events[0][0] if self._events else math.inf
            if t_event <= next_round or next_round > self.end:
                t, _, step = heapq.heappop(self._events)
                await self._advance_to(t)
                await step()
                continue
            if self.max_rounds is not None and len(self.rounds) >= self.max_rounds:
                self.cut_at = next_round
                break
            await self._advance_to(next_round)
            open_now = await self.open_requests()
            self.phases.begin()
            if self.profiler is not None:
                self.profiler.enable()
            if self.sampler is not None:
                self.sampler.on()
            t0 = time.perf_counter()
            await dispatcher.dispatch_once()
            dt = time.perf_counter() - t0
            if self.sampler is not None:
                self.sampler.off()
            if self.profiler is not None:
                self.profiler.disable()
            self.phases.end(dt)
            self.rounds.append((next_round, dt, open_now))
            if self.progress and (len(self.rounds) % 10 == 1 or dt > 2 * TARGET_P99_S):
                local = datetime.fromtimestamp(next_round, ZoneInfo(TZ))
                print(
                    f"    round {len(self.rounds)} at {local:%H:%M}: {open_now:,} open, {dt:.2f} s",
                    flush=True,
                )
            next_round += round_every_s


def _service_class() -> type:
    from missions.service import MissionService

    class BenchService(MissionService):
        """The mission service, its missions handed to :class:`DaySim` instead of run."""

        sim: DaySim

        def spawn(self, mission: Any) -> None:
            run = self.run_factories[mission.kind](self.ctx, mission, self._finished)
            self.runs[mission.id] = run
            self.sim.started(run)

    return BenchService


async def simulate(
    cfg: Config, method: str, profile: int = 0, max_rounds: int | None = None, sample: bool = True
) -> dict[str, Any]:
    """One method's day; returns its figures."""
    from bench.street import day_of_requests, deliveries, street_geojson
    from fleet.clock import ManualClock
    from fleet.events import EventBus
    from fleet.geo import Position
    from fleet.registry import VehicleRegistry
    from fleet.settings import Settings
    from fleet.store.repository import Store
    from fleet.store.tables import Vehicle
    from fleet.van import OperatingMode, VanState
    from fleet.vehicle import Capability, LandedState, LinkState, VehicleInfo, VehicleKind
    from fleet.worldfile import parse_world
    from missions.builtin import KINDS
    from missions.catalogue import default_skus
    from missions.context import MissionContext
    from missions.journal import Journal
    from missions.requests import ItemLine, NewDelivery
    from missions.shuttle.plans import PlanDraft
    from missions.shuttle.service import ShuttleService
    from missions.states import MissionKind

    world = parse_world(street_geojson(cfg.communities, cfg.seed, pads=min(64, cfg.drones or 1)))
    day = day_of_requests(
        {c.id: c.population for c in world.communities},
        cfg.requests,
        cfg.seed,
        backlog=cfg.backlog,
        arrivals_s=(SHIFT[1] - SHIFT[0] - 2) * 3600.0,
    )
    tz = ZoneInfo(TZ)
    start = datetime(DAY.year, DAY.month, DAY.day, SHIFT[0], tzinfo=tz).timestamp()
    end = datetime(DAY.year, DAY.month, DAY.day, SHIFT[1], tzinfo=tz).timestamp()
    clock = ManualClock(start=start)
    settings = Settings.load(logging={"level": "error"})
    with contextlib.ExitStack() as stack:
        url = cfg.database
        if url is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dispatch-"))
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        schema = f"bench_{method}_{int(time.time())}" if url.startswith("postgres") else None
        async with Store.open(url, schema) as store:
            await store.sync_world(world)
            for sku in default_skus():
                await store.upsert_sku(sku)
            now = clock.now()
            tranches = deliveries(day)
            for sku_id, q in tranches[0][1].items():
                await store.move_stock("receive", "W1", sku_id, q, at=now, actor="bench",
                                       note="opening stock")  # fmt: skip
            registry, bus = VehicleRegistry(), EventBus()
            ctx = MissionContext(store, world, registry, bus, clock, Journal(clock, bus), settings)
            dock = world.dock_node("W1")
            van_ids = [f"van-{k + 1:03d}" for k in range(cfg.vans)]
            for vid in van_ids:
                info = VehicleInfo(
                    id=vid,
                    kind=VehicleKind.VAN,
                    link_url="vda5050+mqtt://bench/",
                    address=vid,
                    capabilities=frozenset({Capability.SHUTTLE}),
                    max_boxes=150,
                    payload_kg=1000.0,
                )
                entry = registry.add(info, control=_BenchVan(vid, VanState(
                    trip_id="", trip_update=0, last_node_id=dock.id, remaining_nodes=(),
                    released_remaining=0, actions=(), driving=False, paused=False,
                    charging=False, battery_fraction=1.0,
                    operating_mode=OperatingMode.AUTOMATIC, loads=(),
                    map_pose=(dock.xy[0], dock.xy[1], 0.0), map_id=world.map_id,
                )))  # fmt: skip
                entry.status.link = LinkState.ONLINE
                await store.upsert_vehicle(_row(Vehicle, info, clock.now()))
            pads = world.pads_of("W1")
            for k in range(cfg.drones):
                pad = pads[k % len(pads)]
                info = VehicleInfo(
                    id=f"drone-{k + 1:03d}",
                    kind=VehicleKind.DRONE,
                    link_url="mavlink+udpin://bench",
                    address=str(k + 1),
                    capabilities=frozenset({Capability.DELIVERY}),
                )
                entry = registry.add(info, control=None)
                st = entry.status
                st.link = LinkState.ONLINE
                st.home = Position(pad.location.lat, pad.location.lon)
                st.battery_fraction = 1.0
                st.landed = LandedState.ON_GROUND
                st.armed = False
                st.ready_for_mission = True
                await store.upsert_vehicle(_row(Vehicle, info, clock.now()))
            service = _service_class()(ctx, KINDS)
            sim = DaySim(service, start, end)
            service.sim = sim
            if profile:
                sim.profiler = cProfile.Profile()
            await service.requests.refresh_catalogue()
            if method == "fcfs":
                from bench.baselines import fcfs_share

                service.dispatcher.allocation.share = fcfs_share
            import missions.delivery.planner as drone_planner
            import missions.shuttle.planner as van_planner

            if method == "greedy":
                from bench.baselines import greedy_plan_vans

                # the van planner calls the router it imported; the baseline takes its place
                stack.enter_context(_patched(van_planner, "plan_vans", greedy_plan_vans))

            dispatcher, phases = service.dispatcher, sim.phases
            dispatcher.close_due = phases.wrap(dispatcher.close_due, "closing")
            dispatcher.allocation.run = phases.wrap(dispatcher.allocation.run, "allocation step")
            dispatcher.mode_for = phases.wrap(dispatcher.mode_for, "mode choice")
            for planner in dispatcher.planners:
                label = f"planner {type(planner).__name__}"
                planner.dispatch = phases.wrap(planner.dispatch, label)  # type: ignore[method-assign]
                if hasattr(planner, "prepare"):  # starts its work before earlier planners run
                    planner.prepare = phases.wrap(planner.prepare, label)
            routed = phases.wrap_sync(van_planner.plan_vans, "van routing")
            stack.enter_context(_patched(van_planner, "plan_vans", routed))
            assigned = phases.wrap_sync(drone_planner.assign_drones, "drone assignment")
            stack.enter_context(_patched(drone_planner, "assign_drones", assigned))
            sim.max_rounds = max_rounds
            if sample and not profile:
                sim.sampler = Sampler()
            shuttle = service.kind(MissionKind.VAN_SHUTTLE.value)
            assert isinstance(shuttle, ShuttleService)
            if van_ids:
                await shuttle.create(
                    PlanDraft(
                        name="bench shift",
                        warehouse_id="W1",
                        community_ids=[c.id for c in world.communities],
                        vehicle_ids=van_ids,
                        shift_start=f"{SHIFT[0]:02d}:00",
                        shift_end=f"{SHIFT[1]:02d}:00",
                        timezone=TZ,
                        valid_from=DAY,
                        valid_until=DAY,
                    ),
                    "bench",
                )

            def arrival(r: Any) -> Callable[[], Awaitable[None]]:
                async def submit() -> None:
                    await service.requests.submit_delivery(
                        NewDelivery(
                            community_id=r.community_id,
                            items=tuple(ItemLine(sku_id=s, quantity=q) for s, q in r.lines),
                            priority=r.priority,
                        ),
                        "bench",
                    )

                return submit

            for r in day:
                sim.at(start + r.at, arrival(r))

            def restock(units: dict[str, int]) -> Callable[[], Awaitable[None]]:
                async def receive() -> None:
                    for sku_id, q in units.items():
                        await store.move_stock("receive", "W1", sku_id, q, at=clock.now(),
                                               actor="bench", note="tranche")  # fmt: skip

                return receive

            for t, units in tranches[1:]:
                sim.at(start + t, restock(units))
            wall0, cpu0 = time.perf_counter(), time.process_time()
            await sim.run(cfg.round_every_s)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            figures = await _figures(ctx, sim, cfg, start, end)
            figures.update(method=method, wall_s=wall, cpu_s=cpu)
            if sim.sampler is not None:
                figures["samples"] = sim.sampler.lines(
                    PROFILE_LINES, skip=(*sampling.SKIP, "bench/")
                )
            figures["phases"] = sim.phases.rounds
            if sim.profiler is not None:
                out = io.StringIO()
                stats = pstats.Stats(sim.profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(profile)
                figures["profile"] = [ln for ln in out.getvalue().splitlines() if ln.strip()]
            return figures


class _patched(contextlib.AbstractContextManager[None]):
    def __init__(self, obj: Any, name: str, value: Any) -> None:
        self.obj, self.name, self.value = obj, name, value

    def __enter__(self) -> None:
        self.old = getattr(self.obj, self.name)
        setattr(self.obj, self.name, self.value)

    def __exit__(self, *exc: object) -> None:
        setattr(self.obj, self.name, self.old)


def _row(cls: Any, info: Any, now: datetime) -> Any:
    return cls(
        id=info.id,
        kind=info.kind,
        link_url=info.link_url,
        address=info.address,
        capabilities=sorted(c.value for c in info.capabilities),
        payload_kg=info.payload_kg,
        max_boxes=info.max_boxes,
        first_seen=now,
        last_seen=now,
    )


class _BenchVan:
    """A van as the registry shows it to the planner (``fleet.van.VanControl``): its state at
    the dock; commands are not used (:class:`DaySim` follows the trips)."""

    def __init__(self, vehicle_id: str, state: Any) -> None:
        self.vehicle_id = vehicle_id
        self._state = state

    @property
    def state(self) -> Any:
        return self._state

    async def send_trip(self, trip: Any) -> None: ...
    async def update_trip(self, extension: Any) -> None: ...
    async def cancel_trip(self) -> None: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def start_charging(self) -> None: ...
    async def stop_charging(self) -> None: ...

    async def request_state(self) -> Any:
        return self._state

    async def request_factsheet(self) -> Any:
        raise NotImplementedError

    async def wait_trip(self, trip_id: str, within: float | None) -> Any:
        raise NotImplementedError


# --- figures ---------------------------------------------------------------------------------


async def _figures(ctx: Any, sim: DaySim, cfg: Config, start: float, end: float) -> dict[str, Any]:
    from missions.allocation import community_weight, jain_index
    from missions.states import Priority, RequestKind

    store = ctx.store
    skus = {s.id: s for s in await store.skus()}
    records = await store.list_requests(kind=RequestKind.DELIVERY, limit=10_000_000)
    delivered_by: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for mv in await store.ledger(limit=100_000_000):
        if mv.kind == "deliver" and mv.request_id:
            at = mv.at if mv.at.tzinfo else mv.at.replace(tzinfo=UTC)
            delivered_by[(mv.request_id, mv.sku_id)].append((at.timestamp(), mv.quantity))
    by_class: dict[str, list[int]] = {p.value: [0, 0] for p in Priority}
    units_asked = units_on_time = 0
    boxes_asked: dict[str, float] = defaultdict(float)
    boxes_ok: dict[str, float] = defaultdict(float)
    for rec in records:
        r = rec.request
        deadline = r.deadline
        assert deadline is not None
        due = (deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)).timestamp()
        allocated = on_time = 0
        for item in rec.items:
            ok = sum(q for t, q in delivered_by[(r.id, item.sku_id)] if t <= due + 1e-6)
            allocated += item.allocated
            on_time += ok
            units_asked += item.quantity
            units_on_time += ok
            per_box = max(1, skus[item.sku_id].units_per_box)
            boxes_asked[r.community_id] += item.quantity / per_box
            boxes_ok[r.community_id] += ok / per_box
        counts = by_class[r.priority]
        counts[1] += 1
        if on_time > 0 and on_time >= allocated:
            counts[0] += 1
    cs = sorted(boxes_asked)
    weights = [
        community_weight(ctx.world.community(c).population,
                         ctx.world.community(c).vulnerable_households)
        for c in cs
    ]  # fmt: skip
    jain = jain_index([boxes_ok[c] / boxes_asked[c] for c in cs], weights) if cs else 1.0
    times = [dt for _, dt, _ in sim.rounds]
    opens = [n for _, _, n in sim.rounds]
    n_all = sum(v[1] for v in by_class.values())
    shift_h = (end - start) / 3600.0
    out = {
        "requests": len(records),
        "on_time": sum(v[0] for v in by_class.values()) / max(1, n_all),
        **{f"on_time_{k}": v[0] / v[1] if v[1] else float("nan") for k, v in by_class.items()},
        "units_on_time": units_on_time / max(1, units_asked),
        "jain": jain,
        "boxes_per_van_hour": sim.van_boxes / max(1e-9, cfg.vans * shift_h),
        "van_boxes": sim.van_boxes,
        "van_trips": sim.van_trips,
        "sorties": sim.sorties,
        "rounds": len(times),
        "round_p50": report.percentile(times, 0.5),
        "round_p99": report.percentile(times, 0.99),
        "round_max": max(times) if times else float("nan"),
        "open_p50": report.percentile([float(n) for n in opens], 0.5),
        "open_max": max(opens) if opens else 0,
        "cut_at": sim.cut_at,
        "round_list": list(sim.rounds),
    }
    if sim.cut_at is not None:  # a day cut short: what it delivered says nothing
        for _, key, kind in ROWS:
            if kind != "int" and not key.startswith(("round", "open")):
                out[key] = float("nan")
    return out


def _child(
    cfg: Config, method: str, profile: int, max_rounds: int | None, sample: bool
) -> dict[str, Any]:
    _quiet()
    return asyncio.run(simulate(cfg, method, profile, max_rounds, sample))


def run_methods(
    cfg: Config,
    methods: list[str],
    profile: int = 0,
    max_rounds: int | None = None,
    sample: bool = True,
) -> dict[str, dict[str, Any]]:
    """Each method in a fresh process, one after the other."""
    from concurrent.futures import ProcessPoolExecutor

    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        print(f"  {method} ...", flush=True)
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            out[method] = pool.submit(_child, cfg, method, profile, max_rounds, sample).result()
        f = out[method]
        print(
            f"    {f['rounds']} rounds in {f['wall_s']:.0f} s; round p50 {f['round_p50']:.2f} s, "
            f"p99 {f['round_p99']:.2f} s"
            + ("" if f["cut_at"] is not None else f"; on time {f['on_time']:.1%}"),
            flush=True,
        )
    return out


ROWS: list[tuple[str, str, str]] = [
    ("requests on time, all", "on_time", "pct"),
    ("  urgent medical", "on_time_urgent_medical", "pct"),
    ("  vulnerable residents", "on_time_vulnerable", "pct"),
    ("  standard", "on_time_standard", "pct"),
    ("units asked delivered on time", "units_on_time", "pct"),
    ("Jain's index, on-time share", "jain", "f3"),
    ("boxes per van-hour", "boxes_per_van_hour", "f1"),
    ("van trips", "van_trips", "int"),
    ("drone sorties", "sorties", "int"),
    ("round time p50, s", "round_p50", "f3"),
    ("round time p99, s", "round_p99", "f3"),
    ("round time max, s", "round_max", "f3"),
    ("open requests at a round, p50", "open_p50", "int"),
    ("open requests at a round, max", "open_max", "int"),
]


def _cell(v: float, kind: str) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if kind == "pct":
        return f"{100 * v:.1f} %"
    if kind == "int":
        return f"{int(v):,}"
    return f"{v:.3f}" if kind == "f3" else f"{v:.1f}"


def show(results: dict[str, dict[str, Any]]) -> None:
    methods = list(results)
    head = f"{'':32}" + "".join(f"{m:>12}" for m in methods)
    if "service" in results:
        head += "".join(f"{'/' + m:>10}" for m in methods if m != "service")
    print(head)
    for label, key, kind in ROWS:
        line = f"{label:32}" + "".join(f"{_cell(results[m][key], kind):>12}" for m in methods)
        if "service" in results and kind != "int" and not key.startswith("round"):
            a = results["service"][key]
            for m in methods:
                if m == "service":
                    continue
                b = results[m][key]
                line += f"{(a / b if b else math.inf):>10.2f}"
        print(line)


PHASES: list[tuple[str, str]] = [
    ("closing", "closing overdue requests"),
    ("allocation step", "allocation step (shares stock, reserves it: one batched write per pool)"),
    ("planner DroneDeliveryPlanner", "drone delivery planner"),
    ("drone assignment", "  of which drone assignment (assign_drones)"),
    ("planner VanShuttlePlanner", "van shuttle planner"),
    ("van routing", "  of which van routing (PyVRP, or the baseline; a worker thread)"),
    ("mode choice", "in the planners: mode choice (Dispatcher.mode_for, per request)"),
]


def explain(f: dict[str, Any], *, samples: bool) -> None:
    """Where the rounds' time went (the :class:`PhaseClock`), round time against open
    requests in this run (the knee), and with ``samples`` the sampled profile of the rounds."""
    phases: list[dict[str, float]] = f["phases"]
    if not phases:
        return
    rounds = [(dt, n) for (_, dt, n) in f["round_list"]]
    slow = max(range(len(phases)), key=lambda i: phases[i]["round"])
    total = sum(p["round"] for p in phases)
    print(
        f"\nwhere the round time goes (wall seconds; the slowest round had "
        f"{rounds[slow][1]:,} open requests):"
    )
    print(f"  {'':68}{'slowest round':>14}{'all rounds':>12}")
    known = 0.0
    for key, label in PHASES:
        a, b = phases[slow].get(key, 0.0), sum(p.get(key, 0.0) for p in phases)
        if not key.startswith(("mode", "drone assignment", "van routing")):
            known += b
        print(f"  {label:68}{a:>9.2f} {100 * a / phases[slow]['round']:3.0f}%"
              f"{b:>8.1f} {100 * b / max(total, 1e-9):3.0f}%")  # fmt: skip
    rest_slow = phases[slow]["round"] - sum(
        phases[slow].get(k, 0.0) for k, _ in PHASES if k.startswith(("closing", "alloc", "plan"))
    )
    print(f"  {'listing open requests for the planners, the rest':68}{rest_slow:>9.2f}"
          f"{'':5}{total - known:>8.1f}")  # fmt: skip
    print(f"  {'round':68}{phases[slow]['round']:>9.2f}{'':5}{total:>8.1f}")
    under = [n for dt, n in rounds if dt < TARGET_P99_S]
    over = [n for dt, n in rounds if dt >= TARGET_P99_S]
    print("round time against open requests in this run (the knee):")
    by_open = sorted(rounds, key=lambda r: -r[1])
    for dt, n in by_open[:12]:
        print(f"  {n:>7,} open  {dt:8.2f} s {'over' if dt >= TARGET_P99_S else 'within'} "
              f"{TARGET_P99_S:g} s")  # fmt: skip
    if len(by_open) > 12:
        print(f"  ... {len(by_open) - 12} more rounds, at most {by_open[12][1]:,} open")
    if over:
        print(
            f"  rounds over {TARGET_P99_S:g} s had {min(over):,} to {max(over):,} open requests; "
            + (f"rounds within it at most {max(under):,}" if under else "no round was within it")
        )
    else:
        print(f"  every round within {TARGET_P99_S:g} s")
    if samples and f.get("samples"):
        print("sampled profile of the rounds (main thread, and worker threads while busy):")
        for line in f["samples"]:
            print(f"  {line}")


def _write_sweep(
    runs: list[tuple[Config, dict[str, dict[str, Any]]]], method: str, merge: bool
) -> str:
    """The curve of ``method`` (var/bench/dispatch.*); returns where its p99 crosses the
    target."""
    cfg0 = runs[0][0]
    cols = ["requests", "open max", "rounds", "round p50 s", "round p99 s", "round max s",
            "on time %"]  # fmt: skip
    rows: list[list[float | int | str]] = []
    for cfg, res in runs:
        f = res[method]
        on_time = "-" if f["cut_at"] is not None else round(100 * f["on_time"], 1)
        rows.append([cfg.requests, f["open_max"], f["rounds"], round(f["round_p50"], 3),
                     round(f["round_p99"], 3), round(f["round_max"], 3), on_time])  # fmt: skip
    paths = report.write_curve(
        "dispatch",
        f"Dispatch rounds against requests ({method}; {cfg0.communities} communities, "
        f"{cfg0.vehicles} vehicles, {cfg0.backlog:.0%} approved at 08:00)",
        cols,
        rows,
        x="requests",
        ys=["round p50 s", "round p99 s"],
        ylabel="seconds per round",
        target=(TARGET_P99_S, f"target p99 < {TARGET_P99_S:g} s"),
        merge=merge,
    )
    pts = [(float(r[0]), float(r[4])) for r in _read_rows(paths[1])]
    where = report.knee(pts, TARGET_P99_S, "round p99", "s")
    with paths[0].open("a") as md:
        md.write(f"\n{where}.\n")
    return where


def _read_rows(path: Path) -> list[list[str]]:
    import csv

    with path.open(newline="") as f:
        return list(csv.reader(f))[1:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.dispatch", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--requests", type=int, default=TARGET_REQUESTS)
    ap.add_argument("--communities", type=int, default=TARGET_COMMUNITIES)
    ap.add_argument("--vehicles", type=int, default=TARGET_VEHICLES)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--round-every",
        type=float,
        default=1800.0,
        help="world seconds between rounds (default: what rounds over 5,000 open requests "
        "allow on 2 cores; 120 for small days)",
    )
    ap.add_argument(
        "--backlog",
        type=float,
        default=1.0,
        help="share of the requests approved at 08:00 (default: all, so that a round runs "
        "over every one of them; the rest arrive until 14:00)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="cut the day after this many rounds (bounds a large size's run; a cut day shows "
        "round times only, and cannot meet the target)",
    )
    ap.add_argument("--database", default=None, help="store URL (default: an SQLite file)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"of {', '.join(METHODS)}")
    ap.add_argument(
        "--sweep",
        default="",
        help="request counts to sweep (communities and vehicles stay), e.g. 1000,5000,20000",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="--sweep: keep the sizes of var/bench/dispatch.csv this run does not measure (a "
        "sweep split over several runs)",
    )
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        help="instead: profile the service's rounds with cProfile and print this many lines "
        "(cumulative; slows the rounds several-fold)",
    )
    ap.add_argument(
        "--no-sample",
        dest="sample",
        action="store_false",
        help="do not sample the rounds' stacks (the sampled profile costs a few per cent)",
    )
    ap.add_argument(
        "--no-target",
        action="store_true",
        help="compare the methods only (a day below the target size): no verdict on the target",
    )
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if any(m not in METHODS for m in methods) or not methods:
        return report.failed("dispatch", f"--methods: choose from {', '.join(METHODS)}")
    if args.requests < 1 or args.communities < 1 or args.vehicles < 2 or args.rounds < 0:
        return report.failed(
            "dispatch", "--requests >= 1, --communities >= 1, --vehicles >= 2, --rounds >= 0"
        )
    max_rounds = args.rounds or None
    if args.profile:
        cfg = Config(args.requests, args.communities, args.vehicles, args.seed,
                     args.round_every, args.backlog, args.database)  # fmt: skip
        print(f"profiling the service's rounds (slower than unprofiled) on {report.machine()}")
        f = run_methods(cfg, ["service"], profile=args.profile, max_rounds=max_rounds)["service"]
        explain(f, samples=False)
        print("\n".join(f["profile"]))
        return report.no_target("dispatch", "profile only (no target)")
    sizes = [int(x) for x in args.sweep.split(",") if x.strip()]
    print(f"dispatch benchmark on {report.machine()}")
    runs: list[tuple[Config, dict[str, dict[str, Any]]]] = []
    where = ""
    for n in sizes or [args.requests]:
        cfg = Config(n, args.communities, args.vehicles, args.seed, args.round_every,
                     args.backlog, args.database)  # fmt: skip
        print(
            f"\n{cfg.requests:,} requests ({cfg.backlog:.0%} approved at 08:00, the rest until "
            f"14:00, due 5 h after approval), {cfg.communities} communities, {cfg.vans} vans and "
            f"{cfg.drones} drones, seed {cfg.seed}, a round every {cfg.round_every_s:g} s"
            + (f", day cut after {max_rounds} rounds" if max_rounds else "")
        )
        results = run_methods(cfg, methods, max_rounds=max_rounds, sample=args.sample)
        print()
        show(results)
        if "service" in results and not args.no_target:
            f = results["service"]
            explain(f, samples=f["round_p99"] >= TARGET_P99_S)
        runs.append((cfg, results))
        if sizes:  # after each size, so that a long sweep keeps what it measured
            where = _write_sweep(runs, methods[0], args.merge)
    if where:
        print(f"\ngrowth: {where}")
    cfg, res = max(runs, key=lambda r: r[0].requests)
    if args.no_target:
        return report.no_target("dispatch", "comparison only (no target)")
    targets = report.Targets("dispatch")
    if "service" not in res:
        return report.failed("dispatch", "the target is the service's: include --methods service")
    f = res["service"]
    size_ok = (
        f["open_max"] >= TARGET_REQUESTS
        and cfg.communities >= TARGET_COMMUNITIES
        and cfg.vehicles >= TARGET_VEHICLES
    )
    cut = f["cut_at"] is not None
    targets.check(
        f"round p99 < {TARGET_P99_S:g} s over {TARGET_REQUESTS:,} open requests, "
        f"{TARGET_COMMUNITIES} communities, {TARGET_VEHICLES} vehicles",
        size_ok and not cut and f["round_p99"] < TARGET_P99_S,
        f"p99 {f['round_p99']:.2f} s (p50 {f['round_p50']:.2f}, max {f['round_max']:.2f}) over "
        f"{f['rounds']} rounds of {cfg.requests:,} requests (up to {f['open_max']:,} open), "
        f"{cfg.communities} communities, {cfg.vehicles} vehicles"
        + (f"; day cut after {f['rounds']} rounds" if cut else ""),
    )
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
