"""A MAVLink FTP client (download only) over a vehicle's existing MAVLink session.

pymavlink ships an FTP client (``pymavlink.mavftp``), but it is synchronous and owns its own
connection: it would need a second socket and a thread per vehicle, outside the link's one
asyncio UDP endpoint that serves every vehicle. This client instead sends through
:meth:`.session.VehicleSession.send` and waits on a :meth:`~.session.VehicleSession.listen`
queue, as the mission and parameter clients do, so a transfer is one more task on the link's
loop and never holds up telemetry.

Download of one file (:meth:`FtpClient.download`), as QGroundControl does it:

1. ``OpenFileRO(path)`` -> ACK with the session and the file size (``data``: uint32);
   NAK ``NO_SESSIONS_AVAILABLE`` (PX4 has one session per link, still held by an interrupted
   transfer) -> ``ResetSessions`` and open again once;
2. ``BurstReadFile(session, offset)``: the vehicle streams ACKs of up to 239 bytes, each with its
   offset, until one has ``burst_complete`` (PX4 ends a burst after about 35 kB: the client asks
   for the next one) or a NAK ``EOF``; packets lost on the way leave gaps;
3. every gap is read with ``ReadFile(session, offset, size)``;
4. ``TerminateSession`` (best effort, also after a failure).

Every request carries a sequence number; the answer has that number + 1 and the request's
opcode in ``req_opcode``. Unanswered requests are sent again with the *same* number (the server
then repeats its answer instead of acting twice) up to ``retries`` times, each waiting
``timeout_s`` world seconds; a stalled burst is asked again from its first missing byte. A NAK
raises :class:`fleet.errors.CommandRejected` (``result``: the error name, e.g.
``FILE_NOT_FOUND``), silence :class:`fleet.errors.CommandTimeout`, a lost link
:class:`fleet.errors.LinkLost`. Use one client per vehicle and one transfer at a time (PX4 serves
one session per link).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, fields, replace
from typing import Any

import structlog

from firmware_bridges.mavlink.inbox import Listener
from firmware_bridges.mavlink.session import VehicleSession
from firmware_bridges.mavlink.wire.ftp_protocol import (
    MAX_DATA,
    MSG_ID,
    FtpErrorCode,
    FtpPayload,
    Opcode,
    error_name,
    message,
    opcode_name,
    path_payload,
    payload_of,
)
from fleet.errors import CommandRejected, CommandTimeout, LinkLost
from fleet.vehicle import LinkState

log = structlog.get_logger(__name__)

MAX_FILE_SIZE = 16 * 1024 * 1024
"""Larger files are refused (metadata files are tens of kilobytes)."""


@dataclass(slots=True)
class FtpStats:
    """What a client sent and received (all transfers)."""

    requests: int = 0
    """Requests sent, retries included: the round trips."""
    retries: int = 0
    """Requests sent again after a timeout."""
    replies: int = 0
    """Answers received (ACK and NAK, burst packets included)."""
    burst_packets: int = 0
    """Data packets received from bursts."""
    bursts: int = 0
    """BurstReadFile requests sent."""
    reads: int = 0
    """ReadFile requests sent (gaps, or no burst support)."""
    bytes: int = 0
    """File bytes received (duplicates included)."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Nak(Exception):
    def __init__(self, reply: FtpPayload) -> None:
        super().__init__(error_name(reply.error))
        self.reply = reply
        self.code = reply.error


