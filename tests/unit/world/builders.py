"""Small hand-built world files and road sets for the world tests, laid out in metres.

``minimal()`` is a valid street 600 m x 400 m around (22.5 N, 114.0 E)::

            y
     200 +----------------------------------------------+
         |  NFZ1                 |   C1 (50..250, 20..180)|
         |  (-250..-150,50..150) R2      gate (150, 8)   |
       0 |=========== R1 (two-way, y = 0) ===============|
         |   dock (-200, -8)     |   gate (150, -8)      |
         |  W1 (-200,-100)       |   C2 (50..250, -180..-20)
         |  pads (-220,-120), (-210,-120)                |
    -200 +----------------------------------------------+
        -300                     0                      300  x

Tests copy it, break one thing and check the loader names that feature and reason.
"""

from __future__ import annotations

import copy
from typing import Any

from shapely.geometry import LineString

from fleet.geo import LocalFrame
from fleet.world import Road

ORIGIN = (22.5, 114.0)
FRAME = LocalFrame(*ORIGIN)

XY = tuple[float, float]


def pos(x: float, y: float, frame: LocalFrame = FRAME) -> list[float]:
    """GeoJSON [lon, lat] of local point (x, y)."""
    lat, lon = frame.to_latlon(x, y)
    return [round(lon, 8), round(lat, 8)]


def point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": pos(x, y)}


def polygon(*pts: XY) -> dict[str, Any]:
    ring = [pos(*p) for p in pts]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return polygon((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def line(*pts: XY) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [pos(*p) for p in pts]}


def feature(kind: str, geometry: Any, fid: str | None = None, **props: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"type": "Feature"}
    if fid is not None:
        f["id"] = fid
    f["properties"] = {"kind": kind, **props}
    f["geometry"] = geometry
    return f


def minimal() -> dict[str, Any]:
    """A valid world (see the module docstring); a fresh copy each call."""
    features = [
        feature("operating_area", rect(-300, -200, 300, 200), "area", name="Test street"),
        feature("warehouse", point(-200, -100), "W1", name="Depot"),
        feature("dock", point(-200, -8), warehouse="W1"),
        feature("pad", point(-220, -120), "P1", warehouse="W1", ground_alt_m=5.0),
        feature("pad", point(-210, -120), "P2", warehouse="W1", ground_alt_m=5.0),
        feature(
            "community",
            rect(50, 20, 250, 180),
            "C1",
            name="North Garden",
            name_zh="北苑",
            population=3000,
            vulnerable_households=40,
        ),
        feature("gate", point(150, 8), community="C1"),
        feature("drop_point", point(150, 100), community="C1"),
        feature(
            "community",
            rect(50, -180, 250, -20),
            "C2",
            name="South Garden",
            population=2500,
            vulnerable_households=0,
        ),
        feature("gate", point(150, -8), community="C2"),
        feature("drop_point", point(150, -100), community="C2"),
        feature("no_fly_zone", rect(-250, 50, -150, 150), "NFZ1", name="Clinic roof"),
        feature("road", line((-290, 0), (290, 0)), "R1", name="Main Road", speed_limit_kmh=40),
        feature("road", line((0, -190), (0, 190)), "R2", name="Cross Street"),
    ]
    return {
        "type": "FeatureCollection",
        "properties": {"name": "Minimal", "map_id": "minimal", "origin": pos(0, 0)},
        "features": copy.deepcopy(features),
    }


def index_of(data: dict[str, Any], fid: str) -> int:
    """Index of the feature with id ``fid``."""
    return next(i for i, f in enumerate(data["features"]) if f.get("id") == fid)


def attached(data: dict[str, Any], kind: str, owner: str) -> int:
    """Index of the ``kind`` feature (gate, drop_point, dock) that names ``owner``."""
    key = "warehouse" if kind == "dock" else "community"
    return next(
        i
        for i, f in enumerate(data["features"])
        if f["properties"].get("kind") == kind and f["properties"].get(key) == owner
    )


def road(
    rid: str,
    *pts: XY,
    oneway: bool = False,
    layer: int = 0,
    speed: float = 30.0,
    frame: LocalFrame = FRAME,
) -> Road:
    """A Road from local points, as the loader would build it."""
    return Road(
        id=rid,
        name=rid,
        points=tuple(frame.to_latlon(x, y) for x, y in pts),
        line=LineString(pts),
        speed_limit_kmh=speed,
        oneway=oneway,
        layer=layer,
    )
