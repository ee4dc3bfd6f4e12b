"""Mission, fence and rally protocol over UDP, and mission execution as PX4 runs it."""

from __future__ import annotations

import asyncio

from pymavlink.dialects.v20 import common as mavlink

from fleet.geo import LatLon, distance_m, offset_latlon
from sim.truth import TruthKind
from tests.support import eventually
from tests.unit.sim.gcs import Gcs
from tests.unit.sim.harness import HOME, fleet_and_gcs

REL = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
MIS = mavlink.MAV_FRAME_MISSION
WP = mavlink.MAV_CMD_NAV_WAYPOINT
NAN = float("nan")


def at(east: float, north: float) -> tuple[float, float]:
    return offset_latlon(HOME.lat, HOME.lon, east, north)


def wp(east: float, north: float, alt: float, hold: float = 0.0) -> tuple:
    lat, lon = at(east, north)
    return (REL, WP, hold, 1.0, 0, NAN, lat, lon, alt)


async def download(gcs: Gcs, mission_type: int = 0) -> list:
    since = gcs.mark()
    gcs.send(gcs.mav.mission_request_list_encode(1, 1, mission_type))
    count = await gcs.wait_for("MISSION_COUNT", since=since)
    items = []
    for seq in range(count.count):
        since = gcs.mark()
        gcs.send(gcs.mav.mission_request_int_encode(1, 1, seq, mission_type))
        items.append(
            await gcs.wait_for("MISSION_ITEM_INT", lambda m, s=seq: m.seq == s, since=since)
        )
    gcs.send(gcs.mav.mission_ack_encode(1, 1, mavlink.MAV_MISSION_ACCEPTED, mission_type))
    return items


async def test_upload_download_clear_for_every_plan_type() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        mission = [
            wp(0, 20, 10),
            wp(20, 20, 10, hold=3),
            (MIS, mavlink.MAV_CMD_DO_GRIPPER, 1, 0, 0, 0, 0, 0, 0),
        ]
        ack = await gcs.upload(mission)
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED and ack.mission_type == 0
        corners = [at(e, n) for e, n in ((-100, -100), (100, -100), (100, 100), (-100, 100))]
        fence = [
            (REL, mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, 4, 0, 0, 0, lat, lon, 0)
            for lat, lon in corners
        ]
        fence.append(
            (REL, mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, 15.0, 0, 0, 0, *at(50, 50), 0)
        )
        ack = await gcs.upload(fence, mission_type=1)
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED and ack.mission_type == 1
        ack = await gcs.upload(
            [(REL, mavlink.MAV_CMD_NAV_RALLY_POINT, 0, 0, 0, 0, *at(-30, 0), 0)], mission_type=2
        )
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED

        got = await download(gcs, 0)
        assert [m.command for m in got] == [WP, WP, mavlink.MAV_CMD_DO_GRIPPER]
        assert got[1].param1 == 3 and abs(got[1].z - 10) < 1e-6
        assert got[1].x == round(at(20, 20)[0] * 1e7)
        assert got[0].current == 1 and got[1].current == 0
        assert len(await download(gcs, 1)) == 5
        assert len(await download(gcs, 2)) == 1
        assert not fleet[0].ap.fence.inside_areas(*at(50, 50))

        since = gcs.mark()
        gcs.send(gcs.mav.mission_clear_all_encode(1, 1, mavlink.MAV_MISSION_TYPE_ALL))
        ack = await gcs.wait_for("MISSION_ACK", since=since)
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED
        for t in (0, 1, 2):
            assert await download(gcs, t) == []
        cur = await gcs.wait_for("MISSION_CURRENT", since=gcs.mark())
        assert cur.total == 0xFFFF and cur.mission_state == 1


async def test_invalid_items_abort_the_upload_and_keep_the_previous_plan() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        assert (
            await gcs.upload([wp(0, 20, 10), wp(0, 40, 10)])
        ).type == mavlink.MAV_MISSION_ACCEPTED
        # DO_* in a global frame: UNSUPPORTED
        bad = [wp(0, 20, 10), (REL, mavlink.MAV_CMD_DO_GRIPPER, 1, 0, 0, 0, 0, 0, 0), wp(0, 60, 10)]
        ack = await gcs.upload(bad)
        assert ack.type == mavlink.MAV_MISSION_UNSUPPORTED
        assert len(fleet[0].missions.plans[0]) == 2
        # a frame PX4 does not take: UNSUPPORTED_FRAME
        ack = await gcs.upload([(mavlink.MAV_FRAME_LOCAL_NED, WP, 0, 0, 0, 0, 1, 1, 10)])
        assert ack.type == mavlink.MAV_MISSION_UNSUPPORTED_FRAME
        # rally points only in global frames
        ack = await gcs.upload(
            [(MIS, mavlink.MAV_CMD_NAV_RALLY_POINT, 0, 0, 0, 0, 0, 0, 0)], mission_type=2
        )
        assert ack.type == mavlink.MAV_MISSION_UNSUPPORTED
        # fence polygon with fewer than 3 vertices
        ack = await gcs.upload(
            [(REL, mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, 2, 0, 0, 0, *at(0, 0), 0)]
            * 2,
            mission_type=1,
        )
        assert ack.type == mavlink.MAV_MISSION_ERROR
        # fence items in a mission
        ack = await gcs.upload(
            [(REL, mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, 5, 0, 0, 0, *at(0, 0), 0)]
        )
        assert ack.type == mavlink.MAV_MISSION_ERROR
        # more rally points than PX4 stores
        since = gcs.mark()
        gcs.send(gcs.mav.mission_count_encode(1, 1, 33, 2))  # PX4 stores 32
        ack = await gcs.wait_for("MISSION_ACK", since=since)
        assert ack.type == mavlink.MAV_MISSION_NO_SPACE
        assert len(fleet[0].missions.plans[0]) == 2


