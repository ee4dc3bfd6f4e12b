"""Dispatch benchmark: 1,000 open requests, 12 and 60 communities, 5 vans and 20 drones.

For each scenario, in the same run:

* **dispatcher**: weighted max-min allocation of scarce SKUs, then :func:`plan_dispatch`
  (drones for light urgent loads, PyVRP multi-trip van routing with deadline costs);
* **baseline**: first come, first served: allocation in approval order (each request takes all
  it asks while stock lasts), then each request, in approval order, goes to the *nearest*
  vehicle able to carry it (same drone eligibility and energy model; for a van, the end of its
  open trip, which leaves when full); stops are driven in the order they were assigned.

Both plans are timed by the same models (:func:`missions.routing.schedule_trips` for vans,
:func:`missions.routing.estimate` for drones). Printed per scenario: planning time (target
under 2 s), share of requests delivered before their deadline, share of urgent-medical ones,
and Jain's index of the per-community on-time satisfied fraction (boxes delivered on time /
boxes asked), weighted by community weight; each with the dispatcher / baseline ratio.

    python -m bench.dispatch [--seed 7] [--communities 12,60] [--requests 1000] [--budget 1.5]

The scenario generator is seeded and documented in :func:`make_scenario`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from missions.allocation import Demand, allocate, community_weight, jain_index
from missions.inventory import SkuSpec
from missions.routing import (
    CommunitySite,
    DeliveryTask,
    DispatchPlan,
    DispatchProblem,
    DispatchSettings,
    Drone,
    DroneSpec,
    TravelMatrix,
    Van,
    VanRoutingSettings,
    VanStop,
    estimate,
    plan_dispatch,
    schedule_trips,
)
from missions.states import Priority

SPEED_MPS = 30 / 3.6 * 0.6
"""Van average speed on city streets: 60 % of the 30 km/h limit (junctions, gates)."""

SKUS = {
    "medicine": SkuSpec("medicine", 20, 1.2, 0.06),
    "test_kits": SkuSpec("test_kits", 25, 1.0, 0.04),
    "food": SkuSpec("food", 1, 7.5, 7.5, drone_eligible=False),
    "masks": SkuSpec("masks", 500, 3.0, 0.006),
    "suits": SkuSpec("suits", 20, 6.0, 0.3),
    "alcohol": SkuSpec("alcohol", 24, 12.0, 0.5, drone_eligible=False),
    "gloves": SkuSpec("gloves", 1000, 4.0, 0.004),
    "face_shields": SkuSpec("face_shields", 50, 3.5, 0.07),
}
"""Packing of the scenario's SKUs (boxes are what vans load and what is allocated)."""

SCARCE = {"suits": 0.55, "alcohol": 0.7, "test_kits": 0.8, "medicine": 0.9}
"""Stock as a fraction of boxes asked, for the scarce SKUs (the others are covered)."""


@dataclass(frozen=True)
class Request:
    """A scenario request: one community, one class, a few SKU lines in boxes."""

    id: str
    community_id: str
    priority: Priority
    approved_at: float
    deadline: float
    lines: tuple[tuple[str, int], ...]


@dataclass
class Scenario:
    """Street, fleet and open requests at planning time ``now``."""

    now: float
    shift_end: float
    sites: tuple[CommunitySite, ...]
    weights: dict[str, int]
    matrix: TravelMatrix
    vans: tuple[Van, ...]
    drones: tuple[Drone, ...]
    requests: list[Request]
    stock: dict[str, int] = field(default_factory=dict)


