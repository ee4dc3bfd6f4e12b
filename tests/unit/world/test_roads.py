"""The road network: junctions, one-way roads, layers, stops, and shortest routes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.errors import NotFound, PlanningError
from fleet.geo import LatLon
from fleet.roads import RoadNetwork, RoadNode, Weight
from fleet.world import Road
from tests.unit.world.builders import FRAME, road


def build(*roads: Road, stops: dict[str, tuple[float, float]] | None = None) -> RoadNetwork:
    return RoadNetwork.build(list(roads), FRAME, stops or {})


def node_at(net: RoadNetwork, x: float, y: float) -> RoadNode:
    n = net.nearest_node((x, y))
    assert math.dist(n.xy, (x, y)) < 1.0, (n, x, y)
    return n


# --- junctions ---------------------------------------------------------------------------------


def test_crossing_roads_meet_where_they_cross() -> None:
    net = build(road("A", (-100, 0), (100, 0)), road("B", (0, -100), (0, 100)))
    centre = node_at(net, 0, 0)
    assert len(net.nodes) == 5
    assert len(net.out_edges(centre)) == 4 and len(net.in_edges(centre)) == 4
    assert net.shortest_path(node_at(net, -100, 0), node_at(net, 0, 100), "distance").length_m == (
        pytest.approx(200)
    )


def test_shared_vertex_is_a_junction() -> None:
    net = build(road("A", (-100, 0), (0, 0), (100, 0)), road("B", (0, 0), (0, 100)))
    assert len(node_at(net, 0, 0).xy) == 2
    assert len(net.nodes) == 4


def test_a_road_ending_just_short_of_another_joins_it() -> None:
    """Hand-drawn T junctions rarely meet exactly: within 1 m they are one junction."""
    net = build(road("A", (-100, 0), (100, 0)), road("B", (20, 0.6), (20, 100)))
    top = node_at(net, 20, 100)
    route = net.shortest_path(node_at(net, -100, 0), top, Weight.DISTANCE)
    assert route.length_m == pytest.approx(120 + 99.4, abs=1.0)


def test_a_road_ending_farther_away_stays_apart() -> None:
    net = build(road("A", (-100, 0), (100, 0)), road("B", (20, 3), (20, 100)))
    with pytest.raises(PlanningError, match="no road route"):
        net.shortest_path(node_at(net, -100, 0), node_at(net, 20, 100))


def test_roads_on_different_layers_cross_without_a_junction() -> None:
    ground = road("G", (-100, 0), (100, 0))
    flyover = road("F", (0, -100), (0, 100), layer=1)
    net = build(ground, flyover)
    assert len(net.nodes) == 4
    with pytest.raises(PlanningError):
        net.shortest_path(node_at(net, -100, 0), node_at(net, 0, 100))


def test_roads_on_different_layers_meet_at_a_shared_vertex() -> None:
    ramp_landing = road("G", (-100, 0), (0, 0), (100, 0))
    flyover = road("F", (0, 0), (0, 100), layer=1)
    net = build(ramp_landing, flyover)
    route = net.shortest_path(node_at(net, -100, 0), node_at(net, 0, 100), Weight.DISTANCE)
    assert route.length_m == pytest.approx(200)


def test_a_ramp_ending_on_a_flyover_joins_it() -> None:
    flyover = road("F", (-100, 0), (100, 0), layer=1)
    ramp = road("R", (30, 0.4), (30, -100))
    street = road("S", (0, -100), (0, 100))
    net = build(flyover, ramp, street)
    route = net.shortest_path(node_at(net, 30, -100), node_at(net, 100, 0), Weight.DISTANCE)
    assert [e.road_id for e in route.edges] == ["R", "F"]
    with pytest.raises(PlanningError):  # the street passes under the flyover
        net.shortest_path(node_at(net, 0, -100), node_at(net, 100, 0))


def test_edges_keep_the_polyline_between_junctions() -> None:
    net = build(road("A", (0, 0), (50, 50), (100, 0)))
    (fwd, back) = net.edges
    assert fwd.geometry == ((0, 0), (50, 50), (100, 0))
    assert back.geometry == fwd.geometry[::-1]
    assert fwd.length_m == pytest.approx(2 * math.hypot(50, 50))


# --- one-way -----------------------------------------------------------------------------------


def test_one_way_is_driven_in_drawing_direction_only() -> None:
    #   (0,100) <-- B (two-way) --> (100,100)
    #      |                            ^
    #   C (two-way)                 A one-way north
    #      |                            |
    #   (0,0) ----- D (two-way) ---- (100,0)
    net = build(
        road("A", (100, 0), (100, 100), oneway=True),
        road("B", (0, 100), (100, 100)),
        road("C", (0, 0), (0, 100)),
        road("D", (0, 0), (100, 0)),
    )
    sw, se, ne = node_at(net, 0, 0), node_at(net, 100, 0), node_at(net, 100, 100)
    assert net.shortest_path(se, ne, Weight.DISTANCE).length_m == pytest.approx(100)
    back = net.shortest_path(ne, se, Weight.DISTANCE)
    assert back.length_m == pytest.approx(300)
    assert [e.road_id for e in back.edges] == ["B", "C", "D"]
    assert sw.index in net.reaching(se)
    assert len([e for e in net.edges if e.road_id == "A"]) == 1


# --- stops -------------------------------------------------------------------------------------


def test_stops_split_the_nearest_road() -> None:
    net = build(
        road("A", (0, 0), (200, 0)),
        stops={"gate:C1": (60, 12), "dock:W1": (150, -5), "gate:far": (100, 40)},
    )
    gate = net.stop_node("gate:C1")
    assert gate.id == "gate:C1" and gate.xy == pytest.approx((60, 0))
    assert net.stops["gate:C1"].offset_m == pytest.approx(12)
    assert net.stops["gate:C1"].road_id == "A"
    assert net.unattached == {"gate:far": pytest.approx(40)}
    with pytest.raises(NotFound):
        net.stop_node("gate:far")
    route = net.shortest_path(gate, net.stop_node("dock:W1"), Weight.DISTANCE)
    assert route.length_m == pytest.approx(90)
    assert len(net.edges) == 6  # three pieces, both ways


def test_a_stop_next_to_a_junction_uses_the_junction() -> None:
    net = build(road("A", (-100, 0), (100, 0)), road("B", (0, -100), (0, 100)),
                stops={"gate:C1": (0.8, 0.9)})  # fmt: skip
    node = net.stop_node("gate:C1")
    assert node.id.startswith("J") and node.stops == ("gate:C1",)
    assert len(net.nodes) == 5


def test_stops_only_attach_to_ground_roads() -> None:
    net = build(
        road("G", (0, -20), (200, -20)),
        road("F", (0, 0), (200, 0), layer=1),
        stops={"gate:C1": (100, 2)},
    )
    assert net.stops["gate:C1"].road_id == "G"


# --- routes ------------------------------------------------------------------------------------


def test_time_and_distance_routes_differ_and_vehicle_speed_caps_time() -> None:
    # a short slow lane (1000 m at 20 km/h) against a fast detour (1400 m at 60 km/h)
    net = build(
        road("lane", (0, 0), (1000, 0), speed=20),
        road("up", (0, 0), (200, 490), speed=60),
        road("over", (200, 490), (800, 490), speed=60),
        road("down", (800, 490), (1000, 0), speed=60),
    )
    a, b = node_at(net, 0, 0), node_at(net, 1000, 0)
    assert [e.road_id for e in net.shortest_path(a, b, Weight.DISTANCE).edges] == ["lane"]
    fast = net.shortest_path(a, b, Weight.TIME)
    assert [e.road_id for e in fast.edges] == ["up", "over", "down"]
    assert fast.duration_s == pytest.approx(fast.length_m / (60 / 3.6))
    capped = net.shortest_path(a, b, Weight.TIME, max_speed_kmh=20)
    assert [e.road_id for e in capped.edges] == ["lane"]
    assert capped.duration_s == pytest.approx(180)


def test_route_to_itself_is_empty() -> None:
    net = build(road("A", (0, 0), (100, 0)))
    n = net.nodes[0]
    r = net.shortest_path(n, n)
    assert r.edges == () and r.length_m == 0 and r.nodes == (n,)
    assert r.polyline() == [n.xy]


def test_route_polyline_is_continuous() -> None:
    net = build(road("A", (0, 0), (100, 0), (100, 100)), road("B", (100, 100), (0, 100)))
    r = net.shortest_path(node_at(net, 0, 0), node_at(net, 0, 100))
    assert r.polyline() == [(0, 0), (100, 0), (100, 100), (0, 100)]


def test_lookups_by_id_index_and_position() -> None:
    net = build(road("A", (0, 0), (100, 0)))
    a = net.nodes[0]
    assert net.node(a.id) is a
    assert net.shortest_path(a.id, 1).length_m == pytest.approx(100)
    lat, lon = FRAME.to_latlon(98, 3)
    assert net.nearest_node(LatLon(lat, lon)).xy == pytest.approx((100, 0))
    with pytest.raises(NotFound):
        net.nearest_node((500, 500), max_distance_m=10)
    with pytest.raises(NotFound):
        net.node("nope")
    with pytest.raises(NotFound):
        net.shortest_path(a, 99)
    with pytest.raises(ValueError):
        net.shortest_path(a, 1, "fastest")


def test_edges_by_id_and_between_nodes() -> None:
    net = build(road("A", (0, 0), (100, 0)), road("B", (100, 0), (100, 100), oneway=True))
    a, b, c = node_at(net, 0, 0), node_at(net, 100, 0), node_at(net, 100, 100)
    e = net.edge_between(a, b)
    assert (e.start, e.end, e.road_id) == (a.index, b.index, "A")
    assert net.edge(e.id) is e
    assert net.edge_between(b.id, c.id).road_id == "B"
    with pytest.raises(NotFound):
        net.edge_between(c, b)  # one-way
    with pytest.raises(NotFound):
        net.edge_between(a, c)  # not adjacent
    with pytest.raises(NotFound):
        net.edge("E99")


def test_empty_network() -> None:
    net = build(stops={"gate:C1": (0, 0)})
    assert net.nodes == () and net.unattached == {"gate:C1": math.inf}
    with pytest.raises(NotFound):
        net.nearest_node((0, 0))


# --- properties on random networks -------------------------------------------------------------

coord = st.floats(min_value=-500, max_value=500, allow_nan=False).map(lambda v: round(v, 1))
segment = st.tuples(coord, coord, coord, coord).filter(
    lambda s: math.hypot(s[2] - s[0], s[3] - s[1]) > 5
)
roads_strategy = st.lists(
    st.tuples(segment, st.booleans(), st.sampled_from([20.0, 30.0, 50.0])),
    min_size=1,
    max_size=12,
)


Spec = tuple[tuple[float, float, float, float], bool, float]


def _network(specs: list[Spec], oneway_allowed: bool) -> RoadNetwork:
    roads = [
        road(f"R{i}", (x0, y0), (x1, y1), oneway=ow and oneway_allowed, speed=v)
        for i, ((x0, y0, x1, y1), ow, v) in enumerate(specs)
    ]
    return RoadNetwork.build(roads, FRAME)


@settings(max_examples=60, deadline=None)
@given(roads_strategy, st.booleans(), st.data())
def test_astar_agrees_with_dijkstra_and_never_beats_the_straight_line(
    specs: list[Spec], oneway_allowed: bool, data: st.DataObject
) -> None:
    net = _network(specs, oneway_allowed)
    n = len(net.nodes)
    s = data.draw(st.integers(0, n - 1))
    weight = data.draw(st.sampled_from(list(Weight)))
    cap = data.draw(st.sampled_from([None, 25.0]))
    dist = net.costs_from(s, weight, max_speed_kmh=cap)
    reach = net.reachable_from(s)
    for t in range(n):
        assert math.isfinite(dist[t]) == (t in reach)
        if t not in reach:
            with pytest.raises(PlanningError):
                net.shortest_path(s, t, weight, max_speed_kmh=cap)
            continue
        route = net.shortest_path(s, t, weight, max_speed_kmh=cap)
        cost = route.length_m if weight is Weight.DISTANCE else route.duration_s
        assert cost == pytest.approx(dist[t], rel=1e-9, abs=1e-9)
        assert route.length_m + 1e-6 >= math.dist(net.nodes[s].xy, net.nodes[t].xy)
        for e1, e2 in zip(route.edges, route.edges[1:], strict=False):
            assert e1.end == e2.start
        assert route.duration_s == pytest.approx(sum(e.travel_time_s(cap) for e in route.edges))


@settings(max_examples=40, deadline=None)
@given(roads_strategy, st.data())
def test_two_way_networks_are_symmetric_and_obey_the_triangle_inequality(
    specs: list[Spec], data: st.DataObject
) -> None:
    net = _network(specs, oneway_allowed=False)
    n = len(net.nodes)
    a, b, c = (data.draw(st.integers(0, n - 1)) for _ in range(3))
    m = net.matrix([a, b, c], Weight.DISTANCE)
    assert m[0][1] == pytest.approx(m[1][0])
    if math.isfinite(m[0][1]) and math.isfinite(m[1][2]):
        assert m[0][2] <= m[0][1] + m[1][2] + 1e-6
    for e in net.edges:
        assert e.length_m + 1e-6 >= math.dist(net.nodes[e.start].xy, net.nodes[e.end].xy)
        assert e.length_m > 0


@settings(max_examples=40, deadline=None)
@given(roads_strategy)
def test_pieces_add_up_to_the_roads(specs: list[Spec]) -> None:
    """Cutting roads at junctions loses no length (up to the 1 m snapping per junction)."""
    net = _network(specs, oneway_allowed=True)
    for i, ((x0, y0, x1, y1), ow, _v) in enumerate(specs):
        pieces = [e for e in net.edges if e.road_id == f"R{i}"]
        total = sum(e.length_m for e in pieces) / (1 if ow else 2)
        length = math.hypot(x1 - x0, y1 - y0)
        assert total == pytest.approx(length, abs=2.0 * (len(pieces) + 1))
