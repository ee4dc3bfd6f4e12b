"""Reading and writing shuttle plans and the trips linked to them (tables ``shuttle_plan`` and
``shuttle_trip``), through the store's transactions.

Plans are small and few, so reads load them whole. A deleted plan keeps its row (with
``deleted_at``) so that its trips stay traceable; it no longer runs and is no longer listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from fleet.errors import Conflict, NotFound
from fleet.store.repository import Session, Store
from fleet.store.tables import AuditLog, Mission, ShuttlePlan, ShuttleTrip, Task
from missions.shuttle.plans import PlanSpec


async def list_plans(store: Store, *, include_deleted: bool = False) -> list[ShuttlePlan]:
    async with store.transaction() as s:
        q = select(ShuttlePlan)
        if not include_deleted:
            q = q.where(col(ShuttlePlan.deleted_at).is_(None))
        return list((await s.exec(q.order_by(col(ShuttlePlan.created_at)))).all())


async def plan_specs(store: Store) -> list[PlanSpec]:
    """Every plan that is not deleted, as domain objects."""
    return [PlanSpec.from_row(p) for p in await list_plans(store)]


async def get_plan(store: Store, plan_id: str) -> ShuttlePlan:
    async with store.transaction() as s:
        row = await s.get(ShuttlePlan, plan_id)
    if row is None or row.deleted_at is not None:
        raise NotFound("shuttle plan", plan_id)
    return row


async def insert_plan(store: Store, row: ShuttlePlan, audit: AuditLog) -> ShuttlePlan:
    async with store.transaction() as s:
        s.add(row)
        await s.flush()
        audit.object_id = row.id
        s.add(audit)
    return row


async def update_plan(
    store: Store,
    plan_id: str,
    changes: dict[str, Any],
    audit: AuditLog,
    *,
    expected_version: int | None = None,
) -> ShuttlePlan:
    """Apply ``changes`` (compare-and-set on ``version`` when given)."""
    async with store.transaction() as s:
        row = await s.get(ShuttlePlan, plan_id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise NotFound("shuttle plan", plan_id)
        if expected_version is not None and row.version != expected_version:
            raise Conflict(
                f"shuttle plan {plan_id} changed meanwhile (version {row.version}, "
                f"expected {expected_version}); read it again",
                shuttle_plan_id=plan_id,
                version=row.version,
            )
        for key, value in changes.items():
            setattr(row, key, value)
        row.version += 1
        s.add(audit)
    return row


async def add_trip(s: Session, trip: ShuttleTrip) -> None:
    """Link a new trip mission to its plan (inside the caller's transaction)."""
    s.add(trip)


async def trips_of_plan(
    store: Store, plan_id: str, *, since: datetime | None = None, limit: int = 1000
) -> list[tuple[ShuttleTrip, Mission, list[Task]]]:
    """The plan's trips (newest shifts first, then by van and number) with mission and tasks."""
    async with store.transaction() as s:
        q = (
            select(ShuttleTrip, Mission)
            .join(Mission, col(Mission.id) == col(ShuttleTrip.mission_id))
            .where(ShuttleTrip.shuttle_plan_id == plan_id)
        )
        if since is not None:
            q = q.where(col(ShuttleTrip.created_at) >= since)
        q = q.order_by(
            col(ShuttleTrip.shift_day).desc(),
            col(ShuttleTrip.vehicle_id),
            col(ShuttleTrip.number),
        ).limit(limit)
        rows: Sequence[tuple[ShuttleTrip, Mission]] = (await s.exec(q)).all()
        ids = [m.id for _, m in rows]
        tasks: dict[str, list[Task]] = {i: [] for i in ids}
        if ids:
            for t in (await s.exec(select(Task).where(col(Task.mission_id).in_(ids)))).all():
                if t.mission_id is not None:
                    tasks[t.mission_id].append(t)
        return [(tr, m, tasks[m.id]) for tr, m in rows]


async def trip_count(store: Store, plan_id: str, vehicle_id: str, day: Any) -> int:
    """Trips a van has been given in one shift of a plan."""
    async with store.transaction() as s:
        q = select(ShuttleTrip).where(
            ShuttleTrip.shuttle_plan_id == plan_id,
            ShuttleTrip.vehicle_id == vehicle_id,
            ShuttleTrip.shift_day == day,
        )
        return len((await s.exec(q)).all())
