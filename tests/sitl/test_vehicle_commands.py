"""Operators' commands to real PX4 SITL (SIH quadrotor), opt-in: hold then resume during a
delivery that then completes, and a return or a land in flight that ends the mission as a
cancel does; a drone taken out of service in flight, called home while another delivers.

The bodies are those of the sim suite (:func:`tests.e2e.scenarios.hold_then_resume`,
:func:`~tests.e2e.scenarios.stop_in_flight`, run on sim drones by
``tests/e2e/test_vehicle_commands.py``): what the service sends (DO_SET_MODE AUTO.LOITER,
AUTO.MISSION, AUTO.RTL, AUTO.LAND), what PX4 acknowledges and the modes it then reports are
PX4's own here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.worldfile import load_world
from tests.e2e.scenarios import (
    HELD_DELIVERY,
    hold_then_resume,
    out_of_service_in_flight,
    stop_in_flight,
)
from tests.service import WORLDS, running_service
from tests.sitl.conftest import Fleet

pytestmark = [pytest.mark.sitl, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]


async def test_hold_then_resume_during_a_delivery_on_px4(tmp_path: Path, px4_fleet: Fleet) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        px4_fleet(1, world) as drones,
        running_service(drones.settings(tmp_path, **HELD_DELIVERY), drones.clock) as svc,
    ):
        await hold_then_resume(svc, drones, world.community("C02"))


@pytest.mark.parametrize("command", ["return", "land"])
async def test_return_or_land_in_flight_on_px4(
    tmp_path: Path, px4_fleet: Fleet, command: str
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        px4_fleet(1, world) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        await stop_in_flight(svc, drones, world.community("C04"), command)


async def test_a_px4_taken_out_of_service_in_flight_comes_home_and_another_delivers(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        px4_fleet(2, world) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        await out_of_service_in_flight(svc, drones, world.community("C02"))
