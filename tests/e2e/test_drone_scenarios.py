"""End to end with sim drones: several deliveries flown at once, and a plan the drone itself
refuses. The scenario bodies (:mod:`tests.e2e.scenarios`) are shared with the SITL suite, which
flies them against real PX4; here the simulator's ground truth is checked as well."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.worldfile import load_world
from sim.truth import TruthKind
from tests.e2e.backends import sim_drones
from tests.e2e.scenarios import REFUSAL_LIMIT_M, SPEED, fly_several, refused_by_vehicle
from tests.service import WORLDS, running_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_several_deliveries_are_flown_at_once(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    communities = [world.community(c) for c in ("C02", "C04", "C06")]
    async with sim_drones(3, world, SPEED) as drones:
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            deliveries = await fly_several(svc.http, communities, vehicles=3, speed=SPEED)
        assert drones.sim is not None
        for d, community in zip(deliveries, communities, strict=True):
            sysid = int(d.mission["vehicle_id"].split("-")[-1])
            [release] = drones.sim.by_sysid(sysid).truth.of(TruthKind.RELEASE)
            assert release.distance_to(community.drop_point) <= 5.0


async def test_a_plan_the_drone_refuses_is_reported_in_its_words(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    params = {"GF_MAX_HOR_DIST": REFUSAL_LIMIT_M}
    async with sim_drones(1, world, SPEED, params=params) as drones:
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            await refused_by_vehicle(svc.http, world.community("C05"), speed=SPEED)
        assert drones.sim is not None
        truth = drones.sim[0].truth
        assert not truth.of(TruthKind.ARMED), "a refused plan must never be flown"
