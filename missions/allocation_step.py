"""The allocation step: at the start of every dispatch round, each warehouse's stock of each SKU
is shared between the open delivery requests that ask for it, by the rule of
:mod:`missions.allocation` (weighted max-min between communities, priority classes first inside
a community), and what each request is granted is reserved for it in stock.

**Pools.** A request is served from its ``warehouse_id`` when its requester named one. Otherwise
the dispatcher chooses: among the warehouses a vehicle can serve it from now (a delivery drone
online at the warehouse's pads for a load that may fly, or a van on a shuttle plan serving the
community from there), the nearest to its community's gate with available stock of one of its
SKUs, else the nearest such; when no warehouse can serve it now, the nearest with stock, else
the nearest. The choice is kept once something is reserved there, but not forever: when nothing
of the request is on a vehicle yet and no vehicle can serve it from the chosen warehouse while
another warehouse can, its reservations are released and it moves (a ``decision`` says why).
Each (warehouse, SKU) is one pool.

**What is shared** in a pool is the stock *in play*: units available (``on_hand - reserved``),
units already promised to requests but not yet on a vehicle, and units of open requests that
vehicles carry or delivered. The last ones cannot move: each community's share is at least what
its open requests already carry (a floor); a community that already carries more than the rule
would give it keeps that and is left out while the rest is shared again. So the allocation is
the same whether work left early or late, and a request that arrives after others were promised
everything still receives its community's share as long as the units have not left on a
vehicle. Requests past their deadline keep what they hold and take no more.

**Moves.** The difference between a request's new share and what it held becomes a ``release``
(first) or a ``reserve`` movement with its ``request_id`` (no mission), and its
``RequestItem.allocated`` changes by the same amount, in one transaction per pool. Planners then
plan ``allocated - delivered - assigned`` (:mod:`missions.open_work`) and never reserve.

**Record.** Each request whose share changes (or which is short for the first time) gets a
``decision`` event with the reason (``Decision.as_event()``: quantity, community share, rule,
Jain's index); each pool whose outcome changes gets one ``decision`` event without a request
id, with the per-community shares, shortfall and Jain's index. :attr:`AllocationStep.latest`
holds the last round (``GET /v1/allocations/latest``). How one pool is shared is
:func:`missions.pools.share_pool` (pure).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from fleet.errors import Conflict, InsufficientStock
from fleet.geo import distance_m
from fleet.ledger import MovementKind
from fleet.store.repository import LineChange, Session
from fleet.store.rows import Record
from fleet.store.tables import MissionEvent, Stock
from missions.allocation import (
    community_weight,
    jain_index,
)
from missions.bookkeeping import DELIVERY_OPEN
from missions.context import MissionContext
from missions.decision_log import decision_event
from missions.journal import EventKind
from missions.open_work import assigned_now, assigned_units
from missions.pools import CommunityOutcome, PoolLine, PoolOutcome, share_pool
from missions.routing.decisions import Decision, DecisionKind
from missions.states import Priority, RequestKind

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AllocationRound:
    """What one allocation step decided."""

    at: datetime
    pools: tuple[PoolOutcome, ...]
    moves: int
    """Reserve and release movements it made."""

    @property
    def jain_index(self) -> float | None:
        """Weighted Jain's index of the satisfied fraction of every (pool, community) pair
        (``None`` when nothing was asked)."""
        values, weights = [], []
        for p in self.pools:
            for c in p.communities:
                values.append(c.satisfied)
                weights.append(c.weight)
        return jain_index(values, weights) if values else None

    @property
    def shortfall(self) -> dict[str, dict[str, int]]:
        """Units short per community and SKU."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for p in self.pools:
            for c in p.communities:
                if c.shortfall > 0:
                    out[c.community_id][p.sku_id] = (
                        out[c.community_id].get(p.sku_id, 0) + c.shortfall
                    )
        return dict(out)

    def as_json(self) -> dict[str, Any]:
        j = self.jain_index
        return {
            "at": self.at.isoformat(),
            "jain_index": None if j is None else round(j, 6),
            "moves": self.moves,
            "shortfall": self.shortfall,
            "pools": [p.as_json() for p in self.pools],
        }


Serves = Callable[[str, str, bool], Awaitable[bool]]
"""``await serves(warehouse_id, community_id, flyable)``: whether a vehicle can take work from
that warehouse to that community now (drones count only for a ``flyable`` load)."""

