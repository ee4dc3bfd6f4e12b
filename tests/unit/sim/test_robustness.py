"""Bad bytes on the wire lose nothing; the legacy float mission protocol still works."""

from __future__ import annotations

import os

from pymavlink.dialects.v20 import common as mavlink

from tests.support import eventually
from tests.unit.sim.harness import HOME, fleet_and_gcs


async def test_garbage_and_truncated_frames_do_not_disturb_the_vehicle() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        assert gcs._transport is not None
        addr = gcs.peers[1]
        gcs._transport.sendto(os.urandom(300), addr)
        gcs._transport.sendto(b"\xfd\x20\x00", addr)  # a truncated MAVLink 2 header
        good = gcs.mav.command_long_encode(
            1, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, 148, 0, 0, 0, 0, 0, 0
        )
        packed = good.pack(gcs.mav)
        gcs._transport.sendto(b"\x00\x01garbage" + packed, addr)  # noise before a valid frame
        ack = await gcs.wait_for(
            "COMMAND_ACK", lambda m: m.command == mavlink.MAV_CMD_REQUEST_MESSAGE
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        # a frame with a broken CRC is dropped, the next one still works
        broken = bytearray(good.pack(gcs.mav))
        broken[-1] ^= 0xFF
        gcs._transport.sendto(bytes(broken), addr)
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await eventually(lambda: v.ap.ready, 5)


async def test_float_mission_items_round_trip() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        mav = gcs.mav
        since = gcs.mark()
        gcs.send(mav.mission_count_encode(1, 1, 2, 0))
        pts = [(HOME.lat + 2e-4, HOME.lon), (HOME.lat + 4e-4, HOME.lon)]
        for seq in range(2):
            # after a float item the vehicle requests float items (MISSION_REQUEST)
            kind = "MISSION_REQUEST_INT" if seq == 0 else "MISSION_REQUEST"
            req = await gcs.wait_for(kind, lambda m, s=seq: m.seq == s, since=since)
            since = gcs.messages.index(req) + 1
            lat, lon = pts[seq]
            gcs.send(
                mav.mission_item_encode(
                    1,
                    1,
                    seq,
                    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                    mavlink.MAV_CMD_NAV_WAYPOINT,
                    0,
                    1,
                    0,
                    0,
                    0,
                    0,
                    lat,
                    lon,
                    12.0,
                    0,
                )
            )
        ack = await gcs.wait_for("MISSION_ACK", since=since)
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED
        stored = fleet[0].missions.plans[0]
        assert abs(stored[1].lat - pts[1][0]) < 1e-6
        since = gcs.mark()
        gcs.send(mav.mission_request_list_encode(1, 1, 0))
        await gcs.wait_for("MISSION_COUNT", since=since)
        gcs.send(mav.mission_request_encode(1, 1, 0, 0))
        it = await gcs.wait_for("MISSION_ITEM", since=since)
        assert abs(it.x - pts[0][0]) < 1e-5 and it.frame == mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT
