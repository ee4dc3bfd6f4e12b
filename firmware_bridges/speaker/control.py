"""Control of one loudspeaker payload: :class:`SpeakerHandle`, the
:class:`fleet.speaker.SpeakerControl` the speaker link hands out for every payload it discovers.

A handle turns the port's commands into ``command`` messages sent through its
:class:`~firmware_bridges.speaker.link.SpeakerLink` (which waits for the replies), keeps the
payload's status, its playback records by sequence number and its broadcast sessions
(:class:`Session`), and waits for a session's end until every record of it is in, asking the
payload to resend the missing ones. Transport, discovery, link state and the watchdog belong to
the link.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from firmware_bridges.speaker import translate, wire
from fleet.speaker import (
    ClipRef,
    LoadedClip,
    PlaybackRecord,
    PlaySpec,
    SpeakerStatus,
    check_volume,
)
from fleet.vehicle import VehicleStatus

if TYPE_CHECKING:
    from firmware_bridges.speaker.link import SpeakerLink


@dataclass
class Session:
    """One broadcast session of a payload, as the service follows it."""

    session_id: str
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    first_seq: int = -1
    last_seq: int = -1
    """-1: the session recorded nothing."""
    plays_completed: int = 0


class SpeakerHandle:
    """Control of one payload (implements :class:`fleet.speaker.SpeakerControl`)."""

    def __init__(self, link: SpeakerLink, payload_id: str, host_vehicle_id: str | None) -> None:
        self._link = link
        self.payload_id = payload_id
        self.host_vehicle_id = host_vehicle_id
        self.vehicle_id = f"speaker-{payload_id}"
        self._status = SpeakerStatus()
        self.vehicle_status = VehicleStatus()
        self.records: dict[int, PlaybackRecord] = {}
        self.sessions: dict[str, Session] = {}
        self.heard_at: float | None = None
        self.info: wire.InfoMsg | None = None
        self.last_resend: float = -1e18
        """Clock ``monotonic()`` of the last ``records_resend`` sent (the link paces them)."""

    @property
    def status(self) -> SpeakerStatus:
        return self._status

    # --- SpeakerControl ---------------------------------------------------------------------

    async def load_clip(self, clip: ClipRef) -> LoadedClip:
        reply = await self._link.call(
            self, wire.Method.CLIP_LOAD, translate.clip_load(clip), self._link.clip_timeout_s
        )
        loaded = translate.loaded_clip(reply.output, clip.sha256)
        self._status.clip = loaded
        return loaded

    async def play_in_area(self, spec: PlaySpec) -> str:
        tid = uuid.uuid4().hex
        self.sessions[tid] = Session(tid)
        try:
            await self._link.call(self, wire.Method.PLAY_AREA, translate.play_area(spec), tid=tid)
        except BaseException:
            self.sessions.pop(tid, None)
            raise
        self._status.session_id = tid
        return tid

    async def stop(self) -> None:
        await self._link.call(self, wire.Method.PLAY_STOP, wire.PlayStopData())

    async def set_volume(self, percent: int) -> None:
        check_volume(percent)
        await self._link.call(self, wire.Method.VOLUME_SET, wire.VolumeSetData(volume=percent))
        self._status.volume = percent

    def playback_records(self, session_id: str | None = None) -> list[PlaybackRecord]:
        return [
            r
            for _, r in sorted(self.records.items())
            if session_id is None or r.session_id == session_id
        ]

    async def wait_session_end(self, session_id: str, within: float | None) -> None:
        session = self.sessions.setdefault(session_id, Session(session_id))

        async def _wait() -> None:
            await session.ended.wait()
            while self.missing(session):
                await self._link.request_resend(self, min(self.missing(session)))
                await self._link.ctx.clock.sleep(self._link.resend_interval_s)

        await self._link.ctx.clock.wait_for(_wait(), within)

    # --- bookkeeping --------------------------------------------------------------------------

    def missing(self, session: Session) -> list[int]:
        """Sequence numbers of a finished session's records not received yet."""
        if session.last_seq < 0:
            return []
        first = max(0, session.first_seq)
        return [s for s in range(first, session.last_seq + 1) if s not in self.records]

    def gaps(self) -> list[int]:
        """Sequence numbers below the highest received that are missing."""
        if not self.records:
            return []
        top = max(self.records)
        low = min(self.records)
        return [s for s in range(low, top) if s not in self.records]
