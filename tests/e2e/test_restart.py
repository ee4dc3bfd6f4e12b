"""A service restarted while a drone is flying loses nothing: the mission is followed again
and the request ends delivered; a request accepted just before the stop is still there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually, free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "10"))


async def test_restart_mid_flight_resumes_the_mission(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(1)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{first}"]},
    )
    async with SimFleet(1, world=world, clock=clock, first_port=first) as sim:
        async with running_service(settings, clock) as svc:
            await svc.http.post(
                "/v1/warehouses/W1/stock", json={"sku_id": "test_kit", "quantity": 100}
            )

            async def ready() -> bool:
                vs = (await svc.http.get("/v1/vehicles")).json()
                return bool(vs) and vs[0]["ready_to_arm"]

            await eventually(ready, timeout=30, message="the sim drone is ready")
            first_req = (
                await svc.http.post(
                    "/v1/requests",
                    json={"community_id": "C04", "items": [{"sku_id": "test_kit", "quantity": 20}]},
                )
            ).json()

            async def cruising() -> str | None:
                req = (await svc.http.get(f"/v1/requests/{first_req['id']}")).json()
                if not req["missions"]:
                    return None
                m = (await svc.http.get(f"/v1/missions/{req['missions'][0]}")).json()
                return m["id"] if m["phase"] == "go_to" else None

            mission_id = await eventually(
                cruising, timeout=300 / SPEED + 30, message="the drone is on its way"
            )
            # accepted just before the stop: must survive it
            second = (
                await svc.http.post(
                    "/v1/requests",
                    json={"community_id": "C01", "items": [{"sku_id": "test_kit", "quantity": 5}]},
                )
            ).json()
        # the service is down; the drone flies on (PX4 NAV_DLL_ACT=0: no data-link failsafe)
        assert not sim[0].truth.of(TruthKind.RELEASE)

        async with running_service(settings, clock) as svc:

            async def done(rid: str) -> dict | None:
                req = (await svc.http.get(f"/v1/requests/{rid}")).json()
                return req if req["state"] in {"delivered", "failed", "cancelled"} else None

            req1 = await eventually(
                lambda: done(first_req["id"]),
                timeout=1200 / SPEED + 60,
                interval=0.5,
                message="the first request is delivered",
            )
            assert req1["state"] == "delivered", req1["events"]
            m = (await svc.http.get(f"/v1/missions/{mission_id}")).json()
            assert any("service restarted" in e["reason"] for e in m["events"])

            async def mission_completed() -> bool:
                mm = (await svc.http.get(f"/v1/missions/{mission_id}")).json()
                return mm["state"] == "completed"

            await eventually(
                mission_completed,
                timeout=600 / SPEED + 60,
                interval=0.5,
                message="the resumed mission completes",
            )
            # the request accepted before the stop is flown after the drone is back
            req2 = await eventually(
                lambda: done(second["id"]),
                timeout=1200 / SPEED + 60,
                interval=0.5,
                message="the second request is delivered",
            )
            assert req2["state"] == "delivered", req2["events"]
        assert len(sim[0].truth.of(TruthKind.RELEASE)) == 2
