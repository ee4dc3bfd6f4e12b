"""The flight logic of a sim vehicle: PX4's commander and navigator, without I/O.

:class:`Autopilot` owns arming, flight modes, failsafes, auto-disarm, the home position and the
execution of the uploaded mission; each :meth:`Autopilot.update` runs the logic and advances the
kinematics (:func:`sim.drone.physics.step`) and the battery by ``dt`` world seconds. Commands
return a ``MAV_RESULT``; messages for the ground station (STATUSTEXT) are queued in
:attr:`Autopilot.texts`. What happens in the world is recorded in :attr:`Autopilot.truth`.

Behaviour follows PX4 v1.14/1.15 (SIH quadrotor and Ackermann rover); the figures and every
known difference are in ``docs/sim.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.px4 import AutoSubMode, MainMode
from fleet.clock import Clock
from fleet.geo import LocalFrame
from sim.drone import health
from sim.drone.arming_report import mode_bits
from sim.drone.battery import Battery, discharge, power_draw
from sim.drone.events import EventLog
from sim.drone.feasibility import check_mission
from sim.drone.fence import Fence, breach_reason
from sim.drone.mission_items import MissionItem, MissionType
from sim.drone.mission_protocol import MissionResult
from sim.drone.params import ParamStore
from sim.drone.physics import (
    IDLE,
    KinematicState,
    Limits,
    Model,
    Setpoint,
    SetpointKind,
    step,
)
from sim.truth import GroundTruth, TruthEvent, TruthKind

log = structlog.get_logger(__name__)

ACCEPTED = int(mavlink.MAV_RESULT_ACCEPTED)
"""MAV_RESULT_ACCEPTED."""
TEMPORARILY_REJECTED = int(mavlink.MAV_RESULT_TEMPORARILY_REJECTED)
"""MAV_RESULT_TEMPORARILY_REJECTED."""
DENIED = int(mavlink.MAV_RESULT_DENIED)
"""MAV_RESULT_DENIED."""
FAILED = int(mavlink.MAV_RESULT_FAILED)
"""MAV_RESULT_FAILED."""

FORCE_MAGIC = 21196
"""param2 of MAV_CMD_COMPONENT_ARM_DISARM that forces arming/disarming."""

GPS_FIX_S = 0.2
"""World seconds from boot to a 3D GPS fix (PX4 SIH: 0.18 s)."""
ATTITUDE_AFTER_HOME_S = 1.0
"""The attitude estimate is valid this long after home is set (PX4 SITL's arming report:
``check_modes_attitude`` clears about a second after home)."""
POSITION_STREAM_AFTER_HOME_S = 0.5
"""GLOBAL_POSITION_INT starts this long after home is set (PX4 SITL: home at 2.15 s, the
first GLOBAL_POSITION_INT at 2.67 s)."""
ESTIMATOR_SETTLE_S = 2.0
"""The position estimates pass PX4's checks this long after home is set (PX4 SITL: pre-arm
checks pass at 4.17 s, home at 2.15 s)."""

PLAN_CHECK_DELAY_S = 1.0
"""World seconds from a plan (or fence) change to the navigator's verdict. PX4 SITL, measured
through the bridge: the verdict came 1.0 to 1.6 s after the upload (fence reload included), the
mission manager meanwhile reporting seq 65535 and "no mission" with the new count."""

ARMED_BY_COMMAND = 4
"""``arm_disarm_reason_t`` command_external: "Armed by external command"."""
ARMED_BY_MISSION_START = 5
"""``arm_disarm_reason_t`` mission_start: "Armed by mission start"."""
_DISARM_REASONS = {
    "external command": 4,
    "auto disarm on land": 6,
    "return complete": 6,
    "auto preflight disarming": 7,
}
"""Disarm reasons (as the truth records them) -> ``arm_disarm_reason_t``."""
_REASON_TEXT = {
    4: "external command",
    5: "mission start",
    6: "landing",
    7: "auto preflight disarming",
    9: "lockdown",
    14: "failsafe",
}
"""``arm_disarm_reason_t`` -> PX4's ``arm_disarm_reason_str``."""


def disarm_reason_code(reason: str) -> int:
    """PX4's ``arm_disarm_reason_t`` for a disarm reason of the truth record."""
    if reason.startswith("lockdown"):
        return 9
    if reason.startswith("flight termination"):
        return 14
    return _DISARM_REASONS.get(reason, 4)


class Nav(Enum):
    """PX4 navigation states the sim implements, with their (main, sub) custom mode."""

    MANUAL = (MainMode.MANUAL, 0)
    """Manual (no sticks in SITL: holds)."""
    ALTCTL = (MainMode.ALTCTL, 0)
    """Altitude (holds)."""
    POSCTL = (MainMode.POSCTL, 0)
    """Position (holds)."""
    STABILIZED = (MainMode.STABILIZED, 0)
    """Stabilized (holds)."""
    ACRO = (MainMode.ACRO, 0)
    """Acro (holds)."""
    HOLD = (MainMode.AUTO, AutoSubMode.LOITER)
    """Hold (auto loiter)."""
    TAKEOFF = (MainMode.AUTO, AutoSubMode.TAKEOFF)
    """Takeoff."""
    MISSION = (MainMode.AUTO, AutoSubMode.MISSION)
    """Mission."""
    RTL = (MainMode.AUTO, AutoSubMode.RTL)
    """Return to launch."""
    LAND = (MainMode.AUTO, AutoSubMode.LAND)
    """Land."""

    @property
    def main(self) -> int:
        return int(self.value[0])

    @property
    def sub(self) -> int:
        return int(self.value[1])


_BY_MODE = {(n.main, n.sub): n for n in Nav}
_AUTO_NAVS = frozenset({Nav.HOLD, Nav.TAKEOFF, Nav.MISSION, Nav.RTL, Nav.LAND})
NAV_GROUPS: dict[Nav, int] = {
    Nav.MANUAL: mode_bits("manual"),
    Nav.ALTCTL: mode_bits("altctl"),
    Nav.POSCTL: mode_bits("posctl"),
    Nav.STABILIZED: mode_bits("stab"),
    Nav.ACRO: mode_bits("acro"),
    Nav.HOLD: mode_bits("loiter"),
    Nav.TAKEOFF: mode_bits("takeoff"),
    Nav.MISSION: mode_bits("mission"),
    Nav.RTL: mode_bits("rtl"),
    Nav.LAND: mode_bits("land"),
}
"""PX4's navigation-mode group of each nav state (``Report::getModeGroup``)."""


