"""Delivery request bookkeeping: the state a request settles in as its work moves, the
reservations it holds, cancelling it and closing it at its deadline.

Every function runs inside the caller's transaction (``s``) and returns the mission events it
added (already in the session), to be published once the transaction commits.

A delivery request's state follows its work (``docs/missions.md``):

* ``delivered`` once every line is delivered in full (closed);
* ``in_progress`` while a mission carrying one of its tasks is underway;
* ``scheduled`` while its tasks wait on planned (not yet started) missions;
* ``approved`` otherwise: in the queue, with allocated units waiting for a vehicle or waiting
  for stock. It stays open for more stock until its deadline, when the dispatcher closes it
  ``partially_delivered`` (something delivered) or ``failed`` (nothing), the shortfall in its
  reason, unless allocated units still wait for a vehicle (then it closes after they arrive).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fleet.ledger import MovementKind
from fleet.store.repository import Session
from fleet.store.rows import Record
from fleet.store.tables import MissionEvent
from missions.context import MissionContext
from missions.journal import EventKind
from missions.states import MissionState, RequestKind, RequestState, TaskState

DELIVERY_OPEN = (RequestState.APPROVED, RequestState.SCHEDULED, RequestState.IN_PROGRESS)
"""States of an approved delivery request whose work is not finished."""


async def settle_request(
    ctx: MissionContext,
    s: Session,
    request_id: str,
    reason: str,
    *,
    mission_id: str | None = None,
    vehicle_id: str | None = None,
) -> list[MissionEvent]:
    """Move an open delivery request to the state its work implies (see the module);
    nothing happens to closed, submitted or non-delivery requests."""
    rec = await ctx.store.get_request(request_id, session=s)
    req = rec.request
    if req.kind != RequestKind.DELIVERY:
        return await _requeue_other_kind(ctx, s, req.id, req.state, reason, mission_id, vehicle_id)
    if req.state not in DELIVERY_OPEN:
        return []
    changes: dict[str, Any] = {}
    if all(i.delivered >= i.quantity for i in rec.items):
        dst = RequestState.DELIVERED
        changes["closed_at"] = ctx.clock.now()
    else:
        active = [
            t
            for t in await ctx.store.request_tasks(request_id, session=s)
            if t.state == TaskState.ASSIGNED and t.mission_id
        ]
        missions = await ctx.store.missions_by_id(
            (t.mission_id for t in active if t.mission_id), session=s
        )
        if any(m.state == MissionState.UNDERWAY for m in missions.values()):
            dst = RequestState.IN_PROGRESS
        elif active:
            dst = RequestState.SCHEDULED
        else:
            dst = RequestState.APPROVED
    if dst == req.state:
        return []
    if dst == RequestState.APPROVED and any(i.delivered for i in rec.items):
        got = ", ".join(f"{i.delivered} of {i.quantity} {i.sku_id}" for i in rec.items)
        until = f" until {req.deadline:%H:%M} UTC" if req.deadline is not None else ""
        reason = f"{reason}; delivered {got}, open for the rest{until}"
    ev = ctx.journal.event(
        EventKind.STATE,
        reason,
        request_id=request_id,
        mission_id=mission_id,
        vehicle_id=vehicle_id,
        from_state=req.state,
        to_state=dst,
    )
    await ctx.store.update_request(
        request_id, expected_states=[req.state], events=[ev], session=s, state=dst, **changes
    )
    return [ev]


async def _requeue_other_kind(
    ctx: MissionContext,
    s: Session,
    request_id: str,
    state: str,
    reason: str,
    mission_id: str | None,
    vehicle_id: str | None,
) -> list[MissionEvent]:
    """A scheduled request of another kind (broadcast) whose mission stopped before it
    started goes back to ``approved`` when nothing else carries it; its own runs settle the
    rest."""
    if state != RequestState.SCHEDULED:
        return []
    if any(
        t.state == TaskState.ASSIGNED for t in await ctx.store.request_tasks(request_id, session=s)
    ):
        return []
    ev = ctx.journal.event(
        EventKind.STATE,
        reason,
        request_id=request_id,
        mission_id=mission_id,
        vehicle_id=vehicle_id,
        from_state=state,
        to_state=RequestState.APPROVED,
    )
    await ctx.store.update_request(
        request_id, expected_states=[state], events=[ev], session=s, state=RequestState.APPROVED
    )
    return [ev]


async def reserved_for(
    ctx: MissionContext, s: Session, request_id: str
) -> dict[tuple[str, str], int]:
    """Units reserved in stock for the request and not loaded, per (warehouse, SKU), read
    from its ledger lines (reserve − release − load)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for mv in await ctx.store.ledger(request_id=request_id, limit=1_000_000, session=s):
        if mv.kind == MovementKind.RESERVE:
            out[(mv.warehouse_id, mv.sku_id)] += mv.quantity
        elif mv.kind in (MovementKind.RELEASE, MovementKind.LOAD):
            out[(mv.warehouse_id, mv.sku_id)] -= mv.quantity
    return {k: v for k, v in out.items() if v > 0}


