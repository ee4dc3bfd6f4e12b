"""VDA 5050 2.1 and 2.0 messages as they travel on MQTT: models, enums, topics, timestamps, QoS.

Pydantic models mirror the official 2.1.0 JSON schemas (``order``, ``instantActions``,
``state``, ``visualization``, ``connection``, ``factsheet``): Python names in snake_case, JSON
names in camelCase as the specification spells them. Parsing ignores unknown fields (the JSON
structure may be extended) and rejects wrong types and missing mandatory fields; serialising
leaves unset optional fields out.

Versions (:data:`SUPPORTED_VERSIONS`): the models are 2.1.0; :func:`encode` writes a message in
the shape of 2.0.0 or 2.1.0 (:data:`V2_0_CHANGES` lists every difference of the official
schemas that matters to a sender), :func:`parse` reads both (2.0.0 spellings are normalised to
the 2.1.0 ones), and :func:`speaks` says which shape to use with a peer that announces a version
in its headers (``None``: another major version, which this side does not speak).

This is a wire module: the simulated van imports it as a real van shares the protocol
definitions; nothing here does I/O or knows the domain.

Topics are ``[{prefix}/]{interfaceName}/v2/{manufacturer}/{serialNumber}/{topic}``: the
interface name defaults to ``uagv`` (section 6.3); the optional prefix isolates a deployment or a
test on a shared broker.

Why this module is longer than the project's 600-line guide: it is a flat transcription of the six
official schemas, some seventy small models in the schemas' order, meant to be read side by side
with them (and, at its end, the few rules that write and read the 2.0.0 shape); split in pieces
it would only add imports between the messages that share their parts (``Action``,
``NodePosition``, ``AgvPosition``, ``Error``, the header).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_camel

PROTOCOL_VERSION = "2.1.0"
"""The newest protocol version this side speaks (the default shape and header ``version``)."""
V2_0 = "2.0.0"
"""The older minor version this side also speaks."""
SUPPORTED_VERSIONS = (V2_0, PROTOCOL_VERSION)
"""Message shapes :func:`encode` writes and :func:`parse` reads."""
V2_0_CHANGES = (
    "order: nodes[].nodePosition.allowedDeviationXy (2.1.0: allowedDeviationXY)",
    "order: edges[] have no orientationType and no corridor",
    "order, instantActions: an action parameter value is no JSON object",
    "instantActions: the official schema names an action's type actionName (its text and "
    "implementations: actionType); both are written",
    "state: no maps, no errors[].errorHint; batteryHealth and reach are integers; "
    "nodeStates[].nodePosition needs theta",
    "factsheet: loadSets[].maxWeigth (sic; 2.1.0: maxWeight); no vehicleConfig",
)
"""How 2.0.0 messages differ from 2.1.0 ones (the official schemas of both releases)."""
MAJOR_VERSION = "v2"
"""Topic level for the major version."""
DEFAULT_INTERFACE = "uagv"
"""Default interface name (first topic level)."""

QOS = {
    "order": 0,
    "instantActions": 0,
    "state": 0,
    "visualization": 0,
    "factsheet": 0,
    "connection": 1,
}
"""QoS per topic (section 6.2): best effort except ``connection``."""
RETAINED = frozenset({"connection", "factsheet"})
"""Topics whose messages are sent with the retained flag (sections 6.14, 6.15)."""
SUBTOPICS = ("order", "instantActions", "state", "visualization", "connection", "factsheet")
"""Every topic of the protocol."""

ORDER_REJECTION_ERRORS = frozenset(
    {"validationError", "orderError", "orderUpdateError", "noRouteError"}
)
"""Error types a vehicle reports when it rejects an order (section 6.6.4, figure 8)."""
NO_ORDER_TO_CANCEL = "noOrderToCancel"
"""Error type of a ``cancelOrder`` without an order (section 6.6.3.2)."""


# --- timestamps ------------------------------------------------------------------------------


def format_timestamp(epoch_s: float) -> str:
    """ISO 8601 UTC with hundredths, as the specification writes it: 2017-04-15T11:40:03.12Z."""
    dt = datetime.fromtimestamp(epoch_s, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 10000:02d}Z"


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp (``Z`` or an offset; naive means UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# --- topics ----------------------------------------------------------------------------------


def topic_base(prefix: str, interface: str, manufacturer: str, serial: str) -> str:
    """``[prefix/]interface/v2/manufacturer/serial`` (wildcards allowed for subscriptions)."""
    root = f"{interface}/{MAJOR_VERSION}/{manufacturer}/{serial}"
    return f"{prefix.strip('/')}/{root}" if prefix.strip("/") else root


def topic(prefix: str, interface: str, manufacturer: str, serial: str, subtopic: str) -> str:
    """Full topic of one message kind for one vehicle."""
    return f"{topic_base(prefix, interface, manufacturer, serial)}/{subtopic}"


def split_topic(prefix: str, interface: str, name: str) -> tuple[str, str, str] | None:
    """``(manufacturer, serial, subtopic)`` of a topic under ``prefix``/``interface``, or None."""
    root = topic_base(prefix, interface, "", "").removesuffix("//")
    if not name.startswith(root + "/"):
        return None
    parts = name[len(root) + 1 :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


# --- enums -----------------------------------------------------------------------------------


class BlockingType(StrEnum):
    """What an action allows while it runs (section 6.12)."""

    NONE = "NONE"
    """Driving and other actions allowed."""
    SOFT = "SOFT"
    """Other actions allowed, no driving."""
    HARD = "HARD"
    """Nothing else, no driving."""


class ActionStatus(StrEnum):
    """``actionStatus`` (section 6.11)."""

    WAITING = "WAITING"
    """Received, not yet triggered."""
    INITIALIZING = "INITIALIZING"
    """Preparing."""
    RUNNING = "RUNNING"
    """Running."""
    PAUSED = "PAUSED"
    """Paused (in the spec text; the 2.1.0 state schema omits it, so our van never sends it)."""
    FINISHED = "FINISHED"
    """Done."""
    FAILED = "FAILED"
    """Not done."""


class OperatingMode(StrEnum):
    """``operatingMode`` (table 1)."""

    AUTOMATIC = "AUTOMATIC"
    """Full master control."""
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    """Master control; speed from the HMI."""
    MANUAL = "MANUAL"
    """HMI control."""
    SERVICE = "SERVICE"
    """Being reconfigured."""
    TEACHIN = "TEACHIN"
    """Being taught."""


class EStop(StrEnum):
    """``safetyState.eStop``."""

    AUTOACK = "AUTOACK"
    """Auto-acknowledgeable e-stop active."""
    MANUAL = "MANUAL"
    """Acknowledge at the vehicle."""
    REMOTE = "REMOTE"
    """Facility e-stop, acknowledge remotely."""
    NONE = "NONE"
    """No e-stop."""


class ErrorLevel(StrEnum):
    """``errorLevel``."""

    WARNING = "WARNING"
    """Vehicle ready to work."""
    FATAL = "FATAL"
    """User intervention required."""


class InfoLevel(StrEnum):
    """``infoLevel``."""

    INFO = "INFO"
    """For visualisation."""
    DEBUG = "DEBUG"
    """For debugging."""


class ConnectionState(StrEnum):
    """``connectionState`` (section 6.14)."""

    ONLINE = "ONLINE"
    """Connected to the broker."""
    OFFLINE = "OFFLINE"
    """Disconnected in a coordinated way."""
    CONNECTIONBROKEN = "CONNECTIONBROKEN"
    """Connection ended unexpectedly (the last will)."""


class MapStatus(StrEnum):
    """``maps[].mapStatus``."""

    ENABLED = "ENABLED"
    """In use."""
    DISABLED = "DISABLED"
    """Stored, not in use."""


# --- base ------------------------------------------------------------------------------------


class Wire(BaseModel):
    """Base of every wire model: camelCase JSON names, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
        allow_inf_nan=False,  # section 6.1.4: NaN and infinity are not JSON numbers here
    )

    def to_json(self) -> bytes:
        """Serialise with JSON names, unset optional fields left out."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


ParamValue = bool | int | float | str | list[Any] | dict[str, Any]
"""An action parameter value: any JSON value except null."""

Uint32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
"""uint32 fields (header, sequence and update ids)."""


class Header(Wire):
    """Fields every message starts with (section 6.4)."""

    header_id: Uint32
    timestamp: str
    version: str
    manufacturer: str
    serial_number: str


# --- order -----------------------------------------------------------------------------------


class ActionParameter(Wire):
    """One ``key``/``value`` pair of an action."""

    key: str
    value: ParamValue


class Action(Wire):
    """An action on a node, an edge or in ``instantActions``."""

    action_type: str
    action_id: str
    blocking_type: BlockingType
    action_description: str | None = None
    action_parameters: list[ActionParameter] | None = None

    def param(self, key: str) -> ParamValue | None:
        """The value of parameter ``key`` (None if absent)."""
        for p in self.action_parameters or ():
            if p.key == key:
                return p.value
        return None


class NodePosition(Wire):
    """A node's position on a map (metres, radians)."""

    x: float
    y: float
    map_id: str
    theta: float | None = Field(None, ge=-math.pi - 1e-9, le=math.pi + 1e-9)
    allowed_deviation_xy: float | None = Field(None, ge=0, alias="allowedDeviationXY")
    allowed_deviation_theta: float | None = None
    map_description: str | None = None


