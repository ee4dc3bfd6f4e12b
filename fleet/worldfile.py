"""Loader of world files: a GeoJSON FeatureCollection (RFC 7946) becomes a :class:`World`.

The format is documented in ``docs/world-format.md``. The loader checks the file in passes and
reports every problem it finds, each with the offending feature (its index in ``features`` and
its id) and the reason, in one :class:`~fleet.errors.WorldFileError`:

1. the document: JSON, a FeatureCollection, its top-level ``properties``;
2. each feature on its own: kind, id, properties (names, types, ranges), geometry (type, RFC
   7946 positions in [lon, lat] order, closed rings);
3. geometry in the local frame: valid polygons, simple roads;
4. references and places: one dock per warehouse, one gate and one drop point per community,
   every point inside the operating area, drop points inside their community and outside
   no-fly zones, pads outside no-fly zones and apart, ids unique, communities not overlapping;
5. the road network: every dock and gate near a road, every gate reachable from every dock and
   back.

A feature broken in one pass is left out of the later ones, so one mistake gives one problem,
not a cascade. Loading an example world (road network included) takes about 10 ms.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import LineString, Point, Polygon

from fleet.errors import WorldFileError
from fleet.geo import LatLon, LocalFrame
from fleet.roads import MAX_ATTACH_DISTANCE_M, SNAP_TOLERANCE_M, RoadNetwork, dock_key, gate_key
from fleet.world import Community, NoFlyZone, Pad, Road, Warehouse, World

FORMAT_VERSION = 1
"""Version of the world file format this loader reads (top-level ``version``)."""
DEFAULT_MAX_ALTITUDE_M = 120.0
"""Default ceiling for drones above ground: the 120 m limit of light UAS rules (CAAC, EASA)."""
DEFAULT_SPEED_LIMIT_KMH = 30.0
"""Speed limit of a road that gives none: the usual limit of residential streets."""
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
ORIGIN_MAX_FROM_AREA_M = 20_000.0
"""Farthest the local frame's origin may be from the operating area."""
AREA_MAX_EXTENT_M = 30_000.0
"""Largest extent of an operating area (the local frame stays accurate to centimetres)."""

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_STYLE_KEYS = frozenset(
    {
        "title",
        "description",
        "marker-size",
        "marker-symbol",
        "marker-color",
        "stroke",
        "stroke-opacity",
        "stroke-width",
        "fill",
        "fill-opacity",
    }
)
"""simplestyle-spec keys map editors (geojson.io, QGIS exports) add; allowed everywhere."""


class Kind(StrEnum):
    """Values of a feature's ``properties.kind``."""

    OPERATING_AREA = "operating_area"
    """The street's operating area (Polygon); exactly one."""
    WAREHOUSE = "warehouse"
    """A supplies warehouse (Point)."""
    DOCK = "dock"
    """A warehouse's van loading point (Point, ``warehouse``)."""
    PAD = "pad"
    """A drone pad (Point, optional ``warehouse``, ``ground_alt_m``)."""
    COMMUNITY = "community"
    """A residential community (Polygon)."""
    GATE = "gate"
    """A community's gate where vans stop (Point, ``community``)."""
    DROP_POINT = "drop_point"
    """A community's drone drop point (Point, ``community``)."""
    NO_FLY_ZONE = "no_fly_zone"
    """Airspace drones must not enter (Polygon)."""
    ROAD = "road"
    """A drivable street (LineString)."""


_GEOMETRY = {
    Kind.OPERATING_AREA: "Polygon",
    Kind.WAREHOUSE: "Point",
    Kind.DOCK: "Point",
    Kind.PAD: "Point",
    Kind.COMMUNITY: "Polygon",
    Kind.GATE: "Point",
    Kind.DROP_POINT: "Point",
    Kind.NO_FLY_ZONE: "Polygon",
    Kind.ROAD: "LineString",
}
_ID_REQUIRED = {Kind.WAREHOUSE, Kind.PAD, Kind.COMMUNITY, Kind.NO_FLY_ZONE, Kind.ROAD}


