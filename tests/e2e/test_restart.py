"""A service restarted while a drone is flying loses nothing: the mission is followed again
and the request ends delivered; a request accepted just before the stop is still there.

The two service runs (:func:`tests.e2e.scenarios.start_delivery_then_stop` and
:func:`~tests.e2e.scenarios.resume_after_restart`) are shared with the SITL suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.e2e.scenarios import (
    FLY_ON_WITHOUT_US,
    SPEED,
    drone_service_settings,
    resume_after_restart,
    start_delivery_then_stop,
)
from tests.service import WORLDS, running_service
from tests.support import free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_restart_mid_flight_resumes_the_mission(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(1)
    settings = drone_service_settings(tmp_path, [first], SPEED, **FLY_ON_WITHOUT_US)
    async with SimFleet(1, world=world, clock=clock, first_port=first) as sim:
        async with running_service(settings, clock) as svc:
            inflight = await start_delivery_then_stop(svc.http, speed=SPEED)
        # the service is down; the drone flies on (PX4 NAV_DLL_ACT=0: no data-link failsafe)
        assert not sim[0].truth.of(TruthKind.RELEASE)

        async with running_service(settings, clock) as svc:
            await resume_after_restart(svc.http, inflight, speed=SPEED)
        assert len(sim[0].truth.of(TruthKind.RELEASE)) == 2
