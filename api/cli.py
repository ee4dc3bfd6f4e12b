"""The ``streetfleet`` command: serve, sim, demo and operator utilities (Typer).

Every command builds its settings once from flags, ``STREETFLEET_*`` variables and an optional
TOML file (``--config``), then runs on one asyncio loop until interrupted (Ctrl-C stops cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from api.cli_common import ConfigOpt, load_settings
from api.cli_users import demo_banner, seed_demo_accounts, users_app
from fleet.clock import Clock, make_clock
from fleet.errors import StreetfleetError
from fleet.logging import configure as configure_logging
from fleet.settings import Settings

app = typer.Typer(
    name="streetfleet",
    help="Fleet control for lockdown logistics: drones, loudspeaker drones and unmanned vans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
world_app = typer.Typer(help="World files.", no_args_is_help=True)
app.add_typer(world_app, name="world")
app.add_typer(users_app, name="users")


DEFAULT_BATTERY_SWAP_S = 120.0
"""World seconds a sim ground crew takes to put a full battery into a landed drone."""

DEMO_STOCK: dict[str, int] = {
    "mask": 80_000,
    "protective_suit": 3_000,
    "alcohol": 10_000,
    "face_shield": 10_000,
    "gloves": 30_000,
    "food_box": 600,
    "medicine": 2_000,
    "test_kit": 20_000,
}
"""Stock the demo warehouse starts with: one day's load of the reference deployment."""


