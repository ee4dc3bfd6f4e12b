"""VDA 5050 wire messages <-> streetfleet domain types, at the edge of the bridge.

Positions: VDA 5050 positions are map coordinates (x, y in metres, theta in radians counter-
clockwise from the map's x axis), not WGS84. Each operating area's map frame is the world's
local tangent plane (:class:`fleet.geo.LocalFrame`: x east, y north, origin at the area's
reference point) with ``mapId`` = ``World.map_id``. A compass heading (degrees clockwise from
north) is ``90 - degrees(theta)``.

Trips: a :class:`fleet.van.VanTrip` becomes an ``order``: trip id -> ``orderId``, node and edge ids
as given, ``sequenceId`` 0, 1, 2, ... across nodes and edges (continuing from the stitching node
in an update), the first ``base_nodes`` nodes released. :class:`~fleet.van.Pick` and
:class:`~fleet.van.Drop` become ``pick``/``drop`` node actions (HARD: the van stands and does
nothing else) with parameters ``loadId``, ``loadType`` ``BOX``, ``boxes``, ``weight`` (kg),
``sku`` and ``stationType`` (``dock``/``gate``), as :mod:`~firmware_bridges.vda5050.handling`
fits them to the site's settings and to what the van declares; :class:`~fleet.van.Charge`
becomes ``startCharging``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.handling import LoadHandling
from fleet.geo import LatLon, LocalFrame, Position
from fleet.van import (
    ActionProgress,
    ActionStatus,
    Charge,
    EStop,
    FaultLevel,
    OperatingMode,
    Pick,
    StopAction,
    TripNode,
    VanCapabilities,
    VanFault,
    VanLoad,
    VanState,
    VanTrip,
    apply_trip_progress,
)
from fleet.vehicle import FlightMode, LandedState, VehicleStatus

LOAD_TYPE = "BOX"
"""``loadType`` of every consignment."""


# --- positions -------------------------------------------------------------------------------


def theta_to_heading(theta: float) -> float:
    """Map orientation (radians CCW from east) to compass heading (degrees CW from north)."""
    return (90.0 - math.degrees(theta)) % 360.0


def heading_to_theta(heading_deg: float) -> float:
    """Compass heading to map orientation in [-pi, pi]."""
    t = math.radians(90.0 - heading_deg)
    return math.atan2(math.sin(t), math.cos(t))


def to_map(frame: LocalFrame, p: LatLon) -> tuple[float, float]:
    """A WGS84 point in the map frame."""
    return frame.to_xy(p.lat, p.lon)


def to_position(frame: LocalFrame, x: float, y: float) -> Position:
    """A map point as a WGS84 position on the ground."""
    lat, lon = frame.to_latlon(x, y)
    return Position(lat, lon)


# --- trips to orders -------------------------------------------------------------------------


_DEFAULT_HANDLING = LoadHandling()


def action_to_wire(
    action: StopAction,
    handling: LoadHandling | None = None,
    declared: Mapping[str, wire.AgvAction] | None = None,
) -> wire.Action:
    """A domain stop action as a node action; ``declared`` are the van's factsheet actions by
    type (pick/drop parameters are fitted to them)."""
    if isinstance(action, Charge):
        return wire.action("startCharging", action.action_id, wire.BlockingType.HARD)
    kind = "pick" if isinstance(action, Pick) else "drop"
    params = (handling or _DEFAULT_HANDLING).params(action, (declared or {}).get(kind))
    return wire.action(
        kind, action.action_id, wire.BlockingType.HARD, action.description or None, **params
    )


def trip_to_order(
    trip: VanTrip,
    header: Mapping[str, Any],
    frame: LocalFrame,
    map_id: str,
    *,
    update_id: int = 0,
    first_sequence_id: int = 0,
    handling: LoadHandling | None = None,
    declared: Mapping[str, wire.AgvAction] | None = None,
) -> wire.Order:
    """The order (or order update, with ``update_id`` > 0 and the stitching node's sequence id
    as ``first_sequence_id``) that carries ``trip``."""
    released = trip.released
    nodes = []
    for i, node in enumerate(trip.nodes):
        seq = first_sequence_id + 2 * i
        nodes.append(_node(node, frame, map_id, seq, i < released, handling, declared))
    edges = []
    for i, edge in enumerate(trip.edges):
        edges.append(
            wire.Edge(
                edge_id=edge.edge_id,
                sequence_id=first_sequence_id + 2 * i + 1,
                released=i + 1 < released,
                start_node_id=edge.start_node_id,
                end_node_id=edge.end_node_id,
                actions=[],
                edge_description=edge.name or None,
                max_speed=edge.max_speed_mps,
                length=edge.length_m,
            )
        )
    return wire.Order(
        **header, order_id=trip.trip_id, order_update_id=update_id, nodes=nodes, edges=edges
    )


def _node(
    node: TripNode,
    frame: LocalFrame,
    map_id: str,
    seq: int,
    released: bool,
    handling: LoadHandling | None,
    declared: Mapping[str, wire.AgvAction] | None,
) -> wire.Node:
    x, y = to_map(frame, node.position)
    return wire.Node(
        node_id=node.node_id,
        sequence_id=seq,
        released=released,
        actions=[action_to_wire(a, handling, declared) for a in node.actions],
        node_description=node.name or None,
        node_position=wire.NodePosition(
            x=round(x, 3),
            y=round(y, 3),
            map_id=map_id,
            allowed_deviation_xy=node.allowed_deviation_m,
        ),
    )


# --- state to domain -------------------------------------------------------------------------

_STATUS = {s: ActionStatus(s.value.lower()) for s in wire.ActionStatus}
_MODE = {m: OperatingMode(m.value.lower()) for m in wire.OperatingMode}
_ESTOP = {e: EStop(e.value.lower()) for e in wire.EStop}
_LEVEL = {wire.ErrorLevel.WARNING: FaultLevel.WARNING, wire.ErrorLevel.FATAL: FaultLevel.FATAL}


def fault(error: wire.Error) -> VanFault:
    """A wire error as a domain fault."""
    return VanFault(
        type=error.error_type,
        level=_LEVEL[error.error_level],
        description=error.error_description or "",
        hint=error.error_hint or "",
        references=tuple(
            (r.reference_key, r.reference_value) for r in error.error_references or ()
        ),
    )


def state_to_domain(
    msg: wire.State,
    picks: Mapping[str, Pick] | None = None,
    reported_at: float | None = None,
    load_ids: Mapping[str, str] | None = None,
    explained: Mapping[str, str] | None = None,
) -> VanState:
    """A state message as a :class:`VanState`; ``picks`` (pick actions this service sent, by
    load id) supply box counts and SKUs of the loads on board; ``load_ids`` maps the ids a van
    reports for its loads to the consignments they are (its own RFID ids, matched by the
    bridge); ``explained`` holds, by action id, errors seen earlier that named a failed action
    (a van may drop an error from later states)."""
    picks = picks or {}
    load_ids = load_ids or {}
    loads = None
    if msg.loads is not None:
        loads = tuple(_load(load, picks, load_ids) for load in msg.loads)
    errors = tuple(fault(e) for e in msg.errors)
    pos = msg.agv_position
    return VanState(
        trip_id=msg.order_id,
        trip_update=msg.order_update_id,
        last_node_id=msg.last_node_id,
        remaining_nodes=tuple(n.node_id for n in msg.node_states),
        released_remaining=sum(1 for n in msg.node_states if n.released),
        actions=tuple(
            ActionProgress(
                action_id=a.action_id,
                action_type=a.action_type or "",
                status=_STATUS[a.action_status],
                result=a.result_description or "",
                error=_explain(a, errors, explained),
            )
            for a in msg.action_states
        ),
        driving=msg.driving,
        paused=bool(msg.paused),
        charging=msg.battery_state.charging,
        battery_fraction=max(0.0, min(1.0, msg.battery_state.battery_charge / 100.0)),
        operating_mode=_MODE[msg.operating_mode],
        e_stop=_ESTOP[msg.safety_state.e_stop],
        field_violation=msg.safety_state.field_violation,
        loads=loads,
        faults=errors,
        reach_m=msg.battery_state.reach,
        new_base_request=bool(msg.new_base_request),
        distance_since_last_node_m=msg.distance_since_last_node,
        map_pose=(pos.x, pos.y, pos.theta) if pos is not None else None,
        map_id=pos.map_id if pos is not None else "",
        reported_at=reported_at,
    )


def _explain(
    a: wire.ActionState, errors: tuple[VanFault, ...], explained: Mapping[str, str] | None
) -> str:
    """The error naming a failed action (``actionId`` reference), in the van's own words."""
    if a.action_status is not wire.ActionStatus.FAILED:
        return ""
    for f in errors:
        if f.reference("actionId") == a.action_id:
            return str(f)
    return (explained or {}).get(a.action_id, "")


