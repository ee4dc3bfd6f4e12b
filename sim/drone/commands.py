"""MAVLink commands (COMMAND_LONG / COMMAND_INT) of a sim drone and PX4's answers to them.

Every command addressed to the autopilot (target component 0 or 1) is answered with a
COMMAND_ACK, retransmissions included, except MAV_CMD_DO_WINCH, which PX4 SITL forwards to a
winch that does not exist and never acknowledges. Unknown commands get UNSUPPORTED; commands not
allowed now get TEMPORARILY_REJECTED (arming checks, mode changes) or DENIED (mission start
without a valid mission). The message-rate and request commands are answered as PX4's
``MavlinkReceiver`` answers them (see :mod:`sim.drone.streams`). MAV_CMD_DO_GRIPPER is
acknowledged IN_PROGRESS at once and ACCEPTED one second later, as measured on PX4 SITL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.messages import Message
from sim.drone.autopilot import ACCEPTED, DENIED, FORCE_MAGIC, TEMPORARILY_REJECTED
from sim.drone.modes import Nav, nav_for

if TYPE_CHECKING:
    from sim.drone.vehicle import SimVehicle

UNSUPPORTED = int(mavlink.MAV_RESULT_UNSUPPORTED)
"""MAV_RESULT_UNSUPPORTED."""
IN_PROGRESS = int(mavlink.MAV_RESULT_IN_PROGRESS)
"""MAV_RESULT_IN_PROGRESS."""
NO_ACK = -1
"""Handler result: send no COMMAND_ACK."""
GRIPPER_ACK_DELAY_S = 1.0
"""World seconds between DO_GRIPPER's IN_PROGRESS and ACCEPTED acks."""


@dataclass(frozen=True, slots=True)
class Command:
    """A command with its parameters; ``lat``/``lon`` decoded from either encoding."""

    command: int
    p1: float
    p2: float
    p3: float
    p4: float
    lat: float | None
    lon: float | None
    alt: float
    is_int: bool

    @classmethod
    def from_message(cls, msg: Message) -> Command:
        if msg.get_type() == "COMMAND_INT":
            lat = msg.x * 1e-7 if msg.x != 0 else None
            lon = msg.y * 1e-7 if msg.y != 0 else None
            return cls(
                msg.command, msg.param1, msg.param2, msg.param3, msg.param4, lat, lon, msg.z, True
            )
        lat = msg.param5 if math.isfinite(msg.param5) and msg.param5 != 0 else None
        lon = msg.param6 if math.isfinite(msg.param6) and msg.param6 != 0 else None
        return cls(
            msg.command, msg.param1, msg.param2, msg.param3, msg.param4, lat, lon, msg.param7, False
        )


Handler = Callable[["SimVehicle", Command], int]


def _int(value: float, default: int = 0) -> int:
    """A parameter as an integer; NaN (unused, as MAVSDK sends them) gives ``default``."""
    return round(value) if math.isfinite(value) else default


def _arm_disarm(v: SimVehicle, c: Command) -> int:
    force = _int(c.p2) == FORCE_MAGIC
    if _int(c.p1) == 1:
        return v.ap.arm(force=force)
    return v.ap.disarm(force=force)


def _set_mode(v: SimVehicle, c: Command) -> int:
    base = _int(c.p1)
    if base & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        nav = nav_for(_int(c.p2), _int(c.p3))
    elif base & mavlink.MAV_MODE_FLAG_AUTO_ENABLED:
        nav = Nav.MISSION
    else:
        nav = None
    if nav is None:
        return TEMPORARILY_REJECTED
    return v.ap.set_mode(nav)


def _takeoff(v: SimVehicle, c: Command) -> int:
    return v.ap.takeoff(c.alt if math.isfinite(c.alt) else None)


def _land(v: SimVehicle, c: Command) -> int:
    # a rover "lands" too: it stops, its land detector reports landed and it disarms
    return v.ap.set_mode(Nav.LAND)


def _rtl(v: SimVehicle, c: Command) -> int:
    return v.ap.set_mode(Nav.RTL)


def _loiter(v: SimVehicle, c: Command) -> int:
    return v.ap.set_mode(Nav.HOLD)


def _mission_start(v: SimVehicle, c: Command) -> int:
    first = _int(c.p1)
    return v.ap.mission_start(first)


def _set_mission_current(v: SimVehicle, c: Command) -> int:
    return v.ap.set_current_item(_int(c.p1, -1))


def _reposition(v: SimVehicle, c: Command) -> int:
    if c.lat is None or c.lon is None:
        return DENIED
    if math.isfinite(c.p1) and c.p1 > 0:
        v.ap.change_speed(c.p1)
    return v.ap.reposition(c.lat, c.lon, c.alt if math.isfinite(c.alt) else None)


