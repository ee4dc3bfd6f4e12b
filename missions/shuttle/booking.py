"""What a van's picks and drops do to the record: stock movements, tasks, requests, events.

Each function runs inside the caller's transaction (``s``) and returns the mission events it
added, to be published once the transaction commits. The rules (``docs/shuttles.md``):

* **pick finished** at the dock: one ``load`` movement per line (request, mission): the
  request's reservation becomes goods in transit on the van;
* **drop finished** at the gate: one ``deliver`` movement per line, the task is done, the
  request item's ``delivered`` grows, one ``payload`` event per request with the load id (the
  trace id); the request settles (``missions.bookkeeping.settle_request``): ``delivered`` when
  complete, else the state its other work implies;
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

from fleet.store.repository import Session
from fleet.store.tables import Mission, MissionEvent, RequestItem, Task
from missions.bookkeeping import cancel_request, settle_request
from missions.context import MissionContext
from missions.journal import EventKind
from missions.shuttle.trips import LoadLine, LoadPlan
from missions.states import TaskState


async def _items(s: Session, request_id: str) -> list[RequestItem]:
    q = select(RequestItem).where(RequestItem.request_id == request_id)
    return list((await s.exec(q)).all())


async def count(
    ctx: MissionContext,
    s: Session,
    request_id: str,
    sku_id: str,
    *,
    allocated: int = 0,
    loaded: int = 0,
    delivered: int = 0,
) -> None:
    """Add to a request line's counters (atomically, :meth:`Store.count_item`). ``loaded``
    counts units that left on a vehicle, delivered ones included, less those given up."""
    await ctx.store.count_item(
        request_id,
        sku_id,
        allocated=allocated,
        loaded=loaded,
        delivered=delivered,
        session=s,
    )


async def set_task(s: Session, task_id: str, state: TaskState) -> None:
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
    ctx: MissionContext, s: Session, mission: Mission, warehouse_id: str, load: LoadPlan
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
        await count(ctx, s, line.request_id, line.sku_id, loaded=line.units)
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
    s: Session,
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
                item = next(i for i in await _items(s, rid) if i.sku_id == ln.sku_id)
                back = max(0, min(ln.units, item.quantity - item.allocated))
                await count(ctx, s, rid, ln.sku_id, allocated=back, loaded=ln.units)
            await count(ctx, s, rid, ln.sku_id, delivered=ln.units)
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
    for ev in events:  # the hand-over is recorded before the state it leads to
        s.add(ev)
    await s.flush()
    for rid in by_request:
        events += await settle_request(
            ctx,
            s,
            rid,
            f"load {load.load_id} dropped at the {where}",
            mission_id=mission.id,
            vehicle_id=mission.vehicle_id,
        )
    for ev in events:
        s.add(ev)
    return events


async def book_return(
    ctx: MissionContext,
    s: Session,
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
    s: Session,
    mission: Mission,
    loads: Iterable[LoadPlan],
    *,
    loaded: bool,
    reason: str,
    cancel_requests: bool = False,
) -> list[MissionEvent]:
    """Take the work of ``loads`` off the mission (see the module docstring): back in the
    queue, or, with ``cancel_requests`` (an operator cancelled the trip), its requests are
    cancelled unless other missions still carry them (``missions.bookkeeping``)."""
    events: list[MissionEvent] = []
    touched: set[str] = set()
    task_state = TaskState.CANCELLED if cancel_requests else TaskState.FAILED
    for load in loads:
        for line in load.lines:
            await set_task(s, line.task_id, task_state)
            touched.add(line.request_id)
            if loaded:  # no longer in the warehouse: allocate again from stock
                await count(
                    ctx,
                    s,
                    line.request_id,
                    line.sku_id,
                    allocated=-line.units,
                    loaded=-line.units,
                )
        where = (
            f"; its goods are on {mission.vehicle_id} and come back to stock when they are "
            "unloaded at the dock"
            if loaded
            else ""
        )
        events.append(
            ctx.journal.event(
                EventKind.DECISION,
                f"{load.describe()} "
                + ("cancelled" if cancel_requests else "back in the queue")
                + f": {reason}{where}",
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
        if cancel_requests and not await _carried_elsewhere(s, rid, mission.id):
            events += await cancel_request(
                ctx, s, rid, reason, mission_id=mission.id, vehicle_id=mission.vehicle_id
            )
            continue
        events += await settle_request(
            ctx,
            s,
            rid,
            f"{reason}; its remaining units wait for a vehicle",
            mission_id=mission.id,
            vehicle_id=mission.vehicle_id,
        )
    return events


async def _carried_elsewhere(s: Session, request_id: str, mission_id: str) -> bool:
    q = select(Task).where(Task.request_id == request_id)
    return any(
        t.state == TaskState.ASSIGNED and t.mission_id != mission_id
        for t in (await s.exec(q)).all()
    )


async def settle(
    ctx: MissionContext, s: Session, mission: Mission, request_ids: Iterable[str], reason: str
) -> list[MissionEvent]:
    """Settle each request in the state its work now implies (``missions.bookkeeping``)."""
    events: list[MissionEvent] = []
    for rid in dict.fromkeys(request_ids):
        events += await settle_request(
            ctx, s, rid, reason, mission_id=mission.id, vehicle_id=mission.vehicle_id
        )
    return events
