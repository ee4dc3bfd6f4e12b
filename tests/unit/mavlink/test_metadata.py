"""Component metadata fetched from vehicles (sim drones, scripted peers) and its cache."""

from __future__ import annotations

import asyncio
import json
import lzma
import time
from pathlib import Path
from typing import Any

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.wire import component_info, ftp_protocol
from firmware_bridges.mavlink.wire.component_info import (
    COMP_METADATA_TYPE_EVENTS,
    ComponentInformationMessage,
    MetadataEntry,
)
from firmware_bridges.mavlink.wire.px4_events import pack_arguments, px4_event_id
from fleet.vehicle import LinkState
from sim.drone import metadata as sim_metadata
from sim.drone.arming_report import CheckFailure, emit_report, mode_bits
from sim.drone.events import LOG_WARNING
from sim.drone.ftp_server import FtpServer
from tests.support import eventually
from tests.unit.mavlink.conftest import Env, OpenLink
from tests.unit.mavlink.peer import Peer
from tests.unit.mavlink.simlink import sim_link

FW_DIR = "fw-1.15.0.255"
"""Cache directory of the sim's firmware version (AUTOPILOT_VERSION 1.15.0 release)."""


async def test_sim_metadata_is_downloaded_cached_and_used(tmp_path: Path) -> None:
    async with sim_link(1, cache_dir=tmp_path) as sl:
        drone = sl.drone(1)
        await eventually(lambda: drone.metadata_state == "loaded from vehicle")
        md = drone.event_metadata
        assert md is not None and len(md) == len(sim_metadata.SIM_EVENTS)
        assert drone.flight_sw_version == 0x010F00FF
        files = sim_metadata.files()
        cached = sorted(p.name for p in (tmp_path / FW_DIR).iterdir())
        assert cached == sorted(
            [
                f"{files.general_crc:08x}-component_general.json.xz",
                f"{files.events_crc:08x}-all_events.json.xz",
            ]
        )
        # two files: OpenFileRO, BurstReadFile, TerminateSession each
        assert sl.fleet[0].ftp.stats.requests == 6
        # events now render with the vehicle's own definitions
        eid = px4_event_id("commander_armed_by")
        ev = drone.render_event(eid, pack_arguments("B", 5))
        assert ev.definition is md.get(eid)
        assert ev.message == "Armed by mission start"
        # the sim reports its checks as PX4 does; the session reads them with the metadata
        v = sl.fleet[0]
        emit_report(
            v.ap.events,
            [
                CheckFailure("check_modes_mission", mode_bits("mission"), level=6),
                CheckFailure("check_battery_low", 0, "battery", LOG_WARNING),
            ],
            can_arm=0xFFFFFFFF & ~mode_bits("mission"),
            can_run=0xFFFFFFFF,
        )
        report = await drone.wait_arming_report(10.0)
        assert report is not None and report.with_metadata
        assert not report.can_arm("mission") and report.can_arm("takeoff")
        assert [p.message for p in report.problems] == ["No valid mission available", "Low battery"]
        assert report.warnings == ("battery",)
        assert drone.status.extra["arming"]["problems"][1]["component"] == "battery"


async def test_second_vehicle_and_a_restart_download_nothing(tmp_path: Path) -> None:
    async with sim_link(2, cache_dir=tmp_path) as sl:
        a, b = sl.drone(1), sl.drone(2)
        await eventually(lambda: a.event_metadata is not None and b.event_metadata is not None)
        assert a.event_metadata is b.event_metadata  # parsed once for the link
        requests = sorted(v.ftp.stats.requests for v in sl.fleet.vehicles)
        assert requests == [0, 6]  # one vehicle downloaded, the other waited for it
    # the service restarts (a new link, new vehicles, same firmware): the disk cache serves
    async with sim_link(2, cache_dir=tmp_path) as sl:
        drones = [sl.drone(1), sl.drone(2)]
        await eventually(lambda: all(d.event_metadata is not None for d in drones))
        assert {d.metadata_state for d in drones} <= {"loaded from cache", "loaded from memory"}
        assert [v.ftp.stats.requests for v in sl.fleet.vehicles] == [0, 0]


