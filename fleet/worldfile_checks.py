"""Passes 4 and 5 of the world file loader: the features against each other, then the World.

:class:`Checker` takes the features read and put in the local frame (:mod:`fleet.worldfile`,
:mod:`fleet.worldfile_features`) and checks references and places (one dock per warehouse, one
gate and one drop point per community, points inside the operating area, drop points inside
their community and outside no-fly zones, pads apart, ids unique, communities not overlapping)
and the road network (docks and gates near a road, every gate reachable from every dock and
back), reporting to the same :class:`~fleet.worldfile_features.Reader`; with no problem left it
builds the :class:`~fleet.world.World`. The thresholds are the constants below. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import Point, Polygon

from fleet.geo import LatLon, LocalFrame
from fleet.roads import MAX_ATTACH_DISTANCE_M, SNAP_TOLERANCE_M, RoadNetwork, dock_key, gate_key
from fleet.world import Community, NoFlyZone, Pad, Road, Warehouse, World
from fleet.worldfile_features import Feature, Kind, Reader, fmt

GATE_MAX_FROM_COMMUNITY_M = 50.0
"""Farthest a gate may be from its community's polygon."""
PAD_MIN_SEPARATION_M = 3.0
"""Closest two pads may be: a delivery multicopter's span plus GNSS landing error."""
SITE_MAX_FROM_WAREHOUSE_M = 300.0
"""Farthest a warehouse's dock or pads may be from the warehouse point."""
BOUNDARY_TOLERANCE_M = 1.0
"""Communities and roads may stick out of the operating area by this much (drawing slack)."""
COMMUNITY_OVERLAP_MAX_M2 = 1.0
"""Two communities may share at most this much area (a shared wall drawn twice)."""
AREA_MAX_EXTENT_M = 30_000.0
"""Largest extent of an operating area (the local frame stays accurate to centimetres)."""


# --- pass 4 and 5: the world as a whole --------------------------------------------------------


