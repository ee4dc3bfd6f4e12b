"""The sim emits PX4's health-and-arming-checks report; the bridge reads it back."""

from __future__ import annotations

import struct

import pytest

from firmware_bridges.mavlink.arming_checks import ArmingCheckTracker
from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.event_metadata import EventMetadata
from sim.drone.arming_report import (
    ALL_MODES,
    CheckFailure,
    component_bits,
    emit_report,
    mode_bits,
)
from sim.drone.events import LOG_ERROR, LOG_WARNING, EventLog
from sim.drone.metadata import events_json

MD = EventMetadata.from_document(events_json())


def test_report_is_the_px4_sequence() -> None:
    log = EventLog()
    events = emit_report(
        log,
        [
            CheckFailure(
                "check_modes_global_pos", mode_bits("mission", "loiter"), "global_position_estimate"
            ),
            CheckFailure("check_battery_missing", 0, "battery", LOG_WARNING, (1,)),
        ],
        can_arm=mode_bits("manual", "posctl"),
        can_run=mode_bits("manual", "posctl", "land"),
        present=component_bits("gps", "battery"),
        health_warning=component_bits("battery"),
        time_boot_ms=1234,
    )
    names = [px4_events.px4_event_id(n) for n in (
        px4_events.ARMING_SUMMARY_EVENT,
        "check_modes_global_pos",
        "check_battery_missing",
        px4_events.HEALTH_SUMMARY_EVENT,
    )]  # fmt: skip
    assert [e.event_id for e in events] == names
    assert [e.sequence for e in events] == [0, 1, 2, 3]
    assert [e.log_levels for e in events] == [0x88, 0x33, 0x44, 0x88]
    # summary: chunk 0, arming errors/warnings derived from the checks' levels and components
    chunk, error, warning, can_arm, can_run = struct.unpack_from("<BIIII", events[0].arguments)
    assert (chunk, error, warning) == (0, component_bits("global_position_estimate"), 2048)
    assert (can_arm, can_run) == (5, 5 | mode_bits("land"))
    # a check with no mode is reported for all modes (PX4's reportedModes)
    assert struct.unpack_from("<IBB", events[2].arguments) == (ALL_MODES, 11, 1)
    assert log.due(0.0)[0].event_id == names[0]  # queued for sending, in order


def test_the_bridge_reads_the_sim_report_back() -> None:
    log = EventLog()
    emit_report(
        log,
        [CheckFailure("check_modes_home_position", mode_bits("rtl"), "system", 6)],
        can_arm=ALL_MODES & ~mode_bits("rtl"),
        can_run=ALL_MODES,
        present=component_bits("gps"),
        health_error=component_bits("gps"),
    )
    tracker = ArmingCheckTracker()
    for m in log.due(0.0):
        if isinstance(m, px4_events.EventMessage):
            ev = MD.render(m.event_id, m.arguments)
            assert ev is not None
            assert tracker.feed(m.sequence, ev, m.external_level, 0.0, with_metadata=True)
    r = tracker.report
    assert r is not None and r.with_metadata
    assert not r.can_arm("rtl") and r.can_arm("mission") and r.can_run("rtl")
    (p,) = r.problems
    assert (p.message, p.modes, p.component, p.level) == (
        "Home position not set",
        ("rtl",),
        "system",
        6,
    )
    assert r.errors == ("gps",)


def test_only_checks_of_the_table_can_be_reported() -> None:
    log = EventLog()
    with pytest.raises(KeyError, match="SIM_CHECKS"):
        emit_report(log, [CheckFailure("check_made_up")], can_arm=0, can_run=0)
    with pytest.raises(ValueError, match="takes 1 arguments"):
        emit_report(
            log, [CheckFailure("check_battery_missing", level=LOG_ERROR)], can_arm=0, can_run=0
        )
    with pytest.raises(KeyError, match="health component"):
        emit_report(
            log, [CheckFailure("check_battery_low", component="flux")], can_arm=0, can_run=0
        )
    assert log.due(0.0)[-1].sequence == 0xFFFF  # nothing was queued
