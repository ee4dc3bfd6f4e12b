"""The vocabulary of world files and the reading of one feature (passes 1 and 2 of the loader).

What a world file may say (``docs/world-format.md``): the feature kinds (:class:`Kind`), the
geometry each has, the properties of each kind and of the collection with their checks and
defaults, RFC 7946 positions (``[lon, lat]``) and geometries; :func:`read_feature` reads one
feature into a :class:`Feature`, reporting every problem it finds to the :class:`Reader`, which
turns them into one :class:`~fleet.errors.WorldFileError` (:class:`WorldProblem`,
:func:`problems_of`). Part of the loader :mod:`fleet.worldfile`; the checks of the features
against each other are in :mod:`fleet.worldfile_checks`. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fleet.errors import WorldFileError
from fleet.geo import LatLon

FORMAT_VERSION = 1
"""Version of the world file format this loader reads (top-level ``version``)."""
DEFAULT_MAX_ALTITUDE_M = 120.0
"""Default ceiling for drones above ground: the 120 m limit of light UAS rules (CAAC, EASA)."""
DEFAULT_SPEED_LIMIT_KMH = 30.0
"""Speed limit of a road that gives none: the usual limit of residential streets."""

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A feature id: letters, digits and ``. _ -``, at most 64, starting with a letter or digit."""
MAP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
"""A ``map_id``: as a feature id, ``:`` allowed too."""
STYLE_KEYS = frozenset(
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


GEOMETRY = {
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
"""The GeoJSON geometry type of each kind."""
ID_REQUIRED = {Kind.WAREHOUSE, Kind.PAD, Kind.COMMUNITY, Kind.NO_FLY_ZONE, Kind.ROAD}
"""Kinds whose features need an id (others are found through the feature they name)."""


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


class Bad(Exception):
    """A problem found while reading one value; caught where the feature is known."""


# --- property checks ---------------------------------------------------------------------------

_Check = Callable[[Any], Any]
"""Checks one property value: returns it cleaned or raises :class:`Bad`."""


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise Bad("must be a non-empty string")
    return v.strip()


def _opt_text(v: Any) -> str:
    if not isinstance(v, str):
        raise Bad("must be a string")
    return v.strip()


def _ref(v: Any) -> str:
    if not isinstance(v, str) or not ID_RE.match(v):
        raise Bad("must be the id (a string) of another feature")
    return v


def _ref_or_null(v: Any) -> str | None:
    return None if v is None else _ref(v)


def _integer(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise Bad(f"must be an integer, got {json.dumps(v, ensure_ascii=False)}")
    return v


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise Bad(f"must be a number, got {json.dumps(v, ensure_ascii=False)}")
    return float(v)


def _number_or_null(v: Any) -> float | None:
    return None if v is None else _number(v)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad(f"must be true or false, got {json.dumps(v, ensure_ascii=False)}")
    return v


def _lonlat(v: Any) -> LatLon:
    try:
        return position(v)
    except Bad as e:
        raise Bad(f"must be a position: {e}") from None


@dataclass(frozen=True)
class Prop:
    """One property of a kind: how its value is checked, whether it is required, its default."""

    check: _Check
    required: bool = False
    default: Any = None


_NAMES = {"name": Prop(_text, required=True), "name_zh": Prop(_opt_text, default="")}

PROPS: dict[Kind, dict[str, Prop]] = {
    Kind.OPERATING_AREA: {"name": Prop(_opt_text, default=""), "name_zh": _NAMES["name_zh"]},
    Kind.WAREHOUSE: dict(_NAMES),
    Kind.DOCK: {"warehouse": Prop(_ref, required=True)},
    Kind.PAD: {
        "name": Prop(_opt_text, default=""),
        "warehouse": Prop(_ref_or_null),
        "ground_alt_m": Prop(_number, required=True),
    },
    Kind.COMMUNITY: {
        **_NAMES,
        "population": Prop(_integer, required=True),
        "vulnerable_households": Prop(_integer, required=True),
    },
    Kind.GATE: {"community": Prop(_ref, required=True)},
    Kind.DROP_POINT: {"community": Prop(_ref, required=True)},
    Kind.NO_FLY_ZONE: {
        **_NAMES,
        "ceiling_m": Prop(_number_or_null),
        "reason": Prop(_opt_text, default=""),
    },
    Kind.ROAD: {
        "name": Prop(_opt_text, default=""),
        "name_zh": _NAMES["name_zh"],
        "speed_limit_kmh": Prop(_number, default=DEFAULT_SPEED_LIMIT_KMH),
        "oneway": Prop(_boolean, default=False),
        "layer": Prop(_integer, default=0),
    },
}

TOP_PROPS: dict[str, Prop] = {
    "name": Prop(_text, required=True),
    "name_zh": Prop(_opt_text, default=""),
    "description": Prop(_opt_text, default=""),
    "version": Prop(_integer, default=FORMAT_VERSION),
    "map_id": Prop(_text, required=True),
    "origin": Prop(_lonlat),
    "max_altitude_m": Prop(_number, default=DEFAULT_MAX_ALTITUDE_M),
}


def read_props(
    props: dict[str, Any], spec: dict[str, Prop], ignore: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Checked values of ``props`` after ``spec``, and the reasons of what is wrong."""
    out: dict[str, Any] = {}
    errors: list[str] = []
    skip = set(ignore)
    for key in props:
        if key in spec or key in skip or key in STYLE_KEYS or key.startswith("x-"):
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
        except Bad as e:
            errors.append(f"property {key!r} {e}")
    return out, errors


# --- positions and geometry --------------------------------------------------------------------


def position(v: Any) -> LatLon:
    """An RFC 7946 position [lon, lat] or [lon, lat, alt] as a LatLon."""
    if not isinstance(v, list) or len(v) not in (2, 3):
        raise Bad(f"a position must be [lon, lat] or [lon, lat, alt], got {short(v)}")
    if any(isinstance(c, bool) or not isinstance(c, int | float) for c in v):
        raise Bad(f"a position holds numbers, got {short(v)}")
    if not all(math.isfinite(c) for c in v):
        raise Bad(f"a position holds finite numbers, got {short(v)}")
    lon, lat = float(v[0]), float(v[1])
    if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
        swapped = -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0
        raise Bad(
            f"position {short(v)} is not [lon, lat] in degrees "
            "(longitude -180..180 first, then latitude -90..90)"
            + ("; it looks like [lat, lon]" if swapped else "")
        )
    return LatLon(lat, lon)


def short(v: Any, limit: int = 60) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def line_positions(v: Any, what: str, minimum: int) -> list[LatLon]:
    if not isinstance(v, list) or len(v) < minimum:
        raise Bad(f"{what} needs at least {minimum} positions")
    return [position(p) for p in v]


def parse_geometry(geom: Any, expected: str) -> Any:
    """The geometry's coordinates as LatLon structures, after RFC 7946 rules."""
    if geom is None:
        raise Bad(f"has no geometry (a {expected} is required)")
    if not isinstance(geom, dict):
        raise Bad("geometry must be a GeoJSON geometry object")
    gtype = geom.get("type")
    if gtype != expected:
        raise Bad(f"geometry must be a {expected}, got {short(gtype)}")
    coords = geom.get("coordinates")
    if expected == "Point":
        return position(coords)
    if expected == "LineString":
        return line_positions(coords, "a LineString", 2)
    if not isinstance(coords, list) or not coords:
        raise Bad("a Polygon needs at least its exterior ring")
    rings = []
    for k, ring in enumerate(coords):
        what = "the exterior ring" if k == 0 else f"hole {k}"
        pts = line_positions(ring, what, 4)
        if pts[0] != pts[-1]:
            raise Bad(f"{what} is not closed (its first and last positions differ)")
        rings.append(pts)
    return rings


def fmt(p: LatLon) -> str:
    """A position as a world file writes it: ``[lon, lat]``."""
    return f"[{p.lon:.6f}, {p.lat:.6f}]"


REASON_AT = re.compile(r"^(.*)\[(-?[\d.eE+-]+) (-?[\d.eE+-]+)\]$")
"""Shapely's invalidity reason with the local-frame point where it occurs."""


# --- parsed features ---------------------------------------------------------------------------


@dataclass
class Feature:
    """One feature as read (pass 2), then placed in the local frame (pass 3)."""

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
class Reader:
    """Collects the problems of one world file and turns them into one WorldFileError."""

    source: str
    problems: list[WorldProblem] = field(default_factory=list)
    unreadable_ids: set[str] = field(default_factory=set)
    """Ids of features too broken to read (no kind): references to them are not reported
    again."""

    def add(
        self,
        f: Feature | int | None,
        reason: str,
        *,
        kind: str | None = None,
        ident: str | None = None,
    ) -> None:
        if isinstance(f, Feature):
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


# --- pass 2: one feature -----------------------------------------------------------------------


def read_feature(r: Reader, index: int, raw: Any) -> Feature | None:
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
            f"the feature id {short(fid_raw)} and properties.id {short(props['id'])} differ",
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
            else f"unknown kind {short(kind_raw)}"
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
        if kind in ID_REQUIRED:
            problems.append(f"a {kind.value} needs an 'id'")
    elif not isinstance(fid_raw, str) or not ID_RE.match(fid_raw):
        problems.append(
            f"id {short(fid_raw)} must be a string of letters, digits and . _ - "
            "(at most 64, starting with a letter or digit)"
        )
    else:
        fid = fid_raw
    values, errors = read_props(props, PROPS[kind], ignore=("kind", "id"))
    problems += errors
    coords = None
    try:
        coords = parse_geometry(raw.get("geometry"), GEOMETRY[kind])
    except Bad as e:
        problems.append(str(e))
    f = Feature(index, kind, fid, values, coords)
    for p in problems:
        r.add(f, p)
    if fid is not None:
        r.unreadable_ids.discard(fid)
    return f
