"""Airspace rules: flight legs that stay out of no-fly zones, and the geofence to upload.

PX4 checks uploaded waypoints against its fence but not the legs between them, so the service
checks legs itself and routes around no-fly zones: a shortest path in the visibility graph of the
zones' outlines, inflated by a lateral margin. Everything runs in the world's local metric frame.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence

from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union
from shapely.prepared import prep

from fleet.drone import FencePolygon, Geofence
from fleet.errors import PlanningError
from fleet.geo import LatLon
from fleet.world import World

_EPS = 0.05
"""Metres by which obstacles are shrunk for visibility tests (a leg may graze an outline)."""


def route_around(
    world: World, a: LatLon, b: LatLon, *, alt_m: float = 0.0, margin_m: float = 20.0
) -> list[LatLon]:
    """Shortest polyline from ``a`` to ``b`` that keeps ``margin_m`` from every no-fly zone
    active at ``alt_m``: ``[a, ..., b]`` (just ``[a, b]`` when the straight leg is clear).

    Raises ``PlanningError`` if ``a`` or ``b`` lies inside an inflated zone or no path exists.
    """
    zones = [z.polygon for z in world.no_fly_zones if z.ceiling_m is None or alt_m <= z.ceiling_m]
    if not zones:
        return [a, b]
    inflated = unary_union([z.buffer(margin_m, quad_segs=4) for z in zones])
    blocked = prep(inflated.buffer(-_EPS))
    pa, pb = world.xy(a), world.xy(b)
    for name, p in (("start", pa), ("end", pb)):
        if blocked.contains(Point(p)):
            raise PlanningError(
                f"the {name} point lies within {margin_m:.0f} m of a no-fly zone", point=name
            )
    if not blocked.intersects(LineString([pa, pb])):
        return [a, b]
    polys: list[Polygon] = list(getattr(inflated, "geoms", [inflated]))
    corners = [c for poly in polys for c in list(poly.exterior.coords)[:-1]]
    nodes: list[tuple[float, float]] = [pa, pb, *corners]

    def visible(i: int, j: int) -> bool:
        return not blocked.intersects(LineString([nodes[i], nodes[j]]))

    dist = {0: 0.0}
    prev: dict[int, int] = {}
    heap = [(0.0, 0)]
    done: set[int] = set()
    while heap:
        d, i = heapq.heappop(heap)
        if i in done:
            continue
        done.add(i)
        if i == 1:
            break
        for j in range(len(nodes)):
            if j in done or j == i:
                continue
            nd = d + math.dist(nodes[i], nodes[j])
            if nd < dist.get(j, math.inf) and visible(i, j):
                dist[j] = nd
                prev[j] = i
                heapq.heappush(heap, (nd, j))
    if 1 not in done:
        raise PlanningError("no flight path around the no-fly zones")
    path = [1]
    while path[-1] != 0:
        path.append(prev[path[-1]])
    path.reverse()
    return [a, *(world.latlon(*nodes[k]) for k in path[1:-1]), b]


def path_length_m(world: World, points: Sequence[LatLon]) -> float:
    """Length of a polyline in the local frame."""
    xy = [world.xy(p) for p in points]
    return sum(math.dist(p, q) for p, q in itertools.pairwise(xy))


def check_legs(
    world: World, points: Sequence[LatLon], *, alt_m: float = 0.0
) -> list[tuple[int, str]]:
    """Every leg (index of its start) that crosses a no-fly zone, with the zone's id."""
    conflicts = []
    for i, (p, q) in enumerate(itertools.pairwise(points)):
        for z in world.leg_conflicts(p, q, alt_m=alt_m):
            conflicts.append((i, z.id))
    return conflicts


def world_geofence(world: World) -> Geofence:
    """The fence to upload to drones: the operating area as inclusion, no-fly zones as exclusion.

    Zones with a ceiling are not uploaded (PX4 fences have no floor/ceiling per polygon); the
    planner keeps legs out of them instead.
    """
    polys = [FencePolygon(vertices=_open_ring(world.boundary), inclusion=True)]
    polys += [
        FencePolygon(vertices=_open_ring(z.boundary), inclusion=False)
        for z in world.no_fly_zones
        if z.ceiling_m is None
    ]
    return Geofence(polygons=tuple(polys))


def _open_ring(ring: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    pts = tuple(ring)
    return pts[:-1] if len(pts) > 1 and pts[0] == pts[-1] else pts