# --- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldProblem:
    """One thing wrong with a world file."""

    index: int | None
    """Index of the feature in ``features``; None for the document itself."""
    feature_id: str | None
    kind: str | None
    reason: str

    @property
    def label(self) -> str:
        """How the feature is named in messages: ``features[7] (community C05)``."""
        if self.index is None:
            return "collection"
        what = " ".join(x for x in (self.kind, self.feature_id) if x)
        return f"features[{self.index}]" + (f" ({what})" if what else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.label,
            "index": self.index,
            "id": self.feature_id,
            "kind": self.kind,
            "reason": self.reason,
        }


def problems_of(err: WorldFileError) -> list[WorldProblem]:
    """The problems a :class:`WorldFileError` raised by this module carries, in file order."""
    return [
        WorldProblem(p["index"], p["id"], p["kind"], p["reason"])
        for p in err.fields.get("problems", [])
    ]


class _Bad(Exception):
    """A problem found while reading one value; caught where the feature is known."""


# --- property checks ---------------------------------------------------------------------------

_Check = Callable[[Any], Any]


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad("must be a non-empty string")
    return v.strip()


def _opt_text(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad("must be a string")
    return v.strip()


def _ref(v: Any) -> str:
    if not isinstance(v, str) or not _ID_RE.match(v):
        raise _Bad("must be the id (a string) of another feature")
    return v


def _ref_or_null(v: Any) -> str | None:
    return None if v is None else _ref(v)


def _integer(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"must be an integer, got {json.dumps(v, ensure_ascii=False)}")
    return v


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _Bad(f"must be a number, got {json.dumps(v, ensure_ascii=False)}")
    return float(v)


def _number_or_null(v: Any) -> float | None:
    return None if v is None else _number(v)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"must be true or false, got {json.dumps(v, ensure_ascii=False)}")
    return v


def _lonlat(v: Any) -> LatLon:
    try:
        return _position(v)
    except _Bad as e:
        raise _Bad(f"must be a position: {e}") from None


@dataclass(frozen=True)
class _Prop:
    check: _Check
    required: bool = False
    default: Any = None


_NAMES = {"name": _Prop(_text, required=True), "name_zh": _Prop(_opt_text, default="")}

_PROPS: dict[Kind, dict[str, _Prop]] = {
    Kind.OPERATING_AREA: {"name": _Prop(_opt_text, default=""), "name_zh": _NAMES["name_zh"]},
    Kind.WAREHOUSE: dict(_NAMES),
    Kind.DOCK: {"warehouse": _Prop(_ref, required=True)},
    Kind.PAD: {
        "name": _Prop(_opt_text, default=""),
        "warehouse": _Prop(_ref_or_null),
        "ground_alt_m": _Prop(_number, required=True),
    },
    Kind.COMMUNITY: {
        **_NAMES,
        "population": _Prop(_integer, required=True),
        "vulnerable_households": _Prop(_integer, required=True),
    },
    Kind.GATE: {"community": _Prop(_ref, required=True)},
    Kind.DROP_POINT: {"community": _Prop(_ref, required=True)},
    Kind.NO_FLY_ZONE: {
        **_NAMES,
        "ceiling_m": _Prop(_number_or_null),
        "reason": _Prop(_opt_text, default=""),
    },
    Kind.ROAD: {
        "name": _Prop(_opt_text, default=""),
        "name_zh": _NAMES["name_zh"],
        "speed_limit_kmh": _Prop(_number, default=DEFAULT_SPEED_LIMIT_KMH),
        "oneway": _Prop(_boolean, default=False),
        "layer": _Prop(_integer, default=0),
    },
}

_TOP_PROPS: dict[str, _Prop] = {
    "name": _Prop(_text, required=True),
    "name_zh": _Prop(_opt_text, default=""),
    "description": _Prop(_opt_text, default=""),
    "version": _Prop(_integer, default=FORMAT_VERSION),
    "map_id": _Prop(_text, required=True),
    "origin": _Prop(_lonlat),
    "max_altitude_m": _Prop(_number, default=DEFAULT_MAX_ALTITUDE_M),
}


