"""Pure translation rules and the events-protocol codec."""

from __future__ import annotations

import math

import pytest
from pymavlink.dialects.v20 import common as mavlink
from pymavlink.generator import mavparse

from firmware_bridges.mavlink import translate, translate_plans
from firmware_bridges.mavlink.codec import Codec, LinkStats, iter_frames
from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.mission_items import MissionItem
from fleet.clock import ManualClock
from fleet.drone import FlightPlan, Land, Takeoff, Waypoint, Winch, WinchAction
from fleet.errors import ValidationError
from fleet.events import Severity
from fleet.vehicle import MissionRunState, VehicleKind

EVENTS_XML = """<?xml version="1.0"?>
<mavlink><version>3</version><messages>
<message id="410" name="EVENT"><description>e</description>
 <field type="uint8_t" name="destination_component">c</field>
 <field type="uint8_t" name="destination_system">s</field>
 <field type="uint32_t" name="id">i</field>
 <field type="uint32_t" name="event_time_boot_ms">t</field>
 <field type="uint16_t" name="sequence">q</field>
 <field type="uint8_t" name="log_levels">l</field>
 <field type="uint8_t[40]" name="arguments">a</field></message>
<message id="411" name="CURRENT_EVENT_SEQUENCE"><description>e</description>
 <field type="uint16_t" name="sequence">q</field>
 <field type="uint8_t" name="flags">f</field></message>
<message id="412" name="REQUEST_EVENT"><description>e</description>
 <field type="uint8_t" name="target_system">s</field>
 <field type="uint8_t" name="target_component">c</field>
 <field type="uint16_t" name="first_sequence">f</field>
 <field type="uint16_t" name="last_sequence">l</field></message>
<message id="413" name="RESPONSE_EVENT_ERROR"><description>e</description>
 <field type="uint8_t" name="target_system">s</field>
 <field type="uint8_t" name="target_component">c</field>
 <field type="uint16_t" name="sequence">q</field>
 <field type="uint16_t" name="sequence_oldest_available">o</field>
 <field type="uint8_t" name="reason">r</field></message>
</messages></mavlink>
"""


