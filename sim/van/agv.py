"""The vehicle side of VDA 5050 2.1 for a simulated van: orders, instant actions, state.

:class:`VanAgv` owns what a real van's controller owns: the order it holds (node and edge
states, base and horizon), action states, loads, errors, battery, pose and pause state. It does
no I/O and reads no clock: the MQTT client feeds it payloads (:meth:`receive_order`,
:meth:`receive_instant_actions`), advances it with :meth:`tick` and publishes the messages it
builds (:meth:`state_message`, :meth:`visualization_message`, :meth:`factsheet_message`).
``dirty`` tells the client that something changed that the specification wants reported at once
(section 6.10: order received, node passed, loads, errors, driving, action states).

Order acceptance follows figure 8 of the specification:

1. malformed (JSON, schema, graph structure) -> ``validationError``;
2. actions or fields the van cannot execute, a map it does not have, loads over capacity, or a
   van that cannot take orders now (charging, manual mode, e-stop, cancel running) ->
   ``orderError`` with the offending fields as references;
3. same ``orderId``: a lower ``orderUpdateId`` -> ``orderUpdateError``; the same one -> ignored
   (the state is re-sent so that master control sees the echo); a higher one is accepted only if
   its first node is the current decision point (while the van is busy) or the last node
   reached (when it is done) -> else ``orderUpdateError``;
4. new ``orderId`` while busy: accepted only as a stitching order starting at the decision point
   -> else ``orderUpdateError``; while idle: its first node must be within reach of the van's
   position -> else ``noRouteError``.

Rejection errors carry references ``headerId``, ``topic``, ``orderId``, ``orderUpdateId`` (section
7.1) and stay in the state until an order is accepted. Node actions follow figure 17: actions on
a node start in list order, a HARD action runs alone, the van drives on once no SOFT or HARD
action of the node is left. A pause stops driving only (loading goes on, so no action is ever
reported PAUSED, a status the 2.1.0 state schema lacks). ``cancelOrder`` brakes to a stop where
the van is, fails waiting actions and lets a running load or unload finish.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.wire import ActionStatus, BlockingType, ErrorLevel
from sim.van.model import Battery, Pose, VanSpec, battery_step, brake, drive, wrap_angle

NODE_ACTIONS = frozenset({"pick", "drop", "startCharging", "stopCharging"})
"""Action types the van executes on nodes."""
INSTANT_ACTIONS = frozenset(
    {
        "startPause",
        "stopPause",
        "cancelOrder",
        "stateRequest",
        "factsheetRequest",
        "startCharging",
        "stopCharging",
        "initPosition",
    }
)
"""Action types the van executes as instant actions."""
LOAD_TYPE = "BOX"
"""The load type of every consignment: standard boxes."""
LOAD_POSITION = "cargo"
"""The van's single load position."""
LOW_BATTERY = 0.10
"""State of charge under which the van warns."""
XY = tuple[float, float]
"""A point in the map frame (metres)."""
PATH_MATCH_M = 2.0
"""A map path fits an order edge when its ends are this close to the edge's nodes."""
SUBSTEP_S = 0.1
"""Longest physics step."""
TRANSIENT_ERRORS = wire.ORDER_REJECTION_ERRORS | {
    wire.NO_ORDER_TO_CANCEL,
    "unsupportedActionError",
    "chargingError",
    "initPositionError",
    "dropError",
}
"""Warnings that last until the next accepted order."""
MAX_REJECTION_ERRORS = 8
"""Order rejection errors kept in the state at most (the newest)."""


@dataclass(slots=True)
class ActionRun:
    """One action the van knows, with its progress."""

    action: wire.Action
    scope: str
    """``node``, ``edge`` or ``instant``."""
    status: ActionStatus = ActionStatus.WAITING
    remaining_s: float = 0.0
    result: str = ""
    node_seq: int | None = None
    """Sequence id of the node (or edge) the action belongs to."""

    @property
    def ended(self) -> bool:
        return self.status in (ActionStatus.FINISHED, ActionStatus.FAILED)


@dataclass(slots=True)
class Cargo:
    """A consignment on board."""

    load_id: str
    boxes: int
    mass_kg: float
    sku: str = ""


