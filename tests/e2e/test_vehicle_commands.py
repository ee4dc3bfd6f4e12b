"""End to end: operators' commands to sim drones over real MAVLink, through the HTTP API.

The flight scenarios (:func:`tests.e2e.scenarios.hold_then_resume`,
:func:`~tests.e2e.scenarios.stop_in_flight`) are shared with the SITL suite
(``tests/sitl/test_vehicle_commands.py``), which flies them against real PX4; here the
simulator's ground truth is checked as well, and the cases only a simulator can stage: a drone
that refuses (no GPS), one that never answers, and the API's refusals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fleet.worldfile import load_world
from sim.truth import TruthKind
from tests.e2e.backends import sim_drones
from tests.e2e.scenarios import (
    HELD_DELIVERY,
    OPERATOR,
    SPEED,
    hold_then_resume,
    out_of_service_in_flight,
    post_command,
    stop_in_flight,
    wait_command,
    wait_ready,
)
from tests.service import WORLDS, running_service
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_hold_then_resume_during_a_delivery(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        settings = drones.settings(tmp_path, **HELD_DELIVERY)
        async with running_service(settings, drones.clock) as svc:
            await hold_then_resume(svc, drones, world.community("C02"))
        assert drones.sim is not None
        [release] = drones.sim[0].truth.of(TruthKind.RELEASE)
        assert release.distance_to(world.community("C02").drop_point) <= 5.0


@pytest.mark.parametrize("command", ["return", "land"])
async def test_return_or_land_ends_the_mission_as_a_cancel(tmp_path: Path, command: str) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(1, world, SPEED) as drones:
        async with running_service(drones.settings(tmp_path), drones.clock) as svc:
            await stop_in_flight(svc, drones, world.community("C04"), command)
        assert drones.sim is not None
        assert not drones.sim[0].truth.of(TruthKind.RELEASE), "the load never left the drone"


async def test_refusals_and_silence(tmp_path: Path) -> None:
    """A drone without GPS refuses Hold (failed, in its words); a drone that answers nothing
    times out; the API refuses what cannot go: a van's command to a drone (422 on ``command``),
    a resume without a mission (409), a fleet-wide command without its confirmation (422 on
    ``confirm``, saying what to send) or with another count, and a viewer (403)."""
    world = load_world(WORLDS / "shatou.geojson")
    async with sim_drones(2, world, SPEED) as drones:
        settings = drones.settings(tmp_path, commands={"state_timeout_s": 20.0})
        async with running_service(settings, drones.clock) as svc:
            http = svc.http
            ops = await svc.client(OPERATOR, "operator")
            await wait_ready(http, 2, drones.ready_timeout)
            assert drones.sim is not None
            a, b = drones.vehicle_id(0), drones.vehicle_id(1)

            r = await post_command(ops, a, "pause", "test", expect=422)
            assert r["field"] == "command" and "drone" in r["detail"], r
            r = await post_command(ops, a, "resume", "test", expect=409)
            assert "no mission to resume" in r["detail"], r
            r = await post_command(ops, a, "hold", "   ", expect=422)
            assert r["field"] == "reason", r
            r = await post_command(ops, "drone-404", "hold", "test", expect=404)
            viewer = await svc.client("viewer-1", "viewer")
            r = await post_command(viewer, a, "hold", "test", expect=403)
            staff = await svc.client("staff-1", "community_staff", ["C01"])
            assert (await staff.get(f"/v1/vehicles/{a}/commands")).status_code == 403
            assert (await viewer.get(f"/v1/vehicles/{a}/commands")).status_code == 200

            # fleet-wide: land reaches drones in the air (none now), resume drones on a mission
            for body in ({"command": "hold", "reason": "storm"},):
                r = await ops.post("/v1/commands", json=body)
                assert r.status_code == 422, r.text
                problem = r.json()
                assert problem["field"] == "confirm" and problem["expected"] == "ALL 0 VEHICLES"
            r = await ops.post(
                "/v1/commands",
                json={"command": "hold", "reason": "storm", "confirm": "ALL 0 VEHICLES"},
            )
            assert r.status_code == 409, r.text

            # refused in the vehicle's words
            drones.sim[0].set_gps_lost(True)
            await _eventually_not_ready(http, a)
            rec = await post_command(ops, a, "return", "come home")
            rec = await wait_command(http, rec["id"], 30)
            assert rec["state"] == "failed", rec
            assert rec["vehicle_result"] == "TEMPORARILY_REJECTED", rec
            assert "is currently not possible" in rec["vehicle_words"], rec
            assert rec["outcome"].startswith("refused by the vehicle"), rec
            assert rec["acknowledged_at"] is None and rec["ended_at"] is not None

            # never answered
            drones.sim[1].set_unresponsive(True)
            rec = await post_command(ops, b, "hold", "test silence")
            rec = await wait_command(http, rec["id"], 60)
            assert rec["state"] == "timed_out", rec
            assert rec["outcome"].startswith("no answer"), rec
            assert rec["acknowledged_at"] is None and rec["sent_at"] is not None
            audit = (await http.get("/v1/audit", params={"actor": OPERATOR})).json()
            assert any(line["action"] == "vehicle.command" for line in audit), audit


async def _eventually_not_ready(http: httpx.AsyncClient, vehicle_id: str) -> None:
    async def lost() -> bool:
        v = (await http.get(f"/v1/vehicles/{vehicle_id}")).json()
        return not v["ready_for_mission"]

    await eventually(lost, timeout=30, message="the drone knows it has no GPS")


async def test_a_drone_taken_out_of_service_in_flight_comes_home_and_another_delivers(
    tmp_path: Path,
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with (
        sim_drones(2, world, SPEED) as drones,
        running_service(drones.settings(tmp_path), drones.clock) as svc,
    ):
        viewer = await svc.client("ops-viewer", "viewer")
        r = await viewer.put(
            "/v1/vehicles/drone-1/service", json={"in_service": False, "reason": "x"}
        )
        assert r.status_code == 403
        r = await svc.http.put(
            "/v1/vehicles/drone-9/service", json={"in_service": False, "reason": "x"}
        )
        assert r.status_code == 404
        await out_of_service_in_flight(svc, drones, world.community("C02"))
