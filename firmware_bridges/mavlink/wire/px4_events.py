"""The MAVLink events protocol (messages 410-413) and the PX4 events known without metadata.

pymavlink 2.4.50's dialects do not define EVENT, CURRENT_EVENT_SEQUENCE, REQUEST_EVENT or
RESPONSE_EVENT_ERROR, yet PX4 reports some failures *only* as EVENT (for example a mission
found infeasible after an accepted upload). This module defines those four messages from
``common.xml`` as pymavlink message classes (so they pack, sign and print like any other) plus
their decoder, keyed by message id and checked with their CRC_EXTRA; the decoder also serves
the component-information messages of :mod:`.component_info`, which the dialect lacks too.

An EVENT carries an id and up to 40 bytes of little-endian arguments; what it means lives in
the firmware's event metadata (``all_events.json``), which the bridge downloads from each
vehicle through the component-information protocol (``firmware_bridges.mavlink.metadata``) and
renders with libevents' rules (:mod:`.event_metadata`). PX4 event ids are
``(fnv1a_32(name) & 0xFFFFFF) | component << 24`` (``px4_platform_common/events.h``), computed
here by :func:`px4_event_id`.

**Fallback.** Until a vehicle's metadata has arrived, or for a vehicle that offers none, events
are rendered with :data:`FALLBACK_METADATA`, built in the same format from two hand-written
tables:

* :data:`KNOWN_EVENTS`: templates of the PX4 events that matter to fleet operation (mission
  feasibility, geofence, payload), with their argument struct codes;
* :data:`ARMING_FALLBACK_EVENTS` and :data:`ARMING_FALLBACK_ENUMS`: the two summaries of PX4's
  health-and-arming-checks report (``commander_arming_check_summary``,
  ``commander_health_summary``; ids and argument layout fixed by commander's
  ``HealthAndArmingChecks/Common.cpp``) and the names of the navigation-mode-group and
  health-component bits they carry, so the arming report works without metadata.

Any other event is rendered as its id and raw arguments. This is a wire module: ``sim/`` may
import it to emit PX4-like events.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import component_info
from firmware_bridges.mavlink.wire.event_metadata import (
    EnumSpec,
    EventMetadata,
    EventSpec,
    RenderedEvent,
    events_document,
    fnv1a_32,
    render_unknown,
    struct_types,
)

MSG_ID_EVENT = 410
"""EVENT: one event with id, sequence, log levels and arguments."""
MSG_ID_CURRENT_EVENT_SEQUENCE = 411
"""CURRENT_EVENT_SEQUENCE: the sender's latest sequence, broadcast about once a second."""
MSG_ID_REQUEST_EVENT = 412
"""REQUEST_EVENT: ask for a range of events again (gap in the sequence)."""
MSG_ID_RESPONSE_EVENT_ERROR = 413
"""RESPONSE_EVENT_ERROR: a requested event is no longer available."""

PX4_EVENT_COMPONENT = 1
"""Top byte of PX4's own (autopilot) event ids."""
ARGUMENTS_LEN = 40
"""Size of EVENT.arguments."""
LOG_LEVEL_PROTOCOL = 8
"""External log level of events meant for ground-station software, not operators."""
LOG_LEVEL_DISABLED = 9
"""External log level of events not to be shown at all."""


class EventMessage(mavlink.MAVLink_message):  # type: ignore[misc]  # pymavlink is untyped (Any) here
    """EVENT (410)."""

    id = MSG_ID_EVENT
    msgname = "EVENT"
    fieldnames = [  # noqa: RUF012 - pymavlink declares these as class lists
        "destination_component",
        "destination_system",
        "id",
        "event_time_boot_ms",
        "sequence",
        "log_levels",
        "arguments",
    ]
    ordered_fieldnames = [  # noqa: RUF012 - pymavlink declares these as class lists
        "id",
        "event_time_boot_ms",
        "sequence",
        "destination_component",
        "destination_system",
        "log_levels",
        "arguments",
    ]
    crc_extra = 160
    unpacker = struct.Struct("<IIHBBB40s")

    def __init__(
        self,
        destination_component: int,
        destination_system: int,
        id: int,
        event_time_boot_ms: int,
        sequence: int,
        log_levels: int,
        arguments: bytes,
    ) -> None:
        mavlink.MAVLink_message.__init__(self, MSG_ID_EVENT, "EVENT")
        self._fieldnames = EventMessage.fieldnames
        self.destination_component = destination_component
        self.destination_system = destination_system
        self.event_id = id
        self.event_time_boot_ms = event_time_boot_ms
        self.sequence = sequence
        self.log_levels = log_levels
        self.arguments = bytes(arguments).ljust(ARGUMENTS_LEN, b"\x00")[:ARGUMENTS_LEN]

    def format_attr(self, field: str) -> str | float | int:
        if field == "id":
            return self.event_id
        value: str | float | int = super().format_attr(field)
        return value

    def pack(self, mav: mavlink.MAVLink, force_mavlink1: bool = False) -> bytes:
        payload = self.unpacker.pack(
            self.event_id,
            self.event_time_boot_ms,
            self.sequence,
            self.destination_component,
            self.destination_system,
            self.log_levels,
            self.arguments,
        )
        return bytes(self._pack(mav, self.crc_extra, payload))

    @property
    def external_level(self) -> int:
        """Log level shown to operators (low nibble: 0 emergency .. 7 debug, 8 protocol)."""
        return self.log_levels & 0x0F


