"""Airspace rules: flight legs that stay out of no-fly zones, and the geofence to upload.

PX4 checks uploaded waypoints against its fence but not the legs between them, so the service
checks legs itself and routes around no-fly zones. One router serves every mission kind
(drone deliveries through :func:`route_around`, broadcast transits through :func:`router_for`):

* the no-fly zones that apply at the flight altitude (a zone with a ceiling below it does not)
  are grown by a lateral margin; their union is the *blocked* airspace;
* a leg is *clear* when it does not touch the blocked airspace;
* a leg that is not clear is replaced by the shortest path in the visibility graph whose nodes
  are the corners of the grown zones pushed one metre further out (so that a path running along
  a grown edge keeps off it), found with Dijkstra's algorithm.

Routers are cached per world, altitude band (the set of zones that apply) and margin, and
remember which corners see each other, so planning many legs (a broadcast's transits, a
dispatcher round over many drones) builds the graph once. Everything runs in the world's local
metric frame.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import weakref
from collections.abc import Sequence

from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.prepared import PreparedGeometry, prep

from fleet.drone import FencePolygon, Geofence
from fleet.errors import PlanningError
from fleet.geo import LatLon
from fleet.world import NoFlyZone, World

XY = tuple[float, float]
"""A point in the local frame, metres."""

CORNER_CLEARANCE_M = 1.0
"""How far beyond the grown zones the graph's corners lie."""
CORNER_SIMPLIFY_M = 0.5
"""Tolerance of the simplification of the corner outlines (fewer nodes, still clear)."""


def zones_at(zones: Sequence[NoFlyZone], alt_m: float) -> list[NoFlyZone]:
    """The no-fly zones that apply at ``alt_m`` above ground."""
    return [z for z in zones if z.ceiling_m is None or alt_m <= z.ceiling_m]


