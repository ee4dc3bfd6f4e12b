"""Protocol-neutral van trips, van state and the port through which missions drive vans.

A :class:`VanTrip` is what the service wants one van to do, in domain terms: a path through the
road graph (:class:`TripNode` stops joined by :class:`TripEdge` road segments) with load actions
at some nodes (:class:`Pick` at a warehouse dock, :class:`Drop` at a community gate,
:class:`Charge` at a charger). The first ``base_nodes`` nodes are released (the van may drive
them); the rest is the planned horizon. The VDA 5050 bridge turns a trip into an ``order`` in
``firmware_bridges/vda5050/translate.py`` (trip id = ``orderId``, node ids and edge ids as given,
sequence ids assigned by the bridge); the van's answers come back as a :class:`VanState` in
``VehicleStatus.extra["van"]`` and its factsheet as :class:`VanCapabilities` in
``VehicleStatus.extra["van_capabilities"]``.

Identifiers (trip, node, edge, action and load ids) use only ``A-Z a-z 0-9 _ - . :``, the
characters VDA 5050 recommends (section 6.1.2), so they survive every broker and vehicle.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from fleet.errors import ValidationError
from fleet.geo import LatLon
from fleet.vehicle import MissionProgress, MissionRunState

if TYPE_CHECKING:
    from fleet.roads import RoadNode, Route

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
"""Identifiers VDA 5050 accepts everywhere (section 6.1.2), at most 128 characters."""


def new_action_id() -> str:
    """A fresh unique action id."""
    return uuid.uuid4().hex


def check_id(value: str, field_name: str) -> str:
    """Return ``value`` if it is a valid identifier, else raise :class:`ValidationError`."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValidationError(
            f"{value!r} is not an identifier (1-128 of A-Z a-z 0-9 _ - . :)", field=field_name
        )
    return value


# --- trips -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pick:
    """Load a consignment onto the van at this node (a warehouse dock).

    ``load_id`` names the consignment (e.g. one community's share of a trip): it is how every box
    is traced from stock to its drop. The van takes ``per_stop + boxes * per_box`` seconds.
    """

    load_id: str
    boxes: int
    mass_kg: float
    sku: str = ""
    """Stock keeping unit of the boxes (``"masks"``, ``"mixed"`` for mixed consignments)."""
    action_id: str = field(default_factory=new_action_id)
    description: str = ""
    site: str = ""
    """The warehouse (or community) id of the station: the bridge sends its load and station
    type (``vda5050.sites``)."""

    def __post_init__(self) -> None:
        _check_load(self.load_id, self.boxes, self.mass_kg, self.action_id)


@dataclass(frozen=True, slots=True)
class Drop:
    """Unload a consignment (by ``load_id``) at this node (a community gate)."""

    load_id: str
    boxes: int
    mass_kg: float
    sku: str = ""
    action_id: str = field(default_factory=new_action_id)
    description: str = ""
    site: str = ""
    """The community (or, unloading at the dock, warehouse) id of the station."""

    def __post_init__(self) -> None:
        _check_load(self.load_id, self.boxes, self.mass_kg, self.action_id)


@dataclass(frozen=True, slots=True)
class Charge:
    """Start charging at this node (the van must stand at a charger, e.g. a warehouse dock)."""

    action_id: str = field(default_factory=new_action_id)

    def __post_init__(self) -> None:
        check_id(self.action_id, "action_id")


StopAction = Pick | Drop | Charge
"""Something the van does when it reaches a node."""


def _check_load(load_id: str, boxes: int, mass_kg: float, action_id: str) -> None:
    check_id(load_id, "load_id")
    check_id(action_id, "action_id")
    if not isinstance(boxes, int) or boxes < 1:
        raise ValidationError(f"boxes must be a positive integer, not {boxes!r}", field="boxes")
    if not mass_kg >= 0:
        raise ValidationError(f"mass must be >= 0 kg, not {mass_kg!r}", field="mass_kg")