class Node(Wire):
    """An order node."""

    node_id: str
    sequence_id: Uint32
    released: bool
    actions: list[Action]
    node_description: str | None = None
    node_position: NodePosition | None = None


class ControlPoint(Wire):
    """A NURBS control point."""

    x: float
    y: float
    weight: float | None = None


class Trajectory(Wire):
    """A NURBS trajectory."""

    degree: float
    knot_vector: list[float]
    control_points: list[ControlPoint]


class Corridor(Wire):
    """Boundaries the vehicle may deviate within."""

    left_width: float
    right_width: float
    corridor_ref_point: str | None = None


class Edge(Wire):
    """An order edge."""

    edge_id: str
    sequence_id: Uint32
    released: bool
    start_node_id: str
    end_node_id: str
    actions: list[Action]
    edge_description: str | None = None
    max_speed: float | None = None
    max_height: float | None = None
    min_height: float | None = None
    orientation: float | None = None
    orientation_type: str | None = None
    direction: str | None = None
    rotation_allowed: bool | None = None
    max_rotation_speed: float | None = None
    trajectory: Trajectory | None = None
    length: float | None = None
    corridor: Corridor | None = None


class Order(Header):
    """``order`` (section 6.6.6)."""

    order_id: str
    order_update_id: Uint32
    nodes: list[Node]
    edges: list[Edge]
    zone_set_id: str | None = None


