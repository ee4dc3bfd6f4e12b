"""PX4's failsafes on a sim vehicle: data link, battery, GPS and geofence.

:class:`Failsafes` is the commander's failsafe state machine of one :class:`sim.drone.autopilot.
Autopilot`, checked on every update: the data link lost for COM_DL_LOSS_T (action NAV_DLL_ACT),
the battery falling to BAT_LOW_THR, BAT_CRIT_THR or BAT_EMERGEN_THR (COM_LOW_BAT_ACT), the GPS
lost in the air (land), a geofence breach (GF_ACTION). An action taken with delay holds the
vehicle for COM_FAIL_ACT_T first (HEARTBEAT CRITICAL meanwhile), as PX4's failsafe framework
does; a user command cancels it. Figures and known differences are in ``docs/sim.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import structlog
from pymavlink.dialects.v20 import common as mavlink

from sim.drone.fence import breach_reason
from sim.drone.modes import Nav
from sim.drone.params import ParamStore
from sim.drone.physics import Model
from sim.truth import TruthKind

if TYPE_CHECKING:
    from sim.drone.autopilot import Autopilot

log = structlog.get_logger(__name__)


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


def warning_level(remaining: float, params: ParamStore) -> BatteryLevel:
    """The warning level of a state of charge under the vehicle's thresholds."""
    if remaining <= params["BAT_EMERGEN_THR"]:
        return BatteryLevel.EMERGENCY
    if remaining <= params["BAT_CRIT_THR"]:
        return BatteryLevel.CRITICAL
    if remaining <= params["BAT_LOW_THR"]:
        return BatteryLevel.LOW
    return BatteryLevel.NONE


@dataclass(slots=True)
class PendingFailsafe:
    """A failsafe holding the vehicle before its action."""

    cause: str
    action: Nav | None
    """Mode to enter after the delay (None: stay in Hold)."""
    deadline: float
    terminate: bool = False


def _action_name(action: Nav | None, terminate: bool) -> str:
    if terminate:
        return "terminate"
    return action.name.lower() if action else "hold"