class FtpClient:
    """Downloads files from one vehicle's MAVLink FTP server."""

    def __init__(
        self,
        session: VehicleSession,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        burst: bool = True,
    ) -> None:
        opts = session.port.options
        self.session = session
        self.timeout_s = opts.command_timeout_s if timeout_s is None else timeout_s
        self.retries = max(3, opts.command_retries) if retries is None else retries
        self.burst = burst
        self.stats = FtpStats()
        self._seq = random.randrange(0x10000)  # a fresh start: no stale answer matches
        self._lock = asyncio.Lock()

    # -- public --------------------------------------------------------------------------------

    async def download(self, path: str, *, max_size: int = MAX_FILE_SIZE) -> bytes:
        """The content of ``path`` on the vehicle (see the module docs for the exchange)."""
        s = self.session
        if s.status.link == LinkState.LOST:
            raise LinkLost(
                f"{s.vehicle_id} link is lost; FTP download of {path} not started",
                vehicle_id=s.vehicle_id,
                path=path,
            )
        async with self._lock:
            with s.listen((MSG_ID,)) as inbox:
                session_id: int | None = None
                try:
                    session_id, size = await self._open(inbox, path)
                    if size > max_size:
                        raise CommandRejected(
                            f"{s.vehicle_id}: {path} is {size} bytes (limit {max_size})",
                            vehicle_id=s.vehicle_id,
                            command="FTP OPEN_FILE_RO",
                            result="TOO_LARGE",
                            path=path,
                        )
                    return await self._read(inbox, path, session_id, size)
                except _Nak as nak:
                    raise self._rejected(nak, path) from None
                finally:
                    if session_id is not None:
                        await self._terminate(inbox, session_id)

    async def reset_sessions(self) -> None:
        """Close every FTP session of our link on the vehicle."""
        async with self._lock:
            with self.session.listen((MSG_ID,)) as inbox:
                try:
                    await self._request(inbox, FtpPayload(0, 0, Opcode.RESET_SESSIONS), "")
                except _Nak as nak:
                    raise self._rejected(nak, "") from None

    # -- steps ---------------------------------------------------------------------------------

    async def _open(self, inbox: Listener, path: str) -> tuple[int, int]:
        for attempt in range(2):
            try:
                reply = await self._request(inbox, path_payload(0, Opcode.OPEN_FILE_RO, path), path)
            except _Nak as nak:
                if nak.code == FtpErrorCode.NO_SESSIONS_AVAILABLE and attempt == 0:
                    log.info(
                        "mavlink.ftp_reset_sessions", vehicle_id=self.session.vehicle_id, path=path
                    )
                    await self._request(inbox, FtpPayload(0, 0, Opcode.RESET_SESSIONS), path)
                    continue
                raise
            size = int.from_bytes(reply.data[:4].ljust(4, b"\x00"), "little")
            return reply.session, size
        raise AssertionError("unreachable")

    async def _read(self, inbox: Listener, path: str, session_id: int, size: int) -> bytes:
        buf = bytearray(size)
        have = bytearray(size)  # 1 where a byte has been received
        if size and self.burst:
            try:
                await self._burst(inbox, path, session_id, buf, have)
            except _Nak as nak:
                if nak.code != FtpErrorCode.UNKNOWN_COMMAND:
                    raise
                self.burst = False  # a server without burst reads: ReadFile only
        while (gap := have.find(0)) >= 0:
            count = min(MAX_DATA, size - gap)
            end = have.find(1, gap)
            if end > 0:
                count = min(count, end - gap)
            self.stats.reads += 1
            reply = await self._request(
                inbox, FtpPayload(0, session_id, Opcode.READ_FILE, count, offset=gap), path
            )
            if reply.size == 0:
                raise CommandRejected(
                    f"{self.session.vehicle_id}: {path} ended at {gap} of {size} bytes",
                    vehicle_id=self.session.vehicle_id,
                    command="FTP READ_FILE",
                    result="SHORT_FILE",
                    path=path,
                )
            self._store(replace(reply, offset=gap), buf, have)  # not every server echoes it
        return bytes(buf)

    async def _burst(
        self, inbox: Listener, path: str, session_id: int, buf: bytearray, have: bytearray
    ) -> None:
        """Stream the file into ``buf``; lost packets leave gaps (filled by ReadFile)."""
        s = self.session
        size = len(buf)
        offset = 0
        stalls = 0
        while True:
            self.stats.bursts += 1
            self._send(
                FtpPayload(
                    self._next_seq(), session_id, Opcode.BURST_READ_FILE, MAX_DATA, offset=offset
                )
            )
            got = at_end = False
            while True:
                try:
                    reply = await self._next(inbox, self.timeout_s, path)
                except TimeoutError:
                    break  # stalled: resume below
                if reply.req_opcode != Opcode.BURST_READ_FILE or reply.session != session_id:
                    continue  # a late answer to something else
                if reply.opcode == Opcode.NAK:
                    if reply.error != FtpErrorCode.EOF:
                        raise _Nak(reply)
                    at_end = True
                    break
                got = True
                self._store(reply, buf, have)
                if reply.offset + reply.size >= size:
                    at_end = True  # the server's NAK EOF follows; no need to wait for it
                    break
                if reply.burst_complete:
                    break  # PX4 bursts about 35 kB at a time: ask for the next one
            if have.find(0) < 0 or at_end:
                return
            if got:
                stalls = 0
                offset = have.rfind(1) + 1  # continue after the newest byte; gaps come later
                continue
            stalls += 1
            self.stats.retries += 1
            if stalls > self.retries:
                raise CommandTimeout(
                    f"{s.vehicle_id} did not answer FTP BurstReadFile of {path}",
                    vehicle_id=s.vehicle_id,
                    command="FTP BURST_READ_FILE",
                    path=path,
                )

    async def _terminate(self, inbox: Listener, session_id: int) -> None:
        try:
            await self._request(
                inbox, FtpPayload(0, session_id, Opcode.TERMINATE_SESSION), "", retries=1
            )
        except (_Nak, CommandTimeout, LinkLost) as exc:
            log.debug(
                "mavlink.ftp_terminate_failed", vehicle_id=self.session.vehicle_id, error=str(exc)
            )

    # -- plumbing ------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _send(self, payload: FtpPayload) -> None:
        s = self.session
        s.send(message(s.system_id, s.component_id, payload))
        self.stats.requests += 1

    async def _next(self, inbox: Listener, within: float, path: str) -> FtpPayload:
        msg: Any = await inbox.get(within)
        if msg is LinkState.LOST:
            raise LinkLost(
                f"{self.session.vehicle_id} link lost during FTP of {path}",
                vehicle_id=self.session.vehicle_id,
                path=path,
            )
        reply = payload_of(msg)
        self.stats.replies += 1
        # our next request must not look like a resend of anything the server answered last
        if ((reply.seq - self._seq) & 0xFFFF) < 0x8000:
            self._seq = reply.seq
        return reply

    async def _request(
        self, inbox: Listener, payload: FtpPayload, path: str, retries: int | None = None
    ) -> FtpPayload:
        """Send ``payload`` (its seq replaced) until its answer comes; _Nak on a NAK."""
        s = self.session
        retries = self.retries if retries is None else retries
        seq = self._next_seq()
        request = FtpPayload(
            seq,
            payload.session,
            payload.opcode,
            payload.size,
            offset=payload.offset,
            data=payload.data,
        )
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retries += 1
            self._send(request)
            deadline = s.clock.monotonic() + self.timeout_s
            while (left := deadline - s.clock.monotonic()) > 0:
                try:
                    reply = await self._next(inbox, left, path)
                except TimeoutError:
                    break
                if reply.seq != (seq + 1) & 0xFFFF:
                    continue  # a late burst packet or an answer to an earlier attempt
                if reply.req_opcode != request.opcode:
                    # a stale answer the server repeated: our number collided with its last one
                    seq = self._next_seq()
                    request = FtpPayload(
                        seq,
                        request.session,
                        request.opcode,
                        request.size,
                        offset=request.offset,
                        data=request.data,
                    )
                    break
                if reply.opcode == Opcode.NAK:
                    raise _Nak(reply)
                return reply
        name = opcode_name(request.opcode)
        raise CommandTimeout(
            f"{s.vehicle_id} did not answer FTP {name}"
            + (f" for {path}" if path else "")
            + f" after {retries + 1} attempts",
            vehicle_id=s.vehicle_id,
            command=f"FTP {name}",
            path=path,
            attempts=retries + 1,
        )

    def _store(self, reply: FtpPayload, buf: bytearray, have: bytearray) -> None:
        end = min(len(buf), reply.offset + len(reply.data))
        if reply.offset >= end:
            return
        n = end - reply.offset
        buf[reply.offset : end] = reply.data[:n]
        have[reply.offset : end] = b"\x01" * n
        self.stats.bytes += n
        if reply.req_opcode == Opcode.BURST_READ_FILE:
            self.stats.burst_packets += 1

    def _rejected(self, nak: _Nak, path: str) -> CommandRejected:
        reply = nak.reply
        name = error_name(reply.error)
        op = opcode_name(reply.req_opcode)
        extra = f" (errno {reply.errno})" if reply.errno is not None else ""
        return CommandRejected(
            f"{self.session.vehicle_id} refused FTP {op}"
            + (f" of {path}" if path else "")
            + f": {name}{extra}",
            vehicle_id=self.session.vehicle_id,
            command=f"FTP {op}",
            result=name,
            path=path,
        )
