"""The sim's health and arming checks, evaluated and reported as PX4's commander does.

PX4 decides whether a vehicle may arm, and in which modes, from its health and arming checks
(``src/modules/commander/HealthAndArmingChecks``), and tells ground stations through the report
of :mod:`sim.drone.arming_report`. :func:`evaluate` gives the failing checks of a sim vehicle
for its :class:`CheckInputs`, each with the mode groups it is reported for and the groups it
keeps from arming, and :class:`HealthReporter` sends the report when it changes, never more
often than every :data:`MIN_REPORT_INTERVAL_S` (a change inside the interval goes out when it
ends), and at once when asked (MAV_CMD_RUN_PREARM_CHECKS, an arming attempt).

The checks, their levels, components and mode groups are those a PX4 SITL SIH quadrotor
reports (recorded with the service's bridge, see ``docs/protocols/mavlink.md``, "Sim and PX4"):
at boot the attitude, local and global position estimates are invalid and nobody is connected;
once ready, three checks remain, none of which blocks Hold, Return, Takeoff or Land: no valid
mission (blocks Mission until a valid plan is stored), no offboard signal (blocks Offboard) and
no manual control input (a warning reported for every mode; it keeps the manual modes from
arming, as PX4's ``mode_req_manual_control`` does).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from firmware_bridges.mavlink.wire import px4_events
from sim.drone.arming_report import CheckFailure, component_bits, emit_report, mode_bits
from sim.drone.events import LOG_ERROR, LOG_WARNING, EventLog

LOG_CRITICAL = 2
"""``events::Log::Critical``."""
LOG_INFO = 6
"""``events::Log::Info``."""
MIN_REPORT_INTERVAL_S = 2.0
"""PX4's ``Report`` minimum interval between two unforced reports."""

ALL_GROUPS = 0
for _bit in px4_events.NAVIGATION_MODE_GROUPS:
    ALL_GROUPS |= _bit
"""Every navigation-mode group."""
ATTITUDE_MODES = mode_bits(
    "altctl", "posctl", "mission", "loiter", "rtl", "offboard", "stab", "takeoff", "land",
    "follow_target", "precland", "orbit", "vtol_takeoff",
)  # fmt: skip
"""Groups that need an attitude estimate."""
LOCAL_POSITION_MODES = mode_bits(
    "posctl", "mission", "loiter", "rtl", "takeoff", "land", "follow_target", "precland",
    "orbit", "vtol_takeoff",
)  # fmt: skip
"""Groups that need a local position estimate."""
GLOBAL_POSITION_MODES = mode_bits("mission", "loiter", "rtl")
"""Groups that need a global position estimate."""
MANUAL_CONTROL_MODES = mode_bits(
    "manual", "altctl", "posctl", "acro", "stab", *(f"external{n}" for n in range(1, 9))
)
"""Groups that need stick input (none in SITL): they cannot arm."""
PRESENT = component_bits(
    "absolute_pressure", "gps", "battery", "communication_links", "attitude_estimate",
    "local_position_estimate", "global_position_estimate", "system", "magnetometer", "accel",
    "gyro", "motors_escs",
)  # fmt: skip
"""Health components a SIH quadrotor has."""


@dataclass(frozen=True, slots=True)
class CheckInputs:
    """What the checks look at."""

    attitude: bool
    """The attitude estimate is valid."""
    position: bool
    """The local and global position estimates are valid."""
    mission: bool
    """A valid mission is stored."""
    gcs: bool
    """A ground station is connected (data link)."""
    gcs_required: bool = False
    """NAV_DLL_ACT > 0: PX4 then refuses to arm without a ground station
    (``rcAndDataLinkCheck.cpp``); otherwise the missing link is only an info."""
    battery_critical: bool = False
    outside_fence: bool = False
    """Outside the uploaded geofence areas, with a geofence action set."""


@dataclass(frozen=True, slots=True)
class Check:
    """A failing check: what it reports and which groups it keeps from arming."""

    failure: CheckFailure
    blocks: int


@functools.cache
def evaluate(i: CheckInputs) -> tuple[Check, ...]:
    """The failing checks, in PX4's reporting order (cached: a handful of input combinations
    occur, and every vehicle asks every tick)."""
    out: list[Check] = []
    if not i.attitude:
        out.append(
            Check(
                CheckFailure("check_modes_attitude", ATTITUDE_MODES, "attitude_estimate"),
                ATTITUDE_MODES,
            )
        )
    if not i.position:
        out.append(
            Check(
                CheckFailure(
                    "check_modes_local_pos", LOCAL_POSITION_MODES, "local_position_estimate"
                ),
                LOCAL_POSITION_MODES,
            )
        )
        out.append(
            Check(
                CheckFailure(
                    "check_modes_global_pos", GLOBAL_POSITION_MODES, "global_position_estimate"
                ),
                GLOBAL_POSITION_MODES,
            )
        )
    if not i.mission:
        mission = mode_bits("mission")
        out.append(Check(CheckFailure("check_modes_mission", mission, "system", LOG_INFO), mission))
    offboard = mode_bits("offboard")
    out.append(Check(CheckFailure("check_modes_offboard_signal", offboard, "system"), offboard))
    out.append(
        Check(
            CheckFailure("check_modes_manual_control", 0, "remote_control", LOG_WARNING),
            MANUAL_CONTROL_MODES,
        )
    )
    if not i.gcs:
        level, blocks = (LOG_ERROR, ALL_GROUPS) if i.gcs_required else (LOG_INFO, 0)
        out.append(
            Check(CheckFailure("check_rc_dl_no_dllink", 0, "communication_links", level), blocks)
        )
    if i.battery_critical:
        out.append(
            Check(CheckFailure("check_battery_critical", 0, "battery", LOG_CRITICAL), ALL_GROUPS)
        )
    if i.outside_fence:
        out.append(
            Check(CheckFailure("check_gf_violation_custom_gf", 0, "system", LOG_ERROR), ALL_GROUPS)
        )
    return tuple(out)


@functools.cache
def _can_arm(checks: tuple[Check, ...]) -> int:
    mask = ALL_GROUPS
    for c in checks:
        mask &= ~c.blocks
    return mask


def can_arm(checks: Sequence[Check]) -> int:
    """The groups no failing check keeps from arming."""
    if isinstance(checks, tuple):
        return _can_arm(checks)
    mask = ALL_GROUPS
    for c in checks:
        mask &= ~c.blocks
    return mask


class HealthReporter:
    """Sends a vehicle's report when its checks change (paced as PX4 paces it)."""

    def __init__(self) -> None:
        self._sent: tuple[object, ...] | None = None
        self._last_at = float("-inf")
        self.reports = 0

    def reported(self, checks: Sequence[Check]) -> bool:
        """Whether the last report sent says what ``checks`` say."""
        return self._sent == tuple((c.failure, c.blocks) for c in checks)

    def update(
        self,
        log: EventLog,
        checks: Sequence[Check],
        now: float,
        time_boot_ms: int,
        *,
        force: bool = False,
    ) -> bool:
        """Queue a report on ``log`` if it is due; whether one was queued."""
        key = tuple((c.failure, c.blocks) for c in checks)
        if not force and (key == self._sent or now - self._last_at < MIN_REPORT_INTERVAL_S):
            return False
        mask = can_arm(checks)
        emit_report(
            log,
            [c.failure for c in checks],
            can_arm=mask,
            can_run=mask,
            present=PRESENT,
            time_boot_ms=time_boot_ms,
        )
        self._sent = key
        self._last_at = now
        self.reports += 1
        return True
