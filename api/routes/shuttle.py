"""``/v1/shuttle-plans``: operators' shuttle plans (vans, communities, shift hours), trips."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.auth import OperatorDep, ReaderDep
from api.deps import RuntimeDep
from api.schemas import (
    ShiftOut,
    ShuttleLoadOut,
    ShuttlePlanIn,
    ShuttlePlanOut,
    ShuttlePlanReplaceIn,
    ShuttleTripOut,
    ShuttleTripsOut,
)
from fleet.store.tables import ShuttlePlan
from missions import shuttle
from missions.shuttle.plans import PlanDraft, PlanSpec, Shift
from missions.shuttle.service import ShuttleService

router = APIRouter(prefix="/v1/shuttle-plans", tags=["shuttle plans"])


def _service(rt: RuntimeDep) -> ShuttleService:
    svc = rt.missions.kind(shuttle.KIND.name)
    assert isinstance(svc, ShuttleService)
    return svc


def _draft(body: ShuttlePlanIn, default_tz: str) -> PlanDraft:
    return PlanDraft(
        name=body.name,
        warehouse_id=body.warehouse_id,
        community_ids=body.community_ids,
        vehicle_ids=body.vehicle_ids,
        shift_start=body.shift_start,
        shift_end=body.shift_end,
        timezone=body.timezone or default_tz,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        enabled=body.enabled,
    )


def _shift(s: Shift | None) -> ShiftOut | None:
    return None if s is None else ShiftOut(day=s.day, start=s.start, end=s.end)


def _out(svc: ShuttleService, row: ShuttlePlan) -> ShuttlePlanOut:
    current, nxt = svc.shifts(row)
    return ShuttlePlanOut(
        id=row.id,
        name=row.name,
        warehouse_id=row.warehouse_id,
        community_ids=list(row.community_ids),
        vehicle_ids=list(row.vehicle_ids),
        shift_start=row.shift_start,
        shift_end=row.shift_end,
        timezone=row.timezone,
        hours=PlanSpec.from_row(row).hours,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        enabled=row.enabled,
        current_shift=_shift(current),
        next_shift=_shift(nxt),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        version=row.version,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ShuttlePlanOut,
    responses={
        409: {"description": "A van of the plan is already on another plan at those hours"},
        422: {"description": "Unknown warehouse, community or van, or bad hours (field named)"},
    },
)
async def create_plan(
    body: ShuttlePlanIn, rt: RuntimeDep, who: OperatorDep, response: Response
) -> ShuttlePlanOut:
    """Define a shuttle plan; its vans run trips during its shift hours from now on."""
    svc = _service(rt)
    row = await svc.create(_draft(body, rt.settings.shuttle.timezone), who.username)
    response.headers["Location"] = f"/v1/shuttle-plans/{row.id}"
    return _out(svc, row)


@router.get("", response_model=list[ShuttlePlanOut])
async def list_plans(rt: RuntimeDep, who: ReaderDep) -> list[ShuttlePlanOut]:
    """Every shuttle plan (deleted ones excluded), oldest first."""
    svc = _service(rt)
    return [_out(svc, row) for row in await svc.plans()]


@router.get("/{plan_id}", response_model=ShuttlePlanOut)
async def get_plan(plan_id: str, rt: RuntimeDep, who: ReaderDep) -> ShuttlePlanOut:
    svc = _service(rt)
    return _out(svc, await svc.get(plan_id))


@router.put(
    "/{plan_id}",
    response_model=ShuttlePlanOut,
    responses={409: {"description": "Overlapping hours for a van, or the version changed"}},
)
async def replace_plan(
    plan_id: str, body: ShuttlePlanReplaceIn, rt: RuntimeDep, who: OperatorDep
) -> ShuttlePlanOut:
    """Replace a plan. Trips under way finish as planned; new trips follow the new plan."""
    svc = _service(rt)
    row = await svc.replace(
        plan_id,
        _draft(body, rt.settings.shuttle.timezone),
        who.username,
        expected_version=body.version,
    )
    return _out(svc, row)


@router.delete("/{plan_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_plan(plan_id: str, rt: RuntimeDep, who: OperatorDep) -> Response:
    """Stop and remove a plan. Trips under way finish; its past trips stay traceable."""
    await _service(rt).delete(plan_id, who.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _ts(x: float | None) -> datetime | None:
    return None if x is None else datetime.fromtimestamp(x, UTC)


@router.get("/{plan_id}/trips", response_model=ShuttleTripsOut)
async def list_trips(
    plan_id: str,
    rt: RuntimeDep,
    who: ReaderDep,
    day: Annotated[date | None, Query(description="Only the shift starting on this day")] = None,
) -> ShuttleTripsOut:
    """Trips done, under way and planned (``forecast``), with boxes per community."""
    reports = await _service(rt).trips(plan_id, day)
    trips = [
        ShuttleTripOut(
            mission_id=r.mission_id,
            vehicle_id=r.vehicle_id,
            shift_day=r.shift_day,
            number=r.number,
            purpose=r.purpose,
            state=r.state,
            depart=_ts(r.depart),
            return_at=_ts(r.return_at),
            started_at=r.started_at,
            ended_at=r.ended_at,
            boxes=r.boxes,
            boxes_delivered=r.boxes_delivered if r.purpose == "delivery" else 0,
            boxes_by_community=r.boxes_by_community(),
            loads=[
                ShuttleLoadOut(
                    load_id=ld.load_id,
                    community_id=ld.community_id,
                    boxes=ld.boxes,
                    delivered=ld.delivered,
                    eta=_ts(ld.eta),
                )
                for ld in r.loads
            ],
        )
        for r in reports
    ]
    delivered: dict[str, int] = {}
    forecast: dict[str, int] = {}
    for r in reports:
        if r.state == "forecast":
            for c, n in r.boxes_by_community().items():
                forecast[c] = forecast.get(c, 0) + n
        elif r.purpose == "delivery":
            for c, n in r.boxes_by_community(delivered_only=True).items():
                delivered[c] = delivered.get(c, 0) + n
    return ShuttleTripsOut(
        shuttle_plan_id=plan_id,
        trips=trips,
        boxes_delivered=sum(delivered.values()),
        boxes_delivered_by_community=dict(sorted(delivered.items())),
        boxes_forecast_by_community=dict(sorted(forecast.items())),
    )
