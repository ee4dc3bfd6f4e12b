"""What a vehicle says, as a session keeps track of it: its recent texts, STATUSTEXT chunks put
back together, and where its EVENT sequence stands.

* :class:`TextLog`: the texts (STATUSTEXT and rendered EVENTs) of the last
  :data:`TEXT_MEMORY_S`, at most :data:`TEXT_MEMORY_COUNT`, so that a command refusal or a
  rejected plan can be reported with the vehicle's own words; callers can wait for the next one.
* :class:`ChunkedTexts`: a STATUSTEXT longer than 50 bytes comes in chunks with the same ``id``
  and increasing ``chunk_seq``, the last one shorter or NUL-terminated; a text whose last chunk
  never comes is given up after :data:`CHUNK_TIMEOUT_S`, with "…" for the missing chunks.
* :class:`EventSequence`: EVENTs carry a 16-bit sequence number; a repeated one is dropped and a
  gap (in the events, or up to CURRENT_EVENT_SEQUENCE) is asked for again with REQUEST_EVENT, at
  most :data:`EVENT_REQUEST_MAX_GAP` at a time.

These hold state only; :class:`.session.VehicleSession` feeds them and publishes what they say.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from fleet.clock import Clock
from fleet.events import Severity

TEXT_MEMORY_S = 300.0
"""How long received texts are kept for reporting reasons (world seconds)."""
TEXT_MEMORY_COUNT = 200
"""At most this many texts are kept per vehicle."""
CHUNK_TIMEOUT_S = 2.0
"""A multi-chunk STATUSTEXT whose last chunk never comes is emitted after this long."""
EVENT_REQUEST_MAX_GAP = 32
"""Missing EVENT sequences re-requested at most per gap."""
_SEVERITY_ORDER = (Severity.DEBUG, Severity.INFO, Severity.WARNING, Severity.ERROR)


@dataclass(slots=True)
class TextRecord:
    """One text the vehicle sent (STATUSTEXT or rendered EVENT)."""

    at: float
    """Clock monotonic() when received."""
    severity: Severity
    text: str
    source: str
    """``statustext`` or ``event``."""
    name: str | None = None
    """The event's name (``navigator_mis_geofence_violation``) when the vehicle's metadata or
    the built-in table knows it."""
    plan_rejection: bool = False
    """The vehicle's feasibility checks rejecting an uploaded plan (see
    :func:`.verdicts.is_plan_rejection`)."""


class TextLog:
    """The texts a vehicle sent lately, oldest first (iterable)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.records: deque[TextRecord] = deque(maxlen=TEXT_MEMORY_COUNT)
        self._waiters: list[asyncio.Future[None]] = []

    def __iter__(self) -> Iterator[TextRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: TextRecord) -> None:
        """Keep ``record`` (received now), forget texts older than :data:`TEXT_MEMORY_S` and
        wake whoever waits for a text."""
        records = self.records
        records.append(record)
        while records and records[0].at < record.at - TEXT_MEMORY_S:
            records.popleft()
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def since(self, since: float, min_severity: Severity | None = None) -> list[TextRecord]:
        """Texts received at or after clock ``monotonic()`` ``since``, at ``min_severity`` or
        above."""
        floor = _SEVERITY_ORDER.index(min_severity) if min_severity is not None else 0
        return [
            t for t in self.records if t.at >= since and _SEVERITY_ORDER.index(t.severity) >= floor
        ]

    async def wait(
        self, since: float, within: float, min_severity: Severity = Severity.WARNING
    ) -> list[TextRecord]:
        """Texts at or above ``min_severity`` since ``since``, waiting up to ``within`` world
        seconds for the first one if none has come yet."""
        found = self.since(since, min_severity)
        if found or within <= 0:
            return found

        async def _wait() -> None:
            while not self.since(since, min_severity):
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
                await fut

        with contextlib.suppress(TimeoutError):
            await self.clock.wait_for(_wait(), within)
        return self.since(since, min_severity)


