"""SQLModel tables: the service's durable record.

Sites, vehicles, SKUs and stock, the stock ledger, requests and their items, tasks, missions,
mission events and the audit log. State columns hold the string values of the enums that own
them (``missions.states``); the store does not interpret them. Times are aware UTC datetimes in
the clock's world time. Live telemetry is not stored here (it lives in the registry and is sampled
into ``vehicle_sample``).

Every change of schema goes through an Alembic migration in ``fleet/store/migrations``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    """A new random identifier (UUID4 text)."""
    return str(uuid.uuid4())


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw: Any) -> Any:
    return Field(sa_type=sa.JSON, **kw)


class Site(SQLModel, table=True):
    """A place of the world: warehouse, community or pad (synchronised from the world file)."""

    __tablename__ = "site"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16, index=True)
    name: str = Field(max_length=200)
    lat: float
    lon: float
    world: str = Field(max_length=200)
    attributes: dict[str, Any] = _json(default_factory=dict)
    """Population, vulnerable households, pad altitude, ..."""


class Vehicle(SQLModel, table=True):
    """A vehicle the fleet has ever seen."""

    __tablename__ = "vehicle"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    link_url: str = Field(max_length=300)
    address: str = Field(max_length=100)
    name: str = Field(default="", max_length=200)
    capabilities: list[str] = _json(default_factory=list)
    payload_kg: float = 0.0
    max_boxes: int = 0
    in_service: bool = True
    """False when an operator took it out of service."""
    first_seen: datetime = _ts()
    last_seen: datetime = _ts()


class VehicleSample(SQLModel, table=True):
    """Telemetry sampled from the live registry (for history and audits)."""

    __tablename__ = "vehicle_sample"

    id: int | None = Field(default=None, primary_key=True)
    vehicle_id: str = Field(foreign_key="vehicle.id", index=True, max_length=64)
    at: datetime = _ts(index=True)
    lat: float | None = None
    lon: float | None = None
    rel_alt: float | None = None
    battery: float | None = None
    mode: str = Field(default="", max_length=32)
    armed: bool = False
    link: str = Field(default="", max_length=16)


class Sku(SQLModel, table=True):
    """A stock-keeping unit: masks, protective suits, medicine, ..."""

    __tablename__ = "sku"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    unit: str = Field(default="piece", max_length=32)
    units_per_box: int = Field(gt=0)
    box_kg: float = Field(gt=0)
    """Mass of a full box."""
    box_volume_l: float = Field(gt=0)
    unit_kg: float = Field(gt=0)
    """Mass of one unit with its share of packaging (drone loads are counted in units)."""
    drone_eligible: bool = True
    """Whether it may fly (no liquids in bulk, no hazardous goods)."""


class Stock(SQLModel, table=True):
    """Balance of one SKU at one warehouse, kept in step with the ledger in one transaction."""

    __tablename__ = "stock"

    warehouse_id: str = Field(primary_key=True, foreign_key="site.id", max_length=64)
    sku_id: str = Field(primary_key=True, foreign_key="sku.id", max_length=64)
    on_hand: int = Field(default=0, ge=0)
    """Units physically in the warehouse."""
    reserved: int = Field(default=0, ge=0)
    """Units of on_hand promised to requests and not yet loaded."""


class StockMovement(SQLModel, table=True):
    """One line of the stock ledger (append-only)."""

    __tablename__ = "stock_movement"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(index=True)
    warehouse_id: str = Field(foreign_key="site.id", max_length=64, index=True)
    sku_id: str = Field(foreign_key="sku.id", max_length=64, index=True)
    kind: str = Field(max_length=16)
    """receive, reserve, release, load, deliver, return, adjust."""
    quantity: int
    """Units moved: positive, except ``adjust`` whose quantity is signed (see
    :data:`fleet.ledger.MOVEMENT_EFFECTS` for which balance each kind changes)."""
    on_hand_after: int
    reserved_after: int
    request_id: str | None = Field(default=None, max_length=36, index=True)
    mission_id: str | None = Field(default=None, max_length=36, index=True)
    actor: str = Field(default="system", max_length=100)
    note: str = Field(default="", max_length=500)


class Request(SQLModel, table=True):
    """What someone asked for: a delivery (items) or a broadcast (area, message)."""

    __tablename__ = "request"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    kind: str = Field(max_length=16, index=True)
    """delivery or broadcast."""
    community_id: str = Field(foreign_key="site.id", max_length=64, index=True)
    warehouse_id: str | None = Field(default=None, foreign_key="site.id", max_length=64)
    state: str = Field(max_length=24, index=True)
    priority: str = Field(max_length=24)
    requested_by: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=1000)
    idempotency_key: str | None = Field(default=None, max_length=100, unique=True)
    """Client-chosen key: a retried POST returns the first request instead of a duplicate."""
    created_at: datetime = _ts()
    approved_at: datetime | None = _ts(default=None)
    deadline: datetime | None = _ts(default=None)
    closed_at: datetime | None = _ts(default=None)
    reason: str = Field(default="", max_length=1000)
    """Why it is in its state (rejection, failure, partial delivery)."""
    details: dict[str, Any] = _json(default_factory=dict)
    """Kind-specific body (broadcast area, message, schedule)."""
    version: int = Field(default=1)
    """Optimistic-lock counter, bumped on every change."""


class RequestItem(SQLModel, table=True):
    """One SKU line of a delivery request."""

    __tablename__ = "request_item"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="request.id", max_length=36, index=True)
    sku_id: str = Field(foreign_key="sku.id", max_length=64)
    quantity: int = Field(gt=0)
    """Units asked for."""
    allocated: int = Field(default=0, ge=0)
    """Units granted by allocation (reserved in stock)."""
    loaded: int = Field(default=0, ge=0)
    delivered: int = Field(default=0, ge=0)


class Mission(SQLModel, table=True):
    """What one vehicle executes: a drone sortie, a van trip, a broadcast flight."""

    __tablename__ = "mission"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    kind: str = Field(max_length=24, index=True)
    vehicle_id: str | None = Field(
        default=None, foreign_key="vehicle.id", max_length=64, index=True
    )
    state: str = Field(max_length=24, index=True)
    phase: str = Field(default="", max_length=24)
    created_at: datetime = _ts()
    started_at: datetime | None = _ts(default=None)
    ended_at: datetime | None = _ts(default=None)
    reason: str = Field(default="", max_length=1000)
    plan: dict[str, Any] = _json(default_factory=dict)
    """The planned route and actions, as recorded when planned."""
    result: dict[str, Any] = _json(default_factory=dict)
    """Outcome facts (release position, delivered quantities, coverage)."""
    version: int = Field(default=1)


class Task(SQLModel, table=True):
    """One unit of work cut from a request and carried by a mission."""

    __tablename__ = "task"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    request_id: str = Field(foreign_key="request.id", max_length=36, index=True)
    mission_id: str | None = Field(
        default=None, foreign_key="mission.id", max_length=36, index=True
    )
    kind: str = Field(max_length=24)
    community_id: str = Field(foreign_key="site.id", max_length=64)
    state: str = Field(max_length=24, index=True)
    load: list[dict[str, Any]] = _json(default_factory=list)
    """[{sku_id, quantity}] carried for the request."""
    created_at: datetime = _ts()


class MissionEvent(SQLModel, table=True):
    """Append-only record of every state change and decision of a mission, with its reason."""

    __tablename__ = "mission_event"

    id: int | None = Field(default=None, primary_key=True)
    mission_id: str | None = Field(
        default=None, foreign_key="mission.id", max_length=36, index=True
    )
    request_id: str | None = Field(default=None, max_length=36, index=True)
    vehicle_id: str | None = Field(default=None, max_length=64, index=True)
    at: datetime = _ts(index=True)
    kind: str = Field(max_length=32)
    """state, phase, decision, payload, vehicle, ..."""
    from_state: str | None = Field(default=None, max_length=24)
    to_state: str | None = Field(default=None, max_length=24)
    reason: str = Field(default="", max_length=2000)
    data: dict[str, Any] = _json(default_factory=dict)


class AuditLog(SQLModel, table=True):
    """Who did what through the API or CLI."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(index=True)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    detail: dict[str, Any] = _json(default_factory=dict)
    outcome: str = Field(default="", max_length=200)
    """How it ended: ``ok``, or the refusal (``403 forbidden``, ``409 conflict: ...``)."""