def make_scenario(n_communities: int, n_requests: int, seed: int) -> Scenario:
    """A seeded, plausible street at 10:00 on a lockdown day.

    * Communities spread around the warehouse within a radius growing with their number
      (1.5 km for 12, 3.4 km for 60), populations log-normal around 3,000, 2 to 7 % of them
      vulnerable households; van travel by straight line x 1.3 at 18 km/h.
    * Requests approved uniformly over the last 4 hours (deadline: approval + 5 h), from
      communities in proportion to population; 10 % urgent medical (one light box of medicine
      or test kits), 25 % vulnerable residents (food and medicine, 1 to 4 boxes), 65 %
      standard (masks, suits, alcohol, gloves, face shields, 2 to 12 boxes).
    * Scarce SKUs (:data:`SCARCE`) are stocked below demand, the rest cover it.
    * 5 vans (150 boxes, 1,000 kg) on shift until 18:00; 20 drones on the warehouse pads.
    """
    rng = np.random.default_rng(seed)
    now = 10 * 3600.0
    radius = 1500.0 * math.sqrt(n_communities / 12)
    ang = rng.uniform(0, 2 * math.pi, n_communities)
    rad = radius * np.sqrt(rng.uniform(0.08, 1.0, n_communities))
    xy = [(0.0, 0.0)] + [
        (float(r * math.cos(a)), float(r * math.sin(a))) for r, a in zip(rad, ang, strict=True)
    ]
    ids = [f"c{k:02d}" for k in range(n_communities)]
    pop = np.clip(rng.lognormal(math.log(3000), 0.5, n_communities), 600, 12000).astype(int)
    vul = (pop * rng.uniform(0.02, 0.07, n_communities) / 2.5).astype(int)
    weights = {c: community_weight(int(p), int(v)) for c, p, v in zip(ids, pop, vul, strict=True)}
    sites = tuple(CommunitySite(c, k + 1, xy[k + 1]) for k, c in enumerate(ids))
    matrix = TravelMatrix.from_points(xy, speed_mps=SPEED_MPS, labels=["dock", *ids])
    p_comm = pop / pop.sum()
    requests: list[Request] = []
    for k in range(n_requests):
        cid = ids[int(rng.choice(n_communities, p=p_comm))]
        u = rng.uniform()
        approved = now - float(rng.uniform(0, 4 * 3600))
        if u < 0.10:
            prio = Priority.URGENT_MEDICAL
            lines: list[tuple[str, int]] = [(str(rng.choice(["medicine", "test_kits"])), 1)]
        elif u < 0.35:
            prio = Priority.VULNERABLE
            lines = [("food", int(rng.integers(1, 4)))]
            if rng.uniform() < 0.4:
                lines.append(("medicine", 1))
        else:
            prio = Priority.STANDARD
            picks = rng.choice(["masks", "suits", "alcohol", "gloves", "face_shields"], 2)
            lines = [(str(s), int(rng.integers(1, 7))) for s in dict.fromkeys(picks)]
        requests.append(
            Request(f"r{k:04d}", cid, prio, approved, approved + 5 * 3600, tuple(lines))
        )
    asked: dict[str, int] = defaultdict(int)
    for r in requests:
        for sku, q in r.lines:
            asked[sku] += q
    stock = {sku: math.floor(q * SCARCE.get(sku, 1.2)) for sku, q in asked.items()}
    vans = tuple(Van(f"van-{k + 1}", max_boxes=150, max_kg=1000.0) for k in range(5))
    drones = tuple(Drone(f"drone-{k + 1:02d}", (0.0, 0.0)) for k in range(20))
    return Scenario(now, 18 * 3600.0, sites, weights, matrix, vans, drones, requests, stock)


# --- the two methods -------------------------------------------------------------------------


@dataclass
class Outcome:
    """Per request: boxes allocated and when (if) they arrive."""

    allocated: dict[str, int] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    planning_s: float = 0.0
    allocation_jain: list[float] = field(default_factory=list)


def _tasks(sc: Scenario, alloc: dict[str, dict[str, int]]) -> list[DeliveryTask]:
    tasks = []
    for r in sc.requests:
        lines = alloc[r.id]
        boxes = sum(lines.values())
        if boxes <= 0:
            continue
        tasks.append(
            DeliveryTask(
                id=r.id,
                community_id=r.community_id,
                boxes=boxes,
                kg=sum(SKUS[s].box_kg * q for s, q in lines.items()),
                priority=r.priority,
                deadline=r.deadline,
                request_ids=(r.id,),
                drone_eligible=all(SKUS[s].drone_eligible for s in lines),
            )
        )
    return tasks


def run_dispatcher(sc: Scenario, budget_s: float, seed: int) -> tuple[Outcome, DispatchPlan]:
    t0 = time.perf_counter()
    per_sku: dict[str, list[Demand]] = defaultdict(list)
    for r in sc.requests:
        for sku, q in r.lines:
            per_sku[sku].append(
                Demand(r.id, r.community_id, q, r.priority, r.deadline, r.approved_at)
            )
    alloc: dict[str, dict[str, int]] = {r.id: {} for r in sc.requests}
    out = Outcome()
    for sku, demands in per_sku.items():
        a = allocate(sku, sc.stock[sku], demands, sc.weights)
        if a.shortfall:
            out.allocation_jain.append(a.jain_index)
        for share in a.requests:
            if share.allocated:
                alloc[share.request_id][sku] = share.allocated
    tasks = _tasks(sc, alloc)
    settings = DispatchSettings(
        vans=VanRoutingSettings(
            time_limit_s=max(0.1, budget_s - (time.perf_counter() - t0) - 0.1), seed=seed
        )
    )
    plan = plan_dispatch(
        DispatchProblem(
            now=sc.now,
            tasks=tuple(tasks),
            communities=sc.sites,
            depot=0,
            matrix=sc.matrix,
            vans=sc.vans,
            drones=sc.drones,
            shift_end=sc.shift_end,
        ),
        settings,
    )
    out.planning_s = time.perf_counter() - t0
    out.allocated = {rid: sum(v.values()) for rid, v in alloc.items()}
    for o in plan.outcomes:
        if o.delivered_at is not None:
            out.delivered_at[o.task_id] = o.delivered_at
    return out, plan