class InstantActions(Header):
    """``instantActions`` (section 6.9)."""

    actions: list[Action]


# --- state -----------------------------------------------------------------------------------


class MapInfo(Wire):
    """A map stored on the vehicle."""

    map_id: str
    map_version: str
    map_status: MapStatus
    map_description: str | None = None


class NodeState(Wire):
    """A node still to traverse."""

    node_id: str
    sequence_id: Uint32
    released: bool
    node_description: str | None = None
    node_position: NodePosition | None = None


class EdgeState(Wire):
    """An edge still to traverse."""

    edge_id: str
    sequence_id: Uint32
    released: bool
    edge_description: str | None = None
    trajectory: Trajectory | None = None


class AgvPosition(Wire):
    """The vehicle's pose on a map."""

    x: float
    y: float
    theta: float
    map_id: str
    position_initialized: bool
    map_description: str | None = None
    localization_score: float | None = Field(None, ge=0, le=1)
    deviation_range: float | None = None


class Velocity(Wire):
    """Velocity in vehicle coordinates."""

    vx: float | None = None
    vy: float | None = None
    omega: float | None = None


class BoundingBoxReference(Wire):
    """Reference point of a load's bounding box."""

    x: float
    y: float
    z: float
    theta: float | None = None


class LoadDimensions(Wire):
    """A load's bounding box, metres."""

    length: float
    width: float
    height: float | None = None