def _read_props(
    props: dict[str, Any], spec: dict[str, _Prop], ignore: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Checked values of ``props`` after ``spec``, and the reasons of what is wrong."""
    out: dict[str, Any] = {}
    errors: list[str] = []
    skip = set(ignore)
    for key in props:
        if key in spec or key in skip or key in _STYLE_KEYS or key.startswith("x-"):
            continue
        hint = difflib.get_close_matches(key, list(spec), n=1)
        errors.append(
            f"unknown property {key!r} "
            + (
                f"(did you mean {hint[0]!r}?)"
                if hint
                else "(free annotations go in properties starting with 'x-')"
            )
        )
    for key, p in spec.items():
        if key not in props:
            if p.required:
                errors.append(f"missing property {key!r}")
            else:
                out[key] = p.default
            continue
        try:
            out[key] = p.check(props[key])
        except _Bad as e:
            errors.append(f"property {key!r} {e}")
    return out, errors


# --- positions and geometry --------------------------------------------------------------------


def _position(v: Any) -> LatLon:
    """An RFC 7946 position [lon, lat] or [lon, lat, alt] as a LatLon."""
    if not isinstance(v, list) or len(v) not in (2, 3):
        raise _Bad(f"a position must be [lon, lat] or [lon, lat, alt], got {_short(v)}")
    if any(isinstance(c, bool) or not isinstance(c, int | float) for c in v):
        raise _Bad(f"a position holds numbers, got {_short(v)}")
    if not all(math.isfinite(c) for c in v):
        raise _Bad(f"a position holds finite numbers, got {_short(v)}")
    lon, lat = float(v[0]), float(v[1])
    if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
        swapped = -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0
        raise _Bad(
            f"position {_short(v)} is not [lon, lat] in degrees "
            "(longitude -180..180 first, then latitude -90..90)"
            + ("; it looks like [lat, lon]" if swapped else "")
        )
    return LatLon(lat, lon)


def _short(v: Any, limit: int = 60) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _line_positions(v: Any, what: str, minimum: int) -> list[LatLon]:
    if not isinstance(v, list) or len(v) < minimum:
        raise _Bad(f"{what} needs at least {minimum} positions")
    return [_position(p) for p in v]


def _parse_geometry(geom: Any, expected: str) -> Any:
    """The geometry's coordinates as LatLon structures, after RFC 7946 rules."""
    if geom is None:
        raise _Bad(f"has no geometry (a {expected} is required)")
    if not isinstance(geom, dict):
        raise _Bad("geometry must be a GeoJSON geometry object")
    gtype = geom.get("type")
    if gtype != expected:
        raise _Bad(f"geometry must be a {expected}, got {_short(gtype)}")
    coords = geom.get("coordinates")
    if expected == "Point":
        return _position(coords)
    if expected == "LineString":
        return _line_positions(coords, "a LineString", 2)
    if not isinstance(coords, list) or not coords:
        raise _Bad("a Polygon needs at least its exterior ring")
    rings = []
    for k, ring in enumerate(coords):
        what = "the exterior ring" if k == 0 else f"hole {k}"
        pts = _line_positions(ring, what, 4)
        if pts[0] != pts[-1]:
            raise _Bad(f"{what} is not closed (its first and last positions differ)")
        rings.append(pts)
    return rings


def _fmt(p: LatLon) -> str:
    return f"[{p.lon:.6f}, {p.lat:.6f}]"


_REASON_AT = re.compile(r"^(.*)\[(-?[\d.eE+-]+) (-?[\d.eE+-]+)\]$")


# --- parsed features ---------------------------------------------------------------------------


@dataclass
class _Feature:
    index: int
    kind: Kind
    id: str | None
    props: dict[str, Any]
    coords: Any
    """Point: LatLon; LineString: list[LatLon]; Polygon: list of rings."""
    geom: Any = None
    """Local-frame shapely geometry (pass 3)."""
    ok: bool = True

    @property
    def xy(self) -> tuple[float, float]:
        return (float(self.geom.x), float(self.geom.y))


@dataclass
class _Reader:
    source: str
    problems: list[WorldProblem] = field(default_factory=list)
    unreadable_ids: set[str] = field(default_factory=set)
    """Ids of features too broken to read (no kind): references to them are not reported
    again."""

    def add(
        self,
        f: _Feature | int | None,
        reason: str,
        *,
        kind: str | None = None,
        ident: str | None = None,
    ) -> None:
        if isinstance(f, _Feature):
            f.ok = False
            self.problems.append(WorldProblem(f.index, f.id, f.kind.value, reason))
        else:
            self.problems.append(WorldProblem(f, ident, kind, reason))

    def fail(self) -> WorldFileError:
        problems = sorted(self.problems, key=lambda p: -1 if p.index is None else p.index)
        first = problems[0]
        reason = first.reason
        if len(problems) > 1:
            rest = "; ".join(f"{p.label}: {p.reason}" for p in problems[1:])
            reason += f"; and {len(problems) - 1} more: {rest}"
        err = WorldFileError(
            reason, feature=None if first.index is None else first.label, path=self.source
        )
        err.fields["problems"] = [p.to_dict() for p in problems]
        return err


# --- entry points ------------------------------------------------------------------------------


def load_world(path: str | os.PathLike[str]) -> World:
    """Read and check the world file at ``path``; raises WorldFileError if it is not valid."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise WorldFileError(f"not UTF-8 text: {e}", path=source) from None
    except OSError as e:
        raise WorldFileError(f"cannot read the file: {e.strerror or e}", path=source) from None
    return parse_world_text(text, source)


def parse_world_text(text: str, source: str = "") -> World:
    """Parse and check a world file's text."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        data = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise WorldFileError(
            f"not JSON: {e.msg} at line {e.lineno} column {e.colno}", path=source
        ) from None
    except ValueError as e:
        raise WorldFileError(f"not JSON: {e}", path=source) from None
    return parse_world(data, source)