@dataclass(frozen=True, slots=True)
class TripNode:
    """A point of the road graph the van passes or stops at, with what to do there."""

    node_id: str
    position: LatLon
    actions: tuple[StopAction, ...] = ()
    name: str = ""
    """Human label (community gate, warehouse dock), sent as ``nodeDescription``."""
    allowed_deviation_m: float | None = None
    """How close the van must come for the node to count as reached (None: the van's own
    tolerance). A trip that starts where a van stopped after a cancel sets it large enough to
    cover the van's distance from the node (VDA 5050 6.6.3.1)."""

    def __post_init__(self) -> None:
        check_id(self.node_id, "node_id")
        if self.allowed_deviation_m is not None and not self.allowed_deviation_m >= 0:
            raise ValidationError("allowed deviation must be >= 0 m", field="allowed_deviation_m")


@dataclass(frozen=True, slots=True)
class TripEdge:
    """A road segment from one trip node to the next."""

    edge_id: str
    start_node_id: str
    end_node_id: str
    max_speed_mps: float | None = None
    """Speed limit on the segment (the road's limit); None: the van's own limit."""
    length_m: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        check_id(self.edge_id, "edge_id")
        if self.max_speed_mps is not None and not self.max_speed_mps > 0:
            raise ValidationError("max speed must be > 0 m/s", field="max_speed_mps")


@dataclass(frozen=True, slots=True)
class VanTrip:
    """A van's path with its load actions: an order in VDA 5050 terms.

    ``nodes[0]`` is where the trip starts (the van must already be there, within its allowed
    deviation); ``edges[i]`` joins ``nodes[i]`` to ``nodes[i + 1]``. The first ``base_nodes``
    nodes (and the edges between them) are released; ``None`` releases every node. A trip used
    as an *extension* (:meth:`VanControl.update_trip`) starts at the last released node of the
    trip so far, carries no action on that first node, and releases more nodes or changes the
    horizon.
    """

    trip_id: str
    nodes: tuple[TripNode, ...]
    edges: tuple[TripEdge, ...] = ()
    base_nodes: int | None = None

    def __post_init__(self) -> None:
        check_id(self.trip_id, "trip_id")
        if not self.nodes:
            raise ValidationError("a trip needs at least one node", field="nodes")
        if len(self.edges) != len(self.nodes) - 1:
            raise ValidationError(
                f"{len(self.nodes)} nodes need {len(self.nodes) - 1} edges, not {len(self.edges)}",
                field="edges",
            )
        for i, edge in enumerate(self.edges):
            a, b = self.nodes[i].node_id, self.nodes[i + 1].node_id
            if (edge.start_node_id, edge.end_node_id) != (a, b):
                raise ValidationError(
                    f"edge {edge.edge_id} joins {edge.start_node_id}->{edge.end_node_id}, "
                    f"expected {a}->{b}",
                    field="edges",
                )
        if self.base_nodes is not None and not 1 <= self.base_nodes <= len(self.nodes):
            raise ValidationError(
                f"base_nodes must be 1..{len(self.nodes)}, not {self.base_nodes}",
                field="base_nodes",
            )
        seen: set[str] = set()
        for _, action in self.actions():
            if action.action_id in seen:
                raise ValidationError(
                    f"action id {action.action_id} is used twice", field="action_id"
                )
            seen.add(action.action_id)

    @property
    def released(self) -> int:
        """Number of released nodes."""
        return len(self.nodes) if self.base_nodes is None else self.base_nodes

    @property
    def decision_node(self) -> TripNode:
        """The last released node: the van stops there unless the trip is extended."""
        return self.nodes[self.released - 1]

    def actions(self) -> Iterator[tuple[TripNode, StopAction]]:
        """Every action with its node, in trip order."""
        for node in self.nodes:
            for action in node.actions:
                yield node, action

    @property
    def boxes(self) -> int:
        """Boxes dropped on this trip."""
        return sum(a.boxes for _, a in self.actions() if isinstance(a, Drop))


