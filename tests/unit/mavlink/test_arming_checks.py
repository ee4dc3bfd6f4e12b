"""PX4's health-and-arming-checks report assembled from events, with and without metadata.

Events are rendered with the sim's generated metadata (PX4's names, ids and argument layout)
or with the bridge's built-in fallback, as a vehicle without metadata is.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.arming_checks import ArmingCheckTracker
from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.event_metadata import (
    EventMetadata,
    RenderedEvent,
    render_unknown,
)
from firmware_bridges.mavlink.wire.px4_events import pack_arguments, px4_event_id
from fleet.events import Severity, VehicleEventKind
from sim.drone.arming_report import component_bits, mode_bits
from sim.drone.metadata import events_json
from tests.support import eventually
from tests.unit.mavlink.conftest import Env, OpenLink
from tests.unit.mavlink.peer import Peer

MD = EventMetadata.from_document(events_json(), source="sim")
MISSION, TAKEOFF, LOITER = mode_bits("mission"), mode_bits("takeoff"), mode_bits("loiter")
ALL_BUT_MISSION = 0xFFFFFFFF & ~MISSION
GLOBAL_POS = 24  # health_component_t index of global_position_estimate
SYSTEM = 20


def _raw(name: str, fmt: str, *values: Any) -> tuple[int, bytes]:
    return px4_event_id(name), pack_arguments(fmt, *values)


def arming(can_arm: int, can_run: int, error: int = 0, chunk: int = 0) -> tuple[int, bytes]:
    return _raw(px4_events.ARMING_SUMMARY_EVENT, "BIIII", chunk, error, 0, can_arm, can_run)


def health(present: int = 0, error: int = 0, chunk: int = 0) -> tuple[int, bytes]:
    return _raw(px4_events.HEALTH_SUMMARY_EVENT, "BIII", chunk, present, error, 0)


def check(name: str, modes: int, component: int, fmt: str = "", *extra: Any) -> tuple[int, bytes]:
    return _raw(name, "IB" + fmt, modes, component, *extra)


def with_metadata(raw: tuple[int, bytes]) -> RenderedEvent:
    return MD.render(*raw) or render_unknown(*raw)


def fallback(raw: tuple[int, bytes]) -> RenderedEvent:
    return px4_events.FALLBACK_METADATA.render(*raw) or render_unknown(*raw)


def feed(
    tracker: ArmingCheckTracker, seq: int, raw: tuple[int, bytes], level: int = 8, now: float = 0.0
) -> bool:
    return tracker.feed(seq, with_metadata(raw), level, now, with_metadata=True)


def test_complete_report() -> None:
    t = ArmingCheckTracker()
    assert feed(t, 10, arming(ALL_BUT_MISSION, ALL_BUT_MISSION, error=1 << SYSTEM))
    assert feed(t, 11, check("check_modes_mission", MISSION, SYSTEM), level=6)
    assert feed(t, 12, check("check_battery_missing", 0xFFFFFFFF, 11, "B", 2), level=4)
    assert t.report is None
    assert feed(t, 13, health(present=component_bits("gps", "battery")))
    r = t.report
    assert r is not None and r.complete and r.with_metadata
    assert not r.can_arm("mission") and r.can_arm("loiter") and r.can_run("takeoff")
    assert "mission" not in r.arm_groups and "manual" in r.arm_groups
    first, second = r.problems
    assert (first.message, first.event, first.modes, first.component, first.severity) == (
        "No valid mission available",
        "check_modes_mission",
        ("mission",),
        "system",
        Severity.INFO,
    )
    assert second.message == "Battery 2 missing" and second.group == "health"
    assert second.component == "battery" and "mission" in second.modes  # all modes
    assert [p.message for p in r.problems_for("mission")] == [first.message, second.message]
    assert r.errors == ("system",)
    gps = next(h for h in r.health if h.name == "gps")
    assert gps.present and not gps.error
    summary = r.as_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["problems"][0] == {
        "message": "No valid mission available",
        "severity": "info",
        "modes": ["mission"],
        "component": "system",
        "event": "check_modes_mission",
    }


def test_interrupted_sequence_restarts_with_the_new_summary() -> None:
    t = ArmingCheckTracker()
    feed(t, 1, arming(0, 0))
    feed(t, 2, check("check_modes_global_pos", MISSION, GLOBAL_POS))
    feed(t, 3, arming(ALL_BUT_MISSION, ALL_BUT_MISSION))  # PX4 started a new report
    feed(t, 4, check("check_modes_mission", MISSION, SYSTEM))
    feed(t, 5, health())
    r = t.report
    assert r is not None and [p.event for p in r.problems] == ["check_modes_mission"]
    assert t.interrupted == 1
    # a health summary with no arming summary before it, or another chunk, completes nothing
    feed(t, 6, health())
    feed(t, 7, arming(0, 0, chunk=0))
    feed(t, 8, health(chunk=1))
    assert t.report is r and t.reports == 1


def test_lost_check_is_waited_for_then_the_report_completes() -> None:
    t = ArmingCheckTracker(hold_s=2.0)
    feed(t, 20, arming(LOITER, LOITER))
    feed(t, 22, check("check_modes_mission", MISSION, SYSTEM))
    feed(t, 23, health(), now=1.0)
    assert t.report is None  # 21 is missing: it may come back through REQUEST_EVENT
    feed(t, 21, check("check_modes_global_pos", MISSION, GLOBAL_POS), now=1.5)
    r = t.report
    assert r is not None and r.complete
    assert [p.event for p in r.problems] == ["check_modes_global_pos", "check_modes_mission"]
    # a loss that never comes back: the report completes after the hold, marked incomplete
    feed(t, 30, arming(0, 0))
    feed(t, 32, health(), now=10.0)
    assert t.poll(11.0) is None
    late = t.poll(12.5)
    assert late is not None and not late.complete and t.report is late


def test_unrelated_events_inside_a_report_stay_texts() -> None:
    t = ArmingCheckTracker()
    feed(t, 1, arming(0, 0))
    nav = _raw("navigator_mis_geofence_violation", "h", 3)
    assert not feed(t, 2, nav, level=3)  # not part of the report: the caller shows it
    feed(t, 3, health())
    assert t.report is not None and t.report.problems == ()


def test_fallback_without_metadata_then_rerendered() -> None:
    t = ArmingCheckTracker()
    seq = [
        arming(LOITER, LOITER, error=1 << GLOBAL_POS),
        check("check_modes_global_pos", MISSION | TAKEOFF, GLOBAL_POS),
        health(),
    ]
    for i, raw in enumerate(seq):
        assert t.feed(i, fallback(raw), 3, 0.0, with_metadata=False)
    r = t.report
    assert r is not None and not r.with_metadata
    assert r.can_arm("loiter") and not r.can_arm("mission")  # summaries: built-in fallback
    (p,) = r.problems
    eid = px4_event_id("check_modes_global_pos")
    assert p.message.startswith(f"event {eid:#010x} args=")  # unknown text, known layout
    assert p.modes == ("mission", "takeoff") and p.component == "global_position_estimate"
    # the vehicle's metadata arrives: the same report reads properly
    again = t.rerender(lambda eid, args: with_metadata((eid, args)), with_metadata=True)
    assert again is not None and again is t.report and again.with_metadata
    assert again.problems[0].message == "Navigation error: No valid global position estimate"
    assert again.problems[0].event == "check_modes_global_pos"


def test_vehicle_restart_resets_partial_reports() -> None:
    t = ArmingCheckTracker()
    feed(t, 500, arming(0, 0))
    feed(t, 501, check("check_modes_mission", MISSION, SYSTEM))
    # rebooted: sequence numbers start again
    feed(t, 0, arming(MISSION, MISSION))
    feed(t, 1, health())
    assert t.report is not None and t.report.can_arm("mission") and t.report.problems == ()


# -- on a vehicle session, over UDP ------------------------------------------------------------


async def _vehicle(env: Env, link: Any) -> tuple[Peer, MavlinkDrone]:
    peer = await Peer.open(link.local_address)

    async def seen() -> bool:
        peer.heartbeat()
        await asyncio.sleep(0.02)
        return "drone-1" in env.registry

    await eventually(seen)
    peer.auto_ack()  # no COMPONENT_METADATA ever comes: a vehicle without metadata
    peer.beat()
    drone = env.registry.get("drone-1").control
    assert isinstance(drone, MavlinkDrone)
    return peer, drone


def _send_report(peer: Peer, first_seq: int, can_arm: int) -> int:
    events = [
        (arming(can_arm, can_arm), 8),
        (check("check_modes_mission", MISSION, SYSTEM), 6),
        (health(), 8),
    ]
    for i, ((eid, args), level) in enumerate(events):
        peer.event(eid, args, seq=first_seq + i, level=level)
    return first_seq + len(events)


async def test_session_keeps_the_report_and_publishes_it(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        try:
            with env.bus.subscribe(
                lambda e: getattr(e, "kind", None) == VehicleEventKind.STATUS_TEXT
            ) as texts:
                assert drone.arming_report is None
                waiting = asyncio.ensure_future(drone.wait_arming_report(5.0))
                nxt = _send_report(peer, 0, ALL_BUT_MISSION)
                report = await asyncio.wait_for(waiting, 2)
                assert report is not None and report is drone.arming_report
                assert not report.can_arm("mission") and not report.with_metadata
                assert drone.status.extra["arming"] == report.as_dict()
                # check events are not texts; other events still are
                eid, args = _raw("navigator_mis_geofence_violation", "h", 2)
                peer.event(eid, args, seq=nxt)
                ev = await asyncio.wait_for(texts.get(), 2)
                assert ev.message == "Geofence violation for waypoint 2"  # type: ignore[union-attr]

            # MAV_CMD_RUN_PREARM_CHECKS: PX4 acknowledges and sends a fresh report
            def px4(m: Any) -> bool:
                if (
                    m.get_type() == "COMMAND_LONG"
                    and m.command == mavlink.MAV_CMD_RUN_PREARM_CHECKS
                ):
                    peer.ack(m.command)
                    _send_report(peer, nxt + 1, 0xFFFFFFFF)
                    return True
                return False

            peer.auto.insert(0, px4)
            fresh = await drone.run_prearm_checks()
            assert fresh.can_arm("mission") and fresh is drone.arming_report
            assert drone.status.extra["arming"]["can_arm"][:4] == [
                "manual",
                "altctl",
                "posctl",
                "mission",
            ]
            assert await drone.wait_arming_report(0.5) is None  # nothing newer comes
        finally:
            peer.close()


@pytest.mark.parametrize("answer", [mavlink.MAV_RESULT_UNSUPPORTED, None])
async def test_run_prearm_checks_refused_or_unanswered(
    env: Env, open_link: OpenLink, answer: int | None
) -> None:
    from fleet.errors import CommandRejected, CommandTimeout

    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        try:

            def refuse(m: Any) -> bool:
                if (
                    m.get_type() == "COMMAND_LONG"
                    and m.command == mavlink.MAV_CMD_RUN_PREARM_CHECKS
                ):
                    if answer is not None:
                        peer.ack(m.command, answer)
                    else:
                        peer.ack(m.command)  # accepted, but no report follows
                    return True
                return False

            peer.auto.insert(0, refuse)
            expected = CommandRejected if answer is not None else CommandTimeout
            with pytest.raises(expected):
                await drone.run_prearm_checks(within=1.0)
        finally:
            peer.close()
