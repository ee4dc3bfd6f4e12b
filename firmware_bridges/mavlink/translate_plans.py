"""Domain -> wire for plans: flight plans, geofences and rally points as mission items, and back.

The other half of the bridge's translation (:mod:`.translate` turns telemetry into domain state).
A :class:`fleet.drone.FlightPlan`, :class:`fleet.drone.Geofence` or rally points become
:class:`~firmware_bridges.mavlink.wire.mission_items.MissionItem` values, PX4's rules applied:

* NAV items with a position (take-off, waypoint, land, fence vertices and circles, rally
  points) use ``MAV_FRAME_GLOBAL_RELATIVE_ALT_INT`` (rally: PX4 accepts only frames 0/3 for
  rally points, the relative-altitude one is used) with lat/lon in degE7;
* items without a position (``NAV_RETURN_TO_LAUNCH``, ``DO_GRIPPER``, ``DO_WINCH``) use
  ``MAV_FRAME_MISSION``: PX4 answers MAV_MISSION_UNSUPPORTED for them in any other frame;
* PX4 copies only param1..2 of a mission ``DO_WINCH`` (instance, action), so a winch length or
  rate inside a mission is not honoured by PX4; it is still sent for other autopilots.

Downloaded items become domain values again (:func:`items_to_plan`, :func:`items_to_geofence`,
:func:`items_to_rally`). A problem in a plan raises ``ValidationError`` naming the item.
"""

from __future__ import annotations

import math

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.translate import command_name
from firmware_bridges.mavlink.wire.mission_items import DEG_E7, FRAME_MISSION, MissionItem
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
from fleet.geo import LatLon, Position

FRAME_REL = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
"""Frame of positioned NAV items."""


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
    code: int = {
        WinchAction.RELAXED: mavlink.WINCH_RELAXED,
        WinchAction.LENGTH: mavlink.WINCH_RELATIVE_LENGTH_CONTROL,
        WinchAction.RATE: mavlink.WINCH_RATE_CONTROL,
    }[action]
    return code


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