class Load(Wire):
    """A load on the vehicle."""

    load_id: str | None = None
    load_type: str | None = None
    load_position: str | None = None
    bounding_box_reference: BoundingBoxReference | None = None
    load_dimensions: LoadDimensions | None = None
    weight: float | None = Field(None, ge=0)


class ActionState(Wire):
    """Progress of one action."""

    action_id: str
    action_status: ActionStatus
    action_type: str | None = None
    action_description: str | None = None
    result_description: str | None = None


class BatteryState(Wire):
    """Battery figures."""

    battery_charge: float
    charging: bool
    battery_voltage: float | None = None
    battery_health: float | None = Field(None, ge=0, le=100)
    reach: float | None = Field(None, ge=0)


class ErrorReference(Wire):
    """What an error refers to."""

    reference_key: str
    reference_value: str


class Error(Wire):
    """An active error of the vehicle."""

    error_type: str
    error_level: ErrorLevel
    error_references: list[ErrorReference] | None = None
    error_description: str | None = None
    error_hint: str | None = None

    def reference(self, key: str) -> str | None:
        for r in self.error_references or ():
            if r.reference_key == key:
                return r.reference_value
        return None


class InfoReference(Wire):
    """What an information entry refers to."""

    reference_key: str
    reference_value: str


class Info(Wire):
    """Information for visualisation or debugging (never for logic)."""

    info_type: str
    info_level: InfoLevel
    info_references: list[InfoReference] | None = None
    info_description: str | None = None


class SafetyState(Wire):
    """Safety information."""

    e_stop: EStop
    field_violation: bool


class State(Header):
    """``state`` (section 6.10.6)."""

    order_id: str
    order_update_id: Uint32
    last_node_id: str
    last_node_sequence_id: Uint32
    node_states: list[NodeState]
    edge_states: list[EdgeState]
    driving: bool
    action_states: list[ActionState]
    battery_state: BatteryState
    operating_mode: OperatingMode
    errors: list[Error]
    safety_state: SafetyState
    maps: list[MapInfo] | None = None
    zone_set_id: str | None = None
    paused: bool | None = None
    new_base_request: bool | None = None
    distance_since_last_node: float | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None
    loads: list[Load] | None = None
    information: list[Info] | None = None


class Visualization(Header):
    """``visualization`` (section 6.13)."""

    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None


class Connection(Header):
    """``connection`` (section 6.14)."""

    connection_state: ConnectionState


# --- factsheet -------------------------------------------------------------------------------


class TypeSpecification(Wire):
    """Class and capabilities of the vehicle type."""

    series_name: str
    agv_kinematic: str
    agv_class: str
    max_load_mass: float
    localization_types: list[str]
    navigation_types: list[str]
    series_description: str | None = None


class PhysicalParameters(Wire):
    """Basic physical properties."""

    speed_min: float
    speed_max: float
    acceleration_max: float
    deceleration_max: float
    height_max: float
    width: float
    length: float
    height_min: float | None = None
    angular_speed_min: float | None = None
    angular_speed_max: float | None = None


class MaxStringLens(Wire):
    """Maximum string lengths."""

    msg_len: int | None = None
    topic_serial_len: int | None = None
    topic_elem_len: int | None = None
    id_len: int | None = None
    id_numerical_only: bool | None = None
    enum_len: int | None = None
    load_id_len: int | None = None


