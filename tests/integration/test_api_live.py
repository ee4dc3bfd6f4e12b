"""The dashboard, the world as GeoJSON and the live event stream, over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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


async def _submit(http: Any, community: str) -> str:
    r = await http.post(
        "/v1/requests",
        json={"community_id": community, "items": [{"sku_id": "medicine", "quantity": 1}]},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _read(
    http: Any, n: int, *, headers: dict[str, str] | None = None, params: Any = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    """The first ``n`` event messages of a stream (and any telemetry seen meanwhile)."""
    events: list[dict[str, Any]] = []
    telemetry: list[dict[str, Any]] = []
    ids: list[int] = []
    async with asyncio.timeout(20):
        async with http.stream(
            "GET", "/v1/events/stream", headers=headers or {}, params=params
        ) as r:
            assert r.status_code == 200
            kind = None
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("id: "):
                    ids.append(int(line[4:]))
                elif line.startswith("data: "):
                    (telemetry if kind == "telemetry" else events).append(json.loads(line[6:]))
                    kind = None
                    if len(events) >= n:
                        break
    return events, telemetry, ids


async def test_the_stream_resumes_after_the_last_event_id_and_loses_nothing(
    svc: RunningService,
) -> None:
    first = await _submit(svc.http, "C01")
    events = await svc.runtime.store.events(request_id=first)
    start = events[0].id
    assert start is not None
    # a client that saw the request's first event resumes after it and gets the rest, in order
    got, _, ids = await _read(
        svc.http, 2, headers={"Last-Event-ID": str(start)}, params={"telemetry": "false"}
    )
    assert ids == sorted(ids) and ids[0] > start
    assert all(e["id"] == i for e, i in zip(got, ids, strict=True))
    # ?after_id= does the same
    _again, _, ids2 = await _read(svc.http, 2, params={"after_id": start, "telemetry": "false"})
    assert ids2 == ids


async def test_telemetry_is_sent_when_it_changes_at_most_twice_a_second(
    svc: RunningService,
) -> None:
    from fleet.geo import Position
    from fleet.vehicle import LinkState, VehicleInfo, VehicleKind, VehicleStatus

    reg = svc.runtime.registry
    entry = reg.add(
        VehicleInfo("drone-77", VehicleKind.DRONE, "test://", "77"),
        None,
        VehicleStatus(link=LinkState.ONLINE, position=Position(22.53, 114.05, 40, 30)),
    )
    seen: list[float] = []

    async def move() -> None:
        for i in range(60):  # 20 Hz for 3 s
            entry.status.position = Position(22.53 + i * 1e-5, 114.05, 40, 30)
            reg.touch("drone-77")
            await asyncio.sleep(0.05)

    mover = asyncio.create_task(move())
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(20):
        async with svc.http.stream("GET", "/v1/events/stream") as r:
            kind = None
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "telemetry":
                    msg = json.loads(line[6:])
                    if msg["vehicle_id"] == "drone-77":
                        seen.append(loop.time())
                        assert msg["position"]["rel_alt"] == 30
                    if len(seen) >= 4:
                        break
    await mover
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert min(gaps) >= 0.45, gaps  # 2 Hz at most, though it changed at 20 Hz


async def test_community_staff_see_their_communities_events_only(svc: RunningService) -> None:
    staff = await svc.client("c01-stream", "community_staff", ["C01"])
    mark = await svc.runtime.store.last_event_id()
    theirs = await _submit(svc.http, "C02")
    mine = await _submit(svc.http, "C01")
    got, telemetry, _ = await _read(staff, 2, params={"after_id": mark})
    assert {e["request_id"] for e in got} == {mine}, got
    assert theirs not in {e["request_id"] for e in got}
    assert telemetry == []


async def test_the_websocket_carries_the_same_feed_and_refuses_without_a_token(
    svc: RunningService,
) -> None:
    import websockets

    mark = await svc.runtime.store.last_event_id()
    rid = await _submit(svc.http, "C03")
    url = svc.url.replace("http://", "ws://") + f"/v1/events/ws?after_id={mark}&telemetry=false"
    token = svc.http.headers["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(url + f"&access_token={token}") as ws:
        msgs = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
    assert all(m["request_id"] == rid and m["id"] > mark for m in msgs), msgs
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(url) as ws:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
