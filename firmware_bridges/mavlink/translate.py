"""Wire <-> domain translation for the MAVLink bridge; with :mod:`.translate_plans` the only place
both vocabularies meet.

Wire -> domain: telemetry messages are applied to a :class:`fleet.vehicle.VehicleStatus` in
place (the hot path: plain attribute reads, no dict building), enums become domain enums
(flight mode, landed state, mission run state, severity, vehicle kind); PX4's custom modes
(:mod:`.wire.px4`) map to the domain's flight modes and back.

Domain -> wire for plans (flight plans, geofences, rally points as mission items) is in
:mod:`.translate_plans`.

Parameter values use PX4's bytewise encoding (``MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE``):
an INT32 parameter's four bytes travel inside PARAM_VALUE/PARAM_SET's float field.
"""

from __future__ import annotations

import math
import struct

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import DEG_E7
from firmware_bridges.mavlink.wire.px4 import AutoSubMode, MainMode, decode_custom_mode
from fleet.errors import ValidationError
from fleet.events import Severity
from fleet.geo import Position
from fleet.vehicle import (
    FlightMode,
    LandedState,
    MissionRunState,
    VehicleKind,
    VehicleStatus,
)

UINT16_MAX = 0xFFFF
"""'Unknown' marker of several uint16 telemetry fields."""


# -- wire -> domain ----------------------------------------------------------------------------

_AERIAL_TYPES = frozenset(
    {
        mavlink.MAV_TYPE_QUADROTOR,
        mavlink.MAV_TYPE_COAXIAL,
        mavlink.MAV_TYPE_HELICOPTER,
        mavlink.MAV_TYPE_HEXAROTOR,
        mavlink.MAV_TYPE_OCTOROTOR,
        mavlink.MAV_TYPE_TRICOPTER,
        mavlink.MAV_TYPE_DODECAROTOR,
        mavlink.MAV_TYPE_DECAROTOR,
        mavlink.MAV_TYPE_FIXED_WING,
        mavlink.MAV_TYPE_VTOL_DUOROTOR,
        mavlink.MAV_TYPE_VTOL_QUADROTOR,
        mavlink.MAV_TYPE_VTOL_TILTROTOR,
        mavlink.MAV_TYPE_GENERIC_MULTIROTOR,
    }
)
_GROUND_TYPES = frozenset({mavlink.MAV_TYPE_GROUND_ROVER})


def vehicle_kind(mav_type: int) -> VehicleKind | None:
    """Domain kind of a HEARTBEAT.type; None for types the fleet does not operate."""
    if mav_type in _AERIAL_TYPES:
        return VehicleKind.DRONE
    if mav_type in _GROUND_TYPES:
        return VehicleKind.ROVER
    return None


def is_autopilot_heartbeat(mav_type: int, autopilot: int) -> bool:
    """True for a flight controller's HEARTBEAT (not a GCS, not a companion or payload)."""
    return bool(autopilot != mavlink.MAV_AUTOPILOT_INVALID and mav_type != mavlink.MAV_TYPE_GCS)


def heartbeat_armed(base_mode: int) -> bool:
    return bool(base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)


def heartbeat_mode(base_mode: int, custom_mode: int) -> FlightMode:
    """PX4 flight mode from HEARTBEAT (UNKNOWN without the custom-mode flag)."""
    if not base_mode & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        return FlightMode.UNKNOWN
    return flight_mode(custom_mode)


_TO_DOMAIN: dict[tuple[int, int], FlightMode] = {
    (MainMode.MANUAL, 0): FlightMode.MANUAL,
    (MainMode.ALTCTL, 0): FlightMode.ALTCTL,
    (MainMode.POSCTL, 0): FlightMode.POSCTL,
    (MainMode.ACRO, 0): FlightMode.ACRO,
    (MainMode.OFFBOARD, 0): FlightMode.OFFBOARD,
    (MainMode.STABILIZED, 0): FlightMode.STABILIZED,
    (MainMode.AUTO, AutoSubMode.READY): FlightMode.READY,
    (MainMode.AUTO, AutoSubMode.TAKEOFF): FlightMode.TAKEOFF,
    (MainMode.AUTO, AutoSubMode.LOITER): FlightMode.HOLD,
    (MainMode.AUTO, AutoSubMode.MISSION): FlightMode.MISSION,
    (MainMode.AUTO, AutoSubMode.RTL): FlightMode.RTL,
    (MainMode.AUTO, AutoSubMode.LAND): FlightMode.LAND,
    (MainMode.AUTO, AutoSubMode.FOLLOW_TARGET): FlightMode.FOLLOW_TARGET,
    (MainMode.AUTO, AutoSubMode.PRECLAND): FlightMode.PRECLAND,
}
_FROM_DOMAIN: dict[FlightMode, tuple[int, int]] = {v: k for k, v in _TO_DOMAIN.items()}


