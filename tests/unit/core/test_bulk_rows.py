"""``fleet.store.bulk``: rows written through a bulk statement are those of the Core path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel, col, select

from fleet.store.bulk import BulkStatement
from fleet.store.repository import Store
from fleet.store.tables import MissionEvent

EVENTS = SQLModel.metadata.tables["mission_event"]
TRIPS = SQLModel.metadata.tables["shuttle_trip"]
KEYS = ("request_id", "at", "kind", "reason", "data")


def _rows(n: int, tag: str) -> list[dict[str, object]]:
    east = timezone(timedelta(hours=8))
    return [
        {
            "request_id": f"{tag}-{i}",
            "at": datetime(2026, 3, 2, 8, 0, i, 1234 * i, tzinfo=east if i % 2 else UTC),
            "kind": "decision",
            "reason": f"why {i} — ünïcode",
            "data": {"units": {"mask": i}, "late": i % 2 == 0, "ids": ("a", "b"), "none": None},
        }
        for i in range(n)
    ]


async def test_bulk_insert_writes_the_rows_core_writes(tmp_path: Path) -> None:
    async with Store.open(f"sqlite:///{tmp_path / 'bulk.db'}") as store:
        async with store.transaction() as s:
            await s.exec(sa.insert(EVENTS), params=_rows(5, "core"))  # type: ignore[call-overload]
            assert await BulkStatement(sa.insert(EVENTS), KEYS).run(s, _rows(5, "bulk")) == 5
        async with store.transaction() as s:
            conn = await s.connection()
            raw = (
                await conn.exec_driver_sql(
                    "SELECT request_id, at, kind, reason, data FROM mission_event ORDER BY id"
                )
            ).all()
        core = [r[1:] for r in raw if r[0].startswith("core")]
        bulk = [r[1:] for r in raw if r[0].startswith("bulk")]
        assert len(core) == 5
        assert bulk == core  # the stored text, byte for byte
        async with store.transaction() as s:
            read = (await s.exec(select(MissionEvent).order_by(col(MissionEvent.id)))).all()
        pairs = zip(read[:5], read[5:], strict=True)
        assert all((a.at, a.reason, a.data) == (b.at, b.reason, b.data) for a, b in pairs)
        assert all(e.at.tzinfo is UTC for e in read)


async def test_bulk_update_counts_matched_rows_and_binds_constants(tmp_path: Path) -> None:
    async with (
        Store.open(f"sqlite:///{tmp_path / 'bulk.db'}") as store,
        store.transaction() as s,
    ):
        await BulkStatement(sa.insert(EVENTS), KEYS).run(s, _rows(3, "r"))
        guarded = BulkStatement(
            sa.update(EVENTS)
            .where(EVENTS.c.request_id == sa.bindparam("rid"), EVENTS.c.kind == "decision")
            .values(reason=sa.bindparam("why")),
            ("rid", "why"),
        )
        rows = [{"rid": r, "why": "changed"} for r in ("r-0", "r-2", "absent")]
        assert await guarded.run(s, rows) == 2
        assert await guarded.run(s, []) == 0


def test_bulk_refuses_a_naive_datetime_and_unknown_types() -> None:
    from sqlalchemy.dialects import sqlite

    bulk = BulkStatement(sa.insert(TRIPS), ("mission_id", "shift_day", "created_at"))
    _, slots = bulk._compiled_for_sqlite(sqlite.dialect())
    convert = {key: conv for key, conv, _ in slots}
    assert convert["shift_day"] is not None and convert["shift_day"](date(2026, 3, 2)) == (
        "2026-03-02"
    )
    with pytest.raises(ValueError, match="naive"):
        convert["created_at"](datetime(2026, 3, 2, 8))  # type: ignore[misc]
    odd = sa.Table("odd", sa.MetaData(), sa.Column("x", sa.LargeBinary))
    with pytest.raises(TypeError):
        BulkStatement(sa.insert(odd), ("x",))._compiled_for_sqlite(sqlite.dialect())
