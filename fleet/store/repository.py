"""The repository: every read and write of the record goes through :class:`Store`.

Writes that belong together happen in one transaction (a request and its items and its first
event; a mission state change and its event; a stock movement and the balance it changes), so a
crash never leaves half a change. Stock balances are changed by conditional ``UPDATE``s that
cannot take them below zero, whatever else runs concurrently (several API processes on one
PostgreSQL included). State changes of requests and missions are compare-and-set on the
expected state, so two actors cannot both move the same mission.

Why this module is longer than the project's ~600-line guide: it is the one place every query
and transaction of the service lives (sites, stock, requests, missions, audit), each method
short, so that the transaction rules above are checked in one file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from fleet.errors import (
    Conflict,
    InsufficientStock,
    NotFound,
    StoreBusy,
    StoreError,
    ValidationError,
)
from fleet.ledger import MOVEMENT_EFFECTS as LEDGER_EFFECTS
from fleet.ledger import MovementKind, effect, quantity_problem
from fleet.store.bulk import BulkStatement
from fleet.store.db import DatabaseUrl, migrate
from fleet.store.retry import is_transient
from fleet.store.rows import ItemRow, RequestRow, RowRecord
from fleet.store.tables import (
    Account,
    ApiKey,
    AuditLog,
    Mission,
    MissionEvent,
    Request,
    RequestItem,
    Site,
    Sku,
    Stock,
    StockMovement,
    Task,
    Vehicle,
)
from fleet.world import World

MOVEMENT_EFFECTS = LEDGER_EFFECTS
"""Stock movement kind → (sign on on_hand, sign on reserved) per unit moved; the one table is
:data:`fleet.ledger.MOVEMENT_EFFECTS` (re-exported here for callers of the store)."""


StatefulT = TypeVar("StatefulT", Request, Mission)
"""A record whose state changes are compare-and-set: a request or a mission."""


Session = AsyncSession
"""A store transaction or read session, as callers type it (``Store.transaction()``)."""

_CHUNK = 1000
"""Rows per statement in batched writes (well under the bound-parameter limits of SQLite and
PostgreSQL)."""

_MOVEMENTS = SQLModel.metadata.tables["stock_movement"]
_ITEMS = SQLModel.metadata.tables["request_item"]
_REQUESTS = SQLModel.metadata.tables["request"]
_EVENTS = SQLModel.metadata.tables["mission_event"]
_TASKS = SQLModel.metadata.tables["task"]
_MISSIONS = SQLModel.metadata.tables["mission"]
"""Tables for the batched writes and bulk reads (Core statements: no ORM object per row)."""

_EVENT_COLUMNS = (
    "mission_id",
    "request_id",
    "vehicle_id",
    "at",
    "kind",
    "from_state",
    "to_state",
    "reason",
    "data",
)

_INSERT_EVENTS = BulkStatement(sa.insert(_EVENTS), _EVENT_COLUMNS)
_LEDGER_COLUMNS = (
    "at",
    "warehouse_id",
    "sku_id",
    "kind",
    "quantity",
    "on_hand_after",
    "reserved_after",
    "request_id",
    "mission_id",
    "actor",
    "note",
)
_INSERT_LEDGER = BulkStatement(sa.insert(_MOVEMENTS), _LEDGER_COLUMNS)
_SET_WAREHOUSES = BulkStatement(
    sa.update(_REQUESTS)
    .where(_REQUESTS.c.id == sa.bindparam("rid"))
    .values(
        warehouse_id=sa.bindparam("wh"),
        details=sa.bindparam("det", type_=sa.JSON),
        version=_REQUESTS.c.version + 1,
    ),
    ("rid", "wh", "det"),
)
_ADD_ALLOCATED = BulkStatement(
    sa.update(_ITEMS)
    .where(
        _ITEMS.c.id == sa.bindparam("item"),
        _ITEMS.c.sku_id == sa.bindparam("sku"),
        _ITEMS.c.allocated + sa.bindparam("d", type_=sa.Integer) >= 0,
        _ITEMS.c.allocated + sa.bindparam("d", type_=sa.Integer) <= _ITEMS.c.quantity,
    )
    .values(allocated=_ITEMS.c.allocated + sa.bindparam("d", type_=sa.Integer)),
    ("item", "sku", "d"),
)
_MOVE_REQUESTS = BulkStatement(
    sa.update(_REQUESTS)
    .where(_REQUESTS.c.id == sa.bindparam("rid"), _REQUESTS.c.state == sa.bindparam("src"))
    .values(
        state=sa.bindparam("dst"),
        warehouse_id=sa.func.coalesce(
            sa.bindparam("wh", type_=sa.String), _REQUESTS.c.warehouse_id
        ),
        version=_REQUESTS.c.version + 1,
    ),
    ("rid", "src", "dst", "wh"),
)
"""The batched writes' statements (:mod:`fleet.store.bulk`: compiled once, no work per row)."""
_MISSION_COLUMNS = tuple(c.name for c in _MISSIONS.columns)
_TASK_COLUMNS = tuple(c.name for c in _TASKS.columns)
_INSERTS: dict[tuple[str, tuple[str, ...]], BulkStatement] = {}
"""Plain inserts by (table, columns) (``Store.insert_rows``)."""