async def release_all(
    ctx: MissionContext, s: Session, request_id: str, why: str
) -> list[MissionEvent]:
    """Give back every unit still reserved for the request (its allocation shrinks by them)."""
    events = []
    now = ctx.clock.now()
    for (warehouse_id, sku_id), qty in sorted((await reserved_for(ctx, s, request_id)).items()):
        mv = await ctx.store.move_stock(
            MovementKind.RELEASE,
            warehouse_id,
            sku_id,
            qty,
            at=now,
            request_id=request_id,
            note=why,
            session=s,
        )
        item = next(
            i
            for i in (await ctx.store.get_request(request_id, session=s)).items
            if i.sku_id == sku_id
        )
        await ctx.store.count_item(
            request_id, sku_id, allocated=-min(qty, item.allocated), session=s
        )
        ev = ctx.journal.event(
            EventKind.STOCK,
            f"release {qty} {sku_id}: {why}",
            request_id=request_id,
            movement_id=mv.id,
            sku_id=sku_id,
            quantity=qty,
            movement=MovementKind.RELEASE.value,
        )
        s.add(ev)
        events.append(ev)
    return events


async def cancel_request(
    ctx: MissionContext,
    s: Session,
    request_id: str,
    why: str,
    *,
    mission_id: str | None = None,
    vehicle_id: str | None = None,
) -> list[MissionEvent]:
    """Cancel an open request: its tasks still waiting are cancelled, its reservations
    released, its state ``cancelled`` with ``why``. The caller has stopped its missions."""
    rec = await ctx.store.get_request(request_id, session=s)
    req = rec.request
    if req.state in (
        RequestState.DELIVERED,
        RequestState.PARTIALLY_DELIVERED,
        RequestState.COMPLETED,
        RequestState.FAILED,
        RequestState.CANCELLED,
        RequestState.REJECTED,
    ):
        return []
    for task in await ctx.store.request_tasks(request_id, session=s):
        if task.state in (TaskState.ASSIGNED, TaskState.PENDING):
            task.state = TaskState.CANCELLED
            await ctx.store.update_task(task, s)
    events = await release_all(ctx, s, request_id, f"request cancelled: {why}")
    ev = ctx.journal.event(
        EventKind.STATE,
        why,
        request_id=request_id,
        mission_id=mission_id,
        vehicle_id=vehicle_id,
        from_state=req.state,
        to_state=RequestState.CANCELLED,
    )
    await ctx.store.update_request(
        request_id,
        expected_states=[req.state],
        events=[ev],
        session=s,
        state=RequestState.CANCELLED,
        reason=why,
        closed_at=ctx.clock.now(),
    )
    return [*events, ev]


def due_for_closing(rec: Record, assigned: dict[tuple[str, str], int], now: datetime) -> bool:
    """Whether an open delivery request closes now: its deadline passed and none of its
    allocated units is still waiting for, or on, a vehicle."""
    req = rec.request
    if req.state != RequestState.APPROVED or req.deadline is None or req.deadline > now:
        return False
    return all(
        i.allocated - i.delivered - assigned.get((req.id, i.sku_id), 0) <= 0
        and assigned.get((req.id, i.sku_id), 0) == 0
        for i in rec.items
    )


