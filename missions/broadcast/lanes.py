"""Boustrophedon lanes over a polygon in the local frame: the path a broadcast drone sweeps.

Lanes are parallel straight lines at most ``max_spacing`` metres apart (twice the audible
radius), laid along the long side of the polygon's minimum rotated rectangle so that there are
as few lanes and turns as possible. ``k = ceil(width / max_spacing)`` lanes are spread evenly
across the polygon, each in the middle of a strip ``width / k`` wide, so that no point is
further than half a strip across from a lane line (and no lane hugs the boundary). Each line
is clipped to the *flyable* part of the polygon (the polygon shrunk by a boundary margin, minus
no-fly zones); a concave polygon or a no-fly zone cuts a lane into several segments. Segments
are then ordered into a route: lane by lane across the polygon, alternating direction (the
boustrophedon, "as the ox ploughs"), segments of one lane in order along it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shapely import affinity
from shapely.geometry import LineString, MultiLineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

MIN_SEGMENT_M = 0.5
"""Shorter clipped pieces are kept as single points (a hover station)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A straight piece of lane to fly from ``start`` to ``end`` (local metres)."""

    lane: int
    start: tuple[float, float]
    end: tuple[float, float]

    @property
    def length(self) -> float:
        return math.dist(self.start, self.end)

    def reversed(self) -> Segment:
        return Segment(self.lane, self.end, self.start)


def sweep_angle(polygon: Polygon) -> float:
    """Direction of the lanes, radians counter-clockwise from east: the long side of the
    minimum rotated rectangle."""
    rect = polygon.minimum_rotated_rectangle
    if not isinstance(rect, Polygon):
        # degenerate: a line or a point
        coords = list(rect.coords)
        if len(coords) < 2:
            return 0.0
        (x0, y0), (x1, y1) = coords[0], coords[-1]
        return math.atan2(y1 - y0, x1 - x0)
    c = list(rect.exterior.coords)
    e1 = (c[1][0] - c[0][0], c[1][1] - c[0][1])
    e2 = (c[2][0] - c[1][0], c[2][1] - c[1][1])
    e = e1 if math.hypot(*e1) >= math.hypot(*e2) else e2
    return math.atan2(e[1], e[0])


def lane_offsets(width: float, max_spacing: float) -> list[float]:
    """Across-lane offsets (from the polygon's low edge) of the lanes: ``k = ceil(width /
    max_spacing)`` lanes spread evenly, each in the middle of its strip of ``width / k``."""
    k = max(1, math.ceil(width / max_spacing - 1e-9))
    step = width / k
    return [step * (i + 0.5) for i in range(k)]


def across_width(polygon: Polygon, angle: float) -> float:
    """Extent of ``polygon`` across lanes running at ``angle``."""
    rot = affinity.rotate(polygon, -math.degrees(angle), origin=polygon.centroid)
    return float(rot.bounds[3] - rot.bounds[1])


def lane_spacing(polygon: Polygon, max_spacing: float, angle: float) -> float:
    """Distance between neighbouring lanes (at most ``max_spacing``)."""
    width = across_width(polygon, angle)
    return width / max(1, math.ceil(width / max_spacing - 1e-9))


def lane_segments(
    polygon: Polygon, flyable: BaseGeometry, max_spacing: float, angle: float | None = None
) -> list[list[Segment]]:
    """Lane segments over ``polygon`` clipped to ``flyable``, one list per lane, each list in
    order along the lane direction."""
    spacing = max_spacing
    if spacing <= 0:
        raise ValueError("lane spacing must be positive")
    theta = sweep_angle(polygon) if angle is None else angle
    origin = polygon.centroid
    deg = math.degrees(theta)
    # rotate so that lanes run along the x axis
    rot_poly = affinity.rotate(polygon, -deg, origin=origin)
    rot_fly = affinity.rotate(flyable, -deg, origin=origin)
    minx, miny, maxx, maxy = rot_poly.bounds
    lanes: list[list[Segment]] = []
    for i, off in enumerate(lane_offsets(maxy - miny, spacing)):
        y = miny + off
        line = LineString([(minx - 10.0, y), (maxx + 10.0, y)])
        pieces = _pieces(line.intersection(rot_fly))
        segs: list[Segment] = []
        for piece in sorted(pieces, key=lambda g: g.bounds[0]):
            back = affinity.rotate(piece, deg, origin=origin)
            if isinstance(back, Point):
                p = (back.x, back.y)
                segs.append(Segment(i, p, p))
                continue
            coords = list(back.coords)
            a, b = coords[0], coords[-1]
            # order along the lane direction
            if (b[0] - a[0]) * math.cos(theta) + (b[1] - a[1]) * math.sin(theta) < 0:
                a, b = b, a
            if math.dist(a, b) < MIN_SEGMENT_M:
                mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
                segs.append(Segment(i, mid, mid))
            else:
                segs.append(Segment(i, (a[0], a[1]), (b[0], b[1])))
        if segs:
            lanes.append(segs)
    return lanes


def _pieces(geom: BaseGeometry) -> list[LineString | Point]:
    if geom.is_empty:
        return []
    if isinstance(geom, LineString | Point):
        return [geom]
    if isinstance(geom, MultiLineString):
        return list(geom.geoms)
    out: list[LineString | Point] = []
    for g in getattr(geom, "geoms", []):
        out.extend(_pieces(g))
    return out


def boustrophedon(lanes: list[list[Segment]]) -> list[Segment]:
    """Segments in sweep order: lane by lane, alternating direction."""
    route: list[Segment] = []
    for n, lane in enumerate(lanes):
        if n % 2 == 0:
            route.extend(lane)
        else:
            route.extend(s.reversed() for s in reversed(lane))
    return route
