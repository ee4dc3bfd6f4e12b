"""Loudspeaker payloads in domain terms: state, clips, broadcast areas, playback records, and the
``SpeakerControl`` port through which missions drive one payload.

A loudspeaker payload is mounted on a drone (its *host*) and talks to the service over its own
link (``firmware_bridges/speaker``, MQTT). It loads an audio clip from a URL, checks it against
its SHA-256, and plays it in a loop *only while its host is inside a broadcast area*: the payload
itself enforces the area, so a mission cannot make it play elsewhere. Every play, completed or
cut short by leaving the area, is reported as a :class:`PlaybackRecord` with the host positions
sampled during it; proof-of-coverage reports are computed from those records.

Protocol-neutral and free of I/O: the speaker bridge translates its wire messages into these
types in its ``translate.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from fleet.errors import NotFound, ValidationError

MAX_VOLUME = 100
"""Volume is a percentage of the payload's full output, 0..100."""


class SpeakerState(StrEnum):
    """What a payload is doing."""

    UNKNOWN = "unknown"
    """Not reported yet."""
    IDLE = "idle"
    """No clip loaded."""
    LOADING = "loading"
    """Fetching and checking a clip."""
    READY = "ready"
    """A clip is loaded; not broadcasting."""
    WAITING = "waiting"
    """A broadcast is active but the host is outside the area (or too low): silent."""
    PLAYING = "playing"
    """A broadcast is active and the clip is sounding."""
    ERROR = "error"
    """The payload reports a fault; ``SpeakerStatus.error`` says which."""


@dataclass(frozen=True, slots=True)
class ClipRef:
    """An audio clip the payload should fetch: where from and its SHA-256 (hex, lower case)."""

    url: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValidationError("clip URL must be http(s)", field="url", url=self.url)
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValidationError("not a lower-case hex SHA-256", field="sha256")


@dataclass(frozen=True, slots=True)
class LoadedClip:
    """A clip the payload has fetched, verified and decoded."""

    sha256: str
    duration_s: float
    size_bytes: int


@dataclass(frozen=True, slots=True)
class BroadcastArea:
    """Where the payload may sound: a WGS84 polygon and the lowest altitude above home."""

    vertices: tuple[tuple[float, float], ...]
    """(lat, lon) vertices, not closed (first != last), at least three."""
    min_rel_alt_m: float = 0.0
    """Silent below this height above the take-off point (e.g. while climbing)."""

    def __post_init__(self) -> None:
        verts = self.vertices
        if len(verts) >= 2 and verts[0] == verts[-1]:
            verts = verts[:-1]
            object.__setattr__(self, "vertices", verts)
        if len(verts) < 3:
            raise ValidationError("a broadcast area needs at least three vertices", field="area")
        for lat, lon in verts:
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise ValidationError(f"not a WGS84 position: ({lat}, {lon})", field="area")
        if self.min_rel_alt_m < 0:
            raise ValidationError("must be >= 0", field="min_rel_alt_m")


@dataclass(frozen=True, slots=True)
class PlaySpec:
    """A broadcast order: play the loaded clip in a loop while inside ``area``."""

    area: BroadcastArea
    repeats: int = 0
    """Complete plays after which the payload stops by itself; 0 plays until told to stop."""
    period_s: float | None = None
    """Start-to-start time of consecutive plays (>= clip duration); None plays back to back."""

    def __post_init__(self) -> None:
        if self.repeats < 0:
            raise ValidationError("must be >= 0", field="repeats")
        if self.period_s is not None and self.period_s <= 0:
            raise ValidationError("must be > 0", field="period_s")


@dataclass(frozen=True, slots=True)
class PlaybackSample:
    """Where the host was at world time ``t`` while the clip sounded."""

    t: float
    """World time, seconds since the Unix epoch."""
    lat: float
    lon: float
    rel_alt: float
    """Metres above the take-off point."""


