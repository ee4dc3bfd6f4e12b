"""End to end: community staff request a loudspeaker broadcast over HTTP; the service speaks the
text with espeak-ng, plans the coverage, and flies it with the one sim drone that carries a
speaker payload; the proof of coverage is served as JSON and PNG.

Everything runs over real sockets: the service (uvicorn) and two PX4-like sim drones talk
MAVLink over UDP; the sim speaker payload talks the speaker protocol to the service over MQTT on
the service's **embedded broker** (``mqtt.url`` unset: the broker the service starts because a
speaker link is configured, the same path ``streetfleet demo`` takes), and fetches its clip from
the service over HTTP. The payload reads its drone's ground truth, as a real payload reads its
flight controller; the test checks the service's proof against the payload's own log.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Polygon

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.speaker.payload import attach_speaker
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually, free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "20"))
"""Time acceleration of the e2e runs (world seconds per real second)."""

COMMUNITY = "C03"
"""The community broadcast over (about 64 000 m²: one drone, about 11 minutes)."""


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_broadcast_requested_over_http_is_flown_and_proven(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(2)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{first + i}" for i in range(2)]},
        broadcast={"clip_dir": str(tmp_path / "clips"), "speaker_links": ["speaker+mqtt:///"]},
    )
    assert settings.mqtt.url is None  # the service starts its embedded broker
    community = world.community(COMMUNITY)
    area = Polygon([world.frame.to_xy(lat, lon) for lat, lon in community.boundary])
    async with (
        SimFleet(2, world=world, clock=clock, first_port=first) as sim,
        running_service(settings, clock) as svc,
    ):
        http = svc.http
        broker = svc.runtime.mqtt_url
        assert broker is not None and broker.startswith("mqtt://127.0.0.1:")
        # drone-2 carries the loudspeaker; drone-1 does not
        async with attach_speaker(sim[1], broker, clock) as payload:

            async def fleet_ready() -> bool:
                vs = {v["id"]: v for v in (await http.get("/v1/vehicles")).json()}
                drones = [vs.get(f"drone-{i}") for i in (1, 2)]
                speaker = vs.get("speaker-SPK-2")
                return (
                    all(d and d["ready_to_arm"] and d["link"] == "online" for d in drones)
                    and speaker is not None
                    and speaker["link"] == "online"
                )

            await eventually(fleet_ready, timeout=30, message="two drones and the speaker ready")

            r = await http.post(
                "/v1/broadcasts",
                json={
                    "area": {"community_id": COMMUNITY},
                    "message": {
                        "text": "Nucleic acid testing today at the north gate.",
                        "language": "en",
                    },
                    "repeats": 2,
                    "priority": "vulnerable",
                    "requested_by": "staff C03-7",
                },
                headers={"X-Actor": "staff C03-7"},
            )
            assert r.status_code == 201, r.text
            req = r.json()
            request_id = req["id"]
            assert req["kind"] == "broadcast" and req["community_id"] == COMMUNITY
            assert req["state"] == "approved"
            assert req["preview"]["predicted_coverage"] >= 0.95
            clip = req["clip"]
            assert clip["source"] == "tts" and 1.0 < clip["duration_s"] < 10.0

            # the clip can be previewed, and is what its name says
            wav = await http.get(f"/v1/clips/{clip['sha256']}.wav")
            assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
            assert hashlib.sha256(wav.content).hexdigest() == clip["sha256"]

            async def finished() -> dict | None:
                b = (await http.get(f"/v1/broadcasts/{request_id}")).json()
                return b if b["state"] in {"completed", "failed", "cancelled"} else None

            done = await eventually(
                finished,
                timeout=1500 / SPEED + 60,
                interval=0.5,
                message="the broadcast request reaches a final state",
            )
            assert done["state"] == "completed", done["events"]
            [mission_id] = done["missions"]
            [occurrence] = done["occurrences"]
            assert occurrence["state"] == "completed"
            assert occurrence["vehicles"] == ["drone-2"]

            # the service's proof of coverage
            r = await http.get(f"/v1/requests/{request_id}/report")
            assert r.status_code == 200, r.text
            report = r.json()
            print(
                f"predicted {report['predicted_coverage']}, covered {report['covered_fraction']}"
                f", plays {report['plays']}, outside {report['outside']}"
            )
            assert report["state"] == "completed"
            assert report["covered_fraction"] >= 0.95
            assert report["outside"]["no_playback_outside"] is True
            assert report["outside"]["samples_outside"] == 0
            assert report["outside"]["playback_outside_s"] == 0.0
            assert report["missing_records"] == []
            assert report["payload_ids"] == ["SPK-2"]
            assert report["repeats_required"] == 2
            assert report["plays"]["completed"] >= 4
            assert report["started_at"] < report["ended_at"]

            png = await http.get(report["png_url"])
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 2000

            # the mission's record: states, phases, and the decision with its reason
            m = (await http.get(f"/v1/missions/{mission_id}")).json()
            assert m["kind"] == "drone_broadcast" and m["vehicle_id"] == "drone-2"
            states = [
                e["to_state"]
                for e in m["events"]
                if e["kind"] == "state" and e["request_id"] is None
            ]
            assert states == ["planned", "authorized", "underway", "completed"]
            phases = [e["data"]["phase"] for e in m["events"] if e["kind"] == "phase"]
            assert phases[:2] == ["preflight", "takeoff"]
            assert {"go_to", "broadcast", "return", "done"} <= set(phases)
            assert any(
                e["kind"] == "decision" and "drone-2 (speaker SPK-2" in e["reason"]
                for e in m["events"]
            )
            assert m["result"]["records_complete"] is True

        # independent of the service: the payload's own log of what it played
        assert len(payload.records) == report["plays"]["total"]
        for rec in payload.records:
            for _, lat, lon, _alt in rec.samples:
                x, y = world.frame.to_xy(lat, lon)
                assert shapely.intersects_xy(area, x, y), "the payload sounded outside C03"
