"""Many rows through one statement without SQLAlchemy's work per row: the dispatch round's bulk
writes (its decision records, ledger lines, tasks and missions).

A Core ``executemany`` (``session.execute(stmt, [dict, ...])``) runs SQLAlchemy's parameter
processing for every row: the compiled statement's parameters are built per row, and each
value passes its type's bind processor (``UTCDateTime``, ``JSON``). A round over 5,000 open
requests writes about 20,000 such rows, and that processing cost about as much as SQLite's own
work on them (``docs/benchmarks.md``, dispatch). :class:`BulkStatement` compiles the statement
once and, on SQLite, hands the driver plain tuples already in the form SQLAlchemy would store:
aware datetimes as naive UTC text (``UTCDateTime``, SQLAlchemy's SQLite ``DATETIME`` format),
JSON as ``json.dumps`` text, dates as ISO text; other values as they are. The rows written are
byte for byte those of the Core path (``tests/unit/core/test_bulk_rows.py``). On other databases
(PostgreSQL through psycopg renders typed binds) it runs the Core ``executemany`` unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from fleet.store.tables import UTCDateTime

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
"""SQLAlchemy's storage format of a SQLite ``DATETIME`` (microseconds always written)."""


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use aware UTC datetimes")
    return value.astimezone(UTC).strftime(_SQLITE_DATETIME)


def _date_text(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_text(value: Any) -> str:
    return json.dumps(value)


def _sqlite_converter(type_: sa.types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How SQLAlchemy's SQLite dialect would bind a value of ``type_`` (None: as it is)."""
    if isinstance(type_, UTCDateTime):
        return _utc_text
    if isinstance(type_, sa.TypeDecorator):
        if type(type_).process_bind_param is not sa.TypeDecorator.process_bind_param:
            raise TypeError(f"bulk rows cannot bind a {type_!r} column")
        return _sqlite_converter(type_.impl_instance)  # e.g. SQLModel's AutoString
    if isinstance(type_, sa.JSON):
        return _json_text
    if isinstance(type_, sa.DateTime):
        raise TypeError("bulk rows take UTCDateTime columns only")
    if isinstance(type_, sa.Date):
        return _date_text
    if isinstance(type_, sa.String | sa.Integer | sa.Float | sa.Boolean | sa.types.NullType):
        return None
    raise TypeError(f"bulk rows cannot bind a {type_!r} column")


class BulkStatement:
    """An ``INSERT`` or ``UPDATE`` run for many rows of named parameters (see the module).

    ``keys``: the parameters every row gives (for an ``INSERT``, the columns it fills)."""

    def __init__(self, stmt: sa.Insert | sa.Update, keys: Sequence[str]) -> None:
        self.stmt = stmt
        self.keys = tuple(keys)
        self._sqlite: tuple[str, tuple[_Slot, ...]] | None = None

    def _compiled_for_sqlite(self, dialect: sa.Dialect) -> tuple[str, tuple[_Slot, ...]]:
        """The SQL text and, per positional parameter, where its value comes from: a row's
        key and its converter, or a constant of the statement (``allocated + ? >= 0``)."""
        if self._sqlite is None:
            compiled = self.stmt.compile(dialect=dialect, column_keys=list(self.keys))
            slots: list[_Slot] = []
            for name in compiled.positiontup or ():
                bind = compiled.binds[name]
                conv = _sqlite_converter(bind.type)
                if name in self.keys:
                    slots.append((name, conv, None))
                else:
                    value = bind.effective_value
                    slots.append((None, None, conv(value) if conv is not None else value))
            self._sqlite = (str(compiled), tuple(slots))
        return self._sqlite

    async def run(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute for ``rows`` in the session's transaction; returns the rows it matched
        (inserted or updated), as the driver counts them."""
        if not rows:
            return 0
        conn = await session.connection()
        dialect = conn.dialect
        if dialect.name != "sqlite":
            result = await conn.execute(self.stmt, [dict(r) for r in rows])
            return int(result.rowcount)
        sql, slots = self._compiled_for_sqlite(dialect)
        params = [
            tuple(
                const if key is None else (row[key] if conv is None else conv(row[key]))
                for key, conv, const in slots
            )
            for row in rows
        ]
        result = await conn.exec_driver_sql(sql, params)
        return int(result.rowcount)


_Slot = tuple[str | None, Callable[[Any], Any] | None, Any]
"""A positional parameter: (row key or None, converter or None, constant when no key)."""


__all__ = ["BulkStatement"]
