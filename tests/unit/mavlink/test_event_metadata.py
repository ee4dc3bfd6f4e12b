"""Event metadata (libevents' format) and EVENT rendering with libevents' rules.

The fixture is written here in the format PX4 generates (a few definitions modelled on PX4's);
no PX4 file is needed.
"""

from __future__ import annotations

import json
import lzma
import struct
from typing import Any

import pytest

from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.event_metadata import (
    EventMetadata,
    EventSpec,
    MetadataError,
    event_sub_id,
    events_document,
    render_unknown,
)
from firmware_bridges.mavlink.wire.px4_events import px4_event_id

MODES = {
    "1": {"name": "manual", "description": "Manual"},
    "4": {"name": "posctl", "description": "Position"},
    "8": {"name": "mission", "description": "Mission"},
    "16384": {"name": "offboard", "description": "Offboard"},
}
DOC: dict[str, Any] = {
    "version": 2,
    "components": {
        "0": {
            "namespace": "common",
            "enums": {
                "calibration_side_t": {
                    "type": "uint8_t",
                    "is_bitfield": True,
                    "separator": ", ",
                    "entries": {
                        "1": {"name": "front", "description": "Front"},
                        "2": {"name": "back", "description": "Back"},
                    },
                }
            },
            "event_groups": {},
        },
        "1": {
            "namespace": "px4",
            "supported_protocols": ["health_and_arming_check"],
            "enums": {
                "navigation_mode_group_t": {
                    "type": "uint32_t",
                    "is_bitfield": True,
                    "entries": MODES,
                },
                "failsafe_action_t": {
                    "type": "uint8_t",
                    "entries": {
                        "0": {"name": "none", "description": "None"},
                        "3": {"name": "hold", "description": "Hold"},
                    },
                },
                "bad_t": {"type": "char", "entries": {}},
            },
            "event_groups": {
                "arming_check": {
                    "events": {
                        str(event_sub_id("check_modes_offboard_signal")): {
                            "name": "check_modes_offboard_signal",
                            "message": "No offboard signal",
                            "description": "Offboard not sending.\n"
                            '<profile name="dev">Set <param>COM_OF_LOSS_T</param>.</profile>',
                            "arguments": [
                                {"name": "modes", "type": "navigation_mode_group_t"},
                                {"name": "health_component_index", "type": "uint8_t"},
                            ],
                        }
                    }
                },
                "default": {
                    "events": {
                        str(event_sub_id("navigator_mis_takeoff_too_low")): {
                            "name": "navigator_mis_takeoff_too_low",
                            "message": "Mission rejected: takeoff altitude too low! "
                            "Minimum: {1:.1m_v}",
                            "arguments": [{"name": "alt", "type": "float"}],
                        },
                        str(event_sub_id("commander_failsafe_enter_generic")): {
                            "name": "commander_failsafe_enter_generic",
                            "message": "Failsafe activated: switching to {2}",
                            "type": "append_health_and_arming_messages",
                            "arguments": [
                                {"name": "mode", "type": "uint32_t"},
                                {"name": "action", "type": "px4::failsafe_action_t"},
                            ],
                        },
                        "1": {
                            "name": "all_types",
                            "message": "{1} {2} {3} {4} {5} {6} {7} {8} {9} {9:.2} {3m} {4m/s}",
                            "arguments": [
                                {"name": "a", "type": "int8_t"},
                                {"name": "b", "type": "uint8_t"},
                                {"name": "c", "type": "int16_t"},
                                {"name": "d", "type": "uint16_t"},
                                {"name": "e", "type": "int32_t"},
                                {"name": "f", "type": "uint32_t"},
                                {"name": "g", "type": "int64_t"},
                                {"name": "h", "type": "uint64_t"},
                                {"name": "i", "type": "float"},
                            ],
                        },
                        "2": {
                            "name": "tags",
                            "message": 'See <a href="https://docs.px4.io">the docs</a> or '
                            "<a>https://px4.io</a>. \\{1\\} \\<b> <b>hidden</b>"
                            '<profile name="!dev"> normal only</profile> {2:.1} {1} {5}',
                            "arguments": [
                                {"name": "sides", "type": "common::calibration_side_t"},
                                {"name": "v", "type": "uint16_t"},
                            ],
                        },
                        "3": {
                            "name": "dropped_unknown_type",
                            "message": "never",
                            "arguments": [{"name": "x", "type": "no_such_t"}],
                        },
                        "4": {
                            "name": "bitfield_unknown",
                            "message": "{1}",
                            "arguments": [{"name": "m", "type": "navigation_mode_group_t"}],
                        },
                    }
                },
                "health": {"events": {"1": {"name": "duplicate_of_all_types", "message": "x"}}},
            },
        },
    },
}


@pytest.fixture(scope="module")
def md() -> EventMetadata:
    return EventMetadata.from_document(DOC, source="fixture")


