"""A service restarted while a broadcast is flying loses nothing: the mission is followed again,
the payload's records from before, during and after the restart all reach the new service, and
the proof covers the whole flight.

The service's embedded broker goes down with it and comes back on the same port (fixed
``mqtt.embedded_port``), so the payload's connection breaks too; it keeps its records and the
service asks for the ones it never received."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.speaker.payload import attach_speaker
from tests.e2e.scenarios import FLY_ON_WITHOUT_US
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually, free_port, free_udp_ports

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.usefixtures("espeak_ng"),
]

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "20"))
"""Time acceleration of the e2e runs (world seconds per real second)."""


async def test_restart_mid_broadcast_keeps_every_record(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    port = free_udp_ports(1)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{port}"]},
        mqtt={"embedded_port": free_port()},
        broadcast={"clip_dir": str(tmp_path / "clips")},
        **FLY_ON_WITHOUT_US,
    )
    broker = f"mqtt://127.0.0.1:{settings.mqtt.embedded_port}"
    async with (
        SimFleet(1, world=world, clock=clock, first_port=port) as sim,
        attach_speaker(sim[0], broker, clock) as payload,
    ):
        async with running_service(settings, clock) as svc:
            http = svc.http

            async def ready() -> bool:
                vs = {v["id"]: v for v in (await http.get("/v1/vehicles")).json()}
                d, s = vs.get("drone-1"), vs.get("speaker-SPK-1")
                return bool(d and d["ready_to_arm"] and s and s["link"] == "online")

            await eventually(ready, timeout=30, message="the drone and its speaker are ready")
            r = await http.post(
                "/v1/broadcasts",
                json={
                    "area": {"community_id": "C01"},
                    "message": {
                        "text": "Supplies arrive at the east gate at noon.",
                        "language": "en",
                    },
                },
            )
            assert r.status_code == 201, r.text
            request_id = r.json()["id"]

            async def sounding() -> dict[str, Any] | None:
                rep = await http.get(f"/v1/requests/{request_id}/report")
                if rep.status_code != 200:
                    return None
                body = rep.json()
                return body if body["plays"]["completed"] >= 5 else None

            live = await eventually(
                sounding, timeout=900 / SPEED + 30, interval=0.5, message="playing over C01"
            )
            assert live["state"] == "in_progress"
            [mission_id] = live["missions"]
        # the service is down (and its broker); the drone flies on and the payload keeps playing
        heard_before = len(payload.records)

        async with running_service(settings, clock) as svc:
            http = svc.http

            async def finished() -> dict[str, Any] | None:
                b = (await http.get(f"/v1/broadcasts/{request_id}")).json()
                return b if b["state"] in {"completed", "failed", "cancelled"} else None

            done = await eventually(
                finished, timeout=1500 / SPEED + 60, interval=0.5, message="the broadcast ends"
            )
            assert done["state"] == "completed", done["events"]
            report = (await http.get(f"/v1/requests/{request_id}/report")).json()
            m = (await http.get(f"/v1/missions/{mission_id}")).json()
        assert m["state"] == "completed", m["reason"]
        assert any("following the mission again" in e["reason"] for e in m["events"])
        # every play the payload made, before and after the restart, is in the proof
        assert len(payload.records) > heard_before
        assert report["plays"]["total"] == len(payload.records)
        assert report["missing_records"] == []
        assert report["covered_fraction"] >= 0.95, report
        cut = [(r.seq, r.end_reason, r.samples[-2:]) for r in payload.records if not r.completed]
        assert report["outside"]["no_playback_outside"] is True, (report["outside"], cut)
        assert m["result"]["records_complete"] is True