@dataclass
class _BVan:
    van: Van
    free: float
    trips: list[list[VanStop]] = field(default_factory=list)
    cur: list[VanStop] = field(default_factory=list)


def run_baseline(sc: Scenario) -> Outcome:
    """First come, first served; nearest vehicle (see the module docstring)."""
    t0 = time.perf_counter()
    out = Outcome()
    left = dict(sc.stock)
    fcfs = sorted(sc.requests, key=lambda r: (r.approved_at, r.id))
    alloc: dict[str, dict[str, int]] = {r.id: {} for r in sc.requests}
    got: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    asked: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in fcfs:
        for sku, q in r.lines:
            g = min(q, left[sku])
            left[sku] -= g
            asked[sku][r.community_id] += q
            got[sku][r.community_id] += g
            if g:
                alloc[r.id][sku] = g
    for sku in asked:
        if sum(got[sku].values()) < sum(asked[sku].values()):
            cs = sorted(asked[sku])
            out.allocation_jain.append(
                jain_index([got[sku][c] / asked[sku][c] for c in cs], [sc.weights[c] for c in cs])
            )
    tasks = {t.id: t for t in _tasks(sc, alloc)}
    sites = {s.id: s for s in sc.sites}
    settings = VanRoutingSettings()
    m = sc.matrix
    vans = [_BVan(v, sc.now) for v in sc.vans]
    dstate = {d.id: [sc.now, 1.0] for d in sc.drones}
    payload = max(d.spec.payload_kg for d in sc.drones)

    def van_trips(bv: _BVan, extra: VanStop | None, new_trip: bool) -> list[list[VanStop]]:
        cur = list(bv.cur)
        trips = [list(t) for t in bv.trips]
        if extra is not None:
            if new_trip and cur:
                trips.append(cur)
                cur = []
            cur.append(extra)
        return [*trips, cur] if cur else trips

    for r in fcfs:
        t = tasks.get(r.id)
        if t is None:
            continue
        site = sites[t.community_id]
        if (
            t.priority is Priority.URGENT_MEDICAL
            and t.drone_eligible
            and t.kg <= payload
            and _baseline_drone(sc, t, site, dstate, out)
        ):
            continue
        stop = VanStop(t.id, site.gate, t.boxes, t.kg, deadline=t.deadline, task_ids=(t.id,))
        # nearest van: from where its open trip ends (or the dock), then earliest free
        options = []
        for bv in vans:
            pos = bv.cur[-1].place if bv.cur else 0
            full = (
                sum(s.boxes for s in bv.cur) + t.boxes > bv.van.max_boxes
                or sum(s.kg for s in bv.cur) + t.kg > bv.van.max_kg
            )
            trips = van_trips(bv, stop, full)
            sched = schedule_trips(bv.van.id, bv.free, trips, depot=0, matrix=m, settings=settings)
            if sched and sched[-1].return_at > sc.shift_end:
                continue
            options.append((m.metres(pos, site.gate), bv.free, bv.van.id, bv, full))
        if not options:
            continue
        _, _, _, bv, full = min(options, key=lambda o: o[:3])
        if full and bv.cur:
            bv.trips.append(bv.cur)
            bv.cur = []
        bv.cur.append(stop)
    for bv in vans:
        trips = van_trips(bv, None, False)
        for trip in schedule_trips(bv.van.id, sc.now, trips, depot=0, matrix=m, settings=settings):
            for v in trip.visits:
                out.delivered_at[v.stop.id] = v.finish
    out.planning_s = time.perf_counter() - t0
    out.allocated = {rid: sum(v.values()) for rid, v in alloc.items()}
    return out