async def test_failed_download_keeps_the_fallback(tmp_path: Path) -> None:
    async with sim_link(1, cache_dir=tmp_path) as sl:
        sl.fleet[0].ftp.drop = lambda p: True  # the vehicle's FTP answers never arrive
        drone = sl.drone(1)
        await eventually(
            lambda: drone.metadata_state.startswith("failed: "), message="fetch failed"
        )
        assert "did not answer FTP" in drone.metadata_state
        assert drone.event_metadata is None
        # telemetry is unaffected, events still render from the built-in table
        assert drone.status.link == LinkState.ONLINE
        eid = px4_event_id("navigator_mis_geofence_violation")
        assert drone.render_event(eid, pack_arguments("h", 1)).message == (
            "Geofence violation for waypoint 1"
        )
        assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("*.xz")))


# -- scripted vehicles -------------------------------------------------------------------------


def _serve_ftp(peer: Peer, files: dict[str, bytes]) -> FtpServer:
    """Answer FILE_TRANSFER_PROTOCOL with the sim's server (bursts sent at once)."""
    server = FtpServer(files)

    def responder(m: Any) -> bool:
        if m.get_type() != "FILE_TRANSFER_PROTOCOL":
            return False
        now = time.monotonic()
        sender = (m.get_srcSystem(), m.get_srcComponent())
        answers = server.handle(ftp_protocol.payload_of(m), sender, now)
        while more := server.due(now):
            answers += more
        for (sysid, compid), payload in answers:
            peer.send(ftp_protocol.message(sysid, compid, payload))
        return True

    peer.auto.insert(0, responder)
    return server


def _answer_requests(peer: Peer, answers: dict[int, Any]) -> None:
    """REQUEST_MESSAGE: ACCEPTED and the message for ids in ``answers``, else UNSUPPORTED."""

    def responder(m: Any) -> bool:
        if m.get_type() != "COMMAND_LONG":
            return False
        if m.command == mavlink.MAV_CMD_REQUEST_MESSAGE and int(m.param1) in (395, 397):
            msg = answers.get(int(m.param1))
            if msg is None:
                peer.ack(m.command, mavlink.MAV_RESULT_UNSUPPORTED)
            else:
                peer.ack(m.command)
                peer.send(msg)
            return True
        peer.ack(m.command)
        return True

    peer.auto.insert(0, responder)


async def _discovered(env: Env, peer: Peer) -> MavlinkDrone:
    async def seen() -> bool:
        peer.heartbeat()
        await asyncio.sleep(0.02)
        return "drone-1" in env.registry

    await eventually(seen)
    peer.beat()
    drone = env.registry.get("drone-1").control
    assert isinstance(drone, MavlinkDrone)
    return drone


def _xz(doc: dict[str, Any]) -> bytes:
    return lzma.compress(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("uri", "fallback", "state"),
    [
        ("mftp://[;comp=1]etc/events.json.xz", "", "loaded from vehicle"),
        ("https://example.org/events.json.xz", "mftp://etc/events.json.xz", "loaded from vehicle"),
        ("https://example.org/events.json.xz", "", "skipped: events file at https://"),
    ],
)
async def test_component_information_and_uris(
    env: Env, open_link: OpenLink, tmp_path: Path, uri: str, fallback: str, state: str
) -> None:
    """An older vehicle answers only COMPONENT_INFORMATION; only mftp:// files are fetched."""
    general = component_info.general_document(
        [MetadataEntry(COMP_METADATA_TYPE_EVENTS, uri, 1234, fallback)]
    )
    files = {
        "etc/general.json": json.dumps(general).encode(),  # not compressed: fine too
        "etc/events.json.xz": _xz(sim_metadata.events_json()),
    }
    info = ComponentInformationMessage(0, 77, 0, "mftp://etc/general.json", "")
    async with open_link(metadata_cache_dir=str(tmp_path)) as link:
        peer = await Peer.open(link.local_address)
        _answer_requests(peer, {395: info})
        _serve_ftp(peer, files)
        try:
            drone = await _discovered(env, peer)
            await eventually(lambda: drone.metadata_state.startswith(state), timeout=10)
            assert (drone.event_metadata is not None) == state.startswith("loaded")
        finally:
            peer.close()


async def test_vehicle_without_metadata(env: Env, open_link: OpenLink, tmp_path: Path) -> None:
    async with open_link(metadata_cache_dir=str(tmp_path)) as link:
        peer = await Peer.open(link.local_address)
        _answer_requests(peer, {})  # UNSUPPORTED for both
        try:
            drone = await _discovered(env, peer)
            await eventually(lambda: drone.metadata_state == "not offered")
            assert drone.event_metadata is None
            assert not peer.count("FILE_TRANSFER_PROTOCOL")
        finally:
            peer.close()