class Rejection(Exception):
    """An order is rejected with a VDA 5050 error."""

    def __init__(
        self, error_type: str, description: str, refs: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(description)
        self.error_type = error_type
        self.description = description
        self.refs = list(refs)


def _error(
    error_type: str,
    description: str,
    refs: Iterable[tuple[str, str]] = (),
    level: ErrorLevel = ErrorLevel.WARNING,
    hint: str | None = None,
) -> wire.Error:
    return wire.Error(
        error_type=error_type,
        error_level=level,
        error_description=description,
        error_hint=hint,
        error_references=[wire.ErrorReference(reference_key=k, reference_value=v) for k, v in refs]
        or None,
    )


@dataclass
class VanAgv:
    """A simulated van's controller (see the module docstring)."""

    manufacturer: str
    serial_number: str
    map_id: str
    pose: Pose
    spec: VanSpec = field(default_factory=VanSpec)
    last_node_id: str = ""
    chargers: tuple[XY, ...] = ()
    """Charger positions in the map frame."""
    paths: Mapping[str, tuple[XY, ...]] = field(default_factory=dict)
    """The van's own road map: edge id -> the road's shape from start to end node (map frame).
    Edges of an order that the map knows are driven along the road; others in a straight line."""
    battery: Battery = field(default_factory=Battery)
    operating_mode: wire.OperatingMode = wire.OperatingMode.AUTOMATIC
    e_stop: wire.EStop = wire.EStop.NONE

    order_id: str = ""
    order_update_id: int = 0
    last_node_sequence_id: int = 0
    node_states: list[wire.Node] = field(default_factory=list)
    edge_states: list[wire.Edge] = field(default_factory=list)
    actions: dict[str, ActionRun] = field(default_factory=dict)
    errors: list[wire.Error] = field(default_factory=list)
    cargo: dict[str, Cargo] = field(default_factory=dict)
    paused: bool = False
    dirty: bool = True
    factsheet_requested: bool = False
    ignored_messages: int = 0
    """Messages for other vehicles or duplicates that were ignored."""
    _base_end: tuple[str, int] | None = None
    _node_queue: list[str] = field(default_factory=list)
    _cancel_id: str | None = None
    _cancelled: bool = False
    _driving: bool = False
    _odometer_at_node: float = 0.0
    _last_xy: XY | None = None
    _route: list[XY] = field(default_factory=list)
    _route_seq: int = -1

    # --- derived state ----------------------------------------------------------------------

    @property
    def cargo_kg(self) -> float:
        return sum(c.mass_kg for c in self.cargo.values())

    @property
    def cargo_boxes(self) -> int:
        return sum(c.boxes for c in self.cargo.values())

    @property
    def busy(self) -> bool:
        """Driving the order, waiting for an update, or running order actions."""
        return bool(self.node_states) or any(
            not r.ended for r in self.actions.values() if r.scope != "instant"
        )

    @property
    def driving(self) -> bool:
        return self.pose.speed > 1e-3

    # --- orders -----------------------------------------------------------------------------

    def receive_order(self, payload: bytes) -> None:
        """Handle a message on the ``order`` topic."""
        try:
            order = wire.parse("order", payload)
        except wire.WireError as exc:
            head = _loose_header(payload)
            if not self._mine(head.get("manufacturer"), head.get("serialNumber"), loose=True):
                return
            refs = [("topic", "order"), *_loose_refs(head)]
            self._reject(Rejection("validationError", exc.reason, refs))
            return
        assert isinstance(order, wire.Order)
        if not self._mine(order.manufacturer, order.serial_number):
            return
        base_refs = [
            ("headerId", str(order.header_id)),
            ("topic", "order"),
            ("orderId", order.order_id),
            ("orderUpdateId", str(order.order_update_id)),
        ]
        try:
            self._check_structure(order)
            if order.order_id == self.order_id and order.order_update_id <= self.order_update_id:
                self._repeated(order)
                return
            self._check_executable(order)
            self._check_ready()
            self._accept(order)
        except Rejection as rej:
            rej.refs = base_refs + rej.refs
            self._reject(rej)

    def _mine(self, manufacturer: object, serial: object, loose: bool = False) -> bool:
        ok = manufacturer == self.manufacturer and serial == self.serial_number
        if not ok and loose and (manufacturer is None or serial is None):
            ok = True  # a payload too broken to name its target still gets an answer
        if not ok:
            self.ignored_messages += 1
        return ok

    def _reject(self, rej: Rejection) -> None:
        errors = [
            e
            for e in self.errors
            if not (
                e.error_type in wire.ORDER_REJECTION_ERRORS
                and e.reference("orderId") == dict(rej.refs).get("orderId")
                and e.reference("orderUpdateId") == dict(rej.refs).get("orderUpdateId")
            )
        ]
        errors.append(_error(rej.error_type, rej.description, rej.refs))
        rejections = [e for e in errors if e.error_type in wire.ORDER_REJECTION_ERRORS]
        for old in rejections[:-MAX_REJECTION_ERRORS]:
            errors.remove(old)
        self.errors = errors
        self.dirty = True

    def _check_structure(self, order: wire.Order) -> None:
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
            if pos is not None and not all(
                math.isfinite(v) for v in (pos.x, pos.y, pos.theta or 0.0)
            ):
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
        for action in _order_actions(order):
            if action.action_id in seen:
                raise Rejection(
                    "validationError", "action id used twice", [("actionId", action.action_id)]
                )
            seen.add(action.action_id)

    def _check_executable(self, order: wire.Order) -> None:
        for node in order.nodes:
            pos = node.node_position
            if pos is None:
                raise Rejection(
                    "orderError",
                    "this van needs node positions",
                    [("nodeId", node.node_id), ("field", "nodePosition")],
                )
            if pos.map_id != self.map_id:
                raise Rejection(
                    "orderError",
                    f"map {pos.map_id} is not on the van",
                    [("nodeId", node.node_id), ("mapId", pos.map_id)],
                )
            for action in node.actions:
                self._check_node_action(action, node)
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
        self._check_capacity(order)

    def _check_node_action(self, action: wire.Action, node: wire.Node) -> None:
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

    def _check_capacity(self, order: wire.Order) -> None:
        """Simulate the loads along the order: every drop finds its load, no limit is broken."""
        on_board = {k: (c.boxes, c.mass_kg) for k, c in self.cargo.items()}
        # effects of pending base actions that stay (a stitching order keeps the base)
        stitching = self.busy and order.nodes[0].node_id == (self._base_end or ("", -1))[0]
        if stitching:
            for run in self.actions.values():
                if (
                    run.scope == "node"
                    and not run.ended
                    and run.action.action_type in ("pick", "drop")
                    and self._in_base(run)
                ):
                    _apply_load(on_board, run.action)
        nodes = order.nodes[1:] if (stitching or order.order_id == self.order_id) else order.nodes
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
                _apply_load(on_board, action)
                boxes = sum(b for b, _ in on_board.values())
                kg = sum(m for _, m in on_board.values())
                if boxes > self.spec.max_boxes:
                    raise Rejection(
                        "orderError",
                        f"{boxes} boxes exceed the capacity of {self.spec.max_boxes}",
                        [*refs, ("parameter", "boxes")],
                    )
                if kg > self.spec.max_load_kg + 1e-6:
                    raise Rejection(
                        "orderError",
                        f"{kg:.1f} kg exceed the payload of {self.spec.max_load_kg:.0f} kg",
                        [*refs, ("parameter", "weight")],
                    )

    def _in_base(self, run: ActionRun) -> bool:
        end = self._base_end
        return end is not None and run.node_seq is not None and run.node_seq <= end[1]

    def _check_ready(self) -> None:
        if self._cancel_id is not None:
            raise Rejection("orderError", "the current order is being cancelled")
        if self.battery.charging:
            raise Rejection(
                "orderError",
                "the van is charging; send stopCharging first",
                [("field", "batteryState.charging")],
            )
        if self.operating_mode not in (
            wire.OperatingMode.AUTOMATIC,
            wire.OperatingMode.SEMIAUTOMATIC,
        ):
            raise Rejection(
                "orderError",
                f"operating mode is {self.operating_mode.value}",
                [("field", "operatingMode")],
            )
        if self.e_stop is not wire.EStop.NONE:
            raise Rejection(
                "orderError", "emergency stop is active", [("field", "safetyState.eStop")]
            )
        if self.battery.soc <= 0:
            raise Rejection("orderError", "the battery is empty", [("field", "batteryState")])

    def _accept(self, order: wire.Order) -> None:
        first = order.nodes[0]
        if order.order_id == self.order_id:
            if self.busy:
                self._stitch(order)
            elif (first.node_id, first.sequence_id) == (
                self.last_node_id,
                self.last_node_sequence_id,
            ):
                self._update(order)
            else:
                raise Rejection(
                    "orderUpdateError",
                    "order update does not start at the last "
                    f"node reached ({self.last_node_id}/{self.last_node_sequence_id})",
                    [("nodeId", first.node_id)],
                )
        elif self.busy:
            self._stitch(order)
        else:
            pos = first.node_position
            assert pos is not None
            reach = max(self.spec.position_tolerance_m, pos.allowed_deviation_xy or 0.0)
            dist = math.hypot(pos.x - self.pose.x, pos.y - self.pose.y)
            if dist > reach:
                raise Rejection(
                    "noRouteError",
                    f"first node {first.node_id} is {dist:.1f} m away (allowed {reach:.1f} m)",
                    [("nodeId", first.node_id)],
                )
            self._new(order)

    def _repeated(self, order: wire.Order) -> None:
        """An order this van already has (figure 8, steps 5 and 6)."""
        if order.order_update_id < self.order_update_id:
            raise Rejection(
                "orderUpdateError",
                f"orderUpdateId {order.order_update_id} is older than {self.order_update_id}",
            )
        self.ignored_messages += 1
        self.dirty = True  # repeat the state so that master control sees its echo

    def _clear_rejections(self) -> None:
        """Accepting an order ends the warnings about earlier orders and actions."""
        self.errors = [e for e in self.errors if e.error_type not in TRANSIENT_ERRORS]

    def _runs(self, order: wire.Order, skip_first: bool) -> dict[str, ActionRun]:
        runs: dict[str, ActionRun] = {}
        for node in order.nodes[1:] if skip_first else order.nodes:
            for a in node.actions:
                runs[a.action_id] = ActionRun(a, "node", node_seq=node.sequence_id)
        for edge in order.edges:
            for a in edge.actions:
                runs[a.action_id] = ActionRun(a, "edge", node_seq=edge.sequence_id)
        return runs

    def _set_base_end(self, order: wire.Order) -> None:
        base = [n for n in order.nodes if n.released]
        self._base_end = (base[-1].node_id, base[-1].sequence_id)

    def _new(self, order: wire.Order) -> None:
        self._clear_rejections()
        instant = {k: r for k, r in self.actions.items() if r.scope == "instant" and not r.ended}
        self.actions = {**instant, **self._runs(order, skip_first=False)}
        self.order_id, self.order_update_id = order.order_id, order.order_update_id
        self.node_states = list(order.nodes)
        self.edge_states = list(order.edges)
        self._set_base_end(order)
        self._cancelled = False
        self._node_queue = []
        self._traverse_node()
        self.dirty = True

    def _update(self, order: wire.Order) -> None:
        """Continue a finished order from its last node (figure 8, step 8)."""
        self._clear_rejections()
        self.actions.update(self._runs(order, skip_first=True))
        self.order_update_id = order.order_update_id
        self.node_states = list(order.nodes[1:])
        self.edge_states = list(order.edges)
        self._set_base_end(order)
        self._cancelled = False
        self.dirty = True

    def _stitch(self, order: wire.Order) -> None:
        """Extend the running order at its decision point (figure 8, step 7)."""
        first = order.nodes[0]
        if self._base_end != (first.node_id, first.sequence_id):
            end = self._base_end or ("", 0)
            raise Rejection(
                "orderUpdateError",
                f"order does not start at the decision point {end[0]}/{end[1]}",
                [("nodeId", first.node_id)],
            )
        self._clear_rejections()
        # the old horizon goes, with its waiting actions
        horizon_seqs = {n.sequence_id for n in self.node_states if not n.released} | {
            e.sequence_id for e in self.edge_states if not e.released
        }
        self.actions = {
            k: r
            for k, r in self.actions.items()
            if not (r.node_seq in horizon_seqs and r.scope != "instant")
        }
        self.actions.update(self._runs(order, skip_first=True))
        self.node_states = [n for n in self.node_states if n.released] + list(order.nodes[1:])
        self.edge_states = [e for e in self.edge_states if e.released] + list(order.edges)
        self.order_id, self.order_update_id = order.order_id, order.order_update_id
        self._set_base_end(order)
        self.dirty = True

    # --- instant actions --------------------------------------------------------------------

    def receive_instant_actions(self, payload: bytes) -> None:
        """Handle a message on the ``instantActions`` topic."""
        try:
            msg = wire.parse("instantActions", payload)
        except wire.WireError as exc:
            head = _loose_header(payload)
            if not self._mine(head.get("manufacturer"), head.get("serialNumber"), loose=True):
                return
            refs = [("topic", "instantActions")]
            if "headerId" in head:
                refs.insert(0, ("headerId", str(head["headerId"])))
            self.errors.append(_error("validationError", exc.reason, refs))
            self.dirty = True
            return
        assert isinstance(msg, wire.InstantActions)
        if not self._mine(msg.manufacturer, msg.serial_number):
            return
        for action in msg.actions:
            if action.action_id in self.actions:
                self.ignored_messages += 1  # a repeated instant action is not run twice
                continue
            self._instant(action)
        self.dirty = True

    def _instant(self, action: wire.Action) -> None:
        run = ActionRun(action, "instant", status=ActionStatus.RUNNING)
        self.actions[action.action_id] = run
        kind = action.action_type
        refs = [("actionId", action.action_id), ("actionType", kind)]
        if kind == "startPause":
            self.paused = True
            run.status = ActionStatus.FINISHED
        elif kind == "stopPause":
            self.paused = False
            run.status = ActionStatus.FINISHED
        elif kind == "stateRequest":
            run.status = ActionStatus.FINISHED
        elif kind == "factsheetRequest":
            self.factsheet_requested = True
            run.status = ActionStatus.FINISHED
        elif kind == "cancelOrder":
            self._cancel(run)
        elif kind in ("startCharging", "stopCharging"):
            self._charging(run, kind == "startCharging")
        elif kind == "initPosition":
            self._init_position(run)
        else:
            run.status = ActionStatus.FAILED
            run.result = f"{kind} is not supported as an instant action"
            self.errors.append(_error("unsupportedActionError", run.result, refs))

    def _cancel(self, run: ActionRun) -> None:
        if self._cancelled or not self.busy:
            run.status = ActionStatus.FAILED
            run.result = "no order to cancel"
            self.errors.append(
                _error(
                    wire.NO_ORDER_TO_CANCEL,
                    "there is no order to cancel",
                    [("actionId", run.action.action_id)],
                )
            )
            return
        for r in self.actions.values():
            if r.scope != "instant" and r.status is ActionStatus.WAITING:
                r.status = ActionStatus.FAILED
                r.result = "order cancelled"
        self.node_states = []
        self.edge_states = []
        self._node_queue = []
        self._base_end = None
        self._cancelled = True
        self._cancel_id = run.action.action_id
        self._finish_cancel()

    def _finish_cancel(self) -> None:
        if self._cancel_id is None:
            return
        running = any(not r.ended for r in self.actions.values() if r.scope != "instant")
        if not running and not self.driving:
            self.actions[self._cancel_id].status = ActionStatus.FINISHED
            self._cancel_id = None
            self.dirty = True

    def _charging(self, run: ActionRun, start: bool) -> None:
        if not start:
            self.battery = replace(self.battery, charging=False)
            run.status = ActionStatus.FINISHED
            return
        near = any(
            math.hypot(cx - self.pose.x, cy - self.pose.y) <= self.spec.charger_radius_m
            for cx, cy in self.chargers
        )
        if self.driving or not near:
            run.status = ActionStatus.FAILED
            run.result = "not standing at a charger"
            self.errors.append(
                _error("chargingError", run.result, [("actionId", run.action.action_id)])
            )
            return
        self.battery = replace(self.battery, charging=self.battery.soc < 1.0)
        run.status = ActionStatus.FINISHED

    def _init_position(self, run: ActionRun) -> None:
        a = run.action
        x, y, theta = a.param("x"), a.param("y"), a.param("theta")
        map_id, node_id = a.param("mapId"), a.param("lastNodeId")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y, theta))
        if self.busy or not numbers or map_id != self.map_id or not isinstance(node_id, str):
            run.status = ActionStatus.FAILED
            run.result = "van busy or bad pose" if numbers else "x, y and theta must be numbers"
            self.errors.append(_error("initPositionError", run.result, [("actionId", a.action_id)]))
            return
        assert isinstance(x, int | float) and isinstance(y, int | float)
        assert isinstance(theta, int | float)
        self.pose = Pose(float(x), float(y), wrap_angle(float(theta)), 0.0, self.pose.odometer_m)
        self.last_node_id, self.last_node_sequence_id = node_id, 0
        self._last_xy, self._route = (self.pose.x, self.pose.y), []
        run.status = ActionStatus.FINISHED

    # --- execution --------------------------------------------------------------------------

    def tick(self, dt: float) -> None:
        """Advance the van by ``dt`` seconds (in steps of at most ``SUBSTEP_S``).

        A van standing idle (nothing to drive, run or charge) only draws its auxiliaries,
        which one step covers exactly.
        """
        if dt > 0 and not (
            self.busy or self.driving or self.battery.charging or self._cancel_id is not None
        ):
            soc_before = self.battery.soc
            self.battery = battery_step(self.battery, self.spec, dt, 0.0, self.cargo_kg)
            self._battery_faults(soc_before)
            return
        while dt > 1e-9:
            step = min(SUBSTEP_S, dt)
            self._step(step)
            dt -= step

    def _step(self, dt: float) -> None:
        was_driving = self.driving
        self._run_actions(dt)
        self._start_node_actions()
        start_odo = self.pose.odometer_m
        if self._may_drive():
            self._drive(dt)
        elif self.pose.speed > 0:
            self.pose = brake(self.pose, dt, self.spec)
        soc_before = self.battery.soc
        charging_before = self.battery.charging
        self.battery = battery_step(
            self.battery, self.spec, dt, self.pose.odometer_m - start_odo, self.cargo_kg
        )
        if charging_before != self.battery.charging:
            self.dirty = True
        self._battery_faults(soc_before)
        self._finish_cancel()
        if was_driving != self.driving:
            self.dirty = True

    def _may_drive(self) -> bool:
        if self.paused or self._cancel_id is not None or self.battery.soc <= 0:
            return False
        if self.battery.charging or self.e_stop is not wire.EStop.NONE:
            return False
        if self._node_queue:  # SOFT or HARD actions of the node not done yet
            return False
        return bool(self.edge_states and self.edge_states[0].released)

    def _edge_points(self, edge: wire.Edge, start: XY | None, end: wire.NodePosition) -> list[XY]:
        """Points the van drives through on ``edge``: the road's shape from the van's own map
        when the map knows this edge between these nodes, else straight to the end node."""
        tip = (end.x, end.y)
        path = self.paths.get(edge.edge_id)
        if (
            path is not None
            and len(path) >= 2
            and _near(path[-1], tip)
            and (start is None or _near(path[0], start))
        ):
            return [*path[1:-1], tip]
        return [tip]

    def _drive(self, dt: float) -> None:
        edge, node = self.edge_states[0], self.node_states[0]
        pos = node.node_position
        assert pos is not None
        if self._route_seq != edge.sequence_id or not self._route:
            self._route = self._edge_points(edge, self._last_xy, pos)
            self._route_seq = edge.sequence_id
        limit = min(self.spec.max_speed_mps, edge.max_speed or math.inf)
        end_speed = self._route_end_speed(limit, self._end_speed(node))
        self.pose, reached = drive(self.pose, self._route[0], dt, self.spec, limit, end_speed)
        if reached:
            self._route.pop(0)
            if not self._route:
                self.edge_states.pop(0)
                self._traverse_node()

    def _route_end_speed(self, limit: float, node_speed: float) -> float:
        """Speed allowed at the next route point: corners on the way and braking to the node."""
        route = self._route
        v = node_speed
        for i in range(len(route) - 1, 0, -1):
            a = route[i - 2] if i >= 2 else (self.pose.x, self.pose.y)
            b, c = route[i - 1], route[i]
            turn = wrap_angle(
                math.atan2(c[1] - b[1], c[0] - b[0]) - math.atan2(b[1] - a[1], b[0] - a[0])
            )
            reach = math.sqrt(v * v + 2 * self.spec.deceleration_mps2 * math.dist(b, c))
            v = min(limit, self.spec.corner_speed(turn), reach)
        return v

    def _end_speed(self, node: wire.Node) -> float:
        """How fast the van may pass ``node`` at the end of the current edge."""
        if len(self.edge_states) < 2 or not self.edge_states[1].released:
            return 0.0  # decision point: stop unless the base grows
        if any(a.blocking_type is not BlockingType.NONE for a in node.actions):
            return 0.0
        nxt_edge, nxt_node = self.edge_states[1], self.node_states[1]
        here, there = node.node_position, nxt_node.node_position
        assert here is not None and there is not None
        route = self._route
        before = route[-2] if len(route) >= 2 else (self.pose.x, self.pose.y)
        after = self._edge_points(nxt_edge, (here.x, here.y), there)[0]
        heading_in = math.atan2(here.y - before[1], here.x - before[0])
        heading_out = math.atan2(after[1] - here.y, after[0] - here.x)
        corner = self.spec.corner_speed(wrap_angle(heading_out - heading_in))
        return min(corner, nxt_edge.max_speed or math.inf)

    def _traverse_node(self) -> None:
        node = self.node_states.pop(0)
        self.last_node_id, self.last_node_sequence_id = node.node_id, node.sequence_id
        if node.node_position is not None:
            self._last_xy = (node.node_position.x, node.node_position.y)
        self._route = []
        self._odometer_at_node = self.pose.odometer_m
        self._node_queue = [a.action_id for a in node.actions if a.action_id in self.actions]
        self._start_node_actions()
        self._node_queue = [
            aid
            for aid in self._node_queue
            if self.actions[aid].action.blocking_type is not BlockingType.NONE
            or self.actions[aid].status is ActionStatus.WAITING
        ]
        self.dirty = True

    def _start_node_actions(self) -> None:
        """Start the node's actions as figure 17 allows; forget those that ended."""
        queue = [aid for aid in self._node_queue if not self.actions[aid].ended]
        for aid in queue:
            run = self.actions[aid]
            if run.status is not ActionStatus.WAITING:
                if run.action.blocking_type is BlockingType.HARD:
                    break  # a running HARD action runs alone
                continue
            others = [
                self.actions[o]
                for o in queue
                if o != aid
                and self.actions[o].status not in (ActionStatus.WAITING,)
                and not self.actions[o].ended
            ]
            if run.action.blocking_type is BlockingType.HARD and others:
                break
            if run.action.blocking_type is not BlockingType.NONE and self.driving:
                break  # wait until the van stands
            self._start(run)
            if run.action.blocking_type is BlockingType.HARD and not run.ended:
                break
        self._node_queue = [
            aid
            for aid in queue
            if not self.actions[aid].ended
            and (
                self.actions[aid].action.blocking_type is not BlockingType.NONE
                or self.actions[aid].status is ActionStatus.WAITING
            )
        ]

    def _start(self, run: ActionRun) -> None:
        a = run.action
        self.dirty = True
        if a.action_type in ("pick", "drop"):
            boxes = a.param("boxes")
            assert isinstance(boxes, int)
            if a.action_type == "drop" and str(a.param("loadId")) not in self.cargo:
                run.status = ActionStatus.FAILED
                run.result = "load is not on board"
                self.errors.append(
                    _error(
                        "dropError",
                        run.result,
                        [("actionId", a.action_id), ("loadId", str(a.param("loadId")))],
                    )
                )
                return
            run.status = ActionStatus.RUNNING
            run.remaining_s = (
                self.spec.pick_duration(boxes)
                if a.action_type == "pick"
                else self.spec.drop_duration(boxes)
            )
        elif a.action_type in ("startCharging", "stopCharging"):
            self._charging(run, a.action_type == "startCharging")
        else:  # checked at acceptance; cannot happen
            run.status = ActionStatus.FAILED

    def _run_actions(self, dt: float) -> None:
        for run in self.actions.values():
            if run.status is not ActionStatus.RUNNING or run.scope == "instant":
                continue
            run.remaining_s -= dt
            if run.remaining_s > 0:
                continue
            a = run.action
            load_id = str(a.param("loadId"))
            boxes = a.param("boxes")
            weight = a.param("weight")
            assert isinstance(boxes, int)
            if a.action_type == "pick":
                self.cargo[load_id] = Cargo(
                    load_id,
                    boxes,
                    float(weight) if isinstance(weight, int | float) else 0.0,
                    str(a.param("sku") or ""),
                )
                run.result = f"loaded {boxes} boxes"
            elif a.action_type == "drop":
                self.cargo.pop(load_id, None)
                run.result = f"unloaded {boxes} boxes"
            run.status = ActionStatus.FINISHED
            self.dirty = True

    def _battery_faults(self, soc_before: float) -> None:
        soc = self.battery.soc
        if soc_before > LOW_BATTERY >= soc:
            self.errors.append(
                _error(
                    "batteryLow", f"battery at {soc:.0%}", hint="return to the warehouse and charge"
                )
            )
            self.dirty = True
        if soc_before > 0 >= soc:
            self.errors.append(
                _error(
                    "batteryEmpty",
                    "battery empty, van stopped",
                    level=ErrorLevel.FATAL,
                    hint="tow the van to a charger",
                )
            )
            self.dirty = True
        if soc > LOW_BATTERY and any(e.error_type == "batteryLow" for e in self.errors):
            self.errors = [
                e for e in self.errors if e.error_type not in ("batteryLow", "batteryEmpty")
            ]
            self.dirty = True

    # --- messages ---------------------------------------------------------------------------

    def header(self, header_id: int, now: float) -> dict[str, Any]:
        return {
            "header_id": header_id,
            "timestamp": wire.format_timestamp(now),
            "version": wire.PROTOCOL_VERSION,
            "manufacturer": self.manufacturer,
            "serial_number": self.serial_number,
        }

    def agv_position(self) -> wire.AgvPosition:
        return wire.AgvPosition(
            x=round(self.pose.x, 3),
            y=round(self.pose.y, 3),
            theta=round(wrap_angle(self.pose.theta), 4),
            map_id=self.map_id,
            position_initialized=True,
            localization_score=0.95,
            deviation_range=0.2,
        )

    def state_message(self, header_id: int, now: float) -> wire.State:
        """The state as it is now."""
        soc = self.battery.soc
        return wire.State(
            **self.header(header_id, now),
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_sequence_id,
            node_states=[
                wire.NodeState(
                    node_id=n.node_id,
                    sequence_id=n.sequence_id,
                    released=n.released,
                    node_description=n.node_description,
                    node_position=n.node_position,
                )
                for n in self.node_states
            ],
            edge_states=[
                wire.EdgeState(
                    edge_id=e.edge_id,
                    sequence_id=e.sequence_id,
                    released=e.released,
                    edge_description=e.edge_description,
                )
                for e in self.edge_states
            ],
            driving=self.driving,
            paused=self.paused,
            new_base_request=self._new_base_request(),
            distance_since_last_node=round(self.pose.odometer_m - self._odometer_at_node, 2),
            action_states=[
                wire.ActionState(
                    action_id=r.action.action_id,
                    action_type=r.action.action_type,
                    action_description=r.action.action_description,
                    action_status=r.status,
                    result_description=r.result or None,
                )
                for r in self.actions.values()
            ],
            battery_state=wire.BatteryState(
                battery_charge=round(soc * 100, 2),
                battery_voltage=round(self.battery.voltage(self.spec), 2),
                battery_health=100,
                charging=self.battery.charging,
                reach=round(self.spec.reach_m(soc, self.cargo_kg)),
            ),
            operating_mode=self.operating_mode,
            errors=list(self.errors),
            information=[
                wire.Info(
                    info_type="cargo",
                    info_level=wire.InfoLevel.INFO,
                    info_description=f"{self.cargo_boxes} boxes, {self.cargo_kg:.0f} kg on board",
                )
            ],
            safety_state=wire.SafetyState(e_stop=self.e_stop, field_violation=False),
            maps=[
                wire.MapInfo(map_id=self.map_id, map_version="1", map_status=wire.MapStatus.ENABLED)
            ],
            agv_position=self.agv_position(),
            velocity=wire.Velocity(vx=round(self.pose.speed, 3), vy=0.0, omega=0.0),
            loads=[
                wire.Load(
                    load_id=c.load_id,
                    load_type=LOAD_TYPE,
                    load_position=LOAD_POSITION,
                    weight=round(c.mass_kg, 3),
                )
                for c in self.cargo.values()
            ],
        )

    def _new_base_request(self) -> bool:
        released = sum(1 for n in self.node_states if n.released)
        return released <= 1 and any(not n.released for n in self.node_states)

    def visualization_message(self, header_id: int, now: float) -> wire.Visualization:
        return wire.Visualization(
            **self.header(header_id, now),
            agv_position=self.agv_position(),
            velocity=wire.Velocity(vx=round(self.pose.speed, 3), vy=0.0, omega=0.0),
        )

    def connection_message(
        self, header_id: int, now: float, state: wire.ConnectionState
    ) -> wire.Connection:
        return wire.Connection(**self.header(header_id, now), connection_state=state)

    def factsheet_message(
        self, header_id: int, now: float, state_interval_s: float, visualization_s: float | None
    ) -> wire.Factsheet:
        return factsheet(self, header_id, now, state_interval_s, visualization_s)


