"""The messages a sim drone sends about itself, built from its autopilot's state as PX4 fills them.

One builder per message (``heartbeat``, ``sys_status``, ``global_position_int``...): a function
of a :class:`Context` (the vehicle: its :class:`sim.drone.autopilot.Autopilot`, codec, MAV_TYPE
and the world time) that returns the message, or None while PX4 would have no data for it
(GLOBAL_POSITION_INT before the estimator has a position, HOME_POSITION before home is set, the
Open Drone ID messages before a fix). Which messages are streamed, at which rates, and which can
be requested is :mod:`sim.drone.streams`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.px4 import encode_custom_mode
from sim.drone.autopilot import Autopilot
from sim.drone.modes import Nav
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
    elif ap.ready_to_arm(c.now()):
        status = mavlink.MAV_STATE_STANDBY
    else:
        status = mavlink.MAV_STATE_UNINIT  # PX4: disarmed with failing pre-flight checks
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
        _centiamps(b.current_a),
        round(b.remaining * 100),
        0,
        0,
        0,
        0,
        0,
        0,
    )


def global_position_int(c: Context) -> MAVLink_message | None:
    ap = c.ap
    if not ap.position_published(c.now()):
        return None  # PX4's estimator publishes no global position before it has one
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
        _centiamps(b.current_a),
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


def attitude_quaternion(c: Context) -> MAVLink_message:
    roll, pitch = _tilt(c.ap)
    yaw = c.ap.kin.yaw
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return c.mav.attitude_quaternion_encode(
        _boot_ms(c),
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        0.0,
        0.0,
        0.0,
    )


def position_target_local_ned(c: Context) -> MAVLink_message:
    ap = c.ap
    sp = ap.setpoint
    return c.mav.position_target_local_ned_encode(
        _boot_ms(c),
        mavlink.MAV_FRAME_LOCAL_NED,
        0,
        sp.y,
        sp.x,
        -(sp.alt - ap.ground_alt) if sp.alt else 0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        ap.kin.yaw,
        0.0,
    )


SEA_LEVEL_HPA = 1013.25
"""Standard sea-level pressure (ISA), for SCALED_PRESSURE."""


def scaled_pressure(c: Context) -> MAVLink_message:
    alt = c.ap.kin.alt
    press = SEA_LEVEL_HPA * (1.0 - 2.25577e-5 * alt) ** 5.25588
    return c.mav.scaled_pressure_encode(_boot_ms(c), press, 0.0, 2500)


def estimator_status(c: Context) -> MAVLink_message | None:
    ap = c.ap
    if not ap.ready:
        return None
    flags = (
        mavlink.ESTIMATOR_ATTITUDE
        | mavlink.ESTIMATOR_VELOCITY_HORIZ
        | mavlink.ESTIMATOR_VELOCITY_VERT
        | mavlink.ESTIMATOR_POS_HORIZ_REL
        | mavlink.ESTIMATOR_POS_HORIZ_ABS
        | mavlink.ESTIMATOR_POS_VERT_ABS
        | mavlink.ESTIMATOR_PRED_POS_HORIZ_REL
        | mavlink.ESTIMATOR_PRED_POS_HORIZ_ABS
    )
    return c.mav.estimator_status_encode(_usec(c), flags, 0.1, 0.1, 0.1, 0.05, 0.0, 0.0, 0.5, 0.8)


def gps_global_origin(c: Context) -> MAVLink_message | None:
    ap = c.ap
    if not ap.ready:
        return None  # the estimator has no origin before the first GPS fix
    lat, lon = ap.frame.to_latlon(0.0, 0.0)
    return c.mav.gps_global_origin_encode(
        round(lat * 1e7), round(lon * 1e7), round(ap.ground_alt * 1000), _usec(c)
    )


def vibration(c: Context) -> MAVLink_message:
    level = 0.02 if c.ap.armed else 0.0
    return c.mav.vibration_encode(_usec(c), level, level, level, 0, 0, 0)


def wind_cov(c: Context) -> MAVLink_message:
    k = c.ap.kin
    return c.mav.wind_cov_encode(_usec(c), 0.0, 0.0, 0.0, 0.1, 0.1, k.alt, 0.5, 0.5)


PING_PERIOD_S = 10.0
"""PX4's PING stream period in normal mode (0.1 Hz)."""


def ping(c: Context) -> MAVLink_message:
    # PX4 pings every system on the link (target 0/0) with an increasing sequence
    seq = int(max(0.0, c.now() - c.ap.boot_time) / PING_PERIOD_S) & 0xFFFFFFFF
    return c.mav.ping_encode(_usec(c), seq, 0, 0)


def _gps_fix(c: Context) -> bool:
    return c.ap.gps_ok


def open_drone_id_location(c: Context) -> MAVLink_message | None:
    ap = c.ap
    if not _gps_fix(c):
        return None
    k = ap.kin
    lat, lon = ap.latlon()
    status = mavlink.MAV_ODID_STATUS_AIRBORNE if ap.in_air else mavlink.MAV_ODID_STATUS_GROUND
    moving = k.ground_speed > 0.2
    direction = int(math.degrees(math.atan2(k.vx, k.vy)) % 360 * 100) if moving else 36100
    tod = c.ap.clock.time() % 3600.0  # seconds after the full hour
    return c.mav.open_drone_id_location_encode(
        0,
        0,
        [0] * 20,
        status,
        direction,
        min(25425, int(k.ground_speed * 100)),
        max(-6200, min(6200, int(k.vz * 100))),
        round(lat * 1e7),
        round(lon * 1e7),
        k.alt,
        k.alt,
        mavlink.MAV_ODID_HEIGHT_REF_OVER_TAKEOFF,
        ap.rel_alt(),
        mavlink.MAV_ODID_HOR_ACC_3_METER,
        mavlink.MAV_ODID_VER_ACC_3_METER,
        mavlink.MAV_ODID_VER_ACC_3_METER,
        mavlink.MAV_ODID_SPEED_ACC_1_METERS_PER_SECOND,
        round(tod * 10) / 10,
        mavlink.MAV_ODID_TIME_ACC_1_0_SECOND,
    )


ODID_EPOCH = 1_546_300_800
"""00:00:00 01/01/2019 UTC, the epoch of OPEN_DRONE_ID_SYSTEM.timestamp."""


def open_drone_id_system(c: Context) -> MAVLink_message | None:
    ap = c.ap
    h = ap.home
    if not _gps_fix(c) or h is None:
        return None  # PX4 sends it only with a 3D fix and a valid home
    return c.mav.open_drone_id_system_encode(
        0,
        0,
        [0] * 20,
        mavlink.MAV_ODID_OPERATOR_LOCATION_TYPE_TAKEOFF,
        mavlink.MAV_ODID_CLASSIFICATION_TYPE_UNDECLARED,
        round(h.lat * 1e7),
        round(h.lon * 1e7),
        1,
        0,
        -1000.0,
        -1000.0,
        mavlink.MAV_ODID_CATEGORY_EU_UNDECLARED,
        mavlink.MAV_ODID_CLASS_EU_UNDECLARED,
        h.alt,
        max(0, int(ap.clock.time()) - ODID_EPOCH),
    )


def _centiamps(current_a: float) -> int:
    """A current in the int16 cA fields of SYS_STATUS and BATTERY_STATUS (clamped: a sagging
    battery's draw must not break the message)."""
    return max(-32768, min(32767, round(current_a * 100)))
