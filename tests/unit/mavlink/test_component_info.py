"""The component-metadata messages, URIs, CRC and general file on the wire."""

from __future__ import annotations

import json
import lzma
import pathlib
import zlib

import pytest
from pymavlink.generator import mavparse

from firmware_bridges.mavlink.codec import Codec
from firmware_bridges.mavlink.metadata import firmware_label
from firmware_bridges.mavlink.wire import component_info
from firmware_bridges.mavlink.wire.component_info import (
    ComponentInformationMessage,
    ComponentMetadataMessage,
    MftpUri,
    parse_general,
    parse_mftp,
)
from fleet.clock import ManualClock

XML = """<?xml version="1.0"?>
<mavlink><version>3</version><messages>
<message id="395" name="COMPONENT_INFORMATION"><description>d</description>
 <field type="uint32_t" name="time_boot_ms">t</field>
 <field type="uint32_t" name="general_metadata_file_crc">c</field>
 <field type="char[100]" name="general_metadata_uri">u</field>
 <field type="uint32_t" name="peripherals_metadata_file_crc">c</field>
 <field type="char[100]" name="peripherals_metadata_uri">u</field></message>
<message id="397" name="COMPONENT_METADATA"><description>d</description>
 <field type="uint32_t" name="time_boot_ms">t</field>
 <field type="uint32_t" name="file_crc">c</field>
 <field type="char[100]" name="uri">u</field></message>
</messages></mavlink>
"""


def test_messages_match_the_mavlink_definition(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ci.xml"
    path.write_text(XML)
    for msg in mavparse.MAVXML(str(path), mavparse.PROTOCOL_2_0).message:
        cls = component_info.MESSAGES[msg.id]
        assert cls.crc_extra == msg.crc_extra, msg.name
        assert cls.ordered_fieldnames == msg.ordered_fieldnames, msg.name
        assert cls.unpacker.size == msg.wire_length, msg.name


def test_messages_round_trip_through_the_codec() -> None:
    clock = ManualClock()
    tx, rx = Codec(1, 1, clock), Codec(255, 190, clock)
    uri = "mftp://etc/extras/component_general.json.xz"
    got = rx.decode(tx.pack(ComponentMetadataMessage(1000, 0xA1B2C3D4, uri)))
    assert component_info.general_reference(got) == (uri, 0xA1B2C3D4)
    got = rx.decode(tx.pack(ComponentInformationMessage(5, 7, 0, uri, "")))
    assert component_info.general_reference(got) == (uri, 7)


def test_crc_uris_and_general_file() -> None:
    data = b'{"version": 1}'
    # MAVLink's CRC32 (no initial/final inversion) expressed through zlib's standard one
    assert component_info.crc32(data) == zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
    assert parse_mftp("mftp://etc/extras/all_events.json.xz") == MftpUri(
        "etc/extras/all_events.json.xz"
    )
    assert parse_mftp("mftp://[;comp=25]fs/a.json") == MftpUri("fs/a.json", 25)
    assert parse_mftp("https://px4.io/a.json") is None
    assert parse_mftp("mftp://") is None
    assert parse_mftp("mftp://[;comp=x]a") is None
    doc = {
        "version": 1,
        "metadataTypes": [
            {"type": 1, "uri": "mftp://etc/extras/parameters.json.xz", "fileCrc": 1},
            {
                "type": 4,
                "uri": "mftp://etc/extras/all_events.json.xz",
                "fileCrc": 549444595,
                "uriFallback": "https://example.org/all_events.json.xz",
                "translationUri": "https://example.org/events_summary.json",
            },
            {"no": "type"},
        ],
    }
    entries = parse_general(lzma.compress(json.dumps(doc).encode()))
    assert sorted(entries) == [1, 4]
    assert entries[4].file_crc == 549444595 and entries[4].uri_fallback.startswith("https://")
    assert (
        component_info.general_document([entries[4]])["metadataTypes"][0] == doc["metadataTypes"][1]
    )
    with pytest.raises(ValueError, match="metadataTypes"):
        parse_general(b'{"version": 1}')
    assert firmware_label(0x010F00FF) == "fw-1.15.0.255"
    assert firmware_label(None) == "fw-unknown"
