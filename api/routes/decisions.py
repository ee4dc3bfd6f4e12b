"""``/v1/decisions`` and ``/v1/allocations/latest``: why the dispatcher did what it did.

Every dispatcher decision is a mission event of kind ``decision`` (allocations, vehicle
choices, waits, deadline warnings, re-plans), with its reason and ``data`` from
``Decision.as_event()``; the last allocation round is kept in memory with its per-community
shares, shortfall and Jain's index.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import ReaderDep
from api.deps import RuntimeDep
from api.schemas import MAX_ID, AllocationRoundOut, EventOut
from api.views import event_out
from missions.journal import EventKind

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.get("/decisions", response_model=list[EventOut])
async def list_decisions(
    rt: RuntimeDep,
    who: ReaderDep,
    request_id: str | None = None,
    mission_id: str | None = None,
    vehicle_id: str | None = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[EventOut]:
    """Decisions, oldest first, filtered by request, mission or vehicle; page with
    ``after_id`` (the last ``id`` seen). Allocation summaries of a whole (warehouse, SKU) pool
    have no request id and ``data.data.scope == "pool"``."""
    rows = await rt.store.events(
        request_id=request_id,
        mission_id=mission_id,
        vehicle_id=vehicle_id,
        kind=EventKind.DECISION,
        after_id=after_id,
        limit=limit,
    )
    return [event_out(e) for e in rows]


@router.get("/allocations/latest", response_model=AllocationRoundOut)
async def latest_allocation(rt: RuntimeDep, who: ReaderDep) -> AllocationRoundOut:
    """The last allocation round: per (warehouse, SKU) the rule applied, the stock in play,
    each community's share and shortfall with the reason, Jain's index per pool and for the
    round. Empty (``at`` null) before the first round after a start."""
    latest = rt.missions.dispatcher.allocation.latest
    if latest is None:
        return AllocationRoundOut()
    return AllocationRoundOut.model_validate(latest.as_json())
