"""The bridge's MAVLink FTP client against the sim's PX4-like FTP server, over real UDP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_bridges.mavlink.ftp import FtpClient
from firmware_bridges.mavlink.wire.ftp_protocol import (
    MAX_DATA,
    FtpErrorCode,
    FtpPayload,
    Opcode,
    path_payload,
)
from fleet.errors import CommandRejected, CommandTimeout
from sim.drone import metadata as sim_metadata
from sim.drone.ftp_server import BURST_CHUNK, FtpServer, FtpServerStats
from tests.support import eventually
from tests.unit.mavlink.simlink import SimLink, sim_link

BIG = os.urandom(100_000)
"""A file needing three bursts (PX4 bursts about 35 kB at a time)."""


@pytest.fixture
async def sl(tmp_path: Path) -> AsyncIterator[SimLink]:
    async with sim_link(cache_dir=tmp_path) as s:
        drone = s.drone(1)
        # the metadata fetch at discovery uses the same FTP server: let it finish first
        await eventually(lambda: drone.event_metadata is not None, message="metadata fetched")
        server = s.fleet[0].ftp
        server.files["fs/microsd/big.bin"] = BIG
        server.stats = FtpServerStats()
        yield s


async def test_downloads_the_metadata_files_with_bursts(sl: SimLink) -> None:
    client = FtpClient(sl.drone(1))
    files = sim_metadata.files().files
    for path in (sim_metadata.GENERAL_PATH, sim_metadata.EVENTS_PATH):
        assert await client.download(path) == files[path]
        assert await client.download("/" + path) == files[path]  # a leading slash is fine
    # one open, one burst, one terminate per file; no retries on a clean link
    assert client.stats.retries == 0 and client.stats.reads == 0
    assert client.stats.requests == 4 * 3


async def test_large_file_comes_in_several_bursts(sl: SimLink) -> None:
    client = FtpClient(sl.drone(1))
    assert await client.download("fs/microsd/big.bin") == BIG
    # a burst ends after the first step past 35 kB: three steps of 56 packets, 40 kB
    assert BURST_CHUNK < 3 * 56 * MAX_DATA < len(BIG) < 3 * 3 * 56 * MAX_DATA
    assert client.stats.bursts == 3
    assert client.stats.burst_packets == -(-len(BIG) // MAX_DATA)
    assert client.stats.reads == 0


async def test_lost_answer_is_asked_again_and_repeated_by_the_server(sl: SimLink) -> None:
    server = sl.fleet[0].ftp
    lost: list[FtpPayload] = []

    def lose_first_open_ack(p: FtpPayload) -> bool:
        if p.req_opcode == Opcode.OPEN_FILE_RO and not lost:
            lost.append(p)
            return True
        return False

    server.drop = lose_first_open_ack
    client = FtpClient(sl.drone(1))
    data = await client.download(sim_metadata.EVENTS_PATH)
    assert data == sim_metadata.files().files[sim_metadata.EVENTS_PATH]
    assert client.stats.retries == 1
    # the retry had the same sequence number: the server repeated its answer, not the open
    assert server.stats.resends == 1


async def test_lost_burst_packets_are_read_again(sl: SimLink) -> None:
    server = sl.fleet[0].ftp
    gone = {MAX_DATA * 3, MAX_DATA * 100, MAX_DATA * 101}

    def lose_once(p: FtpPayload) -> bool:
        if p.req_opcode == Opcode.BURST_READ_FILE and p.offset in gone:
            gone.discard(p.offset)
            return True
        return False

    server.drop = lose_once
    client = FtpClient(sl.drone(1))
    assert await client.download("fs/microsd/big.bin") == BIG
    assert client.stats.reads == 3  # one ReadFile per hole
    assert server.stats.dropped == 3


async def test_missing_file_is_a_nak(sl: SimLink) -> None:
    client = FtpClient(sl.drone(1))
    with pytest.raises(CommandRejected) as info:
        await client.download("etc/extras/nothing.json.xz")
    assert info.value.fields["result"] == "FILE_NOT_FOUND"
    assert info.value.fields["command"] == "FTP OPEN_FILE_RO"
    # the session was never opened: the next download works
    assert await client.download(sim_metadata.GENERAL_PATH)


async def test_session_left_open_is_reset(sl: SimLink) -> None:
    server: FtpServer = sl.fleet[0].ftp
    # another client's transfer died with the file open (PX4 keeps it for 10 s)
    answer = server.handle(path_payload(9, Opcode.OPEN_FILE_RO, "fs/microsd/big.bin"), (255, 1), 0)
    assert answer[0][1].opcode == Opcode.ACK
    client = FtpClient(sl.drone(1))
    assert await client.download(sim_metadata.GENERAL_PATH)
    assert server.stats.requests == 1 + 5  # open (NAK), reset, open, burst, terminate


async def test_without_bursts_every_block_is_read(sl: SimLink) -> None:
    client = FtpClient(sl.drone(1), burst=False)
    path = sim_metadata.EVENTS_PATH
    data = await client.download(path)
    assert data == sim_metadata.files().files[path]
    assert client.stats.reads == -(-len(data) // MAX_DATA)


async def test_silent_server_times_out(sl: SimLink) -> None:
    sl.fleet[0].ftp.drop = lambda p: True
    client = FtpClient(sl.drone(1), retries=2)
    with pytest.raises(CommandTimeout) as info:
        await client.download(sim_metadata.GENERAL_PATH)
    assert info.value.fields["attempts"] == 3
    assert client.stats.requests >= 3


def test_server_answers_like_px4() -> None:
    server = FtpServer({"etc/a.txt": b"x" * 600, "etc/sub/b.txt": b"y"})

    def ask(p: FtpPayload) -> FtpPayload:
        (_, answer), *_ = server.handle(p, (255, 190), 0.0)
        return answer

    nak = ask(FtpPayload(1, 0, Opcode.READ_FILE, 10))
    assert (nak.opcode, nak.error, nak.seq, nak.req_opcode) == (
        Opcode.NAK,
        FtpErrorCode.INVALID_SESSION,
        2,
        Opcode.READ_FILE,
    )
    ack = ask(path_payload(3, Opcode.OPEN_FILE_RO, "etc/a.txt"))
    assert int.from_bytes(ack.data, "little") == 600
    assert ask(path_payload(5, Opcode.OPEN_FILE_RO, "etc/a.txt")).error == (
        FtpErrorCode.NO_SESSIONS_AVAILABLE
    )
    read = ask(FtpPayload(7, 0, Opcode.READ_FILE, MAX_DATA, offset=500))
    assert read.size == 100 and read.offset == 500
    assert ask(FtpPayload(9, 0, Opcode.READ_FILE, 10, offset=600)).error == FtpErrorCode.EOF
    listing = ask(path_payload(11, Opcode.LIST_DIRECTORY, "etc"))
    assert listing.data.split(b"\x00")[:2] == [b"Fa.txt\t600", b"Dsub"]
    assert ask(path_payload(13, Opcode.REMOVE_FILE, "etc/a.txt")).error == (
        FtpErrorCode.FILE_PROTECTED
    )
    assert ask(FtpPayload(15, 0, 42)).error == FtpErrorCode.UNKNOWN_COMMAND
    # burst: nothing at once, then the data and a NAK EOF from due()
    assert server.handle(FtpPayload(17, 0, Opcode.BURST_READ_FILE, MAX_DATA), (255, 190), 0) == []
    packets = [p for _, p in server.due(0.02)]
    assert [p.seq for p in packets] == [18, 19, 20, 21]
    assert [p.offset for p in packets[:3]] == [0, MAX_DATA, 2 * MAX_DATA]
    assert packets[-1].error == FtpErrorCode.EOF
    # a session without requests is closed after 10 s
    server.due(100.0)
    assert ask(FtpPayload(30, 0, Opcode.TERMINATE_SESSION)).error == FtpErrorCode.INVALID_SESSION
