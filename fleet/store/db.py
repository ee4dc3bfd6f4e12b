"""Database engines and migrations.

One URL setting chooses the backend: ``sqlite:///path/to/file.db`` (default, embedded, zero
set-up) or ``postgresql://user@host:5432/db`` (real deployments). The service talks to it through
SQLAlchemy's asyncio engine (aiosqlite / psycopg 3); Alembic migrations run on a synchronous
engine in a worker thread at start-up. With PostgreSQL an optional schema isolates a deployment
(or a test run); migrations take an advisory lock so that several processes starting together
migrate once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fleet.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""Alembic script directory shipped with the package."""
_MIGRATION_LOCK_KEY = 0x5F1EE7
"""PostgreSQL advisory lock id held while migrating."""


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A validated database location with its sync and async driver URLs."""

    backend: str
    """``sqlite`` or ``postgresql``."""
    sync_url: URL
    async_url: URL
    schema: str | None = None

    @classmethod
    def parse(cls, url: str, schema: str | None = None) -> DatabaseUrl:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"bad database URL {url!r}: {exc}", url=url) from exc
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            db = parsed.database
            if not db or db == ":memory:":
                raise ConfigError(
                    "an in-memory SQLite database would lose every request; give a file, "
                    "e.g. sqlite:///var/streetfleet.db",
                    url=url,
                )
            if schema:
                raise ConfigError("database.schema applies to PostgreSQL only", url=url)
            return cls(
                "sqlite",
                parsed.set(drivername="sqlite"),
                parsed.set(drivername="sqlite+aiosqlite"),
            )
        if backend in {"postgresql", "postgres"}:
            pg = parsed.set(drivername="postgresql+psycopg")
            if schema is not None and not schema.replace("_", "").isalnum():
                raise ConfigError(f"bad schema name {schema!r}", schema=schema)
            return cls("postgresql", pg, pg, schema)
        raise ConfigError(
            f"unsupported database {backend!r} in {url!r}: use sqlite:///file.db or postgresql://",
            url=url,
        )

    def _engine_kwargs(self) -> dict[str, Any]:
        if self.backend == "postgresql":
            kw: dict[str, Any] = {"pool_pre_ping": True}
            if self.schema:
                kw["connect_args"] = {"options": f"-csearch_path={self.schema}"}
            return kw
        return {}

    def ensure_parent_dir(self) -> None:
        if self.backend == "sqlite" and self.sync_url.database:
            Path(self.sync_url.database).parent.mkdir(parents=True, exist_ok=True)

    def create_async_engine(self, echo: bool = False) -> AsyncEngine:
        self.ensure_parent_dir()
        engine = create_async_engine(self.async_url, echo=echo, **self._engine_kwargs())
        if self.backend == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    def create_sync_engine(self) -> sa.Engine:
        self.ensure_parent_dir()
        engine = sa.create_engine(self.sync_url, **self._engine_kwargs())
        if self.backend == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode up to the last checkpoint
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def alembic_config(db: DatabaseUrl) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.sync_url.render_as_string(hide_password=False))
    cfg.attributes["schema"] = db.schema
    return cfg


def migrate_sync(db: DatabaseUrl, revision: str = "head") -> None:
    """Create the schema if needed and upgrade to ``revision`` (blocking)."""
    engine = db.create_sync_engine()
    try:
        with engine.begin() as conn:
            if db.backend == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                )
                if db.schema:
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
            cfg = alembic_config(db)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


async def migrate(db: DatabaseUrl, revision: str = "head") -> None:
    """Apply migrations without blocking the event loop."""
    await asyncio.to_thread(migrate_sync, db, revision)


def current_revision(db: DatabaseUrl) -> str | None:
    """The revision the database is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = db.create_sync_engine()
    try:
        with engine.connect() as conn:
            opts = {"version_table_schema": db.schema} if db.schema else {}
            return MigrationContext.configure(conn, opts=opts).get_current_revision()
    finally:
        engine.dispose()
