"""Shortest paths around no-fly zones in the local frame, for a broadcast drone's transits.

A transit (pad to first lane, lane to lane, last lane home) is a straight leg when that leg
keeps ``margin`` metres from every no-fly zone that applies at the flight altitude. Otherwise
it follows the shortest path on the visibility graph whose nodes are the corners of the zones
grown by the margin (plus one metre so that legs along a grown edge do not graze it).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.prepared import PreparedGeometry, prep

from fleet.errors import PlanningError
from fleet.world import NoFlyZone

XY = tuple[float, float]
"""A point in the local frame, metres."""


def zones_at(zones: Sequence[NoFlyZone], alt_m: float) -> list[NoFlyZone]:
    """The no-fly zones that apply at ``alt_m`` above ground."""
    return [z for z in zones if z.ceiling_m is None or alt_m <= z.ceiling_m]


@dataclass
class Router:
    """Shortest legs around a fixed set of obstacle polygons (local frame)."""

    obstacles: Sequence[Polygon]
    """No-fly zones, already grown by the lateral margin."""
    _blocked: BaseGeometry = field(init=False, repr=False)
    _prepared: PreparedGeometry = field(init=False, repr=False)
    _corners: list[XY] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._blocked = unary_union(list(self.obstacles)) if self.obstacles else Polygon()
        self._prepared = prep(self._blocked)
        corners: list[XY] = []
        for ob in self.obstacles:
            grown = ob.buffer(1.0, join_style="mitre", mitre_limit=3.0).simplify(0.5)
            parts = getattr(grown, "geoms", [grown])
            for part in parts:
                corners.extend((x, y) for x, y in list(part.exterior.coords)[:-1])
        self._corners = [c for c in corners if not self._prepared.contains(Point(c))]

    @classmethod
    def for_zones(cls, zones: Sequence[NoFlyZone], alt_m: float, margin_m: float) -> Router:
        return cls([z.polygon.buffer(margin_m) for z in zones_at(zones, alt_m)])

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

    def path(self, a: XY, b: XY) -> list[XY]:
        """Shortest obstacle-free polyline from ``a`` to ``b`` (both included)."""
        if self.clear(a, b):
            return [a, b]
        for name, p in (("start", a), ("end", b)):
            if self._prepared.contains(Point(p)):
                raise PlanningError(
                    f"the transit {name} point lies inside a no-fly zone (or its margin)",
                    point=p,
                )
        nodes = [a, b, *self._corners]
        dist = {0: 0.0}
        prev: dict[int, int] = {}
        queue = [(0.0, 0)]
        done: set[int] = set()
        while queue:
            d, i = heapq.heappop(queue)
            if i in done:
                continue
            done.add(i)
            if i == 1:
                break
            for j in range(len(nodes)):
                if j in done or j == i:
                    continue
                nd = d + math.dist(nodes[i], nodes[j])
                if nd < dist.get(j, math.inf) and self.clear(nodes[i], nodes[j]):
                    dist[j] = nd
                    prev[j] = i
                    heapq.heappush(queue, (nd, j))
        if 1 not in dist:
            raise PlanningError("no path around the no-fly zones", start=a, end=b)
        out = [b]
        k = 1
        while k != 0:
            k = prev[k]
            out.append(nodes[k])
        return out[::-1]


def path_length(points: Sequence[XY]) -> float:
    return sum(math.dist(p, q) for p, q in itertools.pairwise(points))
