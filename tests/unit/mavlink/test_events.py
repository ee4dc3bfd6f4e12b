"""PX4 EVENT texts are rendered with their arguments and units."""

from __future__ import annotations

from firmware_bridges.mavlink.wire.px4_events import KNOWN_EVENTS, pack_arguments, render_event


def _id(name: str) -> int:
    return next(i for i, t in KNOWN_EVENTS.items() if t.name == name)


def test_placeholders_with_units_are_filled() -> None:
    text, name = render_event(_id("navigator_mis_first_wp_far"), pack_arguments("I", 1200))
    assert name == "navigator_mis_first_wp_far"
    assert text == "First waypoint far away from Home: 1200 m Correct mission loaded?"
    text, _ = render_event(_id("navigator_mis_takeoff_too_low"), pack_arguments("f", 2.5))
    assert text == "Mission rejected: takeoff altitude too low! Minimum: 2.5 m"


def test_plain_placeholder_and_unknown_event() -> None:
    text, _ = render_event(_id("navigator_mis_no_home_rel_alt"), pack_arguments("h", 3))
    assert text.endswith("waypoint 3 uses relative altitude")
    text, name = render_event(0x12345678, b"\x01\x02")
    assert name is None
    assert text == "event 0x12345678 args=0102"
