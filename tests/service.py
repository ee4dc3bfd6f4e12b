"""Start the real service (uvicorn on a free port) inside a test, and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.runtime import Runtime
from fleet.clock import Clock
from fleet.settings import Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
WORLDS = ROOT / "examples" / "worlds"


@dataclass
class RunningService:
    """A service started by a test."""

    url: str
    http: httpx.AsyncClient
    runtime: Runtime
    settings: Settings


def service_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: its own SQLite file, the Shatou world, a free port."""
    base: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'streetfleet.db'}"},
        "world": {"path": str(WORLDS / "shatou.geojson")},
        "service": {"port": free_port()},
        "logging": {"level": "warning"},
        "vda5050": {"links": []},  # tests that drive vans configure their broker and links
        # vehicles' event metadata is cached per test, not in the checkout's var/
        "mavlink": {"metadata_cache_dir": str(tmp_path / "mavlink-metadata")},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return Settings.load(**base)


@asynccontextmanager
async def running_service(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[RunningService]:
    """Run the app under uvicorn until the block ends.

    The listening socket is bound here (port 0 when ``service.port`` is taken or 0), so tests
    running side by side never race for a port; the settings the app sees carry the real port
    (the service builds its own URLs from it). A start-up failure fails the test with its cause
    instead of uvicorn's ``sys.exit``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", settings.service.port))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    settings = settings.model_copy(
        update={"service": settings.service.model_copy(update={"port": port})}
    )
    app = create_app(settings, clock)
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, lifespan="on", log_level="warning")
    )

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits the process when start-up fails
            raise RuntimeError(f"the service failed to start (uvicorn exit {exc.code})") from None

    task = asyncio.create_task(serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the service stopped during start-up")
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
            yield RunningService(url, http, app.state.runtime, settings)
    finally:
        server.should_exit = True
        await task
        sock.close()
