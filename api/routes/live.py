"""``/v1/world`` and ``/v1/events/stream``: the operating area as GeoJSON and a live event feed.

The feed is Server-Sent Events: one ``data:`` line of JSON per mission event (state changes,
phases, decisions, payload actions) and per vehicle event (discovery, link, status texts,
failsafes), for the dashboard and for other departments' consumers. A slow client loses the
oldest events (the bus never blocks) and is told how many with an ``event: dropped`` message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from api.auth import ANY, Allow, AnyoneDep
from api.deps import RuntimeDep
from api.runtime import Runtime
from fleet.accounts import Principal
from fleet.errors import NotFound
from fleet.events import FleetEvent, VehicleEvent
from fleet.world import World
from missions.journal import MissionEventPublished

router = APIRouter(prefix="/v1", tags=["live"])

KEEPALIVE_S = 15.0
"""Real seconds between keep-alive comments on an idle stream."""


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


def _event_json(event: FleetEvent) -> dict[str, Any]:
    kind = "mission_event" if isinstance(event, MissionEventPublished) else "vehicle_event"
    return {"type": kind, **dataclasses.asdict(event)}


class Scope:
    """Which events a member of community staff sees: mission events of their communities'
    requests and of missions that carry their work; no vehicle events. Lookups are cached for
    the life of the stream."""

    def __init__(self, rt: Runtime, who: Principal) -> None:
        self.rt, self.who = rt, who
        self._requests: dict[str, bool] = {}
        self._missions: dict[str, bool] = {}

    async def visible(self, event: FleetEvent) -> bool:
        if not self.who.scoped:
            return True
        if not isinstance(event, MissionEventPublished):
            return False
        if event.request_id is not None:
            seen = self._requests.get(event.request_id)
            if seen is None:
                try:
                    rec = await self.rt.store.get_request(event.request_id)
                    seen = self.who.may_act_for(rec.request.community_id)
                except NotFound:
                    seen = False
                self._requests[event.request_id] = seen
            if seen:
                return True
        if event.mission_id is not None:
            seen = self._missions.get(event.mission_id)
            if seen is None:
                tasks = await self.rt.store.mission_tasks(event.mission_id)
                seen = any(self.who.may_act_for(t.community_id) for t in tasks)
                self._missions[event.mission_id] = seen
            return seen
        return False


@router.get("/events/stream", response_class=StreamingResponse)
async def stream_events(
    request: Request,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(Allow(*ANY, query_token=True))],
) -> StreamingResponse:
    """Server-Sent Events: mission and vehicle events as they happen. Browsers' EventSource
    cannot send headers: it may pass the access token as ``?access_token=``. Community staff
    see the mission events of their communities' work only."""
    scope = Scope(rt, who)
    sub = rt.bus.subscribe(
        lambda e: isinstance(e, MissionEventPublished | VehicleEvent), maxsize=1000
    )

    async def body() -> AsyncIterator[str]:
        dropped = 0
        try:
            yield ": streetfleet events\n\n"
            while not await request.is_disconnected():
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        event = await sub.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if not await scope.visible(event):
                    continue
                if sub.dropped != dropped:
                    yield f"event: dropped\ndata: {sub.dropped - dropped}\n\n"
                    dropped = sub.dropped
                yield f"data: {json.dumps(_event_json(event), default=str)}\n\n"
        finally:
            sub.close()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
