"""End to end: community staff request a loudspeaker broadcast over HTTP; the service speaks the
text with espeak-ng, plans the coverage, and flies it with the one sim drone that carries a
speaker payload; the proof of coverage is served as JSON and PNG.

Everything runs over real sockets: the service (uvicorn) and two PX4-like sim drones talk
MAVLink over UDP; the sim speaker payload talks the speaker protocol to the service over MQTT on
the service's **embedded broker** (``mqtt.url`` unset: the broker the service starts because a
speaker link is configured, the same path ``streetfleet demo`` takes), and fetches its clip from
the service over HTTP. The payload reads its drone's ground truth, as a real payload reads its
flight controller. The scenario body (:func:`tests.e2e.scenarios.fly_broadcast`) is shared with
the SITL suite, where PX4 flies and the payload reads PX4's position over MAVLink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.worldfile import load_world
from sim.truth import TruthKind
from tests.e2e.backends import sim_drones
from tests.e2e.scenarios import SPEED, fly_broadcast
from tests.service import WORLDS, running_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.usefixtures("espeak_ng")
async def test_broadcast_requested_over_http_is_flown_and_proven(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(2, world, SPEED) as drones:
        settings = drones.settings(
            tmp_path,
            broadcast={"clip_dir": str(tmp_path / "clips"), "speaker_links": ["speaker+mqtt:///"]},
        )
        assert settings.mqtt.url is None  # the service starts its embedded broker
        async with running_service(settings, drones.clock) as svc:
            # drone-2 carries the loudspeaker; drone-1 does not
            flight = await fly_broadcast(svc, drones, world, speaker=1)
    print(
        f"predicted {flight.report['predicted_coverage']}, covered "
        f"{flight.report['covered_fraction']}, plays {flight.report['plays']}"
    )


@pytest.mark.usefixtures("espeak_ng")
async def test_a_broadcast_longer_than_one_battery_is_flown_in_sorties_with_a_battery_swap(
    tmp_path: Path,
) -> None:
    # a flight may last 700 s here; community C02 needs two such flights, and the street has
    # one speaker drone: it flies the second share after landing the first and having its
    # battery swapped by the ground crew (the sim's, 300 world s after it is back on its pad)
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(2, world, SPEED, battery_swap_s=300.0) as drones:
        assert drones.sim is not None
        settings = drones.settings(
            tmp_path,
            broadcast={
                "clip_dir": str(tmp_path / "clips"),
                "speaker_links": ["speaker+mqtt:///"],
                "max_flight_s": 700.0,
            },
        )
        speaker_drone = drones.sim.vehicles[1]

        async def drain() -> None:
            # what is left after the first flight cannot fly the second with the reserve
            speaker_drone.set_battery(0.45)

        async with running_service(settings, drones.clock) as svc:
            flight = await fly_broadcast(
                svc,
                drones,
                world,
                speaker=1,
                community_id="C02",
                flights=2,
                while_first_flies=drain,
            )
    _, second = flight.missions
    reasons = [e["reason"] for e in second["events"]]
    assert any("waiting for the battery swap" in r for r in reasons), "\n".join(reasons)
    assert any("is back on its pad with battery 100%" in r for r in reasons), reasons
    swaps = list(speaker_drone.truth.of(TruthKind.BATTERY_SWAP))
    assert swaps, "the ground crew swapped the battery between the sorties"
    assert flight.request["preview"]["flights"] >= 2
    print(f"covered {flight.report['covered_fraction']} in 2 sorties, {len(swaps)} battery swap(s)")
