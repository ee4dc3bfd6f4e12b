"""``FakeSpeaker`` honours the ``SpeakerControl`` contract as the speaker bridge and the sim
payload do (``tests/integration/test_speaker_protocol.py``): found on its host, refusals with the
payload's code, sound only inside the area, sessions that end and deliver their records."""

from __future__ import annotations

import asyncio

import pytest

from fleet.clock import ManualClock
from fleet.drone import FlightPlan, Land, Takeoff, Waypoint
from fleet.errors import CommandRejected, CommandTimeout, LinkLost
from fleet.fakes import FakeDrone, FakeSpeaker
from fleet.geo import LatLon, offset_latlon
from fleet.registry import VehicleRegistry
from fleet.speaker import BroadcastArea, ClipRef, PlaySpec, SpeakerControl, speaker_on

HOME = LatLon(22.5270418, 114.0314461)
SHA = "ab" * 32


def square(east: float, north: float, size: float) -> BroadcastArea:
    corners = [(east, north), (east + size, north), (east + size, north + size)]
    corners.append((east, north + size))
    return BroadcastArea(
        tuple(offset_latlon(HOME.lat, HOME.lon, e, n) for e, n in corners), min_rel_alt_m=10.0
    )


@pytest.fixture
def pair() -> tuple[FakeDrone, FakeSpeaker]:
    registry, clock = VehicleRegistry(), ManualClock()
    drone = FakeDrone("drone-1", HOME, registry=registry, clock=clock)
    speaker = FakeSpeaker("SPK-1", None, clock=clock, clips={SHA: 3.0}, registry=registry)
    speaker.ride_on(drone)
    return drone, speaker


async def test_it_is_found_on_its_drone_and_refuses_as_the_payload_does(
    pair: tuple[FakeDrone, FakeSpeaker],
) -> None:
    drone, speaker = pair
    assert drone.registry is not None
    assert isinstance(speaker, SpeakerControl)
    assert speaker_on(drone.registry, "drone-1") is speaker
    spec = PlaySpec(square(100, 100, 100))
    with pytest.raises(CommandRejected) as no_clip:
        await speaker.play_in_area(spec)
    assert no_clip.value.fields["code"] == "no_clip"
    assert no_clip.value.fields["method"] == "play_area"
    with pytest.raises(CommandRejected) as unknown:
        await speaker.load_clip(ClipRef("http://127.0.0.1/c.wav", "cd" * 32))
    assert unknown.value.fields["method"] == "clip_load"
    loaded = await speaker.load_clip(ClipRef("http://127.0.0.1/c.wav", SHA))
    assert loaded.duration_s == 3.0
    await speaker.play_in_area(spec)
    with pytest.raises(CommandRejected) as busy:
        await speaker.load_clip(ClipRef("http://127.0.0.1/c.wav", SHA))
    assert busy.value.fields["code"] == "busy"
    speaker.time_out("set_volume", times=1)
    with pytest.raises(CommandTimeout):
        await speaker.set_volume(50)
    speaker.go_offline()
    with pytest.raises(LinkLost):
        await speaker.stop()


async def test_it_sounds_only_inside_the_area_and_a_stopped_session_delivers_its_records(
    pair: tuple[FakeDrone, FakeSpeaker],
) -> None:
    drone, speaker = pair
    inside = offset_latlon(HOME.lat, HOME.lon, 150, 150)
    outside = offset_latlon(HOME.lat, HOME.lon, 300, 150)
    await drone.upload_mission(
        FlightPlan(
            (
                Takeoff(20.0),
                Waypoint(*outside, 20.0),
                Waypoint(*inside, 20.0),
                Waypoint(*inside, 5.0),  # below the area's floor: silent
                Waypoint(*outside, 20.0),
                Land(HOME.lat, HOME.lon),
            )
        )
    )
    await speaker.load_clip(ClipRef("http://127.0.0.1/c.wav", SHA))
    session = await speaker.play_in_area(PlaySpec(square(100, 100, 100)))
    await drone.start_mission()
    await drone.fly()
    records = speaker.playback_records(session)
    assert len(records) == 1 and records[0].completed
    [sample, _] = records[0].samples
    assert (sample.lat, sample.lon) == inside
    waiting = asyncio.create_task(speaker.wait_session_end(session, within=60))
    await asyncio.sleep(0)
    assert not waiting.done()
    await speaker.stop()
    await waiting
    assert not speaker.playing


async def test_repeats_end_the_session_by_themselves(pair: tuple[FakeDrone, FakeSpeaker]) -> None:
    drone, speaker = pair
    inside = offset_latlon(HOME.lat, HOME.lon, 150, 150)
    await drone.upload_mission(
        FlightPlan(
            (
                Takeoff(20.0),
                *(Waypoint(*inside, 20.0 + i) for i in range(4)),
                Land(HOME.lat, HOME.lon),
            )
        )
    )
    await speaker.load_clip(ClipRef("http://127.0.0.1/c.wav", SHA))
    session = await speaker.play_in_area(PlaySpec(square(100, 100, 100), repeats=2))
    await drone.start_mission()
    await drone.fly()
    assert [r.seq for r in speaker.playback_records(session)] == [0, 1]
    await speaker.wait_session_end(session, within=1)  # ended already
    assert not speaker.playing
