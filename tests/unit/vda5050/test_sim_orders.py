"""The sim van accepts, rejects and executes orders as VDA 5050 2.1 figure 8 says."""

from __future__ import annotations

import itertools
import math

import pytest

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.wire import ActionStatus
from tests.unit.vda5050.orders import (
    MAP,
    drop,
    errors,
    instant,
    order,
    pick,
    run,
    run_until,
    status,
    van,
)

SQUARE = [(0.0, 0.0), (200.0, 0.0), (200.0, 150.0), (0.0, 150.0)]


def refs(err: wire.Error) -> dict[str, str]:
    return {r.reference_key: r.reference_value for r in err.error_references or ()}


def test_new_order_is_taken_and_first_node_counts_as_reached() -> None:
    agv = van()
    agv.receive_order(order("o1", SQUARE).to_json())
    assert agv.order_id == "o1"
    assert agv.order_update_id == 0
    assert agv.last_node_id == "n0_0"
    assert agv.last_node_sequence_id == 0
    assert [n.node_id for n in agv.node_states] == ["n200_0", "n200_150", "n0_150"]
    assert [e.sequence_id for e in agv.edge_states] == [1, 3, 5]
    assert agv.errors == []
    assert agv.dirty


def test_van_drives_the_order_and_reports_nodes_in_sequence() -> None:
    agv = van()
    agv.receive_order(order("o1", SQUARE).to_json())
    seen = []
    took = run_until(
        agv, lambda a: seen.append(a.last_node_id) or not a.node_states, limit=600, step=0.2
    )
    assert list(dict.fromkeys(seen)) == ["n0_0", "n200_0", "n200_150", "n0_150"]
    assert agv.pose.speed == 0.0
    assert math.dist((agv.pose.x, agv.pose.y), (0.0, 150.0)) < 0.01
    # 550 m at most 30 km/h, with two right-angle corners and a stop at the end
    assert 550 / (30 / 3.6) < took < 120
    assert agv.pose.odometer_m == pytest.approx(550.0, abs=0.5)


def test_speed_never_exceeds_van_or_road_limit_and_accelerates_smoothly() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (2000, 0)], max_speed=5.0).to_json())
    speeds = []
    while agv.node_states:
        agv.tick(0.1)
        speeds.append(agv.pose.speed)
    assert max(speeds) == pytest.approx(5.0, abs=1e-6)
    steps = [b - a for a, b in itertools.pairwise(speeds)]
    assert max(steps) <= agv.spec.acceleration_mps2 * 0.1 + 1e-9
    # braking is at most the service deceleration; the last step stops from creep speed
    assert min(steps[:-1]) >= -agv.spec.deceleration_mps2 * 0.1 - 1e-9
    assert steps[-1] >= -(agv.spec.min_speed_mps + agv.spec.deceleration_mps2 * 0.1)

    agv2 = van()
    agv2.receive_order(order("o2", [(0, 0), (2000, 0)]).to_json())
    top = 0.0
    while agv2.node_states:
        agv2.tick(0.1)
        top = max(top, agv2.pose.speed)
    assert top == pytest.approx(30 / 3.6, abs=1e-6)


def test_corner_is_taken_slowly_and_straight_node_at_speed() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (300, 0), (300, 300)]).to_json())
    run_until(agv, lambda a: a.last_node_id == "n300_0", step=0.05)
    assert agv.pose.speed <= agv.spec.corner_speed(math.pi / 2) + 0.05
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (300, 0), (600, 0)]).to_json())
    run_until(agv, lambda a: a.last_node_id == "n300_0", step=0.05)
    assert agv.pose.speed > 8.0


