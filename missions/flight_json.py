"""Flight plans as stored with a mission (``Mission.plan``): JSON of ``fleet.drone`` flight
items, for every mission kind a drone flies (a delivery sortie, a broadcast flight)."""

from __future__ import annotations

import math
from typing import Any

from fleet.drone import (
    FlightItem,
    Gripper,
    GripperAction,
    Land,
    ReturnToLaunch,
    Takeoff,
    Waypoint,
    Winch,
    WinchAction,
)

_ITEM_TYPES: dict[str, type[FlightItem]] = {
    "takeoff": Takeoff,
    "waypoint": Waypoint,
    "land": Land,
    "rtl": ReturnToLaunch,
    "gripper": Gripper,
    "winch": Winch,
}
_ITEM_NAMES = {v: k for k, v in _ITEM_TYPES.items()}


def item_to_json(item: FlightItem) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _ITEM_NAMES[type(item)]}
    for name in item.__slots__:
        value = getattr(item, name)
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[name] = value.value if isinstance(value, GripperAction | WinchAction) else value
    return out


def item_from_json(data: dict[str, Any]) -> FlightItem:
    kind = _ITEM_TYPES[data["type"]]
    fields = {k: v for k, v in data.items() if k != "type"}
    if kind is Gripper:
        fields["action"] = GripperAction(fields["action"])
    if kind is Winch:
        fields["action"] = WinchAction(fields["action"])
    return kind(**fields)