@dataclass(frozen=True, slots=True)
class ChunkedText:
    """A STATUSTEXT put back together from its chunks."""

    component: int
    """The component that sent it."""
    severity: int
    """MAV_SEVERITY of its first chunk."""
    text: str
    """The chunks joined, "…" for any that never came (PX4's trailing tab kept)."""
    complete: bool


@dataclass(slots=True)
class _Chunks:
    first_at: float
    severity: int
    parts: dict[int, str] = field(default_factory=dict)
    last: int | None = None
    """chunk_seq of the final chunk, once received."""

    def joined(self, component: int) -> ChunkedText:
        last = max(self.parts)
        parts = [self.parts.get(i, "…") for i in range(last + 1)]
        return ChunkedText(component, self.severity, "".join(parts), len(self.parts) == last + 1)


class ChunkedTexts:
    """STATUSTEXTs in chunks (``id`` != 0) being put back together, per (component, id)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, int], _Chunks] = {}

    def add(
        self, component: int, msg_id: int, chunk_seq: int, severity: int, raw: bytes, now: float
    ) -> ChunkedText | None:
        """One chunk (``raw``: its text field); the whole text once its last chunk is in."""
        key = (component, msg_id)
        chunks = self._pending.get(key)
        if chunks is None:
            chunks = self._pending[key] = _Chunks(now, severity)
        chunks.parts[chunk_seq] = raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        if b"\x00" in raw or len(raw) < 50:  # the final chunk
            chunks.last = chunk_seq
        if chunks.last is not None and len(chunks.parts) == chunks.last + 1:
            del self._pending[key]
            return chunks.joined(component)
        return None

    def expired(self, now: float, force: bool = False) -> list[ChunkedText]:
        """Texts whose last chunk has not come within :data:`CHUNK_TIMEOUT_S` (every pending
        one with ``force``), given up on and returned as they are."""
        out = []
        for key, chunks in list(self._pending.items()):
            if force or now - chunks.first_at > CHUNK_TIMEOUT_S:
                del self._pending[key]
                out.append(chunks.joined(key[0]))
        return out


class EventSequence:
    """Where a vehicle's EVENT sequence stands: the events seen lately and the latest sequence."""

    def __init__(self) -> None:
        self.last: int | None = None
        """The latest sequence heard (EVENT or CURRENT_EVENT_SEQUENCE); None before any."""
        self._seen: deque[int] = deque(maxlen=256)

    def on_event(self, seq: int) -> tuple[bool, tuple[int, int] | None]:
        """An EVENT with sequence ``seq``: (whether it is new, the sequences skipped before it
        to ask for again, if any)."""
        gap = None
        last = self.last
        if last is None:
            self.last = seq
        else:
            ahead = (seq - last) & 0xFFFF
            if 0 < ahead < 0x8000:
                if ahead > 1:
                    gap = request_range(last + 1, seq - 1)
                self.last = seq
        if seq in self._seen:
            return False, gap  # re-sent after a request we did not need
        self._seen.append(seq)
        return True, gap

    def on_current(self, seq: int, flags: int) -> tuple[int, int] | None:
        """CURRENT_EVENT_SEQUENCE: the sequences missed up to ``seq`` to ask for, if any."""
        if flags & 1:  # MAV_EVENT_CURRENT_SEQUENCE_FLAGS_RESET: the vehicle rebooted
            self.last = seq
            self._seen.clear()
            return None
        last = self.last
        if last is None:
            self.last = seq
            return None
        ahead = (seq - last) & 0xFFFF
        if 0 < ahead < 0x8000:
            self.last = seq
            return request_range(last + 1, seq)
        return None


def request_range(first: int, last: int) -> tuple[int, int]:
    """REQUEST_EVENT's (first, last) for the missing ``first..last`` (16-bit, wrapping): the
    newest :data:`EVENT_REQUEST_MAX_GAP` of them."""
    count = ((last - first) & 0xFFFF) + 1
    if count > EVENT_REQUEST_MAX_GAP:
        first = (last - EVENT_REQUEST_MAX_GAP + 1) & 0xFFFF
    return first & 0xFFFF, last & 0xFFFF
