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

from fleet.store.repository import RequestRecord, Store
from fleet.store.tables import Sku, Task
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
    session: Any = None,
) -> dict[str, Lines]:
    """The unassigned allocated lines of each request in ``records`` (request id → lines,
    requests with nothing to plan omitted), reading their tasks in one query."""
    tasks = await store.tasks_of_requests((r.request.id for r in records), session=session)
    assigned = assigned_units(tasks)
    out: dict[str, Lines] = {}
    for rec in records:
        units = unassigned_units(rec, assigned)
        lines = [(skus[i.sku_id], units[i.sku_id]) for i in rec.items if i.sku_id in units]
        if lines:
            out[rec.request.id] = lines
    return out


def load_json(lines: Lines) -> list[dict[str, Any]]:
    """``Task.load`` for ``lines``."""
    return [{"sku_id": sku.id, "quantity": qty} for sku, qty in lines]


def describe(lines: Lines) -> str:
    """``12 medicine, 3 test_kit``."""
    return ", ".join(f"{qty} {sku.id}" for sku, qty in lines)