def test_pick_and_drop_take_per_stop_and_per_box_time_and_change_loads() -> None:
    agv = van()
    acts = {0: [pick("L1", 20, 150.0, sku="masks")], 1: [drop("L1", 20, 150.0)]}
    agv.receive_order(order("o1", [(0, 0), (100, 0)], actions=acts).to_json())
    assert status(agv, "pick-L1") is ActionStatus.RUNNING
    assert status(agv, "drop-L1") is ActionStatus.WAITING
    run(agv, agv.spec.pick_duration(20) - 1.0)
    assert status(agv, "pick-L1") is ActionStatus.RUNNING
    assert agv.pose.speed == 0.0  # HARD: no driving while loading
    run(agv, 1.5)
    assert status(agv, "pick-L1") is ActionStatus.FINISHED
    assert agv.cargo_boxes == 20 and agv.cargo_kg == 150.0
    state = agv.state_message(1, 0.0)
    assert [(ld.load_id, ld.weight) for ld in state.loads or []] == [("L1", 150.0)]
    run_until(agv, lambda a: a.actions["drop-L1"].status is ActionStatus.RUNNING)
    t = run_until(agv, lambda a: a.actions["drop-L1"].status is ActionStatus.FINISHED)
    assert t == pytest.approx(agv.spec.drop_duration(20), abs=0.6)
    assert agv.cargo == {}
    assert not agv.busy


def test_repeated_order_is_ignored_and_state_repeated() -> None:
    agv = van()
    o = order("o1", [(0, 0), (100, 0)], actions={0: [pick("L1", 5)]})
    agv.receive_order(o.to_json())
    run(agv, 10)
    agv.dirty = False
    again = o.model_copy(update={"header_id": o.header_id + 100})
    agv.receive_order(again.to_json())
    assert agv.ignored_messages == 1
    assert agv.dirty  # the echo goes out at once
    assert status(agv, "pick-L1") is ActionStatus.RUNNING  # not restarted
    assert agv.errors == []


def test_older_update_is_rejected_with_order_update_error() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (100, 0), (200, 0)], released=2).to_json())
    agv.receive_order(order("o1", [(100, 0), (200, 0)], update=1, first_seq=2).to_json())
    assert agv.order_update_id == 1
    stale = order("o1", [(100, 0), (200, 0)], update=0, first_seq=2)
    agv.receive_order(stale.to_json())
    (err,) = errors(agv, "orderUpdateError")
    assert err.error_level is wire.ErrorLevel.WARNING
    assert refs(err) == {
        "headerId": str(stale.header_id),
        "topic": "order",
        "orderId": "o1",
        "orderUpdateId": "0",
    }
    assert agv.order_update_id == 1  # the van goes on with what it has


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"headerId": 1}', "Field required"),
        (b"[]", "message"),
    ],
)
def test_malformed_order_is_rejected_with_validation_error(payload: bytes, why: str) -> None:
    agv = van()
    agv.receive_order(payload)
    (err,) = errors(agv, "validationError")
    assert why in (err.error_description or "")
    assert refs(err)["topic"] == "order"
    assert agv.order_id == ""


def test_structurally_broken_orders_are_validation_errors() -> None:
    agv = van()
    o = order("o1", SQUARE)
    cases = {
        "edges": o.model_copy(update={"edges": o.edges[:-1]}),
        "sequence": o.model_copy(
            update={"nodes": [o.nodes[0].model_copy(update={"sequence_id": 1}), *o.nodes[1:]]}
        ),
        "join": o.model_copy(
            update={"edges": [o.edges[0].model_copy(update={"end_node_id": "x"}), *o.edges[1:]]}
        ),
        "horizon": order("o1", SQUARE, released=2).model_copy(
            update={"edges": [e.model_copy(update={"released": True}) for e in o.edges]}
        ),
        "empty": o.model_copy(update={"nodes": [], "edges": []}),
    }
    for name, bad in cases.items():
        agv = van()
        agv.receive_order(bad.to_json())
        assert [e.error_type for e in agv.errors] == ["validationError"], name
        assert agv.order_id == "", name


