"""A generated, seeded street and its day of delivery requests, for ``bench.dispatch``.

Pure: a world file (GeoJSON, read by the service's own loader) and a list of requests from a
seed; nothing here touches a store.

**The street** (:func:`street_geojson`): a square grid of two-way roads :data:`CELL_M` apart;
one warehouse in the middle of the grid, with its dock on a road and its drone pads in a yard
beside it; one community in each other grid cell, nearest to the warehouse first (12
communities fill a 4 x 4 grid around the 2 x 2 warehouse block, 60 an 8 x 8 grid, about
1.5 and 3.4 km across). Each community is its cell less 20 m on every side, its gate 8 m from
the road to its south, its drop point in its middle; population log-normal around 3,000 (600 to
12,000), vulnerable households 2 to 7 % of its people / 2.5.

**The day** (:func:`day_of_requests`): ``n`` delivery requests. A ``backlog`` share came in
overnight and is approved at the shift start; the rest arrive through the shift's first six
hours at a steady (Poisson) rate. Each is due 5 h after its approval (the service's default).
Communities ask in proportion to their population. Classes and loads: 10 % urgent medical (one
line: medicine 1 to 10 packs, or antigen test kits 5 to 40), 25 % vulnerable residents (1 to 3
food parcels, and medicine 1 to 5 packs in 40 % of them), 65 % standard (one or two lines of
masks, protective suits, alcohol, face shields or gloves, 1 to 6 cartons each).

**The stock** (:func:`deliveries`): the warehouse receives the other SKUs at the start, 1.2
times what the day asks. The scarce SKUs (:data:`SCARCE`) come in tranches, as supplies did
during the lockdown: at the start, their share of what the backlog asks, then every
:data:`RESTOCK_EVERY_S` their share of what arrived since the last tranche. So every tranche
is short of the requests waiting for it, and how it is shared (the service's weighted max-min
with priority classes, or first come first served) decides who gets it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleet.geo import LocalFrame
from missions.states import Priority

ORIGIN = (22.5, 114.05)
"""(lat, lon) of the grid's centre."""
CELL_M = 420.0
"""Distance between parallel roads."""
INSET_M = 20.0
"""A community's boundary stays this far from the roads around its cell."""
PAD_SPACING_M = 6.0
MAX_PADS = 64

SCARCE: dict[str, float] = {
    "protective_suit": 0.55,
    "alcohol": 0.7,
    "test_kit": 0.8,
    "medicine": 0.9,
}
"""Stock received as a share of what is asked, for the scarce SKUs (others: 1.2)."""
RESTOCK_EVERY_S = 2 * 3600.0
"""Seconds between two tranches of the scarce SKUs."""

UNITS_PER_BOX: dict[str, int] = {
    "mask": 500,
    "protective_suit": 20,
    "alcohol": 24,
    "face_shield": 100,
    "gloves": 500,
}
"""Carton sizes of the standard SKUs (``missions.catalogue``): standard lines ask whole cartons."""


@dataclass(frozen=True, slots=True)
class DayRequest:
    """One request of the day."""

    community_id: str
    priority: Priority
    at: float
    """Seconds after the shift start when it is approved (0 for the overnight backlog)."""
    lines: tuple[tuple[str, int], ...]
    """(SKU id, units)."""


def grid_side(n_communities: int) -> int:
    """Cells per side: the smallest even side whose cells hold the 2 x 2 warehouse block and
    ``n_communities``."""
    k = 2
    while k * k - 4 < n_communities:
        k += 2
    return k