def parse_world(data: Any, source: str = "") -> World:
    """Check a decoded world file (a GeoJSON FeatureCollection) and build its World."""
    r = _Reader(source)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        got = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise WorldFileError(
            f"not a GeoJSON FeatureCollection (type is {_short(got)})", path=source
        )
    features = data.get("features")
    if not isinstance(features, list):
        raise WorldFileError("'features' must be an array of Feature objects", path=source)
    top_raw = data.get("properties")
    if not isinstance(top_raw, dict):
        raise WorldFileError(
            "the collection needs a top-level 'properties' object (name, map_id, ...)",
            path=source,
        )
    top, errors = _read_props(top_raw, _TOP_PROPS)
    for e in errors:
        r.add(None, e)
    if "version" in top and top["version"] != FORMAT_VERSION:
        r.add(
            None,
            f"version {top['version']} is not supported (this loader reads "
            f"version {FORMAT_VERSION})",
        )
    if isinstance(top.get("map_id"), str) and not _MAP_ID_RE.match(top["map_id"]):
        r.add(None, "property 'map_id' must be letters, digits and . _ : - (at most 64)")
    alt = top.get("max_altitude_m")
    if isinstance(alt, float) and not 0 < alt <= 500:
        r.add(None, f"property 'max_altitude_m' must be in (0, 500] metres, got {alt:g}")

    parsed = [f for f in (_read_feature(r, i, raw) for i, raw in enumerate(features)) if f]
    areas = [f for f in parsed if f.kind is Kind.OPERATING_AREA]
    if not areas:
        r.add(None, "no feature of kind 'operating_area' (a world has exactly one)")
    for extra in areas[1:]:
        r.add(extra, f"a world has one operating_area; the first is features[{areas[0].index}]")
    if not areas or not areas[0].ok:
        raise r.fail()

    frame = _frame(r, areas[0], top.get("origin"))
    for f in parsed:
        if f.ok:
            _localise(r, f, frame)
    if not areas[0].ok:
        raise r.fail()
    checker = _Checker(r, parsed, areas[0], frame)
    checker.run()
    if r.problems:
        raise r.fail()
    return checker.build(top, source)