def flight_mode(custom_mode: int) -> FlightMode:
    """Domain flight mode of a PX4 HEARTBEAT.custom_mode (UNKNOWN if unrecognised)."""
    main, sub = decode_custom_mode(custom_mode)
    if main != MainMode.AUTO:
        sub = 0
    return _TO_DOMAIN.get((main, sub), FlightMode.UNKNOWN)


def px4_mode(mode: FlightMode) -> tuple[int, int]:
    """(main, sub) for a domain flight mode; KeyError if PX4 has no such mode."""
    return _FROM_DOMAIN[mode]


_FAILSAFE_STATES = frozenset(
    {mavlink.MAV_STATE_CRITICAL, mavlink.MAV_STATE_EMERGENCY, mavlink.MAV_STATE_FLIGHT_TERMINATION}
)


def is_failsafe_state(system_status: int) -> bool:
    """HEARTBEAT.system_status values that mean the vehicle is in a failsafe."""
    return system_status in _FAILSAFE_STATES


def apply_global_position(
    status: VehicleStatus, msg: mavlink.MAVLink_global_position_int_message
) -> None:
    status.position = Position(
        msg.lat / DEG_E7, msg.lon / DEG_E7, msg.alt / 1000.0, msg.relative_alt / 1000.0
    )
    vx, vy = msg.vx / 100.0, msg.vy / 100.0
    status.ground_speed_mps = math.hypot(vx, vy)
    status.climb_rate_mps = -msg.vz / 100.0
    if msg.hdg != UINT16_MAX:
        status.heading_deg = msg.hdg / 100.0


def apply_home_position(status: VehicleStatus, msg: mavlink.MAVLink_home_position_message) -> None:
    status.home = Position(msg.latitude / DEG_E7, msg.longitude / DEG_E7, msg.altitude / 1000.0)


def apply_sys_status(status: VehicleStatus, msg: mavlink.MAVLink_sys_status_message) -> None:
    """Battery and ready-to-arm from SYS_STATUS.

    Ready to arm is the MAV_SYS_STATUS_PREARM_CHECK bit of ``onboard_control_sensors_health``
    (PX4 sets it only while its pre-arm checks pass, and always while armed).
    """
    if msg.battery_remaining >= 0:
        status.battery_fraction = msg.battery_remaining / 100.0
    if msg.voltage_battery != UINT16_MAX:
        status.battery_voltage = msg.voltage_battery / 1000.0
    status.ready_to_arm = bool(
        msg.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_PREARM_CHECK
    )
    failing = (
        msg.onboard_control_sensors_present
        & msg.onboard_control_sensors_enabled
        & ~msg.onboard_control_sensors_health
        & ~mavlink.MAV_SYS_STATUS_PREARM_CHECK  # not ready to arm is not a fault
    )
    status.errors = sensor_faults(failing)


_SENSOR_NAMES: dict[int, tuple[str, ...]] = {0: ()}


def sensor_faults(mask: int) -> tuple[str, ...]:
    """Names of the unhealthy subsystems in a SYS_STATUS sensor mask, e.g. ``("gps",)``."""
    names = _SENSOR_NAMES.get(mask)
    if names is None:
        entries = mavlink.enums["MAV_SYS_STATUS_SENSOR"]
        names = tuple(
            entry.name.removeprefix("MAV_SYS_STATUS_").removeprefix("SENSOR_").lower()
            for bit, entry in sorted(entries.items())
            if bit & mask and bit & (bit - 1) == 0
        )
        if len(_SENSOR_NAMES) < 1024:
            _SENSOR_NAMES[mask] = names
    return names


def apply_battery_status(
    status: VehicleStatus, msg: mavlink.MAVLink_battery_status_message
) -> None:
    """Charge of the first battery (id 0); other batteries are ignored."""
    if msg.id != 0:
        return
    if msg.battery_remaining >= 0:
        status.battery_fraction = msg.battery_remaining / 100.0


_LANDED = {
    mavlink.MAV_LANDED_STATE_UNDEFINED: LandedState.UNKNOWN,
    mavlink.MAV_LANDED_STATE_ON_GROUND: LandedState.ON_GROUND,
    mavlink.MAV_LANDED_STATE_IN_AIR: LandedState.IN_AIR,
    mavlink.MAV_LANDED_STATE_TAKEOFF: LandedState.TAKING_OFF,
    mavlink.MAV_LANDED_STATE_LANDING: LandedState.LANDING,
}


def landed_state(value: int) -> LandedState:
    return _LANDED.get(value, LandedState.UNKNOWN)


