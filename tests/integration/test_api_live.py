"""The dashboard, the world as GeoJSON and the live event stream, over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service import RunningService, running_service, service_settings


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[RunningService]:
    async with running_service(service_settings(tmp_path)) as s:
        yield s


async def test_dashboard_is_served(svc: RunningService) -> None:
    r = await svc.http.get("/", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/dashboard/"
    page = await svc.http.get("/dashboard/")
    assert page.status_code == 200
    assert "<svg" in page.text
    for asset in ("app.js", "style.css"):
        assert (await svc.http.get(f"/dashboard/{asset}")).status_code == 200


async def test_world_is_geojson(svc: RunningService) -> None:
    world = (await svc.http.get("/v1/world")).json()
    assert world["type"] == "FeatureCollection"
    kinds = [f["properties"]["kind"] for f in world["features"]]
    assert kinds.count("community") == 12
    assert kinds.count("no_fly_zone") == 1
    area = next(f for f in world["features"] if f["properties"]["kind"] == "operating_area")
    ring = area["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    lon, lat = ring[0]
    assert 113 < lon < 115
    assert 22 < lat < 23


async def test_event_stream_carries_request_events(svc: RunningService) -> None:
    seen: list[dict[str, object]] = []

    async def listen() -> None:
        async with svc.http.stream("GET", "/v1/events/stream") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if any(e.get("to_state") == "approved" for e in seen):
                        return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0)  # let the stream open before the request is made
    for _ in range(100):
        if listener.done():
            break
        await svc.http.post(
            "/v1/requests",
            json={"community_id": "C01", "items": [{"sku_id": "medicine", "quantity": 1}]},
        )
        try:
            await asyncio.wait_for(asyncio.shield(listener), 2.0)
        except TimeoutError:
            continue
    await listener
    approved = next(e for e in seen if e.get("to_state") == "approved")
    assert approved["type"] == "mission_event"
    assert approved["request_id"]
