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
from fleet.store.repository import LineChange, Store
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


async def _requests(store: Store, quantities: list[int]) -> list[tuple[str, int]]:
    """Approved delivery requests for c1, one mask line each: (request id, item id)."""
    out = []
    for q in quantities:
        rec, _ = await store.create_request(
            Request(
                kind="delivery",
                community_id="c1",
                state="approved",
                priority="standard",
                created_at=NOW,
            ),
            [RequestItem(request_id="", sku_id="mask", quantity=q)],
        )
        assert rec.items[0].id is not None
        out.append((rec.request.id, rec.items[0].id))
    return out


async def test_reallocate_writes_what_move_stock_would_line_by_line(store: Store) -> None:
    await store.move_stock("receive", "wh", "mask", 100, at=NOW)
    (r1, i1), (r2, i2), (r3, i3) = await _requests(store, [50, 50, 50])
    async with store.transaction() as s:
        first = await store.reallocate(
            "wh", "mask", [LineChange(r1, i1, 50), LineChange(r2, i2, 40)], at=NOW, session=s
        )
    async with store.transaction() as s:  # re-balance: releases first, then the newcomer
        second = await store.reallocate(
            "wh",
            "mask",
            [LineChange(r1, i1, -20, "shrank"), LineChange(r3, i3, 30, "grew")],
            at=NOW,
            session=s,
        )
    [bal] = await store.stock("wh")
    assert (bal.on_hand, bal.reserved) == (100, 100)
    lines = [m for m in await store.ledger(warehouse_id="wh") if m.kind != "receive"]
    assert [m.id for m in lines] == first + second
    assert [(m.kind, m.quantity, m.reserved_after, m.request_id) for m in lines] == [
        ("reserve", 50, 50, r1),
        ("reserve", 40, 90, r2),
        ("release", 20, 70, r1),
        ("reserve", 30, 100, r3),
    ]
    assert [m.note for m in lines[2:]] == ["shrank", "grew"]
    allocated = {r: (await store.get_request(r)).items[0].allocated for r in (r1, r2, r3)}
    assert allocated == {r1: 30, r2: 40, r3: 30}


async def test_reallocate_refuses_as_a_whole(store: Store) -> None:
    await store.move_stock("receive", "wh", "mask", 100, at=NOW)
    (r1, i1), (r2, i2) = await _requests(store, [80, 10])
    with pytest.raises(InsufficientStock):  # 80 + 30 > 100 on hand
        async with store.transaction() as s:
            await store.reallocate(
                "wh", "mask", [LineChange(r1, i1, 80), LineChange(r2, i2, 30)], at=NOW, session=s
            )
    with pytest.raises(Conflict):  # r2 asked for 10: 30 would pass its quantity
        async with store.transaction() as s:
            await store.reallocate(
                "wh", "mask", [LineChange(r1, i1, 60), LineChange(r2, i2, 30)], at=NOW, session=s
            )
    with pytest.raises(ValidationError):  # a reserve before a release
        async with store.transaction() as s:
            await store.reallocate(
                "wh", "mask", [LineChange(r1, i1, 5), LineChange(r2, i2, -5)], at=NOW, session=s
            )
    [bal] = await store.stock("wh")
    assert bal.reserved == 0
    assert [m.kind for m in await store.ledger(warehouse_id="wh")] == ["receive"]
    assert [(await store.get_request(r)).items[0].allocated for r in (r1, r2)] == [0, 0]


async def test_ping_and_mission_counts(store: Store) -> None:
    await store.ping()
    assert await store.mission_counts() == {}
    for state in ("planned", "planned", "completed"):
        await store.create_mission(Mission(kind="drone_delivery", state=state, created_at=NOW))
    assert await store.mission_counts() == {"planned": 2, "completed": 1}


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
