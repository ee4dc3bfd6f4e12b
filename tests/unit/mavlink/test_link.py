"""The MAVLink link over real UDP: discovery, heartbeats, telemetry, texts, link state, garbage."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.control import STREAMS, MavlinkDrone
from firmware_bridges.mavlink.wire import px4
from firmware_bridges.mavlink.wire.px4_events import pack_arguments, px4_event_id
from fleet.drone import DroneControl
from fleet.errors import ConfigError
from fleet.events import Severity, VehicleEvent, VehicleEventKind
from fleet.link import create_link
from fleet.vehicle import (
    Capability,
    FlightMode,
    LandedState,
    LinkState,
    MissionRunState,
    VehicleKind,
)
from tests.support import eventually
from tests.unit.mavlink.conftest import Env, OpenLink
from tests.unit.mavlink.peer import Peer


async def _discovered(env: Env, peer: Peer, vehicle_id: str = "drone-1") -> MavlinkDrone:
    async def seen() -> bool:
        peer.heartbeat()
        await asyncio.sleep(0.02)
        return vehicle_id in env.registry

    await eventually(seen, message=f"{vehicle_id} discovered")
    control = env.registry.get(vehicle_id).control
    assert isinstance(control, MavlinkDrone)
    return control


async def test_discovery_registers_vehicle_and_publishes(env: Env, open_link: OpenLink) -> None:
    with env.bus.subscribe() as events:
        async with open_link(payload_kg=2.5) as link:
            peer = await Peer.open(link.local_address)
            try:
                control = await _discovered(env, peer)
                entry = env.registry.get("drone-1")
                assert entry.info.kind == VehicleKind.DRONE
                assert entry.info.address == "1"
                assert entry.info.link_url == link.url
                assert entry.info.capabilities == frozenset({Capability.DELIVERY})
                assert entry.info.payload_kg == 2.5
                assert isinstance(control, DroneControl)
                assert control.vehicle_id == "drone-1"
                assert link.vehicle_ids == ["drone-1"]
                first = await asyncio.wait_for(events.get(), 2)
                assert isinstance(first, VehicleEvent)
                assert first.kind == VehicleEventKind.DISCOVERED
                assert first.vehicle_id == "drone-1"
                # our ground-station heartbeat reaches the vehicle, repeatedly
                hb = await peer.expect("HEARTBEAT")
                assert hb.type == mavlink.MAV_TYPE_GCS
                assert hb.autopilot == mavlink.MAV_AUTOPILOT_INVALID
                assert hb.get_srcSystem() == 255 and hb.get_srcComponent() == 190
                await peer.expect("HEARTBEAT")
                # and the streams the service relies on are requested
                intervals: set[int] = set()
                while len(intervals) < len(STREAMS):
                    cmd = await peer.expect("COMMAND_LONG")
                    if cmd.command == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
                        peer.ack(cmd.command)
                        intervals.add(int(cmd.param1))
                assert mavlink.MAVLINK_MSG_ID_HOME_POSITION in intervals
                assert mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE in intervals
                # PX4 has no MISSION_CURRENT stream (it answers FAILED); it sends it anyway
                assert mavlink.MAVLINK_MSG_ID_MISSION_CURRENT not in intervals
            finally:
                peer.close()


async def test_rover_names_and_non_autopilots(env: Env, open_link: OpenLink) -> None:
    async with open_link(vehicle_names={"3": "van-drone-a"}) as link:
        peer = await Peer.open(link.local_address, sysid=2)
        gcs = await Peer.open(link.local_address, sysid=200)
        named = await Peer.open(link.local_address, sysid=3)
        try:

            async def all_seen() -> bool:
                peer.heartbeat(mav_type=mavlink.MAV_TYPE_GROUND_ROVER)
                named.heartbeat()
                gcs.send(
                    mavlink.MAVLink_heartbeat_message(
                        mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3
                    )
                )
                await asyncio.sleep(0.02)
                return "rover-2" in env.registry and "van-drone-a" in env.registry

            await eventually(all_seen)
            assert env.registry.get("rover-2").info.kind == VehicleKind.ROVER
            assert len(env.registry) == 2  # the other ground station is not a vehicle
            assert link.stats.foreign > 0
        finally:
            for p in (peer, gcs, named):
                p.close()


async def test_telemetry_updates_status(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer = await Peer.open(link.local_address)
        try:
            await _discovered(env, peer)
            with env.bus.subscribe() as events:
                peer.heartbeat(mode=(px4.MainMode.AUTO, px4.AutoSubMode.MISSION), armed=True)
                peer.send(
                    mavlink.MAVLink_global_position_int_message(
                        1000, 225401234, 1140567890, 52300, 40100, 300, 400, -150, 9050
                    )
                )
                peer.send(
                    mavlink.MAVLink_home_position_message(
                        225400000, 1140560000, 12200, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0
                    )
                )
                peer.send(
                    mavlink.MAVLink_sys_status_message(
                        0x1000_0000, 0x1000_0000, 0x1000_0000, 0, 15800, -1, 76, 0, 0, 0, 0, 0, 0
                    )
                )
                peer.send(
                    mavlink.MAVLink_extended_sys_state_message(0, mavlink.MAV_LANDED_STATE_IN_AIR)
                )
                peer.mission_current(2, 7, mavlink.MISSION_STATE_ACTIVE)
                peer.send(mavlink.MAVLink_mission_item_reached_message(1))
                status = env.registry.get("drone-1").status

                def updated() -> bool:
                    return status.mission.reached == 1 and status.position is not None

                await eventually(updated)
                assert status.armed and status.mode == FlightMode.MISSION
                assert status.position is not None
                assert status.position.lat == pytest.approx(22.5401234)
                assert status.position.lon == pytest.approx(114.056789)
                assert status.position.alt == pytest.approx(52.3)
                assert status.position.rel_alt == pytest.approx(40.1)
                assert status.ground_speed_mps == pytest.approx(5.0)
                assert status.climb_rate_mps == pytest.approx(1.5)
                assert status.heading_deg == pytest.approx(90.5)
                assert status.home is not None and status.home.alt == pytest.approx(12.2)
                assert status.battery_fraction == pytest.approx(0.76)
                assert status.battery_voltage == pytest.approx(15.8)
                assert status.ready_to_arm
                assert status.landed == LandedState.IN_AIR
                assert (status.mission.current, status.mission.total) == (2, 7)
                assert status.mission.state == MissionRunState.ACTIVE
                assert status.link == LinkState.ONLINE
                kinds = set()
                while (ev := events.get_nowait()) is not None:
                    assert isinstance(ev, VehicleEvent)
                    kinds.add(ev.kind)
                assert {VehicleEventKind.ARMED, VehicleEventKind.MODE_CHANGED} <= kinds
            # battery status wins over sys status when it comes later; not-ready clears the flag
            peer.send(
                mavlink.MAVLink_battery_status_message(0, 0, 0, 0, [65535] * 10, -1, -1, -1, 41)
            )
            peer.send(
                mavlink.MAVLink_sys_status_message(
                    0x1000_0000, 0x1000_0000, 0, 0, 15800, -1, -1, 0, 0, 0, 0, 0, 0
                )
            )
            await eventually(lambda: not status.ready_to_arm and status.battery_fraction == 0.41)
        finally:
            peer.close()


async def test_failsafe_mode_switch_and_invalid_mission_state(
    env: Env, open_link: OpenLink
) -> None:
    async with open_link() as link:
        peer = await Peer.open(link.local_address)
        try:
            await _discovered(env, peer)
            peer.heartbeat(mode=(px4.MainMode.AUTO, px4.AutoSubMode.MISSION), armed=True)
            status = env.registry.get("drone-1").status
            await eventually(lambda: status.mode == FlightMode.MISSION)
            with env.bus.subscribe(
                lambda e: getattr(e, "kind", None) == VehicleEventKind.FAILSAFE
            ) as fs:
                peer.heartbeat(mode=(px4.MainMode.AUTO, px4.AutoSubMode.RTL), armed=True)
                ev = await asyncio.wait_for(fs.get(), 2)
                assert isinstance(ev, VehicleEvent) and ev.data["mode"] == "rtl"
            # "no mission" with a count: not checked yet, or rejected; only the vehicle's
            # reason makes it a rejection
            peer.mission_current(0, 4, mavlink.MISSION_STATE_NO_MISSION)
            await eventually(lambda: status.mission.state == MissionRunState.UNCHECKED)
            with env.bus.subscribe(
                lambda e: getattr(e, "kind", None) == VehicleEventKind.MISSION_STATE
            ) as changes:
                peer.event(
                    px4_event_id("navigator_mis_geofence_violation"), pack_arguments("h", 3), 1
                )
                await eventually(lambda: status.mission.state == MissionRunState.INVALID)
                ev = await asyncio.wait_for(changes.get(), 2)
                assert isinstance(ev, VehicleEvent)
                assert ev.data["reasons"] == ["Geofence violation for waypoint 3"]
            peer.mission_current(0, 0, mavlink.MISSION_STATE_NO_MISSION)
            await eventually(lambda: status.mission.state == MissionRunState.NO_MISSION)
        finally:
            peer.close()


async def test_link_lost_and_regained(env: Env, open_link: OpenLink) -> None:
    async with open_link(link_timeout_s=2.0) as link:
        peer = await Peer.open(link.local_address)
        try:
            await _discovered(env, peer)
            status = env.registry.get("drone-1").status
            with env.bus.subscribe() as events:
                # silence: 2 world s = 0.2 real s
                await eventually(lambda: status.link == LinkState.LOST, timeout=5)
                lost = await asyncio.wait_for(events.get(), 2)
                assert isinstance(lost, VehicleEvent) and lost.kind == VehicleEventKind.LINK_LOST
                assert lost.severity == Severity.WARNING
                peer.heartbeat()
                await eventually(lambda: status.link == LinkState.ONLINE)
                regained = await asyncio.wait_for(events.get(), 2)
                assert isinstance(regained, VehicleEvent)
                assert regained.kind == VehicleEventKind.LINK_REGAINED
        finally:
            peer.close()


async def test_a_stalled_service_does_not_declare_its_vehicles_lost(
    env: Env, open_link: OpenLink
) -> None:
    """The whole process stalls longer than the link timeout (the vehicle's heartbeats, sent
    by a timer as a vehicle simulated in the same process sends them, are late too): the time
    the watchdog ran late is not the vehicle's silence, and nothing is declared lost; a
    vehicle that then falls silent for real is still found."""
    async with open_link(link_timeout_s=2.0) as link:
        peer = await Peer.open(link.local_address)
        beating = True

        async def beat() -> None:
            while beating:
                peer.heartbeat()
                await env.clock.sleep(0.5)

        task = asyncio.get_running_loop().create_task(beat())
        try:
            await _discovered(env, peer)
            status = env.registry.get("drone-1").status
            with env.bus.subscribe() as events:
                for _ in range(3):
                    await env.clock.sleep(1.0)
                    # the event loop stalls on purpose: 3.5 world s, over the timeout
                    time.sleep(0.35)  # noqa: ASYNC251
                await env.clock.sleep(2.0)
                assert status.link == LinkState.ONLINE
                lost = [
                    e
                    for e in iter(events.get_nowait, None)
                    if isinstance(e, VehicleEvent) and e.kind == VehicleEventKind.LINK_LOST
                ]
                assert lost == [], "no LINK_LOST for a stall of the service itself"
            beating = False  # the vehicle falls silent for real: found as before
            await eventually(lambda: status.link == LinkState.LOST, timeout=5)
        finally:
            beating = False
            task.cancel()
            peer.close()


async def test_status_texts_chunks_components_and_events(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer = await Peer.open(link.local_address)
        camera = await Peer.open(link.local_address, sysid=1, compid=100)
        try:
            await _discovered(env, peer)
            with env.bus.subscribe(
                lambda e: getattr(e, "kind", None) == VehicleEventKind.STATUS_TEXT
            ) as texts:
                peer.statustext(
                    "Preflight Fail: No connection to the GCS\t", mavlink.MAV_SEVERITY_CRITICAL
                )
                ev = await asyncio.wait_for(texts.get(), 2)
                assert isinstance(ev, VehicleEvent)
                assert ev.message == "Preflight Fail: No connection to the GCS"
                assert ev.severity == Severity.ERROR
                # a 70-character text in two chunks (id 7), the second arriving first
                long = "A" * 50 + "the end of a long message"
                peer.statustext(long[50:], mavlink.MAV_SEVERITY_WARNING, id=7, chunk_seq=1)
                peer.statustext(long[:50], mavlink.MAV_SEVERITY_WARNING, id=7, chunk_seq=0)
                ev = await asyncio.wait_for(texts.get(), 2)
                assert isinstance(ev, VehicleEvent)
                assert ev.message == long and ev.severity == Severity.WARNING
                # a payload component's text is kept, with the component
                camera.statustext("gripper: jammed", mavlink.MAV_SEVERITY_WARNING)
                ev = await asyncio.wait_for(texts.get(), 2)
                assert isinstance(ev, VehicleEvent) and ev.data["component"] == 100
                # PX4 EVENT (not in pymavlink's dialect) rendered from its template
                eid = px4_event_id("navigator_mis_geofence_violation")
                peer.event(eid, pack_arguments("h", 2), seq=10)
                ev = await asyncio.wait_for(texts.get(), 2)
                assert isinstance(ev, VehicleEvent)
                assert ev.message == "Geofence violation for waypoint 2"
                assert ev.data["source"] == "event" and ev.severity == Severity.ERROR
                # a gap in the event sequence is re-requested
                peer.event(0x01ABCDEF, b"\x05", seq=13, level=4)
                req = await peer.expect("REQUEST_EVENT")
                assert (req.first_sequence, req.last_sequence) == (11, 12)
                ev = await asyncio.wait_for(texts.get(), 2)
                assert isinstance(ev, VehicleEvent)
                assert ev.message == "event 0x01abcdef args=05" and ev.severity == Severity.WARNING
        finally:
            peer.close()
            camera.close()


async def test_garbage_is_counted_and_never_fatal(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer = await Peer.open(link.local_address)
        try:
            await _discovered(env, peer)
            good = bytes(
                mavlink.MAVLink_sys_status_message(
                    0, 0, 0, 0, 12000, -1, 55, 0, 0, 0, 0, 0, 0
                ).pack(peer.mav)
            )
            bad_crc = bytearray(good)
            bad_crc[-1] ^= 0xFF
            peer.send_raw(os.urandom(300).replace(b"\xfd", b"\x00").replace(b"\xfe", b"\x00"))
            peer.send_raw(good[:7])  # truncated header
            peer.send_raw(good[:-3])  # truncated frame
            peer.send_raw(bytes(bad_crc))
            peer.send_raw(b"\xfd\xff" + b"\x00" * 20)  # claims 255 bytes
            peer.send_raw(b"junk" + good)  # garbage before a good frame
            status = env.registry.get("drone-1").status
            await eventually(lambda: status.battery_fraction == 0.55)
            stats = link.stats
            assert stats.garbage_bytes >= 304
            assert stats.truncated >= 3
            assert stats.bad_crc >= 1
            assert stats.handler_errors == 0
            # the link still works
            peer.heartbeat(mode=(px4.MainMode.AUTO, px4.AutoSubMode.LAND))
            await eventually(lambda: status.mode == FlightMode.LAND)
        finally:
            peer.close()


async def test_two_vehicles_one_endpoint_and_one_socket(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        a = await Peer.open(link.local_address, sysid=1)
        b = await Peer.open(link.local_address, sysid=2)
        try:
            await _discovered(env, a, "drone-1")
            await _discovered(env, b, "drone-2")

            # a third system id behind the same socket as the first (a router, a MAVLink hub)
            def third() -> bool:
                a.heartbeat(srcsys=3)
                return "drone-3" in env.registry

            await eventually(third)
            d1 = env.registry.get("drone-1").control
            d2 = env.registry.get("drone-2").control
            assert d1.address == a.address and d2.address == b.address
            assert env.registry.get("drone-3").control.address == a.address
            # each is answered at its own address: a command to drone-2 reaches only b
            b.auto_ack()
            await d2.arm()
            assert b.count("COMMAND_LONG", lambda m: m.command == 400 and m.target_system == 2) >= 1
            assert a.count("COMMAND_LONG", lambda m: m.command == 400) == 0
        finally:
            a.close()
            b.close()


async def test_udpout_sends_first(env: Env, open_link: OpenLink) -> None:
    vehicle = await Peer.open(None)
    try:
        _, port = vehicle.address
        async with open_link(f"mavlink+udpout://localhost:{port}") as link:
            hb = await vehicle.expect("HEARTBEAT")  # we spoke first
            assert hb.type == mavlink.MAV_TYPE_GCS
            assert vehicle.gcs_addr is not None
            await _discovered(env, vehicle)
            assert link.vehicle_ids == ["drone-1"]
    finally:
        vehicle.close()


async def test_rcvbuf_and_bad_urls(env: Env, open_link: OpenLink) -> None:
    async with open_link(rcvbuf_bytes=1 << 20) as link:
        assert link.rcvbuf_granted is not None and link.rcvbuf_granted > 0
    with pytest.raises(ConfigError):
        create_link("mavlink+udpin://127.0.0.1", env.ctx())
    with pytest.raises(ConfigError):
        create_link("mavlink+udpin://127.0.0.1:14540", env.ctx(link_timeout_s=-1))
    with pytest.raises(ConfigError):
        create_link("mavlink+udpin://127.0.0.1:14540", env.ctx(signing_key="abcd"))


async def test_port_in_use_is_a_link_error(env: Env, open_link: OpenLink) -> None:
    from fleet.errors import LinkError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(LinkError):
            async with open_link(f"mavlink+udpin://127.0.0.1:{port}"):
                pass


async def test_mavlink1_vehicle_is_understood(env: Env, open_link: OpenLink) -> None:
    """PX4 may talk MAVLink 1 until it hears MAVLink 2 from the ground station."""
    async with open_link() as link:
        peer = await Peer.open(link.local_address, sysid=7)
        try:
            hb = mavlink.MAVLink_heartbeat_message(
                mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_PX4, 0, 0, 3, 3
            )

            def seen() -> bool:
                peer.send_raw(bytes(hb.pack(peer.mav, force_mavlink1=True)))
                return "drone-7" in env.registry

            await eventually(seen)
            # and our answer is MAVLink 2
            ours = await peer.expect("HEARTBEAT")
            assert ours.get_msgbuf()[0] == 0xFD
        finally:
            peer.close()


async def test_incomplete_chunks_and_repeated_events(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer = await Peer.open(link.local_address)
        try:
            await _discovered(env, peer)
            peer.beat()
            with env.bus.subscribe(
                lambda e: getattr(e, "kind", None) == VehicleEventKind.STATUS_TEXT
            ) as texts:
                # chunk 1 of 3 is lost: after 2 world seconds the rest is reported, marked
                peer.statustext("B" * 50, mavlink.MAV_SEVERITY_INFO, id=9, chunk_seq=0)
                peer.statustext("tail", mavlink.MAV_SEVERITY_INFO, id=9, chunk_seq=2)
                ev = await asyncio.wait_for(texts.get(), 2)
                assert isinstance(ev, VehicleEvent)
                assert ev.message == "B" * 50 + "…tail" and ev.data["incomplete"] is True
                # an EVENT sent again (after a request) is not recorded twice
                eid = px4_event_id("navigator_mis_no_home_rel_alt")
                peer.event(eid, pack_arguments("h", 4), seq=3, level=4)
                peer.event(eid, pack_arguments("h", 4), seq=3, level=4)
                peer.statustext("marker", mavlink.MAV_SEVERITY_INFO)
                got = []
                while True:
                    ev = await asyncio.wait_for(texts.get(), 2)
                    assert isinstance(ev, VehicleEvent)
                    if ev.message == "marker":
                        break
                    got.append(ev.message)
                assert got == [
                    "Mission rejected: No home position, waypoint 4 uses relative altitude"
                ]
        finally:
            peer.close()
