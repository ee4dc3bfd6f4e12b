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

from fleet.store.repository import Session, Store
from fleet.store.rows import ItemRow, Record
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


async def assigned_now(
    store: Store, request_ids: Iterable[str], *, session: Session | None = None
) -> dict[tuple[str, str], int]:
    """:func:`assigned_units` of the tasks of ``request_ids``, read as plain rows (only the
    ``assigned`` tasks, their request and load): what a dispatch round counts for every open
    request, without an ORM ``Task`` per task."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for request_id, load in await store.task_loads(
        request_ids, states=(TaskState.ASSIGNED,), session=session
    ):
        for line in load:
            out[(request_id, str(line["sku_id"]))] += int(line["quantity"])
    return dict(out)


def unassigned_units(rec: Record, assigned: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Units per SKU of ``rec`` that are allocated but neither delivered nor on a vehicle's
    work (``allocated - delivered - assigned``, lines with nothing left omitted)."""
    return _unassigned(rec.request.id, rec.items, assigned)


def _unassigned(
    request_id: str,
    items: Iterable[RequestItem | ItemRow],
    assigned: Mapping[tuple[str, str], int],
) -> dict[str, int]:
    out = {}
    for item in items:
        left = item.allocated - item.delivered - assigned.get((request_id, item.sku_id), 0)
        if left > 0:
            out[item.sku_id] = left
    return out


def carried_units(rec: Record, assigned: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Units per SKU of ``rec`` that vehicles carry or delivered (``delivered + assigned``)."""
    return {
        item.sku_id: item.delivered + assigned.get((rec.request.id, item.sku_id), 0)
        for item in rec.items
    }


async def unassigned_lines(
    store: Store,
    records: Sequence[Record],
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
    delivered or no longer holds in stock. Both reads are plain rows (``Store.task_loads``,
    ``Store.item_rows``): a round makes them for every open request."""
    ids = [r.request.id for r in records]
    assigned = await assigned_now(store, ids, session=session)
    now = await store.item_rows(ids, session=session)
    out: dict[str, Lines] = {}
    for rec in records:
        rid = rec.request.id
        items: Sequence[RequestItem | ItemRow] = now.get(rid) or rec.items
        units = _unassigned(rid, items, assigned)
        lines = [(skus[i.sku_id], units[i.sku_id]) for i in items if i.sku_id in units]
        if lines:
            out[rid] = lines
    return out


def load_json(lines: Lines) -> list[dict[str, Any]]:
    """``Task.load`` for ``lines``."""
    return [{"sku_id": sku.id, "quantity": qty} for sku, qty in lines]


def describe(lines: Lines) -> str:
    """``12 medicine, 3 test_kit``."""
    return ", ".join(f"{qty} {sku.id}" for sku, qty in lines)
