"""How the service reads PX4's own verdicts: can the vehicle fly a mission now, did it reject a
plan, and which of its words explain a refusal.

**Ready for a mission.** PX4 answers its first heartbeat long before it can fly: it needs a home
position and a valid global position estimate, and its commander's health and arming checks
must leave Mission mode armable. A SITL run shows the order (upload right after the first
heartbeat, see ``docs/protocols/mavlink.md``): GPS fix, home at about 2 s, global position
0.5 s later, the plan checked, and only then the SYS_STATUS pre-arm bit. The arming checks come
as a report of events (:mod:`.arming_checks`); in it, Mission mode is not armable while no valid
plan is stored (``check_modes_mission``, "No valid mission available"), which an upload cures,
so that one check does not make a vehicle unready. Every other problem that keeps the mission
mode group from arming does, in PX4's words (a problem that also names a mode that can arm
blocks nothing: PX4 reports its non-blocking checks for every mode). A vehicle that does not
report its checks (another autopilot, an old PX4) is judged by the SYS_STATUS pre-arm bit
instead.

**Plan rejection.** PX4 acknowledges an upload first and checks the plan afterwards, and only
once it has a home and a global position; until then MISSION_CURRENT reports "no mission" with
the new count, exactly as it does for a plan it rejected. The difference is that a rejection is
explained: PX4's feasibility checker reports each failure as an error EVENT (named
``navigator_mis_*``, ``feasibility_mis_*``, ``navigator_geofence_*``) and STATUSTEXT. Only such
a report, received after the upload started, makes the plan invalid (:func:`is_plan_rejection`).
"""

from __future__ import annotations

from firmware_bridges.mavlink.arming_checks import ArmingReport
from firmware_bridges.mavlink.wire import px4_events
from fleet.events import Severity
from fleet.vehicle import FlightMode

MISSION_GROUP = "mission"
"""PX4's navigation-mode group of Mission mode."""
NO_MISSION_CHECKS = frozenset({px4_events.px4_event_id("check_modes_mission")})
"""Checks an upload cures: PX4's "No valid mission available" mode requirement
(``modeCheck.cpp``)."""
PLAN_REJECTION_PREFIXES = ("navigator_mis_", "feasibility_mis_", "navigator_geofence_")
"""Names of PX4's mission feasibility and geofence-against-plan events."""
NOT_A_REJECTION = frozenset({"navigator_mis_no_pos_lock"})
"""Feasibility events that say the check could not run yet, not that it failed."""
MODE_GROUPS: dict[FlightMode, str] = {
    FlightMode.MANUAL: "manual",
    FlightMode.ALTCTL: "altctl",
    FlightMode.POSCTL: "posctl",
    FlightMode.MISSION: "mission",
    FlightMode.HOLD: "loiter",
    FlightMode.RTL: "rtl",
    FlightMode.LAND: "land",
    FlightMode.TAKEOFF: "takeoff",
    FlightMode.OFFBOARD: "offboard",
}
"""PX4's mode group (``navigation_mode_group_t``, one group per navigation state) of a mode."""
PLAN_WORDS = ("mission", "waypoint", "geofence", "takeoff", "landing")
"""Words of a plan rejection in a STATUSTEXT, for vehicles that do not send events."""


def readiness(
    *,
    home: bool,
    position: bool,
    prearm: bool,
    report: ArmingReport | None,
    expect_report: bool,
) -> tuple[str, ...]:
    """Why the vehicle cannot fly a mission now (empty: it can).

    ``home``: a home position was reported; ``position``: a global position estimate is fresh;
    ``prearm``: the SYS_STATUS pre-arm bit; ``report``: the latest health-and-arming-checks
    report; ``expect_report``: the vehicle reports its checks but none has arrived yet.
    """
    reasons: list[str] = []
    if not home:
        reasons.append("no home position yet")
    if not position:
        reasons.append("no global position estimate")
    if report is not None:
        if not report.can_arm(MISSION_GROUP):
            blockers = [
                p.message
                for p in report.problems_for(MISSION_GROUP)
                if p.event_id not in NO_MISSION_CHECKS and blocks(p.modes, report)
            ]
            cured_by_upload = any(
                p.event_id in NO_MISSION_CHECKS for p in report.problems_for(MISSION_GROUP)
            )
            if blockers:
                reasons.extend(blockers)
            elif not cured_by_upload:
                unhealthy = [n for n in report.errors if n not in ("none", "system")]
                reasons.append(
                    "the vehicle's arming checks do not allow Mission mode"
                    + (f" ({', '.join(unhealthy)} unhealthy)" if unhealthy else "")
                )
    elif expect_report:
        reasons.append("waiting for the vehicle's health and arming checks")
    elif not prearm:
        reasons.append("pre-arm checks fail")
    return tuple(dict.fromkeys(reasons))


def blocks(modes: tuple[str, ...], report: ArmingReport) -> bool:
    """Whether a problem reported for ``modes`` keeps them from arming.

    PX4 clears the arming bit of every mode a blocking check names, and reports a check that
    blocks nothing (a warning such as "No manual control input" in SITL) for *all* modes
    (``Report::reportedModes``): a problem one of whose modes can still arm blocks nothing.
    """
    return not any(report.can_arm(m) for m in modes)


def is_plan_rejection(severity: Severity, text: str, source: str, name: str | None) -> bool:
    """Whether a text the vehicle sent rejects an uploaded plan.

    An EVENT counts when its name is one of PX4's feasibility failures and it is an error; a
    STATUSTEXT (from a vehicle without events) when it is an error about the plan.
    """
    if severity is not Severity.ERROR:
        return False
    if source == "event":
        return (
            name is not None
            and name.startswith(PLAN_REJECTION_PREFIXES)
            and name not in NOT_A_REJECTION
        )
    lowered = text.lower()
    return any(word in lowered for word in PLAN_WORDS)


def mode_group(mode: FlightMode) -> str | None:
    """PX4's navigation-mode group of ``mode`` (None when it has none we know)."""
    return MODE_GROUPS.get(mode)