class CurrentEventSequenceMessage(mavlink.MAVLink_message):  # type: ignore[misc]  # pymavlink is untyped (Any) here
    """CURRENT_EVENT_SEQUENCE (411)."""

    id = MSG_ID_CURRENT_EVENT_SEQUENCE
    msgname = "CURRENT_EVENT_SEQUENCE"
    fieldnames = ["sequence", "flags"]  # noqa: RUF012
    ordered_fieldnames = ["sequence", "flags"]  # noqa: RUF012
    crc_extra = 106
    unpacker = struct.Struct("<HB")

    def __init__(self, sequence: int, flags: int) -> None:
        mavlink.MAVLink_message.__init__(self, self.id, self.msgname)
        self._fieldnames = self.fieldnames
        self.sequence = sequence
        self.flags = flags

    def pack(self, mav: mavlink.MAVLink, force_mavlink1: bool = False) -> bytes:
        return bytes(self._pack(mav, self.crc_extra, self.unpacker.pack(self.sequence, self.flags)))


class RequestEventMessage(mavlink.MAVLink_message):  # type: ignore[misc]  # pymavlink is untyped (Any) here
    """REQUEST_EVENT (412)."""

    id = MSG_ID_REQUEST_EVENT
    msgname = "REQUEST_EVENT"
    fieldnames = ["target_system", "target_component", "first_sequence", "last_sequence"]  # noqa: RUF012
    ordered_fieldnames = ["first_sequence", "last_sequence", "target_system", "target_component"]  # noqa: RUF012
    crc_extra = 33
    unpacker = struct.Struct("<HHBB")

    def __init__(
        self, target_system: int, target_component: int, first_sequence: int, last_sequence: int
    ) -> None:
        mavlink.MAVLink_message.__init__(self, self.id, self.msgname)
        self._fieldnames = self.fieldnames
        self.target_system = target_system
        self.target_component = target_component
        self.first_sequence = first_sequence
        self.last_sequence = last_sequence

    def pack(self, mav: mavlink.MAVLink, force_mavlink1: bool = False) -> bytes:
        payload = self.unpacker.pack(
            self.first_sequence, self.last_sequence, self.target_system, self.target_component
        )
        return bytes(self._pack(mav, self.crc_extra, payload))


class ResponseEventErrorMessage(mavlink.MAVLink_message):  # type: ignore[misc]  # pymavlink is untyped (Any) here
    """RESPONSE_EVENT_ERROR (413)."""

    id = MSG_ID_RESPONSE_EVENT_ERROR
    msgname = "RESPONSE_EVENT_ERROR"
    fieldnames = [  # noqa: RUF012 - pymavlink declares these as class lists
        "target_system",
        "target_component",
        "sequence",
        "sequence_oldest_available",
        "reason",
    ]
    ordered_fieldnames = [  # noqa: RUF012 - pymavlink declares these as class lists
        "sequence",
        "sequence_oldest_available",
        "target_system",
        "target_component",
        "reason",
    ]
    crc_extra = 77
    unpacker = struct.Struct("<HHBBB")

    def __init__(
        self,
        target_system: int,
        target_component: int,
        sequence: int,
        sequence_oldest_available: int,
        reason: int,
    ) -> None:
        mavlink.MAVLink_message.__init__(self, self.id, self.msgname)
        self._fieldnames = self.fieldnames
        self.target_system = target_system
        self.target_component = target_component
        self.sequence = sequence
        self.sequence_oldest_available = sequence_oldest_available
        self.reason = reason

    def pack(self, mav: mavlink.MAVLink, force_mavlink1: bool = False) -> bytes:
        payload = self.unpacker.pack(
            self.sequence,
            self.sequence_oldest_available,
            self.target_system,
            self.target_component,
            self.reason,
        )
        return bytes(self._pack(mav, self.crc_extra, payload))


