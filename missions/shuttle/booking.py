"""What a van's picks and drops do to the record: stock movements, tasks, requests, events.

Each function runs inside the caller's transaction (``s``) and returns the mission events it
added, to be published once the transaction commits. The rules (``docs/shuttles.md``):

* **pick finished** at the dock: one ``load`` movement per line (request, mission): the
  request's reservation becomes goods in transit on the van;
* **drop finished** at the gate: one ``deliver`` movement per line, the task is done, the
  request item's ``delivered`` grows, one ``payload`` event per request with the load id (the
  trace id); a request with everything delivered closes ``delivered``;
* **undelivered work** goes back to the queue: its tasks fail; if its goods were loaded they
  are no longer in the warehouse, so the request's ``allocated`` shrinks by them (the
  allocation step reserves again) and they stay in transit on the van until a return trip
  unloads them at the dock (``return``);
* **return** at the dock: one ``return`` movement per line, booked against the mission that
  loaded the goods.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import select

from fleet.errors import Conflict
from fleet.store.tables import Mission, MissionEvent, Request, RequestItem, Task
from missions.context import MissionContext
from missions.journal import EventKind
from missions.shuttle.trips import LoadLine, LoadPlan
from missions.states import RequestState, TaskState


async def _items(s: Any, request_id: str) -> list[RequestItem]:
    q = select(RequestItem).where(RequestItem.request_id == request_id)
    return list((await s.exec(q)).all())


async def _tasks_of(s: Any, request_id: str) -> list[Task]:
    return list((await s.exec(select(Task).where(Task.request_id == request_id))).all())


async def count(
    s: Any,
    request_id: str,
    sku_id: str,
    *,
    allocated: int = 0,
    loaded: int = 0,
    delivered: int = 0,
) -> None:
    """Add to a request line's counters, keeping ``delivered <= loaded <= allocated``
    (``loaded`` counts units that left on a vehicle, delivered ones included)."""
    for item in await _items(s, request_id):
        if item.sku_id != sku_id:
            continue
        item.allocated = max(0, item.allocated + allocated)
        item.loaded = min(item.allocated, max(0, item.loaded + loaded))
        item.delivered = min(item.loaded, max(0, item.delivered + delivered))
        s.add(item)


async def set_task(s: Any, task_id: str, state: TaskState) -> None:
    task = await s.get(Task, task_id)
    if task is not None:
        task.state = state
        s.add(task)


def _movement_event(
    ctx: MissionContext, mission: Mission, mv: Any, line: LoadLine, load_id: str, note: str
) -> MissionEvent:
    return ctx.journal.event(
        EventKind.STOCK,
        f"{mv.kind} {mv.quantity} {mv.sku_id}: {note}",
        mission_id=mission.id,
        request_id=line.request_id,
        vehicle_id=mission.vehicle_id,
        movement_id=mv.id,
        sku_id=mv.sku_id,
        quantity=mv.quantity,
        movement=mv.kind,
        load_id=load_id,
        boxes=line.boxes,
    )


async def book_pick(
    ctx: MissionContext, s: Any, mission: Mission, warehouse_id: str, load: LoadPlan
) -> list[MissionEvent]:
    """The van finished loading ``load`` at the dock."""
    events = []
    now = ctx.clock.now()
    for line in load.lines:
        mv = await ctx.store.move_stock(
            "load",
            warehouse_id,
            line.sku_id,
            line.units,
            at=now,
            request_id=line.request_id,
            mission_id=mission.id,
            note=f"loaded on {mission.vehicle_id} (load {load.load_id})",
            session=s,
        )
        await count(s, line.request_id, line.sku_id, loaded=line.units)
        events.append(_movement_event(ctx, mission, mv, line, load.load_id, f"load {load.load_id}"))
    events.append(
        ctx.journal.event(
            EventKind.PAYLOAD,
            f"loaded {load.describe()} at the dock (load {load.load_id})",
            mission_id=mission.id,
            vehicle_id=mission.vehicle_id,
            action="pick",
            load_id=load.load_id,
            boxes=load.boxes,
            community_id=load.community_id,
            request_ids=list(load.request_ids),
        )
    )
    for ev in events:
        s.add(ev)
    return events


async def book_drop(
    ctx: MissionContext,
    s: Any,
    mission: Mission,
    warehouse_id: str,
    load: LoadPlan,
    *,
    node_id: str,
    late: bool = False,
) -> list[MissionEvent]:
    """The van finished unloading ``load`` at its gate (``late``: seen only after the van
    came back from a link loss, after its work had been given to others)."""
    events: list[MissionEvent] = []
    now = ctx.clock.now()
    where = f"gate of {load.community_id}"
    for line in load.lines:
        mv = await ctx.store.move_stock(
            "deliver",
            warehouse_id,
            line.sku_id,
            line.units,
            at=now,
            request_id=line.request_id,
            mission_id=mission.id,
            note=f"dropped at the {where} by {mission.vehicle_id} (load {load.load_id})",
            session=s,
        )
        events.append(
            _movement_event(ctx, mission, mv, line, load.load_id, f"dropped at the {where}")
        )
        await set_task(s, line.task_id, TaskState.DONE)
    by_request: dict[str, list[LoadLine]] = {}
    for line in load.lines:
        by_request.setdefault(line.request_id, []).append(line)
    for rid, lines in by_request.items():
        for ln in lines:
            if late:  # its allocation and load were given back when the van was lost
                await count(s, rid, ln.sku_id, allocated=ln.units, loaded=ln.units)
            await count(s, rid, ln.sku_id, delivered=ln.units)
        await s.flush()
        items = await _items(s, rid)
        boxes = sum(ln.boxes for ln in lines)
        what = ", ".join(f"{ln.units} {ln.sku_id}" for ln in lines)
        events.append(
            ctx.journal.event(
                EventKind.PAYLOAD,
                f"{mission.vehicle_id} dropped {boxes} boxes ({what}) at the {where}"
                + (" (seen after the link came back)" if late else ""),
                mission_id=mission.id,
                request_id=rid,
                vehicle_id=mission.vehicle_id,
                action="drop",
                status="finished",
                load_id=load.load_id,
                node_id=node_id,
                boxes=boxes,
                units={ln.sku_id: ln.units for ln in lines},
                community_id=load.community_id,
            )
        )
        req = await s.get(Request, rid)
        if req is not None and all(i.delivered >= i.quantity for i in items):
            for ev in events:  # the hand-over is recorded before the state it leads to
                s.add(ev)
            await s.flush()
            events += await _request_to(
                ctx,
                s,
                req,
                RequestState.DELIVERED,
                f"everything delivered: last load {load.load_id} dropped at the {where}",
                mission,
                from_states=[
                    RequestState.IN_PROGRESS,
                    RequestState.SCHEDULED,
                    RequestState.APPROVED,
                ],
                closed_at=now,
            )
    for ev in events:
        s.add(ev)
    return events


async def book_return(
    ctx: MissionContext,
    s: Any,
    mission: Mission,
    warehouse_id: str,
    load: LoadPlan,
    carried_by: str,
    why: str,
) -> list[MissionEvent]:
    """Goods of ``load``, loaded by mission ``carried_by``, are back in the warehouse."""
    events = []
    now = ctx.clock.now()
    for line in load.lines:
        mv = await ctx.store.move_stock(
            "return",
            warehouse_id,
            line.sku_id,
            line.units,
            at=now,
            request_id=line.request_id,
            mission_id=carried_by,
            note=f"{why} (load {load.load_id})",
            session=s,
        )
        events.append(_movement_event(ctx, mission, mv, line, load.load_id, why))
    events.append(
        ctx.journal.event(
            EventKind.PAYLOAD,
            f"unloaded {load.describe()} back at the dock: {why} (load {load.load_id})",
            mission_id=mission.id,
            vehicle_id=mission.vehicle_id,
            action="return",
            load_id=load.load_id,
            boxes=load.boxes,
            carried_by=carried_by,
        )
    )
    for ev in events:
        s.add(ev)
    return events


async def requeue(
    ctx: MissionContext,
    s: Any,
    mission: Mission,
    loads: Iterable[LoadPlan],
    *,
    loaded: bool,
    reason: str,
) -> list[MissionEvent]:
    """Put the work of ``loads`` back in the queue (see the module docstring)."""
    events: list[MissionEvent] = []
    touched: set[str] = set()
    for load in loads:
        for line in load.lines:
            await set_task(s, line.task_id, TaskState.FAILED)
            touched.add(line.request_id)
            if loaded:  # no longer in the warehouse: allocate again from stock
                await count(
                    s, line.request_id, line.sku_id, allocated=-line.units, loaded=-line.units
                )
        events.append(
            ctx.journal.event(
                EventKind.DECISION,
                f"{load.describe()} back in the queue: {reason}"
                + (
                    f"; its goods are on {mission.vehicle_id} and come back to stock when "
                    "they are unloaded at the dock"
                    if loaded
                    else ""
                ),
                mission_id=mission.id,
                vehicle_id=mission.vehicle_id,
                load_id=load.load_id,
                request_ids=list(load.request_ids),
                loaded=loaded,
            )
        )
    for ev in events:
        s.add(ev)
    await s.flush()
    for rid in sorted(touched):
        events += await release_to_queue(ctx, s, rid, mission, reason)
    return events


async def release_to_queue(
    ctx: MissionContext, s: Any, request_id: str, mission: Mission, reason: str
) -> list[MissionEvent]:
    """A request with no work left on any vehicle and not fully delivered goes back to
    ``approved`` (its remaining allocated units wait for the next trip)."""
    req = await s.get(Request, request_id)
    if req is None or req.state not in (RequestState.SCHEDULED, RequestState.IN_PROGRESS):
        return []
    active = [
        t
        for t in await _tasks_of(s, request_id)
        if t.state == TaskState.ASSIGNED and t.mission_id != mission.id
    ]
    mine = [
        t
        for t in await _tasks_of(s, request_id)
        if t.state == TaskState.ASSIGNED and t.mission_id == mission.id
    ]
    if active or mine:
        return []
    items = await _items(s, request_id)
    delivered = sum(i.delivered for i in items)
    asked = sum(i.quantity for i in items)
    return await _request_to(
        ctx,
        s,
        req,
        RequestState.APPROVED,
        f"{reason}; {delivered} of {asked} units delivered, the rest waits for a vehicle",
        mission,
        from_states=[RequestState.SCHEDULED, RequestState.IN_PROGRESS],
    )


async def _request_to(
    ctx: MissionContext,
    s: Any,
    req: Request,
    dst: RequestState,
    reason: str,
    mission: Mission,
    *,
    from_states: list[RequestState],
    **changes: Any,
) -> list[MissionEvent]:
    if req.state == dst:
        return []
    ev = ctx.journal.event(
        EventKind.STATE,
        reason,
        mission_id=mission.id,
        request_id=req.id,
        vehicle_id=mission.vehicle_id,
        from_state=req.state,
        to_state=dst,
    )
    try:
        await ctx.store.update_request(
            req.id, expected_states=from_states, events=[ev], session=s, state=dst, **changes
        )
    except Conflict:
        return []  # moved on (cancelled, closed by a rule): the mission's own events stand
    return [ev]


async def requests_underway(
    ctx: MissionContext, s: Any, mission: Mission, request_ids: Iterable[str]
) -> list[MissionEvent]:
    """The mission left with their goods: ``scheduled`` (or ``approved``) requests are now
    ``in_progress``."""
    events: list[MissionEvent] = []
    for rid in dict.fromkeys(request_ids):
        req = await s.get(Request, rid)
        if req is None:
            continue
        events += await _request_to(
            ctx,
            s,
            req,
            RequestState.IN_PROGRESS,
            f"on its way on {mission.vehicle_id} (mission {mission.id})",
            mission,
            from_states=[RequestState.SCHEDULED, RequestState.APPROVED],
        )
    return events
