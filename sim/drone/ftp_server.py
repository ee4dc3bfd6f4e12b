"""A read-only MAVLink FTP server, as PX4's ``MavlinkFTP`` (``mavlink_ftp.cpp``) behaves.

A sim vehicle serves its metadata files (:mod:`sim.drone.metadata`) with it. What PX4 does and
the sim does too:

* requests addressed to another system or component are ignored (the vehicle checks that);
  every answer goes to the requester, with ``seq_number`` + 1 and the request's opcode in
  ``req_opcode``; a NAK carries its error code in ``data[0]`` (``size`` 1);
* a request whose ``seq_number`` + 1 equals the last small answer's (at most 4 data bytes, not a
  NO_SESSIONS_AVAILABLE NAK) is a resend: that answer is sent again, nothing is redone;
* one session per link (session 0): ``OpenFileRO`` answers the file size (uint32) or NAK
  ``NO_SESSIONS_AVAILABLE`` while a file is open, NAK ``FILE_NOT_FOUND`` for a missing path
  (paths relative to the root, like ``etc/extras/all_events.json.xz``; a leading ``/`` is
  accepted); ``TerminateSession`` (NAK ``INVALID_SESSION`` without one) and ``ResetSessions``
  close it; a session without requests for :data:`SESSION_IDLE_S` is closed;
* ``ReadFile`` answers up to ``size`` bytes at ``offset`` (NAK ``EOF`` at or past the end);
* ``BurstReadFile`` answers nothing at once, then streams ACKs of 239 bytes from ``offset`` with
  increasing sequence numbers, :data:`BURST_BYTES_PER_TICK` bytes per vehicle step (PX4 SITL:
  15000 bytes per MAVLink loop), marking ``burst_complete`` on the last packet of a step once
  more than :data:`BURST_CHUNK` bytes went out (the client then asks for the next burst), and
  ends with a NAK ``EOF`` at the end of the file;
* ``ListDirectory`` lists the served tree (``F<name>\\t<size>`` and ``D<name>`` entries from
  entry ``offset``); ``CalcFileCRC32`` answers the file's CRC32; writes are refused
  (``FILE_PROTECTED``: the sim's files are built into it); other opcodes get
  ``UNKNOWN_COMMAND``.

Fault injection for tests: :attr:`FtpServer.drop` decides, per answer, whether it is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from firmware_bridges.mavlink.wire import component_info
from firmware_bridges.mavlink.wire.ftp_protocol import MAX_DATA, FtpErrorCode, FtpPayload, Opcode

SESSION_IDLE_S = 10.0
"""An open session without requests this long (world s) is closed, as PX4 does."""
BURST_BYTES_PER_TICK = 15_000
"""Bytes of burst packets sent per vehicle step (PX4 SITL: per MAVLink loop on UDP)."""
BURST_CHUNK = 35_000
"""After this many bytes a burst ends with ``burst_complete`` (PX4's empirical chunk)."""
PACKET_BYTES = 266
"""Bytes PX4 counts per FTP message (254-byte payload plus framing)."""
_WRITES = frozenset(
    {
        Opcode.CREATE_FILE,
        Opcode.WRITE_FILE,
        Opcode.REMOVE_FILE,
        Opcode.CREATE_DIRECTORY,
        Opcode.REMOVE_DIRECTORY,
        Opcode.OPEN_FILE_WO,
        Opcode.TRUNCATE_FILE,
        Opcode.RENAME,
    }
)

Target = tuple[int, int]
"""(system id, component id) an answer is addressed to."""


@dataclass(slots=True)
class _Stream:
    offset: int
    seq: int
    target: Target
    sent_in_chunk: int = 0


@dataclass(slots=True)
class FtpServerStats:
    """What the server received and sent."""

    requests: int = 0
    resends: int = 0
    """Requests answered by repeating the last answer."""
    replies: int = 0
    burst_packets: int = 0
    dropped: int = 0
    """Answers lost on purpose (:attr:`FtpServer.drop`)."""


class FtpServer:
    """The FTP server of one vehicle link."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)
        self.stats = FtpServerStats()
        self.drop: Callable[[FtpPayload], bool] | None = None
        """Called with every answer; True loses it (tests)."""
        self._open: str | None = None
        self._last_reply: tuple[Target, FtpPayload] | None = None
        self._last_request_at = 0.0
        self._stream: _Stream | None = None

    # -- requests ------------------------------------------------------------------------------

    def handle(
        self, req: FtpPayload, sender: Target, now: float
    ) -> list[tuple[Target, FtpPayload]]:
        """Answer one request from ``sender``; returns the answers to send."""
        self.stats.requests += 1
        self._last_request_at = now
        if req.size > MAX_DATA:
            return self._answer(sender, req, FtpErrorCode.INVALID_DATA_SIZE)
        last = self._last_reply
        if last is not None and (req.seq + 1) & 0xFFFF == last[1].seq:
            self.stats.resends += 1
            return self._send(last[0], last[1])
        op = req.opcode
        stream_started = False
        code = FtpErrorCode.NONE
        reply = FtpPayload(req.seq, req.session, op)
        if op == Opcode.NONE:
            pass
        elif op == Opcode.TERMINATE_SESSION:
            if req.session != 0 or self._open is None:
                code = FtpErrorCode.INVALID_SESSION
            else:
                self._close()
        elif op == Opcode.RESET_SESSIONS:
            self._close()
        elif op == Opcode.OPEN_FILE_RO:
            code, reply = self._open_file(req)
        elif op == Opcode.READ_FILE:
            code, reply = self._read(req)
        elif op == Opcode.BURST_READ_FILE:
            if req.session != 0 or self._open is None:
                code = FtpErrorCode.INVALID_SESSION
            else:
                self._stream = _Stream(req.offset, (req.seq + 1) & 0xFFFF, sender)
                stream_started = True
        elif op == Opcode.LIST_DIRECTORY:
            code, reply = self._list(req)
        elif op == Opcode.CALC_FILE_CRC32:
            data = self._file(req.data.decode("utf-8", "replace"))
            if data is None:
                code = FtpErrorCode.FILE_NOT_FOUND
            else:
                crc = component_info.crc32(data).to_bytes(4, "little")
                reply = FtpPayload(req.seq, req.session, op, 4, data=crc)
        elif op in _WRITES:
            code = FtpErrorCode.FILE_PROTECTED
        else:
            code = FtpErrorCode.UNKNOWN_COMMAND
        self._last_reply = None
        if stream_started:
            return []  # the data comes from due()
        return self._answer(sender, reply, code)

    def _answer(
        self, target: Target, reply: FtpPayload, code: FtpErrorCode
    ) -> list[tuple[Target, FtpPayload]]:
        if code == FtpErrorCode.NONE:
            out = FtpPayload(
                (reply.seq + 1) & 0xFFFF,
                reply.session,
                Opcode.ACK,
                len(reply.data),
                reply.opcode,
                offset=reply.offset,
                data=reply.data,
            )
        else:
            out = FtpPayload(
                (reply.seq + 1) & 0xFFFF,
                reply.session,
                Opcode.NAK,
                1,
                reply.opcode,
                offset=reply.offset,
                data=bytes([code]),
            )
        if out.size <= 4 and code != FtpErrorCode.NO_SESSIONS_AVAILABLE:
            self._last_reply = (target, out)
        return self._send(target, out)

    def _send(self, target: Target, out: FtpPayload) -> list[tuple[Target, FtpPayload]]:
        if self.drop is not None and self.drop(out):
            self.stats.dropped += 1
            return []
        self.stats.replies += 1
        return [(target, out)]

    def _file(self, path: str) -> bytes | None:
        return self.files.get(path.lstrip("/"))

    def _close(self) -> None:
        self._open = None
        self._stream = None

    def _open_file(self, req: FtpPayload) -> tuple[FtpErrorCode, FtpPayload]:
        if self._open is not None:
            return FtpErrorCode.NO_SESSIONS_AVAILABLE, req
        path = req.data.split(b"\x00", 1)[0].decode("utf-8", "replace").lstrip("/")
        data = self.files.get(path)
        if data is None:
            return FtpErrorCode.FILE_NOT_FOUND, req
        self._open = path
        size = len(data).to_bytes(4, "little")
        return FtpErrorCode.NONE, FtpPayload(req.seq, 0, req.opcode, 4, data=size)

    def _read(self, req: FtpPayload) -> tuple[FtpErrorCode, FtpPayload]:
        if req.session != 0 or self._open is None:
            return FtpErrorCode.INVALID_SESSION, req
        data = self.files[self._open]
        if req.offset >= len(data):
            return FtpErrorCode.EOF, req
        chunk = data[req.offset : req.offset + req.size]
        return FtpErrorCode.NONE, FtpPayload(
            req.seq, 0, req.opcode, len(chunk), offset=req.offset, data=chunk
        )

    def _list(self, req: FtpPayload) -> tuple[FtpErrorCode, FtpPayload]:
        directory = req.data.split(b"\x00", 1)[0].decode("utf-8", "replace").strip("/")
        prefix = f"{directory}/" if directory else ""
        entries: dict[str, str] = {}
        for path, data in sorted(self.files.items()):
            if not path.startswith(prefix):
                continue
            name, _, rest = path[len(prefix) :].partition("/")
            entries[name] = f"D{name}" if rest else f"F{name}\t{len(data)}"
        if not entries:
            return FtpErrorCode.FILE_NOT_FOUND, req
        listing = list(entries.values())[req.offset :]
        if not listing:
            return FtpErrorCode.EOF, req
        out = b""
        for entry in listing:
            raw = entry.encode() + b"\x00"
            if len(out) + len(raw) > MAX_DATA:
                break
            out += raw
        return FtpErrorCode.NONE, FtpPayload(
            req.seq, 0, req.opcode, len(out), offset=req.offset, data=out
        )

    # -- streaming -----------------------------------------------------------------------------

    def due(self, now: float) -> list[tuple[Target, FtpPayload]]:
        """Burst packets to send in this step (and the idle-session timeout)."""
        if self._open is not None and now - self._last_request_at > SESSION_IDLE_S:
            self._close()
            self._last_reply = None
        stream = self._stream
        if stream is None or self._open is None:
            return []
        data = self.files[self._open]
        budget = BURST_BYTES_PER_TICK
        out: list[tuple[Target, FtpPayload]] = []
        while True:
            seq = stream.seq
            stream.seq = (stream.seq + 1) & 0xFFFF
            if stream.offset >= len(data):
                nak = FtpPayload(
                    seq,
                    0,
                    Opcode.NAK,
                    1,
                    Opcode.BURST_READ_FILE,
                    offset=stream.offset,
                    data=bytes([FtpErrorCode.EOF]),
                )
                self._stream = None
                self._last_reply = (stream.target, nak)
                out += self._send(stream.target, nak)
                return out
            chunk = data[stream.offset : stream.offset + MAX_DATA]
            packet_offset = stream.offset
            stream.offset += len(chunk)
            stream.sent_in_chunk += len(chunk)
            complete = False
            more = budget >= 2 * PACKET_BYTES
            if more:
                budget -= PACKET_BYTES
            elif stream.sent_in_chunk > BURST_CHUNK:
                complete = True
                self._stream = None
            packet = FtpPayload(
                seq,
                0,
                Opcode.ACK,
                len(chunk),
                Opcode.BURST_READ_FILE,
                complete,
                packet_offset,
                chunk,
            )
            sent = self._send(stream.target, packet)
            self.stats.burst_packets += len(sent)
            out += sent
            if not more:
                return out
