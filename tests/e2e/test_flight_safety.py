"""Flight safety end to end on sim drones (``docs/safety.md``): 20 deliveries whose paths cross,
kept apart by strategic deconfliction (zero pairs closer than the separation in the recorded
telemetry), and the faults of issue 13, each injected with its end state asserted within a
deadline: where the vehicle is, what the service recorded, what work was dispatched again.
The shared bodies (:mod:`tests.e2e.scenarios`) also fly on PX4 SITL
(``tests/sitl/test_flight_safety.py``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firmware_bridges.mavlink.wire.mission_items import MissionType
from fleet.worldfile import load_world
from sim.truth import TruthKind
from tests.e2e.backends import sim_drones
from tests.e2e.scenarios import (
    SPEED,
    battery_sag_recall,
    fence_stops_the_flight,
    fly_crossing,
    secured_delivery,
)
from tests.e2e.separation import (
    NORTH_COMMUNITIES,
    SOUTH_COMMUNITIES,
    Sample,
    TelemetryRecorder,
    crossing_world,
)
from tests.service import WORLDS, running_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CROSSING_SPEED = min(SPEED, 10.0)
"""Twenty sim drones and the service share two cores: run them at most 10x."""


async def test_twenty_crossing_deliveries_keep_their_separation(tmp_path: Path) -> None:
    world_path = crossing_world(tmp_path / "crossing.geojson")
    world = load_world(world_path)
    routes = [("W1", c) for c in NORTH_COMMUNITIES] * 2 + [("W2", c) for c in SOUTH_COMMUNITIES] * 2
    async with sim_drones(20, world, CROSSING_SPEED, stream_rate_scale=0.5) as drones:
        assert drones.sim is not None
        fleet = drones.sim

        def truth() -> dict[str, Sample]:
            out: dict[str, Sample] = {}
            for v in fleet.vehicles:
                lat, lon = v.ap.latlon()
                x, y = world.frame.to_xy(lat, lon)
                out[f"drone-{v.sysid}"] = (x, y, v.ap.kin.height, not v.ap.kin.on_ground)
            return out

        ground_truth = TelemetryRecorder(drones.clock, truth)
        settings = drones.settings(tmp_path, world={"path": str(world_path)})
        async with running_service(settings, drones.clock) as svc:
            seen = await fly_crossing(svc, drones, routes, recorders=[ground_truth])
        for v in fleet.vehicles:
            assert v.truth.of(TruthKind.RELEASE), f"drone-{v.sysid} released its load"
            assert v.ap.kin.on_ground and not v.ap.armed
    # the paths do cross: without the reservations some flights would have met
    assert seen.delayed + seen.layered > 0, "no flight was moved: the scenario is wrong"
    print(
        f"crossing: closest approach {seen.approach}; {seen.delayed} delayed, "
        f"{seen.layered} on another layer"
    )


async def test_the_policy_is_on_the_vehicle_after_a_delivery(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            await secured_delivery(svc, drones, world.community("C05"))
        assert drones.sim is not None
        params = drones.sim[0].params
        assert params["NAV_DLL_ACT"] == 2 and params["GF_MAX_VER_DIST"] == world.max_altitude_m
        assert drones.sim[0].missions.plans[MissionType.RALLY] == []  # one warehouse


async def test_a_battery_sag_is_recalled_by_the_service(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        assert drones.sim is not None
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:

            async def sag_on_take_off() -> None:
                v = drones.sim[0]  # type: ignore[index]
                while not v.truth.of(TruthKind.TAKEOFF):
                    await drones.clock.sleep(0.5)
                v.set_battery_drain(25.0)

            sagging = asyncio.get_running_loop().create_task(sag_on_take_off())
            try:
                await battery_sag_recall(svc, drones, world.community("C05"))
            finally:
                sagging.cancel()
        assert not drones.sim[0].truth.of(TruthKind.RELEASE)


async def test_the_vehicles_fence_stops_a_flight_in_its_words(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            m = await fence_stops_the_flight(svc, drones, world.community("C05"))
        assert "maximum distance from home exceeded" in m["reason"], m["reason"]
        assert drones.sim is not None
        assert any(
            "geofence breach" in e.detail for e in drones.sim[0].truth.of(TruthKind.FAILSAFE)
        )
