"""Per-van protocol version, a van on a version the service does not speak, positions from state
or visualization (whichever is newer), loads a van reports under its own ids, and failures
explained by the error that names them: the link's receive path, without a broker.

The wire in both versions is checked against the official schemas in
``tests/conformance/test_vda5050_schemas.py``; a third-party 2.0.0 vehicle in
``tests/e2e/test_third_party_van.py``.
"""

from __future__ import annotations

import json

import pytest

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.handling import LoadHandling
from fleet.clock import ManualClock
from fleet.errors import CommandRejected
from fleet.events import Severity, VehicleEvent, VehicleEventKind
from fleet.settings import Vda5050Settings
from fleet.van import ActionStatus, Drop, Pick
from sim.van.agv import VanAgv
from sim.van.model import Pose
from tests.unit.vda5050.harness import FRAME, MAP_ID, trip_through
from tests.unit.vda5050.test_link_state import Msg, book_trip, drain, make_link


def test_speaks_maps_announced_versions_to_shapes() -> None:
    assert wire.speaks("2.0.0") == wire.speaks("2.0") == "2.0.0"
    assert wire.speaks("2.1.0") == wire.speaks("2.2.3") == "2.1.0"
    assert wire.speaks("1.1.0") is None and wire.speaks("3.0.0") is None
    assert wire.speaks("v2") is None and wire.speaks("") is None


def test_2_0_0_shape_of_orders_and_instant_actions_and_reading_it_back() -> None:
    trip = trip_through("t", [(0, 0), (10, 0)], {0: [Pick("L", 1, 2.0)]})
    node = trip.nodes[0]
    head = {
        "header_id": 1,
        "timestamp": wire.format_timestamp(0),
        "version": "2.1.0",
        "manufacturer": "m",
        "serial_number": "s",
    }
    order = wire.Order(
        **head,
        order_id="t",
        order_update_id=0,
        nodes=[
            wire.Node(
                node_id=node.node_id,
                sequence_id=0,
                released=True,
                actions=[wire.action("pick", "a1", wire.BlockingType.HARD, None, loadId="L")],
                node_position=wire.NodePosition(x=1, y=2, map_id="m", allowed_deviation_xy=3.0),
            )
        ],
        edges=[],
    )
    old = json.loads(wire.encode(order, "2.0.0"))
    assert old["version"] == "2.0.0"
    assert old["nodes"][0]["nodePosition"]["allowedDeviationXy"] == 3.0
    assert "allowedDeviationXY" not in old["nodes"][0]["nodePosition"]
    new = json.loads(wire.encode(order))
    assert new["nodes"][0]["nodePosition"]["allowedDeviationXY"] == 3.0
    back = wire.parse("order", wire.encode(order, "2.0.0"))
    assert isinstance(back, wire.Order)
    assert back.nodes[0].node_position is not None
    assert back.nodes[0].node_position.allowed_deviation_xy == 3.0

    ia = wire.InstantActions(
        **head, actions=[wire.action("cancelOrder", "c1", wire.BlockingType.NONE)]
    )
    data = json.loads(wire.encode(ia, "2.0.0"))
    assert data["actions"][0]["actionName"] == data["actions"][0]["actionType"] == "cancelOrder"
    # the 2.0 text's (and vda-5050-lib's) field name is read too
    legacy = {**json.loads(ia.to_json()), "version": "2.0.0"}
    legacy["instantActions"] = legacy.pop("actions")
    parsed = wire.parse("instantActions", json.dumps(legacy))
    assert isinstance(parsed, wire.InstantActions) and parsed.actions[0].action_id == "c1"
    # content 2.0.0 cannot carry is refused, not silently sent
    odd = wire.InstantActions(
        **head, actions=[wire.action("x", "x1", wire.BlockingType.NONE, None, obj={"a": 1})]
    )
    with pytest.raises(wire.WireError, match="object parameter"):
        wire.encode(odd, "2.0.0")


def test_a_van_on_another_major_version_is_refused_with_the_reason() -> None:
    clock = ManualClock()
    link, registry, bus = make_link(clock)
    agv = VanAgv("acme", "VAN-03", MAP_ID, Pose(0, 0, 0))
    state = json.loads(agv.state_message(1, clock.time()).to_json())
    state["version"] = "3.0.0"
    state["newFieldOfVersion3"] = {"x": 1}
    del state["driving"]  # not parseable as 2.x either
    with bus.subscribe() as sub:
        link._handle(Msg("VAN-03", "state", json.dumps(state).encode()))
        events = [e for e in drain(sub) if isinstance(e, VehicleEvent)]
    entry = registry.get("van-VAN-03")
    van = link.van("van-VAN-03")
    assert van.refused is not None and "3.0.0" in van.refused
    assert entry.status.not_ready and "speaks VDA 5050 3.0.0" in entry.status.not_ready[0]
    assert not entry.status.ready_for_mission
    assert entry.status.extra["van_capabilities"].unsupported == (van.refused,)
    assert link.stats.foreign_version == 1 and link.stats.invalid == 0
    texts = [e for e in events if e.kind is VehicleEventKind.STATUS_TEXT]
    assert texts and texts[0].severity is Severity.ERROR
    with pytest.raises(CommandRejected, match=r"3\.0\.0"):
        van._check_online()