def test_unsupported_fields_and_actions_are_order_errors_naming_them() -> None:
    o = order("o1", [(0, 0), (100, 0)])
    traj = wire.Trajectory(
        degree=1, knot_vector=[0, 0, 1, 1], control_points=[wire.ControlPoint(x=0, y=0)] * 2
    )
    lift = wire.action("lift", "a-lift", wire.BlockingType.HARD)
    cases = [
        (
            o.model_copy(update={"edges": [o.edges[0].model_copy(update={"trajectory": traj})]}),
            {"edgeId": o.edges[0].edge_id, "field": "trajectory"},
        ),
        (
            order("o1", [(0, 0), (100, 0)], actions={1: [lift]}),
            {"actionId": "a-lift", "actionType": "lift"},
        ),
        (order("o1", [(0, 0), (100, 0)], map_id="other-map"), {"mapId": "other-map"}),
        (
            order(
                "o1",
                [(0, 0)],
                actions={0: [wire.action("pick", "p", wire.BlockingType.HARD, boxes=3)]},
            ),
            {"parameter": "loadId"},
        ),
        (
            order(
                "o1",
                [(0, 0)],
                actions={
                    0: [wire.action("pick", "p", wire.BlockingType.NONE, loadId="L", boxes=3)]
                },
            ),
            {"field": "blockingType"},
        ),
    ]
    for bad, expected in cases:
        agv = van()
        agv.receive_order(bad.to_json())
        (err,) = agv.errors
        assert err.error_type == "orderError"
        got = refs(err)
        assert got["orderId"] == "o1"
        for k, v in expected.items():
            assert got[k] == v, (k, got)
        assert agv.order_id == ""


def test_capacity_in_boxes_and_kg_and_drops_of_unknown_loads() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0)], actions={0: [pick("L1", 151)]}).to_json())
    (err,) = errors(agv, "orderError")
    assert "151 boxes" in (err.error_description or "")
    agv = van()
    acts = {0: [pick("L1", 100, 600.0), pick("L2", 50, 500.0)]}
    agv.receive_order(order("o1", [(0, 0)], actions=acts).to_json())
    (err,) = errors(agv, "orderError")
    assert refs(err)["actionId"] == "pick-L2" and "kg" in (err.error_description or "")
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (50, 0)], actions={1: [drop("L9", 3)]}).to_json())
    (err,) = errors(agv, "orderError")
    assert refs(err)["loadId"] == "L9"
    # 150 boxes in two picks, unloaded along the way: fine
    agv = van()
    acts = {0: [pick("L1", 100), pick("L2", 50)], 1: [drop("L1", 100)], 2: [drop("L2", 50)]}
    agv.receive_order(order("o1", [(0, 0), (50, 0), (100, 0)], actions=acts).to_json())
    assert agv.errors == [] and agv.order_id == "o1"


def test_first_node_out_of_reach_is_no_route_error_unless_deviation_allows() -> None:
    agv = van(x=30.0)
    agv.receive_order(order("o1", [(0, 0), (100, 0)]).to_json())
    (err,) = agv.errors
    assert err.error_type == "noRouteError"
    assert refs(err)["nodeId"] == "n0_0"
    agv.receive_order(order("o2", [(0, 0), (100, 0)], deviation=40.0).to_json())
    assert agv.order_id == "o2"
    assert agv.errors == []  # accepting an order ends the earlier rejection warnings


def test_new_order_while_busy_must_stitch_at_the_decision_point() -> None:
    agv = van()
    agv.receive_order(order("o1", SQUARE, released=2).to_json())
    agv.receive_order(order("o2", [(0, 0), (50, 0)]).to_json())
    (err,) = agv.errors
    assert err.error_type == "orderUpdateError"
    assert agv.order_id == "o1"
    # a new order id that starts at the decision point is a stitching order
    agv.receive_order(
        order("o2", [(200, 0), (200, 150)], first_seq=2, node_ids=["n200_0", "x1"]).to_json()
    )
    assert agv.order_id == "o2" and agv.errors == []
    assert [n.node_id for n in agv.node_states] == ["n200_0", "x1"]


