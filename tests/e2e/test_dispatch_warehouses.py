"""Two warehouses: a request goes where a vehicle can serve it, and moves there if it was
first held at a warehouse no vehicle serves (Binjiang world: drones only at the north depot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.geo import distance_m
from fleet.worldfile import load_world
from sim.runner import SimFleet
from tests.e2e.scenarios import add_stock, post_request, wait_ready, wait_request
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually, free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = 20.0


async def test_request_moves_to_the_warehouse_whose_drones_can_fly_it(tmp_path: Path) -> None:
    world = load_world(WORLDS / "binjiang.geojson")
    north, south = world.warehouses[0], world.warehouses[1]
    drone_pad = world.pads_of(north.id)[0]
    # the community nearest the south depot: served from there if any vehicle were there
    target = min(world.communities, key=lambda c: distance_m(c.gate, south.location))
    assert distance_m(target.gate, south.location) < distance_m(target.gate, north.location)
    clock = AcceleratedClock(SPEED)
    port = free_udp_ports(1)
    settings = service_settings(
        tmp_path,
        world={"path": str(WORLDS / "binjiang.geojson")},
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{port}"]},
    )
    async with running_service(settings, clock) as svc:
        http = svc.http
        for wh in (north.id, south.id):
            await add_stock(http, "medicine", 100, warehouse=wh)
        req = await post_request(
            http,
            {
                "community_id": target.id,
                "priority": "urgent_medical",
                "items": [{"sku_id": "medicine", "quantity": 5}],
            },
        )

        async def held_at_south() -> bool:
            r = (await http.get(f"/v1/requests/{req['id']}")).json()
            return r["warehouse_id"] == south.id and r["items"][0]["allocated"] == 5

        # no vehicle anywhere yet: the nearest warehouse with stock holds it
        await eventually(held_at_south, timeout=20, message="allocated at the south depot")
        async with SimFleet(1, world=world, clock=clock, first_port=port, homes=None) as sim:
            assert sim[0].config.home.lat == pytest.approx(drone_pad.location.lat)
            await wait_ready(http, 1, timeout=30)
            done = await wait_request(http, req["id"], timeout=1800 / SPEED + 60)
        assert done["state"] == "delivered", done["events"]
        assert done["warehouse_id"] == north.id
        assert any(
            e["kind"] == "decision" and f"instead of {south.id}" in e["reason"]
            for e in done["events"]
        )
        stock = {
            (s["sku_id"]): s for s in (await http.get(f"/v1/warehouses/{south.id}/stock")).json()
        }
        assert stock["medicine"]["reserved"] == 0  # nothing left held at the south depot
        assert stock["medicine"]["on_hand"] == 100
