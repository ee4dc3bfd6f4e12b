"""``/v1/requests``: submit, read, list, approve, reject, cancel and re-prioritise requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api.auth import AnyoneDep, OperatorDep, RequesterDep
from api.deps import RuntimeDep
from api.schemas import MAX_OFFSET, CancelIn, DeliveryRequestIn, PriorityIn, RequestOut
from api.scope import communities, may_ask_for, request_visible
from api.views import request_out
from fleet.store.tables import Task
from missions.requests import ItemLine, NewDelivery
from missions.states import RequestState

router = APIRouter(prefix="/v1/requests", tags=["requests"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestOut,
    responses={
        200: {"description": "Replay of an earlier request with the same Idempotency-Key"},
        422: {"description": "Invalid body: the problem names the field and the reason"},
    },
)
async def submit_request(
    body: DeliveryRequestIn,
    rt: RuntimeDep,
    who: RequesterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> RequestOut:
    """Submit a delivery request. It is stored before the answer; with an ``Idempotency-Key``
    header a retried submission returns the original instead of creating a second one.
    Community staff ask for their own communities only (403 otherwise)."""
    may_ask_for(who, body.community_id)
    new = NewDelivery(
        community_id=body.community_id,
        items=tuple(ItemLine(i.sku_id, i.quantity) for i in body.items),
        priority=body.priority,
        warehouse_id=body.warehouse_id,
        note=body.note,
        requested_by=body.requested_by,
        idempotency_key=idempotency_key,
    )
    record, created = await rt.missions.requests.submit_delivery(new, who.username)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/requests/{record.request.id}"
    return request_out(record)


@router.get("", response_model=list[RequestOut])
async def list_requests(
    rt: RuntimeDep,
    who: AnyoneDep,
    state: Annotated[list[RequestState] | None, Query()] = None,
    community_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[RequestOut]:
    """Requests, oldest first, filtered by state and community (community staff see their
    communities' only; filtering by another community is a 403)."""
    if community_id is not None:
        may_ask_for(who, community_id)
    records = await rt.store.list_requests(
        states=[str(s) for s in state] if state else None,
        community_id=community_id,
        limit=limit,
        offset=offset,
        communities=communities(who),
    )
    by_request: dict[str, list[Task]] = {}
    for task in await rt.store.tasks_of_requests(r.request.id for r in records):
        by_request.setdefault(task.request_id, []).append(task)
    return [request_out(r, by_request.get(r.request.id, [])) for r in records]


@router.get("/{request_id}", response_model=RequestOut)
async def get_request(request_id: str, rt: RuntimeDep, who: AnyoneDep) -> RequestOut:
    """A request with its items, the missions carrying it and its full history."""
    record = request_visible(who, await rt.missions.requests.get(request_id))
    tasks = await rt.store.request_tasks(request_id)
    events = await rt.store.events(request_id=request_id)
    return request_out(record, tasks, events)


@router.post("/{request_id}/approve", response_model=RequestOut)
async def approve_request(request_id: str, rt: RuntimeDep, who: OperatorDep) -> RequestOut:
    """Approve a submitted request (when automatic approval is off)."""
    await rt.missions.requests.approve(request_id, who.username)
    return request_out(await rt.missions.requests.get(request_id))


@router.post("/{request_id}/reject", response_model=RequestOut)
async def reject_request(
    request_id: str, body: CancelIn, rt: RuntimeDep, who: OperatorDep
) -> RequestOut:
    """Reject a submitted request; the reason is required."""
    await rt.missions.requests.reject(request_id, who.username, body.reason)
    return request_out(await rt.missions.requests.get(request_id))


@router.post("/{request_id}/cancel", response_model=RequestOut)
async def cancel_request(
    request_id: str, body: CancelIn, rt: RuntimeDep, who: RequesterDep
) -> RequestOut:
    """Cancel a request that has not left the warehouse (409 otherwise: cancel its mission).
    Community staff cancel their communities' requests."""
    request_visible(who, await rt.missions.requests.get(request_id))
    record = await rt.missions.cancel_request(request_id, who.username, body.reason)
    return request_out(record)


@router.post(
    "/{request_id}/priority",
    response_model=RequestOut,
    responses={409: {"description": "The request is closed"}},
)
async def change_priority(
    request_id: str, body: PriorityIn, rt: RuntimeDep, who: OperatorDep
) -> RequestOut:
    """Change the priority class of an open request (the reason is required and recorded).

    It is re-planned: its missions that have not started are cancelled and its work is
    allocated and planned again under the new class in the next dispatch round; a mission a
    vehicle has started is kept (a ``kept`` decision says so)."""
    await rt.missions.change_priority(request_id, body.priority, who.username, body.reason)
    record = await rt.missions.requests.get(request_id)
    tasks = await rt.store.request_tasks(request_id)
    events = await rt.store.events(request_id=request_id)
    return request_out(record, tasks, events)