def _change_speed(v: SimVehicle, c: Command) -> int:
    return v.ap.change_speed(c.p2) if math.isfinite(c.p2) else DENIED


def _set_home(v: SimVehicle, c: Command) -> int:
    if _int(c.p1) == 1:
        v.ap.set_home(*v.ap.latlon(), v.ap.kin.alt)
        return ACCEPTED
    if c.lat is None or c.lon is None or not math.isfinite(c.alt):
        return DENIED
    v.ap.set_home(c.lat, c.lon, c.alt)
    return ACCEPTED


def _gripper(v: SimVehicle, c: Command) -> int:
    v.ap.gripper(_int(c.p2) == mavlink.GRIPPER_ACTION_RELEASE, "command")
    v.schedule_ack(mavlink.MAV_CMD_DO_GRIPPER, ACCEPTED, GRIPPER_ACK_DELAY_S)
    return IN_PROGRESS


def _winch(v: SimVehicle, c: Command) -> int:
    v.ap.winch(_int(c.p2), c.p3, c.p4, "command")
    return NO_ACK


def _termination(v: SimVehicle, c: Command) -> int:
    if _int(c.p1) == 1:
        v.ap.disarm(force=True, reason="flight termination")
    return ACCEPTED


def _set_message_interval(v: SimVehicle, c: Command) -> int:
    return v.set_message_interval(
        _int(c.p1, -1), c.p2 if math.isfinite(c.p2) else 0.0, (c.p3, c.p4, c.alt)
    )


def _get_message_interval(v: SimVehicle, c: Command) -> int:
    msg_id = _int(c.p1, -1)
    v.mav.send(v.mav.message_interval_encode(msg_id & 0xFFFF, v.message_interval_us(msg_id)))
    return ACCEPTED


def _run_prearm_checks(v: SimVehicle, c: Command) -> int:
    """MAV_CMD_RUN_PREARM_CHECKS: PX4's commander re-runs its checks and reports them at once."""
    v.ap.request_report()
    return ACCEPTED


def _request_message(v: SimVehicle, c: Command) -> int:
    return ACCEPTED if v.request_message(_int(c.p1, -1)) else DENIED


def _request_capabilities(v: SimVehicle, c: Command) -> int:
    return _request(v, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION)


def _get_home(v: SimVehicle, c: Command) -> int:
    return _request(v, mavlink.MAVLINK_MSG_ID_HOME_POSITION)


def _request(v: SimVehicle, msg_id: int) -> int:
    """The legacy request commands, answered as MAV_CMD_REQUEST_MESSAGE (as PX4 does)."""
    return ACCEPTED if v.request_message(msg_id) else DENIED


HANDLERS: dict[int, Handler] = {
    mavlink.MAV_CMD_COMPONENT_ARM_DISARM: _arm_disarm,
    mavlink.MAV_CMD_DO_SET_MODE: _set_mode,
    mavlink.MAV_CMD_NAV_TAKEOFF: _takeoff,
    mavlink.MAV_CMD_NAV_LAND: _land,
    mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH: _rtl,
    mavlink.MAV_CMD_NAV_LOITER_UNLIM: _loiter,
    mavlink.MAV_CMD_MISSION_START: _mission_start,
    mavlink.MAV_CMD_DO_SET_MISSION_CURRENT: _set_mission_current,
    mavlink.MAV_CMD_DO_REPOSITION: _reposition,
    mavlink.MAV_CMD_DO_CHANGE_SPEED: _change_speed,
    mavlink.MAV_CMD_DO_SET_HOME: _set_home,
    mavlink.MAV_CMD_DO_GRIPPER: _gripper,
    mavlink.MAV_CMD_DO_WINCH: _winch,
    mavlink.MAV_CMD_DO_FLIGHTTERMINATION: _termination,
    mavlink.MAV_CMD_SET_MESSAGE_INTERVAL: _set_message_interval,
    mavlink.MAV_CMD_GET_MESSAGE_INTERVAL: _get_message_interval,
    mavlink.MAV_CMD_REQUEST_MESSAGE: _request_message,
    mavlink.MAV_CMD_RUN_PREARM_CHECKS: _run_prearm_checks,
    mavlink.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES: _request_capabilities,
    mavlink.MAV_CMD_GET_HOME_POSITION: _get_home,
}
"""Commands the sim autopilot implements."""


def handle(v: SimVehicle, c: Command) -> int:
    """Run a command; its MAV_RESULT, or :data:`NO_ACK`."""
    handler = HANDLERS.get(c.command)
    if handler is None:
        return UNSUPPORTED
    return handler(v, c)
