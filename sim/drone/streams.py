"""What a sim drone streams, at PX4's "normal" MAVLink mode rates, and what it sends on request.

:data:`NORMAL_STREAMS` lists the messages and default rates PX4 configures for a link in
``MAVLINK_MODE_NORMAL`` (``Mavlink::configure_streams_to_default`` in ``mavlink_main.cpp``, plus
the HEARTBEAT every link gets), restricted to the messages a SIH vehicle without RC, camera,
gimbal, ADS-B, ESC telemetry or distance sensor actually has data for: about 55 messages/s.
MISSION_CURRENT (1 Hz) and MISSION_ITEM_REACHED come from the mission protocol, as PX4's mission
manager sends them outside the stream scheduler. :data:`NOT_SENT` names what PX4 would add on a
SIH vehicle and the sim does not send, with the reason.

A ground station changes a rate with MAV_CMD_SET_MESSAGE_INTERVAL and asks for one message with
MAV_CMD_REQUEST_MESSAGE, answered as PX4's ``MavlinkReceiver`` does: a rate is accepted for any
message PX4 has a stream for (:data:`PX4_STREAMS`, even when it has no data to send), FAILED for
HEARTBEAT, for messages without a stream (MISSION_CURRENT is sent by the mission manager and has
none) and for unsupported param3/param4/param7; a request is ACCEPTED only when the message was
sent, else DENIED (HOME_POSITION before home is set). :data:`BUILDERS` makes any message the sim
can produce on demand; the builders themselves are in :mod:`sim.drone.telemetry`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymavlink.dialects.v20 import common as mavlink

from sim.drone import telemetry as t
from sim.drone.telemetry import Builder


@dataclass(frozen=True, slots=True)
class StreamDef:
    """A periodic message: its id, default rate in Hz (world time) and builder."""

    msg_id: int
    rate_hz: float
    build: Builder


NORMAL_STREAMS: tuple[StreamDef, ...] = (
    StreamDef(mavlink.MAVLINK_MSG_ID_HEARTBEAT, 1.0, t.heartbeat),
    StreamDef(mavlink.MAVLINK_MSG_ID_ALTITUDE, 1.0, t.altitude),
    StreamDef(mavlink.MAVLINK_MSG_ID_ATTITUDE, 15.0, t.attitude),
    StreamDef(mavlink.MAVLINK_MSG_ID_ATTITUDE_QUATERNION, 10.0, t.attitude_quaternion),
    StreamDef(mavlink.MAVLINK_MSG_ID_ATTITUDE_TARGET, 2.0, t.attitude_target),
    StreamDef(mavlink.MAVLINK_MSG_ID_BATTERY_STATUS, 0.5, t.battery_status),
    StreamDef(mavlink.MAVLINK_MSG_ID_ESTIMATOR_STATUS, 0.5, t.estimator_status),
    StreamDef(mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE, 1.0, t.extended_sys_state),
    StreamDef(mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 5.0, t.global_position_int),
    StreamDef(mavlink.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN, 1.0, t.gps_global_origin),
    StreamDef(mavlink.MAVLINK_MSG_ID_GPS_RAW_INT, 5.0, t.gps_raw_int),
    StreamDef(mavlink.MAVLINK_MSG_ID_HOME_POSITION, 0.5, t.home_position),
    StreamDef(mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED, 1.0, t.local_position_ned),
    StreamDef(mavlink.MAVLINK_MSG_ID_NAV_CONTROLLER_OUTPUT, 1.0, t.nav_controller_output),
    StreamDef(mavlink.MAVLINK_MSG_ID_OPEN_DRONE_ID_LOCATION, 1.0, t.open_drone_id_location),
    StreamDef(mavlink.MAVLINK_MSG_ID_OPEN_DRONE_ID_SYSTEM, 1.0, t.open_drone_id_system),
    StreamDef(mavlink.MAVLINK_MSG_ID_PING, 0.1, t.ping),
    StreamDef(mavlink.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT, 1.0, t.position_target_global_int),
    StreamDef(mavlink.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED, 1.5, t.position_target_local_ned),
    StreamDef(mavlink.MAVLINK_MSG_ID_SCALED_PRESSURE, 1.0, t.scaled_pressure),
    StreamDef(mavlink.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW, 1.0, t.servo_output_raw),
    StreamDef(mavlink.MAVLINK_MSG_ID_SYS_STATUS, 1.0, t.sys_status),
    StreamDef(mavlink.MAVLINK_MSG_ID_VFR_HUD, 4.0, t.vfr_hud),
    StreamDef(mavlink.MAVLINK_MSG_ID_VIBRATION, 0.1, t.vibration),
    StreamDef(mavlink.MAVLINK_MSG_ID_WIND_COV, 0.5, t.wind_cov),
)
"""The periodic messages of a sim vehicle and their default rates (PX4 ``MAVLINK_MODE_NORMAL``)."""

MISSION_CURRENT_RATE_HZ = 1.0
"""MISSION_CURRENT, sent by the mission protocol (PX4's mission manager) outside the streams."""

NOT_SENT: dict[str, str] = {
    "CURRENT_MODE (0.5 Hz)": "not in the codec's common dialect (pymavlink 2.4.50)",
    "LINK_NODE_STATUS (1 Hz)": "not in the codec's common dialect (pymavlink 2.4.50)",
    "TIME_ESTIMATE_TO_TARGET (1 Hz)": "not in the codec's common dialect (pymavlink 2.4.50)",
    "ESC_INFO, ESC_STATUS (1 Hz each)": "the sim has no ESC telemetry model",
    "AVAILABLE_MODES_MONITOR": "PX4 sends it only after the set of modes changes",
}
"""Normal-mode messages a PX4 SIH quadrotor may send that the sim does not, and why."""

BUILDERS: dict[int, Builder] = {
    **{s.msg_id: s.build for s in NORMAL_STREAMS},
    mavlink.MAVLINK_MSG_ID_SYSTEM_TIME: t.system_time,
    mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION: t.autopilot_version,
}
"""Every message the sim can build: the streams, SYSTEM_TIME and AUTOPILOT_VERSION (streamable
with SET_MESSAGE_INTERVAL, sent once with REQUEST_MESSAGE)."""

ON_REQUEST = BUILDERS
"""Messages MAV_CMD_REQUEST_MESSAGE can produce (alias of :data:`BUILDERS`)."""

_UNKNOWN_TO_CODEC = {
    "LINK_NODE_STATUS": 8,
    "ESC_INFO": 290,
    "ESC_STATUS": 291,
    "PROTOCOL_VERSION": 300,
    "FIGURE_EIGHT_EXECUTION_STATUS": 361,
    "BATTERY_INFO": 370,
    "TIME_ESTIMATE_TO_TARGET": 380,
    "COMPONENT_INFORMATION": 395,
    "COMPONENT_METADATA": 397,
    "AVAILABLE_MODES": 435,
    "CURRENT_MODE": 436,
    "UAVIONIX_ADSB_OUT_CFG": 10001,
    "UAVIONIX_ADSB_OUT_DYNAMIC": 10002,
}

_PX4_STREAM_NAMES = (
    "HEARTBEAT",
    "STATUSTEXT",
    "COMMAND_LONG",
    "SYS_STATUS",
    "BATTERY_STATUS",
    "HIGHRES_IMU",
    "SCALED_IMU",
    "SCALED_IMU2",
    "SCALED_IMU3",
    "SCALED_PRESSURE",
    "SCALED_PRESSURE2",
    "SCALED_PRESSURE3",
    "ACTUATOR_OUTPUT_STATUS",
    "ATTITUDE",
    "ATTITUDE_QUATERNION",
    "VFR_HUD",
    "GPS_GLOBAL_ORIGIN",
    "GPS_RAW_INT",
    "GPS2_RAW",
    "SYSTEM_TIME",
    "TIMESYNC",
    "GLOBAL_POSITION_INT",
    "LANDING_TARGET",
    "LOCAL_POSITION_NED",
    "MAG_CAL_REPORT",
    "ODOMETRY",
    "ESTIMATOR_STATUS",
    "VIBRATION",
    "AUTOPILOT_STATE_FOR_GIMBAL_DEVICE",
    "GIMBAL_DEVICE_ATTITUDE_STATUS",
    "GIMBAL_MANAGER_INFORMATION",
    "GIMBAL_DEVICE_INFORMATION",
    "GIMBAL_MANAGER_STATUS",
    "GIMBAL_DEVICE_SET_ATTITUDE",
    "HOME_POSITION",
    "HYGROMETER_SENSOR",
    "SERVO_OUTPUT_RAW",
    "HIL_ACTUATOR_CONTROLS",
    "POSITION_TARGET_GLOBAL_INT",
    "POSITION_TARGET_LOCAL_NED",
    "ATTITUDE_TARGET",
    "RC_CHANNELS",
    "MANUAL_CONTROL",
    "TRAJECTORY_REPRESENTATION_WAYPOINTS",
    "OPTICAL_FLOW_RAD",
    "NAMED_VALUE_FLOAT",
    "DEBUG",
    "DEBUG_VECT",
    "DEBUG_FLOAT_ARRAY",
    "NAV_CONTROLLER_OUTPUT",
    "CAMERA_TRIGGER",
    "CAMERA_IMAGE_CAPTURED",
    "DISTANCE_SENSOR",
    "EXTENDED_SYS_STATE",
    "ALTITUDE",
    "ADSB_VEHICLE",
    "COLLISION",
    "WIND_COV",
    "MOUNT_ORIENTATION",
    "HIGH_LATENCY2",
    "HIL_STATE_QUATERNION",
    "PING",
    "ORBIT_EXECUTION_STATUS",
    "OBSTACLE_DISTANCE",
    "OPEN_DRONE_ID_BASIC_ID",
    "OPEN_DRONE_ID_LOCATION",
    "OPEN_DRONE_ID_SYSTEM",
    "AUTOPILOT_VERSION",
    "FLIGHT_INFORMATION",
    "GPS_STATUS",
    "STORAGE_INFORMATION",
    "RAW_RPM",
    "EFI_STATUS",
    "GPS_RTCM_DATA",
)
"""Names of the streams in PX4's ``streams_list`` the codec knows by name."""


def _msg_id(name: str) -> int:
    known = _UNKNOWN_TO_CODEC.get(name)
    return known if known is not None else int(getattr(mavlink, f"MAVLINK_MSG_ID_{name}"))


PX4_STREAMS: frozenset[int] = frozenset(
    [_msg_id(n) for n in _PX4_STREAM_NAMES] + list(_UNKNOWN_TO_CODEC.values())
)
"""Message ids PX4 has a ``MavlinkStream`` for (``streams_list`` in ``mavlink_messages.cpp``):
the messages SET_MESSAGE_INTERVAL accepts. MISSION_CURRENT is not one of them."""


def normal_rate_total() -> float:
    """Messages per second of :data:`NORMAL_STREAMS` plus MISSION_CURRENT."""
    return sum(s.rate_hz for s in NORMAL_STREAMS) + MISSION_CURRENT_RATE_HZ
