"""Vans in the Shatou world: a multi-stop trip along the road network, with drones in the same
sim, over the real Mosquitto."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.events import VehicleEventKind
from fleet.van import Drop, Pick, trip_from_routes
from fleet.vehicle import LinkState
from fleet.worldfile import load_world
from sim.runner import SimFleet
from tests.support import eventually, free_udp_ports
from tests.unit.vda5050.harness import bridge

pytestmark = [pytest.mark.mosquitto]

WORLD = Path(__file__).resolve().parents[2] / "examples" / "worlds" / "shatou.geojson"


async def test_van_serves_two_gates_along_the_roads_next_to_a_drone(
    mqtt_url: str, mqtt_prefix: str
) -> None:
    world = load_world(WORLD)
    net = world.road_network
    clock = AcceleratedClock(100.0)
    host_port = mqtt_url.removeprefix("mqtt://")
    url = f"vda5050+mqtt://{host_port}/streetfleet?prefix={mqtt_prefix}"
    async with (
        SimFleet(
            1,
            clock=clock,
            world=world,
            first_port=free_udp_ports(1),
            vans=2,
            mqtt_url=mqtt_url,
            van_topic_prefix=mqtt_prefix,
        ) as fleet,
        bridge(url, clock, {"world": world}) as b,
    ):
        assert len(fleet.vehicles) == 1 and fleet.vans is not None and len(fleet.vans) == 2
        await eventually(lambda: len(b.registry) == 2)
        entry = b.registry.get("van-VAN-01")
        await eventually(lambda: entry.status.link is LinkState.ONLINE)
        # the connection topic says ONLINE; the position comes with the van's first state
        await eventually(lambda: entry.status.position is not None, message="the van's state")
        dock = world.dock_node(world.warehouses[0].id)
        assert entry.status.position is not None
        assert math.dist(world.xy(entry.status.position.latlon), dock.xy) < 0.01
        c1, c2 = world.communities[0], world.communities[5]
        g1, g2 = world.gate_node(c1.id), world.gate_node(c2.id)
        routes = [
            net.shortest_path(dock, g1, max_speed_kmh=30),
            net.shortest_path(g1, g2, max_speed_kmh=30),
            net.shortest_path(g2, dock, max_speed_kmh=30),
        ]
        loads = [(f"T1-{c.id}", n, n * 6.5) for c, n in ((c1, 14), (c2, 9))]
        trip = trip_from_routes(
            "T1",
            routes,
            [
                [Pick(lid, n, kg, "masks") for lid, n, kg in loads],
                [Drop(*loads[0], "masks")],
                [Drop(*loads[1], "masks")],
                [],
            ],
        )
        assert trip.nodes[0].node_id == dock.id and trip.decision_node.node_id == dock.id
        van = entry.control
        await van.send_trip(trip)
        result = await van.wait_trip("T1", within=4 * 3600)
        assert result.ok and len(result.actions) == 4
        drops = [e for e in b.of(VehicleEventKind.PAYLOAD) if e.data["action"] == "drop"]
        assert [(e.data["node_id"], e.data["boxes"]) for e in drops] == [(g1.id, 14), (g2.id, 9)]
        sim_van = fleet.vans.by_serial("VAN-01")
        # it drove the roads' shapes, not straight lines between nodes
        driven = sim_van.agv.pose.odometer_m
        assert driven == pytest.approx(sum(r.length_m for r in routes), rel=0.01)
        assert math.dist((sim_van.agv.pose.x, sim_van.agv.pose.y), dock.xy) < 0.01
        assert entry.status.battery_fraction is not None and entry.status.battery_fraction < 1.0
        # the other van stayed at its dock
        assert fleet.vans.by_serial("VAN-02").agv.pose.odometer_m == 0.0