def test_van_stops_at_decision_point_and_goes_on_when_base_is_extended() -> None:
    agv = van()
    o = order("o1", SQUARE, released=2, actions={2: [pick("H", 1, aid="horizon-pick")]})
    agv.receive_order(o.to_json())
    assert status(agv, "horizon-pick") is ActionStatus.WAITING
    assert [n.released for n in agv.node_states] == [True, False, False]
    assert agv.state_message(1, 0).new_base_request
    run_until(agv, lambda a: a.last_node_id == "n200_0" and not a.driving, limit=300)
    run(agv, 20)
    assert agv.last_node_id == "n200_0" and agv.pose.speed == 0.0
    # update: release the rest, with a different horizon action
    upd = order(
        "o1",
        [(200, 0), (200, 150), (0, 150)],
        update=1,
        first_seq=2,
        actions={1: [pick("N", 2, aid="new-pick")]},
    )
    agv.receive_order(upd.to_json())
    assert agv.order_update_id == 1 and agv.errors == []
    assert "horizon-pick" not in agv.actions  # the old horizon went with its actions
    assert status(agv, "new-pick") is ActionStatus.WAITING
    run_until(agv, lambda a: not a.busy, limit=600)
    assert agv.last_node_id == "n0_150"
    assert status(agv, "new-pick") is ActionStatus.FINISHED


def test_update_of_finished_order_continues_from_last_node_only() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (100, 0)]).to_json())
    run_until(agv, lambda a: not a.busy)
    agv.receive_order(
        order("o1", [(50, 0), (60, 0)], update=1, first_seq=2, node_ids=["x", "y"]).to_json()
    )
    assert [e.error_type for e in agv.errors] == ["orderUpdateError"]
    agv.receive_order(order("o1", [(100, 0), (100, 80)], update=1, first_seq=2).to_json())
    assert agv.errors == [] and agv.order_update_id == 1
    run_until(agv, lambda a: not a.busy)
    assert agv.last_node_id == "n100_80" and agv.last_node_sequence_id == 4


def test_cancel_order_stops_van_fails_waiting_actions_and_lets_running_load_finish() -> None:
    agv = van()
    acts = {0: [pick("L1", 10)], 2: [drop("L1", 10)]}
    agv.receive_order(order("o1", SQUARE, actions=acts).to_json())
    run(agv, 5)
    agv.receive_instant_actions(instant("cancelOrder", "c1"))
    assert status(agv, "c1") is ActionStatus.RUNNING  # the pick is still running
    assert status(agv, "drop-L1") is ActionStatus.FAILED
    assert agv.node_states == [] and agv.edge_states == []
    run_until(agv, lambda a: a.actions["pick-L1"].status is ActionStatus.FINISHED)
    agv.tick(0.1)
    assert status(agv, "c1") is ActionStatus.FINISHED
    assert agv.order_id == "o1"  # kept, as the spec says


def test_cancel_while_driving_brakes_to_a_stop_between_nodes() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (1000, 0)]).to_json())
    run(agv, 30)
    assert agv.pose.speed > 8
    agv.receive_instant_actions(instant("cancelOrder", "c1"))
    assert status(agv, "c1") is ActionStatus.RUNNING
    t = run_until(agv, lambda a: a.actions["c1"].status is ActionStatus.FINISHED, step=0.1)
    assert t <= 30 / 3.6 / agv.spec.deceleration_mps2 + 0.3
    assert 100 < agv.pose.x < 1000 and agv.pose.speed == 0
    # nothing to cancel any more
    agv.receive_instant_actions(instant("cancelOrder", "c2"))
    assert status(agv, "c2") is ActionStatus.FAILED
    (err,) = errors(agv, "noOrderToCancel")
    assert err.error_level is wire.ErrorLevel.WARNING
    assert refs(err) == {"actionId": "c2"}
    # a new order must start where the van is (within the allowed deviation)
    here = (agv.pose.x, agv.pose.y)
    agv.receive_order(order("o2", [(1000, 0), (0, 0)]).to_json())
    assert errors(agv, "noRouteError")
    agv.receive_order(order("o3", [(1000, 0), (0, 0)], deviation=1001.0 - here[0]).to_json())
    assert agv.order_id == "o3" and not errors(agv, "noRouteError")


