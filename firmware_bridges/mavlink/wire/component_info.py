"""The component-metadata protocol on the wire: COMPONENT_METADATA, the general metadata file.

A ground station asks a component for COMPONENT_METADATA (397) with MAV_CMD_REQUEST_MESSAGE;
older firmware answers COMPONENT_INFORMATION (395, deprecated) instead. Either carries the
URI and CRC of the component's *general metadata* file, e.g.
``mftp://etc/extras/component_general.json.xz`` on PX4: a JSON file (xz-compressed when its
name ends in ``.xz``) listing the other metadata files in ``metadataTypes``, each with a
``type`` (:data:`COMP_METADATA_TYPE_EVENTS` = 4 for the events file), ``uri``, ``fileCrc``
and optional ``uriFallback`` and ``translationUri``. URIs are ``mftp://[;comp=N]path``
(downloaded from the vehicle with MAVLink FTP) or http(s).

The CRC is MAVLink's CRC32 (:func:`crc32`: reflected polynomial 0xEDB88320, initial value 0,
no final XOR) of the *uncompressed* file. PX4 builds can advertise stale CRCs for the files
listed in the general file (measured on a SITL build: the events entry said 549444595 while
the served file's CRC was 34332198), so a CRC is a cache key, not a proof of integrity (the xz
container carries its own check).

pymavlink 2.4.50's ``common`` dialect lacks both messages, so they are defined here from
``common.xml`` (ids, CRC_EXTRA 0 and 182, field order) the way :mod:`.px4_events` defines
EVENT; :data:`.px4_events.EXTRA_MESSAGES` registers them with the codec. This is a wire
module: ``sim/`` may import it.
"""

from __future__ import annotations

import json
import lzma
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.event_metadata import XZ_MAGIC
from firmware_bridges.mavlink.wire.messages import Message

MSG_ID_COMPONENT_INFORMATION = 395
"""COMPONENT_INFORMATION (deprecated since 2022-04, replaced by COMPONENT_METADATA)."""
MSG_ID_COMPONENT_METADATA = 397
"""COMPONENT_METADATA: URI and CRC of the general metadata file."""
COMP_METADATA_TYPE_GENERAL = 0
"""General metadata: lists the component's other metadata files."""
COMP_METADATA_TYPE_PARAMETER = 1
"""Parameter metadata."""
COMP_METADATA_TYPE_COMMANDS = 2
"""Supported MAVLink commands."""
COMP_METADATA_TYPE_PERIPHERALS = 3
"""Peripherals (e.g. UAVCAN nodes)."""
COMP_METADATA_TYPE_EVENTS = 4
"""Event definitions (libevents' format, PX4's ``all_events.json``)."""
COMP_METADATA_TYPE_ACTUATORS = 5
"""Actuator configuration."""
MFTP_SCHEME = "mftp://"
"""URIs of files served by the component over MAVLink FTP."""
URI_LEN = 100
"""Size of the URI fields."""