def test_position_comes_from_state_or_visualization_whichever_is_newer() -> None:
    clock = ManualClock()
    link, registry, _ = make_link(clock)
    agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
    t0 = 1_700_000_000.0

    def state_at(t: float, x: float) -> Msg:
        agv.pose = Pose(x, 0, 0)
        return Msg("VAN-01", "state", agv.state_message(1, t).to_json())

    def vis_at(t: float, x: float) -> Msg:
        agv.pose = Pose(x, 0, 0)
        return Msg("VAN-01", "visualization", agv.visualization_message(1, t).to_json())

    entry = None

    def x_shown() -> float:
        assert entry is not None and entry.status.position is not None
        pos = entry.status.position
        return round(FRAME.to_xy(pos.lat, pos.lon)[0], 1)

    link._handle(state_at(t0, 0.0))
    entry = registry.get("van-VAN-01")
    link._handle(vis_at(t0 + 2, 10.0))
    assert x_shown() == 10.0
    link._handle(state_at(t0 + 1, 5.0))  # an older state: its position is not shown
    assert x_shown() == 10.0
    link._handle(vis_at(t0 + 1.5, 7.0))  # an older visualization neither
    assert x_shown() == 10.0
    link._handle(state_at(t0 + 3, 20.0))
    assert x_shown() == 20.0


def test_loads_under_the_vans_own_ids_and_failures_explained_by_their_error() -> None:
    clock = ManualClock()
    link, _, _ = make_link(clock)
    agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
    link._handle(Msg("VAN-01", "state", agv.state_message(1, clock.time()).to_json()))
    van = link.van("van-VAN-01")
    pick_a, pick_b = Pick("L-A", 4, 10.0), Pick("L-B", 4, 10.0)
    trip = trip_through("t", [(0, 0), (20, 0)], {0: [pick_a, pick_b], 1: [Drop("L-A", 4, 10.0)]})
    book_trip(van, trip)
    base = json.loads(agv.state_message(2, clock.time()).to_json())
    base.update(orderId="t", orderUpdateId=0)
    base["actionStates"] = [
        {"actionId": pick_a.action_id, "actionType": "pick", "actionStatus": "FINISHED"},
        {"actionId": pick_b.action_id, "actionType": "pick", "actionStatus": "FAILED"},
    ]
    base["loads"] = [{"loadId": "RFID_7f3a", "loadType": "EPAL", "weight": 12.5}]
    base["errors"] = [
        {
            "errorType": "orderActionError",
            "errorLevel": "WARNING",
            "errorDescription": "load already picked",
            "errorReferences": [
                {"referenceKey": "topic", "referenceValue": "order"},
                {"referenceKey": "actionId", "referenceValue": pick_b.action_id},
            ],
        }
    ]
    link._handle(Msg("VAN-01", "state", json.dumps(base).encode()))
    state = van.state
    assert state is not None and state.loads is not None
    [load] = state.loads
    assert (load.load_id, load.vehicle_load_id, load.boxes) == ("L-A", "RFID_7f3a", 4)
    failed = state.action(pick_b.action_id)
    assert failed is not None and failed.status is ActionStatus.FAILED
    assert failed.why == "orderActionError: load already picked"
    # the van drops the error from its next state: the explanation stays
    base["errors"] = []
    link._handle(Msg("VAN-01", "state", json.dumps(base).encode()))
    again = van.state.action(pick_b.action_id) if van.state else None
    assert again is not None and again.error == "orderActionError: load already picked"
    assert van.state is not None and van.state.loads is not None
    assert van.state.loads[0].load_id == "L-A"


def test_capabilities_follow_the_factsheet_and_the_settings() -> None:
    agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
    fs = agv.factsheet_message(1, 0.0, 1.0, 1.0)
    default = LoadHandling().capabilities(fs, "van-VAN-01", "2.1.0")
    assert default.max_boxes == 150 and default.max_loads is None and not default.unsupported
    pallets = LoadHandling(Vda5050Settings(load_type="EPAL")).capabilities(fs, "van-VAN-01")
    assert pallets.unsupported and "load type EPAL" in pallets.unsupported[0]
    none = LoadHandling(
        Vda5050Settings(vehicles={"van-X": {"max_boxes": 7, "max_loads": 2}})  # type: ignore[dict-item]
    ).capabilities(None, "van-X")
    assert (none.max_boxes, none.max_loads, none.max_load_kg, none.from_factsheet) == (
        7,
        2,
        100.0,
        False,
    )
    tight = LoadHandling(
        Vda5050Settings(sites={"C03": {"max_vehicle_length_m": 4.0}})  # type: ignore[dict-item]
    ).capabilities(fs, "van-VAN-01")
    assert tight.unfit_sites == ("C03",)