# --- pass 2: one feature -----------------------------------------------------------------------


def _read_feature(r: _Reader, index: int, raw: Any) -> _Feature | None:
    if not isinstance(raw, dict) or raw.get("type") != "Feature":
        r.add(index, "not a GeoJSON Feature object")
        return None
    props = raw.get("properties")
    fid_raw = raw.get("id")
    for candidate in (fid_raw, props.get("id") if isinstance(props, dict) else None):
        if isinstance(candidate, str):
            r.unreadable_ids.add(candidate)  # until the feature reads well (below)
    if not isinstance(props, dict):
        r.add(
            index,
            "needs a 'properties' object with a 'kind'",
            ident=fid_raw if isinstance(fid_raw, str) else None,
        )
        return None
    if fid_raw is None:
        fid_raw = props.get("id")
    elif "id" in props and props["id"] != fid_raw:
        r.add(
            index,
            f"the feature id {_short(fid_raw)} and properties.id {_short(props['id'])} differ",
            ident=str(fid_raw),
        )
        return None
    kind_raw = props.get("kind")
    try:
        kind = Kind(str(kind_raw))
    except ValueError:
        hint = difflib.get_close_matches(str(kind_raw), [k.value for k in Kind], n=1)
        reason = (
            "missing property 'kind'"
            if kind_raw is None
            else f"unknown kind {_short(kind_raw)}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
        r.add(
            index,
            reason + f"; kinds are {', '.join(k.value for k in Kind)}",
            ident=fid_raw if isinstance(fid_raw, str) else None,
        )
        return None
    fid: str | None = None
    problems: list[str] = []
    if fid_raw is None:
        if kind in _ID_REQUIRED:
            problems.append(f"a {kind.value} needs an 'id'")
    elif not isinstance(fid_raw, str) or not _ID_RE.match(fid_raw):
        problems.append(
            f"id {_short(fid_raw)} must be a string of letters, digits and . _ - "
            "(at most 64, starting with a letter or digit)"
        )
    else:
        fid = fid_raw
    values, errors = _read_props(props, _PROPS[kind], ignore=("kind", "id"))
    problems += errors
    coords = None
    try:
        coords = _parse_geometry(raw.get("geometry"), _GEOMETRY[kind])
    except _Bad as e:
        problems.append(str(e))
    f = _Feature(index, kind, fid, values, coords)
    for p in problems:
        r.add(f, p)
    if fid is not None:
        r.unreadable_ids.discard(fid)
    return f


def _frame(r: _Reader, area: _Feature, origin: LatLon | None) -> LocalFrame:
    """The local frame: at ``origin`` if given, else at the operating area's centroid."""
    exterior: list[LatLon] = area.coords[0]
    probe = LocalFrame(exterior[0].lat, exterior[0].lon)
    shell = Polygon([probe.to_xy(p.lat, p.lon) for p in exterior])
    c = shell.centroid if shell.is_valid and not shell.is_empty else shell.envelope.centroid
    lat, lon = probe.to_latlon(c.x, c.y)
    if origin is None:
        return LocalFrame(lat, lon)
    frame = LocalFrame(origin.lat, origin.lon)
    ox, oy = probe.to_xy(origin.lat, origin.lon)
    if shell.distance(Point(ox, oy)) > ORIGIN_MAX_FROM_AREA_M:
        r.add(
            None,
            f"'origin' {_fmt(origin)} is more than {ORIGIN_MAX_FROM_AREA_M / 1000:g} km "
            "from the operating area; put it inside the area",
        )
    return frame


def _localise(r: _Reader, f: _Feature, frame: LocalFrame) -> None:
    """Pass 3: the feature's geometry in the local frame, checked."""

    def xy(p: LatLon) -> tuple[float, float]:
        return frame.to_xy(p.lat, p.lon)

    gtype = _GEOMETRY[f.kind]
    if gtype == "Point":
        f.geom = Point(xy(f.coords))
    elif gtype == "LineString":
        line = LineString([xy(p) for p in f.coords])
        if line.length <= SNAP_TOLERANCE_M:
            r.add(
                f,
                f"road is {line.length:.2f} m long; a road must be longer than "
                f"{SNAP_TOLERANCE_M:g} m",
            )
        elif not line.is_simple:
            r.add(f, "road crosses itself; split it into roads that do not")
        f.geom = line
    else:
        rings = [[xy(p) for p in ring] for ring in f.coords]
        poly = Polygon(rings[0], rings[1:])
        if not poly.is_valid:
            why = shapely.is_valid_reason(poly)
            m = _REASON_AT.match(why)
            if m:
                lat, lon = frame.to_latlon(float(m.group(2)), float(m.group(3)))
                why = f"{m.group(1).lower()} at {_fmt(LatLon(lat, lon))}"
            r.add(f, f"invalid polygon: {why}")
        elif poly.area <= 1.0:
            r.add(f, f"polygon encloses {poly.area:.2f} m²; it must enclose more than 1 m²")
        f.geom = poly


# --- pass 4 and 5: the world as a whole --------------------------------------------------------


class _Checker:
    """Checks the features against each other and builds the World from the good ones."""

    def __init__(self, r: _Reader, parsed: list[_Feature], area_f: _Feature, frame: LocalFrame):
        self.r = r
        self.parsed = parsed
        self.area_f = area_f
        self.area: Polygon = area_f.geom
        self.area_tol = self.area.buffer(BOUNDARY_TOLERANCE_M)
        self.frame = frame
        self.by_id: dict[str, _Feature] = {}
        self.warehouses: dict[str, _Feature] = {}
        self.docks: dict[str, _Feature] = {}
        """Warehouse id -> its dock."""
        self.pads: list[_Feature] = []
        self.communities: dict[str, _Feature] = {}
        self.gates: dict[str, _Feature] = {}
        """Community id -> its gate."""
        self.drop_points: dict[str, _Feature] = {}
        """Community id -> its drop point."""
        self.no_fly_zones: list[_Feature] = []
        self.roads: list[_Feature] = []
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

    def of_kind(self, kind: Kind) -> list[_Feature]:
        """Features of ``kind`` still good."""
        return [f for f in self.parsed if f.kind is kind and f.ok]

    def ref(self, f: _Feature, key: str, kind: Kind) -> _Feature | None:
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

    def inside_area(self, f: _Feature) -> bool:
        """Whether point feature ``f`` is inside the operating area (reported if not)."""
        if self.area.covers(f.geom):
            return True
        lat, lon = self.frame.to_latlon(*f.xy)
        hint = ""
        if -90 <= lon <= 90 and self.area.covers(Point(self.frame.to_xy(lon, lat))):
            hint = " (its coordinates look swapped: GeoJSON positions are [lon, lat])"
        self.r.add(
            f,
            f"point {_fmt(LatLon(lat, lon))} is outside the operating area, "
            f"{self.area.exterior.distance(f.geom):.0f} m from it{hint}",
        )
        return False

    def in_no_fly_zone(self, f: _Feature, what: str) -> bool:
        """Whether ``f`` touches a no-fly zone at any height (reported if so)."""
        for z in self.no_fly_zones:
            if z.geom.intersects(f.geom):
                self.r.add(f, f"{what} is inside no-fly zone {z.id} (features[{z.index}])")
                return True
        return False

    def missing(self, owner: _Feature, kind: Kind, key: str, found: dict[str, _Feature]) -> None:
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

    def check_no_fly_zones(self) -> list[_Feature]:
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

    def check_attached(self, kind: Kind) -> dict[str, _Feature]:
        """Gates or drop points: one per community, in the right place."""
        found: dict[str, _Feature] = {}
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
    def road(f: _Feature) -> Road:
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
    def ring(f: _Feature) -> tuple[tuple[float, float], ...]:
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
