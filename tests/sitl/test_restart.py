"""The e2e restart scenario against real PX4 SITL, opt-in: the service stops while PX4 flies a
delivery and, restarted, follows the mission to the end; a request accepted just before the stop
is flown afterwards. The two service runs are the e2e ones
(:mod:`tests.e2e.scenarios`). NAV_DLL_ACT is preset to 0 (PX4's default, no data-link failsafe,
set explicitly because older SITL start scripts set 2) so PX4 flies on while nobody listens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from tests.e2e.scenarios import (
    FLY_ON_WITHOUT_US,
    drone_service_settings,
    resume_after_restart,
    start_delivery_then_stop,
)
from tests.service import WORLDS, running_service
from tests.sitl.conftest import Launcher
from tests.sitl.test_delivery import READY_TIMEOUT_S

pytestmark = [pytest.mark.sitl, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2400)]


async def test_restart_while_px4_flies(tmp_path: Path, px4: Launcher, px4_speed: float) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    sitl = px4(1, world, speed=px4_speed, params={"NAV_DLL_ACT": 0})
    settings = drone_service_settings(tmp_path, sitl.api_ports(), px4_speed, **FLY_ON_WITHOUT_US)
    clock = AcceleratedClock(px4_speed)
    async with sitl:
        async with running_service(settings, clock) as svc:
            inflight = await start_delivery_then_stop(
                svc.http, speed=px4_speed, ready_timeout=READY_TIMEOUT_S, check=sitl.raise_if_exited
            )
        sitl.raise_if_exited()  # PX4 keeps flying while the service is down
        async with running_service(settings, clock) as svc:
            await resume_after_restart(
                svc.http, inflight, speed=px4_speed, check=sitl.raise_if_exited
            )