def nav_for(main: int, sub: int) -> Nav | None:
    """The nav state PX4 enters for DO_SET_MODE (main, sub); None if not supported."""
    if main != MainMode.AUTO:
        sub = 0
    elif sub == 0:
        sub = AutoSubMode.LOITER
    return _BY_MODE.get((main, sub))


class RtlPhase(Enum):
    """Phases of a return."""

    CLIMB = "climb"
    """Climbing to the return altitude."""
    RETURN = "return"
    """Flying to the destination at the return altitude."""
    DESCEND = "descend"
    """Descending to RTL_DESCEND_ALT over the destination."""
    LOITER = "loiter"
    """Waiting RTL_LAND_DELAY."""
    LAND = "land"
    """Landing."""


class BatteryLevel(Enum):
    """Battery warning levels (PX4 ``battery_status.warning``)."""

    NONE = 0
    """Above BAT_LOW_THR."""
    LOW = 1
    """At or below BAT_LOW_THR."""
    CRITICAL = 2
    """At or below BAT_CRIT_THR."""
    EMERGENCY = 3
    """At or below BAT_EMERGEN_THR."""


@dataclass(slots=True)
class _PendingFailsafe:
    cause: str
    action: Nav | None
    """Mode to enter after the delay (None: stay in Hold)."""
    deadline: float
    terminate: bool = False


@dataclass(frozen=True, slots=True)
class Home:
    """A home position (degrees, metres above mean sea level)."""

    lat: float
    lon: float
    alt: float


BATTERY_SWAP_BELOW = 0.9
"""The ground crew swaps batteries below this charge."""
BATTERY_SWAP_MAX_DISTANCE_M = 5.0
"""...only for a drone this close to its take-off point (its pad)."""


