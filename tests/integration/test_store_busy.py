"""A busy database: the write is refused as transient (StoreBusy), nothing of it is written, and
``retrying`` applies it exactly once when the database frees up. Real SQLite locks and a real
PostgreSQL deadlock, no mocks."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fleet.errors import StoreBusy, StoreError
from fleet.store.repository import Store
from fleet.store.retry import retrying
from fleet.store.tables import MissionEvent, Site

NOW = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
UPDATE = sa.text("UPDATE site SET name = :n WHERE id = :i")
BUSY_MS = 150
"""The test store's SQLite busy timeout (the service's is 5 s): a lock held longer is refused."""


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    path = tmp_path / "busy.db"
    async with Store.open(f"sqlite:///{path}") as store:

        def short_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")  # after the service's pragmas

        sa.event.listen(store.engine.sync_engine, "connect", short_busy_timeout)
        await store.engine.dispose()  # new connections get the listener
        yield store, path


class WriteLock:
    """Another writer: a plain sqlite3 connection holding the database's write lock."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "INSERT INTO audit_log (at, actor, action, object_type, object_id, "
            "detail) VALUES ('2026-04-01', 'x', 'lock', 't', '', '{}')"
        )

    def release_after(self, seconds: float) -> None:
        threading.Timer(seconds, self.release).start()

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def event(reason: str) -> MissionEvent:
    return MissionEvent(at=NOW, kind="note", reason=reason)


async def count(store: Store, reason: str) -> int:
    return sum(1 for e in await store.events(limit=1000) if e.reason == reason)


async def test_a_locked_sqlite_database_is_refused_as_busy_and_nothing_is_written(
    sqlite_store: tuple[Store, Path],
) -> None:
    store, path = sqlite_store
    lock = WriteLock(path)
    try:
        with pytest.raises(StoreBusy, match="database is locked") as info:
            await store.add_events([event("first try")])
        assert isinstance(info.value, StoreError)  # callers that catch StoreError still do
    finally:
        lock.release()
    assert await count(store, "first try") == 0


async def test_retrying_writes_once_the_lock_is_released(
    sqlite_store: tuple[Store, Path],
) -> None:
    store, path = sqlite_store
    lock = WriteLock(path)
    lock.release_after(1.0)  # several refusals (150 ms each) before it goes
    calls = 0

    async def write() -> None:
        nonlocal calls
        calls += 1
        await store.add_events([event("kept")])

    await retrying(write, for_s=10)
    assert calls >= 2
    assert await count(store, "kept") == 1


async def test_retrying_gives_up_after_its_time_with_the_busy_error(
    sqlite_store: tuple[Store, Path],
) -> None:
    store, path = sqlite_store
    lock = WriteLock(path)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(StoreBusy):
            await retrying(lambda: store.add_events([event("never")]), for_s=0.5)
        assert loop.time() - t0 < 5
    finally:
        lock.release()
    assert await count(store, "never") == 0


async def test_other_store_errors_are_not_retried(sqlite_store: tuple[Store, Path]) -> None:
    store, _ = sqlite_store
    calls = 0

    async def bad() -> None:
        nonlocal calls
        calls += 1
        async with store.transaction() as s:
            await (await s.connection()).execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(StoreError) as info:
        await retrying(bad, for_s=5)
    assert not isinstance(info.value, StoreBusy)
    assert calls == 1


async def test_a_postgresql_deadlock_is_busy_and_the_retried_side_commits(
    pg_url: str, pg_schema: str
) -> None:
    async with Store.open(pg_url, pg_schema) as store:
        async with store.transaction() as s:
            for sid in ("a", "b"):
                s.add(Site(id=sid, kind="warehouse", name=sid, lat=0, lon=0, world="t"))
        a_locked, b_locked = asyncio.Event(), asyncio.Event()
        attempts: list[str] = []

        async def lock_in_order(
            first: str, second: str, mine: asyncio.Event, theirs: asyncio.Event, name: str
        ) -> None:
            attempts.append(name)
            async with store.transaction() as s:
                conn = await s.connection()
                await conn.execute(UPDATE, {"n": name, "i": first})
                mine.set()
                await theirs.wait()
                await conn.execute(UPDATE, {"n": name, "i": second})

        results = await asyncio.gather(
            retrying(lambda: lock_in_order("a", "b", a_locked, b_locked, "x"), for_s=20),
            retrying(lambda: lock_in_order("b", "a", b_locked, a_locked, "y"), for_s=20),
            return_exceptions=True,
        )
        assert results == [None, None]  # PostgreSQL broke the deadlock; the loser tried again
        assert len(attempts) == 3
        async with store.transaction() as s:
            conn = await s.connection()
            names = (await conn.execute(sa.text("SELECT name FROM site ORDER BY id"))).scalars()
            assert len(set(names)) == 1  # one of the two transactions won both rows, whole
