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

This module reads the document (pass 1) and puts the features in the local frame (pass 3); the
vocabulary and the reading of one feature (pass 2) are in :mod:`fleet.worldfile_features`, the
checks of the features against each other and the building of the World (passes 4 and 5) in
:mod:`fleet.worldfile_checks`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import LineString, Point, Polygon

from fleet.errors import WorldFileError
from fleet.geo import LatLon, LocalFrame
from fleet.roads import SNAP_TOLERANCE_M
from fleet.world import World
from fleet.worldfile_checks import Checker
from fleet.worldfile_features import (
    FORMAT_VERSION,
    GEOMETRY,
    MAP_ID_RE,
    REASON_AT,
    TOP_PROPS,
    Feature,
    Kind,
    Reader,
    WorldProblem,
    fmt,
    problems_of,
    read_feature,
    read_props,
    short,
)

__all__ = [
    "FORMAT_VERSION",
    "Kind",
    "WorldProblem",
    "load_world",
    "parse_world",
    "parse_world_text",
    "problems_of",
]

ORIGIN_MAX_FROM_AREA_M = 20_000.0
"""Farthest the local frame's origin may be from the operating area."""


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
    r = Reader(source)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        got = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise WorldFileError(f"not a GeoJSON FeatureCollection (type is {short(got)})", path=source)
    features = data.get("features")
    if not isinstance(features, list):
        raise WorldFileError("'features' must be an array of Feature objects", path=source)
    top_raw = data.get("properties")
    if not isinstance(top_raw, dict):
        raise WorldFileError(
            "the collection needs a top-level 'properties' object (name, map_id, ...)",
            path=source,
        )
    top, errors = read_props(top_raw, TOP_PROPS)
    for e in errors:
        r.add(None, e)
    if "version" in top and top["version"] != FORMAT_VERSION:
        r.add(
            None,
            f"version {top['version']} is not supported (this loader reads "
            f"version {FORMAT_VERSION})",
        )
    if isinstance(top.get("map_id"), str) and not MAP_ID_RE.match(top["map_id"]):
        r.add(None, "property 'map_id' must be letters, digits and . _ : - (at most 64)")
    alt = top.get("max_altitude_m")
    if isinstance(alt, float) and not 0 < alt <= 500:
        r.add(None, f"property 'max_altitude_m' must be in (0, 500] metres, got {alt:g}")

    parsed = [f for f in (read_feature(r, i, raw) for i, raw in enumerate(features)) if f]
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
    checker = Checker(r, parsed, areas[0], frame)
    checker.run()
    if r.problems:
        raise r.fail()
    return checker.build(top, source)


def _frame(r: Reader, area: Feature, origin: LatLon | None) -> LocalFrame:
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
            f"'origin' {fmt(origin)} is more than {ORIGIN_MAX_FROM_AREA_M / 1000:g} km "
            "from the operating area; put it inside the area",
        )
    return frame


def _localise(r: Reader, f: Feature, frame: LocalFrame) -> None:
    """Pass 3: the feature's geometry in the local frame, checked."""

    def xy(p: LatLon) -> tuple[float, float]:
        return frame.to_xy(p.lat, p.lon)

    gtype = GEOMETRY[f.kind]
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
            m = REASON_AT.match(why)
            if m:
                lat, lon = frame.to_latlon(float(m.group(2)), float(m.group(3)))
                why = f"{m.group(1).lower()} at {fmt(LatLon(lat, lon))}"
            r.add(f, f"invalid polygon: {why}")
        elif poly.area <= 1.0:
            r.add(f, f"polygon encloses {poly.area:.2f} m²; it must enclose more than 1 m²")
        f.geom = poly