EXTRA_MESSAGES: dict[int, type[mavlink.MAVLink_message]] = {
    MSG_ID_EVENT: EventMessage,
    MSG_ID_CURRENT_EVENT_SEQUENCE: CurrentEventSequenceMessage,
    MSG_ID_REQUEST_EVENT: RequestEventMessage,
    MSG_ID_RESPONSE_EVENT_ERROR: ResponseEventErrorMessage,
    **component_info.MESSAGES,
}
"""Messages added to pymavlink's ``common`` dialect, by id: the events protocol and the
component-information messages (COMPONENT_INFORMATION, COMPONENT_METADATA)."""


def _field_values(cls: type[mavlink.MAVLink_message], payload: bytes) -> dict[str, Any]:
    size = cls.unpacker.size
    padded = payload[:size].ljust(size, b"\x00")  # MAVLink 2 trims trailing zero bytes
    values = cls.unpacker.unpack(padded)
    return dict(zip(cls.ordered_fieldnames, values, strict=True))


class EventDecodeError(ValueError):
    """A frame claimed to be one of the :data:`EXTRA_MESSAGES` but is malformed."""


def decode_extra(mav: mavlink.MAVLink, frame: bytes | bytearray) -> mavlink.MAVLink_message:
    """Decode one complete MAVLink 2 frame of one of the :data:`EXTRA_MESSAGES`.

    Checks the CRC with the message's CRC_EXTRA and, when ``mav`` has a signing key, the
    signature (unsigned frames are rejected as pymavlink does for its own messages).
    Raises :class:`EventDecodeError` on any mismatch.
    """
    buf = bytes(frame)
    if len(buf) < 12 or buf[0] != mavlink.PROTOCOL_MARKER_V2:
        raise EventDecodeError("not a MAVLink 2 frame")
    mlen, incompat = buf[1], buf[2]
    signed = bool(incompat & mavlink.MAVLINK_IFLAG_SIGNED)
    sig_len = mavlink.MAVLINK_SIGNATURE_BLOCK_LEN if signed else 0
    if len(buf) != 10 + mlen + 2 + sig_len:
        raise EventDecodeError("frame length does not match its header")
    msgid = buf[7] | buf[8] << 8 | buf[9] << 16
    cls = EXTRA_MESSAGES.get(msgid)
    if cls is None:
        raise EventDecodeError(f"message {msgid} is not one of the extra messages")
    crc = struct.unpack_from("<H", buf, 10 + mlen)[0]
    crcbuf = bytearray(buf[1 : 10 + mlen])
    crcbuf.append(cls.crc_extra)
    if mavlink.x25crc(crcbuf).crc != crc:
        raise EventDecodeError(f"bad CRC in {cls.msgname}")
    src_sys, src_comp = buf[5], buf[6]
    sig_ok = False
    if mav.signing.secret_key is not None:
        if not signed:
            raise EventDecodeError(f"unsigned {cls.msgname} rejected (signing is on)")
        sig_ok = mav.check_signature(bytearray(buf), src_sys, src_comp)
        if not sig_ok:
            raise EventDecodeError(f"bad signature on {cls.msgname}")
    fields = _field_values(cls, buf[10 : 10 + mlen])
    msg = cls(**fields)
    msg._header = mavlink.MAVLink_header(msgid, incompat, buf[3], mlen, buf[4], src_sys, src_comp)
    msg._msgbuf = bytearray(buf)
    msg._payload = buf[10 : 10 + mlen]
    msg._crc = crc
    msg._signed = sig_ok
    return msg


