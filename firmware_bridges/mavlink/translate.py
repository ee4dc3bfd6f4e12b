"""Wire <-> domain translation for the MAVLink bridge; the only place both vocabularies meet.

Wire -> domain: telemetry messages are applied to a :class:`fleet.vehicle.VehicleStatus` in
place (the hot path: plain attribute reads, no dict building), enums become domain enums
(flight mode, landed state, mission run state, severity, vehicle kind).

Domain -> wire: a :class:`fleet.drone.FlightPlan`, :class:`fleet.drone.Geofence` or rally
points become :class:`MissionItem` values, PX4's rules applied:

* NAV items with a position (take-off, waypoint, land, fence vertices and circles, rally
  points) use ``MAV_FRAME_GLOBAL_RELATIVE_ALT_INT`` (rally: PX4 accepts only frames 0/3 for
  rally points, the relative-altitude one is used) with lat/lon in degE7;
* items without a position (``NAV_RETURN_TO_LAUNCH``, ``DO_GRIPPER``, ``DO_WINCH``) use
  ``MAV_FRAME_MISSION``: PX4 answers MAV_MISSION_UNSUPPORTED for them in any other frame;
* PX4 copies only param1..2 of a mission ``DO_WINCH`` (instance, action), so a winch length or
  rate inside a mission is not honoured by PX4; it is still sent for other autopilots.

Parameter values use PX4's bytewise encoding (``MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE``):
an INT32 parameter's four bytes travel inside PARAM_VALUE/PARAM_SET's float field.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import px4
from fleet.drone import (
    FenceCircle,
    FencePolygon,
    FlightItem,
    FlightPlan,
    Geofence,
    Gripper,
    GripperAction,
    Land,
    ReturnToLaunch,
    Takeoff,
    Waypoint,
    Winch,
    WinchAction,
)
from fleet.errors import ValidationError
from fleet.events import Severity
from fleet.geo import LatLon, Position
from fleet.vehicle import (
    FlightMode,
    LandedState,
    MissionRunState,
    VehicleKind,
    VehicleStatus,
)

UINT16_MAX = 0xFFFF
"""'Unknown' marker of several uint16 telemetry fields."""
DEG_E7 = 1e7
"""Scale of lat/lon in *_INT messages."""


class MissionType(IntEnum):
    """MAV_MISSION_TYPE: which plan a mission-protocol transfer is about."""

    MISSION = 0
    """Flight plan."""
    FENCE = 1
    """Geofence items."""
    RALLY = 2
    """Rally (safe) points."""
    ALL = 255
    """Every type (MISSION_CLEAR_ALL only)."""


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
    return autopilot != mavlink.MAV_AUTOPILOT_INVALID and mav_type != mavlink.MAV_TYPE_GCS


def heartbeat_armed(base_mode: int) -> bool:
    return bool(base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)


def heartbeat_mode(base_mode: int, custom_mode: int) -> FlightMode:
    """PX4 flight mode from HEARTBEAT (UNKNOWN without the custom-mode flag)."""
    if not base_mode & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        return FlightMode.UNKNOWN
    return px4.flight_mode(custom_mode)


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


# -- domain -> wire: mission items -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MissionItem:
    """One MISSION_ITEM_INT, independent of its sequence number and target."""

    command: int
    frame: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    """Latitude degE7 (or param5 in MAV_FRAME_MISSION)."""
    y: int = 0
    """Longitude degE7 (or param6)."""
    z: float = 0.0
    """Altitude (or param7)."""
    autocontinue: int = 1
    extra: dict[str, object] = field(default_factory=dict, compare=False)


FRAME_REL = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
"""Frame of positioned NAV items."""
FRAME_MISSION = mavlink.MAV_FRAME_MISSION
"""Frame of items without a position (DO_* and RTL), as PX4 requires."""


def _e7(deg: float) -> int:
    return round(deg * DEG_E7)


def _check_latlon(lat: float, lon: float, where: str) -> None:
    try:
        LatLon(lat, lon)
    except ValueError as exc:
        raise ValidationError(str(exc), field=where) from exc


def plan_to_items(
    plan: FlightPlan, origin: tuple[float, float] | None, default_takeoff_alt: float | None
) -> list[MissionItem]:
    """MISSION_ITEM_INT contents for a flight plan.

    ``origin`` (lat, lon) places a take-off without a position (normally the vehicle's home);
    a land without a position lands where the previous positioned item is (or at ``origin``).
    ``default_takeoff_alt`` (PX4 MIS_TAKEOFF_ALT) replaces a take-off without an altitude.
    """
    items: list[MissionItem] = []
    last: tuple[float, float] | None = origin
    for index, item in enumerate(plan.items):
        where = f"items[{index}]"
        items.append(_flight_item(item, where, origin, last, default_takeoff_alt))
        if isinstance(item, Waypoint | Takeoff | Land) and items[-1].frame == FRAME_REL:
            last = (items[-1].x / DEG_E7, items[-1].y / DEG_E7)
    return items


def _flight_item(
    item: FlightItem,
    where: str,
    origin: tuple[float, float] | None,
    last: tuple[float, float] | None,
    default_takeoff_alt: float | None,
) -> MissionItem:
    nan = math.nan
    if isinstance(item, Waypoint):
        _check_latlon(item.lat, item.lon, where)
        if item.hold_s < 0:
            raise ValidationError("hold time must not be negative", field=where)
        return MissionItem(
            mavlink.MAV_CMD_NAV_WAYPOINT,
            FRAME_REL,
            param1=item.hold_s,
            param2=item.acceptance_m or 0.0,
            param3=0.0,
            param4=nan if item.yaw_deg is None else item.yaw_deg,
            x=_e7(item.lat),
            y=_e7(item.lon),
            z=item.rel_alt,
        )
    if isinstance(item, Takeoff):
        alt = item.rel_alt if item.rel_alt is not None else default_takeoff_alt
        if alt is None:
            raise ValidationError("take-off altitude unknown", field=where)
        if item.lat is not None and item.lon is not None:
            at: tuple[float, float] | None = (item.lat, item.lon)
        else:
            at = origin
        if at is None:
            raise ValidationError("take-off position unknown (no home position yet)", field=where)
        _check_latlon(at[0], at[1], where)
        return MissionItem(
            mavlink.MAV_CMD_NAV_TAKEOFF, FRAME_REL, param4=nan, x=_e7(at[0]), y=_e7(at[1]), z=alt
        )
    if isinstance(item, Land):
        if item.lat is not None and item.lon is not None:
            spot: tuple[float, float] | None = (item.lat, item.lon)
        else:
            spot = last
        if spot is None:
            raise ValidationError("landing position unknown", field=where)
        _check_latlon(spot[0], spot[1], where)
        return MissionItem(
            mavlink.MAV_CMD_NAV_LAND, FRAME_REL, param4=nan, x=_e7(spot[0]), y=_e7(spot[1]), z=0.0
        )
    if isinstance(item, ReturnToLaunch):
        return MissionItem(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, FRAME_MISSION)
    if isinstance(item, Gripper):
        action = (
            mavlink.GRIPPER_ACTION_RELEASE
            if item.action == GripperAction.RELEASE
            else mavlink.GRIPPER_ACTION_GRAB
        )
        return MissionItem(
            mavlink.MAV_CMD_DO_GRIPPER, FRAME_MISSION, param1=item.instance, param2=action
        )
    if isinstance(item, Winch):
        return MissionItem(
            mavlink.MAV_CMD_DO_WINCH,
            FRAME_MISSION,
            param1=item.instance,
            param2=winch_action(item.action),
            param3=item.length_m,
            param4=item.rate_mps,
        )
    raise ValidationError(f"unsupported flight item {type(item).__name__}", field=where)


def winch_action(action: WinchAction) -> int:
    """WINCH_ACTIONS value of a domain winch action."""
    return {
        WinchAction.RELAXED: mavlink.WINCH_RELAXED,
        WinchAction.LENGTH: mavlink.WINCH_RELATIVE_LENGTH_CONTROL,
        WinchAction.RATE: mavlink.WINCH_RATE_CONTROL,
    }[action]


def items_to_plan(items: list[MissionItem]) -> FlightPlan:
    """A flight plan from downloaded mission items (unknown commands raise ValidationError)."""
    out: list[FlightItem] = []
    for index, it in enumerate(items):
        lat, lon = it.x / DEG_E7, it.y / DEG_E7
        if it.command == mavlink.MAV_CMD_NAV_WAYPOINT:
            out.append(
                Waypoint(
                    lat,
                    lon,
                    it.z,
                    hold_s=it.param1,
                    acceptance_m=it.param2 or None,
                    yaw_deg=None if math.isnan(it.param4) else it.param4,
                )
            )
        elif it.command == mavlink.MAV_CMD_NAV_TAKEOFF:
            out.append(Takeoff(it.z, lat, lon))
        elif it.command == mavlink.MAV_CMD_NAV_LAND:
            out.append(Land(lat, lon))
        elif it.command == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            out.append(ReturnToLaunch())
        elif it.command == mavlink.MAV_CMD_DO_GRIPPER:
            action = (
                GripperAction.GRAB
                if int(it.param2) == mavlink.GRIPPER_ACTION_GRAB
                else GripperAction.RELEASE
            )
            out.append(Gripper(action, int(it.param1)))
        elif it.command == mavlink.MAV_CMD_DO_WINCH:
            actions = {
                mavlink.WINCH_RELAXED: WinchAction.RELAXED,
                mavlink.WINCH_RELATIVE_LENGTH_CONTROL: WinchAction.LENGTH,
                mavlink.WINCH_RATE_CONTROL: WinchAction.RATE,
            }
            out.append(
                Winch(
                    actions.get(int(it.param2), WinchAction.LENGTH),
                    it.param3,
                    it.param4,
                    int(it.param1),
                )
            )
        else:
            raise ValidationError(
                f"mission item {index} has command {command_name(it.command)} which the "
                "service does not model",
                field=f"items[{index}]",
            )
    return FlightPlan(tuple(out))


def geofence_to_items(fence: Geofence) -> list[MissionItem]:
    """Fence items: one item per polygon vertex (param1 = vertex count), one per circle."""
    items: list[MissionItem] = []
    for p_index, poly in enumerate(fence.polygons):
        where = f"polygons[{p_index}]"
        vertices = list(poly.vertices)
        if len(vertices) > 1 and vertices[0] == vertices[-1]:
            vertices = vertices[:-1]
        if len(vertices) < 3:
            raise ValidationError("a fence polygon needs at least 3 vertices", field=where)
        cmd = (
            mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
            if poly.inclusion
            else mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION
        )
        for lat, lon in vertices:
            _check_latlon(lat, lon, where)
            items.append(MissionItem(cmd, FRAME_REL, param1=len(vertices), x=_e7(lat), y=_e7(lon)))
    for c_index, circle in enumerate(fence.circles):
        where = f"circles[{c_index}]"
        _check_latlon(circle.lat, circle.lon, where)
        if circle.radius_m <= 0:
            raise ValidationError("a fence circle needs a positive radius", field=where)
        cmd = (
            mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
            if circle.inclusion
            else mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION
        )
        items.append(
            MissionItem(
                cmd, FRAME_REL, param1=circle.radius_m, x=_e7(circle.lat), y=_e7(circle.lon)
            )
        )
    return items


def items_to_geofence(items: list[MissionItem]) -> Geofence:
    """A geofence from downloaded fence items."""
    polygons: list[FencePolygon] = []
    circles: list[FenceCircle] = []
    i = 0
    while i < len(items):
        it = items[i]
        if it.command in (
            mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
            mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
        ):
            count = max(1, round(it.param1))
            chunk = items[i : i + count]
            polygons.append(
                FencePolygon(
                    tuple((v.x / DEG_E7, v.y / DEG_E7) for v in chunk),
                    inclusion=it.command == mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                )
            )
            i += count
            continue
        if it.command in (
            mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
            mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
        ):
            circles.append(
                FenceCircle(
                    it.x / DEG_E7,
                    it.y / DEG_E7,
                    it.param1,
                    inclusion=it.command == mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
                )
            )
        i += 1
    return Geofence(tuple(polygons), tuple(circles))


def rally_to_items(points: list[Position]) -> list[MissionItem]:
    """MAV_CMD_NAV_RALLY_POINT items (altitude relative to home)."""
    items = []
    for index, p in enumerate(points):
        _check_latlon(p.lat, p.lon, f"points[{index}]")
        items.append(
            MissionItem(
                mavlink.MAV_CMD_NAV_RALLY_POINT,
                mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                x=_e7(p.lat),
                y=_e7(p.lon),
                z=p.rel_alt,
            )
        )
    return items


def items_to_rally(items: list[MissionItem]) -> list[Position]:
    return [Position(it.x / DEG_E7, it.y / DEG_E7, 0.0, it.z) for it in items]


def item_from_wire(msg: mavlink.MAVLink_mission_item_int_message) -> MissionItem:
    return MissionItem(
        command=msg.command,
        frame=msg.frame,
        param1=msg.param1,
        param2=msg.param2,
        param3=msg.param3,
        param4=msg.param4,
        x=msg.x,
        y=msg.y,
        z=msg.z,
        autocontinue=msg.autocontinue,
    )


def item_from_legacy(msg: mavlink.MAVLink_mission_item_message) -> MissionItem:
    """A legacy float MISSION_ITEM (sent by old autopilots on download) as a MissionItem."""
    positioned = msg.frame != FRAME_MISSION
    return MissionItem(
        command=msg.command,
        frame=msg.frame,
        param1=msg.param1,
        param2=msg.param2,
        param3=msg.param3,
        param4=msg.param4,
        x=_e7(msg.x) if positioned else int(msg.x),
        y=_e7(msg.y) if positioned else int(msg.y),
        z=msg.z,
        autocontinue=msg.autocontinue,
    )
