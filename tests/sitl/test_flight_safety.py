"""Flight safety against real PX4 SITL (SIH quadrotors), opt-in (``docs/safety.md``): the
failsafe policy set and read back on PX4, three PX4 drones whose paths cross kept apart, a
battery sag through SIH's battery parameters recalled by the service, PX4's own geofence
stopping a flight, reported in PX4's words, the ground station lost (PX4 comes home by its own
failsafe), and a GPS loss (PX4 comes down, another drone delivers). The bodies are those of the
sim suite (:mod:`tests.e2e.scenarios`; ``tests/e2e/test_flight_safety.py``,
``tests/e2e/test_faults.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.drone import DroneControl
from fleet.worldfile import load_world
from tests.e2e.scenarios import (
    battery_sag_recall,
    fence_stops_the_flight,
    fly_crossing,
    gps_lost_in_flight,
    home_by_its_own_failsafe,
    secured_delivery,
    service_lost_in_flight,
)
from tests.e2e.separation import crossing_world
from tests.service import WORLDS, running_service
from tests.sitl.conftest import Fleet

pytestmark = [pytest.mark.sitl, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]


async def test_px4_holds_the_failsafe_policy_after_a_delivery(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        px4_fleet(1, world) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        m = await secured_delivery(svc, drones, world.community("C05"))
        print(
            f"px4 delivery: planned {m['plan']['duration_s']} s, energy "
            f"{m['plan']['energy_fraction']}; flown {m['started_at']} .. {m['ended_at']}"
        )


async def test_three_px4_drones_on_crossing_paths_keep_their_separation(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    world_path = crossing_world(tmp_path / "crossing.geojson", pads_per_warehouse=2)
    world = load_world(world_path)
    # instances 0 and 1 stand on W1's pads, instance 2 on W2's
    routes = [("W1", "N2"), ("W1", "N4"), ("W2", "S3")]
    async with px4_fleet(3, world) as drones:
        settings = drones.settings(tmp_path, world={"path": str(world_path)})
        async with running_service(settings, drones.clock) as svc:
            seen = await fly_crossing(svc, drones, routes)
    print(
        f"px4 crossing: closest approach {seen.approach}; {seen.delayed} delayed, "
        f"{seen.layered} on another layer"
    )


async def test_a_battery_sag_on_px4_is_recalled_by_the_service(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    # SIH's battery: full to empty in 300 s of flight instead of the model's 1714 s
    sag = {"SIM_BAT_DRAIN": 300.0, "SIM_BAT_MIN_PCT": 2.0}
    async with (
        px4_fleet(1, world, params=sag) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        m = await battery_sag_recall(svc, drones, world.community("C05"))
        print(f"px4 sag: {m['reason']}")


async def test_px4s_geofence_stops_a_flight_in_its_words(tmp_path: Path, px4_fleet: Fleet) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        px4_fleet(1, world) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        m = await fence_stops_the_flight(svc, drones, world.community("C05"))
        print(f"px4 fence: {m['reason']}")


async def test_the_ground_station_lost_px4_comes_home_by_its_own_failsafe(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with px4_fleet(1, world) as drones:
        settings = drones.settings(tmp_path)
        async with running_service(settings, drones.clock) as svc:
            request_id, mission_id = await service_lost_in_flight(
                svc, drones, world.community("C05")
            )
        # silent longer than COM_DL_LOSS_T (10 s) and COM_FAIL_ACT_T (5 s): the fault's length
        await drones.clock.sleep(settings.safety.dl_loss_t_s + 10.0)
        async with running_service(settings, drones.clock) as svc:
            m = await home_by_its_own_failsafe(svc, drones, request_id, mission_id)
        print(f"px4 lost link: {m['reason']}")


async def test_px4_that_loses_gps_comes_down_and_another_drone_delivers(
    tmp_path: Path, px4_fleet: Fleet
) -> None:
    # SIH's simulated GPS reports no fix below 4 satellites (sensor_gps_sim, SIM_GPS_USED, read
    # live): set over MAVLink in flight, as a failure injection. (This PX4's SIH handles no
    # VEHICLE_CMD_INJECT_FAILURE for GPS and models no wind: see docs/safety.md.)
    world = load_world(WORLDS / "shatou.geojson")

    async def lose_gps(_vehicle_id: str, drone: DroneControl) -> None:
        await drone.set_parameter("SIM_GPS_USED", 0)

    async with (
        px4_fleet(2, world) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        m = await gps_lost_in_flight(svc, drones, world.community("C05"), lose_gps)
        print(f"px4 gps loss: {m['reason']}")
