"""Geodesy for a street-sized operating area: WGS84 points, distances and a local metric frame.

A street covers a few kilometres, so streetfleet works in a *local tangent plane* around an
origin (the operating area's reference point): x east, y north, metres. The projection is the
equirectangular approximation with WGS84 radii of curvature at the origin latitude; over 5 km its
error is below 2 cm, far under GNSS noise. The same frame is the VDA 5050 map frame of an
operating area (see ``docs/protocols/vda5050.md``) and the frame of geometry checks
(geofences, coverage). Latitudes and longitudes are degrees, altitudes metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WGS84_A = 6_378_137.0
"""WGS84 semi-major axis, metres."""
WGS84_F = 1 / 298.257223563
"""WGS84 flattening."""
WGS84_E2 = WGS84_F * (2 - WGS84_F)
"""WGS84 first eccentricity squared."""
EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius, metres (for great-circle distances)."""


@dataclass(frozen=True, slots=True)
class LatLon:
    """A WGS84 point (degrees)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
            raise ValueError(f"not a WGS84 position: lat={self.lat}, lon={self.lon}")


@dataclass(frozen=True, slots=True)
class Position:
    """A WGS84 point with altitude: ``alt`` above mean sea level, ``rel_alt`` above home."""

    lat: float
    lon: float
    alt: float = 0.0
    rel_alt: float = 0.0

    @property
    def latlon(self) -> LatLon:
        return LatLon(self.lat, self.lon)


def haversine_m(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(a_lat), math.radians(b_lat)
    dp, dl = p2 - p1, math.radians(b_lon - a_lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_m(a: LatLon | Position, b: LatLon | Position) -> float:
    """Horizontal distance between two nearby points, metres, on the WGS84 ellipsoid.

    Uses the local frame at ``a`` so that it agrees with :class:`LocalFrame` geometry; for
    points more than ~50 km apart use :func:`haversine_m`.
    """
    x, y = LocalFrame(a.lat, a.lon).to_xy(b.lat, b.lon)
    return math.hypot(x, y)


def bearing_deg(a: LatLon | Position, b: LatLon | Position) -> float:
    """Initial bearing from ``a`` to ``b``, degrees clockwise from north in [0, 360)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """Local east/north metric frame around ``origin`` (see module docstring)."""

    origin_lat: float
    origin_lon: float
    _m_per_rad_lat: float = field(init=False, repr=False, compare=False)
    _m_per_rad_lon: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        phi = math.radians(self.origin_lat)
        s2 = math.sin(phi) ** 2
        n = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)  # prime vertical radius
        m = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5  # meridional radius
        object.__setattr__(self, "_m_per_rad_lat", m)
        object.__setattr__(self, "_m_per_rad_lon", n * math.cos(phi))

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        """WGS84 degrees to local (x east, y north) metres."""
        return (
            math.radians(lon - self.origin_lon) * self._m_per_rad_lon,
            math.radians(lat - self.origin_lat) * self._m_per_rad_lat,
        )

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """Local (x east, y north) metres to WGS84 degrees."""
        return (
            self.origin_lat + math.degrees(y / self._m_per_rad_lat),
            self.origin_lon + math.degrees(x / self._m_per_rad_lon),
        )

    def offset(self, lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
        """The point ``east_m``/``north_m`` metres from (lat, lon)."""
        x, y = self.to_xy(lat, lon)
        return self.to_latlon(x + east_m, y + north_m)


def offset_latlon(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m``/``north_m`` metres from (lat, lon), in a frame centred there."""
    return LocalFrame(lat, lon).to_latlon(east_m, north_m)
