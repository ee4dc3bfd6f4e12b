"""Mission protocol (mission, fence, rally) over real UDP against a scripted vehicle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.wire.px4_events import pack_arguments, px4_event_id
from fleet.drone import (
    FenceCircle,
    FencePolygon,
    FlightPlan,
    Geofence,
    Gripper,
    Land,
    ReturnToLaunch,
    Takeoff,
    Waypoint,
)
from fleet.errors import MissionUploadError
from fleet.geo import Position
from tests.support import eventually
from tests.unit.mavlink.conftest import Env, OpenLink
from tests.unit.mavlink.peer import MissionServer, Peer

HOME = (22.5400, 114.0560)
PLAN = FlightPlan(
    (
        Takeoff(30.0),
        Waypoint(22.5410, 114.0570, 40.0),
        Waypoint(22.5420, 114.0580, 8.0, hold_s=4.0),
        Gripper(),
        Waypoint(22.5420, 114.0580, 8.0, hold_s=4.0),
        ReturnToLaunch(),
    )
)


async def _vehicle(env: Env, link: Any) -> tuple[Peer, MavlinkDrone]:
    peer = await Peer.open(link.local_address)

    async def seen() -> bool:
        peer.heartbeat()
        await asyncio.sleep(0.02)
        return "drone-1" in env.registry

    await eventually(seen)
    peer.auto_ack()
    peer.beat()
    drone = env.registry.get("drone-1").control
    assert isinstance(drone, MavlinkDrone)
    peer.send(
        mavlink.MAVLink_home_position_message(
            int(HOME[0] * 1e7), int(HOME[1] * 1e7), 10000, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0
        )
    )
    await eventually(lambda: drone.status.home is not None)
    return peer, drone


def _report_state(peer: Peer, server: MissionServer, state: int) -> None:
    """After an accepted mission upload, report MISSION_CURRENT like PX4 does."""

    def responder(m: Any) -> bool:
        if (
            m.get_type() == "COMMAND_LONG"
            and m.command == mavlink.MAV_CMD_REQUEST_MESSAGE
            and int(m.param1) == mavlink.MAVLINK_MSG_ID_MISSION_CURRENT
        ):
            peer.mission_current(0, len(server.stored[0]), state)
        return False

    peer.auto.insert(0, responder)


async def _with_server(peer: Peer, server: MissionServer, coro: Any) -> Any:
    task = asyncio.create_task(server.serve())
    try:
        return await coro
    finally:
        task.cancel()


async def test_upload_translates_px4_rules(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)
        _report_state(peer, server, mavlink.MISSION_STATE_NOT_STARTED)
        await _with_server(peer, server, drone.upload_mission(PLAN))
        items = server.stored[0]
        assert [i.seq for i in items] == list(range(6))
        assert [i.command for i in items] == [22, 16, 16, 211, 16, 20]
        assert [i.frame for i in items] == [6, 6, 6, 2, 6, 2]  # DO_* and RTL in MAV_FRAME_MISSION
        assert all(i.mission_type == 0 for i in items)
        takeoff, _, drop, gripper, *_ = items
        assert (takeoff.x, takeoff.y, takeoff.z) == (225400000, 1140560000, 30.0)
        assert (drop.param1, drop.z) == (4.0, 8.0)
        assert (gripper.param1, gripper.param2) == (1.0, float(mavlink.GRIPPER_ACTION_RELEASE))
        # and back
        plan = await _with_server(peer, server, drone.download_mission())
        assert plan.items[0] == Takeoff(30.0, HOME[0], HOME[1])
        assert plan.items[1:] == PLAN.items[1:]
        peer.close()


@pytest.mark.parametrize(
    "faults",
    [
        {"legacy": True},
        {"duplicate": True},
        {"out_of_order": True},
        {"drop_count": 2},
    ],
    ids=["legacy-request", "duplicated-requests", "out-of-order", "lost-count"],
)
async def test_upload_survives_vehicle_quirks(
    env: Env, open_link: OpenLink, faults: dict[str, Any]
) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer, **faults)
        _report_state(peer, server, mavlink.MISSION_STATE_NOT_STARTED)
        await _with_server(peer, server, drone.upload_mission(PLAN))
        assert len(server.stored[0]) == 6
        if faults.get("drop_count"):
            assert server.counts_seen == 3
        peer.close()


async def test_upload_lost_item_is_resent(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)
        _report_state(peer, server, mavlink.MISSION_STATE_NOT_STARTED)
        dropped: list[int] = []

        def drop_item_two_once(m: Any) -> bool:
            if m.get_type() == "MISSION_ITEM_INT" and m.seq == 2 and not dropped:
                dropped.append(m.seq)
                return True  # lost on the way
            return False

        peer.auto.insert(0, drop_item_two_once)
        await _with_server(peer, server, drone.upload_mission(PLAN))
        assert dropped == [2] and len(server.stored[0]) == 6
        peer.close()


async def test_upload_refused(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer, nack=mavlink.MAV_MISSION_UNSUPPORTED_FRAME, nack_at=3)
        with pytest.raises(MissionUploadError) as info:
            await _with_server(peer, server, drone.upload_mission(PLAN))
        assert info.value.fields["result"] == "UNSUPPORTED_FRAME"
        assert info.value.fields["mission_type"] == "mission"
        peer.close()


async def test_upload_timeout_cancels(env: Env, open_link: OpenLink) -> None:
    async with open_link(mission_retries=2) as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer, silent_after=2)
        with pytest.raises(MissionUploadError) as info:
            await _with_server(peer, server, drone.upload_mission(PLAN))
        assert info.value.fields["result"] == "TIMEOUT"
        await eventually(
            lambda: (
                peer.count(
                    "MISSION_ACK", lambda m: m.type == mavlink.MAV_MISSION_OPERATION_CANCELLED
                )
                == 1
            )
        )
        # the last item was resent on each timeout
        assert peer.count("MISSION_ITEM_INT", lambda m: m.seq == 2) == 3
        peer.close()


async def test_accepted_but_invalid_reports_statustext_reason(
    env: Env, open_link: OpenLink
) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)

        def px4_rejects(m: Any) -> bool:
            if m.get_type() == "COMMAND_LONG" and m.command == mavlink.MAV_CMD_REQUEST_MESSAGE:
                peer.statustext("Geofence violation for waypoint 3\t")
                peer.mission_current(0, 6, mavlink.MISSION_STATE_NO_MISSION)
            return False

        peer.auto.insert(0, px4_rejects)
        with pytest.raises(MissionUploadError) as info:
            await _with_server(peer, server, drone.upload_mission(PLAN))
        assert info.value.fields["result"] == "INVALID"
        assert info.value.fields["reason"] == "Geofence violation for waypoint 3"
        peer.close()


async def test_invalid_with_event_only_reason(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)

        def px4_rejects(m: Any) -> bool:
            if m.get_type() == "COMMAND_LONG" and m.command == mavlink.MAV_CMD_REQUEST_MESSAGE:
                peer.mission_current(0, 6, mavlink.MISSION_STATE_NO_MISSION)
                # the reason arrives a little later, as EVENT only
                loop = asyncio.get_running_loop()
                loop.call_later(
                    0.03,
                    peer.event,
                    px4_event_id("navigator_mis_takeoff_too_low"),
                    pack_arguments("f", 3.0),
                    1,
                )
            return False

        peer.auto.insert(0, px4_rejects)
        with pytest.raises(MissionUploadError) as info:
            await _with_server(peer, server, drone.upload_mission(PLAN))
        assert info.value.fields["reason"] == (
            "Mission rejected: takeoff altitude too low! Minimum: 3.0 m"
        )
        peer.close()


async def test_stale_mission_current_is_not_the_verdict(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)

        def report(m: Any) -> bool:
            if m.get_type() == "COMMAND_LONG" and m.command == mavlink.MAV_CMD_REQUEST_MESSAGE:
                peer.mission_current(0, 3, mavlink.MISSION_STATE_NOT_STARTED)  # old 3-item plan
                peer.mission_current(0, 6, mavlink.MISSION_STATE_NO_MISSION)
            return False

        peer.auto.insert(0, report)
        with pytest.raises(MissionUploadError):
            await _with_server(peer, server, drone.upload_mission(PLAN))
        peer.close()


async def test_report_sent_with_the_ack_is_not_the_verdict(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)

        def px4(m: Any) -> bool:
            if m.get_type() == "MISSION_ITEM_INT" and m.seq == 5:
                # PX4's mavlink module reports the new count before the navigator checked it
                loop = asyncio.get_running_loop()
                loop.call_soon(peer.mission_current, 0, 6, mavlink.MISSION_STATE_NOT_STARTED)
            if m.get_type() == "COMMAND_LONG" and m.command == mavlink.MAV_CMD_REQUEST_MESSAGE:
                peer.statustext("Mission rejected: item 2: unsupported command: 99\t")
                peer.mission_current(0, 6, mavlink.MISSION_STATE_NO_MISSION)
            return False

        peer.auto.insert(0, px4)
        with pytest.raises(MissionUploadError) as info:
            await _with_server(peer, server, drone.upload_mission(PLAN))
        assert info.value.fields["reason"] == "Mission rejected: item 2: unsupported command: 99"
        peer.close()


async def test_a_valid_state_with_seq_65535_waits_for_the_navigator_then_is_taken(
    env: Env, open_link: OpenLink
) -> None:
    # PX4's mission manager reports seq 65535 from an upload until the navigator takes the
    # plan up (1.0 to 1.6 s on SITL): a "valid" state meanwhile may be the previous plan's. A
    # navigator that runs no plan (landed, disarmed, in mission mode) never takes it up: after
    # the grace the state is believed rather than no verdict at all.
    from firmware_bridges.mavlink.control import UNCHECKED_GRACE_S, VERIFY_SETTLE_S

    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)

        def never_taken_up(m: Any) -> bool:
            if m.get_type() == "COMMAND_LONG" and m.command == mavlink.MAV_CMD_REQUEST_MESSAGE:
                peer.mission_current(65535, 6, mavlink.MISSION_STATE_ACTIVE)
            return False

        peer.auto.insert(0, never_taken_up)
        clock = env.clock
        t0 = clock.monotonic()
        await _with_server(peer, server, drone.upload_mission(PLAN))
        waited = clock.monotonic() - t0
        assert VERIFY_SETTLE_S + UNCHECKED_GRACE_S <= waited < 15.0
        peer.close()


async def test_no_mission_state_report_fails(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)
        with pytest.raises(MissionUploadError) as info:
            await _with_server(peer, server, drone.upload_mission(PLAN))
        assert info.value.fields["result"] == "NO_MISSION_STATE"
        peer.close()


async def test_geofence_rally_and_clear(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)
        fence = Geofence(
            polygons=(
                FencePolygon(
                    ((22.53, 114.05), (22.55, 114.05), (22.55, 114.07), (22.53, 114.07)), True
                ),
                FencePolygon(((22.541, 114.061), (22.542, 114.061), (22.542, 114.062)), False),
            ),
            circles=(FenceCircle(22.545, 114.065, 50.0, False),),
        )
        await _with_server(peer, server, drone.upload_geofence(fence))
        items = server.stored[1]
        assert [i.command for i in items] == [5001] * 4 + [5002] * 3 + [5004]
        assert [i.param1 for i in items] == [4.0] * 4 + [3.0] * 3 + [50.0]
        assert all(i.mission_type == 1 for i in items)
        assert server.stored[0] == []  # the mission was not touched
        back = await _with_server(peer, server, drone.download_geofence())
        assert back == fence
        rally = [Position(22.541, 114.051, 0.0, 15.0)]
        await _with_server(peer, server, drone.upload_rally(rally))
        assert [(i.command, i.frame, i.mission_type) for i in server.stored[2]] == [(5100, 3, 2)]
        assert await _with_server(peer, server, drone.download_rally()) == rally
        await _with_server(peer, server, drone.upload_geofence(Geofence()))
        assert server.stored[1] == []
        server.stored[0] = ["x"]
        await _with_server(peer, server, drone.clear_mission())
        assert server.stored[0] == []
        assert peer.count("MISSION_CLEAR_ALL", lambda m: m.mission_type == 0) == 1
        peer.close()


async def test_land_without_position_lands_at_previous_item(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)
        _report_state(peer, server, mavlink.MISSION_STATE_NOT_STARTED)
        plan = FlightPlan((Waypoint(22.541, 114.057, 20.0), Land()))
        await _with_server(peer, server, drone.upload_mission(plan))
        wp, land = server.stored[0]
        assert land.command == 21 and (land.x, land.y) == (wp.x, wp.y) and land.frame == 6
        peer.close()


async def test_requests_for_another_ground_station_are_ignored(
    env: Env, open_link: OpenLink
) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        server = MissionServer(peer)
        _report_state(peer, server, mavlink.MISSION_STATE_NOT_STARTED)

        def other_gcs(m: Any) -> bool:
            if m.get_type() == "MISSION_COUNT":
                # a request addressed to another GCS (254) must not be answered by us
                peer.send(mavlink.MAVLink_mission_request_int_message(254, 190, 4, 0))
            return False

        peer.auto.insert(0, other_gcs)
        await _with_server(peer, server, drone.upload_mission(PLAN))
        assert peer.count("MISSION_ITEM_INT", lambda m: m.seq == 4) == 1
        assert link.stats.foreign >= 1
        peer.close()
