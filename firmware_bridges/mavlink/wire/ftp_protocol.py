"""MAVLink FTP on the wire: the FILE_TRANSFER_PROTOCOL payload, its opcodes and error codes.

Every FTP request and answer travels in FILE_TRANSFER_PROTOCOL (110: ``target_network``,
``target_system``, ``target_component`` and a 251-byte ``payload``), whose payload starts with
a 12-byte header (https://mavlink.io/en/services/ftp.html, PX4's ``mavlink_ftp.h``)::

    uint16 seq_number   request: the client's number; answer: the request's + 1
    uint8  session      the open file's session (PX4 serves one session per link: 0)
    uint8  opcode       a command (client) or ACK 128 / NAK 129 (server)
    uint8  size         bytes used in data
    uint8  req_opcode   in an answer: the command it answers
    uint8  burst_complete  in a BurstReadFile answer: 1 on the last packet of a burst
    uint8  padding
    uint32 offset       file offset of ReadFile/BurstReadFile (requests and answers)
    uint8  data[239]    path (requests), file bytes (reads), file size (OpenFileRO ACK),
                        error code (NAK: data[0], errno in data[1] after FailErrno)

This is a wire module: the bridge's client (``firmware_bridges.mavlink.ftp``) and the
simulator's server (``sim/drone/ftp_server.py``) share it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.messages import Message

MSG_ID = mavlink.MAVLINK_MSG_ID_FILE_TRANSFER_PROTOCOL
"""FILE_TRANSFER_PROTOCOL."""
PAYLOAD_LEN = 251
"""Size of FILE_TRANSFER_PROTOCOL.payload."""
HEADER = struct.Struct("<HBBBBBxI")
"""seq_number, session, opcode, size, req_opcode, burst_complete, (padding), offset."""
MAX_DATA = PAYLOAD_LEN - HEADER.size
"""Data bytes per message (239)."""


class Opcode(IntEnum):
    """FTP opcodes (MAV_FTP_OPCODE)."""

    NONE = 0
    TERMINATE_SESSION = 1
    """Close the session (file) ``session``."""
    RESET_SESSIONS = 2
    """Close every session of the link."""
    LIST_DIRECTORY = 3
    OPEN_FILE_RO = 4
    """Open ``data`` (path) for reading; the ACK carries the session and the file size."""
    READ_FILE = 5
    """Read ``size`` bytes at ``offset``."""
    CREATE_FILE = 6
    WRITE_FILE = 7
    REMOVE_FILE = 8
    CREATE_DIRECTORY = 9
    REMOVE_DIRECTORY = 10
    OPEN_FILE_WO = 11
    TRUNCATE_FILE = 12
    RENAME = 13
    CALC_FILE_CRC32 = 14
    BURST_READ_FILE = 15
    """Stream the file from ``offset``: ACKs with data until ``burst_complete`` or NAK EOF."""
    ACK = 128
    NAK = 129


class FtpErrorCode(IntEnum):
    """NAK error codes (MAV_FTP_ERR), in ``data[0]`` of a NAK."""

    NONE = 0
    FAIL = 1
    FAIL_ERRNO = 2
    """Failed with the server's errno in ``data[1]``."""
    INVALID_DATA_SIZE = 3
    INVALID_SESSION = 4
    NO_SESSIONS_AVAILABLE = 5
    """Every session is in use (PX4: a file is still open on this link)."""
    EOF = 6
    """Offset at or past the end of the file."""
    UNKNOWN_COMMAND = 7
    FILE_EXISTS = 8
    FILE_PROTECTED = 9
    FILE_NOT_FOUND = 10


@dataclass(frozen=True, slots=True)
class FtpPayload:
    """A decoded FILE_TRANSFER_PROTOCOL payload."""

    seq: int
    session: int
    opcode: int
    size: int = 0
    req_opcode: int = 0
    burst_complete: bool = False
    offset: int = 0
    data: bytes = b""
    """The ``size`` significant data bytes."""

    def pack(self) -> list[int]:
        """The payload as pymavlink's message takes it (251 ints)."""
        head = HEADER.pack(
            self.seq & 0xFFFF,
            self.session,
            self.opcode,
            self.size,
            self.req_opcode,
            1 if self.burst_complete else 0,
            self.offset,
        )
        return list((head + self.data[:MAX_DATA]).ljust(PAYLOAD_LEN, b"\x00"))

    @classmethod
    def unpack(cls, raw: bytes | bytearray | list[int]) -> FtpPayload:
        buf = bytes(raw).ljust(PAYLOAD_LEN, b"\x00")
        seq, session, opcode, size, req, burst, offset = HEADER.unpack_from(buf)
        size = min(size, MAX_DATA)
        return cls(seq, session, opcode, size, req, bool(burst), offset, buf[HEADER.size :][:size])

    @property
    def error(self) -> FtpErrorCode | int | None:
        """A NAK's error code (an int when unknown); None for other opcodes."""
        if self.opcode != Opcode.NAK:
            return None
        code = self.data[0] if self.data else FtpErrorCode.FAIL
        try:
            return FtpErrorCode(code)
        except ValueError:
            return code

    @property
    def errno(self) -> int | None:
        """The server's errno after FAIL_ERRNO."""
        if self.error == FtpErrorCode.FAIL_ERRNO and len(self.data) > 1:
            return self.data[1]
        return None

    def describe(self) -> str:
        """Short text for logs: ``ACK ReadFile seq 7 offset 478 size 239``."""
        op = opcode_name(self.opcode)
        text = f"{op} seq {self.seq}"
        if self.opcode in (Opcode.ACK, Opcode.NAK):
            text = f"{op} {opcode_name(self.req_opcode)} seq {self.seq}"
        if self.opcode == Opcode.NAK:
            return f"{text} error {error_name(self.error)}"
        return f"{text} offset {self.offset} size {self.size}"


def opcode_name(opcode: int) -> str:
    """``OPEN_FILE_RO``, ``ACK``... for an opcode (its number when unknown)."""
    try:
        return Opcode(opcode).name
    except ValueError:
        return str(opcode)


def error_name(code: FtpErrorCode | int | None) -> str:
    """``FILE_NOT_FOUND``, ``EOF``... for a NAK code."""
    if isinstance(code, FtpErrorCode):
        return code.name
    return "NONE" if code is None else f"ERROR_{code}"


def message(target_system: int, target_component: int, payload: FtpPayload) -> Message:
    """FILE_TRANSFER_PROTOCOL carrying ``payload`` (target network 0)."""
    return mavlink.MAVLink_file_transfer_protocol_message(
        0, target_system, target_component, payload.pack()
    )


def payload_of(msg: Message) -> FtpPayload:
    """The decoded payload of a FILE_TRANSFER_PROTOCOL message."""
    return FtpPayload.unpack(msg.payload)


def path_payload(seq: int, opcode: Opcode, path: str, session: int = 0) -> FtpPayload:
    """A request carrying a path in its data (OpenFileRO, ListDirectory...)."""
    raw = path.encode()[:MAX_DATA]
    return FtpPayload(seq, session, opcode, len(raw), data=raw)
