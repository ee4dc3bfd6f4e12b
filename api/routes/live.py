"""``/v1/world``, ``/v1/events/stream`` and ``/v1/events/ws``: the operating area as GeoJSON
and the live feed (``api.stream``) as Server-Sent Events and over a WebSocket.

The feed carries every recorded mission event (state changes, phases, decisions, payload
actions) and vehicle event (discovery, link, status texts, failsafes) with its id, resumable,
and vehicle telemetry at most twice a second per vehicle, for the dashboard and for other
departments' consumers; each caller sees what its role and communities allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from api.auth import ANY, Allow, AnyoneDep, Unauthenticated
from api.deps import RuntimeDep
from api.runtime import Runtime
from api.schemas import MAX_ID
from api.stream import feed
from fleet.accounts import Principal
from fleet.world import World

router = APIRouter(prefix="/v1", tags=["live"])

KEEPALIVE_S = 15.0
"""Real seconds between keep-alive comments on an idle stream."""
TELEMETRY_HZ = 2.0
"""Telemetry messages per second per vehicle, at most."""


def _ring(points: tuple[tuple[float, float], ...]) -> list[list[float]]:
    ring = [[lon, lat] for lat, lon in points]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def world_geojson(world: World) -> dict[str, Any]:
    """The world as a GeoJSON FeatureCollection ([lon, lat], RFC 7946)."""
    feats: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {"kind": "operating_area", "name": world.name},
            "geometry": {"type": "Polygon", "coordinates": [_ring(world.boundary)]},
        }
    ]
    for c in world.communities:
        feats.append(
            {
                "type": "Feature",
                "properties": {
                    "kind": "community",
                    "id": c.id,
                    "name": c.name,
                    "name_zh": c.name_zh,
                    "population": c.population,
                    "gate": [c.gate.lon, c.gate.lat],
                    "drop_point": [c.drop_point.lon, c.drop_point.lat],
                },
                "geometry": {"type": "Polygon", "coordinates": [_ring(c.boundary)]},
            }
        )
    for z in world.no_fly_zones:
        feats.append(
            {
                "type": "Feature",
                "properties": {
                    "kind": "no_fly_zone",
                    "id": z.id,
                    "name": z.name,
                    "ceiling_m": z.ceiling_m,
                },
                "geometry": {"type": "Polygon", "coordinates": [_ring(z.boundary)]},
            }
        )
    for r in world.roads:
        feats.append(
            {
                "type": "Feature",
                "properties": {"kind": "road", "id": r.id, "name": r.name},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[lon, lat] for lat, lon in r.points],
                },
            }
        )
    for w in world.warehouses:
        feats.append(
            {
                "type": "Feature",
                "properties": {"kind": "warehouse", "id": w.id, "name": w.name},
                "geometry": {"type": "Point", "coordinates": [w.location.lon, w.location.lat]},
            }
        )
    for p in world.pads:
        feats.append(
            {
                "type": "Feature",
                "properties": {"kind": "pad", "id": p.id, "warehouse_id": p.warehouse_id},
                "geometry": {"type": "Point", "coordinates": [p.location.lon, p.location.lat]},
            }
        )
    return {"type": "FeatureCollection", "properties": {"name": world.name}, "features": feats}


@router.get("/world")
async def get_world(rt: RuntimeDep, who: AnyoneDep) -> dict[str, Any]:
    """The operating area: communities, warehouses, pads, no-fly zones and roads (GeoJSON)."""
    return world_geojson(rt.world)


def _after(request_after: int | None, last_event_id: str | None) -> int | None:
    """Where a feed resumes: ``?after_id=``, else the SSE ``Last-Event-ID`` header."""
    if request_after is not None:
        return request_after
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return None


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The live feed"}},
)
async def stream_events(
    request: Request,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(Allow(*ANY, query_token=True))],
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    telemetry: Annotated[bool, Query(description="Send vehicle telemetry (2 Hz)")] = True,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """Server-Sent Events (``api.stream``): every recorded request, mission and vehicle event
    with its ``id`` (resume with ``Last-Event-ID`` or ``?after_id=``: nothing is lost or sent
    twice), and ``event: telemetry`` messages with each vehicle's live status, at most 2 Hz per
    vehicle. Browsers' EventSource cannot send headers: it may pass the access token as
    ``?access_token=``. Community staff see their communities' work only."""
    items = feed(
        rt,
        who,
        _after(after_id, last_event_id),
        telemetry_hz=TELEMETRY_HZ,
        telemetry=telemetry,
    )

    async def body() -> AsyncIterator[str]:
        try:
            yield ": streetfleet events\n\n"
            next_item = asyncio.ensure_future(anext(items))
            while not await request.is_disconnected():
                done, _ = await asyncio.wait({next_item}, timeout=KEEPALIVE_S)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                msg = next_item.result()
                next_item = asyncio.ensure_future(anext(items))
                text = json.dumps(msg, default=str)
                if msg["type"] == "telemetry":
                    yield f"event: telemetry\ndata: {text}\n\n"
                else:
                    yield f"id: {msg['id']}\ndata: {text}\n\n"
            next_item.cancel()
        finally:
            await items.aclose()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.websocket("/events/ws")
async def events_websocket(
    ws: WebSocket,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    telemetry: bool = True,
) -> None:
    """The same feed as ``/v1/events/stream`` over a WebSocket: one JSON text message each
    (events carry their ``id``; resume with ``?after_id=``). Authenticate with
    ``Authorization: Bearer`` or ``X-API-Key`` on the upgrade request, or ``?access_token=``
    (browsers cannot set headers on a WebSocket); without valid credentials the socket is
    closed with code 1008 (policy violation) and the reason."""
    auth = ws.app.state.auth
    token = (
        ws.headers.get("x-api-key")
        or ws.headers.get("authorization", "").removeprefix("Bearer ").strip()
        or ws.query_params.get("access_token", "")
    )
    try:
        if not token:
            raise Unauthenticated("no credentials")
        who = await auth.from_token(token)
    except Unauthenticated as exc:
        await ws.accept()  # accepted first, so that the client reads the code and the reason
        await ws.close(code=1008, reason=exc.message[:120])
        return
    await ws.accept()
    rt: Runtime = ws.app.state.runtime
    items = feed(rt, who, after_id, telemetry_hz=TELEMETRY_HZ, telemetry=telemetry)

    async def closed() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await ws.receive_text()  # the client sends nothing we need; this sees it leave

    watcher = asyncio.create_task(closed())
    try:
        async for msg in items:
            if watcher.done():
                break
            await ws.send_text(json.dumps(msg, default=str))
    except WebSocketDisconnect:
        pass
    finally:
        watcher.cancel()
        await items.aclose()