class Account(SQLModel, table=True):
    """A person or an integration that uses the API (``fleet.accounts``)."""

    __tablename__ = "account"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    """argon2id (None: the account signs in with API keys only)."""
    role: str = Field(max_length=24)
    communities: list[str] = _json(default_factory=list)
    """The communities a ``community_staff`` account acts for."""
    disabled: bool = False
    created_at: datetime = _ts()
    created_by: str = Field(max_length=100)
    updated_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """A key an integration presents instead of a token; only its SHA-256 is kept."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=16)
    """The key's public part (``sf_<id>_<secret>``)."""
    account_id: str = Field(foreign_key="account.id", index=True, max_length=36)
    name: str = Field(max_length=100)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(default=None)


class ShuttlePlan(SQLModel, table=True):
    """An operator's shuttle plan: which vans serve which communities from which warehouse, and
    the daily shift hours in local time (``missions.shuttle`` runs it; ``docs/shuttles.md``)."""

    __tablename__ = "shuttle_plan"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(default="", max_length=200)
    warehouse_id: str = Field(foreign_key="site.id", max_length=64, index=True)
    community_ids: list[str] = _json(default_factory=list)
    """Communities served (their gates are the van stops)."""
    vehicle_ids: list[str] = _json(default_factory=list)
    """Vans running the plan."""
    shift_start: str = Field(max_length=5)
    """Local time the shift starts, ``HH:MM``."""
    shift_end: str = Field(max_length=5)
    """Local time the shift ends, ``HH:MM`` (at or before the start: the next day)."""
    timezone: str = Field(max_length=64)
    """IANA time zone of the shift hours, e.g. ``Asia/Shanghai``."""
    valid_from: date | None = Field(default=None)
    """First local day the shift runs (None: from any day)."""
    valid_until: date | None = Field(default=None)
    """Last local day a shift starts (None: no end)."""
    enabled: bool = True
    """False suspends the plan without deleting it."""
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    created_by: str = Field(default="", max_length=100)
    deleted_at: datetime | None = _ts(default=None)
    """Set when an operator deleted it; kept so that its trips stay traceable."""
    version: int = Field(default=1)
    """Optimistic-lock counter, bumped on every change."""