def _near(a: XY, b: XY) -> bool:
    return math.dist(a, b) <= PATH_MATCH_M


def _apply_load(on_board: dict[str, tuple[int, float]], action: wire.Action) -> None:
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


def _order_actions(order: wire.Order) -> Iterable[wire.Action]:
    for node in order.nodes:
        yield from node.actions
    for edge in order.edges:
        yield from edge.actions


def _loose_header(payload: bytes) -> dict[str, Any]:
    """Whatever header fields a broken payload still has."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _loose_refs(head: dict[str, Any]) -> list[tuple[str, str]]:
    refs = []
    for key in ("headerId", "orderId", "orderUpdateId"):
        value = head.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            refs.append((key, str(value)))
    return refs


def factsheet(
    agv: VanAgv,
    header_id: int,
    now: float,
    state_interval_s: float,
    visualization_s: float | None,
) -> wire.Factsheet:
    """The van's factsheet (section 6.15): what it is and what it can do.

    ``blockingTypes`` is left out of ``agvActions``: the 2.1.0 factsheet schema puts its enum on
    the array itself, so no non-empty list validates (pick and drop accept SOFT and HARD).
    """
    spec = agv.spec
    load_params = [
        wire.FactsheetActionParameter(
            key="loadId", value_data_type="STRING", description="consignment id"
        ),
        wire.FactsheetActionParameter(
            key="boxes", value_data_type="INTEGER", description="number of standard boxes"
        ),
        wire.FactsheetActionParameter(
            key="weight",
            value_data_type="NUMBER",
            description="mass of the consignment, kg",
            is_optional=True,
        ),
        wire.FactsheetActionParameter(
            key="sku", value_data_type="STRING", description="stock keeping unit", is_optional=True
        ),
        wire.FactsheetActionParameter(
            key="loadType", value_data_type="STRING", description="always BOX", is_optional=True
        ),
        wire.FactsheetActionParameter(
            key="stationType",
            value_data_type="STRING",
            description="dock or gate",
            is_optional=True,
        ),
        wire.FactsheetActionParameter(
            key="stationName", value_data_type="STRING", is_optional=True
        ),
    ]
    actions = [
        wire.AgvAction(
            action_type="pick",
            action_scopes=["NODE"],
            action_parameters=load_params,
            action_description="load a consignment of boxes at a warehouse dock",
        ),
        wire.AgvAction(
            action_type="drop",
            action_scopes=["NODE"],
            action_parameters=load_params,
            action_description="unload a consignment at a community gate",
        ),
        wire.AgvAction(action_type="startCharging", action_scopes=["INSTANT", "NODE"]),
        wire.AgvAction(action_type="stopCharging", action_scopes=["INSTANT", "NODE"]),
        wire.AgvAction(action_type="startPause", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="stopPause", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="cancelOrder", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="stateRequest", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="factsheetRequest", action_scopes=["INSTANT"]),
        wire.AgvAction(
            action_type="initPosition",
            action_scopes=["INSTANT"],
            action_parameters=[
                wire.FactsheetActionParameter(key=k, value_data_type=t)
                for k, t in (
                    ("x", "NUMBER"),
                    ("y", "NUMBER"),
                    ("theta", "NUMBER"),
                    ("mapId", "STRING"),
                    ("lastNodeId", "STRING"),
                )
            ],
        ),
    ]
    half_l, half_w = spec.length_m / 2, spec.width_m / 2
    return wire.Factsheet(
        **agv.header(header_id, now),
        type_specification=wire.TypeSpecification(
            series_name=spec.series_name,
            series_description="unmanned light delivery van for city streets",
            agv_kinematic="THREEWHEEL",
            agv_class="CARRIER",
            max_load_mass=spec.max_load_kg,
            localization_types=["NATURAL"],
            navigation_types=["VIRTUAL_LINE_GUIDED"],
        ),
        physical_parameters=wire.PhysicalParameters(
            speed_min=spec.min_speed_mps,
            speed_max=round(spec.max_speed_mps, 3),
            acceleration_max=spec.acceleration_mps2,
            deceleration_max=spec.deceleration_mps2,
            height_min=spec.height_m,
            height_max=spec.height_m,
            width=spec.width_m,
            length=spec.length_m,
        ),
        protocol_limits=wire.ProtocolLimits(
            max_string_lens=wire.MaxStringLens(id_len=128, load_id_len=128),
            max_array_lens=wire.MaxArrayLens(
                order_nodes=5000, order_edges=5000, node_actions=16, edge_actions=0
            ),
            timing=wire.Timing(
                min_order_interval=0.1,
                min_state_interval=0.1,
                default_state_interval=state_interval_s,
                visualization_interval=visualization_s,
            ),
        ),
        protocol_features=wire.ProtocolFeatures(
            optional_parameters=[
                wire.OptionalParameter(
                    parameter="order.nodes.nodePosition",
                    support="REQUIRED",
                    description="the van drives to node positions",
                ),
                wire.OptionalParameter(
                    parameter="order.nodes.nodePosition.allowedDeviationXY", support="SUPPORTED"
                ),
                wire.OptionalParameter(
                    parameter="order.edges.maxSpeed",
                    support="SUPPORTED",
                    description="the road's speed limit",
                ),
                wire.OptionalParameter(parameter="order.edges.length", support="SUPPORTED"),
            ],
            agv_actions=actions,
        ),
        agv_geometry=wire.AgvGeometry(
            envelopes2d=[
                wire.Envelope2d(
                    set="body",
                    polygon_points=[
                        wire.Point(x=x, y=y)
                        for x, y in (
                            (half_l, half_w),
                            (-half_l, half_w),
                            (-half_l, -half_w),
                            (half_l, -half_w),
                        )
                    ],
                )
            ]
        ),
        load_specification=wire.LoadSpecification(
            load_positions=[LOAD_POSITION],
            load_sets=[
                wire.LoadSet(
                    set_name="boxes",
                    load_type=LOAD_TYPE,
                    load_positions=[LOAD_POSITION],
                    max_weight=spec.max_load_kg,
                    pick_time=spec.pick_per_box_s,
                    drop_time=spec.drop_per_box_s,
                    description=(
                        f"standard boxes; pick/drop take {spec.per_stop_s:.0f} s per stop plus "
                        "pickTime/dropTime per box"
                    ),
                    max_boxes=spec.max_boxes,
                )
            ],
        ),
        vehicle_config=wire.VehicleConfig(
            versions=[wire.VersionInfo(key="softwareVersion", value="streetfleet-sim")]
        ),
    )
