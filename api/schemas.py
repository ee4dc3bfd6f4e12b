"""API bodies: what clients send and receive (pydantic models, published in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from missions.states import Priority

Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
"""Identifiers of sites and SKUs."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemIn(_In):
    """One SKU line of a delivery."""

    sku_id: Ident = Field(description="SKU id, see GET /v1/skus")
    quantity: int = Field(gt=0, le=1_000_000, description="Units asked for")


class DeliveryRequestIn(_In):
    """A delivery request: items for one community."""

    kind: Literal["delivery"] = "delivery"
    community_id: Ident
    items: list[ItemIn] = Field(min_length=1, max_length=50)
    priority: Priority = Priority.STANDARD
    warehouse_id: Ident | None = Field(None, description="Serve from this warehouse")
    note: str = Field("", max_length=1000)
    requested_by: str = Field("", max_length=100)


class ItemOut(BaseModel):
    sku_id: str
    quantity: int
    allocated: int
    delivered: int


class EventOut(BaseModel):
    id: int | None
    at: datetime
    kind: str
    mission_id: str | None
    request_id: str | None
    vehicle_id: str | None
    from_state: str | None
    to_state: str | None
    reason: str
    data: dict[str, Any]


class RequestOut(BaseModel):
    id: str
    kind: str
    community_id: str
    warehouse_id: str | None
    state: str
    priority: str
    requested_by: str
    note: str
    created_at: datetime
    approved_at: datetime | None
    deadline: datetime | None
    closed_at: datetime | None
    reason: str
    items: list[ItemOut]
    missions: list[str] = Field(default_factory=list, description="Missions carrying it")
    events: list[EventOut] | None = Field(None, description="Its history (single reads only)")


class PositionOut(BaseModel):
    lat: float
    lon: float
    alt: float
    rel_alt: float


class MissionProgressOut(BaseModel):
    current: int
    total: int
    state: str


class VehicleOut(BaseModel):
    id: str
    kind: str
    name: str
    link_url: str
    address: str
    capabilities: list[str]
    payload_kg: float
    link: str
    position: PositionOut | None
    home: PositionOut | None
    heading_deg: float | None
    ground_speed_mps: float | None
    battery_fraction: float | None
    armed: bool
    mode: str
    landed: str
    ready_to_arm: bool
    mission: MissionProgressOut
    seconds_since_heard: float | None
    busy_with: str | None = Field(None, description="Mission it is flying, if any")
    errors: list[str]


class TaskOut(BaseModel):
    id: str
    request_id: str
    kind: str
    community_id: str
    state: str
    load: list[dict[str, Any]]


class MissionOut(BaseModel):
    id: str
    kind: str
    vehicle_id: str | None
    state: str
    phase: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    reason: str
    plan: dict[str, Any]
    result: dict[str, Any]
    tasks: list[TaskOut]
    events: list[EventOut] | None = None


class CancelIn(_In):
    reason: str = Field("", max_length=1000)


class StockReceiptIn(_In):
    """Goods arriving at a warehouse."""

    sku_id: Ident
    quantity: int = Field(gt=0, le=10_000_000)
    note: str = Field("", max_length=500)


class StockOut(BaseModel):
    warehouse_id: str
    sku_id: str
    on_hand: int
    reserved: int
    available: int


class MovementOut(BaseModel):
    id: int | None
    at: datetime
    warehouse_id: str
    sku_id: str
    kind: str
    quantity: int
    on_hand_after: int
    reserved_after: int
    request_id: str | None
    mission_id: str | None
    actor: str
    note: str


class SkuOut(BaseModel):
    id: str
    name: str
    unit: str
    units_per_box: int
    box_kg: float
    box_volume_l: float
    unit_kg: float
    drone_eligible: bool


class SiteOut(BaseModel):
    id: str
    kind: str
    name: str
    lat: float
    lon: float
    attributes: dict[str, Any]
