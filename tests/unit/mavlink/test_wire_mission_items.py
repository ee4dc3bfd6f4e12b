"""The shared mission item: MISSION_ITEM_INT and the legacy MISSION_ITEM, built and read once."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem, MissionType

WAYPOINT = MissionItem(
    mavlink.MAV_CMD_NAV_WAYPOINT,
    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
    param1=2.0,
    param2=3.0,
    param3=0.5,
    param4=90.0,
    x=225_273_000,
    y=1_140_544_000,
    z=30.0,
    autocontinue=1,
    current=1,
)


def _over_the_wire(msg: Any) -> Any:
    """``msg`` packed by one pymavlink codec and parsed by another."""
    sender = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    receiver = mavlink.MAVLink(None)
    (parsed,) = receiver.parse_buffer(msg.pack(sender))
    return parsed


def test_int_message_fields_and_round_trip() -> None:
    msg = WAYPOINT.int_message((3, 4), 7, MissionType.FENCE, current=1)
    assert msg.get_type() == "MISSION_ITEM_INT"
    parsed = _over_the_wire(msg)
    assert (parsed.target_system, parsed.target_component, parsed.seq) == (3, 4, 7)
    assert (parsed.frame, parsed.command, parsed.current, parsed.autocontinue) == (
        mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
        mavlink.MAV_CMD_NAV_WAYPOINT,
        1,
        1,
    )
    assert (parsed.param1, parsed.param2, parsed.param3, parsed.param4) == (2.0, 3.0, 0.5, 90.0)
    assert (parsed.x, parsed.y, parsed.z, parsed.mission_type) == (
        225_273_000,
        1_140_544_000,
        30.0,
        1,
    )
    assert MissionItem.from_message(parsed) == WAYPOINT


def test_current_is_what_the_sender_says_not_the_item() -> None:
    assert _over_the_wire(WAYPOINT.int_message((1, 1), 0, MissionType.MISSION)).current == 0


def test_legacy_float_item_carries_degrees_and_reads_back_as_deg_e7() -> None:
    parsed = _over_the_wire(WAYPOINT.float_message((3, 4), 2, MissionType.MISSION, current=1))
    assert parsed.get_type() == "MISSION_ITEM"
    assert math.isclose(parsed.x, 22.5273, abs_tol=1e-5)
    assert math.isclose(parsed.y, 114.0544, abs_tol=1e-5)
    back = MissionItem.from_message(parsed)  # float32 degrees: within 1e-5 degree (1 m)
    assert abs(back.x - WAYPOINT.x) <= 100 and abs(back.y - WAYPOINT.y) <= 100
    assert replace(back, x=WAYPOINT.x, y=WAYPOINT.y) == WAYPOINT


def test_items_without_position_carry_params_5_and_6_as_integers() -> None:
    jump = MissionItem(mavlink.MAV_CMD_DO_JUMP, mavlink.MAV_FRAME_MISSION, param1=1, param2=3, x=5)
    assert not jump.has_position
    parsed = _over_the_wire(jump.float_message((1, 1), 0, MissionType.MISSION))
    assert parsed.x == 5.0
    assert MissionItem.from_message(parsed) == jump
    assert MissionItem.from_message(_over_the_wire(jump.int_message((1, 1), 0, 0))) == jump


def test_a_legacy_item_without_coordinates_reads_as_zero() -> None:
    msg = mavlink.MAVLink_mission_item_message(
        1, 1, 0, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, 16, 0, 1, 0, 0, 0, 0, math.nan, math.nan, 10
    )
    item = MissionItem.from_message(_over_the_wire(msg))
    assert (item.x, item.y, item.z) == (0, 0, 10.0)


def test_positions_and_altitudes() -> None:
    assert math.isclose(WAYPOINT.lat, 22.5273) and math.isclose(WAYPOINT.lon, 114.0544)
    assert WAYPOINT.has_position and WAYPOINT.relative_alt
    assert WAYPOINT.alt_amsl(12.0) == 42.0
    amsl = MissionItem(mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_FRAME_GLOBAL_INT, z=50.0)
    assert not amsl.relative_alt and amsl.alt_amsl(12.0) == 50.0
