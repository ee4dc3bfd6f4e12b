"""Predicted flight timeline of a broadcast route: where the drone is, second by second.

The prediction follows how a PX4 multicopter flies a mission of waypoints with hold times: it
climbs vertically to the flight altitude (``MPC_TKO_SPEED``), flies each leg in a straight line
accelerating at ``MPC_ACC_HOR`` up to ``MPC_XY_CRUISE`` and braking to stop on the waypoint,
holds there for the waypoint's hold time, and after the last waypoint (above the pad) lands at
the landing speed. Times are seconds from take-off; positions are local metres and heights above
the pad. The planner uses it to size the flight (endurance) and, with the payload's playback
rules (:mod:`missions.broadcast.playback`), to predict coverage before flight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Kinematics:
    """Speed limits of the drone (PX4 defaults)."""

    cruise_mps: float = 5.0
    """MPC_XY_CRUISE: horizontal speed in missions."""
    accel_mps2: float = 3.0
    """MPC_ACC_HOR."""
    climb_mps: float = 1.5
    """MPC_TKO_SPEED: take-off climb rate."""
    land_mps: float = 0.85
    """Mean descent rate of the landing profile (1 m/s high up, 0.7 m/s near the ground)."""


@dataclass(frozen=True, slots=True)
class RoutePoint:
    """A waypoint of the route at flight altitude (local metres)."""

    x: float
    y: float
    hold_s: float = 0.0
    station: bool = False
    """Part of a lane (broadcasting) rather than a transit."""


@dataclass(frozen=True)
class Track:
    """Sampled positions: ``t`` seconds from take-off, ``x``/``y`` local metres, ``z`` height."""

    t: FloatArray
    x: FloatArray
    y: FloatArray
    z: FloatArray

    @property
    def duration_s(self) -> float:
        return float(self.t[-1]) if len(self.t) else 0.0

    def shifted(self, t0: float) -> Track:
        """The same track with times offset by ``t0`` (e.g. to world epoch seconds)."""
        return Track(self.t + t0, self.x, self.y, self.z)

    @property
    def length_m(self) -> float:
        return float(np.sum(np.hypot(np.diff(self.x), np.diff(self.y))))


def _leg_profile(length: float, vmax: float, accel: float) -> tuple[float, float, float]:
    """(accel time, cruise time, peak speed) of a rest-to-rest trapezoidal leg."""
    if length <= 0:
        return 0.0, 0.0, 0.0
    if length >= vmax * vmax / accel:
        ta = vmax / accel
        return ta, (length - vmax * ta) / vmax, vmax
    ta = math.sqrt(length / accel)
    return ta, 0.0, accel * ta


def leg_time(length: float, k: Kinematics) -> float:
    """Seconds to fly a rest-to-rest leg of ``length`` metres."""
    ta, tc, _ = _leg_profile(length, k.cruise_mps, k.accel_mps2)
    return 2 * ta + tc


def _distance_at(t: FloatArray, ta: float, tc: float, vp: float, accel: float) -> FloatArray:
    d_acc = 0.5 * accel * ta * ta
    out = np.where(
        t < ta,
        0.5 * accel * t * t,
        np.where(
            t < ta + tc,
            d_acc + vp * (t - ta),
            d_acc + vp * tc + vp * (t - ta - tc) - 0.5 * accel * (t - ta - tc) ** 2,
        ),
    )
    return np.asarray(out, dtype=np.float64)


def simulate(
    start: tuple[float, float],
    altitude: float,
    route: Sequence[RoutePoint],
    kin: Kinematics = Kinematics(),
    dt: float = 0.5,
) -> Track:
    """The timeline of: take off at ``start``, fly ``route`` at ``altitude``, land where the
    route ends."""
    x0, y0 = start
    ts: list[FloatArray] = [np.array([0.0])]
    xs: list[FloatArray] = [np.array([x0])]
    ys: list[FloatArray] = [np.array([y0])]
    zs: list[FloatArray] = [np.array([0.0])]
    now = 0.0

    def phase(duration: float) -> FloatArray:
        """Sample times within a phase of ``duration`` seconds (excluding its start)."""
        nonlocal now
        n = max(1, math.ceil(duration / dt))
        local = np.linspace(0.0, duration, n + 1)[1:]
        ts.append(now + local)
        now += duration
        return local

    def still(local: FloatArray, x: float, y: float) -> None:
        xs.append(np.full_like(local, x))
        ys.append(np.full_like(local, y))

    if altitude > 0:
        local = phase(altitude / kin.climb_mps)
        still(local, x0, y0)
        zs.append(local * kin.climb_mps)
    cx, cy = x0, y0
    for p in route:
        length = math.hypot(p.x - cx, p.y - cy)
        if length > 1e-6:
            ta, tc, vp = _leg_profile(length, kin.cruise_mps, kin.accel_mps2)
            local = phase(2 * ta + tc)
            d = _distance_at(local, ta, tc, vp, kin.accel_mps2)
            xs.append(cx + (p.x - cx) / length * d)
            ys.append(cy + (p.y - cy) / length * d)
            zs.append(np.full_like(local, altitude))
        cx, cy = p.x, p.y
        if p.hold_s > 0:
            local = phase(p.hold_s)
            still(local, cx, cy)
            zs.append(np.full_like(local, altitude))
    if altitude > 0:
        local = phase(altitude / kin.land_mps)
        still(local, cx, cy)
        zs.append(np.maximum(0.0, altitude - local * kin.land_mps))
    return Track(np.concatenate(ts), np.concatenate(xs), np.concatenate(ys), np.concatenate(zs))
