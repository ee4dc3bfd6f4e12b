"""End to end: the service and three sim drones over real UDP sockets, a delivery requested
through the HTTP API, flown in accelerated time, checked against the simulator's ground truth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.geo import distance_m
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually, free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "10"))
"""Time acceleration of the e2e runs (world seconds per real second)."""


async def test_delivery_requested_through_the_api_is_flown_and_delivered(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(3)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{first + i}" for i in range(3)]},
    )
    community = world.community("C05")  # its straight leg crosses the substation no-fly zone
    async with (
        SimFleet(3, world=world, clock=clock, first_port=first) as sim,
        running_service(settings, clock) as svc,
    ):
        http = svc.http
        r = await http.post("/v1/warehouses/W1/stock", json={"sku_id": "medicine", "quantity": 200})
        assert r.status_code == 201, r.text

        async def three_ready() -> bool:
            vs = (await http.get("/v1/vehicles")).json()
            return len(vs) == 3 and all(v["ready_to_arm"] and v["link"] == "online" for v in vs)

        await eventually(three_ready, timeout=30, message="three sim drones discovered and ready")

        r = await http.post(
            "/v1/requests",
            json={
                "community_id": community.id,
                "priority": "urgent_medical",
                "items": [{"sku_id": "medicine", "quantity": 12}],
            },
        )
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]

        async def finished() -> dict | None:
            req = (await http.get(f"/v1/requests/{request_id}")).json()
            return (
                req
                if req["state"] in {"delivered", "failed", "cancelled", "partially_delivered"}
                else None
            )

        req = await eventually(
            finished,
            timeout=1800 / SPEED + 60,
            interval=0.5,
            message="the request reaches a final state",
        )
        assert req["state"] == "delivered", req["events"]
        assert req["items"][0]["delivered"] == 12
        [mission_id] = req["missions"]

        async def mission_done() -> dict | None:
            m = (await http.get(f"/v1/missions/{mission_id}")).json()
            return m if m["state"] in {"completed", "failed", "cancelled", "interrupted"} else None

        mission = await eventually(
            mission_done, timeout=900 / SPEED + 60, interval=0.5, message="the mission ends"
        )
        assert mission["state"] == "completed", mission["reason"]
        states = [
            e["to_state"]
            for e in mission["events"]
            if e["kind"] == "state" and e["request_id"] is None
        ]
        assert states == ["planned", "authorized", "underway", "completed"]
        phases = [e["data"]["phase"] for e in mission["events"] if e["kind"] == "phase"]
        assert phases[:2] == ["preflight", "takeoff"]
        assert {"go_to", "drop_off", "return", "landing", "done"} <= set(phases)
        assert any(e["kind"] == "decision" and "chosen" in e["reason"] for e in mission["events"])

        # the service's own record of the release and the landing
        assert mission["result"]["release_distance_m"] <= 5.0
        pad = world.pad(mission["plan"]["pad_id"])
        assert mission["result"]["landing_distance_m"] <= 3.0

        # ground truth from the simulator, independent of telemetry
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

        # every unit is traceable: reserved, loaded, delivered for this request
        ledger = (
            await http.get("/v1/warehouses/W1/ledger", params={"request_id": request_id})
        ).json()
        assert [(m["kind"], m["quantity"]) for m in ledger] == [
            ("reserve", 12),
            ("load", 12),
            ("deliver", 12),
        ]
        stock = {s["sku_id"]: s for s in (await http.get("/v1/warehouses/W1/stock")).json()}
        assert stock["medicine"]["on_hand"] == 188
        assert stock["medicine"]["reserved"] == 0
