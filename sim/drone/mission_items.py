"""Mission, fence and rally items as PX4 stores them, and PX4's acceptance rules for them.

:func:`check_item` applies the rules of PX4's ``MavlinkMissionManager::parse_mavlink_mission_item``
to one received MISSION_ITEM(_INT): global frames (``MAV_FRAME_GLOBAL``/``GLOBAL_RELATIVE_ALT``,
and their ``_INT`` variants) for position items, ``MAV_FRAME_MISSION`` for DO_* and other items
without coordinates; a known command in the wrong frame is ``MAV_MISSION_UNSUPPORTED``, any other
frame ``MAV_MISSION_UNSUPPORTED_FRAME``; a ROI item with an unknown ROI mode
``MAV_MISSION_INVALID_PARAM1``. Fence and rally items go through the same parser (so rally
points are accepted only in global frames, as measured on PX4 SITL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from pymavlink.dialects.v20 import common as mavlink


class MissionType(IntEnum):
    """MAV_MISSION_TYPE."""

    MISSION = 0
    """Flight plan."""
    FENCE = 1
    """Geofence items."""
    RALLY = 2
    """Rally (safe) points."""
    ALL = 255
    """Every type (MISSION_CLEAR_ALL only)."""


MAX_COUNT: dict[MissionType, int] = {
    MissionType.MISSION: 2000,
    MissionType.FENCE: 64,
    MissionType.RALLY: 8,
}
"""Most items PX4 stores per plan type (larger MISSION_COUNT gets MAV_MISSION_NO_SPACE)."""

GLOBAL_FRAMES = frozenset({mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT})
"""Frames accepted for position items in both float and int transfers."""
GLOBAL_INT_FRAMES = frozenset(
    {mavlink.MAV_FRAME_GLOBAL_INT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}
)
"""Frames accepted for position items in int transfers only."""
RELATIVE_FRAMES = frozenset(
    {mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}
)
"""Frames whose altitude is relative to home."""

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


@dataclass(frozen=True, slots=True)
class MissionItem:
    """One stored item, kept as received (coordinates as degE7 integers)."""

    seq: int
    frame: int
    command: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    y: int = 0
    z: float = 0.0
    autocontinue: int = 1
    current: int = 0
    mission_type: int = 0

    @property
    def lat(self) -> float:
        return self.x * 1e-7

    @property
    def lon(self) -> float:
        return self.y * 1e-7

    @property
    def has_position(self) -> bool:
        return self.frame != mavlink.MAV_FRAME_MISSION

    @property
    def relative_alt(self) -> bool:
        return self.frame in RELATIVE_FRAMES

    def alt_amsl(self, home_alt: float) -> float:
        """The item's altitude above mean sea level."""
        return home_alt + self.z if self.relative_alt else self.z

    @classmethod
    def from_message(cls, msg: object, int_mode: bool) -> MissionItem:
        """From a decoded MISSION_ITEM_INT (``int_mode``) or MISSION_ITEM."""
        m = msg
        x, y = m.x, m.y  # type: ignore[attr-defined]
        frame = m.frame  # type: ignore[attr-defined]
        if not int_mode and frame != mavlink.MAV_FRAME_MISSION:
            x = round(x * 1e7) if math.isfinite(x) else 0
            y = round(y * 1e7) if math.isfinite(y) else 0
        elif not int_mode:
            x = round(x) if math.isfinite(x) else 0
            y = round(y) if math.isfinite(y) else 0
        return cls(
            seq=m.seq,  # type: ignore[attr-defined]
            frame=frame,
            command=m.command,  # type: ignore[attr-defined]
            param1=m.param1,  # type: ignore[attr-defined]
            param2=m.param2,  # type: ignore[attr-defined]
            param3=m.param3,  # type: ignore[attr-defined]
            param4=m.param4,  # type: ignore[attr-defined]
            x=int(x),
            y=int(y),
            z=m.z,  # type: ignore[attr-defined]
            autocontinue=m.autocontinue,  # type: ignore[attr-defined]
            current=m.current,  # type: ignore[attr-defined]
            mission_type=getattr(m, "mission_type", 0),
        )


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