def _load(load: wire.Load, picks: Mapping[str, Pick], load_ids: Mapping[str, str]) -> VanLoad:
    own = load.load_id or ""
    ours = own if own in picks else load_ids.get(own, own)
    pick = picks.get(ours)
    return VanLoad(
        load_id=ours,
        mass_kg=load.weight,
        boxes=pick.boxes if pick is not None else None,
        sku=pick.sku if pick is not None else None,
        load_type=load.load_type or "",
        vehicle_load_id=own if ours != own else "",
    )


def flight_mode(state: VanState) -> FlightMode:
    """The protocol-neutral mode of a van: MISSION while it works a trip, HOLD when paused,
    READY when it waits for work in automatic mode, MANUAL otherwise."""
    if state.operating_mode not in (OperatingMode.AUTOMATIC, OperatingMode.SEMIAUTOMATIC):
        return FlightMode.MANUAL
    if state.paused:
        return FlightMode.HOLD
    return FlightMode.MISSION if state.busy else FlightMode.READY


def _not_ready(state: VanState) -> tuple[str, ...]:
    """Why a van cannot take a trip, from its own state (empty when it can)."""
    reasons = []
    if state.operating_mode not in (OperatingMode.AUTOMATIC, OperatingMode.SEMIAUTOMATIC):
        reasons.append(f"operating mode {state.operating_mode}")
    if state.e_stop is not EStop.NONE:
        reasons.append(f"emergency stop {state.e_stop}")
    reasons.extend(
        f"fatal error: {f.description or f.type}"
        for f in state.faults
        if f.level is FaultLevel.FATAL
    )
    return tuple(reasons)


