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
