"""A broadcast flown for real: the planner's flight plan on a PX4-like sim drone over MAVLink/UDP,
the sim speaker payload on that drone over MQTT (the real Mosquitto), and the proof report
computed from what the payload recorded.

The payload reads its drone's ground truth, as a real payload reads its flight controller; the
service sees only the wire. Time runs ten times faster than real time.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.link import register as register_mavlink
from firmware_bridges.speaker.address import link_url
from firmware_bridges.speaker.link import register as register_speaker
from fleet.clock import AcceleratedClock
from fleet.events import EventBus
from fleet.link import LinkContext, create_link
from fleet.registry import VehicleRegistry
from fleet.speaker import ClipRef, speaker_on
from fleet.vehicle import MissionRunState
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.flight import fly_broadcast
from missions.broadcast.planner import BroadcastParams, DroneStart, plan_broadcast
from missions.broadcast.report import build_report, render_png
from missions.broadcast.request import CommunityArea, resolve_area
from sim.drone.autopilot import Home
from sim.runner import SimFleet
from sim.speaker.payload import attach_speaker
from tests.support import eventually, free_port
from tests.unit.broadcast.clipserver import ClipServer, tone_wav
from tests.unit.broadcast.worlds import make_world, rect

register_speaker()  # the bridge's URL schemes, as the composition root does

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

SPEED = 10.0
"""World seconds per real second."""


async def test_planned_broadcast_flight_covers_the_community(
    mqtt_url: str, mqtt_prefix: str, tmp_path: Path
) -> None:
    # a 160 m x 100 m community whose west edge is 60 m east of the pad, and a small speaker
    # (110 dB at 1 m) flown low: audible 24 m around, so three lanes and real gaps to cover
    world = make_world({"C1": rect(60.0, -50.0, 160.0, 100.0)}, extent=1500.0)
    area = resolve_area(CommunityArea("C1"), world)
    model = SpeakerModel(source_level_db=110.0)
    pad = world.pads[0]
    clip_bytes = tone_wav(4.0)
    params = BroadcastParams(repeats=2, altitude_m=20.0)
    plan = plan_broadcast(
        area, world, [DroneStart("drone-1", pad.location.lat, pad.location.lon)], 4.0, params, model
    )
    (mission,) = plan.drones
    assert plan.lanes == 3
    assert plan.predicted_coverage >= 0.95

    clock = AcceleratedClock(SPEED)
    registry, bus = VehicleRegistry(), EventBus()
    ctx = LinkContext(registry, bus, clock, {})
    port = free_port(socket.SOCK_DGRAM)
    register_mavlink()  # the mavlink+udpin/udpout schemes, as the composition root does
    mav = create_link(f"mavlink+udpin://127.0.0.1:{port}", ctx)
    namespace = f"{mqtt_prefix}/speaker"
    spk = create_link(link_url(mqtt_url, ns=namespace), ctx)
    home = Home(pad.location.lat, pad.location.lon, pad.ground_alt_m)
    async with (
        ClipServer() as clips,
        mav,
        spk,
        SimFleet(1, clock=clock, homes=[home], first_port=port) as fleet,
    ):
        payload = attach_speaker(
            fleet[0], mqtt_url, clock, namespace=namespace, clear_retained_on_exit=True
        )
        async with payload:
            await registry.wait_added(1, within=60, clock=clock)
            drone = registry.get("drone-1").control
            assert isinstance(drone, MavlinkDrone)
            await eventually(lambda: drone.status.ready_to_arm, timeout=30)
            await eventually(lambda: "speaker-SPK-1" in registry, timeout=10)
            speaker = speaker_on(registry, "drone-1")
            url, sha = clips.add(clip_bytes)
            flight = await fly_broadcast(
                registry,
                "drone-1",
                speaker,
                mission,
                ClipRef(url, sha),
                params.volume,
                plan.clip_duration_s,
                clock,
                max_flight_s=mission.duration_s * 1.5,
            )
            records = flight.records
            # nothing lost between payload and service
            assert [r.seq for r in records] == [r.seq for r in payload.records]
            assert drone.status.mission.state == MissionRunState.COMPLETE or (
                drone.status.mission.reached >= len(mission.flight_plan.items) - 1
            )
    flown_s = flight.ended_at - flight.started_at
    t_start = flight.started_at
    assert len(flight.track) >= flown_s * 0.8  # about one position a second

    report = build_report(
        area.vertices, world.frame, records, params.repeats, model=model, track=flight.track
    )
    png = render_png(report)
    (tmp_path / "coverage.png").write_bytes(png)
    print(f"map: {tmp_path / 'coverage.png'}")
    summary = report.to_dict(cells=False)
    print(
        f"predicted {plan.predicted_coverage:.3f}, achieved {report.covered_fraction:.3f}; "
        f"planned {mission.duration_s:.0f} s, flown {flown_s:.0f} s; plays {summary['plays']}; "
        f"outside {summary['outside']}"
    )
    assert report.covered_fraction >= 0.95
    assert report.covered_fraction == pytest.approx(plan.predicted_coverage, abs=0.05)
    assert report.heard_once_fraction > report.covered_fraction or report.covered_fraction == 1.0
    assert report.no_playback_outside
    assert report.samples_outside == 0 and report.playback_outside_s == 0.0
    assert report.missing_seqs == ()
    assert report.plays_completed >= 2 * 2
    assert report.started_at is not None and report.ended_at is not None
    assert t_start < report.started_at < report.ended_at <= t_start + flown_s + 1
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    # the flight took about as long as planned (the planner sizes endurance from it)
    assert flown_s == pytest.approx(mission.duration_s, rel=0.25)
