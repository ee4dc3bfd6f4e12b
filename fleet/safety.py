"""Flight safety rules that need no I/O: the failsafe policy every drone is given before a
flight, the airspace check of a flight plan, and how long a silent drone may still be flying.

What the service does with them (set and read back the policy, recall a drone short of energy,
release a lost drone's work) is in :mod:`missions.preflight` and the drone runs; the whole
policy, and what the vehicle does versus what the service does, is in ``docs/safety.md``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import LineString

from fleet import energy
from fleet.deconfliction import item_target
from fleet.drone import FlightPlan, Land, ReturnToLaunch, Takeoff, Waypoint
from fleet.geo import LatLon
from fleet.settings import SafetySettings
from fleet.world import World

FAILSAFE_PARAMETERS: tuple[str, ...] = (
    "NAV_DLL_ACT",
    "COM_DL_LOSS_T",
    "COM_LOW_BAT_ACT",
    "BAT_LOW_THR",
    "BAT_CRIT_THR",
    "BAT_EMERGEN_THR",
    "RTL_RETURN_ALT",
    "GF_ACTION",
    "GF_MAX_VER_DIST",
)
"""The PX4 parameters of the failsafe policy, in the order they are set."""

CEILING_MARGIN_M = 5.0
"""Planned altitudes stay this far below the world's ceiling (``GF_MAX_VER_DIST``), so that a
vehicle overshooting a waypoint does not breach its own fence."""


def failsafe_policy(safety: SafetySettings, world: World, cruise_alt_m: float) -> dict[str, float]:
    """The failsafe parameters every drone gets before each flight (``docs/safety.md``)."""
    return_alt = safety.rtl_return_alt_m if safety.rtl_return_alt_m is not None else cruise_alt_m
    return_alt = min(return_alt, world.max_altitude_m - CEILING_MARGIN_M)
    return {
        "NAV_DLL_ACT": float(safety.nav_dll_act),
        "COM_DL_LOSS_T": float(safety.dl_loss_t_s),
        "COM_LOW_BAT_ACT": float(safety.low_bat_act),
        "BAT_LOW_THR": float(safety.bat_low_thr),
        "BAT_CRIT_THR": float(safety.bat_crit_thr),
        "BAT_EMERGEN_THR": float(safety.bat_emergen_thr),
        "RTL_RETURN_ALT": float(return_alt),
        "GF_ACTION": float(safety.gf_action),
        "GF_MAX_VER_DIST": float(world.max_altitude_m),
    }


def same_value(a: float, b: float) -> bool:
    """Whether a parameter read back equals the value set (REAL32 on the wire)."""
    return abs(a - b) <= 1e-4 * max(1.0, abs(a), abs(b))


@dataclass(frozen=True, slots=True)
class Violation:
    """Where a flight plan breaks an airspace rule, named for the record."""

    item: int
    """Index of the item (a leg: the item it ends at)."""
    rule: str
    """``ceiling``, ``no_fly_zone`` or ``operating_area``."""
    message: str


def plan_violations(world: World, plan: FlightPlan, home: LatLon) -> list[Violation]:
    """Every item and leg of ``plan`` (flown from ``home``) above the world's ceiling, in a
    no-fly zone that applies at its altitude (the zone named), or outside the operating area.

    The planners route legs around no-fly zones; this is the check of the result, done again
    before every upload (the vehicle's fence is the second line: ``docs/safety.md``)."""
    out: list[Violation] = []
    ceiling = world.max_altitude_m
    here = home
    alt = 0.0
    for i, item in enumerate(plan.items):
        to: LatLon | None = None
        to_alt = alt
        if isinstance(item, Takeoff):
            to_alt = item.rel_alt if item.rel_alt is not None else alt
            if item.lat is not None and item.lon is not None:
                to = LatLon(item.lat, item.lon)
        elif isinstance(item, Waypoint):
            to, to_alt = LatLon(item.lat, item.lon), item.rel_alt
        elif isinstance(item, Land):
            if item.lat is not None and item.lon is not None:
                to = LatLon(item.lat, item.lon)
        elif isinstance(item, ReturnToLaunch):
            to = home
        else:
            continue
        if to_alt > ceiling:
            out.append(
                Violation(
                    i,
                    "ceiling",
                    f"item {i} at {to_alt:g} m is above the world's ceiling of {ceiling:g} m",
                )
            )
        if to is None:
            alt = to_alt
            continue
        if not world.inside_area(to):
            out.append(Violation(i, "operating_area", f"item {i} lies outside the operating area"))
        leg_alt = max(alt, to_alt)
        if to != here:
            leg = LineString([world.xy(here), world.xy(to)])
            if not world.area.buffer(0.5).covers(leg):
                out.append(
                    Violation(
                        i, "operating_area", f"leg {i} ({i - 1}->{i}) leaves the operating area"
                    )
                )
            for zone in world.leg_conflicts(here, to, alt_m=leg_alt):
                ceiling_txt = (
                    f", ceiling {zone.ceiling_m:g} m" if zone.ceiling_m is not None else ""
                )
                out.append(
                    Violation(
                        i,
                        "no_fly_zone",
                        f"leg {i} ({i - 1}->{i}) at {leg_alt:g} m crosses no-fly zone "
                        f"{zone.id}{ceiling_txt}",
                    )
                )
        elif (inside := world.no_fly_at(to, leg_alt)) is not None:
            out.append(Violation(i, "no_fly_zone", f"item {i} lies in no-fly zone {inside.id}"))
        here, alt = to, to_alt
    return out


def airborne_limit_s(battery: float | None) -> float:
    """The longest a drone with ``battery`` (None: a full one) can stay in the air, hovering
    empty at the energy model's rate (:data:`fleet.energy.HOVER_PER_MIN`): after that long
    without a word from it, it is on the ground, wherever it is."""
    charge = 1.0 if battery is None else max(0.0, min(1.0, battery))
    return charge / energy.HOVER_PER_MIN * 60.0


def remaining_path_m(points: Sequence[tuple[float, float]]) -> float:
    """Length of a polyline in the local frame, metres."""
    return float(sum(math.dist(a, b) for a, b in itertools.pairwise(points)))


def remaining_energy(
    world: World,
    plan: FlightPlan,
    current: int,
    where: LatLon,
    rel_alt: float,
    home: LatLon,
    *,
    loaded_until: int = -1,
    payload_kg: float = 0.0,
) -> float:
    """Battery fraction the rest of ``plan`` needs from ``where`` at ``rel_alt`` (the vehicle
    flying towards item ``current``), by the energy model of :mod:`fleet.energy`: cruise per
    kilometre, climbs, descents and holds at hover power, the payload factor on legs before
    ``loaded_until`` (the gripper item)."""
    here = world.xy(where)
    home_xy = world.xy(home)
    alt = rel_alt
    total = 0.0
    loaded = energy.loaded_factor(payload_kg)
    for i, item in enumerate(plan.items):
        if i < current:
            continue
        target = item_target(world, item, here, alt, home_xy)
        if target is None:
            continue
        to, to_alt, hold = target
        dz = to_alt - alt
        vertical_s = dz / energy.CLIMB_SPEED_MPS if dz > 0 else -dz / energy.DESCENT_SPEED_MPS
        leg = (
            remaining_path_m([here, to]) / 1000 * energy.CRUISE_PER_KM
            + (vertical_s + hold) / 60 * energy.HOVER_PER_MIN
        )
        total += leg * (loaded if i < loaded_until else 1.0)
        here, alt = to, to_alt
    return total