def test_event_messages_match_the_mavlink_definition(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "events.xml"
    path.write_text(EVENTS_XML)
    xml = mavparse.MAVXML(str(path), mavparse.PROTOCOL_2_0)
    for msg in xml.message:
        cls = px4_events.EXTRA_MESSAGES[msg.id]
        assert cls.crc_extra == msg.crc_extra, msg.name
        assert cls.ordered_fieldnames == msg.ordered_fieldnames, msg.name
        assert cls.unpacker.size == msg.wire_length, msg.name


def test_event_roundtrip_and_corruption() -> None:
    clock = ManualClock()
    tx, rx = Codec(1, 1, clock), Codec(255, 190, clock)
    frame = tx.pack(px4_events.EventMessage(0, 0, 0x01020304, 77, 9, 0x63, b"\x07\x00"))
    msg = rx.decode(frame)
    assert isinstance(msg, px4_events.EventMessage)
    assert (msg.event_id, msg.sequence, msg.external_level, msg.arguments[:2]) == (
        0x01020304,
        9,
        3,
        b"\x07\x00",
    )
    bad = bytearray(frame)
    bad[12] ^= 1
    with pytest.raises(Exception, match="CRC"):
        rx.decode(bytes(bad))


def test_px4_event_ids() -> None:
    # fnv1a-32 reference values
    assert px4_events.fnv1a_32("") == 0x811C9DC5
    assert px4_events.fnv1a_32("a") == 0xE40C292C
    eid = px4_events.px4_event_id("navigator_mis_geofence_violation")
    assert eid >> 24 == 1
    assert eid & 0xFFFFFF == px4_events.fnv1a_32("navigator_mis_geofence_violation") & 0xFFFFFF


def test_iter_frames_mixed_versions_and_junk() -> None:
    clock = ManualClock()
    codec = Codec(1, 1, clock)
    v2 = codec.pack(mavlink.MAVLink_heartbeat_message(2, 12, 0, 0, 3, 3))
    codec.mav.WIRE_PROTOCOL_VERSION = "1.0"
    v1 = bytes(
        mavlink.MAVLink_heartbeat_message(2, 12, 0, 0, 3, 3).pack(codec.mav, force_mavlink1=True)
    )
    stats = LinkStats()
    data = b"\x00\x01" + v2 + v1 + b"\x99" + v2[:5]
    frames = list(iter_frames(data, stats))
    assert [(f[2], f[3], f[4]) for f in frames] == [(0, 1, 1), (0, 1, 1)]
    assert stats.garbage_bytes == 3 and stats.truncated == 1
    start, end = frames[1][:2]
    assert Codec(255, 190, clock).decode(data[start:end]).get_type() == "HEARTBEAT"


def test_translation_enums() -> None:
    assert translate.vehicle_kind(mavlink.MAV_TYPE_QUADROTOR) == VehicleKind.DRONE
    assert translate.vehicle_kind(mavlink.MAV_TYPE_GROUND_ROVER) == VehicleKind.ROVER
    assert translate.vehicle_kind(mavlink.MAV_TYPE_SUBMARINE) is None
    assert translate.severity(mavlink.MAV_SEVERITY_CRITICAL) == Severity.ERROR
    assert translate.severity(mavlink.MAV_SEVERITY_WARNING) == Severity.WARNING
    assert translate.severity(mavlink.MAV_SEVERITY_NOTICE) == Severity.INFO
    assert translate.severity(mavlink.MAV_SEVERITY_DEBUG) == Severity.DEBUG
    # "no mission" with a count is a plan not checked yet, unless the vehicle said why not
    assert translate.mission_run_state(1, 5) == MissionRunState.UNCHECKED
    assert translate.mission_run_state(1, 5, rejected=True) == MissionRunState.INVALID
    assert translate.mission_run_state(1, 0xFFFF) == MissionRunState.NO_MISSION
    assert translate.mission_run_state(1, 0) == MissionRunState.NO_MISSION
    assert translate.mission_run_state(5, 5) == MissionRunState.COMPLETE
    assert translate.statustext(b"Takeoff detected\t\x00junk") == "Takeoff detected"
    assert translate.result_name(mavlink.MAV_RESULT_TEMPORARILY_REJECTED) == "TEMPORARILY_REJECTED"


@pytest.mark.parametrize(
    ("value", "ptype"),
    [
        (2, mavlink.MAV_PARAM_TYPE_INT32),
        (-7, mavlink.MAV_PARAM_TYPE_INT32),
        (200, mavlink.MAV_PARAM_TYPE_UINT8),
        (12.25, mavlink.MAV_PARAM_TYPE_REAL32),
    ],
)
def test_param_bytewise_roundtrip(value: float, ptype: int) -> None:
    wire = translate.encode_param_value(value, ptype)
    assert translate.decode_param_value(wire, ptype) == value
    if ptype == mavlink.MAV_PARAM_TYPE_INT32 and value == 2:
        assert wire != 2.0  # bytewise, not a cast
        assert translate.encode_param_value(value, ptype, bytewise=False) == 2.0


def test_param_validation() -> None:
    with pytest.raises(ValidationError):
        translate.encode_param_value(1.5, mavlink.MAV_PARAM_TYPE_INT32)
    with pytest.raises(ValidationError):
        translate.encode_param_value(300, mavlink.MAV_PARAM_TYPE_UINT8)
    with pytest.raises(ValidationError):
        translate.param_id("A_NAME_LONGER_THAN_16")


def test_plan_validation_and_defaults() -> None:
    with pytest.raises(ValidationError, match="items\\[0\\]"):
        translate_plans.plan_to_items(FlightPlan((Waypoint(91.0, 0.0, 10.0),)), None, None)
    with pytest.raises(ValidationError, match="take-off position"):
        translate_plans.plan_to_items(FlightPlan((Takeoff(10.0),)), None, None)
    with pytest.raises(ValidationError, match="landing position"):
        translate_plans.plan_to_items(FlightPlan((Land(),)), None, None)
    (takeoff,) = translate_plans.plan_to_items(FlightPlan((Takeoff(),)), (22.5, 114.0), 2.5)
    assert takeoff.z == 2.5 and math.isnan(takeoff.param4)
    (winch,) = translate_plans.plan_to_items(
        FlightPlan((Winch(WinchAction.RATE, rate_mps=0.5),)), None, None
    )
    assert (winch.command, winch.frame, winch.param2, winch.param4) == (
        mavlink.MAV_CMD_DO_WINCH,
        mavlink.MAV_FRAME_MISSION,
        float(mavlink.WINCH_RATE_CONTROL),
        0.5,
    )
    with pytest.raises(ValidationError):
        translate_plans.items_to_plan([MissionItem(mavlink.MAV_CMD_DO_JUMP, 2)])


def test_sensor_faults_from_sys_status() -> None:
    from fleet.vehicle import VehicleStatus

    status = VehicleStatus()
    gps, gyro = mavlink.MAV_SYS_STATUS_SENSOR_GPS, mavlink.MAV_SYS_STATUS_SENSOR_3D_GYRO
    prearm = mavlink.MAV_SYS_STATUS_PREARM_CHECK
    msg = mavlink.MAVLink_sys_status_message(
        gps | gyro | prearm, gps | gyro | prearm, gyro, 0, 12000, -1, 50, 0, 0, 0, 0, 0, 0
    )
    translate.apply_sys_status(status, msg)
    assert status.errors == ("gps",)
    assert not status.ready_to_arm
