"""The MAVLink events protocol (messages 410-413) and the PX4 events the service can render.

pymavlink 2.4.50's dialects do not define EVENT, CURRENT_EVENT_SEQUENCE, REQUEST_EVENT or
RESPONSE_EVENT_ERROR, yet PX4 reports some failures *only* as EVENT (for example a mission
found infeasible after an accepted upload). This module defines those four messages from
``common.xml`` as pymavlink message classes (so they pack, sign and print like any other) plus
their decoder, keyed by message id and checked with their CRC_EXTRA.

An EVENT carries an id and up to 40 bytes of little-endian arguments; the human text lives in
the firmware's event metadata (``all_events.json``), which a ground station normally downloads
through the component-information protocol. The service does not fetch it: it ships the
templates of the PX4 events that matter to fleet operation (mission feasibility, geofence,
payload, arming) in :data:`KNOWN_EVENTS`, and renders any other event as its id and raw
arguments. PX4 event ids are ``(fnv1a_32(name) & 0xFFFFFF) | component << 24``
(``px4_platform_common/events.h``), computed here by :func:`px4_event_id`.

This is a wire module: ``sim/`` may import it to emit PX4-like events.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

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


class EventMessage(mavlink.MAVLink_message):
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
        return super().format_attr(field)

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
        return self._pack(mav, self.crc_extra, payload)

    @property
    def external_level(self) -> int:
        """Log level shown to operators (low nibble: 0 emergency .. 7 debug, 8 protocol)."""
        return self.log_levels & 0x0F


class CurrentEventSequenceMessage(mavlink.MAVLink_message):
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
        return self._pack(mav, self.crc_extra, self.unpacker.pack(self.sequence, self.flags))


class RequestEventMessage(mavlink.MAVLink_message):
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
        return self._pack(mav, self.crc_extra, payload)


class ResponseEventErrorMessage(mavlink.MAVLink_message):
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
        return self._pack(mav, self.crc_extra, payload)


EXTRA_MESSAGES: dict[int, type[mavlink.MAVLink_message]] = {
    MSG_ID_EVENT: EventMessage,
    MSG_ID_CURRENT_EVENT_SEQUENCE: CurrentEventSequenceMessage,
    MSG_ID_REQUEST_EVENT: RequestEventMessage,
    MSG_ID_RESPONSE_EVENT_ERROR: ResponseEventErrorMessage,
}
"""Messages this module adds to pymavlink's ``common`` dialect, by id."""


def _field_values(cls: type[mavlink.MAVLink_message], payload: bytes) -> dict[str, Any]:
    size = cls.unpacker.size
    padded = payload[:size].ljust(size, b"\x00")  # MAVLink 2 trims trailing zero bytes
    values = cls.unpacker.unpack(padded)
    return dict(zip(cls.ordered_fieldnames, values, strict=True))


class EventDecodeError(ValueError):
    """A frame claimed to be one of the events messages but is malformed."""


def decode_extra(mav: mavlink.MAVLink, frame: bytes | bytearray) -> mavlink.MAVLink_message:
    """Decode one complete MAVLink 2 frame of an events message (410-413).

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
        raise EventDecodeError(f"message {msgid} is not an events message")
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


def fnv1a_32(text: str) -> int:
    """32-bit FNV-1a hash, as PX4's ``hash_32_fnv1a_const``."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def px4_event_id(name: str, component: int = PX4_EVENT_COMPONENT) -> int:
    """The EVENT id PX4 sends for ``events::ID(name)``."""
    return (fnv1a_32(name) & 0xFFFFFF) | (component & 0xFF) << 24


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """How to render one known event."""

    name: str
    """PX4's event name (``events::ID("...")``)."""
    text: str
    """Message with ``{1}``, ``{2}``... placeholders (PX4 syntax, format specs allowed)."""
    args: str = ""
    """struct codes of the arguments in order (little-endian, packed)."""

    @property
    def event_id(self) -> int:
        return px4_event_id(self.name)


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
            "navigator_mis_first_wp_too_far",
            "First waypoint too far away: {1m} (maximum: {2m})",
            "II",
        ),
        EventTemplate(
            "navigator_mis_wp_dist_too_far",
            "Distance between waypoints too far: {1m}, (maximum: {2m})",
            "II",
        ),
        EventTemplate(
            "navigator_mis_no_home_rel_alt",
            "Mission rejected: No home position, waypoint {1} uses relative altitude",
            "h",
        ),
        EventTemplate("navigator_mis_wp_below_home", "Waypoint {1} below home", "h"),
        EventTemplate(
            "navigator_mis_geofence_violation", "Geofence violation for waypoint {1}", "h"
        ),
        EventTemplate("navigator_mis_geofence_no_home2", "Geofence requires a valid home position"),
        EventTemplate("navigator_mis_act_index", "Actuator number {1} is out of bounds 0..5", "I"),
    )
}
"""PX4 events the service renders as text, by event id."""

_PLACEHOLDER = re.compile(r"\{(\d+):?([^}]*)\}")
"""``{1}``, ``{1m}``, ``{2:.1m}``: argument number, then an optional format (unit, precision)."""


def _format_value(value: Any, spec: str | None) -> str:
    unit = ""
    if spec:
        if "m" in spec:
            unit = " m"
        digits = re.search(r"\.(\d+)", spec)
        if digits and isinstance(value, float):
            return f"{value:.{int(digits.group(1))}f}{unit}"
    if isinstance(value, float):
        return f"{value:g}{unit}"
    return f"{value}{unit}"


def render_event(event_id: int, arguments: bytes) -> tuple[str, str | None]:
    """(text, PX4 event name or None) for an event.

    Known events are rendered from their template; unknown ones as ``event 0x........`` with
    the significant argument bytes in hex, so nothing the vehicle said is lost.
    """
    template = KNOWN_EVENTS.get(event_id)
    if template is None:
        raw = bytes(arguments).rstrip(b"\x00")
        suffix = f" args={raw.hex()}" if raw else ""
        return f"event {event_id:#010x}{suffix}", None
    values: tuple[Any, ...] = ()
    if template.args:
        fmt = "<" + template.args
        values = struct.unpack_from(fmt, bytes(arguments).ljust(ARGUMENTS_LEN, b"\x00"))

    def _sub(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        if 0 <= index < len(values):
            return _format_value(values[index], match.group(2))
        return match.group(0)

    return _PLACEHOLDER.sub(_sub, template.text), template.name


def pack_arguments(fmt: str, *values: Any) -> bytes:
    """EVENT.arguments for values packed with struct codes ``fmt`` (helper for emitters)."""
    return struct.pack("<" + fmt, *values).ljust(ARGUMENTS_LEN, b"\x00")
