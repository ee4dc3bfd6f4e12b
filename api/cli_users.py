"""``streetfleet users``: accounts from the command line (the first admin is made here).

The commands work on the database the settings name, with or without the service running; a
change reaches a running service within ``auth.principal_cache_s``. Every change is in the audit
log, made by ``cli:<login name>``. Passwords are read from a prompt (or ``--password-stdin``) and
never taken as an argument, where the shell history and ``ps`` would keep them.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from api.cli_common import ConfigOpt, load_settings
from fleet.accounts import ALL_ROLES, Accounts, generate_password
from fleet.clock import make_clock
from fleet.errors import StreetfleetError
from fleet.settings import Settings

users_app = typer.Typer(help="Accounts: create, list, disable, API keys.", no_args_is_help=True)

T = TypeVar("T")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _with_accounts(settings: Settings, fn: Callable[[Accounts], Awaitable[T]]) -> T:
    from fleet.store.repository import Store
    from fleet.worldfile import load_world

    async def go() -> T:
        world = load_world(settings.world.path)
        async with Store.open(settings.database.url, settings.database.db_schema) as store:
            await store.sync_world(world)
            return await fn(Accounts(store, {c.id for c in world.communities}))

    try:
        return asyncio.run(go())
    except StreetfleetError as exc:
        typer.echo(f"streetfleet: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():  # a script: nobody to ask, so generate one
        return ""
    first = getpass.getpass("password (empty: generate one): ")
    if not first:
        return ""
    if getpass.getpass("again: ") != first:
        typer.echo("streetfleet: the passwords differ", err=True)
        raise typer.Exit(2)
    return first


@users_app.command("create")
def create(
    username: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ALL_ROLES)}")],
    community: Annotated[
        list[str] | None,
        typer.Option("--community", help="A community the staff account acts for (repeat)"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input")
    ] = False,
    no_password: Annotated[
        bool, typer.Option(help="No password: the account uses API keys only")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Create an account. Without a password given, one is generated and printed once."""
    settings = load_settings(config)
    password: str | None = None
    generated = False
    if not no_password:
        password = _read_password(password_stdin)
        if not password:
            password, generated = generate_password(), True
    clock = make_clock("wall")
    account = _with_accounts(
        settings,
        lambda a: a.create(
            username,
            role,
            password=password,
            communities=community or [],
            actor=_actor(),
            at=clock.now(),
        ),
    )
    where = f" for {', '.join(account.communities)}" if account.communities else ""
    typer.echo(f"created {account.username} ({account.role}{where})")
    if generated:
        typer.echo(f"password: {password}")


@users_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    config: ConfigOpt = None,
) -> None:
    """Every account, its role, communities and whether it is disabled."""
    settings = load_settings(config)
    rows = _with_accounts(settings, lambda a: a.store.accounts())
    for r in rows:
        if as_json:
            data = {
                "username": r.username,
                "role": r.role,
                "communities": r.communities,
                "disabled": r.disabled,
                "created_at": r.created_at.isoformat(),
            }
            typer.echo(json.dumps(data))
        else:
            state = "disabled" if r.disabled else "active"
            comms = ",".join(r.communities) or "-"
            typer.echo(f"{r.username:<24} {r.role:<16} {state:<9} {comms}")


def _set_disabled(username: str, disabled: bool, config: Path | None) -> None:
    settings = load_settings(config)
    clock = make_clock("wall")
    _with_accounts(
        settings, lambda a: a.set_disabled(username, disabled, actor=_actor(), at=clock.now())
    )
    typer.echo(f"{'disabled' if disabled else 'enabled'} {username}")


@users_app.command("disable")
def disable(username: str, config: ConfigOpt = None) -> None:
    """Disable an account: no sign-in, refresh or API key from now on."""
    _set_disabled(username, True, config)


@users_app.command("enable")
def enable(username: str, config: ConfigOpt = None) -> None:
    """Enable a disabled account again."""
    _set_disabled(username, False, config)


@users_app.command("password")
def password(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="Read it from standard input")] = False,
    config: ConfigOpt = None,
) -> None:
    """Set an account's password (prompted; empty: generate and print one)."""
    settings = load_settings(config)
    new = _read_password(password_stdin)
    generated = not new
    new = new or generate_password()
    clock = make_clock("wall")
    _with_accounts(
        settings, lambda a: a.set_password(username, new, actor=_actor(), at=clock.now())
    )
    typer.echo(f"password set for {username}" + (f": {new}" if generated else ""))


@users_app.command("api-key")
def api_key(
    username: str,
    name: Annotated[str, typer.Option(help="What the key is for")],
    config: ConfigOpt = None,
) -> None:
    """Make an API key for the account; it is printed once (only its hash is kept)."""
    settings = load_settings(config)
    clock = make_clock("wall")
    _key, full = _with_accounts(
        settings, lambda a: a.create_api_key(username, name, actor=_actor(), at=clock.now())
    )
    typer.echo(full)


DEMO_ACCOUNTS = ("demo-admin", "demo-operator", "demo-staff", "demo-viewer")
"""One account per role, made (or given a new password) by development mode at each start."""


async def seed_demo_accounts(settings: Settings) -> list[tuple[str, str, str, list[str]]]:
    """Development mode: one account per role (the staff one for the world's first community)
    with a fresh random password each start; returns (username, role, password, communities).
    There is no fixed demo password to leak into a real deployment."""
    from fleet.errors import NotFound
    from fleet.store.repository import Store
    from fleet.worldfile import load_world

    world = load_world(settings.world.path)
    first = [world.communities[0].id] if world.communities else []
    at = make_clock("wall").now()
    out: list[tuple[str, str, str, list[str]]] = []
    async with Store.open(settings.database.url, settings.database.db_schema) as store:
        await store.sync_world(world)
        accounts = Accounts(store, {c.id for c in world.communities})
        for username, role in zip(DEMO_ACCOUNTS, ALL_ROLES, strict=True):
            comms = first if role == "community_staff" else []
            password = generate_password()
            try:
                await store.account(username=username)
                await accounts.set_password(username, password, actor="demo", at=at)
            except NotFound:
                await accounts.create(
                    username, role, password=password, communities=comms, actor="demo", at=at
                )
            out.append((username, str(role), password, comms))
    return out


def demo_banner(url: str, accounts: list[tuple[str, str, str, list[str]]]) -> str:
    """The demo accounts and how to use one, for the start-up banner."""
    lines = ["  accounts (development mode; new passwords at every start):"]
    for username, role, password, comms in accounts:
        where = f" for {', '.join(comms)}" if comms else ""
        lines.append(f"    {username:<14} {password}  ({role}{where})")
    op = next((a for a in accounts if a[1] == "operator"), None)
    if op is not None:
        lines.append(
            f"  sign in: TOKEN=$(curl -s {url}/v1/auth/token -d username={op[0]} "
            f"-d password={op[2]} | python3 -c 'import json,sys; "
            'print(json.load(sys.stdin)["access_token"])\')'
        )
        lines.append('         AUTH="Authorization: Bearer $TOKEN"   (curl -H "$AUTH" ...)')
    return "\n".join(lines) + "\n"