def mission_run_state(mission_state: int, total: int, rejected: bool = False) -> MissionRunState:
    """Domain state of MISSION_CURRENT.mission_state.

    PX4 reports MISSION_STATE_NO_MISSION (1) for an empty plan, for an uploaded plan its
    navigator has not checked yet (it checks only once home and a global position are valid,
    and a moment after each upload), and for a plan its feasibility checks rejected. With
    ``total > 0`` it is one of the last two: INVALID when the vehicle said why (``rejected``:
    a feasibility failure reported since the upload), UNCHECKED otherwise.
    """
    if mission_state == mavlink.MISSION_STATE_NO_MISSION:
        if not 0 < total != UINT16_MAX:
            return MissionRunState.NO_MISSION
        return MissionRunState.INVALID if rejected else MissionRunState.UNCHECKED
    return {
        mavlink.MISSION_STATE_NOT_STARTED: MissionRunState.NOT_STARTED,
        mavlink.MISSION_STATE_ACTIVE: MissionRunState.ACTIVE,
        mavlink.MISSION_STATE_PAUSED: MissionRunState.PAUSED,
        mavlink.MISSION_STATE_COMPLETE: MissionRunState.COMPLETE,
    }.get(mission_state, MissionRunState.UNKNOWN)


def severity(mav_severity: int) -> Severity:
    """MAV_SEVERITY (also the events protocol's external log level) in four levels."""
    if mav_severity <= mavlink.MAV_SEVERITY_ERROR:
        return Severity.ERROR
    if mav_severity == mavlink.MAV_SEVERITY_WARNING:
        return Severity.WARNING
    if mav_severity <= mavlink.MAV_SEVERITY_INFO:
        return Severity.INFO
    return Severity.DEBUG


def statustext(raw: bytes) -> str:
    """STATUSTEXT.text as str: NUL-terminated UTF-8; PX4's trailing tab (which marks texts
    that also exist as EVENT) removed."""
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip("\t").strip()


def mirrors_event(raw: bytes) -> bool:
    """Whether a STATUSTEXT ends with PX4's tab, which marks texts also sent as an EVENT."""
    return raw.split(b"\x00", 1)[0].endswith(b"\t")


def result_name(result: int) -> str:
    """MAV_RESULT name, e.g. ``DENIED``."""
    entry = mavlink.enums["MAV_RESULT"].get(result)
    return entry.name.removeprefix("MAV_RESULT_") if entry else f"RESULT_{result}"


def mission_result_name(result: int) -> str:
    """MAV_MISSION_RESULT name, e.g. ``UNSUPPORTED_FRAME``."""
    entry = mavlink.enums["MAV_MISSION_RESULT"].get(result)
    return entry.name.removeprefix("MAV_MISSION_") if entry else f"MISSION_RESULT_{result}"


def command_name(command: int) -> str:
    entry = mavlink.enums["MAV_CMD"].get(command)
    return entry.name if entry else f"MAV_CMD_{command}"


# -- parameters --------------------------------------------------------------------------------

_INT_TYPES = {
    mavlink.MAV_PARAM_TYPE_UINT8: "<B",
    mavlink.MAV_PARAM_TYPE_INT8: "<b",
    mavlink.MAV_PARAM_TYPE_UINT16: "<H",
    mavlink.MAV_PARAM_TYPE_INT16: "<h",
    mavlink.MAV_PARAM_TYPE_UINT32: "<I",
    mavlink.MAV_PARAM_TYPE_INT32: "<i",
}


def decode_param_value(wire: float, param_type: int, bytewise: bool = True) -> float:
    """The parameter's value from PARAM_VALUE.param_value."""
    fmt = _INT_TYPES.get(param_type)
    if fmt is None or not bytewise:
        return float(wire)
    raw = struct.pack("<f", wire)
    size = struct.calcsize(fmt)
    return float(struct.unpack(fmt, raw[:size])[0])


def encode_param_value(value: float, param_type: int, bytewise: bool = True) -> float:
    """PARAM_SET.param_value for ``value`` of ``param_type``; ValidationError if it does not fit."""
    fmt = _INT_TYPES.get(param_type)
    if fmt is None:
        return float(value)
    if value != int(value):
        raise ValidationError(f"{value} is not an integer", field="value")
    if not bytewise:
        return float(int(value))
    try:
        raw = struct.pack(fmt, int(value)).ljust(4, b"\x00")
    except struct.error as exc:
        raise ValidationError(f"{value} does not fit the parameter's type", field="value") from exc
    return float(struct.unpack("<f", raw)[0])


def param_id(name: str) -> bytes:
    """PARAM_*.param_id: at most 16 ASCII characters."""
    raw = name.encode("ascii", errors="strict")
    if not raw or len(raw) > 16:
        raise ValidationError("parameter names have 1 to 16 ASCII characters", field="name")
    return raw


def param_name(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace")
    return raw.split("\x00", 1)[0]