def px4_event_id(name: str, component: int = PX4_EVENT_COMPONENT) -> int:
    """The EVENT id PX4 sends for ``events::ID(name)``."""
    return (fnv1a_32(name) & 0xFFFFFF) | (component & 0xFF) << 24


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """How to render one known event."""

    name: str
    """PX4's event name (``events::ID("...")``)."""
    text: str
    """Message with ``{1}``, ``{2:.1m_v}``... placeholders (libevents syntax)."""
    args: str = ""
    """struct codes of the arguments in order (little-endian, packed)."""

    @property
    def event_id(self) -> int:
        return px4_event_id(self.name)

    def spec(self) -> EventSpec:
        """The template as a metadata definition (arguments named ``arg1``, ``arg2``...)."""
        types = struct_types(self.args)
        return EventSpec(
            self.name, self.text, tuple((f"arg{i + 1}", t) for i, t in enumerate(types))
        )


KNOWN_EVENTS: dict[int, EventTemplate] = {
    t.event_id: t
    for t in (
        EventTemplate(
            "navigator_mis_unsup_cmd",
            "Mission rejected: item {1}: unsupported command: {2}",
            "HH",
        ),
        EventTemplate("navigator_mis_starts_w_landing", "Mission rejected: starts with landing"),
        EventTemplate(
            "navigator_mis_takeoff_too_low",
            "Mission rejected: takeoff altitude too low! Minimum: {1:.1m_v}",
            "f",
        ),
        EventTemplate(
            "navigator_mis_takeoff_not_first",
            "Mission rejected: takeoff is not the first waypoint item",
        ),
        EventTemplate(
            "navigator_mis_takeoff_missing", "Mission rejected: Takeoff waypoint required"
        ),
        EventTemplate(
            "navigator_mis_land_missing", "Mission rejected: Landing waypoint/pattern required"
        ),
        EventTemplate(
            "navigator_mis_takeoff_or_land_missing",
            "Mission rejected: Takeoff or Landing item missing",
        ),
        EventTemplate(
            "navigator_mis_first_wp_far",
            "First waypoint far away from Home: {1m} Correct mission loaded?",
            "I",
        ),
        EventTemplate(
            "navigator_mis_no_home_rel_alt",
            "Mission rejected: No home position, waypoint {1} uses relative altitude",
            "h",
        ),
        EventTemplate(
            "navigator_mis_geofence_violation", "Geofence violation for waypoint {1}", "h"
        ),
        EventTemplate("navigator_mis_geofence_no_home", "Geofence requires a valid home position"),
        EventTemplate("navigator_mis_geofence_no_home2", "Geofence requires a valid home position"),
    )
}
"""Fallback: PX4 events the bridge renders without metadata, by event id."""


# -- fallback of the health-and-arming-checks protocol (no metadata) ---------------------------

NAVIGATION_MODE_GROUPS: dict[int, tuple[str, str]] = {
    1 << 0: ("manual", "Manual"),
    1 << 1: ("altctl", "Altitude"),
    1 << 2: ("posctl", "Position"),
    1 << 3: ("mission", "Mission"),
    1 << 4: ("loiter", "Hold"),
    1 << 5: ("rtl", "Return"),
    1 << 10: ("acro", "Acro"),
    1 << 14: ("offboard", "Offboard"),
    1 << 15: ("stab", "Stabilized"),
    1 << 17: ("takeoff", "Takeoff"),
    1 << 18: ("land", "Land"),
    1 << 19: ("follow_target", "Follow Target"),
    1 << 20: ("precland", "Precision Land"),
    1 << 21: ("orbit", "Orbit"),
    1 << 22: ("vtol_takeoff", "VTOL Takeoff"),
    **{1 << (22 + n): (f"external{n}", f"External {n}") for n in range(1, 9)},
}
"""Fallback: PX4's ``navigation_mode_group_t`` bits (bit = 1 << vehicle_status nav_state, as
``Report::getModeGroup``), with names; the downloaded metadata's enum wins when present."""

HEALTH_COMPONENTS: dict[int, tuple[str, str]] = {
    1 << i: entry
    for i, entry in enumerate(
        (
            ("none", "None"),
            ("absolute_pressure", "Absolute pressure"),
            ("differential_pressure", "Differential pressure"),
            ("gps", "GPS"),
            ("optical_flow", "Optical flow"),
            ("vision_position", "Vision position estimate"),
            ("distance_sensor", "Distance sensor"),
            ("remote_control", "Remote Control (RC or Joystick)"),
            ("motors_escs", "Motors/ESCs"),
            ("utm", "UTM"),
            ("logging", "Logging"),
            ("battery", "Battery"),
            ("communication_links", "Communication links"),
            ("rate_controller", "Rate controller"),
            ("attitude_controller", "Attitude controller"),
            ("position_controller", "Position controller"),
            ("attitude_estimate", "Attitude estimate"),
            ("local_position_estimate", "Local position estimate"),
            ("mission", "Mission"),
            ("avoidance", "Avoidance"),
            ("system", "System"),
            ("camera", "Camera"),
            ("gimbal", "Gimbal"),
            ("payload", "Payload"),
            ("global_position_estimate", "Global position estimate"),
            ("storage", "Storage"),
            ("parachute", "Parachute"),
            ("magnetometer", "Magnetometer"),
            ("accel", "Accelerometer"),
            ("gyro", "Gyroscope"),
            ("open_drone_id", "Open Drone ID system"),
        )
    )
}
"""Fallback: PX4's ``health_component_t`` bits (bit = 1 << HealthComponentIndex)."""

