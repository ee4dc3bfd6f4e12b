"""Flying one drone's share of a broadcast through the ports: the drone's ``DroneControl`` and its
speaker's ``SpeakerControl``.

The mission executor owns states, events and the store; these coroutines are the broadcast-
specific steps it calls, in order:

1. :func:`start_broadcast`: end any session the payload still has (a payload refuses to load a
   clip during one, and a flight interrupted by a restart may have left one), load the clip (the
   payload fetches it and checks its SHA-256), set the volume, upload the flight plan, start the
   speaker's session (it sounds only inside the area, so starting it before take-off is safe).
2. the drone's ``start_mission()``; while it flies, :class:`TrackRecorder` samples the positions
   the drone reports (the track on the report's map);
3. :func:`finish_broadcast`: stop the session and wait until every playback record is in.

:func:`fly_broadcast` strings them together with a plain wait for the landing, for simple
callers and tests.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol

from fleet.clock import Clock
from fleet.drone import DroneControl, FlightPlan
from fleet.errors import CommandTimeout, VehicleError
from fleet.registry import VehicleEntry, VehicleRegistry
from fleet.speaker import ClipRef, LoadedClip, PlaybackRecord, PlaySpec, SpeakerControl
from fleet.vehicle import LandedState, VehicleStatus
from missions.broadcast.report import TrackRow

CLIP_DURATION_TOLERANCE_S = 0.05
"""The loaded clip must last what the plan assumed, within this."""


class FlightShare(Protocol):
    """What a drone's share of a broadcast gives the flight steps (a planner's
    ``DroneBroadcastPlan`` or a stored ``record.BroadcastShare``)."""

    @property
    def flight_plan(self) -> FlightPlan: ...

    @property
    def play(self) -> PlaySpec: ...


@dataclass
class TrackRecorder:
    """Positions a drone reported, at most one per ``interval_s`` world seconds."""

    interval_s: float = 1.0
    rows: list[TrackRow] = field(default_factory=list)

    def sample(self, status: VehicleStatus, now: float) -> None:
        pos = status.position
        if pos is None:
            return
        if self.rows and now - self.rows[-1][0] < self.interval_s:
            return
        self.rows.append((now, pos.lat, pos.lon, pos.rel_alt))


async def start_broadcast(
    drone: DroneControl,
    speaker: SpeakerControl,
    mission: FlightShare,
    clip: ClipRef,
    volume: int,
    clip_duration_s: float,
) -> str:
    """Steps before take-off; returns the speaker's session id (see module docstring)."""
    await speaker.stop()
    loaded: LoadedClip = await speaker.load_clip(clip)
    if abs(loaded.duration_s - clip_duration_s) > CLIP_DURATION_TOLERANCE_S:
        raise VehicleError(
            f"speaker {speaker.payload_id} reports the clip lasts {loaded.duration_s:.2f} s, "
            f"the plan assumed {clip_duration_s:.2f} s",
            payload_id=speaker.payload_id,
        )
    await speaker.set_volume(volume)
    await drone.upload_mission(mission.flight_plan)
    session = await speaker.play_in_area(mission.play)
    return session


async def finish_broadcast(
    speaker: SpeakerControl, session: str, within_s: float = 60.0
) -> list[PlaybackRecord]:
    """Stop the session and return its records once all have arrived.

    Raises ``CommandTimeout`` when the records are still incomplete after ``within_s``.
    """
    await speaker.stop()
    try:
        await speaker.wait_session_end(session, within_s)
    except TimeoutError:
        raise CommandTimeout(
            f"speaker {speaker.payload_id} did not deliver every playback record of session "
            f"{session} within {within_s:g} s",
            payload_id=speaker.payload_id,
            session_id=session,
        ) from None
    return speaker.playback_records(session)


@dataclass
class BroadcastFlight:
    """What one drone's broadcast flight produced."""

    session_id: str
    records: list[PlaybackRecord]
    track: list[TrackRow]
    started_at: float
    ended_at: float


async def fly_broadcast(
    registry: VehicleRegistry,
    vehicle_id: str,
    speaker: SpeakerControl,
    mission: FlightShare,
    clip: ClipRef,
    volume: int,
    clip_duration_s: float,
    clock: Clock,
    max_flight_s: float,
) -> BroadcastFlight:
    """Fly one drone's share from start to landing (see module docstring).

    Raises the drone's or the speaker's ``VehicleError``; ``TimeoutError`` when the drone is
    not back on the ground, disarmed, within ``max_flight_s``. The speaker is stopped whatever
    happens.
    """
    entry = registry.get(vehicle_id)
    drone = entry.control
    if not isinstance(drone, DroneControl):
        raise VehicleError(f"{vehicle_id} is not a drone", vehicle_id=vehicle_id)
    session = await start_broadcast(drone, speaker, mission, clip, volume, clip_duration_s)
    recorder = TrackRecorder()
    started = clock.time()
    try:
        await drone.start_mission()
        took_off = False

        def back(e: VehicleEntry) -> bool:
            nonlocal took_off
            recorder.sample(e.status, clock.time())
            if e.status.landed in (LandedState.IN_AIR, LandedState.TAKING_OFF):
                took_off = True
            return took_off and e.status.landed == LandedState.ON_GROUND and not e.status.armed

        deadline = started + max_flight_s
        while True:
            remaining = deadline - clock.time()
            if remaining <= 0:
                raise TimeoutError(f"{vehicle_id} not back after {max_flight_s:.0f} s")
            try:
                await registry.wait_for(vehicle_id, back, within=min(1.0, remaining), clock=clock)
                break
            except TimeoutError:
                recorder.sample(registry.get(vehicle_id).status, clock.time())
        ended = clock.time()
        records = await finish_broadcast(speaker, session)
    except BaseException:
        with contextlib.suppress(Exception):
            await speaker.stop()
        raise
    return BroadcastFlight(session, records, recorder.rows, started, ended)
