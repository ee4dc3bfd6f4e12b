"""The e2e delivery scenario against real PX4 SITL (SIH quadrotors), opt-in.

Three ``px4`` instances stand on the Shatou pads; the service, on an AcceleratedClock at PX4's
``PX4_SIM_SPEED_FACTOR``, listens on their API ports (14540-14542). The scenario body is the
e2e one (:func:`tests.e2e.scenarios.fly_delivery`): a request through the API ends
``delivered``, the release is within 5 m of the drop point and the landing within 3 m of the pad
by the service's record. PX4 has no ground truth to offer, so the vehicle's own telemetry after
the flight is checked instead: disarmed, on the ground, on its pad.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.geo import LatLon, distance_m
from fleet.worldfile import load_world
from tests.e2e.scenarios import drone_service_settings, fly_delivery
from tests.service import WORLDS, running_service
from tests.sitl.conftest import Launcher
from tests.support import eventually

pytestmark = [pytest.mark.sitl, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

READY_TIMEOUT_S = 120.0
"""Real seconds for PX4 to boot, get a GPS fix and pass its pre-arm checks (about 5 s when the
machine is idle; three instances starting together on two cores take longer)."""


async def test_delivery_flown_by_px4_sitl(tmp_path: Path, px4: Launcher, px4_speed: float) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    community = world.community("C05")  # its straight leg crosses the substation no-fly zone
    sitl = px4(3, world, speed=px4_speed)
    settings = drone_service_settings(tmp_path, sitl.api_ports(), px4_speed)
    clock = AcceleratedClock(px4_speed)
    async with sitl, running_service(settings, clock) as svc:
        delivery = await fly_delivery(
            svc.http,
            community,
            vehicles=3,
            speed=px4_speed,
            ready_timeout=READY_TIMEOUT_S,
            check=sitl.raise_if_exited,
        )
        mission = delivery.mission
        pad = world.pad(mission["plan"]["pad_id"])

        async def parked() -> dict | None:
            sitl.raise_if_exited()
            v = (await svc.http.get(f"/v1/vehicles/{mission['vehicle_id']}")).json()
            return v if not v["armed"] and v["landed"] == "on_ground" else None

        # PX4 disarms COM_DISARM_LAND after touchdown
        vehicle = await eventually(
            parked, timeout=60 / px4_speed + 30, message="the drone is disarmed on the ground"
        )
        assert vehicle["position"] is not None, vehicle
        here = LatLon(vehicle["position"]["lat"], vehicle["position"]["lon"])
        assert distance_m(here, pad.location) <= 3.0
        assert not sitl.exited(), "a PX4 instance stopped during the flight"