def street_geojson(n_communities: int, seed: int, pads: int = 16) -> dict[str, Any]:
    """The street as a world file (see the module docstring)."""
    if n_communities < 1:
        raise ValueError("at least one community")
    rng = np.random.default_rng(seed)
    frame = LocalFrame(*ORIGIN)
    k = grid_side(n_communities)
    half = k * CELL_M / 2

    def pos(x: float, y: float) -> list[float]:
        lat, lon = frame.to_latlon(x, y)
        return [round(lon, 8), round(lat, 8)]

    def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
        ring = [pos(x0, y0), pos(x1, y0), pos(x1, y1), pos(x0, y1)]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    def point(x: float, y: float) -> dict[str, Any]:
        return {"type": "Point", "coordinates": pos(x, y)}

    features: list[dict[str, Any]] = []

    def add(fid: str | None, props: dict[str, Any], geometry: dict[str, Any]) -> None:
        f: dict[str, Any] = {"type": "Feature", "properties": props, "geometry": geometry}
        if fid is not None:
            f["id"] = fid
        features.append(f)

    m = 60.0
    add("area", {"kind": "operating_area", "name": "Bench street"}, rect(-half - m, -half - m,
        half + m, half + m))  # fmt: skip
    # warehouse in the north-east cell of the central block, dock 8 m off the east-west road
    add("W1", {"kind": "warehouse", "name": "Bench depot"}, point(120.0, 120.0))
    add(None, {"kind": "dock", "warehouse": "W1"}, point(120.0, 8.0))
    n_pads = max(1, min(pads, MAX_PADS))
    cols = math.ceil(math.sqrt(n_pads))
    for p in range(n_pads):
        px, py = 180.0 + PAD_SPACING_M * (p % cols), 180.0 + PAD_SPACING_M * (p // cols)
        add(
            f"W1-P{p + 1}",
            {"kind": "pad", "warehouse": "W1", "ground_alt_m": 5.0},
            point(px, py),
        )
    cells = [
        (i, j)
        for i in range(k)
        for j in range(k)
        if not (k // 2 - 1 <= i <= k // 2 and k // 2 - 1 <= j <= k // 2)
    ]

    def centre(c: tuple[int, int]) -> tuple[float, float]:
        return ((c[0] + 0.5) * CELL_M - half, (c[1] + 0.5) * CELL_M - half)

    cells.sort(key=lambda c: (math.hypot(*centre(c)), c))
    pop = np.clip(rng.lognormal(math.log(3000), 0.5, n_communities), 600, 12000).astype(int)
    vul = (pop * rng.uniform(0.02, 0.07, n_communities) / 2.5).astype(int)
    for n, cell in enumerate(cells[:n_communities]):
        cx, cy = centre(cell)
        x0, y0 = cx - CELL_M / 2 + INSET_M, cy - CELL_M / 2 + INSET_M
        x1, y1 = cx + CELL_M / 2 - INSET_M, cy + CELL_M / 2 - INSET_M
        cid = f"C{n + 1:02d}"
        add(
            cid,
            {
                "kind": "community",
                "name": f"Community {n + 1}",
                "population": int(pop[n]),
                "vulnerable_households": int(vul[n]),
            },
            rect(x0, y0, x1, y1),
        )
        add(None, {"kind": "gate", "community": cid}, point(cx, y0 - INSET_M + 8.0))
        add(None, {"kind": "drop_point", "community": cid}, point(cx, cy))
    for r in range(k + 1):
        c = r * CELL_M - half
        add(f"EW{r}", {"kind": "road", "name": f"East-west {r}"}, _line(pos, (-half, c),
            (half, c)))  # fmt: skip
        add(f"NS{r}", {"kind": "road", "name": f"North-south {r}"}, _line(pos, (c, -half),
            (c, half)))  # fmt: skip
    return {
        "type": "FeatureCollection",
        "properties": {
            "name": f"Bench street, {n_communities} communities (seed {seed})",
            "map_id": "bench",
            "origin": [ORIGIN[1], ORIGIN[0]],
            "version": 1,
        },
        "features": features,
    }


def _line(pos: Any, a: tuple[float, float], b: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [pos(*a), pos(*b)]}


def day_of_requests(
    populations: Mapping[str, int],
    n: int,
    seed: int,
    *,
    backlog: float = 0.4,
    arrivals_s: float = 6 * 3600.0,
) -> list[DayRequest]:
    """The day's requests, in approval order (see the module docstring)."""
    rng = np.random.default_rng(seed + 1)
    ids = sorted(populations)
    pop = np.array([populations[c] for c in ids], dtype=float)
    p = pop / pop.sum()
    n_backlog = round(n * backlog)
    times = [0.0] * n_backlog + sorted(
        float(t) for t in rng.uniform(0.0, arrivals_s, n - n_backlog)
    )
    out: list[DayRequest] = []
    for t in times:
        cid = ids[int(rng.choice(len(ids), p=p))]
        u = rng.uniform()
        lines: list[tuple[str, int]]
        if u < 0.10:
            prio = Priority.URGENT_MEDICAL
            if rng.uniform() < 0.5:
                lines = [("medicine", int(rng.integers(1, 11)))]
            else:
                lines = [("test_kit", int(rng.integers(5, 41)))]
        elif u < 0.35:
            prio = Priority.VULNERABLE
            lines = [("food_box", int(rng.integers(1, 4)))]
            if rng.uniform() < 0.4:
                lines.append(("medicine", int(rng.integers(1, 6))))
        else:
            prio = Priority.STANDARD
            picks = rng.choice(sorted(UNITS_PER_BOX), int(rng.integers(1, 3)), replace=False)
            lines = [(str(s), UNITS_PER_BOX[str(s)] * int(rng.integers(1, 7))) for s in picks]
        out.append(DayRequest(cid, prio, t, tuple(lines)))
    return out


def deliveries(
    requests: Sequence[DayRequest], every_s: float = RESTOCK_EVERY_S
) -> list[tuple[float, dict[str, int]]]:
    """What the warehouse receives when: ``(seconds after the shift start, units per SKU)``, in
    time order, the first at 0 (see the module docstring)."""
    asked_all: dict[str, int] = defaultdict(int)
    for r in requests:
        for sku, q in r.lines:
            asked_all[sku] += q
    first = {sku: math.floor(q * 1.2) for sku, q in asked_all.items() if sku not in SCARCE}
    last = max((r.at for r in requests), default=0.0)
    tranches: list[tuple[float, dict[str, int]]] = []
    t = 0.0
    while True:
        window = [r for r in requests if (r.at <= t if t == 0.0 else t - every_s < r.at <= t)]
        asked: dict[str, int] = defaultdict(int)
        for r in window:
            for sku, q in r.lines:
                if sku in SCARCE:
                    asked[sku] += q
        units = {sku: math.floor(q * SCARCE[sku]) for sku, q in asked.items()}
        if t == 0.0:
            units = {**first, **units}
        units = {sku: q for sku, q in sorted(units.items()) if q > 0}
        if units:
            tranches.append((t, units))
        if t >= last:
            return tranches
        t += every_s
