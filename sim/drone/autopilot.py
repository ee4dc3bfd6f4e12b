"""The commander of a sim vehicle: PX4's arming, modes, home and the update loop, without I/O.

:class:`Autopilot` owns arming and disarming (with PX4's health and arming checks,
:mod:`sim.drone.health`), the flight mode, the home position, the plans a ground station
uploaded, auto-disarm, the ground crew's battery swaps and the world state (kinematics, battery,
ground truth). Each :meth:`Autopilot.update` runs the logic and advances the kinematics
(:func:`sim.drone.physics.step`) and the battery by ``dt`` world seconds. Its parts:

* :class:`sim.drone.navigator.Navigator`: the setpoint of each mode, mission execution, plan
  feasibility checks;
* :class:`sim.drone.failsafes.Failsafes`: data link, battery, GPS and geofence failsafes;
* :mod:`sim.drone.modes`: the navigation states (:class:`~sim.drone.modes.Nav`).

Commands return a ``MAV_RESULT``; messages for the ground station are queued: STATUSTEXT in
:attr:`Autopilot.texts`, EVENTs in :attr:`Autopilot.events`. What happens in the world is
recorded in :attr:`Autopilot.truth`.

Behaviour follows PX4 v1.14/1.15 (SIH quadrotor and Ackermann rover); the figures and every
known difference are in ``docs/sim.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem, MissionType
from fleet.clock import Clock
from fleet.geo import LocalFrame
from sim.drone import health
from sim.drone.battery import Battery, discharge, power_draw
from sim.drone.events import EventLog
from sim.drone.failsafes import BatteryLevel, Failsafes, warning_level
from sim.drone.fence import Fence
from sim.drone.ground_crew import swap_battery_if_due
from sim.drone.mission_protocol import MissionResult
from sim.drone.modes import AUTO_NAVS, NAV_GROUPS, Nav
from sim.drone.navigator import Navigator
from sim.drone.params import ParamStore
from sim.drone.physics import IDLE, KinematicState, Model, Setpoint, SetpointKind, step
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


@dataclass(frozen=True, slots=True)
class Home:
    """A home position (degrees, metres above mean sea level)."""

    lat: float
    lon: float
    alt: float


class Autopilot:
    """The commander of one sim vehicle, with its navigator and failsafes."""

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
        disarmed on its home pad; None: nobody swaps (PX4 itself never does). See
        :mod:`sim.drone.ground_crew`."""
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
        self.wind: tuple[float, float] = (0.0, 0.0)
        """Wind blowing the vehicle off its track in the air (fault injection), m/s east/north."""
        self.last_gcs_heartbeat: float | None = None
        self.gcs_lost = False
        self.mission: list[MissionItem] = []
        self.fence = Fence()
        self.rally: list[MissionItem] = []
        self.result = MissionResult(valid=False, seq_current=0, seq_reached=-1)
        self._arm_time = 0.0
        self._took_off = False
        self.landed_since: float | None = None
        """When the land detector last said landed (world monotonic time)."""
        self.winch_length_m = 0.0
        self.gripper_open = False
        self.setpoint: Setpoint = IDLE
        self.navigator = Navigator(self)
        self.failsafes = Failsafes(self)

    # --- state queries ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Home known and the position estimates valid (what auto modes need)."""
        return self.home is not None and self.estimator_ok(self.now())

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
                mission=bool(self.mission)
                and self.result.valid
                and not self.navigator.plan_unchecked,
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

    def battery_level(self) -> BatteryLevel:
        return warning_level(self.battery.remaining, self.params)

    @property
    def failsafe_active(self) -> bool:
        """A failsafe is holding the vehicle before its action."""
        return self.failsafes.active

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
        if self.navigator.taking_off():
            return int(mavlink.MAV_LANDED_STATE_TAKEOFF)
        if self.setpoint.kind is SetpointKind.LAND:
            return int(mavlink.MAV_LANDED_STATE_LANDING)
        return int(mavlink.MAV_LANDED_STATE_IN_AIR)

    def now(self) -> float:
        return self.clock.monotonic()

    def record(self, kind: TruthKind, detail: str = "", seq: int | None = None) -> None:
        lat, lon = self.latlon()
        self.truth.add(
            TruthEvent(kind, self.now(), self.clock.time(), lat, lon, self.rel_alt(), detail, seq)
        )

    def text(self, severity: int, message: str) -> None:
        """Queue a STATUSTEXT for the ground station."""
        self.texts.append((severity, message))

    def event(
        self, name: str, fmt: str = "", values: tuple[float, ...] = (), level: int = 3
    ) -> None:
        """Queue PX4 event ``name`` with its arguments (``level``: events::Log, error)."""
        self.events.emit(
            name, fmt, values, time_boot_ms=self.boot_ms(), level=level, internal=level
        )

    def announce(
        self, name: str, severity: int, text: str, fmt: str = "", values: tuple[float, ...] = ()
    ) -> None:
        """Say something as PX4 does: the EVENT ``name`` at ``severity`` (events::Log levels are
        MAV_SEVERITY's) and its STATUSTEXT ``text``, ending in the tab that tells a ground
        station reading events that the same message came as an EVENT."""
        self.text(severity, text + "\t")
        self.event(name, fmt, values, level=severity)

    def boot_ms(self) -> int:
        return int(max(0.0, self.now() - self.boot_time) * 1000)

    # --- home, GCS ----------------------------------------------------------------------

    def set_home_here(self) -> None:
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
            # PX4: the mission manager reports seq 65535 (-1) until the navigator has taken up
            # the new plan, and the previous verdict until it has checked it
            self.result = MissionResult(
                valid=self.result.valid, seq_current=-1, seq_reached=-1, finished=False
            )
            self.navigator.plan_replaced()
            if self.nav is Nav.MISSION and self.armed:
                self.set_nav(Nav.HOLD, "mission changed")
        self.revalidate_mission()
        return int(mavlink.MAV_MISSION_ACCEPTED)

    def revalidate_mission(self) -> None:
        """The plan, the fence, home or a parameter changed: the navigator checks the plan
        again (:meth:`sim.drone.navigator.Navigator.revalidate`)."""
        self.navigator.revalidate()

    # --- commands -----------------------------------------------------------------------

    def arm(
        self, force: bool = False, for_mission: bool = False, reason: int = ARMED_BY_COMMAND
    ) -> int:
        """Arm, as PX4's ``Commander::arm``: unless forced, a fresh arming report goes out and
        the checks must let the vehicle arm in its mode (Mission for a mission start); else
        "Arming denied: Resolve system health failures first" and TEMPORARILY_REJECTED."""
        now = self.now()
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
        self.landed_since = None
        self.failsafes.battery_level = self.battery_level()  # warn only on changes after arming
        if self.landed:
            self.set_home_here()
        self.record(TruthKind.ARMED)
        self.announce(
            "commander_armed_by",
            mavlink.MAV_SEVERITY_INFO,
            f"Armed by {_REASON_TEXT.get(reason, 'external command')}",
            "B",
            (reason,),
        )
        if self.nav is Nav.TAKEOFF:
            self.navigator.enter(Nav.TAKEOFF, keep_takeoff_alt=True)
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
        self.failsafes.cancel()
        self.record(TruthKind.DISARMED, reason)
        code = disarm_reason_code(reason)
        self.announce(
            "commander_disarmed_by",
            mavlink.MAV_SEVERITY_INFO,
            f"Disarmed by {_REASON_TEXT.get(code, reason)}",
            "B",
            (code,),
        )
        if self.landed and self.model is Model.MULTICOPTER:
            self.set_home_here()  # PX4 keeps home where the vehicle stands disarmed
        return ACCEPTED

    def set_mode(self, nav: Nav) -> int:
        if nav is self.nav:
            return ACCEPTED
        if nav in AUTO_NAVS and nav is not Nav.MISSION and not self.can_arm_in(nav, self.now()):
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
        self.failsafes.cancel()  # user takeover
        self.set_nav(nav, "command")
        return ACCEPTED

    def takeoff(self, alt_amsl: float | None) -> int:
        if not self.ready:
            return TEMPORARILY_REJECTED
        base = self.home.alt if self.home else self.ground_alt
        min_alt = base + self.params["MIS_TAKEOFF_ALT"]
        target = min_alt if alt_amsl is None or not math.isfinite(alt_amsl) else alt_amsl
        if target <= self.kin.alt and not self.landed:
            target = self.kin.alt
        self.navigator.takeoff_alt = max(target, self.ground_alt + 1.0)
        self.failsafes.cancel()
        self.set_nav(Nav.TAKEOFF, "command", keep_takeoff_alt=True)
        return ACCEPTED

    def mission_start(self, first: int) -> int:
        if not self.mission or not self.result.valid or self.navigator.plan_unchecked:
            self.announce(
                "commander_mission_start_denied_no_mission",
                mavlink.MAV_SEVERITY_CRITICAL,
                "Mission start denied! No valid mission",
            )
            return DENIED
        if not 0 <= first < len(self.mission):
            first = self.result.seq_current if first < 0 else 0
        if self.result.finished or first != self.result.seq_current:
            self.navigator.goto_item(first, reset_finished=True)
        if not self.armed and self.arm(for_mission=True, reason=ARMED_BY_MISSION_START) != ACCEPTED:
            return TEMPORARILY_REJECTED
        self.failsafes.cancel()
        self.set_nav(Nav.MISSION, "mission start")
        return ACCEPTED

    def set_current_item(self, seq: int) -> int:
        if not 0 <= seq < len(self.mission):
            return DENIED
        self.navigator.goto_item(seq, reset_finished=True)
        return ACCEPTED

    def reposition(self, lat: float, lon: float, alt_amsl: float | None) -> int:
        if not self.ready:
            return TEMPORARILY_REJECTED
        x, y = self.frame.to_xy(lat, lon)
        alt = alt_amsl if alt_amsl is not None and math.isfinite(alt_amsl) else self.kin.alt
        self.failsafes.cancel()
        self.set_nav(Nav.HOLD, "reposition")
        self.navigator.hold_point = (x, y, alt)
        return ACCEPTED

    def change_speed(self, speed: float) -> int:
        if speed > 0:
            self.navigator.speed_override = speed
        elif speed == -2 or speed == 0:
            self.navigator.speed_override = None
        return ACCEPTED

    def gripper(self, release: bool, source: str) -> None:
        """Open (release) or close the payload gripper now."""
        self.gripper_open = release
        self.record(TruthKind.RELEASE if release else TruthKind.GRAB, source)
        log.info("sim.gripper", vehicle=self.vehicle_id, release=release, source=source)

    def winch(self, action: int, length: float, rate: float, source: str) -> None:
        if action == mavlink.WINCH_RELATIVE_LENGTH_CONTROL:
            self.winch_length_m = max(0.0, self.winch_length_m + length)
        self.record(TruthKind.WINCH, f"{source}: action={action} length={length} rate={rate}")

    # --- fault injection ----------------------------------------------------------------

    def set_battery(self, fraction: float) -> None:
        self.battery = self.battery.with_remaining(fraction)
        self.record(TruthKind.FAULT, f"battery set to {fraction:.3f}")

    def set_drain_multiplier(self, factor: float) -> None:
        self.battery = replace(self.battery, drain_multiplier=factor)
        self.record(TruthKind.FAULT, f"battery drain x{factor}")

    def record_fault(self, detail: str) -> None:
        self.record(TruthKind.FAULT, detail)

    def set_wind(self, east_mps: float, north_mps: float) -> None:
        self.wind = (east_mps, north_mps)
        self.record(TruthKind.FAULT, f"wind {east_mps:g} m/s east, {north_mps:g} m/s north")

    def set_gps_fault(self, lost: bool) -> None:
        self.gps_fault = lost
        self.record(TruthKind.FAULT, "gps lost" if lost else "gps restored")
        if lost:
            self.text(mavlink.MAV_SEVERITY_CRITICAL, "GPS lost")

    # --- mode machinery -----------------------------------------------------------------

    def set_nav(self, nav: Nav, reason: str, keep_takeoff_alt: bool = False) -> None:
        changed = nav is not self.nav
        self.nav = nav
        self.navigator.enter(nav, keep_takeoff_alt)
        if changed:
            self.record(TruthKind.MODE, nav.name.lower())
            log.info("sim.mode", vehicle=self.vehicle_id, mode=nav.name.lower(), reason=reason)
            if nav is Nav.MISSION:
                self.navigator.announce_mission()

    def update(self, dt: float) -> None:
        """Run the logic at the current world time, then advance the world by ``dt``."""
        now = self.now()
        self.gps_ok = not self.gps_fault and now >= self.boot_time + GPS_FIX_S
        if self.home is None and not self.gps_fault and now >= self.ready_at:
            self.set_home_here()  # PX4 says nothing on the link when it sets home
        if self.navigator.plan_unchecked and self.navigator.can_check_plan(now):
            self.navigator.check_plan()
        if self.checks.update(
            self.events, self.failing_checks(now), now, self.boot_ms(), force=self._report_due
        ):
            self._report_due = False
        self.failsafes.check(now)
        self._auto_disarm(now)
        sp = self.navigator.setpoint(now) if self.armed else IDLE
        self.setpoint = sp
        was_on_ground = self.kin.on_ground
        self.kin = step(replace(self.kin, setpoint=sp, limits=self.navigator.limits()), dt)
        if self.wind != (0.0, 0.0) and not self.kin.on_ground:
            # drift the controller then works against (a gust moves the vehicle off its track)
            self.kin = replace(
                self.kin, x=self.kin.x + self.wind[0] * dt, y=self.kin.y + self.wind[1] * dt
            )
        self.kin_time = self.clock.time()
        self.battery = discharge(self.battery, power_draw(self.kin, self.armed), dt)
        if self.model is Model.MULTICOPTER:
            if was_on_ground and not self.kin.on_ground:
                self._took_off = True
                self.landed_since = None
                self.record(TruthKind.TAKEOFF)
                self.announce(
                    "commander_takeoff_detected", mavlink.MAV_SEVERITY_INFO, "Takeoff detected"
                )
            elif not was_on_ground and self.kin.on_ground:
                self.landed_since = now + dt
                self.record(TruthKind.LANDING)
                self.announce(
                    "commander_landing_detected", mavlink.MAV_SEVERITY_INFO, "Landing detected"
                )
                if not self.armed:
                    self.set_home_here()
            swap_battery_if_due(self, now)

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
                t, since = self.params["COM_DISARM_LAND"], self.landed_since
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
        elif self.landed_since is not None:
            t = self.params["COM_DISARM_LAND"]
            if t > 0 and now - self.landed_since >= t:
                self.disarm(reason="auto disarm on land")