def trip_from_routes(
    trip_id: str,
    routes: Sequence[Route],
    stop_actions: Sequence[Sequence[StopAction]],
    *,
    base_nodes: int | None = None,
    max_speed_mps: float | None = None,
    start_deviation_m: float | None = None,
) -> VanTrip:
    """A trip along road routes (:meth:`fleet.roads.RoadNetwork.shortest_path` results).

    ``routes[i]`` leads from stop *i* to stop *i + 1*; ``stop_actions[i]`` are the actions at
    stop *i* (``len(routes) + 1`` entries: the start, then each route's end). Every road node
    on the way becomes a trip node (id = road node id, named after its dock or gate), every road
    edge a trip edge with the road's speed limit (capped at ``max_speed_mps``) and length.
    ``start_deviation_m`` lets a van that stopped off the start node (after a cancel) take the
    trip from where it stands (VDA 5050 6.6.3.1).
    """
    if len(stop_actions) != len(routes) + 1:
        raise ValidationError(
            f"{len(routes)} routes need {len(routes) + 1} stop action lists, "
            f"not {len(stop_actions)}",
            field="stop_actions",
        )
    if not routes or not routes[0].nodes:
        raise ValidationError("a trip needs at least one route", field="routes")
    nodes: list[TripNode] = []
    edges: list[TripEdge] = []
    for i, route in enumerate(routes):
        if nodes and route.nodes[0].id != nodes[-1].node_id:
            raise ValidationError(
                f"route {i} starts at {route.nodes[0].id}, not at {nodes[-1].node_id}",
                field="routes",
            )
        if not nodes:
            first = _trip_node(route.nodes[0], stop_actions[0])
            if start_deviation_m is not None:
                first = TripNode(
                    first.node_id, first.position, first.actions, first.name, start_deviation_m
                )
            nodes.append(first)
        for j, edge in enumerate(route.edges):
            end = route.nodes[j + 1]
            last = j == len(route.edges) - 1
            nodes.append(_trip_node(end, stop_actions[i + 1] if last else ()))
            speed = edge.speed_limit_kmh / 3.6
            edges.append(
                TripEdge(
                    edge.id,
                    route.nodes[j].id,
                    end.id,
                    max_speed_mps=min(speed, max_speed_mps) if max_speed_mps else speed,
                    length_m=round(edge.length_m, 3),
                )
            )
        if not route.edges and stop_actions[i + 1]:
            # a zero-length route: the next stop is this very node
            prev = nodes[-1]
            nodes[-1] = TripNode(
                prev.node_id,
                prev.position,
                (*prev.actions, *stop_actions[i + 1]),
                prev.name,
                prev.allowed_deviation_m,
            )
    return VanTrip(trip_id, tuple(nodes), tuple(edges), base_nodes=base_nodes)


def _trip_node(node: RoadNode, actions: Sequence[StopAction]) -> TripNode:
    return TripNode(node.id, node.latlon, tuple(actions), name=", ".join(node.stops))


# --- what the van reports --------------------------------------------------------------------


class ActionStatus(StrEnum):
    """Life cycle of one action on the van (VDA 5050 ``actionStatus``)."""

    WAITING = "waiting"
    """Received; its node is not reached yet."""
    INITIALIZING = "initializing"
    """Triggered, preparing."""
    RUNNING = "running"
    """Running."""
    PAUSED = "paused"
    """Paused by a pause command or button."""
    FINISHED = "finished"
    """Done."""
    FAILED = "failed"
    """Could not be done (or cancelled)."""

    @property
    def ended(self) -> bool:
        return self in (ActionStatus.FINISHED, ActionStatus.FAILED)


class OperatingMode(StrEnum):
    """Who controls the van (VDA 5050 ``operatingMode``)."""

    AUTOMATIC = "automatic"
    """Fully under fleet control."""
    SEMIAUTOMATIC = "semiautomatic"
    """Fleet orders, speed from the vehicle's HMI."""
    MANUAL = "manual"
    """Driven by hand; takes no orders."""
    SERVICE = "service"
    """Being reconfigured; takes no orders."""
    TEACHIN = "teachin"
    """Being taught (mapping); takes no orders."""


class EStop(StrEnum):
    """Emergency stop state and how it must be acknowledged."""

    NONE = "none"
    """No emergency stop."""
    AUTOACK = "autoack"
    """Stopped by a bumper or protective field; clears itself."""
    MANUAL = "manual"
    """Must be acknowledged at the vehicle."""
    REMOTE = "remote"
    """Facility e-stop, acknowledged remotely."""


class FaultLevel(StrEnum):
    """How serious a van fault is."""

    WARNING = "warning"
    """The van can still work."""
    FATAL = "fatal"
    """The van needs a person."""


