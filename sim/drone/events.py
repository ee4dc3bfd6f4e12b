"""PX4's events protocol on a sim vehicle: EVENT, CURRENT_EVENT_SEQUENCE and REQUEST_EVENT.

PX4 reports most failures twice: as STATUSTEXT (which the sim, like PX4 SITL, sends only on a
link that has sent ground-station heartbeats) and as an EVENT, which its ``SendProtocol``
(``mavlink_events.cpp``) sends on every link: an event id (``events::ID(name)``), a 16-bit
sequence number, log levels and packed arguments, the text itself living in the firmware's
event metadata. An :class:`EventLog` does the same for the events the sim's checks raise, with
PX4's names and arguments (those in
:data:`firmware_bridges.mavlink.wire.px4_events.KNOWN_EVENTS`):

* a new event is sent once, broadcast (destination 0/0), with the next sequence number;
* CURRENT_EVENT_SEQUENCE (the latest sequence) every :data:`CURRENT_SEQUENCE_INTERVAL_S`, with
  the RESET flag while no event was sent yet, as PX4 does;
* REQUEST_EVENT(first, last) is answered from the last :data:`BUFFER_SIZE` events; a sequence
  no longer (or never) held gets RESPONSE_EVENT_ERROR with reason UNAVAILABLE and the oldest
  sequence still available after it.

pymavlink's dialect lacks these messages; the message classes come from the bridge's wire
module :mod:`firmware_bridges.mavlink.wire.px4_events`.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.messages import Message

CURRENT_SEQUENCE_INTERVAL_S = 3.0
"""Period of CURRENT_EVENT_SEQUENCE (PX4: ``current_sequence_interval{3_s}``)."""
BUFFER_SIZE = 32
"""Events kept for REQUEST_EVENT (PX4's buffer size depends on the board)."""
LOG_ERROR = 3
"""``events::Log::Error`` (external log level, low nibble of ``log_levels``)."""
LOG_WARNING = 4
"""``events::Log::Warning``."""
LOG_INTERNAL_INFO = 6
"""``events::LogInternal::Info`` (high nibble of ``log_levels``)."""
FLAG_RESET = 1
"""MAV_EVENT_CURRENT_SEQUENCE_FLAGS_RESET: the sender's sequence (re)started."""
ERROR_UNAVAILABLE = 0
"""MAV_EVENT_ERROR_REASON_UNAVAILABLE."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event as PX4 buffers it."""

    sequence: int
    event_id: int
    time_boot_ms: int
    log_levels: int
    arguments: bytes


class EventLog:
    """The events of one vehicle: sequence numbers, the send queue and the replay buffer."""

    def __init__(self) -> None:
        self.latest = 0xFFFF
        """Sequence of the latest event (the first event gets 0)."""
        self._buffer: deque[Event] = deque(maxlen=BUFFER_SIZE)
        self._outbox: list[Event] = []
        self._next_current: float | None = None
        self.sent = 0

    def emit(
        self,
        name: str,
        fmt: str = "",
        values: tuple[float, ...] = (),
        *,
        time_boot_ms: int,
        level: int = LOG_ERROR,
        internal: int = LOG_INTERNAL_INFO,
    ) -> Event:
        """Queue PX4 event ``name`` with arguments ``values`` packed as struct codes ``fmt``."""
        self.latest = (self.latest + 1) & 0xFFFF
        event = Event(
            self.latest,
            px4_events.px4_event_id(name),
            time_boot_ms & 0xFFFFFFFF,
            (level & 0x0F) | (internal & 0x0F) << 4,
            px4_events.pack_arguments(fmt, *values) if fmt else bytes(px4_events.ARGUMENTS_LEN),
        )
        self._buffer.append(event)
        self._outbox.append(event)
        return event

    @staticmethod
    def message(event: Event) -> px4_events.EventMessage:
        return px4_events.EventMessage(
            0, 0, event.event_id, event.time_boot_ms, event.sequence, event.log_levels,
            event.arguments,
        )  # fmt: skip

    def due(self, now: float) -> list[Message]:
        """Messages to send at world time ``now``: new events, then the current sequence when
        its period has passed."""
        out: list[Message] = [self.message(e) for e in self._outbox]
        self.sent += len(self._outbox)
        self._outbox.clear()
        if self._next_current is None or now >= self._next_current:
            self._next_current = now + CURRENT_SEQUENCE_INTERVAL_S
            flags = FLAG_RESET if not self._buffer else 0
            out.append(px4_events.CurrentEventSequenceMessage(self.latest, flags))
        return out

    def oldest_after(self, sequence: int) -> int:
        """The oldest held sequence after ``sequence`` (wrap-around aware), else the latest."""
        best, best_diff = self.latest, 0xFFFF
        for e in self._buffer:
            diff = (e.sequence - sequence) & 0xFFFF
            if e.sequence != sequence and diff < best_diff:
                best, best_diff = e.sequence, diff
        return best

    def request(self, first: int, last: int, sysid: int, compid: int) -> list[Message]:
        """Answer REQUEST_EVENT(first..last) from ``sysid``/``compid``."""
        held = {e.sequence: e for e in self._buffer}
        end = (last + 1) & 0xFFFF
        seq = first & 0xFFFF
        out: list[Message] = []

        def unavailable(s: int) -> None:
            out.append(
                px4_events.ResponseEventErrorMessage(
                    sysid, compid, s, self.oldest_after(s), ERROR_UNAVAILABLE
                )
            )

        requested = (end - seq) & 0xFFFF
        if requested > BUFFER_SIZE:  # only the newest BUFFER_SIZE can still be held
            unavailable(seq)
            seq = (end - BUFFER_SIZE) & 0xFFFF
        while seq != end:
            e = held.get(seq)
            if e is not None:
                out.append(self.message(e))
            else:
                unavailable(seq)
            seq = (seq + 1) & 0xFFFF
        return out


def frames_of(data: bytes, msg_ids: frozenset[int]) -> list[bytes]:
    """The complete MAVLink 2 frames of ``data`` whose message id is in ``msg_ids`` (for the
    messages the codec's dialect does not know)."""
    out = []
    i, n = 0, len(data)
    while i < n:
        magic = data[i]
        if magic == 0xFD and i + 10 <= n:
            length, incompat = data[i + 1], data[i + 2]
            end = i + 12 + length + (13 if incompat & 1 else 0)
            msg_id = data[i + 7] | data[i + 8] << 8 | data[i + 9] << 16
            if end <= n and msg_id in msg_ids:
                out.append(bytes(data[i:end]))
            i = max(end, i + 1)
        elif magic == 0xFE and i + 2 <= n:
            i += 8 + data[i + 1]
        else:
            i += 1
    return out


REQUEST_EVENT_ID = struct.pack("<I", px4_events.MSG_ID_REQUEST_EVENT)[:3]
"""REQUEST_EVENT's message id as it appears in a frame header, to skip datagrams quickly."""