class Checker:
    """Checks the features against each other and builds the World from the good ones."""

    def __init__(self, r: Reader, parsed: list[Feature], area_f: Feature, frame: LocalFrame):
        self.r = r
        self.parsed = parsed
        self.area_f = area_f
        self.area: Polygon = area_f.geom
        self.area_tol = self.area.buffer(BOUNDARY_TOLERANCE_M)
        self.frame = frame
        self.by_id: dict[str, Feature] = {}
        self.warehouses: dict[str, Feature] = {}
        self.docks: dict[str, Feature] = {}
        """Warehouse id -> its dock."""
        self.pads: list[Feature] = []
        self.communities: dict[str, Feature] = {}
        self.gates: dict[str, Feature] = {}
        """Community id -> its gate."""
        self.drop_points: dict[str, Feature] = {}
        """Community id -> its drop point."""
        self.no_fly_zones: list[Feature] = []
        self.roads: list[Feature] = []
        self.network: RoadNetwork | None = None

    def run(self) -> None:
        self.check_area()
        self.check_ids()
        self.no_fly_zones = self.check_no_fly_zones()
        self.check_warehouses()
        self.check_pads()
        self.check_communities()
        self.gates = self.check_attached(Kind.GATE)
        self.drop_points = self.check_attached(Kind.DROP_POINT)
        self.check_roads()
        self.check_network()

    # --- helpers ---------------------------------------------------------------------------

    def of_kind(self, kind: Kind) -> list[Feature]:
        """Features of ``kind`` still good."""
        return [f for f in self.parsed if f.kind is kind and f.ok]

    def ref(self, f: Feature, key: str, kind: Kind) -> Feature | None:
        """The feature ``f.props[key]`` names, if it exists, has ``kind`` and is good."""
        target = f.props.get(key)
        if target is None:
            return None
        g = self.by_id.get(target)
        if g is None:
            if target not in self.r.unreadable_ids:
                self.r.add(f, f"{key} {target!r} does not exist")
            return None
        if g.kind is not kind:
            self.r.add(f, f"{key} {target!r} is a {g.kind.value}, not a {kind.value}")
            return None
        return g if g.ok else None

    def inside_area(self, f: Feature) -> bool:
        """Whether point feature ``f`` is inside the operating area (reported if not)."""
        if self.area.covers(f.geom):
            return True
        lat, lon = self.frame.to_latlon(*f.xy)
        hint = ""
        if -90 <= lon <= 90 and self.area.covers(Point(self.frame.to_xy(lon, lat))):
            hint = " (its coordinates look swapped: GeoJSON positions are [lon, lat])"
        self.r.add(
            f,
            f"point {fmt(LatLon(lat, lon))} is outside the operating area, "
            f"{self.area.exterior.distance(f.geom):.0f} m from it{hint}",
        )
        return False

    def in_no_fly_zone(self, f: Feature, what: str) -> bool:
        """Whether ``f`` touches a no-fly zone at any height (reported if so)."""
        for z in self.no_fly_zones:
            if z.geom.intersects(f.geom):
                self.r.add(f, f"{what} is inside no-fly zone {z.id} (features[{z.index}])")
                return True
        return False

    def missing(self, owner: Feature, kind: Kind, key: str, found: dict[str, Feature]) -> None:
        """Report ``owner`` if no feature of ``kind`` names it (broken ones were reported)."""
        oid = str(owner.id)
        if oid in found or any(f.kind is kind and f.props.get(key) == oid for f in self.parsed):
            return
        self.r.add(
            owner,
            f"{owner.kind.value} {oid} has no {kind.value} "
            f'(a feature of kind "{kind.value}" with "{key}": "{oid}")',
        )

    # --- checks ----------------------------------------------------------------------------

    def check_area(self) -> None:
        minx, miny, maxx, maxy = self.area.bounds
        extent = max(maxx - minx, maxy - miny)
        if extent > AREA_MAX_EXTENT_M:
            self.r.add(
                self.area_f,
                f"the operating area spans {extent / 1000:.1f} km; one street spans at most "
                f"{AREA_MAX_EXTENT_M / 1000:g} km",
            )

    def check_ids(self) -> None:
        """Ids are unique across all kinds: they name objects in the API and in node ids."""
        for f in self.parsed:
            if f.id is None:
                continue
            g = self.by_id.get(f.id)
            if g is not None:
                self.r.add(f, f"duplicate id {f.id!r} (also features[{g.index}], a {g.kind.value})")
            else:
                self.by_id[f.id] = f

    def check_no_fly_zones(self) -> list[Feature]:
        for f in self.of_kind(Kind.NO_FLY_ZONE):
            ceiling = f.props["ceiling_m"]
            if ceiling is not None and ceiling <= 0:
                self.r.add(f, f"ceiling_m must be positive (metres above ground), got {ceiling:g}")
        return self.of_kind(Kind.NO_FLY_ZONE)

    def check_warehouses(self) -> None:
        if not any(f.kind is Kind.WAREHOUSE for f in self.parsed):
            self.r.add(None, "no feature of kind 'warehouse' (a street has at least one)")
        self.warehouses = {
            str(f.id): f for f in self.of_kind(Kind.WAREHOUSE) if self.inside_area(f)
        }
        for f in self.of_kind(Kind.DOCK):
            w = self.ref(f, "warehouse", Kind.WAREHOUSE)
            if w is None or not self.inside_area(f):
                continue
            wid = str(w.id)
            if wid in self.docks:
                self.r.add(
                    f, f"warehouse {wid} already has a dock (features[{self.docks[wid].index}])"
                )
            elif (d := w.geom.distance(f.geom)) > SITE_MAX_FROM_WAREHOUSE_M:
                self.r.add(
                    f,
                    f"dock is {d:.0f} m from warehouse {wid}; at most "
                    f"{SITE_MAX_FROM_WAREHOUSE_M:g} m allowed",
                )
            else:
                self.docks[wid] = f
        for w in self.warehouses.values():
            self.missing(w, Kind.DOCK, "warehouse", self.docks)

    def check_pads(self) -> None:
        for f in self.of_kind(Kind.PAD):
            w = self.ref(f, "warehouse", Kind.WAREHOUSE)
            if f.props["warehouse"] is not None and w is None:
                continue
            if not self.inside_area(f) or self.in_no_fly_zone(f, "pad"):
                continue
            alt = f.props["ground_alt_m"]
            near = [p for p in self.pads if p.geom.distance(f.geom) < PAD_MIN_SEPARATION_M]
            if not -500 <= alt <= 9000:
                self.r.add(
                    f,
                    f"ground_alt_m {alt:g} is not a ground altitude above mean sea "
                    "level (metres, -500 to 9000)",
                )
            elif w is not None and (d := w.geom.distance(f.geom)) > SITE_MAX_FROM_WAREHOUSE_M:
                self.r.add(
                    f,
                    f"pad is {d:.0f} m from warehouse {w.id}; at most "
                    f"{SITE_MAX_FROM_WAREHOUSE_M:g} m allowed",
                )
            elif near:
                self.r.add(
                    f,
                    f"pad is {near[0].geom.distance(f.geom):.1f} m from pad "
                    f"{near[0].id}; pads must be at least {PAD_MIN_SEPARATION_M:g} m apart",
                )
            else:
                self.pads.append(f)

    def check_communities(self) -> None:
        for f in self.of_kind(Kind.COMMUNITY):
            pop, vul = f.props["population"], f.props["vulnerable_households"]
            if pop <= 0:
                self.r.add(f, f"population must be a positive integer, got {pop}")
            elif not 0 <= vul <= pop:
                self.r.add(
                    f, f"vulnerable_households must be between 0 and the population, got {vul}"
                )
            if not self.area_tol.covers(f.geom):
                out = f.geom.difference(self.area).area
                self.r.add(f, f"community polygon reaches {out:.0f} m² outside the operating area")
            for g in self.communities.values():
                shared = g.geom.intersection(f.geom).area
                if shared > COMMUNITY_OVERLAP_MAX_M2:
                    self.r.add(f, f"community overlaps community {g.id} by {shared:.0f} m²")
            if f.ok:
                self.communities[str(f.id)] = f

    def check_attached(self, kind: Kind) -> dict[str, Feature]:
        """Gates or drop points: one per community, in the right place."""
        found: dict[str, Feature] = {}
        for f in self.of_kind(kind):
            c = self.ref(f, "community", Kind.COMMUNITY)
            if c is None or not self.inside_area(f):
                continue
            cid = str(c.id)
            if cid in found:
                self.r.add(
                    f, f"community {cid} already has a {kind.value} (features[{found[cid].index}])"
                )
            elif kind is Kind.GATE and (d := c.geom.distance(f.geom)) > GATE_MAX_FROM_COMMUNITY_M:
                self.r.add(
                    f,
                    f"gate is {d:.0f} m from community {cid}; at most "
                    f"{GATE_MAX_FROM_COMMUNITY_M:g} m allowed",
                )
            elif kind is Kind.DROP_POINT and not c.geom.covers(f.geom):
                self.r.add(
                    f,
                    f"drop point is outside its community {cid} "
                    f"({c.geom.exterior.distance(f.geom):.0f} m from its boundary)",
                )
            elif kind is Kind.DROP_POINT and self.in_no_fly_zone(f, "drop point"):
                pass
            else:
                found[cid] = f
        for c in self.communities.values():
            self.missing(c, kind, "community", found)
        return found

    def check_roads(self) -> None:
        for f in self.of_kind(Kind.ROAD):
            v = f.props["speed_limit_kmh"]
            if not 0 < v <= 130:
                self.r.add(f, f"speed_limit_kmh must be in (0, 130], got {v:g}")
            if not -5 <= f.props["layer"] <= 5:
                self.r.add(f, f"layer must be between -5 and 5, got {f.props['layer']}")
            if not self.area_tol.covers(f.geom):
                out = f.geom.difference(self.area).length
                self.r.add(f, f"road runs {out:.0f} m outside the operating area")
        roads = self.of_kind(Kind.ROAD)
        if roads:
            # two roads on one layer must not run along each other (a street drawn twice)
            lines = [f.geom for f in roads]
            left, right = shapely.STRtree(lines).query(lines, predicate="intersects")
            for i, j in zip(left.tolist(), right.tolist(), strict=True):
                a, b = roads[i], roads[j]
                if i >= j or a.props["layer"] != b.props["layer"]:
                    continue
                shared = float(shapely.length(a.geom.intersection(b.geom)))
                if shared > SNAP_TOLERANCE_M:
                    self.r.add(
                        b,
                        f"road runs along road {a.id} for {shared:.0f} m; draw a "
                        "street once (split it where it changes)",
                    )
        self.roads = self.of_kind(Kind.ROAD)

    def check_network(self) -> None:
        """Every dock and gate near a road; every gate reachable from every dock and back.

        Skipped while a road is broken: its absence would only report consequences.
        """
        if any(f.kind is Kind.ROAD and not f.ok for f in self.parsed):
            return
        stops = {dock_key(w): f for w, f in self.docks.items() if w in self.warehouses}
        stops.update({gate_key(c): f for c, f in self.gates.items()})
        net = RoadNetwork.build(
            [self.road(f) for f in self.roads], self.frame, {k: f.xy for k, f in stops.items()}
        )
        self.network = net
        for key, f in stops.items():
            if key not in net.unattached:
                continue
            what = f.kind.value
            if not self.roads:
                self.r.add(f, f"{what} cannot be attached to a road: the world has no roads")
                continue
            dists = [g.geom.distance(f.geom) for g in self.roads]
            k = min(range(len(dists)), key=dists.__getitem__)
            self.r.add(
                f,
                f"{what} is {dists[k]:.0f} m from the nearest road ({self.roads[k].id}); at most "
                f"{MAX_ATTACH_DISTANCE_M:g} m allowed (move it, or draw its access lane as a road)",
            )
        for w in self.docks:
            if dock_key(w) not in net.stops:
                continue
            dock = net.stop_node(dock_key(w))
            forward, backward = net.reachable_from(dock), net.reaching(dock)
            for c, gate in self.gates.items():
                if gate_key(c) not in net.stops:
                    continue
                g = net.stop_node(gate_key(c)).index
                if g not in forward:
                    self.r.add(
                        gate,
                        f"gate of community {c} cannot be reached by road from the "
                        f"dock of warehouse {w}",
                    )
                elif g not in backward:
                    self.r.add(
                        gate,
                        f"no road leads back from the gate of community {c} to the "
                        f"dock of warehouse {w} (check one-way roads)",
                    )

    # --- building --------------------------------------------------------------------------

    @staticmethod
    def road(f: Feature) -> Road:
        return Road(
            id=str(f.id),
            name=f.props["name"],
            points=tuple((p.lat, p.lon) for p in f.coords),
            line=f.geom,
            speed_limit_kmh=f.props["speed_limit_kmh"],
            oneway=f.props["oneway"],
            layer=f.props["layer"],
            name_zh=f.props["name_zh"],
        )

    @staticmethod
    def ring(f: Feature) -> tuple[tuple[float, float], ...]:
        return tuple((p.lat, p.lon) for p in f.coords[0])

    def build(self, top: dict[str, Any], source: str) -> World:
        """The World; only called when no problem was found."""
        assert self.network is not None
        world = World(
            name=top["name"],
            frame=self.frame,
            map_id=top["map_id"],
            boundary=self.ring(self.area_f),
            area=self.area,
            warehouses=tuple(
                Warehouse(
                    id=wid,
                    name=w.props["name"],
                    location=w.coords,
                    dock=self.docks[wid].coords,
                    pad_ids=tuple(str(p.id) for p in self.pads if p.props["warehouse"] == wid),
                    name_zh=w.props["name_zh"],
                )
                for wid, w in self.warehouses.items()
            ),
            pads=tuple(
                Pad(
                    id=str(p.id),
                    name=p.props["name"] or str(p.id),
                    location=p.coords,
                    warehouse_id=p.props["warehouse"],
                    ground_alt_m=p.props["ground_alt_m"],
                )
                for p in self.pads
            ),
            communities=tuple(
                Community(
                    id=cid,
                    name=c.props["name"],
                    boundary=self.ring(c),
                    polygon=c.geom,
                    population=c.props["population"],
                    vulnerable_households=c.props["vulnerable_households"],
                    gate=self.gates[cid].coords,
                    drop_point=self.drop_points[cid].coords,
                    name_zh=c.props["name_zh"],
                )
                for cid, c in self.communities.items()
            ),
            no_fly_zones=tuple(
                NoFlyZone(
                    id=str(z.id),
                    name=z.props["name"],
                    boundary=self.ring(z),
                    polygon=z.geom,
                    ceiling_m=z.props["ceiling_m"],
                    reason=z.props["reason"],
                    name_zh=z.props["name_zh"],
                )
                for z in self.no_fly_zones
            ),
            roads=tuple(self.road(f) for f in self.roads),
            max_altitude_m=top["max_altitude_m"],
            source=source,
            name_zh=top["name_zh"],
        )
        vars(world)["road_network"] = self.network  # seeds the World.road_network cache
        return world