def _cstr(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw.split("\x00", 1)[0]
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


class ComponentMetadataMessage(mavlink.MAVLink_message):  # type: ignore[misc]  # pymavlink is untyped (Any) here
    """COMPONENT_METADATA (397)."""

    id = MSG_ID_COMPONENT_METADATA
    msgname = "COMPONENT_METADATA"
    fieldnames = ["time_boot_ms", "file_crc", "uri"]  # noqa: RUF012 - pymavlink's class lists
    ordered_fieldnames = ["time_boot_ms", "file_crc", "uri"]  # noqa: RUF012
    crc_extra = 182
    unpacker = struct.Struct("<II100s")

    def __init__(self, time_boot_ms: int, file_crc: int, uri: bytes | str) -> None:
        mavlink.MAVLink_message.__init__(self, self.id, self.msgname)
        self._fieldnames = self.fieldnames
        self.time_boot_ms = time_boot_ms
        self.file_crc = file_crc
        self.uri = _cstr(uri)

    def pack(self, mav: mavlink.MAVLink, force_mavlink1: bool = False) -> bytes:
        payload = self.unpacker.pack(self.time_boot_ms, self.file_crc, self.uri.encode()[:URI_LEN])
        return bytes(self._pack(mav, self.crc_extra, payload))


class ComponentInformationMessage(mavlink.MAVLink_message):  # type: ignore[misc]  # pymavlink is untyped (Any) here
    """COMPONENT_INFORMATION (395), the deprecated predecessor of COMPONENT_METADATA."""

    id = MSG_ID_COMPONENT_INFORMATION
    msgname = "COMPONENT_INFORMATION"
    fieldnames = [  # noqa: RUF012 - pymavlink's class lists
        "time_boot_ms",
        "general_metadata_file_crc",
        "general_metadata_uri",
        "peripherals_metadata_file_crc",
        "peripherals_metadata_uri",
    ]
    ordered_fieldnames = [  # noqa: RUF012
        "time_boot_ms",
        "general_metadata_file_crc",
        "peripherals_metadata_file_crc",
        "general_metadata_uri",
        "peripherals_metadata_uri",
    ]
    crc_extra = 0
    unpacker = struct.Struct("<III100s100s")

    def __init__(
        self,
        time_boot_ms: int,
        general_metadata_file_crc: int,
        peripherals_metadata_file_crc: int,
        general_metadata_uri: bytes | str,
        peripherals_metadata_uri: bytes | str,
    ) -> None:
        mavlink.MAVLink_message.__init__(self, self.id, self.msgname)
        self._fieldnames = self.fieldnames
        self.time_boot_ms = time_boot_ms
        self.general_metadata_file_crc = general_metadata_file_crc
        self.peripherals_metadata_file_crc = peripherals_metadata_file_crc
        self.general_metadata_uri = _cstr(general_metadata_uri)
        self.peripherals_metadata_uri = _cstr(peripherals_metadata_uri)

    def pack(self, mav: mavlink.MAVLink, force_mavlink1: bool = False) -> bytes:
        payload = self.unpacker.pack(
            self.time_boot_ms,
            self.general_metadata_file_crc,
            self.peripherals_metadata_file_crc,
            self.general_metadata_uri.encode()[:URI_LEN],
            self.peripherals_metadata_uri.encode()[:URI_LEN],
        )
        return bytes(self._pack(mav, self.crc_extra, payload))


MESSAGES: dict[int, type[mavlink.MAVLink_message]] = {
    MSG_ID_COMPONENT_METADATA: ComponentMetadataMessage,
    MSG_ID_COMPONENT_INFORMATION: ComponentInformationMessage,
}
"""The messages this module adds to pymavlink's ``common`` dialect, by id."""


def general_reference(msg: Message) -> tuple[str, int]:
    """(uri, crc) of the general metadata file from COMPONENT_METADATA or _INFORMATION."""
    if msg.get_msgId() == MSG_ID_COMPONENT_METADATA:
        return _cstr(msg.uri), int(msg.file_crc)
    return _cstr(msg.general_metadata_uri), int(msg.general_metadata_file_crc)


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        k = i
        for _ in range(8):
            k = (k >> 1) ^ 0xEDB88320 if k & 1 else k >> 1
        table.append(k)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32(data: bytes, crc: int = 0) -> int:
    """MAVLink's CRC32 of ``data`` (what PX4 puts in ``file_crc`` and ``fileCrc``)."""
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class MftpUri:
    """A parsed ``mftp://[;comp=N]path``."""

    path: str
    """Path on the component's FTP server, e.g. ``etc/extras/all_events.json.xz``."""
    component: int | None = None
    """The component serving it, when not the one that announced it."""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def parse_mftp(uri: str) -> MftpUri | None:
    """The path (and component) of an ``mftp://`` URI; None for any other scheme."""
    if not uri.startswith(MFTP_SCHEME):
        return None
    rest = uri[len(MFTP_SCHEME) :]
    component = None
    if rest.startswith("[;comp="):
        end = rest.find("]")
        if end < 0:
            return None
        try:
            component = int(rest[len("[;comp=") : end])
        except ValueError:
            return None
        rest = rest[end + 1 :]
    if not rest:
        return None
    return MftpUri(rest, component)


@dataclass(frozen=True, slots=True)
class MetadataEntry:
    """One ``metadataTypes`` entry of a general metadata file."""

    type: int
    uri: str
    file_crc: int | None = None
    uri_fallback: str = ""
    translation_uri: str = ""


def decompress(data: bytes) -> bytes:
    """``data`` without its xz container, if it has one."""
    return lzma.decompress(data) if data.startswith(XZ_MAGIC) else data


def parse_general(data: bytes) -> dict[int, MetadataEntry]:
    """The ``metadataTypes`` of a general metadata file (xz or plain JSON), by type.

    Raises ``ValueError`` when the file is not a general metadata file."""
    try:
        doc = json.loads(decompress(data).decode("utf-8"))
    except (lzma.LZMAError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a general metadata file: {exc}") from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("metadataTypes"), list):
        raise ValueError("general metadata file without a metadataTypes list")
    out: dict[int, MetadataEntry] = {}
    for item in doc["metadataTypes"]:
        if not isinstance(item, Mapping) or "type" not in item or "uri" not in item:
            continue
        crc = item.get("fileCrc")
        out.setdefault(
            int(item["type"]),
            MetadataEntry(
                int(item["type"]),
                str(item["uri"]),
                int(crc) if crc is not None else None,
                str(item.get("uriFallback", "")),
                str(item.get("translationUri", "")),
            ),
        )
    return out


def general_document(entries: list[MetadataEntry]) -> dict[str, Any]:
    """A general metadata document listing ``entries`` (what a component serves)."""
    types = []
    for e in entries:
        item: dict[str, Any] = {"type": e.type, "uri": e.uri}
        if e.file_crc is not None:
            item["fileCrc"] = e.file_crc
        if e.uri_fallback:
            item["uriFallback"] = e.uri_fallback
        if e.translation_uri:
            item["translationUri"] = e.translation_uri
        types.append(item)
    return {"version": 1, "metadataTypes": types}