class Autopilot:
    """Commander and navigator of one sim vehicle."""

    def __init__(
        self,
        vehicle_id: str,
        home: Home,
        params: ParamStore,
        clock: Clock,
        model: Model = Model.MULTICOPTER,
        ready_delay: float = 2.0,
        battery_swap_s: float | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.battery_swap_s = battery_swap_s
        """World seconds the ground crew needs to swap a depleted battery once the drone is
        disarmed on its home pad; None: nobody swaps (PX4 itself never does)."""
        self.params = params
        self.clock = clock
        self.model = model
        self.frame = LocalFrame(home.lat, home.lon)
        self.ground_alt = home.alt
        self.kin = KinematicState(x=0.0, y=0.0, alt=home.alt, ground_alt=home.alt, model=model)
        self.kin_time: float | None = None
        """World time (``clock.time()``) at which ``kin`` held: the time of its last step."""
        self.battery = Battery.full(params["BAT1_CAPACITY"], params.get_int("BAT1_N_CELLS"))
        self.truth = GroundTruth(vehicle_id)
        self.texts: list[tuple[int, str]] = []
        self.events = EventLog()
        self.checks = health.HealthReporter()
        """Sends the health-and-arming-checks report when it changes."""
        self._report_due = False
        self.armed = False
        self.nav = Nav.HOLD
        self.home: Home | None = None
        self.boot_time = clock.monotonic()
        self.ready_at = self.boot_time + ready_delay
        self.gps_ok = False
        self.gps_fault = False
        self.last_gcs_heartbeat: float | None = None
        self.gcs_lost = False
        self.mission: list[MissionItem] = []
        self.fence = Fence()
        self.rally: list[MissionItem] = []
        self.result = MissionResult(valid=False, seq_current=0, seq_reached=-1)
        self.mission_reason = ""
        self._plan_unchecked = False
        """A plan, fence or home changed and the navigator has not checked the plan since."""
        self._plan_changed_at = self.boot_time
        self._jumps: dict[int, int] = {}
        self._item_started: float | None = None
        self._item_wait_until: float | None = None
        self._item_phase = 0
        self._hold_point: tuple[float, float, float] | None = None
        self._takeoff_alt = 0.0
        self._takeoff_xy: tuple[float, float] = (0.0, 0.0)
        self._land_xy: tuple[float, float] = (0.0, 0.0)
        self._rtl_phase = RtlPhase.CLIMB
        self._rtl_dest: tuple[float, float, float] = (0.0, 0.0, home.alt)
        self._rtl_alt = 0.0
        self._rtl_wait_until = 0.0
        self._speed_override: float | None = None
        self._arm_time = 0.0
        self._took_off = False
        self._landed_since: float | None = None
        self._failsafe: _PendingFailsafe | None = None
        self._battery_level = BatteryLevel.NONE
        self._fence_breached = False
        self.winch_length_m = 0.0
        self.gripper_open = False
        self._limits_cache: tuple[tuple[float, ...], Limits] | None = None
        self.setpoint: Setpoint = IDLE

    # --- state queries ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Home known and the position estimates valid (what auto modes need)."""
        return self.home is not None and self.estimator_ok(self._now())

    def attitude_ok(self, now: float) -> bool:
        return now >= self.ready_at + ATTITUDE_AFTER_HOME_S

    def estimator_ok(self, now: float) -> bool:
        """The local and global position estimates pass PX4's checks."""
        return not self.gps_fault and now >= self.ready_at + ESTIMATOR_SETTLE_S

    def position_published(self, now: float) -> bool:
        """GLOBAL_POSITION_INT is sent (the estimator publishes a global position)."""
        return self.home is not None and now >= self.ready_at + POSITION_STREAM_AFTER_HOME_S

    def failing_checks(self, now: float) -> tuple[health.Check, ...]:
        """The health and arming checks that fail now (:mod:`sim.drone.health`)."""
        outside = False
        if not self.fence.empty and self.params.get_int("GF_ACTION") > 0:
            outside = not self.fence.inside_areas(*self.latlon())
        return health.evaluate(
            health.CheckInputs(
                attitude=self.attitude_ok(now),
                position=self.estimator_ok(now),
                mission=bool(self.mission) and self.result.valid and not self._plan_unchecked,
                gcs=self.gcs_connected(now),
                gcs_required=self.params.get_int("NAV_DLL_ACT") > 0,
                battery_critical=self.battery.remaining <= self.params["BAT_CRIT_THR"],
                outside_fence=outside,
            )
        )

    def can_arm_in(self, nav: Nav, now: float) -> bool:
        """Whether the checks let the vehicle arm in ``nav`` now."""
        return bool(health.can_arm(self.failing_checks(now)) & NAV_GROUPS.get(nav, 0))

    def request_report(self) -> None:
        """Send the arming report at the next update, whatever changed (RUN_PREARM_CHECKS)."""
        self._report_due = True

    @property
    def landed(self) -> bool:
        return self.kin.on_ground if self.model is Model.MULTICOPTER else True

    @property
    def in_air(self) -> bool:
        return not self.kin.on_ground and self.model is Model.MULTICOPTER

    def latlon(self) -> tuple[float, float]:
        return self.frame.to_latlon(self.kin.x, self.kin.y)

    def rel_alt(self) -> float:
        base = self.home.alt if self.home else self.ground_alt
        return self.kin.alt - base

    def battery_remaining(self) -> float:
        return self.battery.remaining

    def battery_level(self) -> BatteryLevel:
        return self._level()

    @property
    def failsafe_active(self) -> bool:
        """A failsafe is holding the vehicle before its action."""
        return self._failsafe is not None

    def ready_to_arm(self, now: float) -> bool:
        """Whether the checks let it arm in its current mode (PX4's pre_flight_checks_pass:
        the SYS_STATUS pre-arm bit, HEARTBEAT STANDBY)."""
        return self.can_arm_in(self.nav, now)

    @property
    def rover_land_detected(self) -> bool:
        """PX4's rover land detector (``RoverLandDetector``): landed when disarmed or in Land
        mode, otherwise not, however still the rover stands."""
        return not self.armed or self.nav is Nav.LAND

    def landed_state(self) -> int:
        """EXTENDED_SYS_STATE.landed_state as PX4's stream computes it: ON_GROUND while the land
        detector says landed, else TAKEOFF or LANDING while an auto mode follows a take-off or
        land setpoint (a mission's take-off item and the climb before it, Takeoff mode; a land
        item, Land mode, the end of a return), else IN_AIR. An armed rover reports IN_AIR,
        as PX4's does."""
        if self.model is Model.ROVER:
            return int(
                mavlink.MAV_LANDED_STATE_ON_GROUND
                if self.rover_land_detected
                else mavlink.MAV_LANDED_STATE_IN_AIR
            )
        if self.kin.on_ground:
            return int(mavlink.MAV_LANDED_STATE_ON_GROUND)
        if self._taking_off():
            return int(mavlink.MAV_LANDED_STATE_TAKEOFF)
        if self.setpoint.kind is SetpointKind.LAND:
            return int(mavlink.MAV_LANDED_STATE_LANDING)
        return int(mavlink.MAV_LANDED_STATE_IN_AIR)

    def _taking_off(self) -> bool:
        """The current setpoint is a take-off (PX4's SETPOINT_TYPE_TAKEOFF)."""
        if self.nav is Nav.TAKEOFF:
            return True
        if self.nav is not Nav.MISSION or self.result.finished or not self.mission:
            return False
        seq = self.result.seq_current
        if not 0 <= seq < len(self.mission):
            return False
        return self.mission[seq].command == mavlink.MAV_CMD_NAV_TAKEOFF or self._item_phase == 1

    def _now(self) -> float:
        return self.clock.monotonic()

    def _record(self, kind: TruthKind, detail: str = "", seq: int | None = None) -> None:
        lat, lon = self.latlon()
        self.truth.add(
            TruthEvent(kind, self._now(), self.clock.time(), lat, lon, self.rel_alt(), detail, seq)
        )

    def text(self, severity: int, message: str) -> None:
        """Queue a STATUSTEXT for the ground station."""
        self.texts.append((severity, message))

    def event(self, name: str, fmt: str = "", values: tuple[Any, ...] = (), level: int = 3) -> None:
        """Queue PX4 event ``name`` with its arguments (``level``: events::Log, error)."""
        self.events.emit(
            name, fmt, values, time_boot_ms=self.boot_ms(), level=level, internal=level
        )

    def announce(
        self, name: str, severity: int, text: str, fmt: str = "", values: tuple[Any, ...] = ()
    ) -> None:
        """Say something as PX4 does: the EVENT ``name`` at ``severity`` (events::Log levels are
        MAV_SEVERITY's) and its STATUSTEXT ``text``, ending in the tab that tells a ground
        station reading events that the same message came as an EVENT."""
        self.text(severity, text + "\t")
        self.event(name, fmt, values, level=severity)

    def boot_ms(self) -> int:
        return int(max(0.0, self._now() - self.boot_time) * 1000)

    # --- home, GCS ----------------------------------------------------------------------

    def _set_home_here(self) -> None:
        lat, lon = self.latlon()
        self.home = Home(lat, lon, self.kin.alt if self.landed else self.ground_alt)
        self.revalidate_mission()

    def set_home(self, lat: float, lon: float, alt: float) -> None:
        self.home = Home(lat, lon, alt)
        self.revalidate_mission()

    def gcs_heartbeat(self, now: float) -> None:
        """A MAV_TYPE_GCS heartbeat arrived on a link."""
        self.last_gcs_heartbeat = now
        if self.gcs_lost:
            self.gcs_lost = False
            self.text(mavlink.MAV_SEVERITY_INFO, "Data link regained")

    def gcs_connected(self, now: float) -> bool:
        t = self.last_gcs_heartbeat
        return t is not None and now - t <= self.params["COM_DL_LOSS_T"]

    # --- plans --------------------------------------------------------------------------

    def store_plan(self, mtype: MissionType, items: list[MissionItem]) -> int:
        """A plan arrived over the mission protocol; returns the MAV_MISSION_RESULT."""
        if mtype is MissionType.FENCE:
            try:
                self.fence = Fence(items)
            except ValueError:
                return int(mavlink.MAV_MISSION_ERROR)
        elif mtype is MissionType.RALLY:
            self.rally = list(items)
        else:
            self.mission = list(items)
            self._jumps = {}
            # PX4: the mission manager reports seq 65535 (-1) until the navigator has taken up
            # the new plan, and the previous verdict until it has checked it
            self.result = MissionResult(
                valid=self.result.valid, seq_current=-1, seq_reached=-1, finished=False
            )
            self._item_started = None
            self._item_phase = 0
            if self.nav is Nav.MISSION and self.armed:
                self._set_nav(Nav.HOLD, "mission changed")
        self.revalidate_mission()
        return int(mavlink.MAV_MISSION_ACCEPTED)

    def revalidate_mission(self) -> None:
        """The plan, the fence, home or a parameter changed: the navigator checks the plan
        :data:`PLAN_CHECK_DELAY_S` later, once it has a home and a global position (PX4's
        ``canRunMissionFeasibility``)."""
        self._plan_unchecked = True
        self._plan_changed_at = self._now()

    def can_check_plan(self, now: float) -> bool:
        return (
            self.home is not None
            and self.position_published(now)
            and now >= self._plan_changed_at + PLAN_CHECK_DELAY_S
        )

    def _check_plan(self) -> None:
        """PX4's ``check_mission_valid``: judge the plan, report every failure (and warning)
        once per plan, take up its first item."""
        self._plan_unchecked = False
        home = (self.home.lat, self.home.lon, self.home.alt) if self.home else None
        feas = check_mission(
            self.mission,
            home,
            self.fence,
            self.params["GF_MAX_HOR_DIST"],
            self.params["GF_MAX_VER_DIST"],
            self.params["MIS_DIST_1WP"],
        )
        self.result.valid = feas.valid and bool(self.mission)
        if self.mission and feas.reports:
            for r in feas.reports:
                self.text(r.text_severity, r.text + "\t")
                self.event(r.event, r.fmt, r.values, level=r.level)
        self.mission_reason = feas.reason
        if self.result.seq_current < 0:
            self.result.seq_current = next((i.seq for i in self.mission if i.current), 0)

    # --- commands -----------------------------------------------------------------------

    def arm(
        self, force: bool = False, for_mission: bool = False, reason: int = ARMED_BY_COMMAND
    ) -> int:
        """Arm, as PX4's ``Commander::arm``: unless forced, a fresh arming report goes out and
        the checks must let the vehicle arm in its mode (Mission for a mission start); else
        "Arming denied: Resolve system health failures first" and TEMPORARILY_REJECTED."""
        now = self._now()
        if self.armed:
            return ACCEPTED
        if not force:
            self.request_report()
            nav = Nav.MISSION if for_mission else self.nav
            if not self.can_arm_in(nav, now):
                self.announce(
                    "commander_arm_denied_resolve_failures",
                    mavlink.MAV_SEVERITY_CRITICAL,
                    "Arming denied: Resolve system health failures first",
                )
                return TEMPORARILY_REJECTED
        self.armed = True
        self._arm_time = now
        self._took_off = False
        self._landed_since = None
        self._battery_level = self._level()  # warn only on changes after arming
        if self.landed:
            self._set_home_here()
        self._record(TruthKind.ARMED)
        self.announce(
            "commander_armed_by",
            mavlink.MAV_SEVERITY_INFO,
            f"Armed by {_REASON_TEXT.get(reason, 'external command')}",
            "B",
            (reason,),
        )
        if self.nav is Nav.TAKEOFF:
            self._enter(Nav.TAKEOFF, keep_takeoff_alt=True)
        return ACCEPTED

    def disarm(self, force: bool = False, reason: str = "external command") -> int:
        if not self.armed:
            return ACCEPTED
        if not force and not self.landed:
            self.announce(
                "commander_disarm_denied_not_landed",
                mavlink.MAV_SEVERITY_CRITICAL,
                "Disarming denied: not landed",
            )
            return TEMPORARILY_REJECTED
        self.armed = False
        self._failsafe = None
        self._record(TruthKind.DISARMED, reason)
        code = disarm_reason_code(reason)
        self.announce(
            "commander_disarmed_by",
            mavlink.MAV_SEVERITY_INFO,
            f"Disarmed by {_REASON_TEXT.get(code, reason)}",
            "B",
            (code,),
        )
        if self.landed and self.model is Model.MULTICOPTER:
            self._set_home_here()  # PX4 keeps home where the vehicle stands disarmed
        return ACCEPTED

    def set_mode(self, nav: Nav) -> int:
        if nav is self.nav:
            return ACCEPTED
        if nav in _AUTO_NAVS and nav is not Nav.MISSION and not self.can_arm_in(nav, self._now()):
            self.text(
                mavlink.MAV_SEVERITY_CRITICAL,
                f"Switching to {nav.name.title()} is currently not possible",
            )
            return TEMPORARILY_REJECTED
        if nav is Nav.MISSION and (not self.mission or not self.result.valid):
            self.text(
                mavlink.MAV_SEVERITY_CRITICAL,
                "Switching to Mission is currently not possible: no valid mission",
            )
            return TEMPORARILY_REJECTED
        self._failsafe = None  # user takeover
        self._set_nav(nav, "command")
        return ACCEPTED

    def takeoff(self, alt_amsl: float | None) -> int:
        if not self.ready:
            return TEMPORARILY_REJECTED
        base = self.home.alt if self.home else self.ground_alt
        min_alt = base + self.params["MIS_TAKEOFF_ALT"]
        target = min_alt if alt_amsl is None or not math.isfinite(alt_amsl) else alt_amsl
        if target <= self.kin.alt and not self.landed:
            target = self.kin.alt
        self._takeoff_alt = max(target, self.ground_alt + 1.0)
        self._failsafe = None
        self._set_nav(Nav.TAKEOFF, "command", keep_takeoff_alt=True)
        return ACCEPTED

    def mission_start(self, first: int) -> int:
        if not self.mission or not self.result.valid or self._plan_unchecked:
            self.announce(
                "commander_mission_start_denied_no_mission",
                mavlink.MAV_SEVERITY_CRITICAL,
                "Mission start denied! No valid mission",
            )
            return DENIED
        if not 0 <= first < len(self.mission):
            first = self.result.seq_current if first < 0 else 0
        if self.result.finished or first != self.result.seq_current:
            self._goto_item(first, reset_finished=True)
        if not self.armed and self.arm(for_mission=True, reason=ARMED_BY_MISSION_START) != ACCEPTED:
            return TEMPORARILY_REJECTED
        self._failsafe = None
        self._set_nav(Nav.MISSION, "mission start")
        return ACCEPTED

    def set_current_item(self, seq: int) -> int:
        if not 0 <= seq < len(self.mission):
            return DENIED
        self._goto_item(seq, reset_finished=True)
        return ACCEPTED

    def reposition(self, lat: float, lon: float, alt_amsl: float | None) -> int:
        if not self.ready:
            return TEMPORARILY_REJECTED
        x, y = self.frame.to_xy(lat, lon)
        alt = alt_amsl if alt_amsl is not None and math.isfinite(alt_amsl) else self.kin.alt
        self._failsafe = None
        self._set_nav(Nav.HOLD, "reposition")
        self._hold_point = (x, y, alt)
        return ACCEPTED

    def change_speed(self, speed: float) -> int:
        if speed > 0:
            self._speed_override = speed
        elif speed == -2 or speed == 0:
            self._speed_override = None
        return ACCEPTED

    def gripper(self, release: bool, source: str) -> None:
        """Open (release) or close the payload gripper now."""
        self.gripper_open = release
        self._record(TruthKind.RELEASE if release else TruthKind.GRAB, source)
        log.info("sim.gripper", vehicle=self.vehicle_id, release=release, source=source)

    def winch(self, action: int, length: float, rate: float, source: str) -> None:
        if action == mavlink.WINCH_RELATIVE_LENGTH_CONTROL:
            self.winch_length_m = max(0.0, self.winch_length_m + length)
        self._record(TruthKind.WINCH, f"{source}: action={action} length={length} rate={rate}")

    # --- fault injection ----------------------------------------------------------------

    def set_battery(self, fraction: float) -> None:
        self.battery = self.battery.with_remaining(fraction)
        self._record(TruthKind.FAULT, f"battery set to {fraction:.3f}")

    def set_drain_multiplier(self, factor: float) -> None:
        self.battery = replace(self.battery, drain_multiplier=factor)
        self._record(TruthKind.FAULT, f"battery drain x{factor}")

    def _record_fault(self, detail: str) -> None:
        self._record(TruthKind.FAULT, detail)

    def set_gps_fault(self, lost: bool) -> None:
        self.gps_fault = lost
        self._record(TruthKind.FAULT, "gps lost" if lost else "gps restored")
        if lost:
            self.text(mavlink.MAV_SEVERITY_CRITICAL, "GPS lost")

    # --- mode machinery -----------------------------------------------------------------

    def _set_nav(self, nav: Nav, reason: str, keep_takeoff_alt: bool = False) -> None:
        changed = nav is not self.nav
        self.nav = nav
        self._enter(nav, keep_takeoff_alt)
        if changed:
            self._record(TruthKind.MODE, nav.name.lower())
            log.info("sim.mode", vehicle=self.vehicle_id, mode=nav.name.lower(), reason=reason)
            if nav is Nav.MISSION:
                self._announce_mission()

    def _enter(self, nav: Nav, keep_takeoff_alt: bool = False) -> None:
        k = self.kin
        if nav is Nav.HOLD or nav in (Nav.POSCTL, Nav.ALTCTL, Nav.MANUAL, Nav.STABILIZED, Nav.ACRO):
            self._hold_point = (k.x, k.y, k.alt) if not self.landed else None
        elif nav is Nav.TAKEOFF:
            self._takeoff_xy = (k.x, k.y)
            if not keep_takeoff_alt:
                base = self.home.alt if self.home else self.ground_alt
                self._takeoff_alt = max(k.alt, base + self.params["MIS_TAKEOFF_ALT"])
        elif nav is Nav.LAND:
            self._land_xy = (k.x, k.y)
            if self.model is Model.ROVER:
                self._landed_since = self._now()
        elif nav is Nav.RTL:
            self._start_rtl()
        elif nav is Nav.MISSION:
            self._item_started = None
            self._item_phase = 0
            if self.result.finished and self.landed:
                self._goto_item(0, reset_finished=True)

    def _announce_mission(self) -> None:
        """What PX4's navigator says when Mission mode takes over: "Executing Mission", and on
        the ground "Climb to N m above home" (the first positioned item's height)."""
        self.announce("mission_execute", mavlink.MAV_SEVERITY_INFO, "Executing Mission")
        if not self.landed or self.model is not Model.MULTICOPTER or not self.mission:
            return
        seq = max(0, self.result.seq_current)
        item = next((i for i in self.mission[seq:] if i.has_position), None)
        if item is None:
            return
        home_alt = self.home.alt if self.home else self.ground_alt
        height = item.alt_amsl(home_alt) - home_alt
        self.announce(
            "mission_climb_before_start",
            mavlink.MAV_SEVERITY_INFO,
            f"Climb to {height:.1f} meters above home",
            "f",
            (height,),
        )

    def _start_rtl(self) -> None:
        k = self.kin
        dests: list[tuple[float, float, float]] = []
        if self.home:
            hx, hy = self.frame.to_xy(self.home.lat, self.home.lon)
            dests.append((hx, hy, self.home.alt))
        home_alt = self.home.alt if self.home else self.ground_alt
        for r in self.rally:
            rx, ry = self.frame.to_xy(r.lat, r.lon)
            dests.append((rx, ry, r.alt_amsl(home_alt) if not r.relative_alt else home_alt))
        if not dests:
            dests.append((k.x, k.y, self.ground_alt))
        self._rtl_dest = min(dests, key=lambda d: math.hypot(d[0] - k.x, d[1] - k.y))
        dist = math.hypot(self._rtl_dest[0] - k.x, self._rtl_dest[1] - k.y)
        ret = home_alt + self.params["RTL_RETURN_ALT"]
        if dist < self.params["RTL_MIN_DIST"]:
            ret = k.alt
        self._rtl_alt = max(k.alt, ret)
        self._rtl_phase = RtlPhase.CLIMB if self.model is Model.MULTICOPTER else RtlPhase.RETURN

    def _goto_item(self, seq: int, reset_finished: bool) -> None:
        self.result.seq_current = seq
        if reset_finished:
            self.result.finished = False
        self._item_started = None
        self._item_wait_until = None
        self._item_phase = 0

    # --- per-tick logic -----------------------------------------------------------------

    def _cruise(self) -> float:
        if self.model is Model.ROVER:
            return self._speed_override or self.params["RO_SPEED_LIM"]
        return self._speed_override or self.params["MPC_XY_CRUISE"]

    def _limits(self) -> Limits:
        p = self.params
        key = (
            p["MPC_ACC_HOR"],
            p["MPC_Z_VEL_MAX_DN"],
            p["MPC_LAND_SPEED"],
            p["MPC_LAND_ALT1"],
            p["MPC_LAND_ALT2"],
            p["MPC_YAWRAUTO_MAX"],
            p["RO_ACCEL_LIM"],
            p["RA_MAX_STR_ANG"],
            p["RA_WHEEL_BASE"],
        )
        if self._limits_cache is None or self._limits_cache[0] != key:
            rover = self.model is Model.ROVER
            lim = Limits(
                acc_xy=key[6] if rover else key[0],
                acc_z=3.0,
                land_speed_high=key[1],
                land_speed=key[2],
                land_alt1=key[3],
                land_alt2=key[4],
                yaw_rate=math.radians(key[5]),
                max_curvature=math.tan(key[7]) / max(key[8], 1e-3),
            )
            self._limits_cache = (key, lim)
        return self._limits_cache[1]

    def _pos_sp(self, x: float, y: float, alt: float, speed_up: float | None = None) -> Setpoint:
        p = self.params
        return Setpoint(
            SetpointKind.POSITION,
            x,
            y,
            alt,
            speed_xy=self._cruise(),
            speed_up=speed_up if speed_up is not None else p["MPC_Z_V_AUTO_UP"],
            speed_down=p["MPC_Z_V_AUTO_DN"],
        )

    def update(self, dt: float) -> None:
        """Run the logic at the current world time, then advance the world by ``dt``."""
        now = self._now()
        self.gps_ok = not self.gps_fault and now >= self.boot_time + GPS_FIX_S
        if self.home is None and not self.gps_fault and now >= self.ready_at:
            self._set_home_here()  # PX4 says nothing on the link when it sets home
        if self._plan_unchecked and self.can_check_plan(now):
            self._check_plan()
        if self.checks.update(
            self.events, self.failing_checks(now), now, self.boot_ms(), force=self._report_due
        ):
            self._report_due = False
        self._check_failsafes(now)
        self._auto_disarm(now)
        sp = self._navigate(now) if self.armed else IDLE
        self.setpoint = sp
        was_on_ground = self.kin.on_ground
        self.kin = step(replace(self.kin, setpoint=sp, limits=self._limits()), dt)
        self.kin_time = self.clock.time()
        self.battery = discharge(self.battery, power_draw(self.kin, self.armed), dt)
        if self.model is Model.MULTICOPTER:
            if was_on_ground and not self.kin.on_ground:
                self._took_off = True
                self._landed_since = None
                self._record(TruthKind.TAKEOFF)
                self.announce(
                    "commander_takeoff_detected", mavlink.MAV_SEVERITY_INFO, "Takeoff detected"
                )
            elif not was_on_ground and self.kin.on_ground:
                self._landed_since = now + dt
                self._record(TruthKind.LANDING)
                self.announce(
                    "commander_landing_detected", mavlink.MAV_SEVERITY_INFO, "Landing detected"
                )
                if not self.armed:
                    self._set_home_here()
            self._ground_crew(now)

    def _ground_crew(self, now: float) -> None:
        """Swap a used battery for a full one when the drone sits disarmed on its pad."""
        swap_s = self.battery_swap_s
        if (
            swap_s is None
            or self.armed
            or not self.kin.on_ground
            or self.battery.remaining >= BATTERY_SWAP_BELOW
            or math.hypot(self.kin.x, self.kin.y) > BATTERY_SWAP_MAX_DISTANCE_M
        ):
            return
        since = self._landed_since if self._landed_since is not None else self.boot_time
        if now - since >= swap_s:
            before = self.battery.remaining
            self.battery = Battery.full(
                self.params["BAT1_CAPACITY"], self.params.get_int("BAT1_N_CELLS")
            )
            self._battery_level = BatteryLevel.NONE
            self._record(TruthKind.BATTERY_SWAP, f"{before:.3f} -> 1.000")

    def _auto_disarm(self, now: float) -> None:
        if not self.armed:
            return
        if self.model is Model.ROVER:
            # PX4's rover land detector: armed and not in Land mode is "not landed", so the
            # rover counts as taken off at once (no preflight disarm); in Land mode it is
            # landed and disarms COM_DISARM_LAND later (COM_DISARM_PRFLT if armed in Land)
            if self.nav is not Nav.LAND:
                self._took_off = True
                return
            if self._took_off:
                t, since = self.params["COM_DISARM_LAND"], self._landed_since
            else:
                t, since = self.params["COM_DISARM_PRFLT"], self._arm_time
            if t > 0 and since is not None and now - since >= t:
                self.disarm(
                    reason="auto disarm on land" if self._took_off else "auto preflight disarming"
                )
            return
        if not self.kin.on_ground:
            return
        if not self._took_off:
            t = self.params["COM_DISARM_PRFLT"]
            if t > 0 and now - self._arm_time >= t:
                self.disarm(reason="auto preflight disarming")
        elif self._landed_since is not None:
            t = self.params["COM_DISARM_LAND"]
            if t > 0 and now - self._landed_since >= t:
                self.disarm(reason="auto disarm on land")

    # --- failsafes ----------------------------------------------------------------------

    def _level(self) -> BatteryLevel:
        r, p = self.battery.remaining, self.params
        if r <= p["BAT_EMERGEN_THR"]:
            return BatteryLevel.EMERGENCY
        if r <= p["BAT_CRIT_THR"]:
            return BatteryLevel.CRITICAL
        if r <= p["BAT_LOW_THR"]:
            return BatteryLevel.LOW
        return BatteryLevel.NONE

    def _trigger(
        self, cause: str, action: Nav | None, now: float, delay: bool, terminate: bool = False
    ) -> None:
        self._record(
            TruthKind.FAILSAFE,
            f"{cause} -> {self._action_name(action, terminate)}",
        )
        log.warning(
            "sim.failsafe",
            vehicle=self.vehicle_id,
            cause=cause,
            action=action.name if action else "hold",
        )
        if delay and self.params["COM_FAIL_ACT_T"] > 0:
            self._set_nav(Nav.HOLD, f"failsafe {cause}")
            self._failsafe = _PendingFailsafe(
                cause, action, now + self.params["COM_FAIL_ACT_T"], terminate
            )
        else:
            self._failsafe = None
            self._apply_failsafe(cause, action, terminate)

    @staticmethod
    def _action_name(action: Nav | None, terminate: bool) -> str:
        if terminate:
            return "terminate"
        return action.name.lower() if action else "hold"

    def _apply_failsafe(self, cause: str, action: Nav | None, terminate: bool) -> None:
        if terminate:
            self.disarm(force=True, reason=f"flight termination ({cause})")
            return
        if action is Nav.RTL and self.model is Model.MULTICOPTER and not self.home:
            action = Nav.LAND
        self._set_nav(action or Nav.HOLD, f"failsafe {cause}")

    def _check_failsafes(self, now: float) -> None:
        p = self.params
        # data link
        last_hb = self.last_gcs_heartbeat
        if last_hb is not None and not self.gcs_lost and now - last_hb > p["COM_DL_LOSS_T"]:
            self.gcs_lost = True
            self.text(mavlink.MAV_SEVERITY_CRITICAL, "Connection to ground station lost")
            act = p.get_int("NAV_DLL_ACT")
            if self.armed and not self.landed and act:
                action = {1: Nav.HOLD, 2: Nav.RTL, 3: Nav.LAND}.get(act)
                self._trigger("data link lost", action, now, delay=True, terminate=act == 5)
                if act == 6:
                    self.disarm(force=True, reason="lockdown (data link lost)")
        # battery
        level = self._level()
        if level.value > self._battery_level.value:
            self._battery_level = level
            act = p.get_int("COM_LOW_BAT_ACT")
            if level is BatteryLevel.LOW:
                self.text(mavlink.MAV_SEVERITY_WARNING, "Low battery level! Return advised")
            elif level is BatteryLevel.CRITICAL:
                if act == 3 and self.armed and not self.landed:
                    self.text(mavlink.MAV_SEVERITY_CRITICAL, "Critical battery level! Returning")
                    self._trigger("critical battery", Nav.RTL, now, delay=True)
                elif act == 2 and self.armed and not self.landed:
                    self.text(mavlink.MAV_SEVERITY_CRITICAL, "Critical battery level! Landing")
                    self._trigger("critical battery", Nav.LAND, now, delay=True)
                else:
                    self.text(mavlink.MAV_SEVERITY_CRITICAL, "Critical battery level!")
            elif level is BatteryLevel.EMERGENCY:
                self.text(mavlink.MAV_SEVERITY_EMERGENCY, "Emergency battery level! Landing")
                if act in (2, 3) and self.armed and not self.landed:
                    self._trigger("emergency battery", Nav.LAND, now, delay=False)
        elif level.value < self._battery_level.value and not self.armed:
            self._battery_level = level
        # GPS
        if self.gps_fault and self.armed and not self.landed and self.nav is not Nav.LAND:
            self._trigger("no global position", Nav.LAND, now, delay=False)
        # geofence
        gf_action = p.get_int("GF_ACTION")
        if self.armed and not self.landed and gf_action > 0 and self.home is not None:
            lat, lon = self.latlon()
            hx, hy = self.frame.to_xy(self.home.lat, self.home.lon)
            reason = breach_reason(
                self.fence,
                lat,
                lon,
                self.kin.alt - self.home.alt,
                math.hypot(self.kin.x - hx, self.kin.y - hy),
                p["GF_MAX_HOR_DIST"],
                p["GF_MAX_VER_DIST"],
            )
            if reason and not self._fence_breached:
                self._fence_breached = True
                self.text(mavlink.MAV_SEVERITY_CRITICAL, f"Geofence breached: {reason}")
                if gf_action >= 2:
                    action = {2: Nav.HOLD, 3: Nav.RTL, 5: Nav.LAND}.get(gf_action)
                    self._trigger(
                        "geofence breach", action, now, delay=True, terminate=gf_action == 4
                    )
            elif not reason:
                self._fence_breached = False
        # pending delayed action
        fs = self._failsafe
        if fs is not None and now >= fs.deadline:
            self._failsafe = None
            self._apply_failsafe(fs.cause, fs.action, fs.terminate)

    # --- navigator ----------------------------------------------------------------------

    def _navigate(self, now: float) -> Setpoint:
        k = self.kin
        nav = self.nav
        if nav is Nav.TAKEOFF:
            if self.model is Model.ROVER:
                self._set_nav(Nav.HOLD, "takeoff complete")
                return self._hold_sp()
            if abs(k.alt - self._takeoff_alt) <= self.params["NAV_MC_ALT_RAD"] and not k.on_ground:
                self._set_nav(Nav.HOLD, "takeoff complete")
                return self._hold_sp()
            tx, ty = self._takeoff_xy
            return self._pos_sp(tx, ty, self._takeoff_alt, self.params["MPC_TKO_SPEED"])
        if nav is Nav.LAND:
            if self.model is Model.ROVER:
                return Setpoint(SetpointKind.IDLE)
            return Setpoint(SetpointKind.LAND, self._land_xy[0], self._land_xy[1], self.ground_alt)
        if nav is Nav.RTL:
            return self._rtl(now)
        if nav is Nav.MISSION:
            return self._mission(now)
        return self._hold_sp()

    def _hold_sp(self) -> Setpoint:
        k = self.kin
        if self._hold_point is None:
            if self.landed:
                return Setpoint(
                    SetpointKind.POSITION,
                    k.x,
                    k.y,
                    k.alt if self.model is Model.ROVER else self.ground_alt,
                )
            self._hold_point = (k.x, k.y, k.alt)
        hx, hy, ha = self._hold_point
        return self._pos_sp(hx, hy, ha)

    def _rtl(self, now: float) -> Setpoint:
        k, p = self.kin, self.params
        dx, dy, dalt = self._rtl_dest
        if self.model is Model.ROVER:
            if math.hypot(dx - k.x, dy - k.y) <= p["NAV_ACC_RAD"]:
                self.disarm(reason="return complete")
                return IDLE
            return self._pos_sp(dx, dy, self.ground_alt)
        phase = self._rtl_phase
        if phase is RtlPhase.CLIMB:
            if k.alt >= self._rtl_alt - p["NAV_MC_ALT_RAD"]:
                self._rtl_phase = RtlPhase.RETURN
            else:
                return self._pos_sp(k.x, k.y, self._rtl_alt)
        if self._rtl_phase is RtlPhase.RETURN:
            if math.hypot(dx - k.x, dy - k.y) <= p["NAV_ACC_RAD"]:
                self._rtl_phase = RtlPhase.DESCEND
            else:
                return self._pos_sp(dx, dy, self._rtl_alt)
        if self._rtl_phase is RtlPhase.DESCEND:
            target = min(self._rtl_alt, dalt + p["RTL_DESCEND_ALT"])
            if k.alt <= target + p["NAV_MC_ALT_RAD"]:
                self._rtl_phase = RtlPhase.LOITER
                delay = p["RTL_LAND_DELAY"]
                self._rtl_wait_until = math.inf if delay < 0 else now + delay
            else:
                return self._pos_sp(dx, dy, target)
        if self._rtl_phase is RtlPhase.LOITER:
            if now >= self._rtl_wait_until:
                self._rtl_phase = RtlPhase.LAND
            else:
                return self._pos_sp(dx, dy, k.alt)
        return Setpoint(SetpointKind.LAND, dx, dy, self.ground_alt)

    def _item_target(self, it: MissionItem) -> tuple[float, float, float]:
        k = self.kin
        home_alt = self.home.alt if self.home else self.ground_alt
        if it.x == 0 and it.y == 0:
            x, y = k.x, k.y
        else:
            x, y = self.frame.to_xy(it.lat, it.lon)
        alt = it.alt_amsl(home_alt) if math.isfinite(it.z) else k.alt
        if self.model is Model.ROVER:
            alt = self.ground_alt
        return x, y, alt

    def _reached_xy(self, x: float, y: float, it: MissionItem) -> bool:
        acc = (
            it.param2
            if it.command == mavlink.MAV_CMD_NAV_WAYPOINT and it.param2 > 0
            else self.params["NAV_ACC_RAD"]
        )
        return math.hypot(x - self.kin.x, y - self.kin.y) <= acc

    def _reached_alt(self, alt: float) -> bool:
        if self.model is Model.ROVER:
            return True
        return abs(alt - self.kin.alt) <= self.params["NAV_MC_ALT_RAD"]

    def _item_done(self, now: float) -> None:
        seq = self.result.seq_current
        self.result.seq_reached = seq
        self._record(TruthKind.ITEM_REACHED, seq=seq)
        nxt = seq + 1
        if nxt >= len(self.mission):
            self.result.finished = True
            self._record(TruthKind.MISSION_FINISHED, seq=seq)
            if self.landed:
                self.announce(
                    "mission_finished", mavlink.MAV_SEVERITY_INFO, "Mission finished, landed"
                )
            else:
                self.announce(
                    "mission_finished_loiter",
                    mavlink.MAV_SEVERITY_INFO,
                    "Mission finished, loitering",
                )
            if not self.landed or self.model is Model.ROVER:
                self._set_nav(Nav.HOLD, "mission finished")
            return
        self._goto_item(nxt, reset_finished=False)

    def _mission(self, now: float) -> Setpoint:
        k, p = self.kin, self.params
        for _ in range(16):  # DO items complete instantly; bounded against DO_JUMP loops
            if self.result.finished or not self.mission:
                return (
                    self._hold_sp()
                    if not self.landed
                    else Setpoint(SetpointKind.POSITION, k.x, k.y, self.ground_alt)
                )
            seq = self.result.seq_current
            it = self.mission[seq]
            if self._item_started is None:
                self._item_started = now
                self._item_wait_until = None
                self._item_phase = 0
            if not it.has_position:
                sp = self._do_item(it, now)
                if sp is not None:
                    return sp
                continue
            cmd = it.command
            x, y, alt = self._item_target(it)
            if cmd == mavlink.MAV_CMD_NAV_TAKEOFF and self.model is Model.MULTICOPTER:
                if self._reached_alt(alt) and not k.on_ground:
                    self._item_done(now)
                    continue
                return self._pos_sp(k.x, k.y, alt, p["MPC_TKO_SPEED"])
            if self.landed and self.model is Model.MULTICOPTER and cmd != mavlink.MAV_CMD_NAV_LAND:
                # no take-off item: PX4 climbs vertically to the item's altitude first
                self._item_phase = 1
                return self._pos_sp(k.x, k.y, max(alt, self.ground_alt + 1.0), p["MPC_TKO_SPEED"])
            if self._item_phase == 1 and self.model is Model.MULTICOPTER:
                if k.alt < alt - p["NAV_MC_ALT_RAD"]:
                    return self._pos_sp(k.x, k.y, alt, p["MPC_TKO_SPEED"])
                self._item_phase = 0
            if cmd == mavlink.MAV_CMD_NAV_LAND:
                if self.model is Model.ROVER:
                    if self._reached_xy(x, y, it):
                        self._item_done(now)
                        continue
                    return self._pos_sp(x, y, self.ground_alt)
                if self._item_phase < 2 and not self._reached_xy(x, y, it) and not k.on_ground:
                    return self._pos_sp(x, y, k.alt)
                if k.on_ground and self._item_phase >= 2:
                    self._item_done(now)
                    continue
                self._item_phase = 2
                if k.on_ground:
                    self._item_done(now)
                    continue
                return Setpoint(SetpointKind.LAND, x, y, self.ground_alt)
            # waypoint and loiters
            if self._item_wait_until is None:
                if self._reached_xy(x, y, it) and self._reached_alt(alt):
                    if cmd == mavlink.MAV_CMD_NAV_LOITER_UNLIM:
                        self._item_wait_until = math.inf
                    elif cmd in (mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_NAV_LOITER_TIME):
                        self._item_wait_until = now + max(0.0, it.param1)
                    else:
                        self._item_wait_until = now
                else:
                    return self._pos_sp(x, y, alt)
            if now >= self._item_wait_until:
                self._item_done(now)
                continue
            return self._pos_sp(x, y, alt)
        return self._hold_sp()

    def _do_item(self, it: MissionItem, now: float) -> Setpoint | None:
        """Run a non-position item; a setpoint while it waits, None once it is done."""
        cmd = it.command
        p = self.params
        if self._item_wait_until is None:
            wait = 0.0
            if cmd == mavlink.MAV_CMD_DO_GRIPPER:
                self.gripper(
                    int(it.param2) == mavlink.GRIPPER_ACTION_RELEASE, f"mission item {it.seq}"
                )
                wait = p["MIS_COMMAND_TOUT"]
            elif cmd == mavlink.MAV_CMD_DO_WINCH:
                self.winch(int(it.param2), it.param3, it.param4, f"mission item {it.seq}")
                wait = p["MIS_COMMAND_TOUT"]
            elif cmd == mavlink.MAV_CMD_DO_CHANGE_SPEED:
                self.change_speed(it.param2)
            elif cmd in (mavlink.MAV_CMD_CONDITION_DELAY, mavlink.MAV_CMD_NAV_DELAY):
                wait = max(0.0, it.param1)
            elif cmd == mavlink.MAV_CMD_DO_SET_HOME:
                if int(it.param1) == 1:
                    self._set_home_here()
                else:
                    self.set_home(it.x * 1e-7, it.y * 1e-7, it.z)
            elif cmd == mavlink.MAV_CMD_DO_JUMP:
                target, repeat = int(it.param1), int(it.param2)
                done = self._jumps.get(it.seq, 0)
                if repeat < 0 or done < repeat:
                    self._jumps[it.seq] = done + 1
                    self.result.seq_reached = it.seq
                    self._goto_item(target, reset_finished=False)
                    return None
            elif cmd == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
                self._item_done(now)
                self._set_nav(Nav.RTL, "mission return item")
                return self._rtl(now)
            self._item_wait_until = now + wait
        if now < self._item_wait_until:
            return self._hold_sp_here()
        self._item_done(now)
        return None

    def _hold_sp_here(self) -> Setpoint:
        k = self.kin
        if self.landed:
            return Setpoint(SetpointKind.POSITION, k.x, k.y, k.alt)
        return self._pos_sp(k.x, k.y, k.alt)


def custom_mode_of(nav: Nav) -> tuple[int, int]:
    """(main, sub) of a nav state."""
    return nav.main, nav.sub


def positions(items: Sequence[MissionItem]) -> list[tuple[float, float]]:
    """(lat, lon) of the positional items of a plan."""
    return [(i.lat, i.lon) for i in items if i.has_position]
