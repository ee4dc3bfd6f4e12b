"""Crossing deliveries and the separation the recorded telemetry shows.

:func:`crossing_world` writes a world file for the deconfliction scenario: a 1.2 km square
street with two warehouses at opposite corners (10 pads each, 40 m apart) and ten communities,
five along the north edge and five along the south edge, so that deliveries from the south-west
warehouse to the north and from the north-east warehouse to the south cross in the middle.

:class:`TelemetryRecorder` samples where every drone is, as the service hears it (its registry,
fed by MAVLink telemetry) or as the simulator knows it (ground truth), at a fixed world
interval; :func:`closest_approach` finds the pair of airborne drones that came closest in that
record, interpolating between samples.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.clock import Clock
from fleet.geo import LocalFrame
from fleet.registry import VehicleRegistry
from fleet.vehicle import LandedState, VehicleKind
from fleet.world import World

ORIGIN = (22.60, 114.10)
"""(lat, lon) of the crossing world's south-west corner."""
SIZE_M = 1200.0
NORTH_COMMUNITIES = tuple(f"N{i}" for i in range(1, 6))
"""Served from W1 (south-west)."""
SOUTH_COMMUNITIES = tuple(f"S{i}" for i in range(1, 6))
"""Served from W2 (north-east)."""


def crossing_world(path: Path, pads_per_warehouse: int = 10) -> Path:
    """Write the crossing world (see the module) to ``path``; returns it."""
    frame = LocalFrame(*ORIGIN)

    def ll(x: float, y: float) -> list[float]:
        lat, lon = frame.to_latlon(x, y)
        return [round(lon, 7), round(lat, 7)]

    def point(kind: str, ident: str | None, x: float, y: float, **props: Any) -> dict[str, Any]:
        f: dict[str, Any] = {
            "type": "Feature",
            "properties": {"kind": kind, **props},
            "geometry": {"type": "Point", "coordinates": ll(x, y)},
        }
        if ident is not None:
            f["id"] = ident
        return f

    def square(x0: float, y0: float, w: float, h: float) -> list[list[list[float]]]:
        ring = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h), (x0, y0)]
        return [[ll(x, y) for x, y in ring]]

    s = SIZE_M
    feats: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "id": "area",
            "properties": {"kind": "operating_area", "name": "Crossing Street"},
            "geometry": {"type": "Polygon", "coordinates": square(0, 0, s, s)},
        }
    ]
    corners = [(40, 40), (s - 40, 40), (s - 40, s - 40), (40, s - 40)]
    for i, (a, b) in enumerate(itertools.pairwise([*corners, corners[0]])):
        feats.append(
            {
                "type": "Feature",
                "id": f"R{i + 1}",
                "properties": {"kind": "road", "name": f"Ring road {i + 1}", "speed_limit_kmh": 40},
                "geometry": {"type": "LineString", "coordinates": [ll(*a), ll(*b)]},
            }
        )
    warehouses = {"W1": (150.0, 150.0, 60.0, +1), "W2": (s - 150, s - 150, s - 60, -1)}
    for wid, (wx, wy, dock_y, sign) in warehouses.items():
        feats.append(point("warehouse", wid, wx, wy, name=f"Depot {wid}"))
        feats.append(point("dock", None, wx, dock_y, warehouse=wid))
        for k in range(pads_per_warehouse):
            col, row = k % 5, k // 5
            px = wx - sign * 50 + sign * 40 * col
            py = wy + sign * 50 + sign * 40 * row
            feats.append(
                point(
                    "pad",
                    f"{wid}-P{k + 1}",
                    px,
                    py,
                    warehouse=wid,
                    ground_alt_m=5.0,
                    name=f"{wid} pad {k + 1}",
                )
            )
    for ids, y0, gate_y in ((NORTH_COMMUNITIES, s - 140, s - 55), (SOUTH_COMMUNITIES, 70, 55)):
        for j, cid in enumerate(ids):
            x0 = (400.0 if ids is NORTH_COMMUNITIES else 290.0) + 110 * j
            feats.append(
                {
                    "type": "Feature",
                    "id": cid,
                    "properties": {
                        "kind": "community",
                        "name": f"Community {cid}",
                        "population": 1000,
                        "vulnerable_households": 10,
                    },
                    "geometry": {"type": "Polygon", "coordinates": square(x0, y0, 70, 70)},
                }
            )
            feats.append(point("gate", None, x0 + 35, gate_y, community=cid))
            feats.append(point("drop_point", None, x0 + 35, y0 + 35, community=cid))
    doc = {
        "type": "FeatureCollection",
        "properties": {
            "name": "Crossing Street (test world)",
            "version": 1,
            "map_id": "crossing",
            "origin": [ORIGIN[1], ORIGIN[0]],
            "max_altitude_m": 120,
        },
        "features": feats,
    }
    path.write_text(json.dumps(doc, indent=1))
    return path


