"""Mission feasibility as PX4's navigator checks it after every upload.

PX4 answers MISSION_ACK ACCEPTED for any well-formed upload and only then checks the plan (once
it has a home and a global position, see :meth:`sim.drone.autopilot.Autopilot.update`); an
infeasible plan is kept but marked invalid (MISSION_CURRENT.mission_state = NO_MISSION, Mission
mode and arming in it denied), each failure reported as an EVENT and a STATUSTEXT ending in a
tab (:attr:`Feasibility.reports`). Checks done here, in PX4's order
(``MissionFeasibilityChecker::checkMissionFeasible``):

* DO_JUMP targets inside the plan (the sim's own check: PX4 rejects the item at upload);
* the first positioned item farther than ``MIS_DIST_1WP`` from home: a *warning* only
  (``navigator_mis_first_wp_far``, "First waypoint far away from Home: 1200 m Correct mission
  loaded?"); the plan stays valid, as in PX4 since v1.14;
* every positioned item inside the geofence: GF_MAX_HOR_DIST (``dist >= max`` is out),
  GF_MAX_VER_DIST and the uploaded areas ("Geofence violation for waypoint N", N 1-based);
  legs between waypoints are not checked (neither does PX4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem
from fleet.geo import LatLon, distance_m
from sim.drone.fence import Fence, breach_reason
from sim.drone.mission_items import NAV_POSITION_COMMANDS

LOG_ERROR = 3
"""``events::Log::Error``."""
LOG_WARNING = 4
"""``events::Log::Warning``."""


@dataclass(frozen=True, slots=True)
class Report:
    """One thing the checker says: PX4's event and its STATUSTEXT."""

    event: str
    fmt: str
    values: tuple[float, ...]
    level: int
    """The event's log level (events::Log)."""
    text: str
    """The STATUSTEXT (PX4's ``mavlink_log_*`` wording, which may differ from the event's)."""
    text_severity: int = mavlink.MAV_SEVERITY_CRITICAL
    """The STATUSTEXT's severity (PX4 logs the checker's texts as critical)."""


@dataclass(frozen=True, slots=True)
class Feasibility:
    """Result of a feasibility check."""

    valid: bool
    reason: str = ""
    reports: tuple[Report, ...] = field(default_factory=tuple)
    """Everything the checker reported, warnings included, in order."""


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
    reports: list[Report] = []
    for it in items:
        if it.command == mavlink.MAV_CMD_DO_JUMP and not 0 <= int(it.param1) < len(items):
            reason = f"Mission rejected: DO_JUMP target {int(it.param1)} invalid"
            return Feasibility(False, reason)
    if dist_1wp > 0:
        for it in items:
            if it.command in NAV_POSITION_COMMANDS and it.has_position and (it.x or it.y):
                d = distance_m(LatLon(hlat, hlon), LatLon(it.lat, it.lon))
                if d >= dist_1wp:
                    reports.append(
                        Report(
                            "navigator_mis_first_wp_far",
                            "I",
                            (int(d),),
                            LOG_WARNING,
                            f"First waypoint far away from home: {int(d)}m. "
                            "Correct mission loaded?",
                        )
                    )
                break
    for i, it in enumerate(items):
        if it.command not in NAV_POSITION_COMMANDS or not it.has_position:
            continue
        if it.x == 0 and it.y == 0:
            continue  # take-off/land "here"
        d = distance_m(LatLon(hlat, hlon), LatLon(it.lat, it.lon))
        breach = breach_reason(
            fence, it.lat, it.lon, it.alt_amsl(halt) - halt, d, max_hor_dist, max_ver_dist
        )
        if breach is not None:
            text = f"Geofence violation for waypoint {i + 1}"
            reports.append(
                Report("navigator_mis_geofence_violation", "h", (i + 1,), LOG_ERROR, text)
            )
            return Feasibility(False, text, tuple(reports))
    return Feasibility(True, "", tuple(reports))
