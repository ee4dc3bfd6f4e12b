"""End to end: the service and three sim drones over real UDP sockets, a delivery requested
through the HTTP API, flown in accelerated time, checked against the simulator's ground truth.

The scenario body (:func:`tests.e2e.scenarios.fly_delivery`) is shared with the SITL suite,
which flies it against real PX4."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.geo import distance_m
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.e2e.scenarios import SPEED, drone_service_settings, fly_delivery
from tests.service import WORLDS, running_service
from tests.support import free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_delivery_requested_through_the_api_is_flown_and_delivered(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(3)
    settings = drone_service_settings(tmp_path, range(first, first + 3), SPEED)
    community = world.community("C05")  # its straight leg crosses the substation no-fly zone
    async with (
        SimFleet(3, world=world, clock=clock, first_port=first) as sim,
        running_service(settings, clock) as svc,
    ):
        delivery = await fly_delivery(svc.http, community, vehicles=3, speed=SPEED)
        mission = delivery.mission

        # ground truth from the simulator, independent of telemetry
        pad = world.pad(mission["plan"]["pad_id"])
        vehicle = sim.by_sysid(int(mission["vehicle_id"].split("-")[-1]))
        releases = vehicle.truth.of(TruthKind.RELEASE)
        assert len(releases) == 1
        assert releases[0].distance_to(community.drop_point) <= 5.0
        landings = vehicle.truth.of(TruthKind.LANDING)
        assert landings, "the drone never landed"
        assert distance_m(landings[-1].latlon, pad.location) <= 3.0
        # it never entered the no-fly zone
        zone = world.no_fly_zones[0]
        assert not any(world.no_fly_at(e.latlon, 40.0) is zone for e in vehicle.truth.events)