@dataclass(frozen=True, slots=True)
class VanFault:
    """An error the van reports (``errors[]``), e.g. an order it rejected."""

    type: str
    """VDA 5050 ``errorType`` (``validationError``, ``orderError``, ``noRouteError``, ...)."""
    level: FaultLevel
    description: str = ""
    hint: str = ""
    references: tuple[tuple[str, str], ...] = ()
    """``(referenceKey, referenceValue)`` pairs: ``orderId``, ``actionId``, ``nodeId``, ..."""

    def reference(self, key: str) -> str | None:
        """The value of reference ``key``, if any."""
        for k, v in self.references:
            if k == key:
                return v
        return None

    def __str__(self) -> str:
        return f"{self.type}: {self.description}" if self.description else self.type


@dataclass(frozen=True, slots=True)
class VanLoad:
    """A consignment on board."""

    load_id: str
    mass_kg: float | None = None
    boxes: int | None = None
    """Known when the consignment was loaded by one of this service's trips."""
    sku: str | None = None
    load_type: str = ""
    vehicle_load_id: str = ""
    """The id the van itself reports for it when that differs from ``load_id`` (a van that
    reads its own RFID or barcode ids): matched to the pick that loaded it."""


@dataclass(frozen=True, slots=True)
class ActionProgress:
    """Where one action stands."""

    action_id: str
    action_type: str
    status: ActionStatus
    result: str = ""
    error: str = ""
    """The van's own explanation of a failure: the error whose references name this action
    (``errorType: errorDescription``)."""

    @property
    def why(self) -> str:
        """What the van said about how it ended (its error, else its result)."""
        return self.error or self.result


@dataclass(frozen=True, slots=True)
class VanState:
    """Everything a van reports about its work, translated from its last state message."""

    trip_id: str
    """Current or last trip (``""``: none since start)."""
    trip_update: int
    """Last accepted update of that trip (0: the trip as first sent)."""
    last_node_id: str
    """Last node reached (``""``: none)."""
    remaining_nodes: tuple[str, ...]
    """Node ids still to traverse, released ones first."""
    released_remaining: int
    """How many of ``remaining_nodes`` are released."""
    actions: tuple[ActionProgress, ...]
    driving: bool
    paused: bool
    charging: bool
    battery_fraction: float
    operating_mode: OperatingMode
    e_stop: EStop = EStop.NONE
    field_violation: bool = False
    loads: tuple[VanLoad, ...] | None = None
    """``None`` when the van cannot sense its loads."""
    faults: tuple[VanFault, ...] = ()
    reach_m: float | None = None
    new_base_request: bool = False
    distance_since_last_node_m: float | None = None
    map_pose: tuple[float, float, float] | None = None
    """``(x, y, theta)`` in the operating area's map frame (metres, radians)."""
    map_id: str = ""
    reported_at: float | None = None
    """The van's own timestamp of the report (epoch seconds)."""

    @property
    def busy(self) -> bool:
        """Still driving the trip or running its actions (VDA 5050 figure 8, step 3)."""
        return bool(self.remaining_nodes) or any(not a.status.ended for a in self.actions)

    def action(self, action_id: str) -> ActionProgress | None:
        for a in self.actions:
            if a.action_id == action_id:
                return a
        return None

    def faults_about(self, key: str, value: str) -> tuple[VanFault, ...]:
        """The van's errors whose references name ``key`` = ``value`` (``nodeId``, ``edgeId``,
        ``actionId``, ``orderId``...)."""
        return tuple(f for f in self.faults if f.reference(key) == value)

    @property
    def boxes_on_board(self) -> int | None:
        """Boxes on board, when every load's box count is known."""
        if self.loads is None:
            return None
        total = 0
        for load in self.loads:
            if load.boxes is None:
                return None
            total += load.boxes
        return total


@dataclass(frozen=True, slots=True)
class VanCapabilities:
    """What the van's factsheet says it can do."""

    series_name: str
    max_load_kg: float
    max_boxes: int | None
    """Box capacity per trip, if the factsheet states it."""
    speed_max_mps: float
    acceleration_mps2: float | None = None
    deceleration_mps2: float | None = None
    node_actions: frozenset[str] = frozenset()
    """Action types usable on nodes (``pick``, ``drop``, ``startCharging``...)."""
    instant_actions: frozenset[str] = frozenset()
    """Action types usable as instant actions."""
    pick_time_per_box_s: float | None = None
    drop_time_per_box_s: float | None = None
    state_interval_s: float | None = None
    """Default interval between state reports."""
    length_m: float | None = None
    width_m: float | None = None
    height_m: float | None = None
    max_loads: int | None = None
    """Consignments (picks) per trip; None: not limited by load positions (a cargo space
    for boxes)."""
    load_types: frozenset[str] = frozenset()
    """Load types of the van's load sets (empty: it declares none)."""
    unsupported: tuple[str, ...] = ()
    """Why the service cannot give this van its work (missing pick/drop, the configured load
    type not among its load sets, required parameters it cannot fill); empty: it can."""
    unfit_sites: tuple[str, ...] = ()
    """Warehouse and community ids whose clearance the van exceeds."""
    from_factsheet: bool = True
    """False: no factsheet yet, every figure is the operator's setting or a default."""
    protocol_version: str = ""
    """The VDA 5050 version the van speaks (and the service speaks with it)."""


