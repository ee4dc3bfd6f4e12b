"""PX4's events protocol on the sim: EVENT on every link, CURRENT_EVENT_SEQUENCE, REQUEST_EVENT."""

from __future__ import annotations

import struct

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import px4_events
from fleet.geo import offset_latlon
from sim.drone.events import BUFFER_SIZE, EventLog, frames_of
from tests.support import eventually
from tests.unit.sim.harness import HOME, fleet_and_gcs

REL = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
NAN = float("nan")


async def test_infeasible_mission_reason_comes_as_event_on_a_link_without_gcs_heartbeats() -> None:
    """PX4 sends the reason as STATUSTEXT only to a link that sent GCS heartbeats, but as an
    EVENT on every link; the ground station can ask for it again with REQUEST_EVENT."""
    params = {"GF_MAX_HOR_DIST": 1000.0}
    async with fleet_and_gcs(1, speed=10.0, heartbeats=False, params=params) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready, 5)
        # the boot's arming reports went out as events already: no RESET flag any more
        await eventually(lambda: v.ap.checks.reported(v.ap.failing_checks(v.now())), 5)
        seq0 = await gcs.wait_for("CURRENT_EVENT_SEQUENCE", since=gcs.mark(), timeout=5)
        assert seq0.flags == 0 and seq0.sequence == v.ap.events.latest
        far = offset_latlon(HOME.lat, HOME.lon, 2000.0, 0.0)  # beyond GF_MAX_HOR_DIST
        since = gcs.mark()
        ack = await gcs.upload([(REL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 0, 0, NAN, *far, 10)])
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED  # accepted, then found infeasible
        violation = px4_events.px4_event_id("navigator_mis_geofence_violation")
        ev = await gcs.wait_for("EVENT", lambda m: m.event_id == violation, since=since, timeout=5)
        assert (ev.destination_system, ev.external_level) == (0, 3)
        text, name = px4_events.render_event(ev.event_id, ev.arguments)
        assert (name, text) == (
            "navigator_mis_geofence_violation",
            "Geofence violation for waypoint 1",
        )
        assert struct.unpack_from("<h", ev.arguments) == (1,)
        assert not gcs.of("STATUSTEXT")
        cur = await gcs.wait_for(
            "CURRENT_EVENT_SEQUENCE", lambda m: m.sequence == ev.sequence, timeout=5
        )
        assert cur.flags == 0
        # asked again: the event; a sequence never sent: RESPONSE_EVENT_ERROR (unavailable)
        nxt = (ev.sequence + 1) & 0xFFFF
        since = gcs.mark()
        gcs.send(px4_events.RequestEventMessage(1, 1, ev.sequence, nxt))
        again = await gcs.wait_for("EVENT", since=since, timeout=5)
        assert again.sequence == ev.sequence and again.event_id == ev.event_id
        err = await gcs.wait_for("RESPONSE_EVENT_ERROR", since=since, timeout=5)
        assert (err.sequence, err.reason, err.target_system) == (nxt, 0, 255)


def test_event_log_sequences_buffer_and_errors() -> None:
    log = EventLog()
    [first] = log.due(99.0)  # nothing sent yet: the RESET flag, sequence 0xFFFF
    assert (first.sequence, first.flags) == (0xFFFF, 1)
    log = EventLog()
    for i in range(BUFFER_SIZE + 5):
        log.emit("navigator_mis_geofence_violation", "h", (i,), time_boot_ms=i)
    msgs = log.due(100.0)
    assert [m.sequence for m in msgs[:-1]] == list(range(BUFFER_SIZE + 5))
    assert msgs[-1].sequence == BUFFER_SIZE + 4 and msgs[-1].flags == 0
    assert log.due(101.0) == []  # next CURRENT_EVENT_SEQUENCE 3 s after the last
    assert len(log.due(103.0)) == 1
    # the 5 oldest left the buffer: unavailable, with the oldest one still held
    out = log.request(0, 6, 255, 190)
    errors = [m for m in out if isinstance(m, px4_events.ResponseEventErrorMessage)]
    assert [e.sequence for e in errors] == [0, 1, 2, 3, 4]
    assert all(e.sequence_oldest_available == 5 for e in errors)
    assert [m.sequence for m in out if isinstance(m, px4_events.EventMessage)] == [5, 6]
    # a wrapped range longer than the buffer is answered with one error, then what is held
    out = log.request(40, 20, 255, 190)
    assert isinstance(out[0], px4_events.ResponseEventErrorMessage) and out[0].sequence == 40
    assert len(out) == 1 + BUFFER_SIZE


def test_frames_of_finds_unknown_frames_between_others() -> None:
    class Sink:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def write(self, b: bytes) -> None:
            self.parts.append(bytes(b))

    sink = Sink()
    mav = mavlink.MAVLink(sink, srcSystem=255, srcComponent=190)
    mav.send(mav.heartbeat_encode(6, 8, 0, 0, 0))
    mav.send(px4_events.RequestEventMessage(1, 1, 3, 4))
    mav.send(mav.heartbeat_encode(6, 8, 0, 0, 0))
    frames = frames_of(b"\x00garbage" + b"".join(sink.parts), frozenset({412}))
    assert len(frames) == 1
    req = px4_events.decode_extra(mav, frames[0])
    assert (req.first_sequence, req.last_sequence) == (3, 4)
