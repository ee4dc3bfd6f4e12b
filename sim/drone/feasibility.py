"""Mission feasibility as PX4's navigator checks it after every upload.

PX4 answers MISSION_ACK ACCEPTED for any well-formed upload and only then checks the plan; an
infeasible plan is kept but marked invalid (MISSION_CURRENT.mission_state = NO_MISSION, mission
mode and arming in mission mode denied) and the reason is sent as STATUSTEXT and, where PX4 has
one, as an EVENT (:attr:`Feasibility.event`). Checks done here, with PX4's wording:

* every flown item inside the geofence ("Geofence violation for waypoint N", N 1-based);
  legs between waypoints are not checked (neither does PX4);
* the first waypoint within ``MIS_DIST_1WP`` of home;
* DO_JUMP targets inside the plan;
* a known home position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from fleet.geo import LatLon, distance_m
from sim.drone.fence import Fence, breach_reason
from sim.drone.mission_items import NAV_POSITION_COMMANDS, MissionItem


@dataclass(frozen=True, slots=True)
class Feasibility:
    """Result of a feasibility check."""

    valid: bool
    reason: str = ""
    event: tuple[str, str, tuple[Any, ...]] | None = None
    """PX4's event for the reason: (name, argument struct codes, argument values)."""


def check_mission(
    items: Sequence[MissionItem],
    home: tuple[float, float, float] | None,
    fence: Fence,
    max_hor_dist: float,
    max_ver_dist: float,
    dist_1wp: float,
) -> Feasibility:
    """Check ``items`` against the fence and PX4's mission rules; ``home`` is (lat, lon, alt)."""
    if not items:
        return Feasibility(True)
    if home is None:
        return Feasibility(False, "Not yet ready for mission, no position lock.")
    hlat, hlon, halt = home
    for i, it in enumerate(items):
        if it.command == mavlink.MAV_CMD_DO_JUMP and not 0 <= int(it.param1) < len(items):
            return Feasibility(False, f"Mission rejected: DO_JUMP target {int(it.param1)} invalid")
        if it.command not in NAV_POSITION_COMMANDS or not it.has_position:
            continue
        if it.x == 0 and it.y == 0:
            continue  # take-off/land "here"
        d = distance_m(LatLon(hlat, hlon), LatLon(it.lat, it.lon))
        reason = breach_reason(
            fence, it.lat, it.lon, it.alt_amsl(halt) - halt, d, max_hor_dist, max_ver_dist
        )
        if reason is not None:
            return Feasibility(
                False,
                f"Geofence violation for waypoint {i + 1}",
                ("navigator_mis_geofence_violation", "h", (i + 1,)),
            )
    if dist_1wp > 0:
        for it in items:
            if it.command in NAV_POSITION_COMMANDS and it.has_position and (it.x or it.y):
                d = distance_m(LatLon(hlat, hlon), LatLon(it.lat, it.lon))
                if d > dist_1wp:
                    return Feasibility(
                        False,
                        f"First waypoint too far away: {d:.0f}m, {dist_1wp:.0f}m max",
                        ("navigator_mis_first_wp_too_far", "II", (int(d), int(dist_1wp))),
                    )
                break
    return Feasibility(True)
