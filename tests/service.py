"""Start the real service (uvicorn on a free port) inside a test, and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.auth import Authenticator
from api.runtime import Runtime
from fleet.accounts import Role, principal_of
from fleet.clock import Clock
from fleet.errors import NotFound
from fleet.settings import Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
WORLDS = ROOT / "examples" / "worlds"


@dataclass
class RunningService:
    """A service started by a test. ``http`` acts as an admin account (``test-admin``);
    :meth:`client` gives a client signed in as another account."""

    url: str
    http: httpx.AsyncClient
    runtime: Runtime
    settings: Settings
    auth: Authenticator
    app: FastAPI
    _clients: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def token(self, username: str, role: Role | str, communities: Sequence[str] = ()) -> str:
        """An access token for the account ``username`` (created with ``role`` and
        ``communities`` the first time), as ``POST /v1/auth/token`` would issue it."""
        try:
            account = await self.runtime.store.account(username=username)
        except NotFound:
            account = await self.auth.accounts.create(
                username,
                str(role),
                password=None,
                communities=communities,
                actor="test",
                at=self.runtime.clock.now(),
            )
        return str(self.auth.issue(principal_of(account))["access_token"])

    async def client(
        self, username: str, role: Role | str, communities: Sequence[str] = ()
    ) -> httpx.AsyncClient:
        """A client signed in as ``username`` (closed when the service stops)."""
        token = await self.token(username, role, communities)
        return await self._clients.enter_async_context(
            httpx.AsyncClient(
                base_url=self.url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
            )
        )


def service_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: its own SQLite file, the Shatou world, a free port."""
    base: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'streetfleet.db'}"},
        "world": {"path": str(WORLDS / "shatou.geojson")},
        "service": {"port": free_port()},
        "logging": {"level": "warning"},
        "auth": {"secret": secrets.token_urlsafe(32)},
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
            svc = RunningService(url, http, app.state.runtime, settings, app.state.auth, app)
            http.headers["Authorization"] = f"Bearer {await svc.token('test-admin', Role.ADMIN)}"
            async with svc._clients:
                yield svc
    finally:
        server.should_exit = True
        await task
        sock.close()
