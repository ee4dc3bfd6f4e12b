"""The store on SQLite and on the real PostgreSQL: migrations, requests, missions, the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from fleet.errors import Conflict, InsufficientStock, ValidationError
from fleet.store.db import DatabaseUrl, current_revision
from fleet.store.repository import Store
from fleet.store.tables import Mission, MissionEvent, Request, RequestItem, Site, Sku

NOW = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'store.db'}", None
    else:
        url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
    async with Store.open(url, schema) as s:
        async with s.transaction() as tx:
            tx.add(
                Site(id="wh", kind="warehouse", name="Warehouse", lat=22.5, lon=114.0, world="t")
            )
            tx.add(Site(id="c1", kind="community", name="C1", lat=22.51, lon=114.01, world="t"))
            tx.add(
                Sku(
                    id="mask",
                    name="Masks",
                    units_per_box=500,
                    box_kg=3.0,
                    box_volume_l=40,
                    unit_kg=0.006,
                )
            )
        yield s


def test_in_memory_sqlite_is_refused() -> None:
    from fleet.errors import ConfigError

    with pytest.raises(ConfigError, match="in-memory"):
        DatabaseUrl.parse("sqlite://")


async def test_migrations_match_the_models(store: Store) -> None:
    db = store.db
    assert current_revision(db) is not None

    def diff(conn):  # type: ignore[no-untyped-def]
        opts = {"version_table_schema": db.schema} if db.schema else {}
        ctx = MigrationContext.configure(conn, opts=opts)
        return compare_metadata(ctx, SQLModel.metadata)

    async with store.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    # the schema's own version table is Alembic's, not a model
    changes = [
        c for c in changes if not (c[0] == "remove_table" and c[1].name == "alembic_version")
    ]
    assert changes == [], f"models and migrations differ: {changes}"


async def test_migrating_twice_is_harmless(store: Store) -> None:
    from fleet.store.db import migrate

    await migrate(store.db)
    assert current_revision(store.db) is not None


async def test_request_roundtrip_and_idempotency(store: Store) -> None:
    req = Request(
        kind="delivery",
        community_id="c1",
        state="submitted",
        priority="standard",
        created_at=NOW,
        idempotency_key="k-1",
    )
    rec, created = await store.create_request(
        req, [RequestItem(request_id="", sku_id="mask", quantity=300)]
    )
    assert created
    again, created2 = await store.create_request(
        Request(
            kind="delivery",
            community_id="c1",
            state="submitted",
            priority="standard",
            created_at=NOW,
            idempotency_key="k-1",
        ),
        [RequestItem(request_id="", sku_id="mask", quantity=999)],
    )
    assert not created2 and again.request.id == rec.request.id
    assert [i.quantity for i in again.items] == [300]
    got = await store.get_request(rec.request.id)
    assert got.request.created_at == NOW and got.request.created_at.tzinfo is not None
    assert len(await store.list_requests(states=["submitted"])) == 1


async def test_request_with_unknown_community_writes_nothing(store: Store) -> None:
    req = Request(
        kind="delivery",
        community_id="nowhere",
        state="submitted",
        priority="standard",
        created_at=NOW,
    )
    with pytest.raises(Conflict):
        await store.create_request(req, [RequestItem(request_id="", sku_id="mask", quantity=1)])
    assert await store.list_requests() == []


async def test_stock_never_goes_negative(store: Store) -> None:
    await store.move_stock("receive", "wh", "mask", 1000, at=NOW)
    await store.move_stock("reserve", "wh", "mask", 600, at=NOW)
    with pytest.raises(InsufficientStock):
        await store.move_stock("reserve", "wh", "mask", 500, at=NOW)
    with pytest.raises(InsufficientStock):
        await store.move_stock(
            "adjust", "wh", "mask", -500, at=NOW
        )  # would leave 500 < 600 reserved
    with pytest.raises(ValidationError):
        await store.move_stock("teleport", "wh", "mask", 1, at=NOW)
    await store.move_stock("load", "wh", "mask", 600, at=NOW)
    [bal] = await store.stock("wh")
    assert (bal.on_hand, bal.reserved) == (400, 0)
    kinds = [m.kind for m in await store.ledger(warehouse_id="wh")]
    assert kinds == ["receive", "reserve", "load"]


async def test_concurrent_reservations_cannot_oversell(store: Store) -> None:
    await store.move_stock("receive", "wh", "mask", 100, at=NOW)

    async def reserve() -> bool:
        try:
            await store.move_stock("reserve", "wh", "mask", 30, at=NOW)
            return True
        except InsufficientStock:
            return False

    results = await asyncio.gather(*(reserve() for _ in range(8)))
    assert sum(results) == 3
    [bal] = await store.stock("wh")
    assert bal.reserved == 90 and bal.on_hand == 100


async def test_mission_state_is_compare_and_set(store: Store) -> None:
    m = await store.create_mission(Mission(kind="drone_delivery", state="planned", created_at=NOW))
    ev = MissionEvent(
        at=NOW, kind="state", from_state="planned", to_state="authorized", reason="ok"
    )
    await store.update_mission(m.id, expected_states=["planned"], state="authorized", events=[ev])
    with pytest.raises(Conflict):
        await store.update_mission(m.id, expected_states=["planned"], state="underway")
    events = await store.events(mission_id=m.id)
    assert [(e.from_state, e.to_state) for e in events] == [("planned", "authorized")]
    assert (await store.get_mission(m.id)).version == 2