@dataclass(frozen=True, slots=True)
class PlaybackRecord:
    """One play of a clip, from its start to its end or to the moment it was cut short."""

    payload_id: str
    session_id: str
    """The broadcast order (``play_in_area`` call) it belongs to."""
    seq: int
    """Per-payload sequence number, increasing by one per record (gaps mean lost records)."""
    clip_sha256: str
    started_at: float
    ended_at: float
    completed: bool
    """True when the whole clip sounded; False when it was cut (left the area, stop)."""
    volume: int
    samples: tuple[PlaybackSample, ...]
    """Host positions during the play, first at ``started_at`` and last at ``ended_at``."""
    end_reason: str = ""
    """Why it ended: ``completed``, ``left_area``, ``stopped``, ``too_low``, ``error``."""

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


@dataclass(slots=True)
class SpeakerStatus:
    """Live state of one payload, written by its link."""

    state: SpeakerState = SpeakerState.UNKNOWN
    online: bool = False
    clip: LoadedClip | None = None
    volume: int | None = None
    session_id: str | None = None
    """The active (or last) broadcast order."""
    plays_started: int = 0
    plays_completed: int = 0
    """Plays of the current session so far."""
    inside_area: bool = False
    error: str | None = None
    """Code of the last fault the payload reported."""
    last_seen: float | None = None
    """Clock ``monotonic()`` of the last message."""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SpeakerControl(Protocol):
    """Commands a mission may give one loudspeaker payload.

    Each returns once the payload has done it, or raises a :class:`fleet.errors.VehicleError`:
    ``CommandRejected`` (the payload refused: bad checksum, no clip, busy, ...),
    ``CommandTimeout`` (no answer), ``LinkLost`` (payload offline).
    """

    payload_id: str
    host_vehicle_id: str | None
    """The drone it is mounted on."""

    @property
    def status(self) -> SpeakerStatus: ...

    async def load_clip(self, clip: ClipRef) -> LoadedClip:
        """Fetch the clip, check its SHA-256 and make it the current clip."""
        ...

    async def play_in_area(self, spec: PlaySpec) -> str:
        """Start a broadcast; returns its session id. The payload sounds only inside the area."""
        ...

    async def stop(self) -> None:
        """End the current broadcast (silence now); a no-op when none is active."""
        ...

    async def set_volume(self, percent: int) -> None:
        """Set the output level, 0..100 % of full output."""
        ...

    def playback_records(self, session_id: str | None = None) -> list[PlaybackRecord]:
        """Records received so far (of one session, or all), in ``seq`` order."""
        ...

    async def wait_session_end(self, session_id: str, within: float | None) -> None:
        """Wait until the broadcast has ended (repeats done or stopped) and every record of it
        has arrived; ``TimeoutError`` after ``within`` world seconds."""
        ...


def check_volume(percent: int) -> int:
    """Validate a volume percentage; raises ``ValidationError``."""
    if isinstance(percent, bool) or not isinstance(percent, int):
        raise ValidationError("volume must be an integer percentage", field="volume")
    if not 0 <= percent <= MAX_VOLUME:
        raise ValidationError(f"volume must be within 0..{MAX_VOLUME}", field="volume")
    return percent


def speaker_on(entries: Iterable[Any], vehicle_id: str) -> SpeakerControl:
    """The speaker payload mounted on ``vehicle_id`` among registry entries.

    Speaker links register each payload in the vehicle registry with ``kind`` ``payload``, its
    host in ``info.host_vehicle_id`` and a :class:`SpeakerControl` as control handle. Raises
    ``NotFound`` when the drone carries no (known) speaker.
    """
    for entry in entries:
        control = getattr(entry, "control", None)
        if isinstance(control, SpeakerControl) and control.host_vehicle_id == vehicle_id:
            return control
    raise NotFound("speaker on vehicle", vehicle_id)


def records_in_order(records: Sequence[PlaybackRecord]) -> list[PlaybackRecord]:
    """Records sorted by payload and sequence number, duplicates (same payload, seq) dropped."""
    seen: dict[tuple[str, int], PlaybackRecord] = {}
    for r in records:
        seen.setdefault((r.payload_id, r.seq), r)
    return [seen[k] for k in sorted(seen)]
