"""PX4's acceptance rules for mission, fence and rally items (the items themselves are the wire
type :class:`firmware_bridges.mavlink.wire.mission_items.MissionItem`).

:func:`check_item` applies the rules of PX4's ``MavlinkMissionManager::parse_mavlink_mission_item``
to one received MISSION_ITEM(_INT): global frames (``MAV_FRAME_GLOBAL``/``GLOBAL_RELATIVE_ALT``,
and their ``_INT`` variants) for position items, ``MAV_FRAME_MISSION`` for DO_* and other items
without coordinates; a known command in the wrong frame is ``MAV_MISSION_UNSUPPORTED``, any other
frame ``MAV_MISSION_UNSUPPORTED_FRAME``; a ROI item with an unknown ROI mode
``MAV_MISSION_INVALID_PARAM1``. Fence and rally items go through the same parser (so rally
points are accepted only in global frames, as measured on PX4 SITL).
"""

from __future__ import annotations

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem, MissionType

MAX_COUNT: dict[MissionType, int] = {
    MissionType.MISSION: 2000,
    MissionType.FENCE: 64,
    MissionType.RALLY: 32,
}
"""Most items PX4 stores per plan type (larger MISSION_COUNT gets MAV_MISSION_NO_SPACE):
``MavlinkMissionManager::MAX_COUNT``, i.e. dataman's ``DM_KEY_FENCE_POINTS_MAX`` (64) and
``DM_KEY_SAFE_POINTS_MAX`` (32) at PX4 a70a558."""

GLOBAL_FRAMES = frozenset({mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT})
"""Frames accepted for position items in both float and int transfers."""
GLOBAL_INT_FRAMES = frozenset(
    {mavlink.MAV_FRAME_GLOBAL_INT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}
)
"""Frames accepted for position items in int transfers only."""

POSITION_COMMANDS = frozenset(
    {
        mavlink.MAV_CMD_NAV_WAYPOINT,
        mavlink.MAV_CMD_NAV_LOITER_UNLIM,
        mavlink.MAV_CMD_NAV_LOITER_TIME,
        mavlink.MAV_CMD_NAV_LAND,
        mavlink.MAV_CMD_NAV_TAKEOFF,
        mavlink.MAV_CMD_NAV_LOITER_TO_ALT,
        mavlink.MAV_CMD_DO_SET_ROI_LOCATION,
        mavlink.MAV_CMD_NAV_VTOL_TAKEOFF,
        mavlink.MAV_CMD_NAV_VTOL_LAND,
        mavlink.MAV_CMD_CONDITION_GATE,
        mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT,
        mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
        mavlink.MAV_CMD_NAV_RALLY_POINT,
        mavlink.MAV_CMD_COMPONENT_ARM_DISARM,
        mavlink.MAV_CMD_DO_AUTOTUNE_ENABLE,
    }
)
"""Commands PX4 accepts in a global frame (ROI handled separately)."""