async def close_at_deadline(ctx: MissionContext, s: Session, rec: Record) -> list[MissionEvent]:
    """Close a request whose deadline passed (see :func:`due_for_closing`):
    ``partially_delivered`` when something was delivered, else ``failed``, the shortfall
    per SKU in its reason and in the event's data."""
    req = rec.request
    assert req.deadline is not None
    short = {i.sku_id: i.quantity - i.delivered for i in rec.items if i.quantity > i.delivered}
    delivered = {i.sku_id: i.delivered for i in rec.items}
    when = f"{req.deadline:%Y-%m-%d %H:%M} UTC"
    if any(delivered.values()):
        dst = RequestState.PARTIALLY_DELIVERED
        got = ", ".join(
            f"{i.delivered} of {i.quantity} {i.sku_id}" for i in rec.items if i.quantity
        )
        reason = f"deadline {when} passed: delivered {got}; short " + ", ".join(
            f"{q} {sku}" for sku, q in short.items()
        )
    else:
        dst = RequestState.FAILED
        reason = f"deadline {when} passed with nothing delivered; short " + ", ".join(
            f"{q} {sku}" for sku, q in short.items()
        )
    if any(i.allocated < i.quantity for i in rec.items):
        reason += " (stock ran short: see its allocation decisions)"
    ev = ctx.journal.event(
        EventKind.STATE,
        reason,
        request_id=req.id,
        from_state=req.state,
        to_state=dst,
        shortfall=short,
        delivered=delivered,
        deadline=req.deadline.isoformat(),
    )
    await ctx.store.update_request(
        req.id,
        expected_states=[req.state],
        events=[ev],
        session=s,
        state=dst,
        reason=reason,
        closed_at=ctx.clock.now(),
    )
    return [ev]


async def settle_planned(
    ctx: MissionContext,
    s: Session,
    planned: Sequence[tuple[str, str, str | None, str | None]],
) -> list[MissionEvent]:
    """:func:`settle_request` for many delivery requests, each just given a task on a planned
    mission: ``(request_id, reason, mission_id, vehicle_id)``. The same states, events and
    compare-and-set as one :func:`settle_request` per request, in three reads for them all
    (their rows locked) and one write per kind of move (``Store.move_requests``); the rare
    request that would close or go back to ``approved`` takes :func:`settle_request` itself.

    Why: a dispatch round starts a sortie on every free drone, and settling them one by one
    (four reads and a write each) was most of the drone planner's commit
    (``docs/benchmarks.md``, dispatch)."""
    store, j = ctx.store, ctx.journal
    ids = [p[0] for p in planned]
    states = await store.request_states(ids, s)
    items = await store.item_rows(ids, session=s)
    on_missions = await store.mission_states_of_tasks(
        ids, task_states=(TaskState.ASSIGNED,), session=s
    )
    events: list[MissionEvent] = []
    rows: list[MissionEvent] = []
    moves: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
    for rid, reason, mission_id, vehicle_id in planned:
        src = states.get(rid)
        lines = items.get(rid, [])
        if src is None or all(i.delivered >= i.quantity for i in lines) or rid not in on_missions:
            # unknown, closing or back to approved: the one-by-one rule (it reads again)
            events += await settle_request(
                ctx, s, rid, reason, mission_id=mission_id, vehicle_id=vehicle_id
            )
            continue
        if src not in DELIVERY_OPEN:
            continue
        underway = any(m == MissionState.UNDERWAY for m in on_missions[rid])
        dst: str = RequestState.IN_PROGRESS if underway else RequestState.SCHEDULED
        if dst == src:
            continue
        rows.append(
            j.row(
                EventKind.STATE,
                reason,
                request_id=rid,
                mission_id=mission_id,
                vehicle_id=vehicle_id,
                from_state=src,
                to_state=dst,
            )
        )
        moves[(src, dst)].append((rid, None))
        states[rid] = dst
    for (src, dst), changed in moves.items():
        await store.move_requests(changed, from_state=src, to_state=dst, session=s)
    await store.insert_events(rows, s)
    return events + rows