class MaxArrayLens(Wire):
    """Maximum array lengths (JSON names contain dots)."""

    order_nodes: int | None = Field(None, alias="order.nodes")
    order_edges: int | None = Field(None, alias="order.edges")
    node_actions: int | None = Field(None, alias="node.actions")
    edge_actions: int | None = Field(None, alias="edge.actions")
    actions_actions_parameters: int | None = Field(None, alias="actions.actionsParameters")
    instant_actions: int | None = Field(None, alias="instantActions")
    trajectory_knot_vector: int | None = Field(None, alias="trajectory.knotVector")
    trajectory_control_points: int | None = Field(None, alias="trajectory.controlPoints")
    state_node_states: int | None = Field(None, alias="state.nodeStates")
    state_edge_states: int | None = Field(None, alias="state.edgeStates")
    state_loads: int | None = Field(None, alias="state.loads")
    state_action_states: int | None = Field(None, alias="state.actionStates")
    state_errors: int | None = Field(None, alias="state.errors")
    state_information: int | None = Field(None, alias="state.information")
    error_error_references: int | None = Field(None, alias="error.errorReferences")
    information_info_references: int | None = Field(None, alias="information.infoReferences")


class Timing(Wire):
    """Timing limits."""

    min_order_interval: float
    min_state_interval: float
    default_state_interval: float | None = None
    visualization_interval: float | None = None


class ProtocolLimits(Wire):
    """Limits of identifiers, arrays and timing."""

    max_string_lens: MaxStringLens
    max_array_lens: MaxArrayLens
    timing: Timing


class OptionalParameter(Wire):
    """An optional protocol field the vehicle supports or requires."""

    parameter: str
    support: str
    description: str | None = None


class FactsheetActionParameter(Wire):
    """A parameter of an action the vehicle supports."""

    key: str
    value_data_type: str
    description: str | None = None
    is_optional: bool | None = None


class AgvAction(Wire):
    """An action the vehicle supports."""

    action_type: str
    action_scopes: list[str]
    action_description: str | None = None
    action_parameters: list[FactsheetActionParameter] | None = None
    result_description: str | None = None
    blocking_types: list[str] | None = None


class ProtocolFeatures(Wire):
    """Supported optional parameters and actions."""

    optional_parameters: list[OptionalParameter]
    agv_actions: list[AgvAction]


class Point(Wire):
    """A 2D point in the vehicle frame."""

    x: float
    y: float


class Envelope2d(Wire):
    """A 2D envelope polygon."""

    set: str
    polygon_points: list[Point]
    description: str | None = None


class AgvGeometry(Wire):
    """Geometry of the vehicle (only 2D envelopes are modelled)."""

    envelopes2d: list[Envelope2d] | None = None


class LoadSet(Wire):
    """A kind of load the vehicle handles.

    ``max_boxes`` (JSON ``maxBoxes``) is a streetfleet extension: how many boxes of this load
    type fit in one trip (see ``docs/protocols/vda5050.md``).
    """

    set_name: str
    load_type: str
    load_positions: list[str] | None = None
    load_dimensions: LoadDimensions | None = None
    max_weight: float | None = None
    agv_speed_limit: float | None = None
    agv_acceleration_limit: float | None = None
    agv_deceleration_limit: float | None = None
    pick_time: float | None = None
    drop_time: float | None = None
    description: str | None = None
    max_boxes: int | None = None


class LoadSpecification(Wire):
    """Load handling."""

    load_positions: list[str] | None = None
    load_sets: list[LoadSet] | None = None


class VersionInfo(Wire):
    """A software or hardware version."""

    key: str
    value: str


class VehicleConfig(Wire):
    """Software and hardware versions."""

    versions: list[VersionInfo] | None = None


