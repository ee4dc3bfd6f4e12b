"""A scripted MAVLink vehicle for bridge tests: a real UDP socket speaking pymavlink bytes.

The test decides every answer. The peer records what it receives (``inbox``) and offers
helpers for the usual exchanges (heartbeat, acks, a mission server with knobs for lost,
duplicated and out-of-order requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import px4
from firmware_bridges.mavlink.wire.px4_events import EventMessage, decode_extra

Addr = tuple[str, int]


class Peer(asyncio.DatagramProtocol):
    """One vehicle (or several system ids) on one UDP socket."""

    def __init__(self, sysid: int = 1, compid: int = 1, signing_key: bytes | None = None) -> None:
        self.mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        self.mav.robust_parsing = True
        self.rx = mavlink.MAVLink(None)
        self.rx.robust_parsing = True
        if signing_key is not None:
            for m in (self.mav, self.rx):
                m.signing.secret_key = signing_key
                m.signing.sign_outgoing = m is self.mav
                m.signing.timestamp = int((time.time() - 1_420_070_400) * 100_000)
        self.sysid = sysid
        self.transport: asyncio.DatagramTransport | None = None
        self.target: Addr | None = None
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.received: list[Any] = []
        self.gcs_addr: Addr | None = None
        self.auto: list[Callable[[Any], bool]] = []
        """Responders: called with each message; return True to consume it."""

    @classmethod
    async def open(cls, target: Addr | None = None, **kw: Any) -> Peer:
        loop = asyncio.get_running_loop()
        peer = cls(**kw)
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
        peer.target = target
        return peer

    @property
    def address(self) -> Addr:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.gcs_addr = addr
        for msg in self.rx.parse_buffer(data) or []:
            self._handle(msg)
        # events-protocol messages pymavlink does not know arrive as BAD_DATA/unknown
        if len(data) > 10 and data[0] == 0xFD and (data[7] | data[8] << 8) in (410, 411, 412, 413):
            with contextlib.suppress(Exception):
                self._handle(decode_extra(self.rx, data))

    def _handle(self, msg: Any) -> None:
        if msg.get_type() == "BAD_DATA":
            return
        self.received.append(msg)
        for responder in list(self.auto):
            if responder(msg):
                return
        self.inbox.put_nowait(msg)

    def beat(self, period: float = 0.05, **kw: Any) -> None:
        """Send HEARTBEATs every ``period`` real seconds until closed."""

        async def loop() -> None:
            while True:
                self.heartbeat(**kw)
                await asyncio.sleep(period)

        self._beat = asyncio.get_running_loop().create_task(loop())

    def close(self) -> None:
        beat = getattr(self, "_beat", None)
        if beat is not None:
            beat.cancel()
        if self.transport is not None:
            self.transport.close()

    # -- sending ------------------------------------------------------------------------

    def send(self, msg: Any, srcsys: int | None = None, to: Addr | None = None) -> None:
        assert self.transport is not None
        if srcsys is not None:
            saved = self.mav.srcSystem
            self.mav.srcSystem = srcsys
            data = msg.pack(self.mav)
            self.mav.srcSystem = saved
        else:
            data = msg.pack(self.mav)
        self.transport.sendto(bytes(data), to or self.target or self.gcs_addr)

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.target or self.gcs_addr)

    def heartbeat(
        self,
        mode: tuple[int, int] = (px4.MainMode.AUTO, px4.AutoSubMode.LOITER),
        armed: bool = False,
        mav_type: int = mavlink.MAV_TYPE_QUADROTOR,
        system_status: int = mavlink.MAV_STATE_STANDBY,
        srcsys: int | None = None,
    ) -> None:
        base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        if armed:
            base |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
        self.send(
            mavlink.MAVLink_heartbeat_message(
                mav_type,
                mavlink.MAV_AUTOPILOT_PX4,
                base,
                px4.encode_custom_mode(*mode),
                system_status,
                3,
            ),
            srcsys=srcsys,
        )

    def ack(self, command: int, result: int = mavlink.MAV_RESULT_ACCEPTED, **kw: Any) -> None:
        self.send(
            mavlink.MAVLink_command_ack_message(
                command,
                result,
                kw.get("progress", 0),
                0,
                kw.get("target_system", 255),
                kw.get("target_component", 190),
            )
        )

    def statustext(self, text: str, severity: int = mavlink.MAV_SEVERITY_ERROR, **kw: Any) -> None:
        self.send(
            mavlink.MAVLink_statustext_message(
                severity, text.encode(), kw.get("id", 0), kw.get("chunk_seq", 0)
            )
        )

    def event(self, event_id: int, args: bytes, seq: int, level: int = 3) -> None:
        self.send(EventMessage(0, 0, event_id, 1000, seq, (6 << 4) | level, args))

    def mission_current(self, seq: int, total: int, state: int) -> None:
        self.send(mavlink.MAVLink_mission_current_message(seq, total, state, 0))

    # -- receiving ----------------------------------------------------------------------

    async def expect(
        self, mtype: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 5.0
    ) -> Any:
        """The next received message of type ``mtype`` passing ``predicate`` (others skipped)."""

        async def _get() -> Any:
            while True:
                msg = await self.inbox.get()
                if msg.get_type() == mtype and (predicate is None or predicate(msg)):
                    return msg

        return await asyncio.wait_for(_get(), timeout)

    def count(self, mtype: str, predicate: Callable[[Any], bool] | None = None) -> int:
        return sum(
            1
            for m in self.received
            if m.get_type() == mtype and (predicate is None or predicate(m))
        )

    def auto_ack(self, results: dict[int, int] | None = None) -> None:
        """Acknowledge every COMMAND_LONG (ACCEPTED unless ``results`` says otherwise)."""
        results = results or {}

        def responder(msg: Any) -> bool:
            if msg.get_type() == "COMMAND_LONG":
                self.ack(msg.command, results.get(msg.command, mavlink.MAV_RESULT_ACCEPTED))
            return False

        self.auto.append(responder)


class MissionServer:
    """Vehicle side of the mission protocol, with faults on demand."""

    def __init__(
        self,
        peer: Peer,
        *,
        legacy: bool = False,
        drop_count: int = 0,
        duplicate: bool = False,
        out_of_order: bool = False,
        nack: int | None = None,
        nack_at: int = 0,
        silent_after: int | None = None,
    ) -> None:
        self.peer = peer
        self.legacy = legacy
        self.drop_count = drop_count
        self.duplicate = duplicate
        self.out_of_order = out_of_order
        self.nack = nack
        self.nack_at = nack_at
        self.silent_after = silent_after
        self.stored: dict[int, list[Any]] = {0: [], 1: [], 2: []}
        self._incoming: dict[int, Any] = {}
        self._expected = 0
        self._count = 0
        self._type = 0
        self.counts_seen = 0
        self.acks: list[Any] = []

    def _request(self, seq: int) -> None:
        cls = (
            mavlink.MAVLink_mission_request_message
            if self.legacy
            else mavlink.MAVLink_mission_request_int_message
        )
        self.peer.send(cls(255, 190, seq, self._type))

    async def serve(self) -> None:
        """Answer mission messages until cancelled."""
        peer = self.peer
        while True:
            msg = await peer.inbox.get()
            t = msg.get_type()
            if t == "MISSION_COUNT":
                self.counts_seen += 1
                if self.counts_seen <= self.drop_count:
                    continue
                self._type, self._count = msg.mission_type, msg.count
                self._incoming = {}
                if msg.count == 0:
                    self.stored[self._type] = []
                    peer.send(mavlink.MAVLink_mission_ack_message(255, 190, 0, self._type))
                    continue
                if self.out_of_order and msg.count > 1:
                    self._request(1)
                self._request(0)
                if self.duplicate:
                    self._request(0)
            elif t == "MISSION_ITEM_INT":
                if msg.mission_type != self._type or msg.seq in self._incoming:
                    continue
                if self.nack is not None and msg.seq == self.nack_at:
                    peer.send(mavlink.MAVLink_mission_ack_message(255, 190, self.nack, self._type))
                    continue
                self._incoming[msg.seq] = msg
                if self.silent_after is not None and len(self._incoming) > self.silent_after:
                    continue
                missing = [i for i in range(self._count) if i not in self._incoming]
                if missing:
                    self._request(missing[0])
                    if self.duplicate:
                        self._request(missing[0])
                else:
                    self.stored[self._type] = [self._incoming[i] for i in range(self._count)]
                    peer.send(mavlink.MAVLink_mission_ack_message(255, 190, 0, self._type))
            elif t == "MISSION_REQUEST_LIST":
                items = self.stored.get(msg.mission_type, [])
                peer.send(
                    mavlink.MAVLink_mission_count_message(255, 190, len(items), msg.mission_type)
                )
            elif t == "MISSION_REQUEST_INT":
                it = self.stored[msg.mission_type][msg.seq]
                peer.send(
                    mavlink.MAVLink_mission_item_int_message(
                        255,
                        190,
                        it.seq,
                        it.frame,
                        it.command,
                        0,
                        it.autocontinue,
                        it.param1,
                        it.param2,
                        it.param3,
                        it.param4,
                        it.x,
                        it.y,
                        it.z,
                        msg.mission_type,
                    )
                )
            elif t == "MISSION_CLEAR_ALL":
                self.stored[msg.mission_type] = []
                peer.send(mavlink.MAVLink_mission_ack_message(255, 190, 0, msg.mission_type))
            elif t == "MISSION_ACK":
                self.acks.append(msg)