def test_pause_stops_driving_but_not_loading() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (1000, 0)]).to_json())
    run(agv, 20)
    agv.receive_instant_actions(instant("startPause", "p1"))
    assert agv.paused and status(agv, "p1") is ActionStatus.FINISHED
    run(agv, 10)
    assert agv.pose.speed == 0
    x = agv.pose.x
    run(agv, 10)
    assert agv.pose.x == x
    assert agv.state_message(1, 0).paused
    agv.receive_instant_actions(instant("stopPause", "p2"))
    run(agv, 5)
    assert agv.pose.x > x and not agv.paused
    # loading goes on during a pause
    agv = van()
    agv.receive_order(order("o1", [(0, 0)], actions={0: [pick("L", 1)]}).to_json())
    agv.receive_instant_actions(instant("startPause", "p1"))
    run(agv, agv.spec.pick_duration(1) + 1)
    assert status(agv, "pick-L") is ActionStatus.FINISHED


def test_charging_only_at_a_charger_and_no_orders_while_charging() -> None:
    agv = van(chargers=((5.0, 0.0),))
    agv.battery = agv.battery.__class__(soc=0.5)
    agv.receive_instant_actions(instant("startCharging", "c1"))
    assert status(agv, "c1") is ActionStatus.FINISHED and agv.battery.charging
    run(agv, 3600)
    assert agv.battery.soc == pytest.approx(
        0.5 + agv.spec.charge_kw / agv.spec.battery_kwh, abs=0.01
    )
    agv.receive_order(order("o1", [(0, 0), (10, 0)]).to_json())
    (err,) = errors(agv, "orderError")
    assert refs(err)["field"] == "batteryState.charging"
    agv.receive_instant_actions(instant("stopCharging", "c2"))
    assert not agv.battery.charging
    agv.receive_order(order("o1", [(0, 0), (10, 0)]).to_json())
    assert agv.order_id == "o1"
    far = van(x=100.0, chargers=((0.0, 0.0),))
    far.receive_instant_actions(instant("startCharging", "c1"))
    assert status(far, "c1") is ActionStatus.FAILED and not far.battery.charging
    assert errors(far, "chargingError")


def test_battery_drains_with_distance_and_reach_is_reported() -> None:
    agv = van()
    agv.receive_order(order("o1", [(0, 0), (10_000, 0)]).to_json())
    run_until(agv, lambda a: not a.busy, step=1.0)
    used = 1.0 - agv.battery.soc
    per_km = used * agv.spec.battery_kwh / 10
    assert agv.spec.drive_kwh_per_km < per_km < agv.spec.drive_kwh_per_km + 0.05
    reach = agv.state_message(1, 0).battery_state.reach
    assert reach is not None and 90_000 < reach < 120_000


def test_init_position_and_messages_for_other_vans() -> None:
    agv = van()
    agv.receive_instant_actions(
        instant("initPosition", "i1", x=12.0, y=-3.0, theta=1.0, mapId=MAP, lastNodeId="J7")
    )
    assert status(agv, "i1") is ActionStatus.FINISHED
    assert (agv.pose.x, agv.pose.y, agv.last_node_id) == (12.0, -3.0, "J7")
    other = order("o1", [(12, -3)], serial_number="VAN-99")
    agv.receive_order(other.to_json())
    assert agv.order_id == "" and agv.ignored_messages == 1


def test_state_message_reports_order_progress() -> None:
    agv = van()
    agv.receive_order(order("o1", SQUARE, released=3, actions={1: [pick("X", 1)]}).to_json())
    msg = agv.state_message(7, 1_700_000_000.0)
    assert msg.header_id == 7
    assert msg.timestamp == "2023-11-14T22:13:20.00Z"
    assert (msg.order_id, msg.last_node_id, msg.last_node_sequence_id) == ("o1", "n0_0", 0)
    assert [(n.node_id, n.released) for n in msg.node_states] == [
        ("n200_0", True),
        ("n200_150", True),
        ("n0_150", False),
    ]
    assert [(e.sequence_id, e.released) for e in msg.edge_states] == [
        (1, True),
        (3, True),
        (5, False),
    ]
    assert msg.operating_mode is wire.OperatingMode.AUTOMATIC


def test_nan_is_not_a_number_on_the_wire() -> None:
    agv = van()
    payload = order("o1", [(0, 0), (10, 0)]).to_json().replace(b'"x":10.0', b'"x":NaN')
    agv.receive_order(payload)
    (err,) = errors(agv, "validationError")
    assert "finite" in (err.error_description or "")