ARMING_FALLBACK_ENUMS: tuple[EnumSpec, ...] = (
    EnumSpec("navigation_mode_group_t", "uint32_t", NAVIGATION_MODE_GROUPS, is_bitfield=True),
    EnumSpec("health_component_t", "uint32_t", HEALTH_COMPONENTS, is_bitfield=True),
)
"""Fallback: the enums of the report's summaries, in PX4's ``px4`` namespace."""

ARMING_SUMMARY_EVENT = "commander_arming_check_summary"
"""First event of a report: chunk, arming error/warning components, can_arm/can_run groups."""
HEALTH_SUMMARY_EVENT = "commander_health_summary"
"""Last event of a report: chunk, present/error/warning health components."""

ARMING_FALLBACK_EVENTS: tuple[EventSpec, ...] = (
    EventSpec(
        ARMING_SUMMARY_EVENT,
        "Arming check summary event",
        (
            ("chunk_idx", "uint8_t"),
            ("error", "px4::health_component_t"),
            ("warning", "px4::health_component_t"),
            ("can_arm", "px4::navigation_mode_group_t"),
            ("can_run", "px4::navigation_mode_group_t"),
        ),
        group="arming_check",
        type="summary",
    ),
    EventSpec(
        HEALTH_SUMMARY_EVENT,
        "Health report summary event",
        (
            ("chunk_idx", "uint8_t"),
            ("is_present", "px4::health_component_t"),
            ("error", "px4::health_component_t"),
            ("warning", "px4::health_component_t"),
        ),
        group="health",
        type="summary",
    ),
)
"""Fallback: the summaries framing a health-and-arming-checks report (``Report::report``)."""

CHECK_ARGUMENTS: tuple[tuple[str, str], ...] = (
    ("modes", "navigation_mode_group_t"),
    ("health_component_index", "uint8_t"),
)
"""The two arguments every arming/health check event starts with (``Report::addEvent``);
the check's own arguments follow."""

HEALTH_AND_ARMING_CHECK_PROTOCOL = "health_and_arming_check"
"""``supported_protocols`` entry of a component that sends the report."""


def fallback_document() -> dict[str, Any]:
    """The fallback tables as a libevents metadata document (component 1, namespace px4)."""
    return events_document(
        PX4_EVENT_COMPONENT,
        "px4",
        (*ARMING_FALLBACK_EVENTS, *(t.spec() for t in KNOWN_EVENTS.values())),
        ARMING_FALLBACK_ENUMS,
        (HEALTH_AND_ARMING_CHECK_PROTOCOL,),
    )


FALLBACK_METADATA = EventMetadata.from_document(fallback_document(), source="built-in fallback")
"""What the bridge renders events with before (or without) a vehicle's own metadata."""


def render_fallback(event_id: int, arguments: bytes) -> RenderedEvent:
    """An event rendered with :data:`FALLBACK_METADATA`, or raw when it is not there."""
    return FALLBACK_METADATA.render(event_id, arguments) or render_unknown(event_id, arguments)


def render_event(event_id: int, arguments: bytes) -> tuple[str, str | None]:
    """(text, PX4 event name or None) of an event rendered with the fallback tables.

    Known events are rendered from their template; unknown ones as ``event 0x........`` with
    the significant argument bytes in hex, so nothing the vehicle said is lost.
    """
    event = render_fallback(event_id, arguments)
    return event.message, event.name


def pack_arguments(fmt: str, *values: float) -> bytes:
    """EVENT.arguments for values packed with struct codes ``fmt`` (helper for emitters)."""
    return struct.pack("<" + fmt, *values).ljust(ARGUMENTS_LEN, b"\x00")