class Failsafes:
    """The failsafe state of one vehicle and the checks that trigger its actions."""

    def __init__(self, ap: Autopilot) -> None:
        self.ap = ap
        self.pending: PendingFailsafe | None = None
        """The failsafe holding the vehicle before its action, if any."""
        self.battery_level = BatteryLevel.NONE
        """The battery level last warned about (warnings go out on changes only)."""
        self.fence_breached = False

    @property
    def active(self) -> bool:
        """A failsafe is holding the vehicle before its action."""
        return self.pending is not None

    def cancel(self) -> None:
        """A user command took over: forget the pending action."""
        self.pending = None

    def _pending(self, cause: str) -> bool:
        """Whether the action of ``cause`` is waiting out its delay."""
        return self.pending is not None and self.pending.cause == cause

    def trigger(
        self, cause: str, action: Nav | None, now: float, delay: bool, terminate: bool = False
    ) -> None:
        ap = self.ap
        ap.record(TruthKind.FAILSAFE, f"{cause} -> {_action_name(action, terminate)}")
        log.warning(
            "sim.failsafe",
            vehicle=ap.vehicle_id,
            cause=cause,
            action=action.name if action else "hold",
        )
        if delay and ap.params["COM_FAIL_ACT_T"] > 0:
            ap.set_nav(Nav.HOLD, f"failsafe {cause}")
            self.pending = PendingFailsafe(
                cause, action, now + ap.params["COM_FAIL_ACT_T"], terminate
            )
        else:
            self.pending = None
            self._apply(cause, action, terminate)

    def _apply(self, cause: str, action: Nav | None, terminate: bool) -> None:
        ap = self.ap
        if terminate:
            ap.disarm(force=True, reason=f"flight termination ({cause})")
            return
        if action is Nav.RTL and ap.model is Model.MULTICOPTER and not ap.home:
            action = Nav.LAND
        ap.set_nav(action or Nav.HOLD, f"failsafe {cause}")

    def check(self, now: float) -> None:
        """Run every failsafe check at world time ``now`` (once per update)."""
        ap = self.ap
        p = ap.params
        # data link
        last_hb = ap.last_gcs_heartbeat
        if last_hb is not None and not ap.gcs_lost and now - last_hb > p["COM_DL_LOSS_T"]:
            ap.gcs_lost = True
            ap.text(mavlink.MAV_SEVERITY_CRITICAL, "Connection to ground station lost")
            act = p.get_int("NAV_DLL_ACT")
            if ap.armed and not ap.landed and act:
                action = {1: Nav.HOLD, 2: Nav.RTL, 3: Nav.LAND}.get(act)
                self.trigger("data link lost", action, now, delay=True, terminate=act == 5)
                if act == 6:
                    ap.disarm(force=True, reason="lockdown (data link lost)")
        # battery
        level = warning_level(ap.battery.remaining, p)
        if level.value > self.battery_level.value:
            self.battery_level = level
            act = p.get_int("COM_LOW_BAT_ACT")
            if level is BatteryLevel.LOW:
                ap.text(mavlink.MAV_SEVERITY_WARNING, "Low battery level! Return advised")
            elif level is BatteryLevel.CRITICAL:
                if act == 3 and ap.armed and not ap.landed:
                    ap.text(mavlink.MAV_SEVERITY_CRITICAL, "Critical battery level! Returning")
                    self.trigger("critical battery", Nav.RTL, now, delay=True)
                elif act == 2 and ap.armed and not ap.landed:
                    ap.text(mavlink.MAV_SEVERITY_CRITICAL, "Critical battery level! Landing")
                    self.trigger("critical battery", Nav.LAND, now, delay=True)
                else:
                    ap.text(mavlink.MAV_SEVERITY_CRITICAL, "Critical battery level!")
            elif level is BatteryLevel.EMERGENCY:
                ap.text(mavlink.MAV_SEVERITY_EMERGENCY, "Emergency battery level! Landing")
                if act in (2, 3) and ap.armed and not ap.landed:
                    self.trigger("emergency battery", Nav.LAND, now, delay=False)
        elif level.value < self.battery_level.value and not ap.armed:
            self.battery_level = level
        # GPS
        if ap.gps_fault and ap.armed and not ap.landed and ap.nav is not Nav.LAND:
            self.trigger("no global position", Nav.LAND, now, delay=False)
        # geofence
        gf_action = p.get_int("GF_ACTION")
        if ap.armed and not ap.landed and gf_action > 0 and ap.home is not None:
            lat, lon = ap.latlon()
            hx, hy = ap.frame.to_xy(ap.home.lat, ap.home.lon)
            reason = breach_reason(
                ap.fence,
                lat,
                lon,
                ap.kin.alt - ap.home.alt,
                math.hypot(ap.kin.x - hx, ap.kin.y - hy),
                p["GF_MAX_HOR_DIST"],
                p["GF_MAX_VER_DIST"],
            )
            if reason and not self.fence_breached:
                self.fence_breached = True
                ap.text(mavlink.MAV_SEVERITY_CRITICAL, f"Geofence breached: {reason}")
                if gf_action >= 2:
                    action = {2: Nav.HOLD, 3: Nav.RTL, 5: Nav.LAND}.get(gf_action)
                    self.trigger(
                        "geofence breach", action, now, delay=True, terminate=gf_action == 4
                    )
            elif not reason and not self._pending("geofence breach"):
                # PX4 clears the geofence failsafe on a mode change or disarm, not when the
                # vehicle drifts back inside (ClearCondition::OnModeChangeOrDisarm): a vehicle
                # braking at the boundary must not restart the hold before the action
                self.fence_breached = False
        # pending delayed action
        fs = self.pending
        if fs is not None and now >= fs.deadline:
            self.pending = None
            self._apply(fs.cause, fs.action, fs.terminate)
