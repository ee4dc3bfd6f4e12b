"""Domain model of vehicles: what they are (:class:`VehicleInfo`) and how they are now
(:class:`VehicleStatus`).

Protocol-neutral: MAVLink and VDA 5050 bridges translate their wire state into these types in
their own ``translate.py``. ``VehicleInfo`` is frozen; ``VehicleStatus`` is the one mutable live
record per vehicle, owned by the :mod:`fleet.registry` and written only by that vehicle's link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fleet.geo import Position


class VehicleKind(StrEnum):
    """What sort of vehicle it is."""

    DRONE = "drone"
    """Multicopter (PX4 over MAVLink)."""
    ROVER = "rover"
    """Small ground robot (PX4 rover over MAVLink)."""
    VAN = "van"
    """Unmanned light van (VDA 5050 over MQTT)."""
    PAYLOAD = "payload"
    """A payload with its own link, mounted on a host vehicle (loudspeaker over MQTT)."""


class Capability(StrEnum):
    """What work a vehicle can take."""

    DELIVERY = "delivery"
    """Carries and releases a payload."""
    BROADCAST = "broadcast"
    """Carries a loudspeaker payload."""
    SHUTTLE = "shuttle"
    """Runs multi-stop van trips."""


class FlightMode(StrEnum):
    """Control mode, named after PX4's modes (vans report ``AUTO``/``MANUAL`` equivalents)."""

    UNKNOWN = "unknown"
    """Not reported yet or not recognised."""
    MANUAL = "manual"
    """Pilot or operator drives directly."""
    ALTCTL = "altctl"
    """Altitude control (PX4 Altitude mode)."""
    POSCTL = "posctl"
    """Position control (PX4 Position mode)."""
    ACRO = "acro"
    """Rate control."""
    STABILIZED = "stabilized"
    """Attitude control."""
    OFFBOARD = "offboard"
    """Setpoints from a companion or ground computer."""
    READY = "ready"
    """PX4 auto-ready sub mode."""
    TAKEOFF = "takeoff"
    """PX4 Takeoff mode."""
    HOLD = "hold"
    """PX4 Hold (auto loiter); a van paused."""
    MISSION = "mission"
    """Executing the uploaded mission or a van order."""
    RTL = "rtl"
    """Return to launch."""
    LAND = "land"
    """Landing in place."""
    FOLLOW_TARGET = "follow_target"
    """PX4 Follow Me."""
    PRECLAND = "precland"
    """PX4 precision landing."""
    RTGS = "rtgs"
    """Return to ground station (data-link loss)."""


class LandedState(StrEnum):
    """Whether the vehicle is on the ground (MAV_LANDED_STATE equivalents)."""

    UNKNOWN = "unknown"
    """Not reported."""
    ON_GROUND = "on_ground"
    """Landed or parked."""
    IN_AIR = "in_air"
    """Flying."""
    TAKING_OFF = "taking_off"
    """Climbing away from the ground."""
    LANDING = "landing"
    """Descending to land."""


class LinkState(StrEnum):
    """The service's view of its connection to the vehicle."""

    UNKNOWN = "unknown"
    """Never heard from, or the state timed out (vans)."""
    ONLINE = "online"
    """Heard within the link timeout."""
    LOST = "lost"
    """Silent for longer than the link timeout."""
    OFFLINE = "offline"
    """The vehicle said goodbye (VDA 5050 OFFLINE)."""


class MissionRunState(StrEnum):
    """How the vehicle reports the uploaded mission (MISSION_STATE equivalents)."""

    UNKNOWN = "unknown"
    """Not reported."""
    NO_MISSION = "no_mission"
    """Nothing uploaded."""
    UNCHECKED = "unchecked"
    """Uploaded, but the vehicle has neither reported it valid nor said why it is not (PX4
    checks a plan only once it has a home and a global position, and reports it as 'no
    mission' until then)."""
    INVALID = "invalid"
    """Uploaded and rejected by the vehicle's feasibility checks, which said why."""
    NOT_STARTED = "not_started"
    """Valid, not yet started."""
    ACTIVE = "active"
    """Running."""
    PAUSED = "paused"
    """Interrupted (e.g. Hold)."""
    COMPLETE = "complete"
    """Every item done."""


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    """Static facts about a vehicle."""

    id: str
    """Fleet-wide vehicle id, e.g. ``drone-1`` or ``van-VAN-01``."""
    kind: VehicleKind
    link_url: str
    """URL of the link that reaches it."""
    address: str
    """Its address on that link (MAVLink system id, VDA 5050 manufacturer/serial)."""
    capabilities: frozenset[Capability] = frozenset()
    payload_kg: float = 0.0
    """Maximum payload mass."""
    max_boxes: int = 0
    """Box capacity (vans)."""
    name: str = ""
    """Human label."""


@dataclass(slots=True)
class MissionProgress:
    """What the vehicle reports about its current mission or order."""

    current: int = -1
    """Index of the current item (MAVLink seq, VDA 5050 node sequence)."""
    total: int = 0
    reached: int = -1
    """Last item reported reached."""
    state: MissionRunState = MissionRunState.UNKNOWN


@dataclass(slots=True)
class VehicleStatus:
    """Live state of one vehicle, written by its link, read by everything else."""

    link: LinkState = LinkState.UNKNOWN
    position: Position | None = None
    home: Position | None = None
    heading_deg: float | None = None
    ground_speed_mps: float | None = None
    climb_rate_mps: float | None = None
    battery_fraction: float | None = None
    """Remaining charge 0..1."""
    battery_voltage: float | None = None
    armed: bool = False
    mode: FlightMode = FlightMode.UNKNOWN
    landed: LandedState = LandedState.UNKNOWN
    ready_to_arm: bool = False
    """The vehicle's pre-arm checks pass for its current mode (MAVLink: the SYS_STATUS pre-arm
    bit)."""
    ready_for_mission: bool = False
    """The vehicle says it could fly a mission now: for PX4, its health and arming checks
    leave Mission mode armable (a missing mission aside), home is set and its global position
    is valid. Only such a vehicle is offered work."""
    not_ready: tuple[str, ...] = ()
    """Why ``ready_for_mission`` is False, in the vehicle's own words where it gave them."""
    mission: MissionProgress = field(default_factory=MissionProgress)
    last_seen: float | None = None
    """Clock ``monotonic()`` of the last message."""
    errors: tuple[str, ...] = ()
    """Active faults as reported by the vehicle."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific domain state (e.g. a van's loads), already translated from the wire."""