@dataclass(frozen=True, slots=True)
class TripResult:
    """How a trip ended."""

    trip_id: str
    actions: tuple[ActionProgress, ...]
    """Final progress of every action of the trip."""

    @property
    def failed(self) -> tuple[ActionProgress, ...]:
        return tuple(a for a in self.actions if a.status is ActionStatus.FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed


@runtime_checkable
class VanControl(Protocol):
    """Commands a mission may give one van.

    Each command returns when the van has confirmed it (its state echoes the trip, the instant
    action reports FINISHED) or raises a :class:`fleet.errors.VehicleError`:
    ``CommandRejected`` (the van refused; ``fields`` carry the VDA 5050 error type and
    references), ``CommandTimeout`` (no confirmation in time, although the command was re-sent
    meanwhile), ``LinkLost`` (the van said goodbye: link OFFLINE), or
    :class:`fleet.errors.ValidationError` for a trip that cannot be sent at all. A van whose
    link is LOST or UNKNOWN may be behind a broker or radio outage and keeps driving its
    released base, so commands keep trying until their timeout; watch ``LINK_LOST`` events to
    re-plan earlier.
    """

    vehicle_id: str

    @property
    def state(self) -> VanState | None:
        """The van's last reported state (None before its first state message)."""
        ...

    async def send_trip(self, trip: VanTrip) -> None:
        """Send a new trip; returns once the van has accepted it."""
        ...

    async def update_trip(self, extension: VanTrip) -> None:
        """Extend the current trip: release more nodes and/or replace the horizon.

        ``extension.trip_id`` is the current trip's id and ``extension.nodes[0]`` its last
        released node (without actions). Returns once the van has accepted the update.
        """
        ...

    async def cancel_trip(self) -> None:
        """Stop the van and drop the current trip (running loads finish first)."""
        ...

    async def pause(self) -> None:
        """Stop driving (loading and unloading go on); the trip stays."""
        ...

    async def resume(self) -> None:
        """Continue after :meth:`pause`."""
        ...

    async def start_charging(self) -> None:
        """Charge now (the van must stand at a charger)."""
        ...

    async def stop_charging(self) -> None:
        """Stop charging so that the van takes trips again."""
        ...

    async def request_state(self) -> VanState:
        """Ask for a fresh state report and return it."""
        ...

    async def request_factsheet(self) -> VanCapabilities:
        """Ask for the factsheet and return the capabilities in it."""
        ...

    async def wait_trip(self, trip_id: str, within: float | None) -> TripResult:
        """Wait until trip ``trip_id`` is done: every released node reached, no horizon left,
        every action ended. Raises ``LinkLost`` if the van goes OFFLINE meanwhile, ``Conflict``
        if the van is given another trip, ``CommandTimeout`` after ``within`` world seconds.
        """
        ...


def apply_trip_progress(progress: MissionProgress, state: VanState, total: int) -> None:
    """Write a van's trip progress into the mission progress the runs follow: ``total`` nodes,
    the current and last reached node, and the run state (no trip, paused, active, complete).
    The VDA 5050 bridge and the fake van both report through it."""
    remaining = len(state.remaining_nodes)
    progress.total = total
    progress.current = total - remaining if remaining else -1
    progress.reached = total - remaining - 1 if state.trip_id else -1
    if not state.trip_id:
        progress.state = MissionRunState.NO_MISSION
    elif state.paused and state.busy:
        progress.state = MissionRunState.PAUSED
    elif state.busy:
        progress.state = MissionRunState.ACTIVE
    else:
        progress.state = MissionRunState.COMPLETE
