"""``/v1/broadcasts``: loudspeaker broadcast requests; ``/v1/requests/{id}/report``: their proof.

A broadcast request is stored like any request (``GET /v1/requests`` lists it, ``approve``,
``reject`` and ``cancel`` work on it); these routes add what is broadcast-specific: submitting
one (its text is spoken at once), reading it with its clip and occurrences, and the proof of
coverage of each occurrence as JSON and as a PNG map.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Response, status

from api.auth import AnyoneDep, Forbidden, RequesterDep
from api.deps import RuntimeDep
from api.problems import problem
from api.schemas import (
    MAX_OFFSET,
    BroadcastClipOut,
    BroadcastOut,
    BroadcastRequestIn,
    CoverageOut,
    RecurringIn,
)
from api.scope import communities, may_ask_for, request_visible
from api.views import request_out
from fleet.errors import ConfigError
from fleet.store.repository import RequestRecord
from fleet.store.tables import MissionEvent, Task
from missions.broadcast.occurrences import entries
from missions.broadcast.request import broadcast_from_dict
from missions.broadcast.run import clip_url, service_url
from missions.states import RequestKind, RequestState

router = APIRouter(tags=["broadcasts"])

PNG = "image/png"
"""Media type of the coverage map."""


def _plain(body: BroadcastRequestIn, idempotency_key: str | None) -> dict[str, Any]:
    """The body in the form ``broadcast_from_dict`` reads (the stored form)."""
    area: dict[str, Any] = (
        {"community_id": body.area.community_id}
        if body.area.community_id is not None
        else {"vertices": [[lat, lon] for lat, lon in body.area.vertices or []]}
    )
    m = body.message
    message: dict[str, Any] = (
        {"text": m.text, "language": m.language, "voice": m.voice, "rate_wpm": m.rate_wpm}
        if m.text is not None
        else {"clip_sha256": m.clip_sha256, "language": m.language}
    )
    schedule = body.schedule.model_dump(mode="json")
    if isinstance(body.schedule, RecurringIn):
        times = body.schedule.times_of_day
        schedule["times_of_day"] = [t.isoformat(timespec="minutes") for t in times]
    return {
        "area": area,
        "message": message,
        "volume": body.volume,
        "repeats": body.repeats,
        "period_s": body.period_s,
        "schedule": schedule,
        "priority": body.priority,
        "note": body.note,
        "requested_by": body.requested_by,
        "idempotency_key": idempotency_key,
    }


def broadcast_out(
    rt: Any,
    rec: RequestRecord,
    tasks: list[Task] | None = None,
    events: list[MissionEvent] | None = None,
) -> BroadcastOut:
    base = request_out(rec, tasks or [], events)
    d = rec.request.details
    clip = d["clip"]
    return BroadcastOut(
        **base.model_dump(),
        area=d["area"],
        resolved_area=d["resolved_area"],
        message=d["message"],
        volume=d["volume"],
        repeats=d["repeats"],
        period_s=d["period_s"],
        schedule=d["schedule"],
        clip=BroadcastClipOut(
            sha256=clip["sha256"],
            duration_s=clip["duration_s"],
            source=clip["source"],
            url=clip_url(service_url(rt.broadcasts.ctx), clip["sha256"]),
        ),
        preview=d.get("preview", {}),
        occurrences=entries(d),
    )


@router.post(
    "/v1/broadcasts",
    status_code=status.HTTP_201_CREATED,
    response_model=BroadcastOut,
    responses={
        200: {"description": "Replay of an earlier request with the same Idempotency-Key"},
        422: {"description": "Invalid body, or an area that cannot be covered: the problem says"},
        503: {"description": "Text to speech is unavailable (espeak-ng missing or no voice)"},
    },
)
async def submit_broadcast(
    body: BroadcastRequestIn,
    rt: RuntimeDep,
    who: RequesterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> Any:
    """Request a broadcast. The text is spoken at once (listen to it at ``clip.url``), the area
    is checked to be coverable, and the request is stored before the answer. Community staff
    broadcast over one of their whole communities (``area.community_id``; a drawn area, which
    may reach over others, is for operators; 403 otherwise)."""
    if who.scoped:
        if body.area.community_id is None:
            raise Forbidden("community staff broadcast over a community: give area.community_id")
        may_ask_for(who, body.area.community_id)
        if body.community_id is not None:
            may_ask_for(who, body.community_id)
    new = broadcast_from_dict(_plain(body, idempotency_key))
    try:
        sub = await rt.broadcasts.submit(new, who.username, body.community_id)
    except ConfigError as exc:
        return problem(
            503,
            "speech-unavailable",
            "SpeechUnavailable",
            exc.message,
            package=exc.fields.get("package"),
            language=exc.fields.get("language"),
        )
    if not sub.created:
        response.status_code = status.HTTP_200_OK
    if sub.record.request.kind != RequestKind.BROADCAST:
        return problem(
            409,
            "conflict",
            "Conflict",
            "the Idempotency-Key names a request of another kind",
            request_id=sub.record.request.id,
        )
    response.headers["Location"] = f"/v1/broadcasts/{sub.record.request.id}"
    return broadcast_out(rt, sub.record)


@router.get("/v1/broadcasts", response_model=list[BroadcastOut])
async def list_broadcasts(
    rt: RuntimeDep,
    who: AnyoneDep,
    state: Annotated[list[RequestState] | None, Query()] = None,
    community_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[BroadcastOut]:
    """Broadcast requests, oldest first, filtered by state and community (community staff:
    their communities')."""
    if community_id is not None:
        may_ask_for(who, community_id)
    records = await rt.store.list_requests(
        communities=communities(who),
        states=[str(s) for s in state] if state else None,
        community_id=community_id,
        kind=RequestKind.BROADCAST,
        limit=limit,
        offset=offset,
    )
    by_request: dict[str, list[Task]] = {}
    for task in await rt.store.tasks_of_requests(r.request.id for r in records):
        by_request.setdefault(task.request_id, []).append(task)
    return [broadcast_out(rt, r, by_request.get(r.request.id, [])) for r in records]


@router.get("/v1/broadcasts/{request_id}", response_model=BroadcastOut)
async def get_broadcast(request_id: str, rt: RuntimeDep, who: AnyoneDep) -> BroadcastOut:
    """A broadcast request with its clip, its occurrences, missions and full history."""
    rec = request_visible(who, await rt.broadcasts.get(request_id))
    tasks = list(await rt.store.request_tasks(request_id))
    events = list(await rt.store.events(request_id=request_id))
    return broadcast_out(rt, rec, tasks, events)


@router.get(
    "/v1/requests/{request_id}/report",
    response_model=CoverageOut,
    responses={404: {"description": "Not a broadcast, or nothing flown yet"}},
)
async def broadcast_report(
    request_id: str,
    rt: RuntimeDep,
    who: AnyoneDep,
    occurrence: Annotated[
        str | None, Query(description="Occurrence (ISO 8601 UTC); default: the latest flown")
    ] = None,
    cells: Annotated[bool, Query(description="List [ix, iy, count] for every grid cell")] = False,
) -> CoverageOut:
    """The proof of coverage of a broadcast occurrence, computed from what the speaker payloads
    recorded: the share of the area that heard the message the requested number of times, hear
    counts, start and end, and any playback outside the polygon. While the drones still fly it
    shows the records received so far (``state`` ``in_progress``)."""
    rec = request_visible(who, await rt.broadcasts.get(request_id))
    proof = await rt.broadcasts.proof(request_id, occurrence)
    data = proof.report.to_dict(cells=cells)
    first = proof.missions[0].plan
    png = f"/v1/requests/{request_id}/report.png?" + urlencode({"occurrence": proof.occurrence})
    return CoverageOut(
        request_id=request_id,
        occurrence=proof.occurrence,
        attempt=proof.attempt,
        state=proof.state,
        missions=[m.id for m in proof.missions],
        vehicles=[m.vehicle_id for m in proof.missions],
        predicted_coverage=first.get("predicted_coverage"),
        target_coverage=rt.settings.broadcast.target_coverage,
        occurrences=entries(rec.request.details),
        png_url=png,
        **data,
    )


@router.get(
    "/v1/requests/{request_id}/report.png",
    response_class=Response,
    responses={200: {"content": {PNG: {}}, "description": "Map of the covered cells"}},
)
async def broadcast_report_png(
    request_id: str,
    rt: RuntimeDep,
    who: AnyoneDep,
    occurrence: Annotated[str | None, Query()] = None,
) -> Response:
    """A map of the proof: cells coloured by hear count (red none, orange fewer than asked,
    greens enough), the area's outline, the flight track and where the speaker sounded."""
    request_visible(who, await rt.broadcasts.get(request_id))
    data = await rt.broadcasts.proof_png(request_id, occurrence)
    return Response(data, media_type=PNG, headers={"Cache-Control": "no-cache"})
