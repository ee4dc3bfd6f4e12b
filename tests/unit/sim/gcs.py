"""A minimal ground station for sim tests: pymavlink codec over a real asyncio UDP socket.

It listens on a UDP port (where a sim vehicle sends its API link), keeps every decoded message,
and sends commands with the addresses a real GCS uses (system 255, component 190).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import px4_events

GCS_SYSID = 255
GCS_COMPID = mavlink.MAV_COMP_ID_MISSIONPLANNER


class _Sink:
    def __init__(self) -> None:
        self.buf: list[bytes] = []

    def write(self, b: bytes) -> None:
        self.buf.append(bytes(b))


class Gcs(asyncio.DatagramProtocol):
    """A test ground station bound to 127.0.0.1:``port``."""

    def __init__(self, port: int, sysid: int = GCS_SYSID, signing_key: bytes | None = None) -> None:
        self.port = port
        self._sink = _Sink()
        self.mav = mavlink.MAVLink(self._sink, srcSystem=sysid, srcComponent=GCS_COMPID)
        self.mav.robust_parsing = True
        if signing_key is not None:
            self.mav.signing.secret_key = signing_key
            self.mav.signing.sign_outgoing = True
            self.mav.signing.allow_unsigned_callback = lambda _m, _i: True
        self.messages: list[Any] = []
        self.peers: dict[int, tuple[str, int]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._event = asyncio.Event()
        self._hb_task: asyncio.Task[None] | None = None
        self.gcs_type = mavlink.MAV_TYPE_GCS

    async def __aenter__(self) -> Gcs:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", self.port)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_heartbeats()
        if self._transport is not None:
            self._transport.close()

    # --- receive --------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        for m in self.mav.parse_buffer(data) or []:
            if m.get_type() == "BAD_DATA":
                continue
            if m.get_type().startswith("UNKNOWN_"):
                try:  # the events protocol, which pymavlink's dialect lacks
                    m = px4_events.decode_extra(self.mav, bytes(m.get_msgbuf()))
                except px4_events.EventDecodeError:
                    continue
            self.peers[m.get_srcSystem()] = addr
            m._recv_time = time.monotonic()
            self.messages.append(m)
        self._event.set()

    def of(self, mtype: str, sysid: int | None = None) -> list[Any]:
        return [
            m
            for m in self.messages
            if m.get_type() == mtype and (sysid is None or m.get_srcSystem() == sysid)
        ]

    async def wait_for(
        self,
        mtype: str,
        pred: Callable[[Any], bool] = lambda m: True,
        timeout: float = 10.0,
        since: int = 0,
        sysid: int | None = None,
    ) -> Any:
        """The first message of ``mtype`` after index ``since`` matching ``pred``."""
        deadline = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.messages):
                m = self.messages[i]
                i += 1
                if (
                    m.get_type() == mtype
                    and (sysid is None or m.get_srcSystem() == sysid)
                    and pred(m)
                ):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {mtype} within {timeout} s")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)

    def mark(self) -> int:
        return len(self.messages)

    # --- send -----------------------------------------------------------------------------

    def send(self, msg: Any, sysid: int = 1, mav: Any = None) -> None:
        """Pack ``msg`` (with ``mav``'s addresses, default ours) and send it to ``sysid``."""
        (mav or self.mav).send(msg)
        data = b"".join(self._sink.buf)
        self._sink.buf.clear()
        assert self._transport is not None
        addr = self.peers.get(sysid)
        assert addr is not None, f"vehicle {sysid} has not been heard yet"
        self._transport.sendto(data, addr)

    def heartbeat(self, sysid: int = 1) -> None:
        self.send(
            self.mav.heartbeat_encode(self.gcs_type, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0), sysid
        )

    def start_heartbeats(self, sysids: tuple[int, ...] = (1,), period: float = 0.2) -> None:
        async def beat() -> None:
            while True:
                for s in sysids:
                    if s in self.peers:
                        self.heartbeat(s)
                await asyncio.sleep(period)

        self._hb_task = asyncio.get_running_loop().create_task(beat())

    def stop_heartbeats(self) -> None:
        if self._hb_task is not None:
            self._hb_task.cancel()
            self._hb_task = None

    async def command(
        self,
        command: int,
        *params: float,
        sysid: int = 1,
        compid: int = 1,
        timeout: float = 5.0,
    ) -> Any:
        """Send COMMAND_LONG and return its COMMAND_ACK."""
        p = list(params) + [0.0] * (7 - len(params))
        since = self.mark()
        self.send(self.mav.command_long_encode(sysid, compid, command, 0, *p), sysid)
        return await self.wait_for(
            "COMMAND_ACK", lambda m: m.command == command, timeout, since, sysid=sysid
        )

    async def command_int(
        self,
        command: int,
        frame: int,
        p1: float,
        p2: float,
        p3: float,
        p4: float,
        x: int,
        y: int,
        z: float,
        sysid: int = 1,
        timeout: float = 5.0,
    ) -> Any:
        since = self.mark()
        self.send(
            self.mav.command_int_encode(sysid, 1, frame, command, 0, 0, p1, p2, p3, p4, x, y, z),
            sysid,
        )
        return await self.wait_for(
            "COMMAND_ACK", lambda m: m.command == command, timeout, since, sysid=sysid
        )

    async def set_mode(self, main: int, sub: int = 0, sysid: int = 1) -> Any:
        return await self.command(
            mavlink.MAV_CMD_DO_SET_MODE,
            mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
            main,
            sub,
            sysid=sysid,
        )

    async def upload(
        self,
        items: list[tuple[int, int, float, float, float, float, float, float, float]],
        mission_type: int = 0,
        sysid: int = 1,
        timeout: float = 5.0,
    ) -> Any:
        """Upload items (frame, command, p1..p4, lat, lon, alt); returns the MISSION_ACK."""
        since = self.mark()
        self.send(self.mav.mission_count_encode(sysid, 1, len(items), mission_type), sysid)
        while True:
            got = await self._next_of(("MISSION_REQUEST_INT", "MISSION_ACK"), since, timeout, sysid)
            since = self.messages.index(got) + 1
            if got.get_type() == "MISSION_ACK":
                return got
            seq = got.seq
            f, c, p1, p2, p3, p4, lat, lon, alt = items[seq]
            x = round(lat * 1e7) if f != mavlink.MAV_FRAME_MISSION else int(lat)
            y = round(lon * 1e7) if f != mavlink.MAV_FRAME_MISSION else int(lon)
            self.send(
                self.mav.mission_item_int_encode(
                    sysid, 1, seq, f, c, 0, 1, p1, p2, p3, p4, x, y, alt, mission_type
                ),
                sysid,
            )

    async def _next_of(self, types: tuple[str, ...], since: int, timeout: float, sysid: int) -> Any:
        deadline = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.messages):
                m = self.messages[i]
                i += 1
                if m.get_type() in types and m.get_srcSystem() == sysid:
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"none of {types} within {timeout} s")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)