class Factsheet(Wire):
    """``factsheet`` (section 6.15); ``headerId`` and ``timestamp`` are optional there."""

    version: str
    manufacturer: str
    serial_number: str
    type_specification: TypeSpecification
    physical_parameters: PhysicalParameters
    protocol_limits: ProtocolLimits
    protocol_features: ProtocolFeatures
    agv_geometry: AgvGeometry
    load_specification: LoadSpecification
    header_id: Uint32 | None = None
    timestamp: str | None = None
    vehicle_config: VehicleConfig | None = None


MESSAGE_TYPES: dict[str, type[Wire]] = {
    "order": Order,
    "instantActions": InstantActions,
    "state": State,
    "visualization": Visualization,
    "connection": Connection,
    "factsheet": Factsheet,
}
"""Model of each topic."""


def speaks(version: str) -> str | None:
    """The shape (an entry of :data:`SUPPORTED_VERSIONS`) to use with a peer whose headers say
    ``version``: 2.0.x -> 2.0.0, 2.1 and later minor versions of 2 -> 2.1.0 (minor versions
    extend, section 5.3); None for any other major version."""
    parts = str(version).strip().split(".")
    if len(parts) < 2 or parts[0] != "2":
        return None
    try:
        minor = int(parts[1])
    except ValueError:
        return None
    return V2_0 if minor == 0 else PROTOCOL_VERSION


def header_of(payload: bytes | bytearray | str) -> dict[str, Any]:
    """The header fields of a payload too broken (or too foreign) to parse; empty if not JSON."""
    try:
        data = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    keys = ("headerId", "timestamp", "version", "manufacturer", "serialNumber")
    return {k: data[k] for k in keys if k in data}


class WireError(ValueError):
    """A payload is not a valid message of its topic; ``reason`` says why."""

    def __init__(self, subtopic: str, reason: str) -> None:
        super().__init__(f"bad {subtopic} message: {reason}")
        self.subtopic = subtopic
        self.reason = reason


def parse(subtopic: str, payload: bytes | bytearray | str) -> Wire:
    """Parse ``payload`` as a message of ``subtopic`` in the shape of 2.0.0 or 2.1.0; raise
    :class:`WireError` if it is not one. ``state``, ``visualization`` and ``connection`` are
    read as they are (their 2.0.0 shape parses as 2.1.0: the hot path); ``order``,
    ``instantActions`` and ``factsheet`` have 2.0.0 spellings normalised first."""
    model = MESSAGE_TYPES.get(subtopic)
    if model is None:
        raise WireError(subtopic, "unknown topic")
    try:
        if subtopic in _NORMALISE:
            try:
                data = json.loads(payload)
            except ValueError as exc:
                raise WireError(subtopic, f"message: Invalid JSON: {exc}") from None
            if isinstance(data, dict):
                _NORMALISE[subtopic](data)
            return model.model_validate(data)
        return model.model_validate_json(payload)
    except PydanticValidationError as exc:
        first = exc.errors(include_url=False)[:3]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in first
        )
        raise WireError(subtopic, detail) from None


def action(
    action_type: str,
    action_id: str,
    blocking: BlockingType = BlockingType.HARD,
    description: str | None = None,
    **params: ParamValue,
) -> Action:
    """Build an action with ``key=value`` parameters."""
    return Action(
        action_type=action_type,
        action_id=action_id,
        blocking_type=blocking,
        action_description=description,
        action_parameters=[ActionParameter(key=k, value=v) for k, v in params.items()] or None,
    )


def encode(msg: Wire, version: str = PROTOCOL_VERSION) -> bytes:
    """``msg`` as JSON in the shape of ``version`` (an entry of :data:`SUPPORTED_VERSIONS`), with
    that version in its header. Raises :class:`WireError` for content the version cannot carry
    (:data:`V2_0_CHANGES`)."""
    if version == PROTOCOL_VERSION:
        if getattr(msg, "version", version) == version:
            return msg.to_json()
    elif version != V2_0:
        raise WireError("message", f"version {version} is not one of {SUPPORTED_VERSIONS}")
    data = msg.model_dump(mode="json", by_alias=True, exclude_none=True)
    if "version" in data:
        data["version"] = version
    if version == V2_0:
        for kind, model in MESSAGE_TYPES.items():
            if type(msg) is model and kind in _TO_2_0:
                _TO_2_0[kind](data)
    return json.dumps(data, separators=(",", ":")).encode()