@dataclass(frozen=True, slots=True)
class LineChange:
    """One request line's share changing by ``delta`` units (``Store.reallocate``)."""

    request_id: str
    item_id: int
    delta: int
    """Units: positive reserves, negative releases."""
    note: str = ""
    actor: str = "system"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request with its items."""

    request: Request
    items: list[RequestItem]


class Store:
    """Async access to the database."""

    def __init__(self, db: DatabaseUrl, echo: bool = False) -> None:
        self.db = db
        self.engine: AsyncEngine = db.create_async_engine(echo=echo)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, schema: str | None = None, *, migrate_first: bool = True, echo: bool = False
    ) -> AsyncIterator[Store]:
        """Open the store (migrating first by default) and dispose of it on exit."""
        db = DatabaseUrl.parse(url, schema)
        if migrate_first:
            try:
                await migrate(db)
            except OperationalError as exc:
                raise StoreError(
                    f"cannot migrate database: {exc.orig}", url=str(db.sync_url)
                ) from exc
        store = cls(db, echo=echo)
        try:
            yield store
        finally:
            await store.engine.dispose()

    @asynccontextmanager
    async def _reading(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's session (to read inside its transaction) or a fresh one."""
        if session is not None:
            yield session
            return
        async with self._sessions() as s:
            yield s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self._sessions() as session:
            try:
                async with session.begin():
                    yield session
            except IntegrityError as exc:
                raise Conflict(f"the record refused the change: {exc.orig}") from exc
            except OperationalError as exc:
                if is_transient(exc):
                    raise StoreBusy(f"database busy: {exc.orig}") from exc
                raise StoreError(f"database unavailable: {exc.orig}") from exc

    async def ping(self) -> None:
        """Run a trivial query (``SELECT 1``) on a connection from the pool: returns when the
        database answers, raises ``StoreError`` with the driver's reason when it does not."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"database unavailable: {exc.orig}", reason=str(exc.orig)) from exc

    # --- sites and vehicles ----------------------------------------------------------------

    async def sync_world(self, world: World) -> None:
        """Make the site table match the world's warehouses, communities and pads."""
        rows: list[Site] = []
        for w in world.warehouses:
            rows.append(
                Site(
                    id=w.id,
                    kind="warehouse",
                    name=w.name,
                    lat=w.location.lat,
                    lon=w.location.lon,
                    world=world.name,
                    attributes={"dock": [w.dock.lat, w.dock.lon], "pads": list(w.pad_ids)},
                )
            )
        for c in world.communities:
            rows.append(
                Site(
                    id=c.id,
                    kind="community",
                    name=c.name,
                    lat=c.drop_point.lat,
                    lon=c.drop_point.lon,
                    world=world.name,
                    attributes={
                        "name_zh": c.name_zh,
                        "population": c.population,
                        "vulnerable_households": c.vulnerable_households,
                        "gate": [c.gate.lat, c.gate.lon],
                    },
                )
            )
        for p in world.pads:
            rows.append(
                Site(
                    id=p.id,
                    kind="pad",
                    name=p.name,
                    lat=p.location.lat,
                    lon=p.location.lon,
                    world=world.name,
                    attributes={"warehouse_id": p.warehouse_id, "ground_alt_m": p.ground_alt_m},
                )
            )
        async with self.transaction() as s:
            for row in rows:
                await s.merge(row)

    async def sites(self, kind: str | None = None) -> Sequence[Site]:
        async with self._sessions() as s:
            q = select(Site)
            if kind:
                q = q.where(Site.kind == kind)
            return (await s.exec(q.order_by(Site.id))).all()

    async def upsert_vehicle(self, vehicle: Vehicle) -> None:
        """Insert a vehicle or refresh what may change (link, capabilities, last seen)."""
        async with self.transaction() as s:
            existing = await s.get(Vehicle, vehicle.id)
            if existing is None:
                s.add(vehicle)
                return
            for field in (
                "kind",
                "link_url",
                "address",
                "name",
                "capabilities",
                "payload_kg",
                "max_boxes",
                "last_seen",
            ):
                setattr(existing, field, getattr(vehicle, field))

    async def vehicles(self) -> Sequence[Vehicle]:
        async with self._sessions() as s:
            return (await s.exec(select(Vehicle).order_by(Vehicle.id))).all()

    async def vehicle(self, vehicle_id: str) -> Vehicle | None:
        async with self._sessions() as s:
            return await s.get(Vehicle, vehicle_id)

    async def set_vehicle_in_service(self, vehicle_id: str, in_service: bool) -> None:
        async with self.transaction() as s:
            v = await s.get(Vehicle, vehicle_id)
            if v is None:
                raise NotFound("vehicle", vehicle_id)
            v.in_service = in_service

    # --- SKUs, stock and the ledger --------------------------------------------------------

    async def upsert_sku(self, sku: Sku) -> None:
        async with self.transaction() as s:
            await s.merge(sku)

    async def skus(self) -> Sequence[Sku]:
        async with self._sessions() as s:
            return (await s.exec(select(Sku).order_by(Sku.id))).all()

    async def sku_count(self) -> int:
        async with self._sessions() as s:
            return int((await s.exec(select(sa.func.count()).select_from(Sku))).one())

    async def stock(self, warehouse_id: str | None = None) -> Sequence[Stock]:
        async with self._sessions() as s:
            q = select(Stock)
            if warehouse_id:
                q = q.where(Stock.warehouse_id == warehouse_id)
            return (await s.exec(q.order_by(Stock.warehouse_id, Stock.sku_id))).all()

    async def move_stock(
        self,
        kind: str,
        warehouse_id: str,
        sku_id: str,
        quantity: int,
        *,
        at: datetime,
        request_id: str | None = None,
        mission_id: str | None = None,
        actor: str = "system",
        note: str = "",
        session: AsyncSession | None = None,
    ) -> StockMovement:
        """Record one movement and change the balance it affects, atomically.

        Raises ``InsufficientStock`` when the movement would take on-hand or reserved stock
        below zero (or reserve more than is on hand), and ``ValidationError`` for a bad kind
        or quantity. Pass ``session`` to join a caller's transaction.
        """
        if session is None:
            async with self.transaction() as s:
                return await self.move_stock(
                    kind,
                    warehouse_id,
                    sku_id,
                    quantity,
                    at=at,
                    request_id=request_id,
                    mission_id=mission_id,
                    actor=actor,
                    note=note,
                    session=s,
                )
        if kind not in {k.value for k in MovementKind}:
            raise ValidationError(f"unknown stock movement {kind!r}", field="kind")
        problem = quantity_problem(kind, quantity)
        if problem is not None:
            raise ValidationError(problem, field="quantity")
        d_hand, d_res = effect(kind, quantity)
        s = session
        await s.exec(
            sa.insert(Stock).from_select(
                ["warehouse_id", "sku_id", "on_hand", "reserved"],
                sa.select(
                    sa.literal(warehouse_id), sa.literal(sku_id), sa.literal(0), sa.literal(0)
                ).where(
                    ~sa.exists().where(
                        col(Stock.warehouse_id) == warehouse_id, col(Stock.sku_id) == sku_id
                    )
                ),
            )
        )
        result = await s.exec(
            sa.update(Stock)
            .where(
                col(Stock.warehouse_id) == warehouse_id,
                col(Stock.sku_id) == sku_id,
                col(Stock.on_hand) + d_hand >= 0,
                col(Stock.reserved) + d_res >= 0,
                col(Stock.reserved) + d_res <= col(Stock.on_hand) + d_hand,
            )
            .values(on_hand=col(Stock.on_hand) + d_hand, reserved=col(Stock.reserved) + d_res)
            .returning(col(Stock.on_hand), col(Stock.reserved))
        )
        row = result.first()
        if row is None:
            current = await s.get(Stock, (warehouse_id, sku_id))
            have = (current.on_hand, current.reserved) if current else (0, 0)
            raise InsufficientStock(
                f"{kind} of {quantity} {sku_id} at {warehouse_id} would make stock negative "
                f"(on hand {have[0]}, reserved {have[1]})",
                warehouse_id=warehouse_id,
                sku_id=sku_id,
                quantity=quantity,
                on_hand=have[0],
                reserved=have[1],
            )
        movement = StockMovement(
            at=at,
            warehouse_id=warehouse_id,
            sku_id=sku_id,
            kind=kind,
            quantity=quantity,
            on_hand_after=row[0],
            reserved_after=row[1],
            request_id=request_id,
            mission_id=mission_id,
            actor=actor,
            note=note,
        )
        s.add(movement)
        await s.flush()
        return movement

    async def reallocate(
        self,
        warehouse_id: str,
        sku_id: str,
        changes: Sequence[LineChange],
        *,
        at: datetime,
        session: AsyncSession,
    ) -> list[int]:
        """Reserve and release one SKU at one warehouse for many request lines at once: the
        batched form of ``move_stock`` (``reserve``/``release``) plus ``count_item``
        (``allocated``) that the allocation step uses, in the caller's transaction.

        ``changes`` are applied in order, releases before reserves (a ``ValidationError``
        otherwise), so the balance never passes through a state ``move_stock`` would refuse.
        The balance changes by one conditional ``UPDATE`` (``InsufficientStock`` when it would
        go below zero or reserve more than is on hand); each change becomes one ledger line
        with its balance after, exactly as ``move_stock`` would write it one by one; each
        request line's ``allocated`` changes by one conditional ``UPDATE`` per chunk
        (``Conflict`` when a line is gone or a counter would leave its bounds, which rolls the
        caller's transaction back). Returns the ledger ids, in the order of ``changes``.

        Why not ``move_stock`` in a loop: at 5,000 open requests a dispatch round makes
        thousands of such changes, and one statement per change (five round trips each) was
        most of the round (``docs/benchmarks.md``, dispatch).
        """
        if not changes:
            return []
        seen_reserve = False
        for c in changes:
            if c.delta == 0 or isinstance(c.delta, bool):
                raise ValidationError("a reallocation must move something", field="delta")
            if c.delta > 0:
                seen_reserve = True
            elif seen_reserve:
                raise ValidationError("releases must come before reserves", field="changes")
        releases = sum(-c.delta for c in changes if c.delta < 0)
        net = sum(c.delta for c in changes)
        s = session
        row = (
            await s.exec(
                sa.update(Stock)
                .where(
                    col(Stock.warehouse_id) == warehouse_id,
                    col(Stock.sku_id) == sku_id,
                    col(Stock.reserved) - releases >= 0,
                    col(Stock.reserved) + net >= 0,
                    col(Stock.reserved) + net <= col(Stock.on_hand),
                )
                .values(reserved=col(Stock.reserved) + net)
                .returning(col(Stock.on_hand), col(Stock.reserved))
            )
        ).first()
        if row is None:
            current = await s.get(Stock, (warehouse_id, sku_id))
            have = (current.on_hand, current.reserved) if current else (0, 0)
            raise InsufficientStock(
                f"releasing {releases} and reserving {net + releases} {sku_id} at "
                f"{warehouse_id} would make stock negative or over-reserved "
                f"(on hand {have[0]}, reserved {have[1]})",
                warehouse_id=warehouse_id,
                sku_id=sku_id,
                quantity=net,
                on_hand=have[0],
                reserved=have[1],
            )
        on_hand, reserved = row[0], row[1] - net
        ledger: list[dict[str, Any]] = []
        for c in changes:
            reserved += c.delta
            ledger.append(
                {
                    "at": at,
                    "warehouse_id": warehouse_id,
                    "sku_id": sku_id,
                    "kind": (MovementKind.RESERVE if c.delta > 0 else MovementKind.RELEASE).value,
                    "quantity": abs(c.delta),
                    "on_hand_after": on_hand,
                    "reserved_after": reserved,
                    "request_id": c.request_id,
                    "mission_id": None,
                    "actor": c.actor,
                    "note": c.note,
                }
            )
        movements = _MOVEMENTS
        # The balance row is locked by the UPDATE above until this transaction ends, and every
        # movement of this SKU at this warehouse changes that row first: so the ledger lines
        # of this (warehouse, SKU) after ``before`` are exactly the ones inserted here, in
        # order. (INSERT ... RETURNING with ordered rows runs one statement per row on SQLite.)
        before = (
            await s.exec(
                select(sa.func.coalesce(sa.func.max(movements.c.id), 0)).where(
                    movements.c.warehouse_id == warehouse_id, movements.c.sku_id == sku_id
                )
            )
        ).one()
        await _INSERT_LEDGER.run(s, ledger)
        ids = list(
            (
                await s.exec(
                    select(movements.c.id)
                    .where(
                        movements.c.warehouse_id == warehouse_id,
                        movements.c.sku_id == sku_id,
                        movements.c.id > before,
                    )
                    .order_by(movements.c.id)
                )
            ).all()
        )
        if len(ids) != len(ledger):
            raise Conflict(
                f"the ledger of {sku_id} at {warehouse_id} changed during a reallocation",
                warehouse_id=warehouse_id,
                sku_id=sku_id,
            )
        await self._add_allocated(sku_id, changes, s)
        return ids

    async def _add_allocated(
        self, sku_id: str, changes: Sequence[LineChange], s: AsyncSession
    ) -> None:
        """``allocated += delta`` on each changed request line, guarded like ``count_item``;
        ``Conflict`` when any line refused (the caller's transaction then rolls back)."""
        rows = [{"item": c.item_id, "sku": sku_id, "d": c.delta} for c in changes]
        if self.engine.dialect.supports_sane_multi_rowcount:  # SQLite, psycopg
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                if await _ADD_ALLOCATED.run(s, chunk) != len(chunk):
                    raise Conflict(
                        f"a request line of {sku_id} is gone or its allocation left its "
                        "bounds during a reallocation",
                        sku_id=sku_id,
                    )
            return
        for c, row in zip(changes, rows, strict=True):
            if await _ADD_ALLOCATED.run(s, [row]) != 1:
                raise Conflict(
                    f"request {c.request_id} line {sku_id}: cannot add allocated {c.delta:+}",
                    request_id=c.request_id,
                    sku_id=sku_id,
                )

    async def set_warehouses(
        self, choices: Sequence[tuple[str, str, dict[str, Any]]], session: AsyncSession
    ) -> None:
        """Set ``(request_id, warehouse_id, details)`` on many requests in one statement,
        bumping each one's version (the allocation step's warehouse choices)."""
        if not choices:
            return
        await _SET_WAREHOUSES.run(session, [{"rid": r, "wh": w, "det": d} for r, w, d in choices])

    async def insert_events(self, events: Sequence[MissionEvent], session: AsyncSession) -> None:
        """Store many events in the caller's transaction in one statement (their ids are
        not read back: use ``session.add`` for an event whose id is needed)."""
        if not events:
            return
        await _INSERT_EVENTS.run(
            session, [{c: getattr(ev, c) for c in _EVENT_COLUMNS} for ev in events]
        )

    async def insert_rows(
        self, table: str, rows: Sequence[dict[str, Any]], session: AsyncSession
    ) -> None:
        """Insert many rows of ``table`` (keys: column names, the same in every row) in the
        caller's transaction, in one statement without an ORM object or SQLAlchemy's work per
        row (:mod:`fleet.store.bulk`): the dispatch round's missions, tasks and trips. Give
        every column the ORM would fill from its defaults (``Mission.phase``...)."""
        if not rows:
            return
        keys = tuple(rows[0])
        bulk = _INSERTS.get((table, keys))
        if bulk is None:
            bulk = _INSERTS[(table, keys)] = BulkStatement(
                sa.insert(SQLModel.metadata.tables[table]), keys
            )
        await bulk.run(session, rows)

    async def insert_missions(self, missions: Sequence[Mission], session: AsyncSession) -> None:
        """Store new missions (built, never added to a session) with :meth:`insert_rows`: the
        objects stay detached, as the dispatch round hands them to their runs."""
        await self.insert_rows(
            "mission", [{c: getattr(m, c) for c in _MISSION_COLUMNS} for m in missions], session
        )

    async def insert_tasks(self, tasks: Sequence[Task], session: AsyncSession) -> None:
        """Store new tasks (built, never added to a session) with :meth:`insert_rows`."""
        await self.insert_rows(
            "task", [{c: getattr(t, c) for c in _TASK_COLUMNS} for t in tasks], session
        )

    async def mission_states_of_tasks(
        self, request_ids: Iterable[str], *, task_states: Iterable[str], session: AsyncSession
    ) -> dict[str, list[str]]:
        """Per request of ``request_ids``, the states of the missions its tasks in
        ``task_states`` are on (requests without such a task left out), in one query."""
        ids = sorted(set(request_ids))
        if not ids:
            return {}
        t, m = _TASKS, _MISSIONS
        rows = await (await session.connection()).execute(
            sa.select(t.c.request_id, m.c.state)
            .join(m, m.c.id == t.c.mission_id)
            .where(t.c.request_id.in_(ids), t.c.state.in_(list(task_states)))
        )
        out: dict[str, list[str]] = {}
        for rid, state in rows:
            out.setdefault(rid, []).append(state)
        return out

    async def request_states(
        self, request_ids: Iterable[str], session: AsyncSession
    ) -> dict[str, str]:
        """The state of each of ``request_ids`` (absent ones left out), their rows locked for
        the caller's transaction (``FOR UPDATE`` where the database has it)."""
        ids = sorted(set(request_ids))
        if not ids:
            return {}
        t = _REQUESTS
        rows = await (await session.connection()).execute(
            sa.select(t.c.id, t.c.state).where(t.c.id.in_(ids)).with_for_update()
        )
        return {r[0]: r[1] for r in rows}

    async def move_requests(
        self,
        moves: Sequence[tuple[str, str | None]],
        *,
        from_state: str,
        to_state: str,
        session: AsyncSession,
    ) -> None:
        """Move many requests from ``from_state`` to ``to_state`` in the caller's transaction,
        each ``(request_id, warehouse_id)`` also setting its warehouse (kept when None) and
        bumping its version: the compare-and-set of :meth:`update_request` for a whole round's
        trips in one statement. ``Conflict`` (the caller's transaction rolls back) when any of
        them is no longer in ``from_state``."""
        if not moves:
            return
        rows = [{"rid": r, "wh": w, "src": from_state, "dst": to_state} for r, w in moves]
        if await _MOVE_REQUESTS.run(session, rows) != len(rows):
            raise Conflict(
                f"a request left {from_state} while it was being moved to {to_state}",
                state=from_state,
            )

    async def ledger(
        self,
        *,
        warehouse_id: str | None = None,
        sku_id: str | None = None,
        request_id: str | None = None,
        mission_id: str | None = None,
        after_id: int = 0,
        limit: int = 500,
        session: AsyncSession | None = None,
    ) -> Sequence[StockMovement]:
        async with self._reading(session) as s:
            q = select(StockMovement).where(col(StockMovement.id) > after_id)
            for column, value in (
                (StockMovement.warehouse_id, warehouse_id),
                (StockMovement.sku_id, sku_id),
                (StockMovement.request_id, request_id),
                (StockMovement.mission_id, mission_id),
            ):
                if value is not None:
                    q = q.where(column == value)
            return (await s.exec(q.order_by(col(StockMovement.id)).limit(limit))).all()

    # --- requests --------------------------------------------------------------------------

    async def create_request(
        self,
        request: Request,
        items: Iterable[RequestItem],
        events: Iterable[MissionEvent] = (),
        audit: AuditLog | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Store a new request with its items, events and audit line in one transaction.

        Returns the record and whether it was created; when ``idempotency_key`` matches an
        earlier request, that one is returned unchanged with ``False``.
        """
        if request.idempotency_key:
            earlier = await self.request_by_key(request.idempotency_key)
            if earlier is not None:
                return earlier, False
        items = list(items)
        try:
            async with self.transaction() as s:
                s.add(request)
                await s.flush()
                for item in items:
                    item.request_id = request.id
                    s.add(item)
                for ev in events:
                    ev.request_id = request.id
                    s.add(ev)
                if audit is not None:
                    audit.object_id = request.id
                    s.add(audit)
        except Conflict:
            if request.idempotency_key:  # lost a race with an identical retry
                earlier = await self.request_by_key(request.idempotency_key)
                if earlier is not None:
                    return earlier, False
            raise
        return RequestRecord(request, items), True

    async def request_by_key(self, key: str) -> RequestRecord | None:
        async with self._sessions() as s:
            req = (await s.exec(select(Request).where(Request.idempotency_key == key))).first()
            if req is None:
                return None
            return RequestRecord(req, list(await self._items(s, req.id)))

    @staticmethod
    async def _items(s: AsyncSession, request_id: str) -> Sequence[RequestItem]:
        q = select(RequestItem).where(RequestItem.request_id == request_id)
        return (await s.exec(q.order_by(col(RequestItem.id)))).all()

    async def get_request(
        self, request_id: str, session: AsyncSession | None = None
    ) -> RequestRecord:
        async with self._reading(session) as s:
            req = await s.get(Request, request_id)
            if req is None:
                raise NotFound("request", request_id)
            return RequestRecord(req, list(await self._items(s, request_id)))

    async def list_requests(
        self,
        *,
        states: Iterable[str] | None = None,
        community_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
        communities: Iterable[str] | None = None,
    ) -> list[RequestRecord]:
        """Requests oldest first; ``communities`` limits them to those communities (a caller's
        scope), ``community_id`` to one."""
        async with self._sessions() as s:
            q = select(Request)
            if states is not None:
                q = q.where(col(Request.state).in_(list(states)))
            if community_id:
                q = q.where(Request.community_id == community_id)
            if communities is not None:
                q = q.where(col(Request.community_id).in_(list(communities)))
            if kind:
                q = q.where(Request.kind == kind)
            reqs = (
                await s.exec(q.order_by(col(Request.created_at)).offset(offset).limit(limit))
            ).all()
            if not reqs:
                return []
            ids = [r.id for r in reqs]
            items = (
                await s.exec(
                    select(RequestItem)
                    .where(col(RequestItem.request_id).in_(ids))
                    .order_by(col(RequestItem.id))
                )
            ).all()
            by_req: dict[str, list[RequestItem]] = {i: [] for i in ids}
            for it in items:
                by_req[it.request_id].append(it)
            return [RequestRecord(r, by_req[r.id]) for r in reqs]

    async def open_request_rows(
        self, *, kind: str, states: Iterable[str], session: AsyncSession | None = None
    ) -> list[RowRecord]:
        """The requests of ``kind`` in ``states`` with their lines, as plain rows
        (:mod:`fleet.store.rows`), oldest first like :meth:`list_requests`: two Core
        ``SELECT``s and no ORM object, for the dispatch round's one read of every open request.
        """
        t, it = _REQUESTS, _ITEMS
        wanted = sa.and_(t.c.kind == kind, t.c.state.in_(list(states)))
        async with self._reading(session) as s:
            conn = await s.connection()
            reqs = (
                await conn.execute(
                    sa.select(
                        t.c.id, t.c.kind, t.c.community_id, t.c.warehouse_id, t.c.state,
                        t.c.priority, t.c.created_at, t.c.approved_at, t.c.deadline, t.c.details,
                        t.c.version,
                    )
                    .where(wanted)
                    .order_by(t.c.created_at)
                )
            ).all()  # fmt: skip
            if not reqs:
                return []
            items = (
                await conn.execute(
                    sa.select(
                        it.c.id, it.c.request_id, it.c.sku_id, it.c.quantity, it.c.allocated,
                        it.c.loaded, it.c.delivered,
                    )
                    .join(t, t.c.id == it.c.request_id)
                    .where(wanted)
                    .order_by(it.c.id)
                )
            ).all()  # fmt: skip
        by_req: dict[str, list[ItemRow]] = {r[0]: [] for r in reqs}
        for i in items:
            lines = by_req.get(i[1])
            if lines is not None:  # its request changed state between the two reads
                lines.append(ItemRow(*i))
        return [
            RowRecord(
                RequestRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9] or {}, r[10]),
                by_req[r[0]],
            )
            for r in reqs
        ]

    async def item_rows(
        self, request_ids: Iterable[str], session: AsyncSession | None = None
    ) -> dict[str, list[ItemRow]]:
        """The lines of ``request_ids`` as plain rows, per request in line id order (requests
        without lines absent)."""
        ids = list(request_ids)
        if not ids:
            return {}
        it = _ITEMS
        async with self._reading(session) as s:
            rows = (
                await (await s.connection()).execute(
                    sa.select(
                        it.c.id, it.c.request_id, it.c.sku_id, it.c.quantity, it.c.allocated,
                        it.c.loaded, it.c.delivered,
                    )
                    .where(it.c.request_id.in_(ids))
                    .order_by(it.c.id)
                )
            ).all()  # fmt: skip
        out: dict[str, list[ItemRow]] = {}
        for r in rows:
            out.setdefault(r[1], []).append(ItemRow(*r))
        return out

    async def task_loads(
        self,
        request_ids: Iterable[str],
        *,
        states: Iterable[str],
        session: AsyncSession | None = None,
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """``(request_id, load)`` of the tasks of ``request_ids`` in ``states``: the columns
        the planners count units from, without an ORM ``Task`` per row (a round counts the
        tasks of every open request)."""
        ids = list(request_ids)
        if not ids:
            return []
        t = _TASKS
        async with self._reading(session) as s:
            rows = (
                await (await s.connection()).execute(
                    sa.select(t.c.request_id, t.c.load).where(
                        t.c.request_id.in_(ids), t.c.state.in_(list(states))
                    )
                )
            ).all()
        return [(r[0], r[1] or []) for r in rows]

    async def update_request(
        self,
        request_id: str,
        *,
        expected_states: Iterable[str] | None = None,
        events: Iterable[MissionEvent] = (),
        session: AsyncSession | None = None,
        **changes: Any,
    ) -> Request:
        """Change a request's fields (compare-and-set on its state when ``expected_states``)."""
        return await self._update_stateful(
            Request, "request", request_id, expected_states, events, session, changes
        )

    async def update_items(self, items: Iterable[RequestItem], session: AsyncSession) -> None:
        for item in items:
            await session.merge(item)

    async def count_item(
        self,
        request_id: str,
        sku_id: str,
        *,
        allocated: int = 0,
        loaded: int = 0,
        delivered: int = 0,
        session: AsyncSession,
    ) -> RequestItem:
        """Add to a request line's counters atomically (safe against concurrent writers).

        Raises ``Conflict`` when the line does not exist, a counter would go below zero, or
        ``allocated`` above ``quantity``.
        """
        result = await session.exec(
            sa.update(RequestItem)
            .where(
                col(RequestItem.request_id) == request_id,
                col(RequestItem.sku_id) == sku_id,
                col(RequestItem.allocated) + allocated >= 0,
                col(RequestItem.allocated) + allocated <= col(RequestItem.quantity),
                col(RequestItem.loaded) + loaded >= 0,
                col(RequestItem.delivered) + delivered >= 0,
            )
            .values(
                allocated=col(RequestItem.allocated) + allocated,
                loaded=col(RequestItem.loaded) + loaded,
                delivered=col(RequestItem.delivered) + delivered,
            )
            .returning(col(RequestItem.id))
        )
        row = result.first()
        if row is None:
            raise Conflict(
                f"request {request_id} line {sku_id}: cannot add allocated {allocated:+}, "
                f"loaded {loaded:+}, delivered {delivered:+}",
                request_id=request_id,
                sku_id=sku_id,
            )
        item = await session.get(RequestItem, row[0], populate_existing=True)
        assert item is not None
        return item

    # --- missions, tasks and events --------------------------------------------------------

    async def create_mission(
        self, mission: Mission, tasks: Iterable[Task] = (), events: Iterable[MissionEvent] = ()
    ) -> Mission:
        async with self.transaction() as s:
            s.add(mission)
            await s.flush()
            for task in tasks:
                task.mission_id = mission.id
                s.add(task)
            for ev in events:
                ev.mission_id = mission.id
                s.add(ev)
        return mission

    async def get_mission(self, mission_id: str, session: AsyncSession | None = None) -> Mission:
        async with self._reading(session) as s:
            m = await s.get(Mission, mission_id)
            if m is None:
                raise NotFound("mission", mission_id)
            return m

    async def list_missions(
        self,
        *,
        states: Iterable[str] | None = None,
        vehicle_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        communities: Iterable[str] | None = None,
    ) -> Sequence[Mission]:
        """Missions oldest first; ``communities`` limits them to those with a task for one of
        those communities (a caller's scope)."""
        async with self._sessions() as s:
            q = select(Mission)
            if states is not None:
                q = q.where(col(Mission.state).in_(list(states)))
            if vehicle_id:
                q = q.where(Mission.vehicle_id == vehicle_id)
            if communities is not None:
                serving = select(Task.mission_id).where(
                    col(Task.community_id).in_(list(communities))
                )
                q = q.where(col(Mission.id).in_(serving))
            return (
                await s.exec(q.order_by(col(Mission.created_at)).offset(offset).limit(limit))
            ).all()

    async def mission_counts(self) -> dict[str, int]:
        """How many missions are in each state (one ``GROUP BY``; states without missions are
        absent)."""
        async with self._sessions() as s:
            q = select(Mission.state, sa.func.count()).group_by(col(Mission.state))
            return {state: int(n) for state, n in (await s.exec(q)).all()}

    async def missions_by_id(
        self, mission_ids: Iterable[str], session: AsyncSession | None = None
    ) -> dict[str, Mission]:
        ids = list(set(mission_ids))
        if not ids:
            return {}
        async with self._reading(session) as s:
            rows = (await s.exec(select(Mission).where(col(Mission.id).in_(ids)))).all()
            return {m.id: m for m in rows}

    async def mission_tasks(
        self, mission_id: str, session: AsyncSession | None = None
    ) -> Sequence[Task]:
        async with self._reading(session) as s:
            return (await s.exec(select(Task).where(Task.mission_id == mission_id))).all()

    async def tasks_of_requests(
        self, request_ids: Iterable[str], session: AsyncSession | None = None
    ) -> Sequence[Task]:
        ids = list(request_ids)
        if not ids:
            return []
        async with self._reading(session) as s:
            return (await s.exec(select(Task).where(col(Task.request_id).in_(ids)))).all()

    async def request_tasks(
        self, request_id: str, session: AsyncSession | None = None
    ) -> Sequence[Task]:
        async with self._reading(session) as s:
            return (await s.exec(select(Task).where(Task.request_id == request_id))).all()

    async def update_mission(
        self,
        mission_id: str,
        *,
        expected_states: Iterable[str] | None = None,
        events: Iterable[MissionEvent] = (),
        session: AsyncSession | None = None,
        **changes: Any,
    ) -> Mission:
        """Change a mission (compare-and-set on its state) and append its events."""
        return await self._update_stateful(
            Mission, "mission", mission_id, expected_states, events, session, changes
        )

    async def _update_stateful(
        self,
        model: type[StatefulT],
        kind: str,
        ident: str,
        expected_states: Iterable[str] | None,
        events: Iterable[MissionEvent],
        session: AsyncSession | None,
        changes: dict[str, Any],
    ) -> StatefulT:
        """Lock a request or mission row, check its state is one of ``expected_states``, apply
        ``changes``, bump its version and add ``events`` tied to it, in ``session`` (or a new
        transaction)."""
        if session is None:
            async with self.transaction() as s:
                return await self._update_stateful(
                    model, kind, ident, expected_states, events, s, changes
                )
        row = await session.get(model, ident, with_for_update=True)
        if row is None:
            raise NotFound(kind, ident)
        if expected_states is not None:
            allowed = list(expected_states)
            if row.state not in allowed:
                raise Conflict(
                    f"{kind} {ident} is {row.state}, expected one of {', '.join(allowed)}",
                    **{f"{kind}_id": ident, "state": row.state},
                )
        for key, value in changes.items():
            setattr(row, key, value)
        row.version += 1
        for ev in events:
            setattr(ev, f"{kind}_id", ident)
            session.add(ev)
        return row

    async def update_task(self, task: Task, session: AsyncSession) -> None:
        await session.merge(task)

    async def add_events(self, events: Iterable[MissionEvent]) -> None:
        """Store events in one transaction (their ids are not read back)."""
        rows = list(events)
        if not rows:
            return
        async with self.transaction() as s:
            await self.insert_events(rows, s)

    async def last_event_id(self) -> int:
        """The id of the newest recorded event (0 when there is none)."""
        async with self._sessions() as s:
            q = select(sa.func.max(MissionEvent.id))
            return (await s.exec(q)).one() or 0

    async def events(
        self,
        *,
        mission_id: str | None = None,
        request_id: str | None = None,
        vehicle_id: str | None = None,
        kind: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> Sequence[MissionEvent]:
        async with self._sessions() as s:
            q = select(MissionEvent).where(col(MissionEvent.id) > after_id)
            if kind:
                q = q.where(MissionEvent.kind == kind)
            if mission_id:
                q = q.where(MissionEvent.mission_id == mission_id)
            if request_id:
                q = q.where(MissionEvent.request_id == request_id)
            if vehicle_id:
                q = q.where(MissionEvent.vehicle_id == vehicle_id)
            return (await s.exec(q.order_by(col(MissionEvent.id)).limit(limit))).all()

    # --- audit -----------------------------------------------------------------------------

    async def audit(self, entry: AuditLog) -> None:
        async with self.transaction() as s:
            s.add(entry)

    async def audit_log(
        self,
        *,
        limit: int = 100,
        after_id: int = 0,
        actor: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
    ) -> Sequence[AuditLog]:
        """Audit lines oldest first after ``after_id``, optionally of one actor or object."""
        async with self._sessions() as s:
            q = select(AuditLog).where(col(AuditLog.id) > after_id)
            if actor is not None:
                q = q.where(AuditLog.actor == actor)
            if object_type is not None:
                q = q.where(AuditLog.object_type == object_type)
            if object_id is not None:
                q = q.where(AuditLog.object_id == object_id)
            return (await s.exec(q.order_by(col(AuditLog.id)).limit(limit))).all()

    # --- accounts and API keys -------------------------------------------------------------

    async def add_account(self, account: Account, audit: AuditLog | None = None) -> Account:
        """Store a new account (409 when the username is taken), with its audit line."""
        async with self._sessions() as s:
            taken = await s.exec(select(Account.id).where(Account.username == account.username))
            if taken.first() is not None:
                raise Conflict(f"username {account.username!r} is taken", field="username")
        async with self.transaction() as s:
            s.add(account)
            if audit is not None:
                audit.object_id = account.id
                s.add(audit)
        return account

    async def account(self, *, username: str | None = None, id: str | None = None) -> Account:
        """The account by username or id (``NotFound`` otherwise)."""
        async with self._sessions() as s:
            q = select(Account)
            q = q.where(Account.username == username) if username else q.where(Account.id == id)
            found = (await s.exec(q)).first()
        if found is None:
            raise NotFound("account", username or id)
        return found

    async def accounts(self) -> Sequence[Account]:
        async with self._sessions() as s:
            return (await s.exec(select(Account).order_by(col(Account.username)))).all()

    async def update_account(
        self, username: str, changes: dict[str, Any], audit: AuditLog | None = None
    ) -> Account:
        """Apply ``changes`` (column: value) to the account, with its audit line."""
        async with self.transaction() as s:
            found = (await s.exec(select(Account).where(Account.username == username))).first()
            if found is None:
                raise NotFound("account", username)
            for key, value in changes.items():
                setattr(found, key, value)
            s.add(found)
            if audit is not None:
                audit.object_id = found.id
                s.add(audit)
        return found

    async def add_api_key(self, key: ApiKey, audit: AuditLog | None = None) -> ApiKey:
        async with self.transaction() as s:
            s.add(key)
            if audit is not None:
                s.add(audit)
        return key

    async def api_key(self, key_id: str) -> tuple[ApiKey, Account] | None:
        """The key and its account (None when there is no such key)."""
        async with self._sessions() as s:
            q = select(ApiKey, Account).join(Account, col(Account.id) == col(ApiKey.account_id))
            row = (await s.exec(q.where(ApiKey.id == key_id))).first()
        return None if row is None else (row[0], row[1])

    async def api_keys(self, account_id: str) -> Sequence[ApiKey]:
        async with self._sessions() as s:
            q = select(ApiKey).where(ApiKey.account_id == account_id)
            return (await s.exec(q.order_by(col(ApiKey.created_at)))).all()

    async def revoke_api_key(
        self, key_id: str, at: datetime, audit: AuditLog | None = None
    ) -> None:
        async with self.transaction() as s:
            key = await s.get(ApiKey, key_id)
            if key is None:
                raise NotFound("api key", key_id)
            if key.revoked_at is None:
                key.revoked_at = at
                s.add(key)
            if audit is not None:
                s.add(audit)
