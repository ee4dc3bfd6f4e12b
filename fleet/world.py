"""Domain model of a street's operating area: warehouses, pads, communities, no-fly zones, roads.

Immutable value objects built by :mod:`fleet.worldfile` from a GeoJSON world file
(``docs/world-format.md``). Geometry is kept twice: WGS84 coordinates as given (``(lat, lon)``
tuples) and shapely geometries in the world's local metric frame (x east, y north, metres;
see :class:`fleet.geo.LocalFrame`) for every computation (containment, leg checks, coverage).
The directed road graph vans drive is :attr:`World.road_network` (:mod:`fleet.roads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from shapely.geometry import LineString, Point, Polygon
from shapely.prepared import PreparedGeometry, prep

from fleet.errors import NotFound
from fleet.geo import LatLon, LocalFrame

if TYPE_CHECKING:
    from fleet.roads import RoadNetwork, RoadNode

LatLonRing = tuple[tuple[float, float], ...]
"""A closed-or-open ring of (lat, lon) vertices."""
_T = TypeVar("_T")
"""The kind of object a lookup by id returns."""


@dataclass(frozen=True)
class Pad:
    """A drone take-off and landing pad."""

    id: str
    name: str
    location: LatLon
    warehouse_id: str | None
    """Warehouse the pad belongs to (drones load there); None for a stand-alone pad."""
    ground_alt_m: float
    """Ground altitude above mean sea level."""


@dataclass(frozen=True)
class Warehouse:
    """A street supplies store: vans load at its dock, drones take off from its pads."""

    id: str
    name: str
    location: LatLon
    dock: LatLon
    """Van loading point (on the road network)."""
    pad_ids: tuple[str, ...] = ()
    name_zh: str = ""


@dataclass(frozen=True, eq=False)
class Community:
    """A residential compound: polygon, population, gate (van stop) and drone drop point."""

    id: str
    name: str
    boundary: LatLonRing
    polygon: Polygon
    """Boundary in the local frame (metres)."""
    population: int
    vulnerable_households: int
    """Households of elderly people living alone and other residents needing priority."""
    gate: LatLon
    """Where vans stop and unload."""
    drop_point: LatLon
    """Where drones release deliveries."""
    name_zh: str = ""

    @property
    def area_m2(self) -> float:
        return float(self.polygon.area)


@dataclass(frozen=True, eq=False)
class NoFlyZone:
    """Airspace drones must not enter, from the ground up to ``ceiling_m`` (None: unlimited)."""

    id: str
    name: str
    boundary: LatLonRing
    polygon: Polygon
    """Boundary in the local frame (metres)."""
    ceiling_m: float | None = None
    reason: str = ""
    name_zh: str = ""

    @cached_property
    def prepared(self) -> PreparedGeometry:
        return prep(self.polygon)


@dataclass(frozen=True, eq=False)
class Road:
    """A drivable street segment polyline."""

    id: str
    name: str
    points: LatLonRing
    line: LineString
    """Polyline in the local frame (metres)."""
    speed_limit_kmh: float = 30.0
    oneway: bool = False
    """One-way in the drawing direction (first to last point)."""
    layer: int = 0
    """Vertical layer (0 ground, 1 flyover, -1 tunnel): roads on different layers cross
    without a junction and meet only at shared vertices."""
    name_zh: str = ""


@dataclass(frozen=True, eq=False)
class World:
    """A street's operating area and everything in it."""

    name: str
    frame: LocalFrame
    """Local metric frame; also the VDA 5050 map frame of this area."""
    map_id: str
    """VDA 5050 ``mapId`` of the local frame."""
    boundary: LatLonRing
    area: Polygon
    """Operating area in the local frame."""
    warehouses: tuple[Warehouse, ...]
    pads: tuple[Pad, ...]
    communities: tuple[Community, ...]
    no_fly_zones: tuple[NoFlyZone, ...] = ()
    roads: tuple[Road, ...] = ()
    max_altitude_m: float = 120.0
    """Highest altitude above ground drones may fly."""
    source: str = ""
    """Where it was loaded from."""
    name_zh: str = ""
    _index: dict[str, object] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for group in (self.warehouses, self.pads, self.communities, self.no_fly_zones, self.roads):
            for obj in group:
                self._index[obj.id] = obj

    def _get(self, kind: type[_T], ident: str) -> _T:
        obj = self._index.get(ident)
        if not isinstance(obj, kind):
            raise NotFound(kind.__name__.lower(), ident)
        return obj

    def community(self, ident: str) -> Community:
        return self._get(Community, ident)

    def warehouse(self, ident: str) -> Warehouse:
        return self._get(Warehouse, ident)

    def pad(self, ident: str) -> Pad:
        return self._get(Pad, ident)

    def pads_of(self, warehouse_id: str) -> list[Pad]:
        return [p for p in self.pads if p.warehouse_id == warehouse_id]

    # --- geometry in the local frame -------------------------------------------------------

    def xy(self, p: LatLon) -> tuple[float, float]:
        """A WGS84 point in the local frame."""
        return self.frame.to_xy(p.lat, p.lon)

    def latlon(self, x: float, y: float) -> LatLon:
        lat, lon = self.frame.to_latlon(x, y)
        return LatLon(lat, lon)

    def inside_area(self, p: LatLon) -> bool:
        """Whether ``p`` is inside the operating area."""
        return bool(self.area.covers(Point(self.xy(p))))

    def no_fly_at(self, p: LatLon, alt_m: float = 0.0) -> NoFlyZone | None:
        """The no-fly zone containing ``p`` at ``alt_m`` above ground, if any."""
        pt = Point(self.xy(p))
        for z in self.no_fly_zones:
            if (z.ceiling_m is None or alt_m <= z.ceiling_m) and z.prepared.intersects(pt):
                return z
        return None

    def leg_conflicts(
        self, a: LatLon, b: LatLon, alt_m: float = 0.0, margin_m: float = 0.0
    ) -> list[NoFlyZone]:
        """No-fly zones the straight leg a→b passes through (or within ``margin_m`` of)."""
        leg = LineString([self.xy(a), self.xy(b)])
        if margin_m > 0:
            leg = leg.buffer(margin_m)
        return [
            z
            for z in self.no_fly_zones
            if (z.ceiling_m is None or alt_m <= z.ceiling_m) and z.prepared.intersects(leg)
        ]

    def community_at(self, p: LatLon) -> Community | None:
        """The community whose polygon contains ``p`` (boundary included), if any."""
        pt = Point(self.xy(p))
        for c in self.communities:
            if c.polygon.covers(pt):
                return c
        return None

    # --- road network ----------------------------------------------------------------------

    @cached_property
    def road_network(self) -> RoadNetwork:
        """The directed road graph with every dock and gate attached (see :mod:`fleet.roads`).

        Built on first use (the loader builds it while validating and keeps it).
        """
        from fleet.roads import RoadNetwork

        return RoadNetwork.from_world(self)

    def dock_node(self, warehouse_id: str) -> RoadNode:
        """The road node where vans load at warehouse ``warehouse_id``."""
        from fleet.roads import dock_key

        self.warehouse(warehouse_id)
        return self.road_network.stop_node(dock_key(warehouse_id))

    def gate_node(self, community_id: str) -> RoadNode:
        """The road node where vans stop for community ``community_id``."""
        from fleet.roads import gate_key

        self.community(community_id)
        return self.road_network.stop_node(gate_key(community_id))