def _no_object_params(kind: str, actions: list[dict[str, Any]]) -> None:
    for a in actions:
        for p in a.get("actionParameters") or ():
            if isinstance(p.get("value"), dict):
                raise WireError(
                    kind, f"action {a.get('actionId')}: 2.0.0 has no object parameter values"
                )


def _order_to_2_0(data: dict[str, Any]) -> None:
    for node in data.get("nodes", ()):
        pos = node.get("nodePosition")
        if pos is not None and "allowedDeviationXY" in pos:
            pos["allowedDeviationXy"] = pos.pop("allowedDeviationXY")
        _no_object_params("order", node.get("actions", []))
    for edge in data.get("edges", ()):
        for key in ("orientationType", "corridor"):
            if key in edge:
                raise WireError("order", f"edge {edge.get('edgeId')}: 2.0.0 has no {key}")
        _no_object_params("order", edge.get("actions", []))


def _instant_to_2_0(data: dict[str, Any]) -> None:
    actions = data.get("actions", [])
    _no_object_params("instantActions", actions)
    for a in actions:
        a["actionName"] = a["actionType"]


def _state_to_2_0(data: dict[str, Any]) -> None:
    data.pop("maps", None)
    for e in data.get("errors", ()):
        e.pop("errorHint", None)
    battery = data.get("batteryState", {})
    for key in ("batteryHealth", "reach"):
        if key in battery:
            battery[key] = round(battery[key])
    for n in data.get("nodeStates", ()):
        pos = n.get("nodePosition")
        if pos is not None:
            pos.pop("allowedDeviationXY", None)
            pos.pop("allowedDeviationTheta", None)
            if "theta" not in pos:
                del n["nodePosition"]  # optional in the state, but 2.0.0 needs theta in it


def _factsheet_to_2_0(data: dict[str, Any]) -> None:
    data.pop("vehicleConfig", None)
    for s in (data.get("loadSpecification") or {}).get("loadSets") or ():
        if "maxWeight" in s:
            s["maxWeigth"] = s.pop("maxWeight")


def _order_from_2_0(data: dict[str, Any]) -> None:
    for node in data.get("nodes") or ():
        pos = node.get("nodePosition") if isinstance(node, dict) else None
        if isinstance(pos, dict) and "allowedDeviationXy" in pos:
            pos.setdefault("allowedDeviationXY", pos.pop("allowedDeviationXy"))


def _instant_from_2_0(data: dict[str, Any]) -> None:
    if "actions" not in data and isinstance(data.get("instantActions"), list):
        data["actions"] = data["instantActions"]  # the 2.0 text's (and 1.1's) name
    for a in data.get("actions") or ():
        if isinstance(a, dict) and "actionType" not in a and "actionName" in a:
            a["actionType"] = a["actionName"]


def _factsheet_from_2_0(data: dict[str, Any]) -> None:
    spec = data.get("loadSpecification")
    for s in (spec.get("loadSets") or ()) if isinstance(spec, dict) else ():
        if isinstance(s, dict) and "maxWeigth" in s:
            s.setdefault("maxWeight", s.pop("maxWeigth"))


_TO_2_0 = {
    "order": _order_to_2_0,
    "instantActions": _instant_to_2_0,
    "state": _state_to_2_0,
    "factsheet": _factsheet_to_2_0,
}
_NORMALISE = {
    "order": _order_from_2_0,
    "instantActions": _instant_from_2_0,
    "factsheet": _factsheet_from_2_0,
}
