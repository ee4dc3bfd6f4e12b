"""What every ``streetfleet`` command shares: the ``--config`` option and loading settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fleet.errors import StreetfleetError
from fleet.logging import configure as configure_logging
from fleet.settings import Settings

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (or STREETFLEET_CONFIG)")
]


def load_settings(config: Path | None, **overrides: Any) -> Settings:
    """Settings from flags, ``STREETFLEET_*`` and the TOML file; a bad one exits 2 with why."""
    try:
        settings = Settings.load(config, **overrides)
    except StreetfleetError as exc:
        typer.echo(f"streetfleet: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.logging.level, settings.logging.json_output)
    return settings
