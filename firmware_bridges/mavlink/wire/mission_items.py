"""Mission, fence and rally items on the wire: MISSION_ITEM_INT and the legacy MISSION_ITEM.

A :class:`MissionItem` is what one MISSION_ITEM_INT says about one item of a plan: its command,
frame, four parameters, position (``x``/``y`` latitude and longitude in degE7, ``z`` altitude) and
the ``autocontinue`` and ``current`` flags. The message's addressing (target system and component),
its sequence number and the plan's :class:`MissionType` belong to the transfer, not to the item:
the bridge's mission client (``firmware_bridges.mavlink.mission``) and the simulated vehicle's
mission manager (``sim/drone/mission_protocol.py``) pass them to :meth:`MissionItem.int_message`,
the one place MISSION_ITEM_INT is built.

Frames: items with a position use a global frame; items without one (DO_* commands, RTL) use
``MAV_FRAME_MISSION`` (:data:`FRAME_MISSION`), where ``x``/``y`` carry params 5 and 6 as integers.
In the legacy float MISSION_ITEM a position is in degrees (:meth:`MissionItem.from_message` and
:meth:`MissionItem.float_message` convert).

A wire module: it imports only pymavlink (``sim/`` may use it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.messages import Message

DEG_E7 = 1e7
"""Scale of latitude and longitude in the ``*_INT`` messages."""
FRAME_MISSION: int = mavlink.MAV_FRAME_MISSION
"""Frame of items without a position: DO_* commands and RTL (PX4 accepts them in no other)."""
RELATIVE_FRAMES: frozenset[int] = frozenset(
    {mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}
)
"""Frames whose altitude is relative to home."""


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


def _finite_round(value: float, scale: float = 1.0) -> int:
    return round(value * scale) if math.isfinite(value) else 0


@dataclass(frozen=True, slots=True)
class MissionItem:
    """One item of a mission, fence or rally plan, as MISSION_ITEM_INT carries it (coordinates
    as degE7 integers), without its sequence number and addressing."""

    command: int
    """MAV_CMD."""
    frame: int
    """MAV_FRAME."""
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    """Latitude degE7 (param5 in MAV_FRAME_MISSION)."""
    y: int = 0
    """Longitude degE7 (param6 in MAV_FRAME_MISSION)."""
    z: float = 0.0
    """Altitude in metres, relative to home in the relative frames (param7 in MAV_FRAME_MISSION)."""
    autocontinue: int = 1
    """1: go on to the next item when this one is done."""
    current: int = 0
    """1 on the item an uploaded plan starts from (MISSION_ITEM_INT.current)."""

    @property
    def lat(self) -> float:
        return self.x * 1e-7

    @property
    def lon(self) -> float:
        return self.y * 1e-7

    @property
    def has_position(self) -> bool:
        return self.frame != FRAME_MISSION

    @property
    def relative_alt(self) -> bool:
        return self.frame in RELATIVE_FRAMES

    def alt_amsl(self, home_alt: float) -> float:
        """The item's altitude above mean sea level."""
        return home_alt + self.z if self.relative_alt else self.z

    @classmethod
    def from_message(cls, msg: Message) -> MissionItem:
        """From a decoded MISSION_ITEM_INT or legacy MISSION_ITEM (a position in degrees becomes
        degE7; params 5 and 6 of a MAV_FRAME_MISSION item are rounded; NaN becomes 0)."""
        x, y = msg.x, msg.y
        if msg.get_msgId() != mavlink.MAVLINK_MSG_ID_MISSION_ITEM_INT:
            scale = DEG_E7 if msg.frame != FRAME_MISSION else 1.0
            x, y = _finite_round(x, scale), _finite_round(y, scale)
        return cls(
            command=int(msg.command),
            frame=int(msg.frame),
            param1=float(msg.param1),
            param2=float(msg.param2),
            param3=float(msg.param3),
            param4=float(msg.param4),
            x=int(x),
            y=int(y),
            z=float(msg.z),
            autocontinue=int(msg.autocontinue),
            current=int(msg.current),
        )

    def int_message(
        self, target: tuple[int, int], seq: int, mission_type: int, current: int = 0
    ) -> Message:
        """This item as MISSION_ITEM_INT number ``seq`` of a ``mission_type`` transfer to
        ``target`` (system, component); ``current`` is what the sender says about it now."""
        return mavlink.MAVLink_mission_item_int_message(
            target[0],
            target[1],
            seq,
            self.frame,
            self.command,
            current,
            self.autocontinue,
            self.param1,
            self.param2,
            self.param3,
            self.param4,
            self.x,
            self.y,
            self.z,
            int(mission_type),
        )

    def float_message(
        self, target: tuple[int, int], seq: int, mission_type: int, current: int = 0
    ) -> Message:
        """This item as a legacy float MISSION_ITEM (positions in degrees)."""
        positioned = self.has_position
        return mavlink.MAVLink_mission_item_message(
            target[0],
            target[1],
            seq,
            self.frame,
            self.command,
            current,
            self.autocontinue,
            self.param1,
            self.param2,
            self.param3,
            self.param4,
            self.x * 1e-7 if positioned else float(self.x),
            self.y * 1e-7 if positioned else float(self.y),
            self.z,
            int(mission_type),
        )
