"""The vehicle side of VDA 5050 2.1 for a simulated van: orders, instant actions, state.

:class:`VanAgv` owns what a real van's controller owns: the order it holds (node and edge
states, base and horizon), action states, loads, errors, battery, pose and pause state. It does
no I/O and reads no clock: the MQTT client feeds it payloads (:meth:`receive_order`,
:meth:`receive_instant_actions`), advances it with :meth:`tick` and publishes the messages it
builds (:meth:`state_message`, :meth:`visualization_message`, :meth:`factsheet_message`; written
by :mod:`sim.van.messages`). It drives along the road shapes of its own map
(:mod:`sim.van.route`) with the physics of :mod:`sim.van.model`.
``dirty`` tells the client that something changed that the specification wants reported at once
(section 6.10: order received, node passed, loads, errors, driving, action states).

Order acceptance follows figure 8 of the specification: the checks that reject malformed orders
(``validationError``) and orders the van cannot execute now (``orderError``) are in
:mod:`sim.van.acceptance`; the van then decides how an order joins what it holds:

- same ``orderId``: a lower ``orderUpdateId`` -> ``orderUpdateError``; the same one -> ignored
  (the state is re-sent so that master control sees the echo); a higher one is accepted only if
  its first node is the current decision point (while the van is busy) or the last node
  reached (when it is done) -> else ``orderUpdateError``;
- new ``orderId`` while busy: accepted only as a stitching order starting at the decision point
  -> else ``orderUpdateError``; while idle: its first node must be within reach of the van's
  position -> else ``noRouteError``.

The van speaks one protocol version (``version``: ``2.1.0``, or ``2.0.0`` to act as an older
vehicle): it writes its messages in that version's shape and rejects an order or instant
actions whose header announces another (``validationError``, as vehicles do).

Rejection errors carry references ``headerId``, ``topic``, ``orderId``, ``orderUpdateId`` (section
7.1) and stay in the state until an order is accepted. Node actions follow figure 17: actions on
a node start in list order, a HARD action runs alone, the van drives on once no SOFT or HARD
action of the node is left. A pause stops driving only (loading goes on, so no action is ever
reported PAUSED, a status the 2.1.0 state schema lacks). ``cancelOrder`` brakes to a stop where
the van is, fails waiting actions and lets a running load or unload finish.

Why this module is longer than the project's 600-line guide: what is left here is the one state
machine of the controller (the order's node and edge states, action states, cargo, pose,
battery, pause and cancel), and every method left changes that state; receiving an order,
running an instant action and a physics step touch the same fields. The parts that only read it
have their own modules (acceptance checks, messages, route geometry, physics), so no other module
writes the controller's private state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.wire import ActionStatus, BlockingType, ErrorLevel
from sim.van import messages
from sim.van.acceptance import (
    Rejection,
    check_executable,
    check_ready,
    check_structure,
    loose_header,
    loose_refs,
)
from sim.van.messages import error
from sim.van.model import Battery, Pose, VanSpec, battery_step, brake, drive, wrap_angle
from sim.van.route import XY, edge_points, node_pass_speed, route_end_speed

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
LOW_BATTERY = 0.10
"""State of charge under which the van warns."""
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
    version: str = wire.PROTOCOL_VERSION
    """The VDA 5050 version the van speaks (an entry of ``wire.SUPPORTED_VERSIONS``)."""

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
            head = loose_header(payload)
            if not self._mine(head.get("manufacturer"), head.get("serialNumber"), loose=True):
                return
            refs = [("topic", "order"), *loose_refs(head)]
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
            self._check_version(order.version)
            check_structure(order)
            if order.order_id == self.order_id and order.order_update_id <= self.order_update_id:
                self._repeated(order)
                return
            check_executable(self, order)
            check_ready(self)
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

    def _check_version(self, version: str) -> None:
        if wire.speaks(version) != self.version:
            raise Rejection(
                "validationError",
                f"message version {version} is not the van's protocol version {self.version}",
                [("version", version)],
            )

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
        errors.append(error(rej.error_type, rej.description, rej.refs))
        rejections = [e for e in errors if e.error_type in wire.ORDER_REJECTION_ERRORS]
        for old in rejections[:-MAX_REJECTION_ERRORS]:
            errors.remove(old)
        self.errors = errors
        self.dirty = True

    @property
    def base_end(self) -> tuple[str, int] | None:
        """(node id, sequence id) of the decision point: the last released node."""
        return self._base_end

    @property
    def cancelling(self) -> bool:
        """A ``cancelOrder`` is running (the van brakes or finishes a load)."""
        return self._cancel_id is not None

    def in_base(self, run: ActionRun) -> bool:
        """Whether an order action belongs to the released base."""
        end = self._base_end
        return end is not None and run.node_seq is not None and run.node_seq <= end[1]

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
            head = loose_header(payload)
            if not self._mine(head.get("manufacturer"), head.get("serialNumber"), loose=True):
                return
            refs = [("topic", "instantActions")]
            if "headerId" in head:
                refs.insert(0, ("headerId", str(head["headerId"])))
            self.errors.append(error("validationError", exc.reason, refs))
            self.dirty = True
            return
        assert isinstance(msg, wire.InstantActions)
        if not self._mine(msg.manufacturer, msg.serial_number):
            return
        try:
            self._check_version(msg.version)
        except Rejection as rej:
            refs = [("headerId", str(msg.header_id)), ("topic", "instantActions")]
            self.errors.append(error(rej.error_type, rej.description, refs))
            self.dirty = True
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
            self.errors.append(error("unsupportedActionError", run.result, refs))

    def _cancel(self, run: ActionRun) -> None:
        if self._cancelled or not self.busy:
            run.status = ActionStatus.FAILED
            run.result = "no order to cancel"
            self.errors.append(
                error(
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
                error("chargingError", run.result, [("actionId", run.action.action_id)])
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
            self.errors.append(error("initPositionError", run.result, [("actionId", a.action_id)]))
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

    def _drive(self, dt: float) -> None:
        edge, node = self.edge_states[0], self.node_states[0]
        pos = node.node_position
        assert pos is not None
        if self._route_seq != edge.sequence_id or not self._route:
            self._route = edge_points(self.paths, edge, self._last_xy, pos)
            self._route_seq = edge.sequence_id
        limit = min(self.spec.max_speed_mps, edge.max_speed or math.inf)
        here = (self.pose.x, self.pose.y)
        pass_speed = node_pass_speed(
            node, self.edge_states, self.node_states, self._route, here, self.spec, self.paths
        )
        end_speed = route_end_speed(self._route, here, self.spec, limit, pass_speed)
        self.pose, reached = drive(self.pose, self._route[0], dt, self.spec, limit, end_speed)
        if reached:
            self._route.pop(0)
            if not self._route:
                self.edge_states.pop(0)
                self._traverse_node()

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
                    error(
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
                error(
                    "batteryLow", f"battery at {soc:.0%}", hint="return to the warehouse and charge"
                )
            )
            self.dirty = True
        if soc_before > 0 >= soc:
            self.errors.append(
                error(
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

    @property
    def new_base_request(self) -> bool:
        """Only the decision point is left of the base while a horizon waits (section 6.10)."""
        released = sum(1 for n in self.node_states if n.released)
        return released <= 1 and any(not n.released for n in self.node_states)

    @property
    def distance_since_last_node(self) -> float:
        """Metres driven since the last node was passed."""
        return self.pose.odometer_m - self._odometer_at_node

    def header(self, header_id: int, now: float) -> dict[str, Any]:
        return messages.header(self, header_id, now)

    def state_message(self, header_id: int, now: float) -> wire.State:
        """The state as it is now."""
        return messages.state_message(self, header_id, now)

    def visualization_message(self, header_id: int, now: float) -> wire.Visualization:
        return messages.visualization_message(self, header_id, now)

    def connection_message(
        self, header_id: int, now: float, state: wire.ConnectionState
    ) -> wire.Connection:
        return messages.connection_message(self, header_id, now, state)

    def factsheet_message(
        self, header_id: int, now: float, state_interval_s: float, visualization_s: float | None
    ) -> wire.Factsheet:
        return messages.factsheet(self, header_id, now, state_interval_s, visualization_s)
