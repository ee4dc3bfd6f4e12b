"""API bodies: what clients send and receive (pydantic models, published in OpenAPI)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from missions.broadcast.voices import DEFAULT_RATE_WPM, MAX_RATE_WPM, MIN_RATE_WPM, Language, Voice
from missions.states import Priority

MAX_OFFSET = 1_000_000_000
"""Largest ``offset`` a list takes (beyond it a list is empty anyway; bigger numbers would
overflow the database's integers)."""
MAX_ID = 2**63 - 1
"""Largest ``after_id`` (the database's 64-bit integer ids)."""

Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
"""Identifiers of sites and SKUs."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemIn(_In):
    """One SKU line of a delivery."""

    sku_id: Ident = Field(description="SKU id, see GET /v1/skus")
    quantity: StrictInt = Field(gt=0, le=1_000_000, description="Units asked for")


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
    ready_to_arm: bool = Field(description="Pre-arm checks pass for the current mode")
    ready_for_mission: bool = Field(
        description="The vehicle says it can fly a mission now; only such vehicles get work"
    )
    not_ready: list[str] = Field(
        default_factory=list, description="Why it is not ready, in the vehicle's own words"
    )
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
    quantity: StrictInt = Field(gt=0, le=10_000_000)
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


# --- broadcasts (docs/broadcast.md, docs/api.md "Broadcasts") ---------------------------------


class BroadcastAreaIn(_In):
    """Where the message must be heard: a community, or a polygon drawn on the map."""

    community_id: Ident | None = Field(None, description="The whole of this community")
    vertices: list[tuple[StrictFloat, StrictFloat]] | None = Field(
        None,
        min_length=3,
        max_length=201,
        description="[lat, lon] vertices of a simple polygon inside the operating area",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> BroadcastAreaIn:
        if (self.community_id is None) == (self.vertices is None):
            raise ValueError("give either community_id or vertices")
        return self


class BroadcastMessageIn(_In):
    """What is said: text spoken by espeak-ng, or an uploaded clip (POST /v1/clips)."""

    text: str | None = Field(None, min_length=1, max_length=1000)
    clip_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    language: Language | None = Field(
        None, description="cmn (Mandarin), yue (Cantonese), en, en-us; required with text"
    )
    voice: Voice = Voice.FEMALE
    rate_wpm: StrictInt = Field(DEFAULT_RATE_WPM, ge=MIN_RATE_WPM, le=MAX_RATE_WPM)

    @model_validator(mode="after")
    def _one_kind(self) -> BroadcastMessageIn:
        if (self.text is None) == (self.clip_sha256 is None):
            raise ValueError("give either text or clip_sha256")
        if self.text is not None and self.language is None:
            raise ValueError("text needs a language")
        return self


class NowIn(_In):
    """As soon as a drone is free."""

    kind: Literal["now"] = "now"


class AtTimesIn(_In):
    """At each of these instants (with their UTC offset)."""

    kind: Literal["at"]
    times: list[AwareDatetime] = Field(min_length=1, max_length=50)


class RecurringIn(_In):
    """At local times of day on weekdays, from start_date through end_date."""

    kind: Literal["recurring"]
    times_of_day: list[time] = Field(min_length=1, max_length=24, description="HH:MM, local")
    weekdays: list[Annotated[StrictInt, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: list(range(7)), min_length=1, description="0 = Monday"
    )
    start_date: date
    end_date: date
    timezone: str = Field("Asia/Shanghai", max_length=64, description="IANA time zone")

    @model_validator(mode="after")
    def _local_times(self) -> RecurringIn:
        if any(t.tzinfo is not None for t in self.times_of_day):
            raise ValueError("times_of_day are local times: give no UTC offset")
        return self


class BroadcastRequestIn(_In):
    """A broadcast request from community staff."""

    area: BroadcastAreaIn
    message: BroadcastMessageIn
    volume: StrictInt = Field(100, ge=1, le=100, description="Percent of the speaker's full output")
    repeats: StrictInt = Field(2, ge=1, le=10, description="Times every point must hear it all")
    period_s: StrictFloat | None = Field(
        None, ge=1, le=600, description="Start-to-start period of the loop (default: clip + 2 s)"
    )
    schedule: Annotated[NowIn | AtTimesIn | RecurringIn, Field(discriminator="kind")] = Field(
        default_factory=NowIn
    )
    priority: Priority = Priority.STANDARD
    community_id: Ident | None = Field(
        None,
        description="The community the request is for (drawn areas; default: the one the "
        "area overlaps most)",
    )
    note: str = Field("", max_length=2000)
    requested_by: str = Field("", max_length=100)


class BroadcastClipOut(BaseModel):
    sha256: str
    duration_s: float
    source: str = Field(description="tts (spoken by espeak-ng) or upload")
    url: str = Field(description="Where to listen to it (and where payloads fetch it)")


class BroadcastOut(RequestOut):
    """A broadcast request with what it asks for and what became of each occurrence."""

    area: dict[str, Any]
    resolved_area: dict[str, Any] = Field(description="name, vertices, area_m2, community_ids")
    message: dict[str, Any]
    volume: int
    repeats: int
    period_s: float | None
    schedule: dict[str, Any]
    clip: BroadcastClipOut
    preview: dict[str, Any] = Field(
        description="Feasibility plan at submission (a drone on every pad): predicted coverage"
    )
    occurrences: list[dict[str, Any]] = Field(
        description="Settled occurrences: state, coverage, missions (docs/broadcast.md)"
    )


class ClipOut(BaseModel):
    """A stored audio clip."""

    sha256: str
    duration_s: float
    sample_rate: int
    channels: int
    sample_width: int = Field(description="Bytes per sample")
    size_bytes: int
    source: dict[str, str]
    url: str


class SpeechIn(_In):
    """Text to render with espeak-ng (to preview a message before requesting it)."""

    text: str = Field(min_length=1, max_length=1000)
    language: Language
    voice: Voice = Voice.FEMALE
    rate_wpm: StrictInt = Field(DEFAULT_RATE_WPM, ge=MIN_RATE_WPM, le=MAX_RATE_WPM)


class CoverageOut(BaseModel):
    """The proof of coverage of one occurrence of a broadcast."""

    request_id: str
    occurrence: str
    attempt: int
    state: str = Field(description="completed, failed, cancelled, or in_progress while flying")
    missions: list[str]
    vehicles: list[str | None]
    predicted_coverage: float | None
    target_coverage: float
    area_m2: float
    repeats_required: int
    covered_fraction: float = Field(description="Share of cells that heard every repeat")
    heard_once_fraction: float
    started_at: datetime | None
    ended_at: datetime | None
    plays: dict[str, float]
    outside: dict[str, Any] = Field(description="Playback recorded outside the polygon")
    missing_records: list[int]
    payload_ids: list[str]
    hear_count_histogram: dict[str, int]
    grid: dict[str, Any]
    occurrences: list[dict[str, Any]]
    png_url: str


# --- shuttle plans (docs/shuttles.md, docs/api.md "Shuttle plans") ------------------------------


class ShuttlePlanIn(_In):
    """A shuttle plan as an operator defines it: which vans serve which communities from which
    warehouse, and the daily shift hours in local time."""

    name: str = Field("", max_length=200)
    warehouse_id: Ident = Field(description="Warehouse whose dock the vans load at")
    community_ids: list[Ident] = Field(
        min_length=1, max_length=200, description="Communities served (their gates are the stops)"
    )
    vehicle_ids: list[Ident] = Field(
        default_factory=list, max_length=100, description="Vans running it, e.g. van-VAN-01"
    )
    shift_start: str = Field(
        max_length=5, examples=["08:00"], description="Local time the shift starts, HH:MM"
    )
    shift_end: str = Field(
        max_length=5,
        examples=["16:00"],
        description="Local time it ends, HH:MM (at or before the start: the next day)",
    )
    timezone: str | None = Field(
        None,
        max_length=64,
        description="IANA time zone of the hours (default: the shuttle.timezone setting)",
    )
    valid_from: date | None = Field(None, description="First local day the shift runs")
    valid_until: date | None = Field(None, description="Last local day a shift starts")
    enabled: StrictBool = Field(True, description="False suspends it without deleting it")


class ShuttlePlanReplaceIn(ShuttlePlanIn):
    """A full replacement; ``version`` (optional) must match the stored one."""

    version: StrictInt | None = Field(None, ge=1, description="Version read; 409 if it changed")


class ShiftOut(BaseModel):
    day: date = Field(description="Local day the shift starts")
    start: datetime
    end: datetime


class ShuttlePlanOut(BaseModel):
    id: str
    name: str
    warehouse_id: str
    community_ids: list[str]
    vehicle_ids: list[str]
    shift_start: str
    shift_end: str
    timezone: str
    hours: float = Field(description="Nominal shift length")
    valid_from: date | None
    valid_until: date | None
    enabled: bool
    current_shift: ShiftOut | None = Field(description="The shift under way now, if any")
    next_shift: ShiftOut | None = Field(description="The next shift to start")
    created_at: datetime
    updated_at: datetime
    created_by: str
    version: int


class ShuttleLoadOut(BaseModel):
    load_id: str = Field(description="Trace id of the consignment ('' for a forecast)")
    community_id: str
    boxes: int
    delivered: bool
    eta: datetime | None = Field(description="Planned end of unloading at the gate")


class ShuttleTripOut(BaseModel):
    mission_id: str | None = Field(description="None for a trip only forecast by the planner")
    vehicle_id: str
    shift_day: date | None
    number: int
    purpose: str = Field(description="delivery, or return (undelivered loads back to the dock)")
    state: str = Field(description="Mission state, or 'forecast'")
    depart: datetime | None
    return_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    boxes: int
    boxes_delivered: int
    boxes_by_community: dict[str, int]
    loads: list[ShuttleLoadOut]


class ShuttleTripsOut(BaseModel):
    shuttle_plan_id: str
    trips: list[ShuttleTripOut]
    boxes_delivered: int = Field(description="Boxes dropped at gates by the trips listed")
    boxes_delivered_by_community: dict[str, int]
    boxes_forecast_by_community: dict[str, int] = Field(
        description="Boxes the planner expects to carry on the trips still to come"
    )


# --- dispatch: priorities, stock corrections, SKUs, decisions, allocations (docs/dispatch.md) ---


class PriorityIn(_In):
    """A priority change: the request is re-planned under its new class."""

    priority: Priority
    reason: str = Field(min_length=1, max_length=1000, description="Why (recorded)")


class AdjustmentIn(_In):
    """A count correction at a warehouse (an ``adjust`` line in the ledger)."""

    sku_id: Ident
    quantity: StrictInt = Field(
        ge=-10_000_000,
        le=10_000_000,
        description="Signed units: negative takes stock off (damage, expiry, a short count)",
    )
    reason: str = Field(min_length=1, max_length=500, description="Why (recorded)")

    @field_validator("quantity")
    @classmethod
    def _moves_something(cls, v: int) -> int:
        if v == 0:
            raise ValueError("an adjustment must change the stock (not 0)")
        return v


class SkuIn(_In):
    """A SKU as created or replaced by ``PUT /v1/skus/{id}``."""

    name: str = Field(min_length=1, max_length=200)
    unit: str = Field("piece", min_length=1, max_length=32, description="piece, bottle, pair...")
    units_per_box: StrictInt = Field(gt=0, le=1_000_000)
    box_kg: StrictFloat = Field(gt=0, le=1000, description="Mass of a full box")
    box_volume_l: StrictFloat = Field(gt=0, le=10_000)
    unit_kg: StrictFloat = Field(gt=0, le=1000, description="Mass of one unit with its packaging")
    drone_eligible: StrictBool = Field(True, description="May fly (no bulk liquids, no hazmat)")

    @field_validator("unit_kg")
    @classmethod
    def _unit_fits_box(cls, v: float, info: ValidationInfo) -> float:
        box = info.data.get("box_kg")
        if box is not None and v > box:
            raise ValueError("one unit cannot weigh more than a full box (box_kg)")
        return v


class CommunityShareOut(BaseModel):
    """One community's share of a (warehouse, SKU) pool in the last allocation round."""

    community_id: str
    weight: float
    asked: int
    carried: int = Field(description="Units of it already on vehicles or delivered")
    allocated: int = Field(description="Its share, carried units included")
    shortfall: int
    satisfied: float = Field(description="allocated / asked")
    reason: str


class AllocationPoolOut(BaseModel):
    """The allocation of one SKU at one warehouse in the last round."""

    warehouse_id: str
    sku_id: str
    rule: str = Field(description="covered, max_min or too_few")
    available: int
    held: int
    carried: int
    in_play: int
    asked: int
    allocated: int
    shortfall: int
    level: float
    jain_index: float = Field(description="Weighted Jain's index of satisfied fractions")
    jain_unweighted: float
    starved: list[str]
    communities: list[CommunityShareOut]


class AllocationRoundOut(BaseModel):
    """The last allocation round: shares, shortfall per community and Jain's index."""

    at: datetime | None = Field(None, description="When it ran (null before the first round)")
    jain_index: float | None = Field(
        None, description="Weighted Jain's index over every (pool, community) share"
    )
    moves: int = Field(0, description="Reserve and release movements it made")
    shortfall: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Units short per community and SKU"
    )
    pools: list[AllocationPoolOut] = Field(default_factory=list)


class CheckOut(BaseModel):
    """One readiness check's outcome."""

    status: Literal["ok", "failed", "skipped"] = Field(
        description="skipped: nothing of this kind is configured"
    )
    detail: str = Field(description="What was found, or why the check failed")


class ReadinessOut(BaseModel):
    """``GET /readyz`` when the service is ready (otherwise a 503 problem with the same
    ``checks``)."""

    status: Literal["ready"]
    checks: dict[str, CheckOut] = Field(description="By name: database, mqtt, vehicle_links")