async def test_retry_and_timeout_of_an_upload() -> None:
    async with fleet_and_gcs(1, speed=10.0) as (fleet, gcs):
        v = fleet[0]
        since = gcs.mark()
        gcs.send(gcs.mav.mission_count_encode(1, 1, 2, 0))
        first = await gcs.wait_for("MISSION_REQUEST_INT", since=since)
        t0 = v.now()
        again = await gcs.wait_for("MISSION_REQUEST_INT", since=gcs.messages.index(first) + 1)
        assert again.seq == 0
        assert 0.2 <= v.now() - t0 < 1.5  # re-requested after 250 ms
        # another partner cannot start an upload meanwhile
        other = Gcs(0, sysid=254)
        other.mav.file = gcs._sink
        since = gcs.mark()
        gcs.send(other.mav.mission_count_encode(1, 1, 1, 0), mav=other.mav)
        nack = await gcs.wait_for("MISSION_ACK", lambda m: m.target_system == 254, since=since)
        assert nack.type == mavlink.MAV_MISSION_ERROR
        # silence: the transfer is abandoned after 5 s
        txt = await gcs.wait_for("STATUSTEXT", lambda m: "Operation timeout" in m.text, timeout=10)
        assert txt.severity == mavlink.MAV_SEVERITY_CRITICAL
        assert 4.5 <= v.now() - t0 <= 7.0
        assert (await gcs.upload([wp(0, 20, 10)])).type == mavlink.MAV_MISSION_ACCEPTED


async def test_mission_current_states_reached_repetition_and_start_while_disarmed() -> None:
    async with fleet_and_gcs(1, speed=20.0) as (fleet, gcs):
        v = fleet[0]
        cur = await gcs.wait_for("MISSION_CURRENT", since=gcs.mark())
        assert cur.total == 0xFFFF and cur.mission_state == 1  # no mission
        plan = [
            (REL, mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, NAN, *at(0, 0), 10),
            wp(0, 30, 10),
            (REL, mavlink.MAV_CMD_NAV_LAND, 0, 0, 0, NAN, *at(0, 30), 0),
        ]
        since = gcs.mark()
        assert (await gcs.upload(plan)).type == mavlink.MAV_MISSION_ACCEPTED
        # as PX4: seq 65535 and "no mission" with the new count until the navigator has
        # checked the plan (it needs home and a global position: right after boot, later)
        cur = await gcs.wait_for("MISSION_CURRENT", lambda m: m.total == 3, since=since)
        assert (cur.seq, cur.total, cur.mission_state, cur.mission_mode) == (0xFFFF, 3, 1, 2)
        cur = await gcs.wait_for("MISSION_CURRENT", lambda m: m.mission_state == 2, timeout=5)
        assert (cur.seq, cur.total, cur.mission_state, cur.mission_mode) == (0, 3, 2, 2)
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        ack = await gcs.command(mavlink.MAV_CMD_MISSION_START, 0, 0)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        assert v.ap.armed  # MISSION_START arms
        cur = await gcs.wait_for(
            "MISSION_CURRENT", lambda m: m.mission_state == 3, since=gcs.mark()
        )
        assert cur.mission_mode == 1
        done = await gcs.wait_for("MISSION_CURRENT", lambda m: m.mission_state == 5, timeout=20)
        assert done.seq == 2
        await eventually(lambda: not v.ap.armed, 10)  # COM_DISARM_LAND
        landing = v.truth.landings[-1]
        disarm = v.truth.of(TruthKind.DISARMED)[-1]
        assert 1.5 <= disarm.t - landing.t <= 2.8
        assert landing.distance_to(LatLon(*at(0, 30))) < 1.0
        reached = [m for m in gcs.of("MISSION_ITEM_REACHED") if m.seq == 2]
        await eventually(
            lambda: len([m for m in gcs.of("MISSION_ITEM_REACHED") if m.seq == 2]) >= 8, 5
        )
        reached = [m for m in gcs.of("MISSION_ITEM_REACHED") if m.seq == 2]
        assert len(reached) <= 11
        # about once a world second: as many 1 Hz heartbeats as repetition intervals
        a, b = gcs.messages.index(reached[1]), gcs.messages.index(reached[-1])
        beats = sum(1 for m in gcs.messages[a:b] if m.get_type() == "HEARTBEAT")
        assert abs(beats - (len(reached) - 2)) <= 1
        assert [e.seq for e in v.truth.of(TruthKind.ITEM_REACHED)] == [0, 1, 2]