def apply_state(
    status: VehicleStatus,
    state: VanState,
    msg: wire.State,
    frame: LocalFrame | None,
    map_id: str | None,
    trip_nodes: int | None = None,
    *,
    position: bool = True,
) -> None:
    """Write a van's state into its live status, in place (the registry's hot path).

    ``trip_nodes`` is the node count of the current trip when this service sent it; mission
    progress indices count nodes from the trip's start. ``position=False`` keeps the position
    shown (a visualization newer than this state has moved it on).
    """
    pos = msg.agv_position
    on_map = pos is not None and (map_id is None or pos.map_id == map_id)
    if position and pos is not None and frame is not None and on_map:
        status.position = to_position(frame, pos.x, pos.y)
        status.heading_deg = theta_to_heading(pos.theta)
    if position and msg.velocity is not None:
        status.ground_speed_mps = math.hypot(msg.velocity.vx or 0.0, msg.velocity.vy or 0.0)
    status.climb_rate_mps = 0.0
    status.battery_fraction = state.battery_fraction
    status.battery_voltage = msg.battery_state.battery_voltage
    status.mode = flight_mode(state)
    status.landed = LandedState.ON_GROUND
    status.ready_to_arm = (
        state.operating_mode in (OperatingMode.AUTOMATIC, OperatingMode.SEMIAUTOMATIC)
        and state.e_stop is EStop.NONE
        and not any(f.level is FaultLevel.FATAL for f in state.faults)
    )
    status.armed = status.ready_to_arm
    status.ready_for_mission = status.ready_to_arm
    status.not_ready = _not_ready(state)
    status.errors = tuple(str(f) for f in state.faults)
    remaining = len(state.remaining_nodes)
    total = trip_nodes if trip_nodes is not None else remaining + (1 if state.last_node_id else 0)
    apply_trip_progress(status.mission, state, total)
    status.extra["van"] = state


# --- factsheet -------------------------------------------------------------------------------


def capabilities(
    fs: wire.Factsheet,
    handling: LoadHandling | None = None,
    vehicle_id: str = "",
    version: str = "",
) -> VanCapabilities:
    """What a factsheet says the van can do, under the service's load-handling settings."""
    return (handling or _DEFAULT_HANDLING).capabilities(fs, vehicle_id, version or fs.version)