SharePolicy = Callable[
    [str, str, int, Sequence["PoolLine"], Mapping[str, int | float]],
    tuple["PoolOutcome", dict[str, int], dict[str, str]],
]
"""``share(warehouse_id, sku_id, available, wants, weights)``: how one pool is shared (the
signature of :func:`share_pool`); returns the outcome, each request's new *held* quantity and
the reason of its split. The service always uses :func:`share_pool`; benchmarks swap in their
baselines (``bench.baselines.fcfs_share``) through :attr:`AllocationStep.share`."""

CHOSEN_BY = "warehouse_chosen_by"
"""Key in ``Request.details`` marking a warehouse the dispatcher chose (not the requester)."""


class AllocationStep:
    """Runs the allocation at the start of each dispatch round (the dispatcher holds its lock)."""

    def __init__(
        self, ctx: MissionContext, serves: Serves | None = None, share: SharePolicy | None = None
    ) -> None:
        self.ctx = ctx
        self.serves = serves
        """Where vehicles can serve from now (the dispatcher's fleet view); None: anywhere."""
        self.share: SharePolicy = share or share_pool
        """How each pool is shared: :func:`share_pool` (weighted max-min with floors); a
        benchmark's baseline policy may replace it."""
        self.latest: AllocationRound | None = None
        """The last round (None before the first)."""
        self._serving: dict[tuple[str, bool], set[str]] = {}
        """Warehouses vehicles can serve from, per (community, flyable), for this round."""
        self._recorded: dict[tuple[str, str], tuple[int, int]] = {}
        self._pool_recorded: dict[tuple[str, str], tuple[Any, ...]] = {}

    async def run(self, records: Sequence[Record] | None = None) -> AllocationRound:
        """Allocate every pool once; returns (and keeps) the round.

        ``records``: the open delivery requests (the dispatch round passes the rows it read
        once for the whole round; read here when None). The shares committed are written back
        into them (``allocated``, the chosen warehouse), so the round's later steps see them."""
        ctx = self.ctx
        now = ctx.clock.now()
        if records is None:
            records = await ctx.store.open_request_rows(
                kind=RequestKind.DELIVERY, states=list(DELIVERY_OPEN)
            )
        assigned = await assigned_now(ctx.store, [r.request.id for r in records])
        stock = {(st.warehouse_id, st.sku_id): st for st in await ctx.store.stock()}
        skus = {sku.id: sku for sku in await ctx.store.skus()}
        self._serving.clear()
        pools: dict[tuple[str, str], list[PoolLine]] = defaultdict(list)
        for rec in records:
            req = rec.request
            if req.deadline is not None and req.deadline <= now:
                continue  # past its deadline: keeps what it holds, takes no more
            warehouse_id = await self._warehouse_for(rec, stock, skus, assigned)
            if warehouse_id is None:
                continue
            for item in rec.items:
                carried = item.delivered + assigned.get((req.id, item.sku_id), 0)
                pools[(warehouse_id, item.sku_id)].append(
                    PoolLine(rec, item, carried, max(0, item.allocated - carried))
                )
        outcomes = []
        moves = 0
        for (warehouse_id, sku_id), wants in sorted(pools.items()):
            st = stock.get((warehouse_id, sku_id))
            available = max(0, st.on_hand - st.reserved) if st is not None else 0
            outcome, targets, reasons = self._allocate_pool(warehouse_id, sku_id, available, wants)
            outcomes.append(outcome)
            moves += await self._apply(outcome, wants, targets, reasons)
        result = AllocationRound(now, tuple(outcomes), moves)
        self.latest = result
        return result

    async def release_for_adjustment(
        self, s: Session, warehouse_id: str, sku_id: str, units: int, why: str
    ) -> tuple[int, list[MissionEvent]]:
        """Release up to ``units`` of ``sku_id`` reserved at ``warehouse_id`` for requests and
        not yet on a vehicle, so that a count correction can take them off; the least urgent,
        latest requests give first (the next round shares what is left again). Returns the
        units released and the events (in the session ``s``)."""
        ctx = self.ctx
        records = [
            r
            for r in await ctx.store.list_requests(
                states=list(DELIVERY_OPEN), kind=RequestKind.DELIVERY, limit=1_000_000
            )
            if r.request.warehouse_id == warehouse_id
        ]
        assigned = assigned_units(
            await ctx.store.tasks_of_requests((r.request.id for r in records), session=s)
        )

        def last_first(rec: Record) -> tuple[int, float, float]:
            r = rec.request
            return (
                -Priority(r.priority).rank,
                -(r.deadline.timestamp() if r.deadline else math.inf),
                -r.created_at.timestamp(),
            )

        left = units
        events: list[MissionEvent] = []
        now = ctx.clock.now()
        for rec in sorted(records, key=last_first):
            if left <= 0:
                break
            rid = rec.request.id
            item = next((i for i in rec.items if i.sku_id == sku_id), None)
            if item is None:
                continue
            held = item.allocated - item.delivered - assigned.get((rid, sku_id), 0)
            take = min(held, left)
            if take <= 0:
                continue
            mv = await ctx.store.move_stock(
                MovementKind.RELEASE,
                warehouse_id,
                sku_id,
                take,
                at=now,
                request_id=rid,
                note=f"released for a stock correction: {why}",
                session=s,
            )
            await ctx.store.count_item(rid, sku_id, allocated=-take, session=s)
            d = Decision(
                kind=DecisionKind.ALLOCATION,
                subject_id=rid,
                reason=f"{sku_id}: {take} of its allocation released at {warehouse_id} because "
                f"the stock was corrected ({why}); the next round shares what is left",
                quantity=item.allocated - take,
                request_ids=(rid,),
                data={"warehouse_id": warehouse_id, "sku_id": sku_id, "change": -take},
            )
            evs = [
                ctx.journal.event(
                    EventKind.STOCK,
                    f"release {take} {sku_id}: stock correction",
                    request_id=rid,
                    movement_id=mv.id,
                    sku_id=sku_id,
                    quantity=take,
                    movement=MovementKind.RELEASE.value,
                ),
                decision_event(ctx, d, request_id=rid),
            ]
            for ev in evs:
                s.add(ev)
            events += evs
            self._recorded.pop((rid, sku_id), None)
            left -= take
        return units - left, events

    # --- deciding --------------------------------------------------------------------------

    async def _warehouse_for(
        self,
        rec: Record,
        stock: dict[tuple[str, str], Stock],
        skus: Mapping[str, Any],
        assigned: Mapping[tuple[str, str], int],
    ) -> str | None:
        """The warehouse ``rec`` is served from this round (see the module docstring)."""
        req = rec.request
        current = req.warehouse_id
        if current is not None and not req.details.get(CHOSEN_BY):
            return current  # the requester's choice binds
        carried = any(
            item.delivered + assigned.get((req.id, item.sku_id), 0) > 0 for item in rec.items
        )
        if current is not None and (carried or self.serves is None):
            return current
        flyable = self._flyable(rec, skus)
        key = (req.community_id, flyable)
        serving = self._serving.get(key)
        if serving is None:  # once per community and kind of load in a round
            serving = set()
            if self.serves is not None:
                for w in self.ctx.world.warehouses:
                    if await self.serves(w.id, req.community_id, flyable):
                        serving.add(w.id)
            self._serving[key] = serving
        if current is not None and (current in serving or not serving):
            return current
        choice = self._pick_warehouse(rec, stock, serving)
        if current is not None and choice is not None and choice != current:
            await self._move(rec, current, choice)
        return choice

    def _flyable(self, rec: Record, skus: Mapping[str, Any]) -> bool:
        """Whether the request's load may fly and fits a drone."""
        kg = 0.0
        for item in rec.items:
            sku = skus.get(item.sku_id)
            if sku is None or not sku.drone_eligible:
                return False
            kg += sku.unit_kg * max(0, item.quantity - item.delivered)
        return kg <= self.ctx.settings.drone_missions.payload_kg + 1e-9

    def _pick_warehouse(
        self, rec: Record, stock: dict[tuple[str, str], Stock], serving: set[str]
    ) -> str | None:
        world = self.ctx.world
        gate = world.community(rec.request.community_id).gate

        def has_stock(warehouse_id: str) -> bool:
            for item in rec.items:
                st = stock.get((warehouse_id, item.sku_id))
                if st is not None and st.on_hand - st.reserved > 0:
                    return True
            return False

        ranked = sorted(
            world.warehouses,
            key=lambda w: (
                bool(serving) and w.id not in serving,
                not has_stock(w.id),
                distance_m(w.location, gate),
                w.id,
            ),
        )
        return ranked[0].id if ranked else None

    async def _move(self, rec: Record, old: str, new: str) -> None:
        """Release what ``rec`` holds at ``old`` (nothing of it is on a vehicle) so that it is
        allocated at ``new`` this round."""
        ctx = self.ctx
        req = rec.request
        now = ctx.clock.now()
        reason = (
            f"served from {new} instead of {old}: no vehicle can serve "
            f"{req.community_id} from {old} now, one can from {new}"
        )
        events: list[MissionEvent] = []
        async with ctx.store.transaction() as s:
            for item in rec.items:
                if item.allocated <= 0:
                    continue
                mv = await ctx.store.move_stock(
                    MovementKind.RELEASE,
                    old,
                    item.sku_id,
                    item.allocated,
                    at=now,
                    request_id=req.id,
                    note=f"moved to {new}",
                    session=s,
                )
                await ctx.store.count_item(
                    req.id, item.sku_id, allocated=-item.allocated, session=s
                )
                events.append(
                    ctx.journal.event(
                        EventKind.STOCK,
                        f"release {item.allocated} {item.sku_id}: moved to {new}",
                        request_id=req.id,
                        movement_id=mv.id,
                        sku_id=item.sku_id,
                        quantity=item.allocated,
                        movement=MovementKind.RELEASE.value,
                    )
                )
                item.allocated = 0
            details = {k: v for k, v in req.details.items() if k != CHOSEN_BY}
            await ctx.store.update_request(req.id, session=s, warehouse_id=None, details=details)
            events.append(
                ctx.journal.event(
                    EventKind.DECISION,
                    reason,
                    request_id=req.id,
                    warehouse_id=new,
                    previous_warehouse_id=old,
                )
            )
            for ev in events:
                s.add(ev)
        req.warehouse_id = None
        req.details = details
        ctx.journal.published(*events)
        log.info("allocation.moved", request_id=req.id, from_warehouse=old, to_warehouse=new)

    def _weight(self, community_id: str) -> int:
        c = self.ctx.world.community(community_id)
        return community_weight(c.population, c.vulnerable_households)

    def _allocate_pool(
        self, warehouse_id: str, sku_id: str, available: int, wants: Sequence[PoolLine]
    ) -> tuple[PoolOutcome, dict[str, int], dict[str, str]]:
        weights = {w.community_id: self._weight(w.community_id) for w in wants}
        return self.share(warehouse_id, sku_id, available, wants, weights)

    # --- applying and recording ------------------------------------------------------------

    async def _apply(
        self,
        outcome: PoolOutcome,
        wants: Sequence[PoolLine],
        targets: dict[str, int],
        reasons: dict[str, str],
    ) -> int:
        ctx = self.ctx
        j = ctx.journal
        wh, sku = outcome.warehouse_id, outcome.sku_id
        by_c = {c.community_id: c for c in outcome.communities}
        changes = [
            (w, targets[w.request_id] - w.held)
            for w in wants
            if w.request_id in targets and targets[w.request_id] != w.held
        ]
        changes += [(w, -w.held) for w in wants if w.request_id not in targets and w.held > 0]
        decisions: list[tuple[PoolLine, Decision]] = []
        for w in wants:
            held_after = targets.get(w.request_id, 0)
            total = w.carried + held_after
            key = (w.request_id, sku)
            sig = (total, w.item.quantity)
            if self._recorded.get(key) == sig:
                continue
            if held_after == w.held and total >= w.item.quantity and key not in self._recorded:
                self._recorded[key] = sig  # nothing decided about it: no record needed
                continue
            decisions.append(
                (
                    w,
                    self._decision(
                        outcome, by_c[w.community_id], w, held_after, reasons.get(w.request_id)
                    ),
                )
            )
        pool_changed = self._pool_recorded.get((wh, sku)) != outcome.signature()
        if not changes and not decisions and not pool_changed:
            return 0
        events: list[MissionEvent] = []
        now = ctx.clock.now()
        ordered = sorted(changes, key=lambda c: c[1])  # releases first
        line_changes = [
            LineChange(
                w.request_id,
                _item_id(w),
                delta,
                "allocation: share grew" if delta > 0 else "allocation: share shrank (re-balanced)",
            )
            for w, delta in ordered
        ]
        chosen: list[tuple[str, str, dict[str, Any]]] = []
        for w, _ in ordered:
            if w.rec.request.warehouse_id is None:
                details = {**w.rec.request.details, CHOSEN_BY: "dispatcher"}
                chosen.append((w.request_id, wh, details))
        try:
            async with ctx.store.transaction() as s:
                movement_ids = await ctx.store.reallocate(wh, sku, line_changes, at=now, session=s)
                await ctx.store.set_warehouses(chosen, s)
                for c, movement_id in zip(line_changes, movement_ids, strict=True):
                    kind = MovementKind.RESERVE if c.delta > 0 else MovementKind.RELEASE
                    events.append(
                        j.row(
                            EventKind.STOCK,
                            f"{kind.value} {abs(c.delta)} {sku}: {c.note}",
                            request_id=c.request_id,
                            movement_id=movement_id,
                            sku_id=sku,
                            quantity=abs(c.delta),
                            movement=kind.value,
                        )
                    )
                for w, d in decisions:
                    events.append(decision_event(ctx, d, request_id=w.request_id, row=True))
                if pool_changed or decisions:
                    events.append(decision_event(ctx, self._pool_decision(outcome), row=True))
                await ctx.store.insert_events(events, s)
        except (InsufficientStock, Conflict) as exc:
            # stock or a request changed under us (an adjustment, a van's booking): the next
            # round sees the new state and decides again
            log.warning("allocation.pool_skipped", warehouse_id=wh, sku_id=sku, error=str(exc))
            return 0
        recs = {w.request_id: w.rec for w, _ in ordered}
        for rid, _, details in chosen:
            rec = recs[rid]
            rec.request.warehouse_id = wh
            rec.request.details = details
        for w, delta in ordered:
            w.item.allocated += delta
        j.published(*events)
        for w, d in decisions:
            self._recorded[(w.request_id, sku)] = (int(d.quantity or 0), w.item.quantity)
        self._pool_recorded[(wh, sku)] = outcome.signature()
        return len(changes)

    @staticmethod
    def _decision(
        outcome: PoolOutcome, co: CommunityOutcome, w: PoolLine, held_after: int, inner: str | None
    ) -> Decision:
        r = w.rec.request
        total = w.carried + held_after
        head = (
            f"{outcome.sku_id}: {total} of {w.item.quantity} allocated from {outcome.warehouse_id}"
        )
        if w.carried:
            head += f" ({w.carried} already on vehicles or delivered)"
        short = w.item.quantity - total
        if total == 0:
            head = f"waits for stock: {head}"
        elif short > 0:
            head += f"; the other {short} wait for stock"
        reason = f"{head}; community {co.community_id}: {co.reason}"
        if inner and co.allocated < co.asked:
            reason += f"; inside the community: {inner}"
        return Decision(
            kind=DecisionKind.ALLOCATION,
            subject_id=r.id,
            reason=reason,
            quantity=total,
            request_ids=(r.id,),
            data={
                "warehouse_id": outcome.warehouse_id,
                "sku_id": outcome.sku_id,
                "asked": w.item.quantity,
                "carried": w.carried,
                "allocated": total,
                "change": held_after - w.held,
                "shortfall": w.item.quantity - total,
                "priority": r.priority,
                "community_id": co.community_id,
                "community_asked": co.asked,
                "community_allocated": co.allocated,
                "community_weight": co.weight,
                "community_reason": co.reason,
                "rule": outcome.rule.value,
                "in_play": outcome.in_play,
                "jain_index": round(outcome.jain_index, 6),
            },
        )

    @staticmethod
    def _pool_decision(outcome: PoolOutcome) -> Decision:
        return Decision(
            kind=DecisionKind.ALLOCATION,
            subject_id=f"{outcome.warehouse_id}/{outcome.sku_id}",
            reason=outcome.describe(),
            quantity=outcome.allocated,
            request_ids=(),
            data={"scope": "pool", **outcome.as_json()},
        )


def _item_id(line: PoolLine) -> int:
    """The stored id of a pool line's request item (items read from the store have one)."""
    if line.item.id is None:
        raise ValueError(f"request {line.request_id} line {line.item.sku_id} was never stored")
    return line.item.id
