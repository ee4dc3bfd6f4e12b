"""The shared e2e scenarios against real PX4 SITL (SIH quadrotors), opt-in: several deliveries
flown at once, a plan PX4 itself refuses, and a loudspeaker broadcast flown by PX4.

The bodies are those of the sim suite (:mod:`tests.e2e.scenarios`); only the drones differ
(:func:`tests.sitl.backend.px4_drones`). PX4 offers no ground truth, so these tests check the
service's record and, for the broadcast, the payload's own log of where it sounded (its
positions read from PX4 over the payload link).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.worldfile import load_world
from tests.e2e.scenarios import REFUSAL_LIMIT_M, fly_broadcast, fly_several, refused_by_vehicle
from tests.service import WORLDS, running_service
from tests.sitl.conftest import Fleet

pytestmark = [pytest.mark.sitl, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]


async def test_several_deliveries_flown_at_once_by_px4(tmp_path: Path, px4_fleet: Fleet) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    communities = [world.community(c) for c in ("C02", "C04", "C06")]
    async with (
        px4_fleet(3, world) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        await fly_several(
            svc.http,
            communities,
            vehicles=3,
            speed=drones.speed,
            ready_timeout=drones.ready_timeout,
            check=drones.check,
        )


async def test_a_plan_px4_refuses_is_reported_in_its_words(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        px4_fleet(1, world, params={"GF_MAX_HOR_DIST": REFUSAL_LIMIT_M}) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        await refused_by_vehicle(
            svc.http,
            world.community("C05"),
            speed=drones.speed,
            ready_timeout=drones.ready_timeout,
            check=drones.check,
        )


@pytest.mark.usefixtures("espeak_ng")
async def test_broadcast_flown_by_px4(tmp_path: Path, px4_fleet: Fleet) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with px4_fleet(2, world) as drones:
        settings = drones.settings(
            tmp_path,
            broadcast={"clip_dir": str(tmp_path / "clips"), "speaker_links": ["speaker+mqtt:///"]},
        )
        async with running_service(settings, drones.clock) as svc:
            # PX4 instance 1 (drone-2) carries the loudspeaker, which reads PX4's position
            await fly_broadcast(svc, drones, world, speaker=1)


@pytest.mark.usefixtures("espeak_ng")
async def test_a_broadcast_longer_than_one_battery_is_flown_by_px4_in_sorties(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    # flights of at most 700 s: community C02 takes two, and PX4 instance 1 (drone-2) is the one
    # speaker drone: it lands the first sortie and flies the second from its pad (PX4 SITL's
    # battery is full again on disarm, as after a swap)
    world = load_world(WORLDS / "shatou.geojson")
    async with px4_fleet(2, world) as drones:
        settings = drones.settings(
            tmp_path,
            broadcast={
                "clip_dir": str(tmp_path / "clips"),
                "speaker_links": ["speaker+mqtt:///"],
                "max_flight_s": 700.0,
            },
        )
        async with running_service(settings, drones.clock) as svc:
            flight = await fly_broadcast(
                svc, drones, world, speaker=1, community_id="C02", flights=2
            )
    _, second = flight.missions
    reasons = [e["reason"] for e in second["events"]]
    assert any("is back on its pad with battery" in r for r in reasons), "\n".join(reasons)
