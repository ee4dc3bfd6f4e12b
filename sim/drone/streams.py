"""Telemetry a sim drone streams, at PX4's "normal" mavlink mode rates, and the message builders.

:data:`NORMAL_STREAMS` lists the messages and default rates PX4 configures for a link in
``MAVLINK_MODE_NORMAL`` (``mavlink_main.cpp``), restricted to the messages a SIH vehicle without
RC, camera or distance sensor actually sends, plus HEARTBEAT (1 Hz) and SYSTEM_TIME.
MISSION_CURRENT and MISSION_ITEM_REACHED come from the mission protocol. A ground station changes
a rate with MAV_CMD_SET_MESSAGE_INTERVAL and asks for one message with MAV_CMD_REQUEST_MESSAGE;
:func:`build` makes any of these messages (and AUTOPILOT_VERSION) on demand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.px4 import encode_custom_mode
from sim.drone.autopilot import Autopilot, Nav
from sim.drone.physics import Model

if TYPE_CHECKING:
    from pymavlink.dialects.v20.common import MAVLink, MAVLink_message

SENSORS = (
    mavlink.MAV_SYS_STATUS_SENSOR_3D_GYRO
    | mavlink.MAV_SYS_STATUS_SENSOR_3D_ACCEL
    | mavlink.MAV_SYS_STATUS_SENSOR_3D_MAG
    | mavlink.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
    | mavlink.MAV_SYS_STATUS_SENSOR_GPS
    | mavlink.MAV_SYS_STATUS_SENSOR_ANGULAR_RATE_CONTROL
    | mavlink.MAV_SYS_STATUS_SENSOR_ATTITUDE_STABILIZATION
    | mavlink.MAV_SYS_STATUS_SENSOR_YAW_POSITION
    | mavlink.MAV_SYS_STATUS_SENSOR_Z_ALTITUDE_CONTROL
    | mavlink.MAV_SYS_STATUS_SENSOR_XY_POSITION_CONTROL
    | mavlink.MAV_SYS_STATUS_SENSOR_MOTOR_OUTPUTS
    | mavlink.MAV_SYS_STATUS_AHRS
    | mavlink.MAV_SYS_STATUS_SENSOR_BATTERY
    | mavlink.MAV_SYS_STATUS_PREARM_CHECK
)
"""SYS_STATUS sensor bits a SIH vehicle reports present and enabled."""

CAPABILITIES = (
    mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT
    | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
    | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT
    | mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
    | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
    | mavlink.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET
    | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
    | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT
    | mavlink.MAV_PROTOCOL_CAPABILITY_FLIGHT_TERMINATION
    | mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2
    | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE
    | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY
)
"""AUTOPILOT_VERSION.capabilities of PX4 v1.15."""

FLIGHT_SW_VERSION = (1 << 24) | (15 << 16) | (0 << 8) | 255
"""AUTOPILOT_VERSION.flight_sw_version: 1.15.0 release."""


class Context(Protocol):
    """What a builder reads: the autopilot, the codec, the MAV_TYPE and the world time."""

    ap: Autopilot
    mav: MAVLink
    mav_type: int

    def now(self) -> float: ...


Builder = Callable[[Context], "MAVLink_message | None"]


def _boot_ms(c: Context) -> int:
    return int(max(0.0, c.now() - c.ap.boot_time) * 1000) & 0xFFFFFFFF


def _usec(c: Context) -> int:
    return int(max(0.0, c.now() - c.ap.boot_time) * 1e6)


def base_mode(ap: Autopilot) -> int:
    """HEARTBEAT.base_mode as PX4 fills it."""
    m = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    if ap.armed:
        m |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    if ap.nav in (Nav.HOLD, Nav.TAKEOFF, Nav.MISSION, Nav.RTL, Nav.LAND):
        m |= (
            mavlink.MAV_MODE_FLAG_AUTO_ENABLED
            | mavlink.MAV_MODE_FLAG_STABILIZE_ENABLED
            | mavlink.MAV_MODE_FLAG_GUIDED_ENABLED
        )
    elif ap.nav is Nav.POSCTL:
        m |= (
            mavlink.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
            | mavlink.MAV_MODE_FLAG_STABILIZE_ENABLED
            | mavlink.MAV_MODE_FLAG_GUIDED_ENABLED
        )
    elif ap.nav in (Nav.ALTCTL, Nav.STABILIZED):
        m |= mavlink.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED | mavlink.MAV_MODE_FLAG_STABILIZE_ENABLED
    else:
        m |= mavlink.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
    return int(m)


def heartbeat(c: Context) -> MAVLink_message:
    ap = c.ap
    if ap.armed:
        status = mavlink.MAV_STATE_CRITICAL if ap.failsafe_active else mavlink.MAV_STATE_ACTIVE
    else:
        status = mavlink.MAV_STATE_STANDBY
    return c.mav.heartbeat_encode(
        c.mav_type,
        mavlink.MAV_AUTOPILOT_PX4,
        base_mode(ap),
        encode_custom_mode(ap.nav.main, ap.nav.sub),
        status,
    )


def sys_status(c: Context) -> MAVLink_message:
    ap = c.ap
    health = SENSORS
    if not ap.gps_ok:
        health &= ~mavlink.MAV_SYS_STATUS_SENSOR_GPS
    if not ap.ready_to_arm(c.now()):
        health &= ~mavlink.MAV_SYS_STATUS_PREARM_CHECK
    b = ap.battery
    return c.mav.sys_status_encode(
        SENSORS,
        SENSORS,
        health,
        200,
        int(b.voltage_v * 1000),
        int(b.current_a * 100),
        round(b.remaining * 100),
        0,
        0,
        0,
        0,
        0,
        0,
    )


def global_position_int(c: Context) -> MAVLink_message:
    ap = c.ap
    k = ap.kin
    lat, lon = ap.latlon()
    hdg = int(math.degrees(k.yaw) % 360 * 100)
    return c.mav.global_position_int_encode(
        _boot_ms(c),
        round(lat * 1e7),
        round(lon * 1e7),
        round(k.alt * 1000),
        round(ap.rel_alt() * 1000),
        int(k.vy * 100),
        int(k.vx * 100),
        int(-k.vz * 100),
        hdg,
    )


def _tilt(ap: Autopilot) -> tuple[float, float]:
    k = ap.kin
    if ap.model is Model.ROVER or k.on_ground:
        return 0.0, 0.0
    # a multicopter leans into its motion: about 2 degrees per m/s, rotated into the body frame
    fwd = k.vx * math.sin(k.yaw) + k.vy * math.cos(k.yaw)
    side = k.vx * math.cos(k.yaw) - k.vy * math.sin(k.yaw)
    return math.radians(2.0 * side), -math.radians(2.0 * fwd)


def attitude(c: Context) -> MAVLink_message:
    roll, pitch = _tilt(c.ap)
    yaw = (c.ap.kin.yaw + math.pi) % (2 * math.pi) - math.pi
    return c.mav.attitude_encode(_boot_ms(c), roll, pitch, yaw, 0.0, 0.0, 0.0)


def attitude_target(c: Context) -> MAVLink_message:
    yaw = c.ap.kin.yaw
    q = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    return c.mav.attitude_target_encode(
        _boot_ms(c), 0, q, 0.0, 0.0, 0.0, 0.5 if c.ap.armed else 0.0
    )


def vfr_hud(c: Context) -> MAVLink_message:
    ap = c.ap
    k = ap.kin
    throttle = 0 if not ap.armed else (50 if not k.on_ground else 10)
    return c.mav.vfr_hud_encode(
        k.ground_speed, k.ground_speed, int(math.degrees(k.yaw) % 360), throttle, k.alt, k.vz
    )


def extended_sys_state(c: Context) -> MAVLink_message:
    return c.mav.extended_sys_state_encode(mavlink.MAV_VTOL_STATE_UNDEFINED, c.ap.landed_state())


def gps_raw_int(c: Context) -> MAVLink_message:
    ap = c.ap
    k = ap.kin
    lat, lon = ap.latlon()
    fix = mavlink.GPS_FIX_TYPE_3D_FIX if ap.gps_ok else mavlink.GPS_FIX_TYPE_NO_FIX
    cog = int(math.degrees(math.atan2(k.vx, k.vy)) % 360 * 100) if k.ground_speed > 0.2 else 65535
    return c.mav.gps_raw_int_encode(
        _usec(c),
        fix,
        round(lat * 1e7),
        round(lon * 1e7),
        round(k.alt * 1000),
        80,
        120,
        int(k.ground_speed * 100),
        cog,
        16 if ap.gps_ok else 0,
    )


def home_position(c: Context) -> MAVLink_message | None:
    ap = c.ap
    h = ap.home
    if h is None:
        return None
    x, y = ap.frame.to_xy(h.lat, h.lon)
    return c.mav.home_position_encode(
        round(h.lat * 1e7),
        round(h.lon * 1e7),
        round(h.alt * 1000),
        y,
        x,
        -(h.alt - ap.ground_alt),
        (1.0, 0.0, 0.0, 0.0),
        0.0,
        0.0,
        0.0,
        _usec(c),
    )


def battery_status(c: Context) -> MAVLink_message:
    ap = c.ap
    b = ap.battery
    cell_mv = int(b.voltage_v * 1000 / b.cells)
    voltages = [cell_mv] * min(b.cells, 10) + [65535] * (10 - min(b.cells, 10))
    consumed_mah = int((b.capacity_wh - b.energy_wh) / (b.voltage_v or 1) * 1000)
    consumed_hj = int((b.capacity_wh - b.energy_wh) * 36)
    level = ap.battery_level()
    charge_state = {0: 1, 1: 2, 2: 3, 3: 4}[level.value]
    return c.mav.battery_status_encode(
        0,
        mavlink.MAV_BATTERY_FUNCTION_ALL,
        mavlink.MAV_BATTERY_TYPE_LIPO,
        32767,
        voltages,
        int(b.current_a * 100),
        consumed_mah,
        consumed_hj,
        round(b.remaining * 100),
        0,
        charge_state,
    )


def local_position_ned(c: Context) -> MAVLink_message:
    ap = c.ap
    k = ap.kin
    return c.mav.local_position_ned_encode(
        _boot_ms(c), k.y, k.x, -(k.alt - ap.ground_alt), k.vy, k.vx, -k.vz
    )


def altitude(c: Context) -> MAVLink_message:
    ap = c.ap
    k = ap.kin
    return c.mav.altitude_encode(
        _usec(c), k.alt, k.alt, k.alt - ap.ground_alt, ap.rel_alt(), math.nan, k.height
    )


def nav_controller_output(c: Context) -> MAVLink_message:
    ap = c.ap
    k = ap.kin
    sp = ap.setpoint
    dx, dy = sp.x - k.x, sp.y - k.y
    bearing = int(math.degrees(math.atan2(dx, dy)) % 360)
    dist = min(65535, int(math.hypot(dx, dy)))
    roll, pitch = _tilt(ap)
    return c.mav.nav_controller_output_encode(
        math.degrees(roll),
        math.degrees(pitch),
        int(math.degrees(k.yaw) % 360),
        bearing,
        dist,
        sp.alt - k.alt if sp.alt else 0.0,
        0.0,
        0.0,
    )


def position_target_global_int(c: Context) -> MAVLink_message:
    ap = c.ap
    sp = ap.setpoint
    lat, lon = ap.frame.to_latlon(sp.x, sp.y)
    return c.mav.position_target_global_int_encode(
        _boot_ms(c),
        mavlink.MAV_FRAME_GLOBAL_INT,
        0,
        round(lat * 1e7),
        round(lon * 1e7),
        sp.alt,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    )


def servo_output_raw(c: Context) -> MAVLink_message:
    ap = c.ap
    pwm = 900 if not ap.armed else (1100 if ap.kin.on_ground else 1500)
    return c.mav.servo_output_raw_encode(_usec(c) & 0xFFFFFFFF, 0, pwm, pwm, pwm, pwm, 0, 0, 0, 0)


def system_time(c: Context) -> MAVLink_message:
    return c.mav.system_time_encode(int(c.ap.clock.time() * 1e6), _boot_ms(c))


def autopilot_version(c: Context) -> MAVLink_message:
    sysid = c.mav.srcSystem
    return c.mav.autopilot_version_encode(
        CAPABILITIES,
        FLIGHT_SW_VERSION,
        FLIGHT_SW_VERSION,
        0,
        0,
        [0] * 8,
        [0] * 8,
        [0] * 8,
        0,
        0,
        0x5349_4D00_0000_0000 | sysid,
    )


@dataclass(frozen=True, slots=True)
class StreamDef:
    """A periodic message: its id, default rate in Hz (world time) and builder."""

    msg_id: int
    rate_hz: float
    build: Builder


NORMAL_STREAMS: tuple[StreamDef, ...] = (
    StreamDef(mavlink.MAVLINK_MSG_ID_HEARTBEAT, 1.0, heartbeat),
    StreamDef(mavlink.MAVLINK_MSG_ID_SYS_STATUS, 1.0, sys_status),
    StreamDef(mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE, 1.0, extended_sys_state),
    StreamDef(mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 5.0, global_position_int),
    StreamDef(mavlink.MAVLINK_MSG_ID_ATTITUDE, 15.0, attitude),
    StreamDef(mavlink.MAVLINK_MSG_ID_ATTITUDE_TARGET, 2.0, attitude_target),
    StreamDef(mavlink.MAVLINK_MSG_ID_VFR_HUD, 4.0, vfr_hud),
    StreamDef(mavlink.MAVLINK_MSG_ID_GPS_RAW_INT, 1.0, gps_raw_int),
    StreamDef(mavlink.MAVLINK_MSG_ID_HOME_POSITION, 0.5, home_position),
    StreamDef(mavlink.MAVLINK_MSG_ID_BATTERY_STATUS, 0.5, battery_status),
    StreamDef(mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED, 1.0, local_position_ned),
    StreamDef(mavlink.MAVLINK_MSG_ID_ALTITUDE, 1.0, altitude),
    StreamDef(mavlink.MAVLINK_MSG_ID_NAV_CONTROLLER_OUTPUT, 1.0, nav_controller_output),
    StreamDef(mavlink.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT, 1.0, position_target_global_int),
    StreamDef(mavlink.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW, 1.0, servo_output_raw),
    StreamDef(mavlink.MAVLINK_MSG_ID_SYSTEM_TIME, 1.0, system_time),
)
"""The periodic messages of a sim drone and their default rates."""

ON_REQUEST: dict[int, Builder] = {
    **{s.msg_id: s.build for s in NORMAL_STREAMS},
    mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION: autopilot_version,
}
"""Messages MAV_CMD_REQUEST_MESSAGE can ask for."""


def normal_rate_total() -> float:
    """Messages per second of :data:`NORMAL_STREAMS` (plus MISSION_CURRENT at 1 Hz)."""
    return sum(s.rate_hz for s in NORMAL_STREAMS) + 1.0