MISSION_FRAME_COMMANDS = frozenset(
    {
        mavlink.MAV_CMD_DO_JUMP,
        mavlink.MAV_CMD_DO_WINCH,
        mavlink.MAV_CMD_DO_GRIPPER,
        mavlink.MAV_CMD_DO_CHANGE_SPEED,
        mavlink.MAV_CMD_DO_SET_HOME,
        mavlink.MAV_CMD_DO_LAND_START,
        mavlink.MAV_CMD_DO_TRIGGER_CONTROL,
        mavlink.MAV_CMD_DO_DIGICAM_CONTROL,
        mavlink.MAV_CMD_DO_MOUNT_CONFIGURE,
        mavlink.MAV_CMD_DO_MOUNT_CONTROL,
        mavlink.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW,
        mavlink.MAV_CMD_SET_CAMERA_FOCUS,
        mavlink.MAV_CMD_DO_GIMBAL_MANAGER_CONFIGURE,
        mavlink.MAV_CMD_IMAGE_START_CAPTURE,
        mavlink.MAV_CMD_IMAGE_STOP_CAPTURE,
        mavlink.MAV_CMD_VIDEO_START_CAPTURE,
        mavlink.MAV_CMD_VIDEO_STOP_CAPTURE,
        mavlink.MAV_CMD_DO_CONTROL_VIDEO,
        mavlink.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
        mavlink.MAV_CMD_OBLIQUE_SURVEY,
        mavlink.MAV_CMD_DO_SET_CAM_TRIGG_INTERVAL,
        mavlink.MAV_CMD_SET_CAMERA_MODE,
        mavlink.MAV_CMD_SET_CAMERA_SOURCE,
        mavlink.MAV_CMD_DO_VTOL_TRANSITION,
        mavlink.MAV_CMD_NAV_DELAY,
        mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH,
        mavlink.MAV_CMD_DO_SET_ROI_WPNEXT_OFFSET,
        mavlink.MAV_CMD_DO_SET_ROI_NONE,
        mavlink.MAV_CMD_CONDITION_DELAY,
        mavlink.MAV_CMD_CONDITION_DISTANCE,
        mavlink.MAV_CMD_DO_SET_ACTUATOR,
        mavlink.MAV_CMD_DO_AUTOTUNE_ENABLE,
        mavlink.MAV_CMD_COMPONENT_ARM_DISARM,
    }
)
"""Commands PX4 accepts in MAV_FRAME_MISSION (ROI handled separately)."""

NAV_POSITION_COMMANDS = frozenset(
    {
        mavlink.MAV_CMD_NAV_WAYPOINT,
        mavlink.MAV_CMD_NAV_LOITER_UNLIM,
        mavlink.MAV_CMD_NAV_LOITER_TIME,
        mavlink.MAV_CMD_NAV_LOITER_TO_ALT,
        mavlink.MAV_CMD_NAV_LAND,
        mavlink.MAV_CMD_NAV_TAKEOFF,
        mavlink.MAV_CMD_NAV_VTOL_TAKEOFF,
        mavlink.MAV_CMD_NAV_VTOL_LAND,
    }
)
"""Mission items the vehicle flies to (checked against the fence)."""


def check_item(item: MissionItem, int_mode: bool) -> int:
    """PX4's verdict on a received item: ``MAV_MISSION_ACCEPTED`` or the error result."""
    frame, cmd = item.frame, item.command
    if frame in GLOBAL_FRAMES or (int_mode and frame in GLOBAL_INT_FRAMES):
        if cmd in (mavlink.MAV_CMD_NAV_ROI, mavlink.MAV_CMD_DO_SET_ROI):
            if int(item.param1) in (mavlink.MAV_ROI_LOCATION, mavlink.MAV_ROI_NONE):
                return int(mavlink.MAV_MISSION_ACCEPTED)
            return int(mavlink.MAV_MISSION_INVALID_PARAM1)
        if cmd in POSITION_COMMANDS:
            return int(mavlink.MAV_MISSION_ACCEPTED)
        return int(mavlink.MAV_MISSION_UNSUPPORTED)
    if frame == mavlink.MAV_FRAME_MISSION:
        if cmd in (mavlink.MAV_CMD_NAV_ROI, mavlink.MAV_CMD_DO_SET_ROI):
            if int(item.param1) in (
                mavlink.MAV_ROI_NONE,
                mavlink.MAV_ROI_WPNEXT,
                mavlink.MAV_ROI_WPINDEX,
            ):
                return int(mavlink.MAV_MISSION_ACCEPTED)
            return int(mavlink.MAV_MISSION_INVALID_PARAM1)
        if cmd in MISSION_FRAME_COMMANDS:
            return int(mavlink.MAV_MISSION_ACCEPTED)
        return int(mavlink.MAV_MISSION_UNSUPPORTED)
    return int(mavlink.MAV_MISSION_UNSUPPORTED_FRAME)


FENCE_COMMANDS = frozenset(
    {
        mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
        mavlink.MAV_CMD_NAV_RALLY_POINT,
    }
)
"""Items that must not appear in a flight plan (PX4 answers MAV_MISSION_ERROR)."""
