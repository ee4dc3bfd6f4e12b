"""Order acceptance of the simulated van: the checks of figure 8 of VDA 5050 2.1.

:meth:`sim.van.agv.VanAgv.receive_order` runs them in the specification's order and turns a
:class:`Rejection` into an error of the van's state:

1. malformed (JSON, schema, graph structure: :func:`check_structure`) -> ``validationError``;
2. actions or fields the van cannot execute, a map it does not have, loads over capacity
   (:func:`check_executable`, :func:`check_capacity`), or a van that cannot take orders now
   (charging, manual mode, e-stop, cancel running: :func:`check_ready`) -> ``orderError`` with
   the offending fields as references;
3. repeated, updated and stitching orders, and the reach of a new order's first node, are
   decided by the van itself (``VanAgv._accept``): ``orderUpdateError``, ``noRouteError``.

The checks read the van and change nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.wire import BlockingType

if TYPE_CHECKING:
    from sim.van.agv import VanAgv

NODE_ACTIONS = frozenset({"pick", "drop", "startCharging", "stopCharging"})
"""Action types the van executes on nodes."""


class Rejection(Exception):
    """An order is rejected with a VDA 5050 error."""

    def __init__(
        self, error_type: str, description: str, refs: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(description)
        self.error_type = error_type
        self.description = description
        self.refs = list(refs)


def check_structure(order: wire.Order) -> None:
    """Figure 8, step 1: the order is well formed (node/edge counts, sequence ids, base before
    horizon, edges joining consecutive nodes, unique action ids); else ``validationError``."""
    nodes, edges = order.nodes, order.edges
    if not nodes:
        raise Rejection("validationError", "order has no node")
    if len(edges) != len(nodes) - 1:
        raise Rejection(
            "validationError",
            f"{len(nodes)} nodes need {len(nodes) - 1} edges, not {len(edges)}",
        )
    if not nodes[0].released:
        raise Rejection(
            "validationError", "first node is not released", [("nodeId", nodes[0].node_id)]
        )
    if nodes[0].sequence_id % 2:
        raise Rejection(
            "validationError", "node sequence ids must be even", [("nodeId", nodes[0].node_id)]
        )
    horizon = False
    for i, node in enumerate(nodes):
        if i and node.sequence_id != nodes[i - 1].sequence_id + 2:
            raise Rejection(
                "validationError",
                "node sequence ids must grow by 2",
                [("nodeId", node.node_id)],
            )
        if horizon and node.released:
            raise Rejection(
                "validationError", "released node after the horizon", [("nodeId", node.node_id)]
            )
        horizon = horizon or not node.released
        pos = node.node_position
        if pos is not None and not all(math.isfinite(v) for v in (pos.x, pos.y, pos.theta or 0.0)):
            raise Rejection(
                "validationError", "node position is not finite", [("nodeId", node.node_id)]
            )
    for i, edge in enumerate(edges):
        a, b = nodes[i], nodes[i + 1]
        refs = [("edgeId", edge.edge_id)]
        if edge.sequence_id != a.sequence_id + 1:
            raise Rejection(
                "validationError", "edge sequence id does not sit between its nodes", refs
            )
        if (edge.start_node_id, edge.end_node_id) != (a.node_id, b.node_id):
            raise Rejection("validationError", "edge does not join consecutive nodes", refs)
        if edge.released and not (a.released and b.released):
            raise Rejection("validationError", "edge released between unreleased nodes", refs)
        if b.released and not edge.released:
            raise Rejection("validationError", "released node after an unreleased edge", refs)
    seen: set[str] = set()
    for action in order_actions(order):
        if action.action_id in seen:
            raise Rejection(
                "validationError", "action id used twice", [("actionId", action.action_id)]
            )
        seen.add(action.action_id)


def check_executable(agv: VanAgv, order: wire.Order) -> None:
    """The van can execute the order: node positions on its map, the node actions it knows, no
    edge actions, trajectories or corridors, loads within capacity; else ``orderError``."""
    for node in order.nodes:
        pos = node.node_position
        if pos is None:
            raise Rejection(
                "orderError",
                "this van needs node positions",
                [("nodeId", node.node_id), ("field", "nodePosition")],
            )
        if pos.map_id != agv.map_id:
            raise Rejection(
                "orderError",
                f"map {pos.map_id} is not on the van",
                [("nodeId", node.node_id), ("mapId", pos.map_id)],
            )
        for action in node.actions:
            check_node_action(action, node)
    for edge in order.edges:
        refs = [("edgeId", edge.edge_id)]
        if edge.trajectory is not None:
            raise Rejection(
                "orderError",
                "the van plans its own path along the road; trajectories are not supported",
                [*refs, ("field", "trajectory")],
            )
        if edge.corridor is not None:
            raise Rejection(
                "orderError", "corridors are not supported", [*refs, ("field", "corridor")]
            )
        if edge.max_speed is not None and edge.max_speed <= 0:
            raise Rejection(
                "orderError", "edge maxSpeed must be positive", [*refs, ("field", "maxSpeed")]
            )
        for action in edge.actions:
            raise Rejection(
                "orderError",
                f"action {action.action_type} is not supported on edges",
                [*refs, ("actionId", action.action_id), ("actionType", action.action_type)],
            )
    check_capacity(agv, order)


def check_node_action(action: wire.Action, node: wire.Node) -> None:
    """A node action the van executes, with the parameters it needs."""
    refs = [("nodeId", node.node_id), ("actionId", action.action_id)]
    if action.action_type not in NODE_ACTIONS:
        raise Rejection(
            "orderError",
            f"action {action.action_type} is not supported",
            [*refs, ("actionType", action.action_type)],
        )
    if action.action_type in ("pick", "drop"):
        if action.blocking_type is BlockingType.NONE:
            raise Rejection(
                "orderError",
                "the van cannot load or unload while driving",
                [*refs, ("field", "blockingType")],
            )
        load_id = action.param("loadId")
        if not isinstance(load_id, str) or not load_id:
            raise Rejection(
                "orderError",
                f"{action.action_type} needs a loadId",
                [*refs, ("parameter", "loadId")],
            )
        boxes = action.param("boxes")
        if isinstance(boxes, bool) or not isinstance(boxes, int) or boxes < 1:
            raise Rejection(
                "orderError",
                f"{action.action_type} needs boxes >= 1",
                [*refs, ("parameter", "boxes")],
            )
        weight = action.param("weight")
        if weight is not None and (
            isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0
        ):
            raise Rejection(
                "orderError",
                "weight must be a number >= 0 kg",
                [*refs, ("parameter", "weight")],
            )


def check_capacity(agv: VanAgv, order: wire.Order) -> None:
    """Simulate the loads along the order: every drop finds its load, no limit is broken."""
    on_board = {k: (c.boxes, c.mass_kg) for k, c in agv.cargo.items()}
    # effects of pending base actions that stay (a stitching order keeps the base)
    stitching = agv.busy and order.nodes[0].node_id == (agv.base_end or ("", -1))[0]
    if stitching:
        for run in agv.actions.values():
            if (
                run.scope == "node"
                and not run.ended
                and run.action.action_type in ("pick", "drop")
                and agv.in_base(run)
            ):
                apply_load(on_board, run.action)
    nodes = order.nodes[1:] if (stitching or order.order_id == agv.order_id) else order.nodes
    for node in nodes:
        for action in node.actions:
            if action.action_type not in ("pick", "drop"):
                continue
            refs = [("nodeId", node.node_id), ("actionId", action.action_id)]
            load_id = str(action.param("loadId"))
            if action.action_type == "pick" and load_id in on_board:
                raise Rejection(
                    "orderError",
                    f"load {load_id} is already on board",
                    [*refs, ("loadId", load_id)],
                )
            if action.action_type == "drop" and load_id not in on_board:
                raise Rejection(
                    "orderError",
                    f"load {load_id} is not on board at this node",
                    [*refs, ("loadId", load_id)],
                )
            apply_load(on_board, action)
            boxes = sum(b for b, _ in on_board.values())
            kg = sum(m for _, m in on_board.values())
            if boxes > agv.spec.max_boxes:
                raise Rejection(
                    "orderError",
                    f"{boxes} boxes exceed the capacity of {agv.spec.max_boxes}",
                    [*refs, ("parameter", "boxes")],
                )
            if kg > agv.spec.max_load_kg + 1e-6:
                raise Rejection(
                    "orderError",
                    f"{kg:.1f} kg exceed the payload of {agv.spec.max_load_kg:.0f} kg",
                    [*refs, ("parameter", "weight")],
                )


def check_ready(agv: VanAgv) -> None:
    """The van can take an order now (not cancelling, not charging, automatic, no e-stop,
    battery not empty); else ``orderError``."""
    if agv.cancelling:
        raise Rejection("orderError", "the current order is being cancelled")
    if agv.battery.charging:
        raise Rejection(
            "orderError",
            "the van is charging; send stopCharging first",
            [("field", "batteryState.charging")],
        )
    if agv.operating_mode not in (
        wire.OperatingMode.AUTOMATIC,
        wire.OperatingMode.SEMIAUTOMATIC,
    ):
        raise Rejection(
            "orderError",
            f"operating mode is {agv.operating_mode.value}",
            [("field", "operatingMode")],
        )
    if agv.e_stop is not wire.EStop.NONE:
        raise Rejection("orderError", "emergency stop is active", [("field", "safetyState.eStop")])
    if agv.battery.soc <= 0:
        raise Rejection("orderError", "the battery is empty", [("field", "batteryState")])


def apply_load(on_board: dict[str, tuple[int, float]], action: wire.Action) -> None:
    load_id = str(action.param("loadId"))
    boxes = action.param("boxes")
    weight = action.param("weight")
    if action.action_type == "pick":
        on_board[load_id] = (
            boxes if isinstance(boxes, int) else 0,
            float(weight) if isinstance(weight, int | float) else 0.0,
        )
    else:
        on_board.pop(load_id, None)


def order_actions(order: wire.Order) -> Iterable[wire.Action]:
    for node in order.nodes:
        yield from node.actions
    for edge in order.edges:
        yield from edge.actions


def loose_header(payload: bytes) -> dict[str, Any]:
    """Whatever header fields a broken payload still has."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def loose_refs(head: dict[str, Any]) -> list[tuple[str, str]]:
    refs = []
    for key in ("headerId", "orderId", "orderUpdateId"):
        value = head.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            refs.append((key, str(value)))
    return refs