class ShuttleTrip(SQLModel, table=True):
    """Links a van trip (a ``van_shuttle`` mission) to the shuttle plan and shift it belongs to."""

    __tablename__ = "shuttle_trip"

    mission_id: str = Field(primary_key=True, foreign_key="mission.id", max_length=36)
    shuttle_plan_id: str = Field(foreign_key="shuttle_plan.id", max_length=36, index=True)
    vehicle_id: str = Field(max_length=64, index=True)
    shift_day: date
    """Local day the shift started."""
    number: int
    """1, 2, ... within the van's shift."""
    created_at: datetime = _ts()


class VehicleCommand(SQLModel, table=True):
    """An operator's command to one vehicle (``missions.commands``): what was asked, by whom and
    why, and each step of its life (accepted, sent, acknowledged, then succeeded, failed or
    timed out), with the vehicle's own words when it refused."""

    __tablename__ = "vehicle_command"
    __table_args__ = (
        sa.UniqueConstraint("idempotency_key", "vehicle_id", name="uq_vehicle_command_key"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vehicle_id: str = Field(max_length=64, index=True)
    vehicle_kind: str = Field(max_length=16)
    command: str = Field(max_length=16)
    """``return``, ``land``, ``hold``, ``resume``, ``pause``, ``cancel_order``."""
    state: str = Field(max_length=16, index=True)
    """``accepted``, ``sent``, ``acknowledged``, ``succeeded``, ``failed``, ``timed_out``."""
    reason: str = Field(max_length=1000)
    """Why the operator asked (required)."""
    requested_by: str = Field(max_length=100)
    """The principal's username."""
    role: str = Field(default="", max_length=24)
    idempotency_key: str | None = Field(default=None, max_length=100)
    """Client-chosen key: a retried POST returns this record instead of a second command."""
    batch_id: str | None = Field(default=None, max_length=36, index=True)
    """Set on every record of one fleet-wide command."""
    mission_id: str | None = Field(default=None, max_length=36, index=True)
    """The mission the vehicle was running when the command was accepted."""
    accepted_at: datetime = _ts(index=True)
    sent_at: datetime | None = _ts(default=None)
    acknowledged_at: datetime | None = _ts(default=None)
    ended_at: datetime | None = _ts(default=None)
    outcome: str = Field(default="", max_length=1000)
    """How it ended: the state observed, the refusal, or what was missing at the timeout."""
    vehicle_result: str | None = Field(default=None, max_length=64)
    """The vehicle's answer code when it refused (MAVLink COMMAND_ACK result name, VDA 5050
    error type)."""
    vehicle_words: str | None = Field(default=None, max_length=1000)
    """What the vehicle said when it refused (PX4's texts or events, the VDA 5050 error
    description)."""
