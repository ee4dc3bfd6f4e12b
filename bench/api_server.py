"""The two HTTP servers ``bench.api`` loads, each in its own process: ``service`` (the real app,
:func:`api.app.create_app`, every middleware and dependency, with ``--vehicles`` vehicles in its
registry) and ``bare`` (a FastAPI app with two plain routes answering the JSON the service
answered, read from ``--sample``). Both run under uvicorn with the same options.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, status

UVICORN = {"host": "127.0.0.1", "log_level": "warning", "access_log": False, "lifespan": "on"}


def service_app(settings_env: dict[str, Any], vehicles: int) -> FastAPI:
    """The service's own app, its registry filled with ``vehicles`` drones and vans as their
    links would have reported them (position, battery, mode, link state)."""
    from api.app import create_app
    from fleet.geo import Position
    from fleet.settings import Settings
    from fleet.vehicle import (
        FlightMode,
        LandedState,
        LinkState,
        VehicleInfo,
        VehicleKind,
        VehicleStatus,
    )

    app = create_app(Settings.load(**settings_env))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            registry = a.state.runtime.registry
            for i in range(vehicles):
                van = i % 5 == 4
                kind = VehicleKind.VAN if van else VehicleKind.DRONE
                vid = f"van-bench-{i}" if van else f"drone-{1000 + i}"
                info = VehicleInfo(vid, kind, "bench://", str(i), payload_kg=2.5, name=vid)
                st = VehicleStatus(
                    link=LinkState.ONLINE,
                    position=Position(22.53 + i * 1e-5, 114.05 + i * 1e-5, 35.0, 40.0),
                    battery_fraction=0.8,
                    mode=FlightMode.MISSION,
                    landed=LandedState.IN_AIR,
                    armed=True,
                    last_seen=0.0,
                )
                registry.add(info, None, st)
            yield state

    app.router.lifespan_context = lifespan
    return app


def bare_app(sample: Path) -> FastAPI:
    """Plain FastAPI: ``GET /v1/vehicles`` returns the list the service returned; ``POST
    /v1/requests`` parses the JSON body and returns the record the service returned (201)."""
    data = json.loads(sample.read_text())
    app = FastAPI()

    @app.get("/v1/vehicles")
    async def vehicles() -> list[dict[str, Any]]:
        return data["vehicles"]

    @app.post("/v1/requests", status_code=status.HTTP_201_CREATED)
    async def submit(request: Request) -> dict[str, Any]:
        await request.json()
        return data["request"]

    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["service", "bare"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--vehicles", type=int, default=500)
    ap.add_argument("--settings", help="JSON of Settings.load overrides (service)")
    ap.add_argument("--sample", type=Path, help="JSON the bare routes answer")
    args = ap.parse_args(argv)
    if args.mode == "service":
        app = service_app(json.loads(args.settings), args.vehicles)
    else:
        app = bare_app(args.sample)
    uvicorn.run(app, port=args.port, **UVICORN)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