async def test_waypoint_outside_the_fence_makes_the_mission_invalid() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        corners = [at(e, n) for e, n in ((-100, -100), (100, -100), (100, 100), (-100, 100))]
        fence = [
            (REL, mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, 4, 0, 0, 0, lat, lon, 0)
            for lat, lon in corners
        ]
        fence.append(
            (REL, mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, 10.0, 0, 0, 0, *at(0, 50), 0)
        )
        assert (await gcs.upload(fence, mission_type=1)).type == mavlink.MAV_MISSION_ACCEPTED
        # a leg through the exclusion circle is not checked (as on PX4): valid
        since = gcs.mark()
        ack = await gcs.upload([wp(0, 0, 10), wp(0, 90, 10)])
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED
        cur = await gcs.wait_for("MISSION_CURRENT", lambda m: m.seq != 0xFFFF, since=since)
        assert cur.mission_state == 2
        # waypoint 2 outside: ACK accepted, mission invalid, reason as STATUSTEXT
        since = gcs.mark()
        ack = await gcs.upload([wp(0, 20, 10), wp(0, 300, 10)])
        assert ack.type == mavlink.MAV_MISSION_ACCEPTED
        txt = await gcs.wait_for(
            "STATUSTEXT", lambda m: "Geofence violation for waypoint 2" in m.text, since=since
        )
        assert txt.severity <= mavlink.MAV_SEVERITY_CRITICAL
        cur = await gcs.wait_for("MISSION_CURRENT", since=gcs.mark())
        assert cur.mission_state == 1 and cur.total == 2 and cur.seq == 0
        ack = await gcs.command(mavlink.MAV_CMD_MISSION_START, 0, 0)
        assert ack.result == mavlink.MAV_RESULT_DENIED
        ack = await gcs.set_mode(4, 4)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        assert not v.ap.armed


async def test_mission_without_takeoff_climbs_first_and_gripper_does_not_block() -> None:
    async with fleet_and_gcs(1, speed=20.0) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        plan = [
            wp(40, 0, 15),
            (MIS, mavlink.MAV_CMD_DO_GRIPPER, 1, mavlink.GRIPPER_ACTION_RELEASE, 0, 0, 0, 0, 0),
            wp(40, 0, 15, hold=3),
            (MIS, mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, 0, 0, 0, 0, 0, 0, 0),
        ]
        since = gcs.mark()
        assert (await gcs.upload(plan)).type == mavlink.MAV_MISSION_ACCEPTED
        # start once the navigator has judged the plan (as a ground station must on PX4)
        await gcs.wait_for("MISSION_CURRENT", lambda m: m.mission_state == 2, since=since)
        ack = await gcs.command(mavlink.MAV_CMD_MISSION_START, 0, 0)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        samples: list[tuple[float, float]] = []

        async def sample() -> None:
            while True:
                lat, lon = v.ap.latlon()
                samples.append(
                    (v.ap.rel_alt(), distance_m(LatLon(HOME.lat, HOME.lon), LatLon(lat, lon)))
                )
                await asyncio.sleep(0.005)

        task = asyncio.create_task(sample())
        try:
            await eventually(lambda: v.truth.releases, 20)
        finally:
            task.cancel()
        # vertical climb to the first waypoint's altitude before going there
        assert all(d < 1.0 for alt, d in samples if alt < 13.0)
        rel = v.truth.releases[0]
        assert rel.distance_to(LatLon(*at(40, 0))) < 2.5
        reached = {e.seq: e.t for e in v.truth.of(TruthKind.ITEM_REACHED)}
        assert abs(reached[1] - rel.t) < 0.5  # MIS_COMMAND_TOUT 0: no wait
        await eventually(lambda: not v.ap.armed, 40)
        assert "rtl" in v.truth.modes
        assert v.truth.landings[-1].distance_to(LatLon(HOME.lat, HOME.lon)) < 1.5


async def test_armed_without_start_disarms_after_com_disarm_prflt() -> None:
    async with fleet_and_gcs(1, speed=20.0) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await eventually(lambda: not v.ap.armed, 5)
        armed = v.truth.of(TruthKind.ARMED)[-1]
        disarmed = v.truth.of(TruthKind.DISARMED)[-1]
        assert 9.9 <= disarmed.t - armed.t <= 10.6
        assert "preflight" in disarmed.detail
