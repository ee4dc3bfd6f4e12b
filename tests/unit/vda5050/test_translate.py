"""Wire <-> domain translation, link URLs and the domain trip rules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from firmware_bridges.vda5050 import translate, wire
from firmware_bridges.vda5050.address import Vda5050Address
from fleet.errors import ConfigError, ValidationError
from fleet.geo import LatLon, LocalFrame
from fleet.van import (
    ActionStatus,
    Charge,
    Drop,
    FaultLevel,
    OperatingMode,
    Pick,
    TripEdge,
    TripNode,
    VanTrip,
)
from fleet.vehicle import FlightMode, MissionRunState, VehicleStatus
from sim.van.agv import VanAgv
from sim.van.model import Pose
from tests.unit.vda5050.orders import instant, order, pick, van

FRAME = LocalFrame(22.5265, 114.04)


def node(node_id: str, x: float, y: float, *actions: Pick | Drop | Charge) -> TripNode:
    lat, lon = FRAME.to_latlon(x, y)
    return TripNode(node_id, LatLon(lat, lon), tuple(actions), name=f"stop {node_id}")


def straight_trip(trip_id: str = "t1", base: int | None = None) -> VanTrip:
    nodes = (
        node("dock:W1", 0, 0, Pick("L1", 30, 210.0, "masks", action_id="a-pick")),
        node("J1", 100, 0),
        node("gate:C1", 100, 80, Drop("L1", 30, 210.0, "masks", action_id="a-drop")),
    )
    edges = (
        TripEdge("E1", "dock:W1", "J1", max_speed_mps=8.0, length_m=100.0),
        TripEdge("E2", "J1", "gate:C1", max_speed_mps=5.0),
    )
    return VanTrip(trip_id, nodes, edges, base_nodes=base)


# --- URLs --------------------------------------------------------------------------------------


def test_link_url_forms() -> None:
    one = Vda5050Address.parse("vda5050+mqtt://fleet:s3cret@broker.local:1884/acme/VAN-01")
    assert one.broker_url == "mqtt://fleet:s3cret@broker.local:1884"
    assert (one.manufacturer, one.serial_number) == ("acme", "VAN-01")
    assert one.display_url == "vda5050+mqtt://fleet@broker.local:1884/acme/VAN-01"
    assert one.subscriptions() == [
        ("uagv/v2/acme/VAN-01/state", 0),
        ("uagv/v2/acme/VAN-01/connection", 1),
        ("uagv/v2/acme/VAN-01/factsheet", 0),
        ("uagv/v2/acme/VAN-01/visualization", 0),
    ]
    assert Vda5050Address.parse("vda5050+mqtt://h/acme?visualization=0").subscriptions()[-1] == (
        "uagv/v2/acme/+/factsheet",
        0,
    )
    maker = Vda5050Address.parse("vda5050+mqtt://h/acme?prefix=site-a&visualization=1")
    assert maker.serial_number is None
    assert maker.subscriptions()[0] == ("site-a/uagv/v2/acme/+/state", 0)
    assert maker.subscriptions()[-1] == ("site-a/uagv/v2/acme/+/visualization", 0)
    assert maker.covers("acme", "X") and not maker.covers("other", "X")
    everyone = Vda5050Address.parse("vda5050+mqtts://h:8883/?ca=/etc/ca.pem&state_timeout=4")
    assert everyone.broker_url == "mqtts://h:8883?ca=/etc/ca.pem"
    assert everyone.state_timeout_s == 4.0
    assert everyone.subscriptions()[0] == ("uagv/v2/+/+/state", 0)
    assert everyone.split("uagv/v2/m/s/state") == ("m", "s", "state")
    local = Vda5050Address.parse("vda5050+mqtt:///acme/VAN-02?interface=agv")
    assert local.broker_url is None
    assert local.topic("acme", "VAN-02", "order") == "agv/v2/acme/VAN-02/order"


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://h/acme",
        "vda5050+mqtt://h/a/b/c",
        "vda5050+mqtt://h/+/VAN-1",
        "vda5050+mqtt://h/ac$me",
        "vda5050+mqtt://h/acme?state_timeout=soon",
        "vda5050+mqtt://h/acme?state_timeout=0",
        "vda5050+mqtt://h/acme?prefix=a/%23",
        "vda5050+mqtt://h:99999/acme",
    ],
)
def test_bad_link_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        Vda5050Address.parse(url)


# --- trips -------------------------------------------------------------------------------------


def test_trip_becomes_order_with_sequence_ids_positions_and_load_actions() -> None:
    head = {
        "header_id": 5,
        "timestamp": "2024-01-01T00:00:00.00Z",
        "version": "2.1.0",
        "manufacturer": "acme",
        "serial_number": "VAN-01",
    }
    o = translate.trip_to_order(straight_trip(base=2), head, FRAME, "shatou")
    assert (o.order_id, o.order_update_id) == ("t1", 0)
    assert [(n.node_id, n.sequence_id, n.released) for n in o.nodes] == [
        ("dock:W1", 0, True),
        ("J1", 2, True),
        ("gate:C1", 4, False),
    ]
    assert [(e.edge_id, e.sequence_id, e.released) for e in o.edges] == [
        ("E1", 1, True),
        ("E2", 3, False),
    ]
    pos = o.nodes[2].node_position
    assert pos is not None and pos.map_id == "shatou"
    assert (pos.x, pos.y) == pytest.approx((100.0, 80.0), abs=1e-3)
    assert o.edges[0].max_speed == 8.0 and o.edges[0].length == 100.0
    (p,) = o.nodes[0].actions
    assert (p.action_type, p.action_id, p.blocking_type) == (
        "pick",
        "a-pick",
        wire.BlockingType.HARD,
    )
    assert {x.key: x.value for x in p.action_parameters or ()} == {
        "loadId": "L1",
        "loadType": "BOX",
        "boxes": 30,
        "weight": 210.0,
        "sku": "masks",
        "stationType": "dock",
    }
    assert o.nodes[2].actions[0].param("stationType") == "gate"
    assert o.nodes[0].node_description == "stop dock:W1"
    upd = translate.trip_to_order(
        VanTrip(
            "t1", (node("J1", 100, 0), node("gate:C1", 100, 80)), (TripEdge("E2", "J1", "gate:C1"),)
        ),
        head,
        FRAME,
        "shatou",
        update_id=1,
        first_sequence_id=2,
    )
    assert [n.sequence_id for n in upd.nodes] == [2, 4] and upd.edges[0].sequence_id == 3
    charge = translate.action_to_wire(Charge(action_id="c"))
    assert charge.action_type == "startCharging"


def test_the_sim_van_accepts_the_translated_order() -> None:
    head = {
        "header_id": 1,
        "timestamp": "2024-01-01T00:00:00.00Z",
        "version": "2.1.0",
        "manufacturer": "acme",
        "serial_number": "VAN-01",
    }
    agv = VanAgv("acme", "VAN-01", "shatou", Pose(0, 0, 0))
    agv.receive_order(translate.trip_to_order(straight_trip(), head, FRAME, "shatou").to_json())
    assert agv.errors == [] and agv.order_id == "t1"


def test_domain_trip_rules() -> None:
    with pytest.raises(ValidationError):
        VanTrip("bad id!", (node("a", 0, 0),))
    with pytest.raises(ValidationError):
        VanTrip("t", (node("a", 0, 0), node("b", 1, 0)))  # no edge
    with pytest.raises(ValidationError):
        VanTrip("t", (node("a", 0, 0), node("b", 1, 0)), (TripEdge("e", "b", "a"),))
    with pytest.raises(ValidationError):
        VanTrip("t", (node("a", 0, 0),), base_nodes=2)
    with pytest.raises(ValidationError):
        Pick("L1", 0, 1.0)
    with pytest.raises(ValidationError):
        Drop("L/1", 3, 1.0)
    with pytest.raises(ValidationError):
        VanTrip(
            "t", (node("a", 0, 0, Pick("L", 1, 1, action_id="x"), Drop("L", 1, 1, action_id="x")),)
        )
    trip = straight_trip(base=2)
    assert trip.released == 2 and trip.decision_node.node_id == "J1" and trip.boxes == 30


# --- state -------------------------------------------------------------------------------------


def test_state_translates_into_van_state_and_vehicle_status() -> None:
    agv = van(x=100.0, y=50.0)
    agv.pose = Pose(100.0, 50.0, math.pi / 2)
    agv.receive_order(
        order(
            "o1", [(100, 50), (100, 150), (0, 150)], released=2, actions={0: [pick("L1", 12, 80.0)]}
        ).to_json()
    )
    agv.receive_instant_actions(instant("startPause", "p"))
    agv.tick(agv.spec.pick_duration(12) + 0.5)
    msg = agv.state_message(3, 1_700_000_000.0)
    picks = {"L1": Pick("L1", 12, 80.0, "gloves")}
    state = translate.state_to_domain(msg, picks, reported_at=1_700_000_000.0)
    assert (state.trip_id, state.trip_update, state.last_node_id) == ("o1", 0, "n100_50")
    assert state.remaining_nodes == ("n100_150", "n0_150") and state.released_remaining == 1
    assert state.paused and state.busy and not state.charging
    assert state.action("pick-L1") is not None
    assert state.action("pick-L1").status is ActionStatus.FINISHED  # type: ignore[union-attr]
    assert state.operating_mode is OperatingMode.AUTOMATIC
    assert state.loads is not None and state.loads[0].boxes == 12 and state.loads[0].sku == "gloves"
    assert state.boxes_on_board == 12
    assert state.map_pose == pytest.approx((100.0, 50.0, math.pi / 2), abs=1e-3)

    status = VehicleStatus()
    translate.apply_state(status, state, msg, FRAME, "test-map", trip_nodes=3)
    assert status.position is not None
    assert FRAME.to_xy(status.position.lat, status.position.lon) == pytest.approx(
        (100, 50), abs=1e-3
    )
    assert status.heading_deg is not None
    assert abs((status.heading_deg + 180) % 360 - 180) < 0.1  # theta pi/2 = north
    assert status.mode is FlightMode.HOLD
    assert status.mission.state is MissionRunState.PAUSED
    assert (status.mission.total, status.mission.current, status.mission.reached) == (3, 1, 0)
    assert status.battery_fraction == pytest.approx(agv.battery.soc, abs=1e-3)
    assert status.extra["van"] is state


def test_faults_and_headings() -> None:
    err = wire.Error(
        error_type="orderError",
        error_level=wire.ErrorLevel.WARNING,
        error_description="nope",
        error_references=[wire.ErrorReference(reference_key="orderId", reference_value="o1")],
    )
    f = translate.fault(err)
    assert f.level is FaultLevel.WARNING and f.reference("orderId") == "o1"
    assert str(f) == "orderError: nope"
    for heading in (0.0, 45.0, 90.0, 180.0, 270.0, 359.0):
        theta = translate.heading_to_theta(heading)
        assert -math.pi <= theta <= math.pi
        assert translate.theta_to_heading(theta) == pytest.approx(heading, abs=1e-9)
    assert translate.theta_to_heading(0.0) == 90.0  # map x axis points east


def test_capabilities_from_the_sim_factsheet() -> None:
    fs = van().factsheet_message(1, 0.0, 1.0, 0.5)
    caps = translate.capabilities(fs)
    assert caps.max_boxes == 150 and caps.max_load_kg == 1000.0
    assert caps.speed_max_mps == pytest.approx(30 / 3.6, abs=1e-3)
    assert {"pick", "drop", "startCharging"} <= caps.node_actions
    assert {"cancelOrder", "startPause", "stopPause", "factsheetRequest"} <= caps.instant_actions
    assert caps.state_interval_s == 1.0
    assert caps.pick_time_per_box_s == 8.0


def test_trip_from_road_routes() -> None:
    from fleet.van import trip_from_routes
    from fleet.worldfile import load_world

    world = load_world(Path(__file__).resolve().parents[3] / "examples/worlds/shatou.geojson")
    net = world.road_network
    dock = world.dock_node(world.warehouses[0].id)
    gate = world.gate_node(world.communities[2].id)
    out, back = net.shortest_path(dock, gate), net.shortest_path(gate, dock)
    trip = trip_from_routes(
        "T9",
        [out, back],
        [[Pick("L9", 5, 30.0)], [Drop("L9", 5, 30.0)], []],
        max_speed_mps=30 / 3.6,
        start_deviation_m=25.0,
    )
    assert [n.node_id for n in trip.nodes] == [n.id for n in out.nodes] + [
        n.id for n in back.nodes[1:]
    ]
    assert trip.nodes[0].allowed_deviation_m == 25.0 and trip.nodes[0].name == "dock:W1"
    gate_node = trip.nodes[len(out.nodes) - 1]
    assert gate_node.node_id == gate.id and isinstance(gate_node.actions[0], Drop)
    assert all(e.max_speed_mps is not None and e.max_speed_mps <= 30 / 3.6 for e in trip.edges)
    assert sum(e.length_m or 0 for e in trip.edges) == pytest.approx(
        out.length_m + back.length_m, abs=0.01
    )
    with pytest.raises(ValidationError):
        trip_from_routes("T9", [out, back], [[], []])
    with pytest.raises(ValidationError):
        trip_from_routes("T9", [out, out], [[], [], []])  # second route starts elsewhere


def test_zero_length_first_route_keeps_the_start_deviation() -> None:
    from fleet.van import trip_from_routes
    from fleet.worldfile import load_world

    world = load_world(Path(__file__).resolve().parents[3] / "examples/worlds/shatou.geojson")
    net = world.road_network
    dock = world.dock_node(world.warehouses[0].id)
    here = net.shortest_path(dock, dock)  # the van already stands at the stop
    trip = trip_from_routes(
        "T10", [here], [[Pick("L1", 2, 10.0)], [Drop("L1", 2, 10.0)]], start_deviation_m=15.0
    )
    assert len(trip.nodes) == 1
    assert trip.nodes[0].allowed_deviation_m == 15.0
    assert [type(a).__name__ for a in trip.nodes[0].actions] == ["Pick", "Drop"]
