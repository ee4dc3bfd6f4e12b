"""Allocated work not yet on a vehicle: what delivery planners may plan.

The allocation step (:mod:`missions.allocation_step`) grants each request line a quantity and
reserves it in stock (``RequestItem.allocated``). Planners turn the part that no vehicle carries
yet into tasks on missions, and never reserve again. For one request line::

    unassigned = allocated - delivered - (units of its tasks still ``assigned``)

Tasks that failed or were cancelled no longer count (their units are planned again); tasks that
are ``done`` are in ``delivered``. Every delivery planner (drones, vans) calls these functions,
so they agree on what is left to plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlmodel import col, select

from fleet.store.repository import RequestRecord, Session, Store
from fleet.store.tables import RequestItem, Sku, Task
from missions.states import TaskState

Lines = list[tuple[Sku, int]]
"""A load as (SKU, units) lines, in the request's item order."""


def assigned_units(tasks: Iterable[Task]) -> dict[tuple[str, str], int]:
    """Units per (request id, SKU id) that vehicles' work carries now: tasks still
    ``assigned`` (on a planned or running mission, not yet delivered)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for t in tasks:
        if t.state != TaskState.ASSIGNED:
            continue
        for line in t.load:
            out[(t.request_id, str(line["sku_id"]))] += int(line["quantity"])
    return dict(out)


def unassigned_units(rec: RequestRecord, assigned: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Units per SKU of ``rec`` that are allocated but neither delivered nor on a vehicle's
    work (``allocated - delivered - assigned``, lines with nothing left omitted)."""
    out = {}
    for item in rec.items:
        left = item.allocated - item.delivered - assigned.get((rec.request.id, item.sku_id), 0)
        if left > 0:
            out[item.sku_id] = left
    return out


def carried_units(rec: RequestRecord, assigned: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Units per SKU of ``rec`` that vehicles carry or delivered (``delivered + assigned``)."""
    return {
        item.sku_id: item.delivered + assigned.get((rec.request.id, item.sku_id), 0)
        for item in rec.items
    }


async def unassigned_lines(
    store: Store,
    records: Sequence[RequestRecord],
    skus: Mapping[str, Sku],
    *,
    session: Session | None = None,
) -> dict[str, Lines]:
    """The unassigned allocated lines of each request in ``records`` (request id → lines,
    requests with nothing to plan omitted), reading their tasks in one query.

    The counts of the request lines are read again *after* the tasks, not taken from
    ``records`` (read earlier in the round): a run that commits in between moves units from a
    task to the lines (a delivery booked, loaded goods requeued), so in this order a planner
    may see less than is left (planned next round) but never plans units a vehicle carries,
    delivered or no longer holds in stock."""
    ids = [r.request.id for r in records]
    tasks = await store.tasks_of_requests(ids, session=session)
    assigned = assigned_units(tasks)
    now = await _items_now(store, ids, session)
    out: dict[str, Lines] = {}
    for rec in records:
        items = now.get(rec.request.id)
        if items is not None:
            rec = RequestRecord(rec.request, items)
        units = unassigned_units(rec, assigned)
        lines = [(skus[i.sku_id], units[i.sku_id]) for i in rec.items if i.sku_id in units]
        if lines:
            out[rec.request.id] = lines
    return out


async def _items_now(
    store: Store, request_ids: Sequence[str], session: Session | None
) -> dict[str, list[RequestItem]]:
    """The request lines of ``request_ids`` as the record holds them now."""
    if not request_ids:
        return {}
    q = (
        select(RequestItem)
        .where(col(RequestItem.request_id).in_(list(request_ids)))
        .order_by(col(RequestItem.id))
    )
    if session is not None:
        rows = (await session.exec(q)).all()
    else:
        async with store.transaction() as s:
            rows = (await s.exec(q)).all()
    out: dict[str, list[RequestItem]] = {}
    for row in rows:
        out.setdefault(row.request_id, []).append(row)
    return out


def load_json(lines: Lines) -> list[dict[str, Any]]:
    """``Task.load`` for ``lines``."""
    return [{"sku_id": sku.id, "quantity": qty} for sku, qty in lines]


def describe(lines: Lines) -> str:
    """``12 medicine, 3 test_kit``."""
    return ", ".join(f"{qty} {sku.id}" for sku, qty in lines)