class Router:
    """Shortest obstacle-free polylines around fixed obstacle polygons (local frame).

    ``obstacles`` are the zones already grown by the lateral margin. Building a router prepares
    the blocked airspace and the graph's corners; :meth:`path` memoises which corners see each
    other. A router is safe to share between threads (its memo is guarded).
    """

    def __init__(self, obstacles: Sequence[Polygon], margin_m: float | None = None) -> None:
        self.obstacles: tuple[Polygon, ...] = tuple(obstacles)
        self.margin_m = margin_m
        """The margin the obstacles were grown by, when known (for messages)."""
        self._blocked: BaseGeometry = (
            unary_union(list(self.obstacles)) if self.obstacles else Polygon()
        )
        self._prepared: PreparedGeometry = prep(self._blocked)
        corners: list[XY] = []
        for ob in self.obstacles:
            grown = ob.buffer(CORNER_CLEARANCE_M, join_style="mitre", mitre_limit=3.0).simplify(
                CORNER_SIMPLIFY_M
            )
            for part in getattr(grown, "geoms", [grown]):
                corners.extend((float(x), float(y)) for x, y in list(part.exterior.coords)[:-1])
        self.corners: tuple[XY, ...] = tuple(
            c for c in corners if not self._prepared.intersects(Point(c))
        )
        self._seen: dict[tuple[int, int], bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_zones(cls, zones: Sequence[NoFlyZone], alt_m: float, margin_m: float) -> Router:
        """A router around the zones that apply at ``alt_m``, grown by ``margin_m``."""
        if margin_m < 0:
            raise PlanningError("the no-fly margin must not be negative", margin_m=margin_m)
        return cls([z.polygon.buffer(margin_m) for z in zones_at(zones, alt_m)], margin_m)

    @property
    def blocked(self) -> BaseGeometry:
        """Union of the grown obstacles."""
        return self._blocked

    def clear(self, a: XY, b: XY) -> bool:
        """Whether the straight leg a→b keeps out of every obstacle."""
        if self._blocked.is_empty:
            return True
        geom = Point(a) if a == b else LineString([a, b])
        return not self._prepared.intersects(geom)

    def inside(self, p: XY) -> bool:
        """Whether ``p`` lies in the blocked airspace (on its outline counts as inside)."""
        return not self._blocked.is_empty and self._prepared.intersects(Point(p))

    def _corner_sees(self, i: int, j: int) -> bool:
        key = (i, j) if i < j else (j, i)
        with self._lock:
            seen = self._seen.get(key)
        if seen is None:
            seen = self.clear(self.corners[i], self.corners[j])
            with self._lock:
                self._seen[key] = seen
        return seen

    def path(self, a: XY, b: XY) -> list[XY]:
        """Shortest obstacle-free polyline from ``a`` to ``b`` (both included; just
        ``[a, b]`` when the straight leg is clear).

        Raises ``PlanningError`` when ``a`` or ``b`` lies in the blocked airspace or when no
        path exists.
        """
        if self.clear(a, b):
            return [a, b]
        for name, p in (("start", a), ("end", b)):
            if self.inside(p):
                within = (
                    f"within {self.margin_m:.0f} m of" if self.margin_m is not None else "inside"
                )
                raise PlanningError(f"the {name} point lies {within} a no-fly zone", point=name)
        # nodes: 0 = a, 1 = b, 2.. = corners
        corners = self.corners
        nodes: list[XY] = [a, b, *corners]

        def sees(i: int, j: int) -> bool:
            if i >= 2 and j >= 2:
                return self._corner_sees(i - 2, j - 2)
            return self.clear(nodes[i], nodes[j])

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
                if nd < dist.get(j, math.inf) and sees(i, j):
                    dist[j] = nd
                    prev[j] = i
                    heapq.heappush(heap, (nd, j))
        if 1 not in done:
            raise PlanningError("no flight path around the no-fly zones", start=a, end=b)
        out = [b]
        k = 1
        while k != 0:
            k = prev[k]
            out.append(nodes[k])
        out.reverse()
        out[0], out[-1] = a, b
        return out


_ROUTERS: weakref.WeakKeyDictionary[World, dict[tuple[tuple[str, ...], float], Router]] = (
    weakref.WeakKeyDictionary()
)
_ROUTERS_LOCK = threading.Lock()


def router_for(world: World, alt_m: float, margin_m: float) -> Router:
    """The (cached) router of ``world`` at ``alt_m`` with ``margin_m`` around every zone."""
    active = zones_at(world.no_fly_zones, alt_m)
    key = (tuple(z.id for z in active), float(margin_m))
    with _ROUTERS_LOCK:
        per_world = _ROUTERS.setdefault(world, {})
        router = per_world.get(key)
    if router is None:
        router = Router.for_zones(active, alt_m, margin_m)
        with _ROUTERS_LOCK:
            router = per_world.setdefault(key, router)
    return router


def route_around(
    world: World, a: LatLon, b: LatLon, *, alt_m: float = 0.0, margin_m: float = 20.0
) -> list[LatLon]:
    """Shortest polyline from ``a`` to ``b`` that keeps ``margin_m`` from every no-fly zone
    active at ``alt_m``: ``[a, ..., b]`` (just ``[a, b]`` when the straight leg is clear).

    Raises ``PlanningError`` if ``a`` or ``b`` lies inside an inflated zone or no path exists.
    """
    router = router_for(world, alt_m, margin_m)
    path = router.path(world.xy(a), world.xy(b))
    if len(path) == 2:
        return [a, b]
    return [a, *(world.latlon(x, y) for x, y in path[1:-1]), b]


def path_length(points: Sequence[XY]) -> float:
    """Length of a polyline in the local frame, metres."""
    return sum(math.dist(p, q) for p, q in itertools.pairwise(points))


def path_length_m(world: World, points: Sequence[LatLon]) -> float:
    """Length of a polyline of WGS84 points, measured in the local frame."""
    return path_length([world.xy(p) for p in points])


def check_legs(
    world: World, points: Sequence[LatLon], *, alt_m: float = 0.0
) -> list[tuple[int, str]]:
    """Every leg (index of its start) that crosses a no-fly zone, with the zone's id."""
    conflicts = []
    for i, (p, q) in enumerate(itertools.pairwise(points)):
        for z in world.leg_conflicts(p, q, alt_m=alt_m):
            conflicts.append((i, z.id))
    return conflicts


def world_geofence(world: World, flight_alt_m: float | None = None) -> Geofence:
    """The fence to upload to a drone: the operating area as inclusion, no-fly zones as
    exclusion.

    A zone without a ceiling is always in it. PX4 fences have no floor or ceiling per polygon,
    so a zone with a ceiling is uploaded only for a flight that must keep out of it at every
    altitude it may take (``flight_alt_m``, its highest: the zone applies at or below its
    ceiling, as :meth:`fleet.world.World.leg_conflicts` says, and the drone climbs and
    descends over its pad). A zone the flight may overfly is left to the planner, which keeps
    legs below its ceiling out of it. Without ``flight_alt_m``: unlimited zones only.
    """
    polys = [FencePolygon(vertices=_open_ring(world.boundary), inclusion=True)]
    polys += [
        FencePolygon(vertices=_open_ring(z.boundary), inclusion=False)
        for z in world.no_fly_zones
        if z.ceiling_m is None or (flight_alt_m is not None and flight_alt_m <= z.ceiling_m)
    ]
    return Geofence(polygons=tuple(polys))


def _open_ring(ring: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    pts = tuple(ring)
    return pts[:-1] if len(pts) > 1 and pts[0] == pts[-1] else pts
