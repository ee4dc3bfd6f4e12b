"""The service endpoints over real HTTP: problems for unknown paths, wrong methods and
unexpected exceptions, liveness, readiness (and what it says when the database is gone), and the
Prometheus metrics, with a sim drone on a real MAVLink UDP link."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from structlog.testing import capture_logs

from api import problems
from fleet.worldfile import load_world
from missions.states import MissionState
from sim.runner import SimFleet
from tests.service import WORLDS, RunningService, running_service, service_settings
from tests.support import eventually, free_port

PROBLEM = "application/problem+json"


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[RunningService]:
    """The service without vehicles; its SQLite file in a directory of its own."""
    db = tmp_path / "db" / "streetfleet.db"
    settings = service_settings(tmp_path, database={"url": f"sqlite:///{db}"})
    async with running_service(settings) as s:
        yield s


@pytest.fixture
async def drone_svc(tmp_path: Path) -> AsyncIterator[tuple[RunningService, str]]:
    """The service with one MAVLink link and one sim drone on it; yields the link URL too."""
    port = free_port(socket.SOCK_DGRAM)
    url = f"mavlink+udpin://127.0.0.1:{port}"
    world = load_world(WORLDS / "shatou.geojson")
    settings = service_settings(tmp_path, mavlink={"links": [url]})
    async with (
        running_service(settings) as s,
        SimFleet(1, world=world, first_port=port),
    ):
        await eventually(lambda: "drone-1" in s.runtime.registry, timeout=20, message="discovery")
        yield s, url


def is_problem(r: httpx.Response, status: int, type_: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body: dict[str, object] = r.json()
    assert body["type"] == type_, body
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


async def test_unknown_paths_and_methods_are_problems(svc: RunningService) -> None:
    r = await svc.http.get("/v1/nothing-here")
    body = is_problem(r, 404, "/problems/not-found")
    assert body["title"] == "NotFound"  # the same type and title as an unknown id
    assert "/v1/nothing-here" in str(body["detail"])

    r = await svc.http.delete("/healthz")
    body = is_problem(r, 405, "/problems/method-not-allowed")
    assert r.headers["allow"] == "GET"
    assert body["allowed"] == ["GET"]
    assert "DELETE" in str(body["detail"]) and "/healthz" in str(body["detail"])

    r = await svc.http.put("/v1/requests", json={})
    is_problem(r, 405, "/problems/method-not-allowed")
    assert r.headers["allow"]

    # the dashboard is still served, and its missing files are problems too
    assert (await svc.http.get("/dashboard/")).status_code == 200
    assert (await svc.http.get("/dashboard/app.js")).status_code == 200
    is_problem(await svc.http.get("/dashboard/missing.js"), 404, "/problems/not-found")
    r = await svc.http.post("/dashboard/app.js")
    is_problem(r, 405, "/problems/method-not-allowed")
    assert r.headers["allow"] == "GET, HEAD"


async def test_unexpected_exception_is_a_500_problem_that_tells_nothing() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-token in the exception text")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, message="uvicorn started")
        port = sock.getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            with capture_logs() as logs:
                r = await http.get("/boom")
            body = is_problem(r, 500, "/problems/internal")
            assert "secret-token" not in r.text and "Traceback" not in r.text
            assert "RuntimeError" not in r.text
            assert set(body) == {"type", "title", "status", "detail"}
            # the log has it all, once
            errors = [e for e in logs if e["event"] == "api.internal_error"]
            assert len(errors) == 1 and errors[0]["path"] == "/boom"
            assert errors[0]["exc_info"] is True
            # the server goes on answering
            is_problem(await http.get("/nothing"), 404, "/problems/not-found")
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_healthz_and_readyz_when_all_is_up(
    drone_svc: tuple[RunningService, str],
) -> None:
    svc, _ = drone_svc
    r = await svc.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}

    async def ready() -> httpx.Response | None:
        r = await svc.http.get("/readyz")
        return r if r.status_code == 200 else None

    # the speaker link connects to the embedded broker just after start
    r = await eventually(ready, timeout=15, message="/readyz 200")
    body = r.json()
    assert body["status"] == "ready"
    checks = body["checks"]
    assert set(checks) == {"database", "mqtt", "vehicle_links"}
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert "1 MAVLink link(s) open" in checks["vehicle_links"]["detail"]


async def test_readyz_names_the_database_when_it_is_gone(
    svc: RunningService, tmp_path: Path
) -> None:
    await eventually(
        lambda: _status(svc, "/readyz"), timeout=15, message="/readyz 200 before the outage"
    )
    r = await svc.http.get("/readyz")
    assert r.json()["checks"]["vehicle_links"]["status"] == "skipped"  # no MAVLink link here

    # the database goes away: its directory is moved, and the pool lets go of the connections
    # it holds (as after a restart of the database), so the next query must open the file again
    (tmp_path / "db").rename(tmp_path / "db-away")
    try:
        await svc.runtime.store.engine.dispose()
        r = await svc.http.get("/readyz")
        body = is_problem(r, 503, "/problems/not-ready")
        assert body["failed"] == ["database"]
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"]["status"] == "failed"
        assert "unable to open database file" in checks["database"]["detail"]
        assert str(body["detail"]).startswith("database: ")
        assert checks["mqtt"]["status"] == "ok"
        # metrics still answer, without the mission counts the database cannot give
        families = await _metrics(svc)
        assert "streetfleet_missions" not in families
        assert "streetfleet_vehicles" in families
    finally:
        (tmp_path / "db-away").rename(tmp_path / "db")
    await eventually(
        lambda: _status(svc, "/readyz"), timeout=15, message="/readyz 200 once the database is back"
    )


async def test_metrics(drone_svc: tuple[RunningService, str]) -> None:
    svc, link = drone_svc
    dispatcher = svc.runtime.missions.dispatcher
    await eventually(lambda: dispatcher.rounds >= 1, timeout=15, message="a dispatch round")

    r = await svc.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    families = await _metrics(svc)

    vehicles = families["streetfleet_vehicles"]
    assert vehicles.type == "gauge"
    drones = {s.labels["link"]: s.value for s in vehicles.samples if s.labels["kind"] == "drone"}
    assert drones == {"online": 1, "lost": 0, "offline": 0, "unknown": 0}
    assert sum(s.value for s in vehicles.samples) == 1

    missions = families["streetfleet_missions"]
    assert missions.type == "gauge"
    by_state = {s.labels["state"]: s.value for s in missions.samples}
    assert set(by_state) == {s.value for s in MissionState}
    assert sum(by_state.values()) == len((await svc.http.get("/v1/missions")).json())

    rounds = families["streetfleet_dispatch_round_seconds"]
    assert rounds.type == "histogram"
    buckets = [s for s in rounds.samples if s.name.endswith("_bucket")]
    values = [s.value for s in buckets]
    assert values == sorted(values)  # cumulative
    assert buckets[-1].labels["le"] == "+Inf"
    count = _one(rounds.samples, "streetfleet_dispatch_round_seconds_count").value
    total = _one(rounds.samples, "streetfleet_dispatch_round_seconds_sum").value
    assert count >= 1 and buckets[-1].value == count
    assert 0 < total < 60 * count

    # MAVLink counters of the drone's link grow while it streams telemetry
    def datagrams(fams: dict[str, Metric]) -> float:
        fam = fams["streetfleet_mavlink_datagrams"]
        return _one(fam.samples, "streetfleet_mavlink_datagrams_total", link=link).value

    first = datagrams(families)
    assert first > 0
    frames = families["streetfleet_mavlink_frames"]
    assert frames.type == "counter"
    assert _one(frames.samples, "streetfleet_mavlink_frames_total", direction="sent").value > 0
    received = _one(frames.samples, "streetfleet_mavlink_frames_total", direction="received")
    assert received.value >= first
    dropped = families["streetfleet_mavlink_frames_dropped"]
    reasons = {s.labels["reason"] for s in dropped.samples if s.name.endswith("_total")}
    assert reasons == {"unused", "foreign", "truncated", "bad_crc", "bad_signature"}

    async def grown() -> bool:
        return datagrams(await _metrics(svc)) > first

    await eventually(grown, timeout=10, message="the datagram counter grows")

    # the speaker link's MQTT connection is counted too
    connected = families["streetfleet_mqtt_connected"]
    assert [s.value for s in connected.samples] == [1]
    connects = families["streetfleet_mqtt_connects"]
    assert [s.value >= 1 for s in connects.samples if s.name.endswith("_total")] == [True]


async def _status(svc: RunningService, path: str, status: int = 200) -> bool:
    return (await svc.http.get(path)).status_code == status


async def _metrics(svc: RunningService) -> dict[str, Metric]:
    r = await svc.http.get("/metrics")
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _one(samples: list[Sample], name: str, **labels: str) -> Sample:
    found = [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, samples)
    return found[0]