def test_loading_follows_libevents(md: EventMetadata) -> None:
    assert px4_event_id("check_modes_offboard_signal") in md
    assert (1 << 24 | 3) not in md  # argument of an unknown type: dropped
    assert md.get(1 << 24 | 1).name == "all_types"  # type: ignore[union-attr] - first wins
    assert md.enum("px4::bad_t") is None  # enum of an invalid base type: ignored
    assert md.supports("health_and_arming_check", component=1)
    assert md.by_name("tags").event_id == 1 << 24 | 2  # type: ignore[union-attr]
    with pytest.raises(MetadataError):
        EventMetadata.from_document({"version": 0, "components": {}})
    with pytest.raises(MetadataError):
        EventMetadata.from_bytes(b"\xfd7zXZ\x00garbage")
    xz = lzma.compress(json.dumps(DOC).encode())
    assert len(EventMetadata.from_bytes(xz)) == len(md)


def test_rendered_event_names_group_and_type(md: EventMetadata) -> None:
    eid = px4_event_id("check_modes_offboard_signal")
    ev = md.render(eid, struct.pack("<IB", 16384 | 8, 20))
    assert ev is not None
    assert (ev.name, ev.group, ev.type, ev.is_summary) == (
        "check_modes_offboard_signal",
        "arming_check",
        "",
        False,
    )
    assert ev.message == "No offboard signal"
    assert ev.values == (16392, 20)
    assert ev.enum_of(0) is not None and ev.enum_of(0).bit_names(16392) == ("mission", "offboard")  # type: ignore[union-attr]
    # the normal profile drops developer text (and the <param> inside it)
    assert ev.description == "Offboard not sending."
    dev = md.render(eid, b"", profile="dev")
    assert dev is not None and dev.description == "Offboard not sending.\nSet COM_OF_LOSS_T."


def test_placeholders_units_and_decimals(md: EventMetadata) -> None:
    low = md.render(px4_event_id("navigator_mis_takeoff_too_low"), struct.pack("<f", 2.25))
    assert low is not None
    assert low.message == "Mission rejected: takeoff altitude too low! Minimum: 2.2 m"
    args = struct.pack(
        "<bBhHiIqQf", -5, 250, -300, 60000, -70000, 4_000_000_000, -(2**40), 2**63, 1.5
    )
    ev = md.render(1 << 24 | 1, args)
    assert ev is not None
    assert ev.message == (
        f"-5 250 -300 60000 -70000 4000000000 {-(2**40)} {2**63} 1.5 1.50 -300 m 60000 m/s"
    )
    # floats without decimals print like C++ streams (six significant digits)
    ev = md.render(1 << 24 | 1, args[:-4] + struct.pack("<f", 1.0 / 3.0))
    assert ev is not None and " 0.333333 0.33 " in ev.message


def test_enums_bitfields_tags_and_escapes(md: EventMetadata) -> None:
    failsafe = md.render(px4_event_id("commander_failsafe_enter_generic"), struct.pack("<IB", 7, 3))
    assert failsafe is not None and failsafe.message == "Failsafe activated: switching to Hold"
    unknown = md.render(px4_event_id("commander_failsafe_enter_generic"), struct.pack("<IB", 7, 9))
    assert unknown is not None and unknown.message.endswith("switching to (unknown: 9)")
    tags = md.render(1 << 24 | 2, struct.pack("<BH", 3, 42))
    assert tags is not None
    # links become their text, escaped characters stay literal, unknown tags vanish, a
    # placeholder past the arguments stays as written, enum bits use the enum's separator
    assert tags.message == (
        "See the docs or https://px4.io. {1} <b>  normal only 42 Front, Back {5}"
    )
    bits = md.render(1 << 24 | 4, struct.pack("<I", 1 | 2))
    assert bits is not None and bits.message == "Manual|(unknown: 3)"


def test_unknown_events_and_the_fallback() -> None:
    raw = render_unknown(0x0123ABCD, b"\x05\x00\x07" + bytes(37))
    assert raw.message == "event 0x0123abcd args=050007" and raw.name is None and not raw.known
    # the fallback knows the navigator templates and the arming-report summaries
    fb = px4_events.FALLBACK_METADATA
    ev = fb.render(px4_event_id("navigator_mis_geofence_violation"), struct.pack("<h", 4))
    assert ev is not None and ev.message == "Geofence violation for waypoint 4"
    summary = fb.render(
        px4_event_id("commander_arming_check_summary"), struct.pack("<BIIII", 0, 0, 0, 8, 8)
    )
    assert summary is not None and summary.is_summary and summary.group == "arming_check"
    assert summary.enum_of(3).bit_names(8) == ("mission",)  # type: ignore[union-attr]


def test_documents_built_from_specs_round_trip() -> None:
    doc = events_document(
        7,
        "demo",
        [EventSpec("demo_event", "Value {1}", (("v", "uint16_t"),), group="health")],
    )
    md = EventMetadata.from_document(doc)
    ev = md.render(event_sub_id("demo_event") | 7 << 24, struct.pack("<H", 9))
    assert ev is not None and (ev.message, ev.group) == ("Value 9", "health")
    with pytest.raises(ValueError, match="collides"):
        events_document(1, "x", [EventSpec("same", "a"), EventSpec("same", "b")])
