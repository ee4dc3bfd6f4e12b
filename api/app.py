"""The FastAPI app factory, the composition root of the HTTP service.

``create_app(settings)`` builds the app; its lifespan opens the runtime (store, links, mission
services) and closes it on shutdown. Settings are built once, by the caller or here from the
environment, never at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import auth, problems
from api.audit import AuditTrail
from api.metrics import ServiceMetrics
from api.openapi import describe_security
from api.routes import (
    accounts,
    broadcasts,
    clips,
    commands,
    decisions,
    inventory,
    live,
    missions,
    requests,
    service,
    vehicles,
)
from api.routes import shuttle as shuttle_routes
from api.runtime import open_runtime
from fleet.accounts import Accounts
from fleet.clock import Clock
from fleet.settings import Settings

STATIC_DIR = Path(__file__).with_name("static")
"""The dashboard's files (served at ``/dashboard/``)."""

API_DESCRIPTION = """
Fleet control for lockdown logistics: delivery requests from community staff, drone and van
missions, live vehicles, stock. Errors are RFC 9457 problems naming the field and the reason.
"""


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the HTTP app; the runtime starts with the app's lifespan."""
    settings = settings or Settings.load()
    secret = auth.token_secret(settings)  # refuses a missing or default one outside development

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, clock) as runtime:
            app.state.runtime = runtime
            app.state.auth = auth.Authenticator(
                secret,
                Accounts(runtime.store, {c.id for c in runtime.world.communities}),
                settings.auth.access_token_ttl_s,
                settings.auth.refresh_token_ttl_s,
                settings.auth.principal_cache_s,
            )
            yield

    app = FastAPI(
        title="streetfleet",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()  # the app's own registry: apps in one process never mix
    problems.install(app)
    app.add_middleware(AuditTrail)  # outermost: it sees every answer, a 500 problem included
    app.include_router(auth.router)
    app.include_router(accounts.router)
    for module in (requests, missions, vehicles, commands, inventory, decisions, broadcasts, clips):
        app.include_router(module.router)
    app.include_router(shuttle_routes.router)

    app.include_router(live.router)
    app.include_router(service.router)
    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    describe_security(app)
    return app