def _settings(config: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


def _run(coro: Any) -> None:
    try:
        asyncio.run(coro)
    except KeyboardInterrupt:
        pass
    except StreetfleetError as exc:
        typer.echo(f"streetfleet: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _serve(settings: Settings, clock: Clock | None = None, banner: str = "") -> None:
    from api.app import create_app

    config = uvicorn.Config(
        create_app(settings, clock),
        host=settings.service.host,
        port=settings.service.port,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    if banner:

        async def announce() -> None:
            while not server.started:  # noqa: ASYNC110  (uvicorn offers a flag, no event)
                await asyncio.sleep(0.05)
            typer.echo(banner)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(announce())
            tg.create_task(server.serve())
        return
    await server.serve()
    if not server.started:
        raise typer.Exit(1)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
) -> None:
    """Run the service (API, vehicle links, dispatcher) as configured."""
    overrides: dict[str, Any] = {}
    if host or port:
        overrides["service"] = {k: v for k, v in (("host", host), ("port", port)) if v}
    settings = _settings(config, **overrides)

    async def main() -> None:
        banner = ""
        if settings.service.environment == "development" and settings.auth.demo_accounts:
            url = f"http://{settings.service.host}:{settings.service.port}"
            banner = f"\nstreetfleet (development mode) at {url}\n" + demo_banner(
                url, await seed_demo_accounts(settings)
            )
        await _serve(settings, banner=banner)

    _run(main())


@asynccontextmanager
async def _sim_fleet(
    world_path: Path,
    drones: int,
    clock: Clock,
    first_port: int,
    host: str,
    vans: int = 0,
    mqtt_url: str | None = None,
    speakers: int = 0,
    battery_swap_s: float | None = DEFAULT_BATTERY_SWAP_S,
) -> AsyncIterator[Any]:
    """Sim drones (the last ``speakers`` of them carrying a loudspeaker payload on
    ``mqtt_url``, registered with its host drone) and vans."""
    from fleet.worldfile import load_world
    from sim.runner import SimFleet
    from sim.speaker.payload import attach_speaker

    if speakers and mqtt_url is None:
        raise StreetfleetError("speaker payloads need the MQTT broker's URL")
    world = load_world(world_path)
    async with (
        SimFleet(
            drones + speakers,
            world=world,
            clock=clock,
            first_port=first_port,
            host=host,
            vans=vans,
            mqtt_url=mqtt_url,
            battery_swap_s=battery_swap_s,
        ) as fleet,
        contextlib.AsyncExitStack() as payloads,
    ):
        for vehicle in fleet.drones[drones:]:
            assert mqtt_url is not None
            await payloads.enter_async_context(attach_speaker(vehicle, mqtt_url, clock))
        yield fleet


@app.command()
def sim(
    drones: Annotated[int, typer.Option(min=0, max=1000, help="PX4-like multicopters")] = 3,
    world: Annotated[Path, typer.Option(help="World file")] = Path(
        "examples/worlds/shatou.geojson"
    ),
    speed: Annotated[float, typer.Option(min=0.1, max=1000, help="Time acceleration")] = 1.0,
    first_port: Annotated[int, typer.Option(help="Drone i sends to first_port + i")] = 14540,
    host: Annotated[str, typer.Option(help="Where the ground station listens")] = "127.0.0.1",
    vans: Annotated[int, typer.Option(min=0, max=1000, help="VDA 5050 vans")] = 0,
    mqtt_url: Annotated[
        str, typer.Option(help="Broker the vans and speakers use (the service's mqtt.url)")
    ] = "mqtt://127.0.0.1:1883",
    speakers: Annotated[
        int, typer.Option(min=0, max=100, help="Extra drones carrying a loudspeaker payload")
    ] = 0,
    battery_swap_s: Annotated[
        float, typer.Option(min=0, help="Ground crew: seconds to swap a used battery (0: never)")
    ] = DEFAULT_BATTERY_SWAP_S,
) -> None:
    """Run simulated vehicles that speak the real protocols (like PX4 SITL instances)."""
    configure_logging("info")
    clock = make_clock("accelerated" if speed != 1 else "wall", speed)

    async def main() -> None:
        async with _sim_fleet(
            world,
            drones,
            clock,
            first_port,
            host,
            vans,
            mqtt_url,
            speakers,
            battery_swap_s or None,
        ):
            typer.echo(
                f"sim: {drones + speakers} drones on {world} at {speed}x; drone i -> "
                f"udp://{host}:{first_port}+i"
                + (f"; the last {speakers} carry speakers on {mqtt_url}" if speakers else "")
                + (f"; {vans} vans on {mqtt_url}" if vans else "")
                + ". Ctrl-C stops."
            )
            await asyncio.Event().wait()

    _run(main())


@app.command()
def demo(
    drones: Annotated[int, typer.Option(min=0, max=50)] = 3,
    vans: Annotated[int, typer.Option(min=0, max=20)] = 1,
    speakers: Annotated[
        int, typer.Option(min=0, max=10, help="Extra drones carrying a loudspeaker payload")
    ] = 1,
    speed: Annotated[float, typer.Option(min=1, max=100, help="Time acceleration")] = 5.0,
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    first_port: Annotated[
        int,
        typer.Option(
            min=1024, max=65000, help="UDP port of the first drone's link (one per drone after it)"
        ),
    ] = 14540,
    config: ConfigOpt = None,
) -> None:
    """The service with a simulated fleet on embedded defaults: no external service needed."""
    first = first_port
    _ports_free(port, [first + i for i in range(drones + speakers)])
    settings = _settings(
        config,
        service={"port": port, "environment": "development"},
        clock={"mode": "accelerated", "speed": speed},
        mavlink={
            "links": [f"mavlink+udpin://127.0.0.1:{first + i}" for i in range(drones + speakers)]
        },
        sim={"drones": drones + speakers, "vans": vans, "first_port": first},
    )
    clock = make_clock("accelerated", speed)
    url = f"http://{settings.service.host}:{settings.service.port}"
    example = json.dumps(
        {
            "community_id": "<see GET /v1/sites?kind=community>",
            "items": [{"sku_id": "medicine", "quantity": 10}],
            "priority": "urgent_medical",
        }
    )
    broadcast = json.dumps(
        {
            "area": {"community_id": "<a community id>"},
            "message": {"text": "Nucleic acid testing at 9:00 at the gate", "language": "en"},
            "repeats": 2,
        }
    )
    banner = (
        f"\nstreetfleet demo is up at {url}  (API docs: {url}/docs)\n"
        f"  {drones + speakers} simulated drones ({speakers} with a loudspeaker) and {vans} "
        f"vans at {speed}x speed, "
        f"world {settings.world.path}\n"
        f"  request a delivery (signed in, see below):\n"
        f'    curl -s -H "$AUTH" {url}/v1/sites?kind=community | python3 -m json.tool | head\n'
        f'    curl -s -X POST {url}/v1/requests -H "$AUTH" '
        f"-H 'content-type: application/json' -d '{example}'\n"
        f"  follow it: GET {url}/v1/requests/<id>  and  GET {url}/v1/vehicles\n"
        + (
            f"  vans run a shuttle plan: GET {url}/v1/shuttle-plans and "
            f"GET {url}/v1/shuttle-plans/<id>/trips\n"
            if vans
            else ""
        )
        + (
            f"  broadcast over a community ({speakers} drone(s) carry a loudspeaker):\n"
            f'    curl -s -X POST {url}/v1/broadcasts -H "$AUTH" '
            f"-H 'content-type: application/json' -d '{broadcast}'\n"
            f"    then GET {url}/v1/requests/<id>/report and /report.png\n"
            if speakers
            else ""
        )
    )

    async def main() -> None:
        from fleet.mqtt_broker import EmbeddedBroker

        await _seed_demo_stock(settings)
        accounts = await seed_demo_accounts(settings) if settings.auth.demo_accounts else []
        if vans:
            await _seed_demo_plan(settings, vans, clock)
        async with contextlib.AsyncExitStack() as stack:
            mqtt_url = settings.mqtt.url
            if mqtt_url is None:  # one embedded broker for the service, sim vans and speakers
                broker = await stack.enter_async_context(
                    EmbeddedBroker(port=settings.mqtt.embedded_port)
                )
                mqtt_url = broker.url
            run_settings = settings.model_copy(
                update={"mqtt": settings.mqtt.model_copy(update={"url": mqtt_url})}
            )
            await stack.enter_async_context(
                _sim_fleet(
                    settings.world.path,
                    drones,
                    clock,
                    first,
                    "127.0.0.1",
                    vans,
                    mqtt_url,
                    speakers,
                )
            )
            await _serve(
                run_settings, clock, banner + demo_banner(url, accounts) + "  Ctrl-C stops.\n"
            )

    _run(main())


def _ports_free(http_port: int, udp_ports: list[int]) -> None:
    """Stop with a clear message, before anything starts, when a port the demo needs is taken
    (another demo, a PX4 SITL, another service)."""
    import socket

    taken: list[str] = []
    for kind, ports in ((socket.SOCK_STREAM, [http_port]), (socket.SOCK_DGRAM, udp_ports)):
        for p in ports:
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind(("127.0.0.1", p))
                except OSError:
                    taken.append(f"{'TCP' if kind == socket.SOCK_STREAM else 'UDP'} {p}")
    if taken:
        typer.echo(
            f"streetfleet: {', '.join(taken)} already in use on 127.0.0.1 (another demo, a PX4 "
            "SITL or another service?): stop it, or choose --port / --first-port",
            err=True,
        )
        raise typer.Exit(2)


async def _seed_demo_stock(settings: Settings) -> None:
    """Give the demo warehouse(s) a day's stock once (an empty ledger only)."""
    from fleet.store.repository import Store
    from fleet.worldfile import load_world
    from missions.catalogue import default_skus

    world = load_world(settings.world.path)
    async with Store.open(settings.database.url, settings.database.db_schema) as store:
        await store.sync_world(world)
        if await store.sku_count() == 0:
            for sku in default_skus():
                await store.upsert_sku(sku)
        now = make_clock("wall").now()
        for wh in world.warehouses:
            if await store.ledger(warehouse_id=wh.id, limit=1):
                continue
            for sku_id, qty in DEMO_STOCK.items():
                await store.move_stock(
                    "receive", wh.id, sku_id, qty, at=now, actor="demo", note="demo opening stock"
                )


async def _seed_demo_plan(settings: Settings, vans: int, clock: Clock) -> None:
    """With vans and no shuttle plan yet, a plan for the sim vans: every community of the
    first warehouse, a shift from now for 8 hours (``docs/shuttles.md``)."""
    from firmware_bridges.vda5050.link import Vda5050Link
    from fleet.store.repository import Store
    from fleet.worldfile import load_world
    from missions.shuttle.service import seed_default_plan
    from sim.van.fleet import DEFAULT_MANUFACTURER

    world = load_world(settings.world.path)
    ids = [Vda5050Link.vehicle_id(DEFAULT_MANUFACTURER, f"VAN-{i + 1:02d}") for i in range(vans)]
    async with Store.open(settings.database.url, settings.database.db_schema) as store:
        plan = await seed_default_plan(
            store, world, vehicle_ids=ids, timezone=settings.shuttle.timezone, now=clock.now()
        )
    if plan is not None:
        typer.echo(
            f"shuttle plan {plan.id}: {', '.join(ids)} serve {len(plan.community_ids)} "
            f"communities from {plan.shift_start} to {plan.shift_end} {plan.timezone}"
        )


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Apply database migrations and exit."""
    from fleet.store.db import DatabaseUrl, current_revision
    from fleet.store.db import migrate as do_migrate

    settings = _settings(config)
    db = DatabaseUrl.parse(settings.database.url, settings.database.db_schema)
    _run(do_migrate(db))
    typer.echo(f"database at revision {current_revision(db)}")


@app.command("config")
def show_config(config: ConfigOpt = None) -> None:
    """Print the effective settings (secrets masked)."""
    settings = _settings(config)
    typer.echo(json.dumps(settings.dump(), indent=2, default=str))


@world_app.command("check")
def world_check(path: Path) -> None:
    """Validate a world file and summarise it."""
    from fleet.worldfile import load_world

    try:
        w = load_world(path)
    except StreetfleetError as exc:
        typer.echo(f"{path}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{path}: world {w.name!r} ok: {len(w.warehouses)} warehouses, {len(w.pads)} pads, "
        f"{len(w.communities)} communities, {len(w.no_fly_zones)} no-fly zones, "
        f"{len(w.roads)} roads"
    )


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        app(prog_name="streetfleet")


if __name__ == "__main__":
    main()
