"""The road network of a world: the directed graph vans drive, and shortest routes on it.

Built from the world's :class:`~fleet.world.Road` polylines (local metric frame):

- **Nodes** are placed at road endpoints, at vertices two roads share, where two roads on the
  same ``layer`` cross, where a road ends on (within :data:`SNAP_TOLERANCE_M` of) another road
  (a T junction, a ramp landing), and where a stop is attached. Points closer than
  :data:`SNAP_TOLERANCE_M` are one node. Roads on different layers (a flyover and the street
  below) meet where one ends on the other or at a vertex both have, never where they merely
  cross.
- **Edges** are the road pieces between consecutive nodes, with their polyline, length and speed
  limit; a two-way road gives one edge per direction, a one-way road only the edge in its
  drawing direction.
- **Stops** are the points vans serve: warehouse docks (``dock:<warehouse id>``) and community
  gates (``gate:<community id>``). Each is attached to the nearest point of the nearest
  ground-level (layer 0) road centreline, if that is at most :data:`MAX_ATTACH_DISTANCE_M` away;
  the road is split there and the stop's node is the point where the van pulls over.

Node ids are stable strings (``J<n>`` for junctions, the stop key for a stop's own node) and
serve as VDA 5050 ``nodeId``; node positions are also the VDA 5050 map coordinates (the local
frame is the map frame).

Routes: A* over travel time (speed limit, optionally capped by the vehicle's top speed) or
distance, with a straight-line heuristic that is admissible because every edge is at least as
long as the straight line between its nodes. One query on a street-sized graph (hundreds of
nodes) takes well under a millisecond; :meth:`RoadNetwork.matrix` answers many-to-many in one
Dijkstra per source for the dispatcher. The network does no I/O and is immutable once built.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import shapely
from shapely.geometry import LineString, MultiPoint, Point
from shapely.ops import substring

from fleet.errors import NotFound, PlanningError
from fleet.geo import LatLon, LocalFrame

if TYPE_CHECKING:
    from fleet.world import Road, World

XY = tuple[float, float]
"""A point in the local frame (x east, y north, metres)."""

SNAP_TOLERANCE_M = 1.0
"""Road points closer than this are one junction (hand-drawn roads rarely meet exactly)."""
MAX_ATTACH_DISTANCE_M = 30.0
"""Farthest a dock or gate may be from a road centreline: half a wide arterial plus a pavement
and a short forecourt. A stop farther away needs its access lane drawn as a road."""


class Weight(StrEnum):
    """What a shortest route minimises."""

    TIME = "time"
    """Travel time at the speed limit (capped by the vehicle's top speed, if given)."""
    DISTANCE = "distance"
    """Length in metres."""


class StopKind(StrEnum):
    """Kinds of points vans stop at."""

    DOCK = "dock"
    """A warehouse's loading dock."""
    GATE = "gate"
    """A community's gate."""


def dock_key(warehouse_id: str) -> str:
    """Stop key of a warehouse's dock."""
    return f"{StopKind.DOCK}:{warehouse_id}"


def gate_key(community_id: str) -> str:
    """Stop key of a community's gate."""
    return f"{StopKind.GATE}:{community_id}"


@dataclass(frozen=True, slots=True)
class RoadNode:
    """A junction, road end or stop on the network."""

    index: int
    """Position in :attr:`RoadNetwork.nodes`."""
    id: str
    """Stable id, used as the VDA 5050 ``nodeId``."""
    x: float
    y: float
    latlon: LatLon
    stops: tuple[str, ...] = ()
    """Keys of the stops served at this node (usually zero or one)."""

    @property
    def xy(self) -> XY:
        return (self.x, self.y)


@dataclass(frozen=True, slots=True)
class RoadEdge:
    """A directed piece of road between two nodes."""

    index: int
    """Position in :attr:`RoadNetwork.edges`."""
    id: str
    start: int
    """Index of the start node."""
    end: int
    """Index of the end node."""
    road_id: str
    length_m: float
    speed_limit_kmh: float
    geometry: tuple[XY, ...]
    """Polyline from the start node to the end node, local frame."""

    def travel_time_s(self, max_speed_kmh: float | None = None) -> float:
        """Seconds to drive the edge at the speed limit, capped at ``max_speed_kmh``."""
        speed = (
            self.speed_limit_kmh
            if max_speed_kmh is None
            else min(self.speed_limit_kmh, max_speed_kmh)
        )
        return self.length_m / (speed / 3.6)


@dataclass(frozen=True, slots=True)
class Stop:
    """A dock or gate attached to the network."""

    key: str
    """``dock:<warehouse id>`` or ``gate:<community id>``."""
    point: XY
    """The stop as given (it may lie off the road)."""
    node: int
    """Index of the node on the road where vans stop for it."""
    offset_m: float
    """Distance from :attr:`point` to the road centreline."""
    road_id: str
    """Road it is attached to."""


@dataclass(frozen=True, slots=True)
class Route:
    """A path through the network."""

    nodes: tuple[RoadNode, ...]
    edges: tuple[RoadEdge, ...]
    length_m: float
    duration_s: float
    """At the speed limits (capped by the vehicle's top speed the route was asked for)."""

    def polyline(self) -> list[XY]:
        """The route as one polyline in the local frame."""
        if not self.edges:
            return [self.nodes[0].xy] if self.nodes else []
        out: list[XY] = [self.edges[0].geometry[0]]
        for e in self.edges:
            out.extend(e.geometry[1:])
        return out


class _NodeGrid:
    """Finds the existing node within the snap tolerance of a point, or adds one."""

    def __init__(self, tolerance: float) -> None:
        self.tol = tolerance
        self.cells: dict[tuple[int, int], list[int]] = {}
        self.points: list[XY] = []

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return (math.floor(x / self.tol), math.floor(y / self.tol))

    def find(self, x: float, y: float) -> int | None:
        cx, cy = self._cell(x, y)
        best, best_d = None, self.tol
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for i in self.cells.get((cx + dx, cy + dy), ()):
                    px, py = self.points[i]
                    d = math.hypot(px - x, py - y)
                    if d <= best_d:
                        best, best_d = i, d
        return best

    def find_or_add(self, x: float, y: float) -> int:
        found = self.find(x, y)
        if found is not None:
            return found
        self.points.append((x, y))
        self.cells.setdefault(self._cell(x, y), []).append(len(self.points) - 1)
        return len(self.points) - 1


def _points_of(geom: shapely.Geometry) -> Iterable[Point]:
    """The junction points of an intersection: points, and the ends of overlapping pieces."""
    if geom.is_empty:
        return
    if isinstance(geom, Point):
        yield geom
    elif isinstance(geom, LineString):
        yield Point(geom.coords[0])
        yield Point(geom.coords[-1])
    elif hasattr(geom, "geoms"):
        for g in geom.geoms:
            yield from _points_of(g)


class RoadNetwork:
    """The directed road graph of a world (see the module docstring)."""

    def __init__(
        self,
        frame: LocalFrame,
        nodes: Sequence[RoadNode],
        edges: Sequence[RoadEdge],
        stops: Mapping[str, Stop],
        unattached: Mapping[str, float],
    ) -> None:
        self.frame = frame
        self.nodes: tuple[RoadNode, ...] = tuple(nodes)
        self.edges: tuple[RoadEdge, ...] = tuple(edges)
        self.stops: Mapping[str, Stop] = dict(stops)
        """Attached stops by key."""
        self.unattached: Mapping[str, float] = dict(unattached)
        """Stops farther than the attach distance from every road: key -> distance (inf when
        there is no road at all)."""
        self._by_id = {n.id: n for n in self.nodes}
        self._edges_by_id = {e.id: e for e in self.edges}
        self._out: list[list[int]] = [[] for _ in self.nodes]
        self._in: list[list[int]] = [[] for _ in self.nodes]
        for e in self.edges:
            self._out[e.start].append(e.index)
            self._in[e.end].append(e.index)
        self._max_speed_kmh = max((e.speed_limit_kmh for e in self.edges), default=1.0)
        self._node_tree = shapely.STRtree([Point(n.x, n.y) for n in self.nodes])
        self._costs: dict[tuple[Weight, float | None], tuple[list[float], float]] = {}

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def from_world(
        cls, world: World, *, max_attach_m: float = MAX_ATTACH_DISTANCE_M
    ) -> RoadNetwork:
        """The network of ``world``'s roads with every warehouse dock and community gate."""
        stops: dict[str, XY] = {}
        for w in world.warehouses:
            stops[dock_key(w.id)] = world.xy(w.dock)
        for c in world.communities:
            stops[gate_key(c.id)] = world.xy(c.gate)
        return cls.build(world.roads, world.frame, stops, max_attach_m=max_attach_m)

    @classmethod
    def build(
        cls,
        roads: Sequence[Road],
        frame: LocalFrame,
        stops: Mapping[str, XY] | None = None,
        *,
        max_attach_m: float = MAX_ATTACH_DISTANCE_M,
        snap_m: float = SNAP_TOLERANCE_M,
    ) -> RoadNetwork:
        """Build the graph of ``roads`` and attach ``stops`` (key -> local point).

        Stops farther than ``max_attach_m`` from every road are left out and listed in
        :attr:`unattached`; building never fails on them so that a loader can report them all.
        """
        lines = [LineString(r.line.coords) for r in roads]
        cuts: list[list[tuple[float, XY]]] = [[] for _ in roads]
        """Per road: (distance along, point) where a node goes."""
        for i, line in enumerate(lines):
            cuts[i].append((0.0, line.coords[0]))
            cuts[i].append((float(line.length), line.coords[-1]))
        tree = shapely.STRtree(lines)
        if lines:
            left, right = tree.query(lines, predicate="dwithin", distance=snap_m)
        else:
            left, right = [], []
        for i, j in zip(left, right, strict=True):
            i, j = int(i), int(j)
            if i >= j:
                continue
            li, lj = lines[i], lines[j]
            if roads[i].layer == roads[j].layer:
                # same level: wherever they cross or touch
                for p in _points_of(li.intersection(lj)):
                    cuts[i].append((float(li.project(p)), (p.x, p.y)))
                    cuts[j].append((float(lj.project(p)), (p.x, p.y)))
            else:
                # different levels: only at a vertex both have
                vj = MultiPoint(list(lj.coords))
                for v in li.coords:
                    pv = Point(v)
                    if vj.distance(pv) <= snap_m:
                        cuts[i].append((float(li.project(pv)), v))
                        cuts[j].append((float(lj.project(pv)), v))
            # any level: an end lying on the other road (a T junction, a ramp landing)
            for a, la, b, lb in ((i, li, j, lj), (j, lj, i, li)):
                for end, d_end in ((la.coords[0], 0.0), (la.coords[-1], float(la.length))):
                    pe = Point(end)
                    if lb.distance(pe) <= snap_m:
                        cuts[a].append((d_end, end))
                        cuts[b].append((float(lb.project(pe)), end))

        grid = _NodeGrid(snap_m)
        # junctions first (road order), so that a stop near a junction joins it
        road_cuts: list[list[tuple[float, int]]] = [
            [(d, grid.find_or_add(*p)) for d, p in sorted(c)] for c in cuts
        ]
        n_junction_nodes = len(grid.points)

        attached: dict[str, tuple[int, int, float, float]] = {}
        """stop key -> (road index, node index, distance along, offset)."""
        unattached: dict[str, float] = {}
        ground = [i for i, r in enumerate(roads) if r.layer == 0]
        ground_tree = shapely.STRtree([lines[i] for i in ground])
        for key, (sx, sy) in (stops or {}).items():
            p = Point(sx, sy)
            if not ground:
                unattached[key] = math.inf
                continue
            idx, dist = ground_tree.query_nearest(p, return_distance=True, all_matches=False)
            i, offset = ground[int(idx[0])], float(dist[0])
            if offset > max_attach_m:
                unattached[key] = offset
                continue
            d = float(lines[i].project(p))
            q = lines[i].interpolate(d)
            node = grid.find_or_add(q.x, q.y)
            road_cuts[i].append((d, node))
            attached[key] = (i, node, d, offset)

        nodes: list[RoadNode] = []
        stops_at: dict[int, list[str]] = {}
        for key, (_, n, _, _) in attached.items():
            stops_at.setdefault(n, []).append(key)
        for n, (x, y) in enumerate(grid.points):
            keys = tuple(stops_at.get(n, ()))
            ident = keys[0] if (n >= n_junction_nodes and keys) else f"J{n}"
            lat, lon = frame.to_latlon(x, y)
            nodes.append(RoadNode(n, ident, x, y, LatLon(lat, lon), keys))

        edges: list[RoadEdge] = []
        for i, road in enumerate(roads):
            line = lines[i]
            seq = sorted(road_cuts[i])
            for (da, na), (db, nb) in itertools.pairwise(seq):
                if na == nb or db - da <= 0:
                    continue
                piece = substring(line, da, db)
                coords = [(float(c[0]), float(c[1])) for c in piece.coords]
                if len(coords) < 2:
                    coords = [coords[0], coords[0]]
                coords[0], coords[-1] = grid.points[na], grid.points[nb]
                length = float(LineString(coords).length)
                for s, t, geom in ((na, nb, coords), (nb, na, coords[::-1])):
                    edges.append(
                        RoadEdge(
                            index=len(edges),
                            id=f"E{len(edges)}",
                            start=s,
                            end=t,
                            road_id=road.id,
                            length_m=length,
                            speed_limit_kmh=road.speed_limit_kmh,
                            geometry=tuple(geom),
                        )
                    )
                    if road.oneway:
                        break

        stop_objs = {
            key: Stop(key, (stops or {})[key], n, offset, roads[i].id)
            for key, (i, n, _d, offset) in attached.items()
        }
        return cls(frame, nodes, edges, stop_objs, unattached)

    # --- lookup ----------------------------------------------------------------------------

    def node(self, ident: str) -> RoadNode:
        """The node with id ``ident``."""
        try:
            return self._by_id[ident]
        except KeyError:
            raise NotFound("road node", ident) from None

    def edge(self, ident: str) -> RoadEdge:
        """The edge with id ``ident`` (a VDA 5050 ``edgeId``)."""
        try:
            return self._edges_by_id[ident]
        except KeyError:
            raise NotFound("road edge", ident) from None

    def edge_between(self, start: RoadNode | str | int, end: RoadNode | str | int) -> RoadEdge:
        """The shortest edge driving from ``start`` straight to ``end``."""
        s, t = self._index_of(start), self._index_of(end)
        found = [self.edges[e] for e in self._out[s] if self.edges[e].end == t]
        if not found:
            raise NotFound("road edge", f"{self.nodes[s].id}->{self.nodes[t].id}")
        return min(found, key=lambda e: e.length_m)

    def stop_node(self, key: str) -> RoadNode:
        """The node serving stop ``key`` (see :func:`dock_key`, :func:`gate_key`)."""
        stop = self.stops.get(key)
        if stop is None:
            raise NotFound("road stop", key)
        return self.nodes[stop.node]

    def out_edges(self, node: RoadNode | int) -> list[RoadEdge]:
        """Edges leaving ``node``."""
        i = node if isinstance(node, int) else node.index
        return [self.edges[e] for e in self._out[i]]

    def in_edges(self, node: RoadNode | int) -> list[RoadEdge]:
        """Edges entering ``node``."""
        i = node if isinstance(node, int) else node.index
        return [self.edges[e] for e in self._in[i]]

    def nearest_node(self, p: LatLon | XY, max_distance_m: float | None = None) -> RoadNode:
        """The node nearest to ``p`` (a WGS84 point, or an (x, y) point in the local frame)."""
        x, y = self.frame.to_xy(p.lat, p.lon) if isinstance(p, LatLon) else p
        if not self.nodes:
            raise NotFound("road node", f"near ({x:.1f}, {y:.1f})")
        idx = self._node_tree.query_nearest(Point(x, y), max_distance=max_distance_m)
        if len(idx) == 0:
            raise NotFound("road node", f"within {max_distance_m} m of ({x:.1f}, {y:.1f})")
        return self.nodes[min(int(i) for i in idx)]

    @property
    def total_length_m(self) -> float:
        """Length of road, counting each two-way piece once."""
        seen: dict[tuple[str, frozenset[int]], float] = {}
        for e in self.edges:
            seen[(e.road_id, frozenset((e.start, e.end)))] = e.length_m
        return sum(seen.values())

    # --- reachability ----------------------------------------------------------------------

    def reachable_from(self, node: RoadNode | int) -> frozenset[int]:
        """Indices of nodes a vehicle can drive to from ``node`` (itself included)."""
        return self._flood(node if isinstance(node, int) else node.index, self._out, True)

    def reaching(self, node: RoadNode | int) -> frozenset[int]:
        """Indices of nodes from which a vehicle can drive to ``node`` (itself included)."""
        return self._flood(node if isinstance(node, int) else node.index, self._in, False)

    def _flood(self, start: int, adj: list[list[int]], forward: bool) -> frozenset[int]:
        seen = {start}
        todo = [start]
        while todo:
            n = todo.pop()
            for ei in adj[n]:
                e = self.edges[ei]
                m = e.end if forward else e.start
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return frozenset(seen)

    # --- shortest routes -------------------------------------------------------------------

    def _cost_fn(self, weight: Weight, max_speed_kmh: float | None) -> tuple[list[float], float]:
        """Per-edge costs and the heuristic's cost per straight-line metre (kept for reuse)."""
        key = (weight, None if weight is Weight.DISTANCE else max_speed_kmh)
        found = self._costs.get(key)
        if found is None:
            found = self._compute_costs(*key)
            if len(self._costs) >= 16:
                self._costs.pop(next(iter(self._costs)))
            self._costs[key] = found
        return found

    def _compute_costs(
        self, weight: Weight, max_speed_kmh: float | None
    ) -> tuple[list[float], float]:
        if weight is Weight.DISTANCE:
            return [e.length_m for e in self.edges], 1.0
        if max_speed_kmh is not None and max_speed_kmh <= 0:
            raise ValueError(f"max_speed_kmh must be positive, got {max_speed_kmh}")
        costs = [e.travel_time_s(max_speed_kmh) for e in self.edges]
        top = (
            self._max_speed_kmh
            if max_speed_kmh is None
            else min(self._max_speed_kmh, max_speed_kmh)
        )
        return costs, 3.6 / top

    def _index_of(self, n: RoadNode | str | int) -> int:
        if isinstance(n, RoadNode):
            return n.index
        if isinstance(n, int):
            if not 0 <= n < len(self.nodes):
                raise NotFound("road node", n)
            return n
        return self.node(n).index

    def shortest_path(
        self,
        source: RoadNode | str | int,
        target: RoadNode | str | int,
        weight: Weight | str = Weight.TIME,
        *,
        max_speed_kmh: float | None = None,
    ) -> Route:
        """The best route from ``source`` to ``target`` (nodes, node ids or indices).

        Raises :class:`~fleet.errors.PlanningError` when ``target`` cannot be reached.
        """
        w = Weight(weight)
        s, t = self._index_of(source), self._index_of(target)
        costs, per_m = self._cost_fn(w, max_speed_kmh)
        tx, ty = self.nodes[t].x, self.nodes[t].y
        nodes = self.nodes

        def h(n: int) -> float:
            return math.hypot(nodes[n].x - tx, nodes[n].y - ty) * per_m

        best = {s: 0.0}
        via: dict[int, int] = {}
        done: set[int] = set()
        heap = [(h(s), 0.0, s)]
        while heap:
            _, g, n = heapq.heappop(heap)
            if n in done:
                continue
            if n == t:
                break
            done.add(n)
            for ei in self._out[n]:
                m = self.edges[ei].end
                ng = g + costs[ei]
                if ng < best.get(m, math.inf):
                    best[m] = ng
                    via[m] = ei
                    heapq.heappush(heap, (ng + h(m), ng, m))
        if t not in best:
            raise PlanningError(
                f"no road route from {nodes[s].id} to {nodes[t].id}",
                source=nodes[s].id,
                target=nodes[t].id,
            )
        path_edges: list[RoadEdge] = []
        n = t
        while n != s:
            e = self.edges[via[n]]
            path_edges.append(e)
            n = e.start
        path_edges.reverse()
        path_nodes = (nodes[s], *(nodes[e.end] for e in path_edges))
        return Route(
            nodes=path_nodes,
            edges=tuple(path_edges),
            length_m=sum(e.length_m for e in path_edges),
            duration_s=sum(e.travel_time_s(max_speed_kmh) for e in path_edges),
        )

    def costs_from(
        self,
        source: RoadNode | str | int,
        weight: Weight | str = Weight.TIME,
        *,
        max_speed_kmh: float | None = None,
    ) -> list[float]:
        """Best cost (seconds or metres) from ``source`` to every node; ``inf`` if unreachable."""
        costs, _ = self._cost_fn(Weight(weight), max_speed_kmh)
        s = self._index_of(source)
        dist = [math.inf] * len(self.nodes)
        dist[s] = 0.0
        heap = [(0.0, s)]
        while heap:
            g, n = heapq.heappop(heap)
            if g > dist[n]:
                continue
            for ei in self._out[n]:
                m = self.edges[ei].end
                ng = g + costs[ei]
                if ng < dist[m]:
                    dist[m] = ng
                    heapq.heappush(heap, (ng, m))
        return dist

    def matrix(
        self,
        points: Sequence[RoadNode | str | int],
        weight: Weight | str = Weight.TIME,
        *,
        max_speed_kmh: float | None = None,
    ) -> list[list[float]]:
        """Cost from each of ``points`` to each of them (``inf`` where unreachable)."""
        idx = [self._index_of(p) for p in points]
        rows = []
        for s in idx:
            d = self.costs_from(s, weight, max_speed_kmh=max_speed_kmh)
            rows.append([d[t] for t in idx])
        return rows