def _baseline_drone(
    sc: Scenario,
    t: DeliveryTask,
    site: CommunitySite,
    dstate: dict[str, list[float]],
    out: Outcome,
) -> bool:
    best = None
    for d in sc.drones:
        dist = math.dist(d.home, site.drop)
        spec: DroneSpec = d.spec
        e = estimate(spec, dist, dist, t.kg)
        if t.kg > spec.payload_kg or e.energy > 1 - spec.reserve_fraction:
            continue
        key = (dist, dstate[d.id][0], d.id)
        if best is None or key < best[0]:
            best = (key, d, e)
    if best is None:
        return False
    _, d, e = best
    ready, battery = dstate[d.id]
    start = ready
    if battery - e.energy < d.spec.reserve_fraction:
        start += d.spec.swap_s
        battery = 1.0
    out.delivered_at[t.id] = start + e.to_drop_s
    dstate[d.id] = [start + e.flight_s + d.spec.turnaround_s, battery - e.energy]
    return True


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    planning_s: float
    on_time: float
    """Share of all requests delivered (with what they were allocated) by the deadline."""
    on_time_urgent: float
    jain: float
    """Weighted Jain's index of the per-community on-time satisfied fraction."""
    allocation_jain: float
    """Mean weighted Jain's index of the allocation of the scarce SKUs."""
    boxes_on_time: int
    allocated: float
    """Share of requests allocated anything (the ceiling of the on-time share)."""


def measure(sc: Scenario, o: Outcome) -> Metrics:
    by_c_asked: dict[str, int] = defaultdict(int)
    by_c_ok: dict[str, int] = defaultdict(int)
    ok = ok_u = n_u = 0
    boxes_ok = 0
    for r in sc.requests:
        asked = sum(q for _, q in r.lines)
        by_c_asked[r.community_id] += asked
        when = o.delivered_at.get(r.id)
        on_time = when is not None and o.allocated.get(r.id, 0) > 0 and when <= r.deadline
        if r.priority is Priority.URGENT_MEDICAL:
            n_u += 1
            ok_u += on_time
        if on_time:
            ok += 1
            boxes_ok += o.allocated[r.id]
            by_c_ok[r.community_id] += o.allocated[r.id]
    cs = sorted(by_c_asked)
    jain = jain_index([by_c_ok[c] / by_c_asked[c] for c in cs], [sc.weights[c] for c in cs])
    return Metrics(
        planning_s=o.planning_s,
        on_time=ok / len(sc.requests),
        on_time_urgent=ok_u / n_u if n_u else 1.0,
        jain=jain,
        allocation_jain=statistics.fmean(o.allocation_jain) if o.allocation_jain else 1.0,
        boxes_on_time=boxes_ok,
        allocated=sum(1 for r in sc.requests if o.allocated.get(r.id, 0) > 0) / len(sc.requests),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.dispatch", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--communities", default="12,60")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=1.5, help="planning budget, seconds")
    args = ap.parse_args(argv)
    print(
        f"{args.requests} open requests, 5 vans, 20 drones, seed {args.seed}, planning "
        f"budget {args.budget:g} s (target: planning under 2 s)"
    )
    failed = False
    for n in (int(x) for x in args.communities.split(",")):
        sc = make_scenario(n, args.requests, args.seed)
        ours, plan = run_dispatcher(sc, args.budget, args.seed)
        base = run_baseline(sc)
        a, b = measure(sc, ours), measure(sc, base)
        print(
            f"\n{n} communities: {len(plan.stops)} van stops, "
            f"{len(plan.drones.sorties)} drone sorties, {len(plan.vans.trips)} van trips, "
            f"{len(plan.vans.unserved)} stops left for later, "
            f"{sum(1 for d in plan.decisions if d.kind == 'deadline')} deadline reports"
        )
        print(f"{'':34} {'dispatcher':>11} {'FCFS-nearest':>13} {'ratio':>7}")
        rows = [
            ("planning time, s", a.planning_s, b.planning_s),
            ("requests allocated stock", a.allocated, b.allocated),
            ("delivered before deadline", a.on_time, b.on_time),
            ("  urgent medical", a.on_time_urgent, b.on_time_urgent),
            ("boxes delivered before deadline", a.boxes_on_time, b.boxes_on_time),
            ("Jain's index, on-time fraction", a.jain, b.jain),
            ("Jain's index, allocation (scarce)", a.allocation_jain, b.allocation_jain),
        ]
        for label, x, y in rows:
            ratio = x / y if y else math.inf
            fx = f"{x:>11.3f}" if isinstance(x, float) else f"{x:>11d}"
            fy = f"{y:>13.3f}" if isinstance(y, float) else f"{y:>13d}"
            print(f"{label:34} {fx} {fy} {ratio:>7.2f}")
        failed = failed or a.planning_s >= 2.0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
