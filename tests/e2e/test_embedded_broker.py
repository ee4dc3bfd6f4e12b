"""With no broker configured, the service starts its own (loopback) and a sim van joins it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually

pytestmark = [pytest.mark.e2e]


async def test_van_discovered_on_the_embedded_broker(tmp_path: Path) -> None:
    clock = AcceleratedClock(5)
    settings = service_settings(tmp_path, vda5050={"links": ["vda5050+mqtt:///"]})
    assert settings.mqtt.url is None
    async with running_service(settings, clock) as svc:
        url = svc.runtime.mqtt_url
        assert url is not None
        assert url.startswith("mqtt://127.0.0.1:")
        async with SimFleet(
            0, world=load_world(WORLDS / "shatou.geojson"), clock=clock, vans=1, mqtt_url=url
        ):

            async def van_online() -> bool:
                vs = (await svc.http.get("/v1/vehicles")).json()
                return any(v["kind"] == "van" and v["link"] == "online" for v in vs)

            await eventually(van_online, timeout=20, message="the sim van is discovered")
