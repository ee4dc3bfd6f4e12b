"""``FakeSpeaker``: an in-memory loudspeaker payload behind :class:`fleet.speaker.SpeakerControl`.

It emulates what the speaker bridge and a payload do together, as missions see them:

* it registers in the vehicle registry as the speaker link does (kind ``payload``, id
  ``speaker-{payload_id}``, its host drone in ``host_vehicle_id``), so
  :func:`fleet.speaker.speaker_on` finds it;
* ``load_clip`` fetches nothing: it checks the SHA-256 against the clips a test gave it
  (``clips``: sha -> duration) and refuses an unknown one, or any clip while a session is
  active (``busy``), as the sim payload does; ``play_in_area`` without a clip is refused
  (``no_clip``); refusals raise ``CommandRejected`` (``method``, ``code``, the payload's words),
  silence ``CommandTimeout``, a payload offline ``LinkLost``;
* during a session it sounds **only inside the area**: riding on a :class:`FakeDrone`
  (:meth:`FakeSpeaker.ride_on`), every change of the host's position inside the area (and above
  the area's floor) is one complete play of the clip, recorded as a :class:`PlaybackRecord` with
  the host's position; a session with ``repeats`` ends by itself after that many plays;
* ``wait_session_end`` returns once the session ended (``stop`` or its repeats): every record is
  delivered at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fleet.clock import Clock
from fleet.errors import CommandRejected, CommandTimeout, LinkLost
from fleet.fakes.faults import FaultControls, FaultKind, Faults
from fleet.geo import Position
from fleet.registry import VehicleRegistry
from fleet.speaker import (
    ClipRef,
    LoadedClip,
    PlaybackRecord,
    PlaybackSample,
    PlaySpec,
    SpeakerState,
    SpeakerStatus,
    check_volume,
)
from fleet.vehicle import Capability, LinkState, VehicleInfo, VehicleKind, VehicleStatus

if TYPE_CHECKING:
    from fleet.fakes.drone import FakeDrone

WIRE_METHODS = {
    "load_clip": "clip_load",
    "play_in_area": "play_area",
    "stop": "play_stop",
    "set_volume": "volume_set",
}
"""The payload command each port method sends (named in ``CommandRejected.fields``)."""


def inside(vertices: tuple[tuple[float, float], ...], lat: float, lon: float) -> bool:
    """Whether (lat, lon) lies inside the polygon (ray casting; fine for a street's size)."""
    hit = False
    n = len(vertices)
    for i in range(n):
        (ya, xa), (yb, xb) = vertices[i], vertices[(i + 1) % n]
        if (ya > lat) != (yb > lat):
            x = xa + (lat - ya) * (xb - xa) / (yb - ya)
            if lon < x:
                hit = not hit
    return hit


class _Session:
    def __init__(self, session_id: str, spec: PlaySpec) -> None:
        self.session_id = session_id
        self.spec = spec
        self.ended = asyncio.Event()
        self.plays = 0


class FakeSpeaker(FaultControls):
    """A loudspeaker payload that plays only inside its area (see module docs)."""

    def __init__(
        self,
        payload_id: str,
        host_vehicle_id: str | None,
        *,
        clock: Clock,
        clips: dict[str, float] | None = None,
        registry: VehicleRegistry | None = None,
    ) -> None:
        self.payload_id = payload_id
        self.host_vehicle_id = host_vehicle_id
        self.vehicle_id = f"speaker-{payload_id}"
        self.clock = clock
        self.clips: dict[str, float] = dict(clips or {})
        """SHA-256 -> duration (s) of the clips the payload can fetch."""
        self._status = SpeakerStatus(state=SpeakerState.IDLE, online=True, volume=80)
        self.vehicle_status = VehicleStatus(link=LinkState.ONLINE)
        self.info = VehicleInfo(
            id=self.vehicle_id,
            kind=VehicleKind.PAYLOAD,
            link_url="fake+speaker://",
            address=payload_id,
            capabilities=frozenset({Capability.BROADCAST}),
            name=f"speaker {payload_id}",
        )
        self.faults = Faults()
        self.commands: list[str] = []
        """Port methods called, in order."""
        self.records: list[PlaybackRecord] = []
        """Every play, in order (the payload's own log)."""
        self.sessions: dict[str, _Session] = {}
        self._active: _Session | None = None
        self._seq = 0
        self.position: Callable[[], Position | None] = lambda: None
        """Where the host is (set by :meth:`ride_on`)."""
        self.registry: VehicleRegistry | None = None
        if registry is not None:
            self.attach(registry)

    def attach(self, registry: VehicleRegistry) -> None:
        """Appear in ``registry`` (as the speaker link does on discovery)."""
        self.registry = registry
        registry.add(self.info, self, self.vehicle_status)
        registry.touch(self.vehicle_id)

    def ride_on(self, drone: FakeDrone) -> None:
        """Mount on ``drone``: read its position and play as it moves."""
        self.host_vehicle_id = drone.vehicle_id
        self.position = lambda: drone.truth.position
        drone.on_step.append(lambda _d: self.tick())

    # --- what a test makes it do --------------------------------------------------------------

    def go_offline(self) -> None:
        self.vehicle_status.link = LinkState.OFFLINE
        self._status.online = False
        if self.registry is not None:
            self.registry.touch(self.vehicle_id)

    def come_back(self) -> None:
        self.vehicle_status.link = LinkState.ONLINE
        self._status.online = True
        if self.registry is not None:
            self.registry.touch(self.vehicle_id)

    @property
    def playing(self) -> bool:
        """A session is active."""
        return self._active is not None

    def tick(self) -> None:
        """The host moved: one complete play if a session is active and the host is inside
        the area, above its floor."""
        session = self._active
        pos = self.position()
        if session is None or pos is None:
            return
        area = session.spec.area
        if not inside(area.vertices, pos.lat, pos.lon) or pos.rel_alt < area.min_rel_alt_m:
            self._status.state = SpeakerState.WAITING
            self._status.inside_area = False
            return
        assert self._status.clip is not None
        start = self.clock.time()
        end = start + self._status.clip.duration_s
        self.records.append(
            PlaybackRecord(
                payload_id=self.payload_id,
                session_id=session.session_id,
                seq=self._seq,
                clip_sha256=self._status.clip.sha256,
                started_at=start,
                ended_at=end,
                completed=True,
                volume=self._status.volume or 0,
                samples=(
                    PlaybackSample(start, pos.lat, pos.lon, pos.rel_alt),
                    PlaybackSample(end, pos.lat, pos.lon, pos.rel_alt),
                ),
                end_reason="completed",
            )
        )
        self._seq += 1
        session.plays += 1
        self._status.state = SpeakerState.PLAYING
        self._status.inside_area = True
        self._status.plays_started += 1
        self._status.plays_completed += 1
        if session.spec.repeats and session.plays >= session.spec.repeats:
            self._end()

    def _end(self) -> None:
        session = self._active
        if session is None:
            return
        session.ended.set()
        self._active = None
        self._status.state = SpeakerState.READY if self._status.clip else SpeakerState.IDLE
        self._status.inside_area = False

    # --- SpeakerControl -------------------------------------------------------------------------

    @property
    def status(self) -> SpeakerStatus:
        return self._status

    async def _check(self, command: str) -> None:
        self.commands.append(command)
        await self.faults.gate(command)
        if self.vehicle_status.link in (LinkState.LOST, LinkState.OFFLINE):
            raise LinkLost(
                f"speaker {self.payload_id} is {self.vehicle_status.link}",
                vehicle_id=self.vehicle_id,
            )
        fault = self.faults.take(command)
        if fault is not None and fault.kind is FaultKind.TIMEOUT:
            raise CommandTimeout(
                f"speaker {self.payload_id} did not answer {WIRE_METHODS.get(command, command)}",
                vehicle_id=self.vehicle_id,
                method=WIRE_METHODS.get(command, command),
            )
        if fault is not None:
            raise self._refusal(command, "rejected", fault.reason)

    def _refusal(self, command: str, code: str, text: str) -> CommandRejected:
        method = WIRE_METHODS.get(command, command)
        return CommandRejected(
            f"speaker {self.payload_id} refused {method}: {text}",
            vehicle_id=self.payload_id,
            method=method,
            result=code,
            code=code,
        )

    async def load_clip(self, clip: ClipRef) -> LoadedClip:
        await self._check("load_clip")
        if self._active is not None:
            raise self._refusal("load_clip", "busy", "a broadcast is active; stop it first")
        duration = self.clips.get(clip.sha256)
        if duration is None:
            raise self._refusal("load_clip", "checksum", f"no clip with SHA-256 {clip.sha256}")
        loaded = LoadedClip(clip.sha256, duration, int(duration * 32_000))
        self._status.clip = loaded
        self._status.state = SpeakerState.READY
        return loaded

    async def play_in_area(self, spec: PlaySpec) -> str:
        await self._check("play_in_area")
        if self._status.clip is None:
            raise self._refusal("play_in_area", "no_clip", "load a clip first")
        if self._active is not None:
            raise self._refusal("play_in_area", "busy", "a broadcast is active; stop it first")
        session = _Session(f"{self.payload_id}-s{len(self.sessions) + 1}", spec)
        self.sessions[session.session_id] = session
        self._active = session
        self._status.session_id = session.session_id
        self._status.plays_started = self._status.plays_completed = 0
        self._status.state = SpeakerState.WAITING
        self.tick()
        return session.session_id

    async def stop(self) -> None:
        await self._check("stop")
        self._end()

    async def set_volume(self, percent: int) -> None:
        await self._check("set_volume")
        self._status.volume = check_volume(percent)

    def playback_records(self, session_id: str | None = None) -> list[PlaybackRecord]:
        return [r for r in self.records if session_id is None or r.session_id == session_id]

    async def wait_session_end(self, session_id: str, within: float | None) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return  # a session this payload never had: nothing will come
        waited: Awaitable[bool] = session.ended.wait()
        await self.clock.wait_for(waited, within)

    def __repr__(self) -> str:
        return f"FakeSpeaker({self.payload_id!r} on {self.host_vehicle_id}, {self._status.state})"


__all__ = ["WIRE_METHODS", "FakeSpeaker", "inside"]