Sample = tuple[float, float, float, bool]
"""x, y (local frame, m), altitude above ground (m), airborne."""


@dataclass
class TelemetryRecorder:
    """Samples every drone's position every ``interval_s`` world seconds while running."""

    clock: Clock
    source: Callable[[], dict[str, Sample]]
    interval_s: float = 0.5
    times: list[float] = field(default_factory=list)
    rows: list[dict[str, Sample]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            self.times.append(self.clock.time())
            self.rows.append(self.source())
            await self.clock.sleep(self.interval_s)


def registry_source(registry: VehicleRegistry, world: World) -> Callable[[], dict[str, Sample]]:
    """Where the service's registry says every drone is (MAVLink telemetry)."""

    def sample() -> dict[str, Sample]:
        out: dict[str, Sample] = {}
        for e in registry:
            st = e.status
            if e.info.kind != VehicleKind.DRONE or st.position is None:
                continue
            x, y = world.frame.to_xy(st.position.lat, st.position.lon)
            airborne = st.landed not in (LandedState.ON_GROUND, LandedState.UNKNOWN) or (
                st.position.rel_alt > 1.0
            )
            out[e.info.id] = (x, y, st.position.rel_alt, airborne)
        return out

    return sample


@dataclass(frozen=True)
class Approach:
    """The closest two airborne drones came, in the separation's terms."""

    a: str
    b: str
    at: float
    horizontal_m: float
    vertical_m: float
    samples: int
    pairs_checked: int

    def violates(self, horizontal_m: float, vertical_m: float) -> bool:
        return self.horizontal_m < horizontal_m and self.vertical_m < vertical_m


def closest_approach(
    rec: TelemetryRecorder, horizontal_m: float, vertical_m: float, substeps: int = 4
) -> Approach | None:
    """The pair of airborne drones with the smallest horizontal distance while less than
    ``vertical_m`` apart vertically (a violation of the separation when also under
    ``horizontal_m``), positions interpolated linearly between samples."""
    best: Approach | None = None
    checked = 0
    for (t0, r0), (t1, r1) in itertools.pairwise(zip(rec.times, rec.rows, strict=True)):
        both = sorted(set(r0) & set(r1))
        for a, b in itertools.combinations(both, 2):
            if not (r0[a][3] or r1[a][3]) or not (r0[b][3] or r1[b][3]):
                continue
            checked += 1
            for k in range(substeps + 1):
                u = k / substeps
                pa = [r0[a][i] + (r1[a][i] - r0[a][i]) * u for i in range(3)]
                pb = [r0[b][i] + (r1[b][i] - r0[b][i]) * u for i in range(3)]
                h = math.hypot(pa[0] - pb[0], pa[1] - pb[1])
                v = abs(pa[2] - pb[2])
                if v >= vertical_m:
                    continue
                if best is None or h < best.horizontal_m:
                    best = Approach(a, b, t0 + (t1 - t0) * u, h, v, len(rec.times), 0)
    if best is None:
        return None
    return Approach(
        best.a, best.b, best.at, best.horizontal_m, best.vertical_m, len(rec.times), checked
    )


def recording(rec: TelemetryRecorder) -> asyncio.Task[None]:
    """Start sampling in a task (cancel it to stop)."""
    return asyncio.get_running_loop().create_task(rec.run())
