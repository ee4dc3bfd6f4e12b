"""The example worlds load cleanly and have what the service and the simulators rely on."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest

from fleet.geo import LatLon, distance_m
from fleet.roads import RoadNetwork, Weight, gate_key
from fleet.world import World
from fleet.worldfile import load_world, parse_world
from tests.unit.world.builders import minimal

WORLDS = Path(__file__).resolve().parents[3] / "examples" / "worlds"
EXAMPLES = sorted(p.name for p in WORLDS.glob("*.geojson"))


@pytest.fixture(scope="module", params=EXAMPLES)
def world(request: pytest.FixtureRequest) -> World:
    return load_world(WORLDS / request.param)


@pytest.fixture(scope="module")
def shatou() -> World:
    return load_world(WORLDS / "shatou.geojson")


@pytest.fixture(scope="module")
def binjiang() -> World:
    return load_world(WORLDS / "binjiang.geojson")


def test_there_are_two_different_examples() -> None:
    assert {"shatou.geojson", "binjiang.geojson"} <= set(EXAMPLES)


def test_every_example_is_coherent(world: World) -> None:
    assert world.warehouses and world.communities and world.roads
    ids = [o.id for g in (world.warehouses, world.pads, world.communities, world.roads)
           for o in g]  # fmt: skip
    assert len(ids) == len(set(ids))
    for c in world.communities:
        assert c.population > 0
        assert 0 <= c.vulnerable_households <= c.population
        assert c.name and c.name_zh
        assert world.community_at(c.drop_point) is c
        assert world.no_fly_at(c.drop_point) is None
        assert world.inside_area(c.gate)
        # realistic residential compounds: 1 to 15 hectares
        assert 10_000 <= c.area_m2 <= 150_000, (c.id, c.area_m2)
    for p in world.pads:
        assert world.no_fly_at(p.location) is None
        assert world.inside_area(p.location)
    for a, b in itertools.combinations(world.pads, 2):
        assert distance_m(a.location, b.location) >= 3.0
    for w in world.warehouses:
        assert w.pad_ids == tuple(p.id for p in world.pads_of(w.id))


def test_every_gate_is_reachable_from_every_dock_and_back(world: World) -> None:
    net = world.road_network
    for w in world.warehouses:
        dock = world.dock_node(w.id)
        gates = [world.gate_node(c.id) for c in world.communities]
        costs = net.matrix([dock, *gates], Weight.TIME, max_speed_kmh=30)
        assert all(math.isfinite(x) for row in costs for x in row)


def test_road_distances_are_sane(world: World) -> None:
    """Every shortest road route is at least the straight line and not absurdly longer."""
    net = world.road_network
    for w in world.warehouses:
        dock = world.dock_node(w.id)
        for c in world.communities:
            gate = world.gate_node(c.id)
            route = net.shortest_path(dock, gate, Weight.DISTANCE)
            straight = math.dist(dock.xy, gate.xy)
            assert straight <= route.length_m + 1e-6
            # a street grid: at most about twice the crow-fly distance, plus a block
            assert route.length_m <= 2.0 * straight + 600, (w.id, c.id)
            assert route.nodes[0] == dock and route.nodes[-1] == gate


def test_all_pairs_never_shorter_than_straight_line(world: World) -> None:
    net = world.road_network
    for s in net.nodes:
        costs = net.costs_from(s, Weight.DISTANCE)
        for t in net.nodes:
            if math.isfinite(costs[t.index]):
                assert costs[t.index] + 1e-6 >= math.dist(s.xy, t.xy)


def test_loader_network_equals_a_fresh_build(world: World) -> None:
    fresh = dataclasses.replace(world)  # a World without the loader's cached network
    net = fresh.road_network
    assert net is not world.road_network
    assert [n.id for n in net.nodes] == [n.id for n in world.road_network.nodes]
    assert len(net.edges) == len(world.road_network.edges)
    assert set(net.stops) == set(world.road_network.stops)


def test_local_frame_origin_is_inside_the_area(world: World) -> None:
    origin = LatLon(world.frame.origin_lat, world.frame.origin_lon)
    assert world.xy(origin) == (0.0, 0.0)
    assert world.inside_area(origin)


def test_shatou_matches_the_issue(shatou: World) -> None:
    assert len(shatou.warehouses) == 1
    assert len(shatou.communities) == 12
    w = shatou.warehouses[0]
    assert len(w.pad_ids) >= 6
    assert len(shatou.no_fly_zones) == 1
    # Futian, Shenzhen, north of the Shenzhen River
    lats = [p[0] for p in shatou.boundary]
    lons = [p[1] for p in shatou.boundary]
    assert min(lats) > 22.51 and max(lats) < 22.54
    assert min(lons) > 114.025 and max(lons) < 114.055
    # populations of a few thousand each
    assert all(1_000 <= c.population <= 10_000 for c in shatou.communities)
    # a street grid of several kilometres with one-way lanes
    assert shatou.road_network.total_length_m > 5_000
    assert any(r.oneway for r in shatou.roads)


def test_shatou_has_a_leg_through_its_no_fly_zone(shatou: World) -> None:
    """The drone planner must route around the substation for some communities."""
    zone = shatou.no_fly_zones[0]
    crossing = set()
    for pad in shatou.pads_of("W1"):
        for c in shatou.communities:
            if zone in shatou.leg_conflicts(pad.location, c.drop_point, alt_m=60):
                crossing.add(c.id)
    assert crossing, "no warehouse-to-community leg crosses the no-fly zone"
    assert len(crossing) < len(shatou.communities)


def test_binjiang_differs(binjiang: World) -> None:
    assert len(binjiang.warehouses) == 2
    assert len(binjiang.communities) == 8
    assert binjiang.map_id != "shatou"
    assert binjiang.max_altitude_m == 100
    zone = binjiang.no_fly_zones[0]
    assert zone.ceiling_m == 80
    # the crane zone blocks a leg at 50 m and not above its ceiling
    pad = binjiang.pad(binjiang.warehouse("WN").pad_ids[0])
    drop = binjiang.community("Y05").drop_point
    assert binjiang.leg_conflicts(pad.location, drop, alt_m=50) == [zone]
    assert binjiang.leg_conflicts(pad.location, drop, alt_m=90) == []


def test_binjiang_flyover_has_no_junction_where_it_crosses(binjiang: World) -> None:
    net = binjiang.road_network
    flyover = [e for e in net.edges if e.road_id == "F1"]
    # it lands on Riverside Road and Changyang Road only: one piece, both directions
    assert len(flyover) == 2
    ends = {net.nodes[flyover[0].start].id, net.nodes[flyover[0].end].id}
    for e in net.edges:
        if e.road_id in {"A2", "A3"}:
            assert not ({net.nodes[e.start].id, net.nodes[e.end].id} & ends)


def test_gates_and_docks_attach_to_ground_roads(world: World) -> None:
    layers = {r.id: r.layer for r in world.roads}
    for stop in world.road_network.stops.values():
        assert layers[stop.road_id] == 0
        assert stop.offset_m <= 30.0


def test_minimal_world_reads_every_field() -> None:
    w = parse_world(minimal(), "minimal.geojson")
    assert w.name == "Minimal" and w.map_id == "minimal" and w.source == "minimal.geojson"
    assert w.max_altitude_m == 120.0
    c1 = w.community("C1")
    assert (c1.name, c1.name_zh, c1.population, c1.vulnerable_households) == (
        "North Garden", "北苑", 3000, 40
    )  # fmt: skip
    assert c1.area_m2 == pytest.approx(200 * 160, rel=1e-4)
    assert c1.boundary[0] == c1.boundary[-1]
    assert w.xy(c1.gate) == pytest.approx((150, 8), abs=0.01)
    assert w.pad("P1").ground_alt_m == 5.0 and w.pad("P1").warehouse_id == "W1"
    assert w.warehouse("W1").pad_ids == ("P1", "P2")
    assert w.no_fly_zones[0].ceiling_m is None
    r1 = next(r for r in w.roads if r.id == "R1")
    assert (r1.speed_limit_kmh, r1.oneway, r1.layer) == (40.0, False, 0)
    r2 = next(r for r in w.roads if r.id == "R2")
    assert r2.speed_limit_kmh == 30.0  # the documented default
    # both gates face each other across Main Road: one stop node serves both
    assert w.gate_node("C1") == w.gate_node("C2")
    assert w.gate_node("C1").stops == (gate_key("C1"), gate_key("C2"))


def test_origin_defaults_to_the_area_centroid() -> None:
    data = minimal()
    del data["properties"]["origin"]
    w = parse_world(data)
    assert w.xy(LatLon(w.frame.origin_lat, w.frame.origin_lon)) == (0.0, 0.0)
    assert w.area.centroid.distance(type(w.area.centroid)(0, 0)) < 0.01


def test_network_built_from_world_matches_build(shatou: World) -> None:
    net = RoadNetwork.from_world(shatou)
    assert len(net.nodes) == len(shatou.road_network.nodes)
