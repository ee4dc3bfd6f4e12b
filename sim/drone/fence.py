"""Geofence as PX4 enforces it: uploaded polygons and circles, plus distance and height limits.

Built from the items of an uploaded fence plan: consecutive
``MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION``/``EXCLUSION`` items form one polygon of
``param1`` vertices; ``MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION``/``EXCLUSION`` items are circles of
radius ``param1``. A position breaches the fence when inclusion areas exist and it is inside
none of them, or when it is inside any exclusion area (PX4 ``Geofence::checkPolygons``), or when
it is farther than ``GF_MAX_HOR_DIST`` from home or higher than ``GF_MAX_VER_DIST`` above home
(when those are positive). Geometry is computed in a local metric frame around the fence's first
point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem
from fleet.geo import LocalFrame

XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class _Polygon:
    inclusion: bool
    vertices: tuple[XY, ...]

    def contains(self, p: XY) -> bool:
        x, y = p
        inside = False
        vs = self.vertices
        j = len(vs) - 1
        for i in range(len(vs)):
            xi, yi = vs[i]
            xj, yj = vs[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


@dataclass(frozen=True, slots=True)
class _Circle:
    inclusion: bool
    centre: XY
    radius: float

    def contains(self, p: XY) -> bool:
        return math.hypot(p[0] - self.centre[0], p[1] - self.centre[1]) <= self.radius


class FenceError(ValueError):
    """An uploaded fence plan that does not describe valid shapes."""


class Fence:
    """The uploaded fence areas of one vehicle."""

    def __init__(self, items: Sequence[MissionItem] = ()) -> None:
        self._frame: LocalFrame | None = None
        self._shapes: list[_Polygon | _Circle] = []
        if items:
            self._frame = LocalFrame(items[0].lat, items[0].lon)
        i = 0
        while i < len(items):
            it = items[i]
            if it.command in (
                mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
            ):
                n = int(it.param1 + 0.5)
                group = items[i : i + n]
                if n < 3 or len(group) < n or any(g.command != it.command for g in group):
                    raise FenceError(f"fence polygon at item {i} is inconsistent")
                inclusion = it.command == mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
                self._shapes.append(
                    _Polygon(inclusion, tuple(self._xy(g.lat, g.lon) for g in group))
                )
                i += n
            elif it.command in (
                mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
                mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
            ):
                inclusion = it.command == mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
                self._shapes.append(_Circle(inclusion, self._xy(it.lat, it.lon), it.param1))
                i += 1
            else:  # return point and anything else: not an area
                i += 1

    def _xy(self, lat: float, lon: float) -> XY:
        assert self._frame is not None
        return self._frame.to_xy(lat, lon)

    @property
    def empty(self) -> bool:
        return not self._shapes

    def inside_areas(self, lat: float, lon: float) -> bool:
        """Whether (lat, lon) respects the uploaded areas."""
        if not self._shapes:
            return True
        p = self._xy(lat, lon)
        has_inclusion = False
        in_inclusion = False
        for s in self._shapes:
            if s.inclusion:
                has_inclusion = True
                if not in_inclusion and s.contains(p):
                    in_inclusion = True
            elif s.contains(p):
                return False
        return in_inclusion or not has_inclusion


def breach_reason(
    fence: Fence,
    lat: float,
    lon: float,
    height_above_home: float,
    distance_from_home: float,
    max_hor_dist: float,
    max_ver_dist: float,
) -> str | None:
    """Why a position breaches the geofence, or None."""
    if max_hor_dist > 0 and distance_from_home >= max_hor_dist:  # PX4: inside is dist < max
        return "maximum distance from home exceeded"
    if max_ver_dist > 0 and height_above_home > max_ver_dist:
        return "maximum altitude exceeded"
    if not fence.inside_areas(lat, lon):
        return "outside the fence areas"
    return None
