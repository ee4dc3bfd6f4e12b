"""Faults injected into sim drones in flight (issue 13, ``docs/safety.md``), each with its end
state asserted within a deadline, as PX4's own SITL tests do: where the vehicle is (the
simulator's ground truth), what the service recorded (over HTTP), and what work was dispatched
again. The vehicle's failsafes are the ones the service set before take-off (NAV_DLL_ACT 2,
COM_LOW_BAT_ACT 3, GF_ACTION 3); nothing is preset on the sim drones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.drone import DroneControl
from fleet.geo import LatLon, distance_m
from fleet.worldfile import load_world
from sim.drone.vehicle import SimVehicle
from sim.truth import TruthKind
from tests.e2e.backends import Drones, sim_drones
from tests.e2e.scenarios import (
    SPEED,
    add_stock,
    gps_lost_in_flight,
    home_by_its_own_failsafe,
    post_request,
    service_lost_in_flight,
    wait_mission,
    wait_ready,
    wait_request,
)
from tests.service import WORLDS, RunningService, running_service
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COMMUNITY = "C05"


@dataclass
class Flight:
    svc: RunningService
    drones: Drones
    request_id: str
    mission: dict[str, Any]
    vehicle: SimVehicle


@asynccontextmanager
async def flying(tmp_path: Path, count: int, **settings: Any) -> AsyncIterator[Flight]:
    """``count`` sim drones, the service, and a delivery to C05 cruising (phase ``go_to``)."""
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(count, world, SPEED) as drones:
        assert drones.sim is not None
        async with running_service(drones.settings(tmp_path, **settings), drones.clock) as svc:
            http = svc.http
            await add_stock(http, "medicine", 50)
            await wait_ready(http, count, drones.ready_timeout)
            req = await post_request(
                http,
                {
                    "community_id": COMMUNITY,
                    "priority": "urgent_medical",
                    "items": [{"sku_id": "medicine", "quantity": 4}],
                },
            )

            async def cruising() -> dict[str, Any] | None:
                r = (await http.get(f"/v1/requests/{req['id']}")).json()
                for mid in r["missions"]:
                    m: dict[str, Any] = (await http.get(f"/v1/missions/{mid}")).json()
                    if m["phase"] == "go_to":
                        return m
                return None

            m = await eventually(cruising, timeout=300 / SPEED + 30, message="on its way")
            sysid = int(m["vehicle_id"].split("-")[-1])
            yield Flight(svc, drones, req["id"], m, drones.sim.by_sysid(sysid))


async def mission(f: Flight, mission_id: str | None = None) -> dict[str, Any]:
    r = await f.svc.http.get(f"/v1/missions/{mission_id or f.mission['id']}")
    out: dict[str, Any] = r.json()
    return out


async def ended(f: Flight, within_s: float) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        m = await mission(f)
        return m if m["state"] in {"completed", "failed", "cancelled"} else None

    result: dict[str, Any] = await eventually(
        done, timeout=within_s / SPEED + 20, message="the mission ends"
    )
    return result


def on_pad(v: SimVehicle, world_pad: LatLon, within_m: float = 3.0) -> bool:
    lat, lon = v.ap.latlon()
    return (
        v.ap.kin.on_ground
        and not v.ap.armed
        and distance_m(LatLon(lat, lon), world_pad) <= within_m
    )


def alerts(m: dict[str, Any]) -> list[str]:
    return [e["reason"] for e in m["events"] if e["kind"] == "safety" and e["data"].get("alert")]


async def redelivered(f: Flight, within_s: float) -> dict[str, Any]:
    """The request ends delivered by a second mission."""
    req = await wait_request(f.svc.http, f.request_id, within_s / SPEED + 30)
    assert req["state"] == "delivered", req["events"]
    assert len(req["missions"]) == 2 and f.mission["id"] in req["missions"], req["missions"]
    [other] = [mid for mid in req["missions"] if mid != f.mission["id"]]
    second = await wait_mission(f.svc.http, other, 900 / SPEED + 30)
    assert second["state"] == "completed", second["reason"]
    return second


async def test_link_cut_the_drone_returns_by_itself_and_the_work_waits_until_it_is_down(
    tmp_path: Path,
) -> None:
    async with flying(tmp_path, 1) as f:
        home = f.vehicle.ap.home
        assert home is not None
        pad = LatLon(home.lat, home.lon)
        f.vehicle.set_link_down(True)
        # within COM_DL_LOSS_T (10 s) + COM_FAIL_ACT_T (5 s) + the way home: RTL and landed
        await eventually(
            lambda: on_pad(f.vehicle, pad), timeout=600 / SPEED + 20, message="home by itself"
        )
        assert any(
            "data link lost -> rtl" in e.detail for e in f.vehicle.truth.of(TruthKind.FAILSAFE)
        )
        assert not f.vehicle.truth.of(TruthKind.RELEASE)
        m = await mission(f)
        assert m["state"] == "underway", "its work is not given away while it is unheard"
        assert any("link lost" in a for a in alerts(m))
        f.vehicle.set_link_down(False)
        m = await ended(f, 120)
        assert m["state"] == "failed"
        assert "without releasing the payload" in m["reason"], m["reason"]
        await redelivered(f, 1800)


async def test_battery_sag_recalls_the_drone_and_another_sortie_delivers(tmp_path: Path) -> None:
    async with flying(tmp_path, 2) as f:
        f.vehicle.set_battery_drain(25.0)  # a failing cell: 25 times the power
        m = await ended(f, 900)
        assert m["state"] == "failed"
        assert "recalled: battery" in m["reason"], m["reason"]
        assert any("the rest of the sortie needs" in a for a in alerts(m))
        # recalled by the service before the vehicle's own battery failsafe acted, if it did
        recalled = [e for e in f.vehicle.truth.of(TruthKind.MODE) if e.detail == "rtl"]
        own = [e for e in f.vehicle.truth.of(TruthKind.FAILSAFE) if "battery" in e.detail]
        assert recalled and all(e.t > recalled[0].t for e in own)
        assert f.vehicle.ap.kin.on_ground and not f.vehicle.ap.armed
        assert not f.vehicle.truth.of(TruthKind.RELEASE)
        second = await redelivered(f, 1800)
        assert second["vehicle_id"] != f.mission["vehicle_id"], "the sagging drone rests"


async def test_gps_loss_lands_the_drone_and_another_sortie_delivers(tmp_path: Path) -> None:
    # the body PX4 SITL flies too (tests/sitl/test_flight_safety.py), plus the sim's ground truth
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(2, world, SPEED) as drones:
        assert drones.sim is not None
        fleet = drones.sim
        lost: list[SimVehicle] = []

        async def lose_gps(vehicle_id: str, _drone: DroneControl) -> None:
            v = fleet.by_sysid(int(vehicle_id.split("-")[-1]))
            v.set_gps_lost(True)
            lost.append(v)

        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            await gps_lost_in_flight(svc, drones, world.community(COMMUNITY), lose_gps)
        [v] = lost
        assert v.ap.kin.on_ground and not v.ap.armed  # landed where it was
        assert any("no global position -> land" in e.detail for e in v.truth.of(TruthKind.FAILSAFE))
        assert not v.truth.of(TruthKind.RELEASE)


async def test_a_wind_gust_is_ridden_out_and_the_delivery_completes(tmp_path: Path) -> None:
    async with flying(tmp_path, 1) as f:
        f.vehicle.set_wind(6.0, -3.0)
        await f.drones.clock.sleep(20.0)  # a 20 s gust
        f.vehicle.set_wind(0.0, 0.0)
        req = await wait_request(f.svc.http, f.request_id, 900 / SPEED + 30)
        assert req["state"] == "delivered", req["events"]
        m = await ended(f, 600)
        assert m["state"] == "completed", m["reason"]
        assert m["result"]["release_distance_m"] <= 5.0
        assert m["result"]["landing_distance_m"] <= 3.0


async def test_a_drone_that_stops_answering_is_not_dispatched_until_it_answers(
    tmp_path: Path,
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        assert drones.sim is not None
        v = drones.sim[0]
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            http = svc.http
            await add_stock(http, "medicine", 50)
            await wait_ready(http, 1, drones.ready_timeout)
            v.set_unresponsive(True)
            req = await post_request(
                http,
                {
                    "community_id": COMMUNITY,
                    "priority": "urgent_medical",
                    "items": [{"sku_id": "medicine", "quantity": 4}],
                },
            )

            async def refused() -> dict[str, Any] | None:
                r = (await http.get(f"/v1/requests/{req['id']}")).json()
                for mid in r["missions"]:
                    m: dict[str, Any] = (await http.get(f"/v1/missions/{mid}")).json()
                    if m["state"] == "failed":
                        return m
                return None

            m = await eventually(refused, timeout=120 / SPEED + 30, message="the drone is refused")
            assert m["reason"].startswith("not dispatched, the drone is not secured"), m["reason"]
            assert "did not answer" in m["reason"]
            assert not v.truth.of(TruthKind.ARMED), "never flown"
            v.set_unresponsive(False)
            done = await wait_request(http, req["id"], 1800 / SPEED + 30)
            assert done["state"] == "delivered", done["events"]
            assert len(done["missions"]) >= 2


async def test_the_ground_station_lost_in_flight_the_drone_comes_home_by_itself(
    tmp_path: Path,
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        assert drones.sim is not None
        settings = drones.settings(tmp_path)
        async with running_service(settings, drones.clock) as svc:
            request_id, mission_id = await service_lost_in_flight(
                svc, drones, world.community(COMMUNITY)
            )
        # silent longer than COM_DL_LOSS_T (10 s) and COM_FAIL_ACT_T (5 s): the fault's length
        await drones.clock.sleep(settings.safety.dl_loss_t_s + 10.0)
        async with running_service(settings, drones.clock) as svc:
            await home_by_its_own_failsafe(svc, drones, request_id, mission_id)
        assert any(
            "data link lost -> rtl" in e.detail for e in drones.sim[0].truth.of(TruthKind.FAILSAFE)
        )
