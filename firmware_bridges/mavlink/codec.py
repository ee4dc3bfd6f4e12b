"""MAVLink framing, decoding, encoding and signing for one link, on top of pymavlink.

pymavlink's ``parse_buffer`` walks a byte at a time through a state machine and decodes every
message. A UDP datagram, however, holds whole frames (PX4 packs several per datagram), so the
link splits a datagram by reading each frame header (:func:`iter_frames`), looks at the
message id, and asks pymavlink to decode (CRC, signature, fields) only the frames it has a
handler for. Frames it does not use are counted and dropped undecoded, which is what lets one
process ingest hundreds of vehicles.

Garbage is never fatal: a byte that does not start a frame makes the splitter scan for the
next start byte, a truncated frame ends the datagram, and a frame that fails its CRC or
signature is counted and skipped (:class:`LinkStats`).

Signing (MAVLink 2): with a key, every outgoing frame is signed and every incoming frame must
carry a valid signature; unsigned or badly signed frames from vehicles are rejected and
counted. The key is 32 bytes given as 64 hex characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import px4_events
from fleet.clock import Clock
from fleet.errors import ConfigError

MAGIC_V2 = 0xFD
"""Start byte of a MAVLink 2 frame."""
MAGIC_V1 = 0xFE
"""Start byte of a MAVLink 1 frame (PX4 may speak it until it hears MAVLink 2)."""
SIGNATURE_LEN = 13
"""Length of the MAVLink 2 signature block."""
SIGNING_EPOCH = 1_420_070_400
"""2015-01-01T00:00:00Z, the origin of signing timestamps (units of 10 µs)."""


@dataclass(slots=True)
class LinkStats:
    """Counters of one link's receive path."""

    datagrams: int = 0
    frames: int = 0
    """Complete frames found in datagrams."""
    decoded: int = 0
    """Frames decoded and handled."""
    skipped: int = 0
    """Frames of messages the service does not use (not decoded)."""
    garbage_bytes: int = 0
    """Bytes that did not belong to any frame."""
    truncated: int = 0
    """Frames cut short by the end of their datagram."""
    bad_crc: int = 0
    """Frames whose CRC (or length) did not check out."""
    bad_signature: int = 0
    """Frames rejected by signing (unsigned, bad or replayed signature)."""
    foreign: int = 0
    """Frames from system ids that are not (yet) vehicles, or addressed to someone else."""
    handler_errors: int = 0
    """Frames whose handling raised (logged; the link keeps running)."""
    sent: int = 0
    """Frames sent."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class DecodeError(Exception):
    """A frame could not be decoded; ``signature`` tells a signing rejection from bad bytes."""

    def __init__(self, message: str, signature: bool = False) -> None:
        super().__init__(message)
        self.signature = signature


def iter_frames(data: bytes, stats: LinkStats) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield ``(start, end, msgid, sysid, compid)`` of each complete frame in a datagram."""
    n = len(data)
    i = 0
    while i < n:
        magic = data[i]
        if magic == MAGIC_V2:
            if i + 10 > n:
                stats.truncated += 1
                return
            end = i + 12 + data[i + 1] + (SIGNATURE_LEN if data[i + 2] & 1 else 0)
            if end > n:
                stats.truncated += 1
                return
            yield (
                i,
                end,
                data[i + 7] | data[i + 8] << 8 | data[i + 9] << 16,
                data[i + 5],
                data[i + 6],
            )
            i = end
        elif magic == MAGIC_V1:
            if i + 6 > n:
                stats.truncated += 1
                return
            end = i + 8 + data[i + 1]
            if end > n:
                stats.truncated += 1
                return
            yield i, end, data[i + 5], data[i + 3], data[i + 4]
            i = end
        else:
            # resynchronise on the next start byte
            j = i + 1
            while j < n and data[j] != MAGIC_V2 and data[j] != MAGIC_V1:
                j += 1
            stats.garbage_bytes += j - i
            i = j


def parse_signing_key(key: str | None) -> bytes | None:
    """The 32-byte key from its hex form; ConfigError if malformed."""
    if key is None or key == "":
        return None
    try:
        raw = bytes.fromhex(key)
    except ValueError as exc:
        raise ConfigError("mavlink.signing_key must be hex", setting="mavlink.signing_key") from exc
    if len(raw) != 32:
        raise ConfigError(
            "mavlink.signing_key must be 32 bytes (64 hex characters)",
            setting="mavlink.signing_key",
        )
    return raw


def signing_timestamp(clock: Clock) -> int:
    """Signing timestamp for 'now' in the clock's world (10 µs units since 2015)."""
    return max(0, int((clock.time() - SIGNING_EPOCH) * 100_000))


class Codec:
    """Encoder/decoder of one link: our system/component ids, sequence numbers, signing."""

    def __init__(
        self, system_id: int, component_id: int, clock: Clock, signing_key: bytes | None = None
    ) -> None:
        self.mav = mavlink.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
        self.mav.robust_parsing = True
        self.system_id = system_id
        self.component_id = component_id
        self.signing = signing_key is not None
        if signing_key is not None:
            self.mav.signing.secret_key = signing_key
            self.mav.signing.sign_outgoing = True
            self.mav.signing.link_id = 0
            self.mav.signing.timestamp = signing_timestamp(clock)
            self.mav.signing.allow_unsigned_callback = None  # unsigned frames are rejected

    def pack(self, msg: mavlink.MAVLink_message) -> bytes:
        """Frame (and sign) a message from us."""
        return bytes(msg.pack(self.mav))

    def decode(self, frame: bytes) -> mavlink.MAVLink_message:
        """Decode one complete frame; DecodeError on CRC, length or signature failure."""
        buf = bytearray(frame)
        msgid = buf[7] | buf[8] << 8 | buf[9] << 16 if buf[0] == MAGIC_V2 else buf[5]
        if msgid in px4_events.EXTRA_MESSAGES and buf[0] == MAGIC_V2:
            try:
                return px4_events.decode_extra(self.mav, buf)
            except px4_events.EventDecodeError as exc:
                raise DecodeError(str(exc), signature="sign" in str(exc)) from exc
        if self.signing and buf[0] == MAGIC_V1:
            raise DecodeError("MAVLink 1 frame rejected (signing is on)", signature=True)
        try:
            return self.mav.decode(buf)
        except mavlink.MAVError as exc:
            text = str(exc)
            raise DecodeError(text, signature="signature" in text.lower()) from exc
