"""PX4's navigator on a sim vehicle: the setpoint of each mode and the execution of the mission.

:class:`Navigator` turns the vehicle's mode (:class:`sim.drone.modes.Nav`) into the setpoint the
kinematics follow (:mod:`sim.drone.physics`): Takeoff climbs to its altitude and holds, Land
descends where it is, RTL climbs to RTL_RETURN_ALT, flies to home (or the nearest rally point),
descends to RTL_DESCEND_ALT, waits RTL_LAND_DELAY and lands, the holding modes hold their
position, and Mission flies the uploaded plan item by item: take-off, waypoints with their hold
time and acceptance radius, loiters, land, and the DO items (gripper, winch, speed, delays, home,
jumps) run when the mission reaches them. It also checks each new plan as PX4's feasibility
checker does (:func:`sim.drone.feasibility.check_mission`), once the vehicle has a home and a
position and :data:`PLAN_CHECK_DELAY_S` after the plan changed.

It belongs to one :class:`sim.drone.autopilot.Autopilot` (the commander), whose state it reads
and whose commands (mode changes, disarming, payload) it uses. Figures and known differences are
in ``docs/sim.md``.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem
from sim.drone.feasibility import check_mission
from sim.drone.modes import HOLDING_NAVS, Nav
from sim.drone.physics import IDLE, Limits, Model, Setpoint, SetpointKind
from sim.truth import TruthKind

if TYPE_CHECKING:
    from sim.drone.autopilot import Autopilot

PLAN_CHECK_DELAY_S = 1.0
"""World seconds from a plan (or fence) change to the navigator's verdict. PX4 SITL, measured
through the bridge: the verdict came 1.0 to 1.6 s after the upload (fence reload included), the
mission manager meanwhile reporting seq 65535 and "no mission" with the new count."""


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


class Navigator:
    """Setpoints, mission execution and plan checks of one sim vehicle."""

    def __init__(self, ap: Autopilot) -> None:
        self.ap = ap
        self.plan_unchecked = False
        """A plan, fence or home changed and the navigator has not checked the plan since."""
        self.plan_changed_at = ap.boot_time
        self.mission_reason = ""
        """Why the last checked plan is infeasible (empty when it is feasible)."""
        self.jumps: dict[int, int] = {}
        """DO_JUMP repetitions done, by the jump item's sequence number."""
        self.item_started: float | None = None
        self.item_wait_until: float | None = None
        self.item_phase = 0
        """1: climbing before the first positioned item; 2: landing on a land item."""
        self.hold_point: tuple[float, float, float] | None = None
        self.takeoff_alt = 0.0
        self.takeoff_xy: tuple[float, float] = (0.0, 0.0)
        self.land_xy: tuple[float, float] = (0.0, 0.0)
        self.rtl_phase = RtlPhase.CLIMB
        self.rtl_dest: tuple[float, float, float] = (0.0, 0.0, ap.ground_alt)
        self.rtl_alt = 0.0
        self.rtl_wait_until = 0.0
        self.speed_override: float | None = None
        """DO_CHANGE_SPEED's ground speed (None: the cruise speed parameter)."""
        self._limits_cache: tuple[tuple[float, ...], Limits] | None = None

    # --- plans --------------------------------------------------------------------------

    def plan_replaced(self) -> None:
        """A new mission arrived: forget the progress through the old one."""
        self.jumps = {}
        self.item_started = None
        self.item_phase = 0

    def revalidate(self) -> None:
        """The plan, the fence, home or a parameter changed: check the plan
        :data:`PLAN_CHECK_DELAY_S` later, once there is a home and a global position (PX4's
        ``canRunMissionFeasibility``)."""
        self.plan_unchecked = True
        self.plan_changed_at = self.ap.now()

    def can_check_plan(self, now: float) -> bool:
        ap = self.ap
        return (
            ap.home is not None
            and ap.position_published(now)
            and now >= self.plan_changed_at + PLAN_CHECK_DELAY_S
        )

    def check_plan(self) -> None:
        """PX4's ``check_mission_valid``: judge the plan, report every failure (and warning)
        once per plan, take up its first item."""
        ap = self.ap
        self.plan_unchecked = False
        home = (ap.home.lat, ap.home.lon, ap.home.alt) if ap.home else None
        feas = check_mission(
            ap.mission,
            home,
            ap.fence,
            ap.params["GF_MAX_HOR_DIST"],
            ap.params["GF_MAX_VER_DIST"],
            ap.params["MIS_DIST_1WP"],
        )
        ap.result.valid = feas.valid and bool(ap.mission)
        if ap.mission and feas.reports:
            for r in feas.reports:
                ap.text(r.text_severity, r.text + "\t")
                ap.event(r.event, r.fmt, r.values, level=r.level)
        self.mission_reason = feas.reason
        if ap.result.seq_current < 0:
            ap.result.seq_current = next(
                (seq for seq, item in enumerate(ap.mission) if item.current), 0
            )

    # --- modes --------------------------------------------------------------------------

    def taking_off(self) -> bool:
        """The current setpoint is a take-off (PX4's SETPOINT_TYPE_TAKEOFF)."""
        ap = self.ap
        if ap.nav is Nav.TAKEOFF:
            return True
        if ap.nav is not Nav.MISSION or ap.result.finished or not ap.mission:
            return False
        seq = ap.result.seq_current
        if not 0 <= seq < len(ap.mission):
            return False
        return ap.mission[seq].command == mavlink.MAV_CMD_NAV_TAKEOFF or self.item_phase == 1

    def enter(self, nav: Nav, keep_takeoff_alt: bool = False) -> None:
        """Set up the mode the vehicle just entered (or entered again)."""
        ap = self.ap
        k = ap.kin
        if nav in HOLDING_NAVS:
            self.hold_point = (k.x, k.y, k.alt) if not ap.landed else None
        elif nav is Nav.TAKEOFF:
            self.takeoff_xy = (k.x, k.y)
            if not keep_takeoff_alt:
                base = ap.home.alt if ap.home else ap.ground_alt
                self.takeoff_alt = max(k.alt, base + ap.params["MIS_TAKEOFF_ALT"])
        elif nav is Nav.LAND:
            self.land_xy = (k.x, k.y)
            if ap.model is Model.ROVER:
                ap.landed_since = ap.now()
        elif nav is Nav.RTL:
            self._start_rtl()
        elif nav is Nav.MISSION:
            self.item_started = None
            self.item_phase = 0
            if ap.result.finished and ap.landed:
                self.goto_item(0, reset_finished=True)

    def announce_mission(self) -> None:
        """What PX4's navigator says when Mission mode takes over: "Executing Mission", and on
        the ground "Climb to N m above home" (the first positioned item's height)."""
        ap = self.ap
        ap.announce("mission_execute", mavlink.MAV_SEVERITY_INFO, "Executing Mission")
        if not ap.landed or ap.model is not Model.MULTICOPTER or not ap.mission:
            return
        seq = max(0, ap.result.seq_current)
        item = next((i for i in ap.mission[seq:] if i.has_position), None)
        if item is None:
            return
        home_alt = ap.home.alt if ap.home else ap.ground_alt
        height = item.alt_amsl(home_alt) - home_alt
        ap.announce(
            "mission_climb_before_start",
            mavlink.MAV_SEVERITY_INFO,
            f"Climb to {height:.1f} meters above home",
            "f",
            (height,),
        )

    def _start_rtl(self) -> None:
        ap = self.ap
        k = ap.kin
        dests: list[tuple[float, float, float]] = []
        if ap.home:
            hx, hy = ap.frame.to_xy(ap.home.lat, ap.home.lon)
            dests.append((hx, hy, ap.home.alt))
        home_alt = ap.home.alt if ap.home else ap.ground_alt
        for r in ap.rally:
            rx, ry = ap.frame.to_xy(r.lat, r.lon)
            dests.append((rx, ry, r.alt_amsl(home_alt) if not r.relative_alt else home_alt))
        if not dests:
            dests.append((k.x, k.y, ap.ground_alt))
        self.rtl_dest = min(dests, key=lambda d: math.hypot(d[0] - k.x, d[1] - k.y))
        dist = math.hypot(self.rtl_dest[0] - k.x, self.rtl_dest[1] - k.y)
        ret = home_alt + ap.params["RTL_RETURN_ALT"]
        if dist < ap.params["RTL_MIN_DIST"]:
            ret = k.alt
        self.rtl_alt = max(k.alt, ret)
        self.rtl_phase = RtlPhase.CLIMB if ap.model is Model.MULTICOPTER else RtlPhase.RETURN

    def goto_item(self, seq: int, reset_finished: bool) -> None:
        result = self.ap.result
        result.seq_current = seq
        if reset_finished:
            result.finished = False
        self.item_started = None
        self.item_wait_until = None
        self.item_phase = 0

    # --- setpoints ----------------------------------------------------------------------

    def _cruise(self) -> float:
        ap = self.ap
        if ap.model is Model.ROVER:
            return self.speed_override or ap.params["RO_SPEED_LIM"]
        return self.speed_override or ap.params["MPC_XY_CRUISE"]

    def limits(self) -> Limits:
        """The kinematic limits of the vehicle's parameters (rebuilt when they change)."""
        p = self.ap.params
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
            rover = self.ap.model is Model.ROVER
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
        p = self.ap.params
        return Setpoint(
            SetpointKind.POSITION,
            x,
            y,
            alt,
            speed_xy=self._cruise(),
            speed_up=speed_up if speed_up is not None else p["MPC_Z_V_AUTO_UP"],
            speed_down=p["MPC_Z_V_AUTO_DN"],
        )

    def setpoint(self, now: float) -> Setpoint:
        """The setpoint of the current mode at world time ``now`` (the vehicle is armed)."""
        ap = self.ap
        k = ap.kin
        nav = ap.nav
        if nav is Nav.TAKEOFF:
            if ap.model is Model.ROVER:
                ap.set_nav(Nav.HOLD, "takeoff complete")
                return self._hold_sp()
            if abs(k.alt - self.takeoff_alt) <= ap.params["NAV_MC_ALT_RAD"] and not k.on_ground:
                ap.set_nav(Nav.HOLD, "takeoff complete")
                return self._hold_sp()
            tx, ty = self.takeoff_xy
            return self._pos_sp(tx, ty, self.takeoff_alt, ap.params["MPC_TKO_SPEED"])
        if nav is Nav.LAND:
            if ap.model is Model.ROVER:
                return Setpoint(SetpointKind.IDLE)
            return Setpoint(SetpointKind.LAND, self.land_xy[0], self.land_xy[1], ap.ground_alt)
        if nav is Nav.RTL:
            return self._rtl(now)
        if nav is Nav.MISSION:
            return self._mission(now)
        return self._hold_sp()

    def _hold_sp(self) -> Setpoint:
        ap = self.ap
        k = ap.kin
        if self.hold_point is None:
            if ap.landed:
                return Setpoint(
                    SetpointKind.POSITION,
                    k.x,
                    k.y,
                    k.alt if ap.model is Model.ROVER else ap.ground_alt,
                )
            self.hold_point = (k.x, k.y, k.alt)
        hx, hy, ha = self.hold_point
        return self._pos_sp(hx, hy, ha)

    def _rtl(self, now: float) -> Setpoint:
        ap = self.ap
        k, p = ap.kin, ap.params
        dx, dy, dalt = self.rtl_dest
        if ap.model is Model.ROVER:
            if math.hypot(dx - k.x, dy - k.y) <= p["NAV_ACC_RAD"]:
                ap.disarm(reason="return complete")
                return IDLE
            return self._pos_sp(dx, dy, ap.ground_alt)
        phase = self.rtl_phase
        if phase is RtlPhase.CLIMB:
            if k.alt >= self.rtl_alt - p["NAV_MC_ALT_RAD"]:
                self.rtl_phase = RtlPhase.RETURN
            else:
                return self._pos_sp(k.x, k.y, self.rtl_alt)
        if self.rtl_phase is RtlPhase.RETURN:
            if math.hypot(dx - k.x, dy - k.y) <= p["NAV_ACC_RAD"]:
                self.rtl_phase = RtlPhase.DESCEND
            else:
                return self._pos_sp(dx, dy, self.rtl_alt)
        if self.rtl_phase is RtlPhase.DESCEND:
            target = min(self.rtl_alt, dalt + p["RTL_DESCEND_ALT"])
            if k.alt <= target + p["NAV_MC_ALT_RAD"]:
                self.rtl_phase = RtlPhase.LOITER
                delay = p["RTL_LAND_DELAY"]
                self.rtl_wait_until = math.inf if delay < 0 else now + delay
            else:
                return self._pos_sp(dx, dy, target)
        if self.rtl_phase is RtlPhase.LOITER:
            if now >= self.rtl_wait_until:
                self.rtl_phase = RtlPhase.LAND
            else:
                return self._pos_sp(dx, dy, k.alt)
        return Setpoint(SetpointKind.LAND, dx, dy, ap.ground_alt)

    # --- mission execution --------------------------------------------------------------

    def _item_target(self, it: MissionItem) -> tuple[float, float, float]:
        ap = self.ap
        k = ap.kin
        home_alt = ap.home.alt if ap.home else ap.ground_alt
        if it.x == 0 and it.y == 0:
            x, y = k.x, k.y
        else:
            x, y = ap.frame.to_xy(it.lat, it.lon)
        alt = it.alt_amsl(home_alt) if math.isfinite(it.z) else k.alt
        if ap.model is Model.ROVER:
            alt = ap.ground_alt
        return x, y, alt

    def _reached_xy(self, x: float, y: float, it: MissionItem) -> bool:
        ap = self.ap
        acc = (
            it.param2
            if it.command == mavlink.MAV_CMD_NAV_WAYPOINT and it.param2 > 0
            else ap.params["NAV_ACC_RAD"]
        )
        return math.hypot(x - ap.kin.x, y - ap.kin.y) <= acc

    def _reached_alt(self, alt: float) -> bool:
        ap = self.ap
        if ap.model is Model.ROVER:
            return True
        return abs(alt - ap.kin.alt) <= ap.params["NAV_MC_ALT_RAD"]

    def _item_done(self, now: float) -> None:
        ap = self.ap
        seq = ap.result.seq_current
        ap.result.seq_reached = seq
        ap.record(TruthKind.ITEM_REACHED, seq=seq)
        nxt = seq + 1
        if nxt >= len(ap.mission):
            ap.result.finished = True
            ap.record(TruthKind.MISSION_FINISHED, seq=seq)
            if ap.landed:
                ap.announce(
                    "mission_finished", mavlink.MAV_SEVERITY_INFO, "Mission finished, landed"
                )
            else:
                ap.announce(
                    "mission_finished_loiter",
                    mavlink.MAV_SEVERITY_INFO,
                    "Mission finished, loitering",
                )
            if not ap.landed or ap.model is Model.ROVER:
                ap.set_nav(Nav.HOLD, "mission finished")
            return
        self.goto_item(nxt, reset_finished=False)

    def _mission(self, now: float) -> Setpoint:
        ap = self.ap
        k, p = ap.kin, ap.params
        for _ in range(16):  # DO items complete instantly; bounded against DO_JUMP loops
            if ap.result.finished or not ap.mission:
                return (
                    self._hold_sp()
                    if not ap.landed
                    else Setpoint(SetpointKind.POSITION, k.x, k.y, ap.ground_alt)
                )
            seq = ap.result.seq_current
            it = ap.mission[seq]
            if self.item_started is None:
                self.item_started = now
                self.item_wait_until = None
                self.item_phase = 0
            if not it.has_position:
                sp = self._do_item(seq, it, now)
                if sp is not None:
                    return sp
                continue
            cmd = it.command
            x, y, alt = self._item_target(it)
            if cmd == mavlink.MAV_CMD_NAV_TAKEOFF and ap.model is Model.MULTICOPTER:
                if self._reached_alt(alt) and not k.on_ground:
                    self._item_done(now)
                    continue
                return self._pos_sp(k.x, k.y, alt, p["MPC_TKO_SPEED"])
            if ap.landed and ap.model is Model.MULTICOPTER and cmd != mavlink.MAV_CMD_NAV_LAND:
                # no take-off item: PX4 climbs vertically to the item's altitude first
                self.item_phase = 1
                return self._pos_sp(k.x, k.y, max(alt, ap.ground_alt + 1.0), p["MPC_TKO_SPEED"])
            if self.item_phase == 1 and ap.model is Model.MULTICOPTER:
                if k.alt < alt - p["NAV_MC_ALT_RAD"]:
                    return self._pos_sp(k.x, k.y, alt, p["MPC_TKO_SPEED"])
                self.item_phase = 0
            if cmd == mavlink.MAV_CMD_NAV_LAND:
                if ap.model is Model.ROVER:
                    if self._reached_xy(x, y, it):
                        self._item_done(now)
                        continue
                    return self._pos_sp(x, y, ap.ground_alt)
                if self.item_phase < 2 and not self._reached_xy(x, y, it) and not k.on_ground:
                    return self._pos_sp(x, y, k.alt)
                if k.on_ground and self.item_phase >= 2:
                    self._item_done(now)
                    continue
                self.item_phase = 2
                if k.on_ground:
                    self._item_done(now)
                    continue
                return Setpoint(SetpointKind.LAND, x, y, ap.ground_alt)
            # waypoint and loiters
            if self.item_wait_until is None:
                if self._reached_xy(x, y, it) and self._reached_alt(alt):
                    if cmd == mavlink.MAV_CMD_NAV_LOITER_UNLIM:
                        self.item_wait_until = math.inf
                    elif cmd in (mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_NAV_LOITER_TIME):
                        self.item_wait_until = now + max(0.0, it.param1)
                    else:
                        self.item_wait_until = now
                else:
                    return self._pos_sp(x, y, alt)
            if now >= self.item_wait_until:
                self._item_done(now)
                continue
            return self._pos_sp(x, y, alt)
        return self._hold_sp()

    def _do_item(self, seq: int, it: MissionItem, now: float) -> Setpoint | None:
        """Run non-position item ``seq``; a setpoint while it waits, None once it is done."""
        ap = self.ap
        cmd = it.command
        p = ap.params
        if self.item_wait_until is None:
            wait = 0.0
            if cmd == mavlink.MAV_CMD_DO_GRIPPER:
                ap.gripper(int(it.param2) == mavlink.GRIPPER_ACTION_RELEASE, f"mission item {seq}")
                wait = p["MIS_COMMAND_TOUT"]
            elif cmd == mavlink.MAV_CMD_DO_WINCH:
                ap.winch(int(it.param2), it.param3, it.param4, f"mission item {seq}")
                wait = p["MIS_COMMAND_TOUT"]
            elif cmd == mavlink.MAV_CMD_DO_CHANGE_SPEED:
                ap.change_speed(it.param2)
            elif cmd in (mavlink.MAV_CMD_CONDITION_DELAY, mavlink.MAV_CMD_NAV_DELAY):
                wait = max(0.0, it.param1)
            elif cmd == mavlink.MAV_CMD_DO_SET_HOME:
                if int(it.param1) == 1:
                    ap.set_home_here()
                else:
                    ap.set_home(it.x * 1e-7, it.y * 1e-7, it.z)
            elif cmd == mavlink.MAV_CMD_DO_JUMP:
                target, repeat = int(it.param1), int(it.param2)
                done = self.jumps.get(seq, 0)
                if repeat < 0 or done < repeat:
                    self.jumps[seq] = done + 1
                    ap.result.seq_reached = seq
                    self.goto_item(target, reset_finished=False)
                    return None
            elif cmd == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
                self._item_done(now)
                ap.set_nav(Nav.RTL, "mission return item")
                return self._rtl(now)
            self.item_wait_until = now + wait
        if now < self.item_wait_until:
            return self._hold_sp_here()
        self._item_done(now)
        return None

    def _hold_sp_here(self) -> Setpoint:
        ap = self.ap
        k = ap.kin
        if ap.landed:
            return Setpoint(SetpointKind.POSITION, k.x, k.y, k.alt)
        return self._pos_sp(k.x, k.y, k.alt)
