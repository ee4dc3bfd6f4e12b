"""The dispatcher: each round shares scarce stock, closes overdue requests and turns allocated
work into planned missions on suitable vehicles.

A round runs whenever the dispatcher is woken (a request approved, stock received, a vehicle
freed or discovered) and at a steady interval, under :attr:`Dispatcher.lock`:

1. **Closing**: open delivery requests whose deadline passed and whose allocated units were
   all delivered close ``partially_delivered`` or ``failed`` (``missions.bookkeeping``).
2. **Allocation**: :class:`missions.allocation_step.AllocationStep` shares each warehouse's
   stock between the open requests and reserves each request's share.
3. **Planners**, in the order the mission kinds registered them (drone deliveries first,
   then vans, then broadcasts): each plans the allocated, unassigned work of its kind
   (``missions.open_work``) and never reserves stock.

The dispatcher knows no mission kind: kinds plug in through :meth:`Dispatcher.add_planner`,
:meth:`Dispatcher.add_serve_check` (who can take work from a warehouse to a community, for
the allocation step), :meth:`Dispatcher.set_carrier` (whether drones or vans can take a
delivery now) and :attr:`Dispatcher.mode_rule` (how a delivery load travels; the drone
delivery kind installs it, every delivery planner follows it through :meth:`mode_for`).

Every decision is recorded with its reason (``missions.decision_log``): what was allocated and
why, which vehicle and why, or why the work waits. How long rounds take is kept in
:attr:`Dispatcher.timings` (:class:`RoundTimings`), which the API's ``/metrics`` reads.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import structlog

from fleet.errors import Conflict
from fleet.store.rows import Record, RowRecord
from fleet.store.tables import MissionEvent
from missions.allocation_step import AllocationStep
from missions.bookkeeping import (
    DELIVERY_OPEN,
    close_at_deadline,
    due_for_closing,
)
from missions.context import MissionContext
from missions.decision_log import decision_event
from missions.modes import Mode, ModeChoice
from missions.open_work import Lines, assigned_units
from missions.routing.decisions import Decision, DecisionKind
from missions.states import (
    Priority,
    RequestKind,
    RequestState,
)

log = structlog.get_logger(__name__)


class RequestPlanner(Protocol):
    """Turns approved requests of one kind into planned missions."""

    request_kind: str
    """The ``RequestKind`` value it plans."""

    async def dispatch(self, pending: list[Any]) -> int:
        """Plan what can be planned now; return how many missions were planned. Requests that
        must wait get a recorded reason.

        ``pending`` is in queue order (:func:`queue_key`). Delivery planners receive every open
        delivery request (``approved``, ``scheduled``, ``in_progress``) as the round's plain
        rows (:class:`~fleet.store.rows.RowRecord`, shared by the round's steps) and plan only
        their unassigned allocated lines (:func:`missions.open_work.unassigned_lines`); other
        planners receive the ``approved`` requests of their kind as
        :class:`~fleet.store.repository.RequestRecord`."""
        ...


@runtime_checkable
class PreparingPlanner(Protocol):
    """A planner that starts slow work of its own before the planners registered ahead of it
    run (see :meth:`Dispatcher.dispatch_once`)."""

    async def prepare(self, pending: list[Any]) -> None:
        """Start work for this round that does not depend on what the earlier planners commit
        (``pending`` as :meth:`RequestPlanner.dispatch` will receive it); its
        :meth:`~RequestPlanner.dispatch` later in the round finishes it."""
        ...

    def discard(self) -> None:
        """The round ended without calling its ``dispatch``: drop what ``prepare`` started."""
        ...


Carrier = Callable[..., Awaitable[bool]]
"""``await carrier(ctx, community_id=..., warehouse_id=...)``: whether a carrier (drones, vans)
can take delivery work for that community from that warehouse now."""
ServeCheck = Callable[[str, str, bool], Awaitable[bool]]
"""``await check(warehouse_id, community_id, flyable)``: whether a vehicle can take that work."""
ModeRule = Callable[[Record, "Lines", "bool | None"], Awaitable[ModeChoice]]
"""``await rule(rec, lines, drones_available)``: how a delivery load travels."""


MIN_REAL_INTERVAL_S = 0.25
"""Real seconds at least between two unprompted dispatch rounds."""
REST_AFTER_REFUSAL_S = 120.0
"""World seconds a vehicle that refused a mission is not offered another."""

T = TypeVar("T")


ROUND_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (real seconds) of the round-time buckets :class:`RoundTimings` counts; 2 s is
the round-time target (``docs/benchmarks.md``, dispatch)."""


@dataclass(slots=True)
class RoundTimings:
    """How long the completed dispatch rounds took (real seconds, under the lock): a cumulative
    histogram kept in a few integers, so monitoring (the API's ``/metrics``) reads it when it
    likes and the round pays one ``bisect`` per round."""

    count: int = 0
    """Rounds timed."""
    total_s: float = 0.0
    """Their durations added up."""
    last_s: float | None = None
    """The latest round's duration."""
    buckets: tuple[float, ...] = ROUND_BUCKETS_S
    """Upper bounds of the buckets (ascending); a last, unbounded one is implied."""
    counts: list[int] = field(init=False)
    """Rounds per bucket (not cumulative); the last counts those above every bound."""

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total_s += seconds
        self.last_s = seconds
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, rounds at or under it)`` per bucket, ending with ``(inf, count)``."""
        out, running = [], 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class Dispatcher:
    """Runs dispatch rounds: closing, allocation, then the registered request planners."""

    def __init__(self, ctx: MissionContext) -> None:
        self.ctx = ctx
        self.planners: list[RequestPlanner] = []
        self.allocation = AllocationStep(ctx, serves=self.serves)
        self.lock = asyncio.Lock()
        """Held by every round and by operations that change allocations or tasks outside a
        round (cancel, priority change): hold it to turn allocated lines into tasks outside a
        round."""
        self.serve_checks: list[ServeCheck] = []
        """Who can take work from a warehouse to a community (see :meth:`serves`)."""
        self.carriers: dict[str, Carrier] = {}
        """Carriers by name (``drone``, ``van``): whether they can take work now."""
        self.mode_rule: ModeRule | None = None
        """How a delivery load travels (installed by the drone delivery kind)."""
        self._wake = asyncio.Event()
        self._waiting: dict[str, tuple[str | None, str]] = {}
        """Last (key, reason) recorded for a request that waits."""
        self.interval_s = 5.0
        self._resting: dict[str, tuple[float, str]] = {}
        """Vehicles that refused a mission: (world time until, reason)."""
        self.rounds = 0
        """Rounds completed (tests and monitoring)."""
        self.timings = RoundTimings()
        """Durations of the completed rounds (monitoring)."""
        self._unsaved: list[MissionEvent] | None = None
        """Inside a round: decisions recorded and not yet stored (see :meth:`flush_records`)."""
        self._facts: dict[Hashable, Any] | None = None
        """Inside a round: facts remembered for the round (see :meth:`round_fact`)."""

    def rest(self, vehicle_id: str, reason: str) -> None:
        """Offer ``vehicle_id`` no work for :data:`REST_AFTER_REFUSAL_S` (it refused a mission
        for ``reason``): re-planning onto it every round would only repeat the refusal."""
        until = self.ctx.clock.time() + REST_AFTER_REFUSAL_S
        self._resting[vehicle_id] = (until, reason)
        log.info("dispatch.vehicle_rests", vehicle_id=vehicle_id, reason=reason)

    def resting(self, vehicle_id: str) -> str | None:
        """Why ``vehicle_id`` rests now, or None."""
        rest = self._resting.get(vehicle_id)
        if rest is None:
            return None
        until, reason = rest
        if self.ctx.clock.time() >= until:
            del self._resting[vehicle_id]
            return None
        return reason

    def add_planner(self, planner: RequestPlanner) -> None:
        """Run ``planner`` in every round, after those already registered."""
        self.planners.append(planner)

    def kick(self) -> None:
        """Ask for a dispatch round soon."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch rounds forever (cancel to stop)."""
        while True:
            self._wake.clear()
            try:
                await self.dispatch_once()
            except Exception:
                log.exception("dispatcher.round_failed")
            with contextlib.suppress(TimeoutError):
                await self.ctx.clock.wait_for(self._wake.wait(), self._idle_interval())

    def _idle_interval(self) -> float:
        """World seconds between unprompted rounds: ``interval_s``, but never less than
        :data:`MIN_REAL_INTERVAL_S` of real time (an accelerated clock would otherwise spin
        rounds; anything that matters wakes the dispatcher with :meth:`kick`)."""
        speed = self.ctx.clock.speed
        if math.isinf(speed):
            return self.interval_s
        return max(self.interval_s, MIN_REAL_INTERVAL_S * speed)

    async def dispatch_once(self) -> int:
        """One round (see the module docstring): returns how many missions were planned."""
        planned = 0
        async with self.lock:
            started = time.perf_counter()
            self._unsaved = []
            self._facts = {}
            try:
                planned = await self._round()
            finally:
                self._facts = None
                try:
                    await self.flush_records()
                finally:
                    self._unsaved = None
            self.rounds += 1
            self.timings.observe(time.perf_counter() - started)
        return planned

    async def _round(self) -> int:
        planned = 0
        # Every open delivery request, read once for the whole round as plain rows: closing,
        # the allocation step and every delivery planner look at each of them, and at 5,000
        # open requests reading them as ORM objects, once per step, was the largest part of a
        # round run on the event loop (docs/benchmarks.md, dispatch). The allocation step
        # updates these rows in memory as it commits; what planners must not plan twice
        # (tasks, delivered units) they read afresh (missions.open_work).
        open_rows = await self.ctx.store.open_request_rows(
            kind=RequestKind.DELIVERY, states=list(DELIVERY_OPEN)
        )
        try:
            await self.close_due(open_rows)
        except Exception:
            log.exception("dispatcher.closing_failed")
        try:
            await self.allocation.run(open_rows)
        except Exception:
            log.exception("dispatcher.allocation_failed")
        await self.flush_records()
        listed: dict[str, list[Any]] = {}
        for planner in self.planners:
            await self._listed(planner.request_kind, listed, open_rows)
        # planners that can start slow, independent work (the van planner's routing, in a
        # worker thread) do so now, so that it runs while the planners ahead of them commit
        preparing = [p for p in self.planners if isinstance(p, PreparingPlanner)]
        for p in preparing:
            pending = listed[p.request_kind]
            if pending or p.request_kind == RequestKind.DELIVERY:
                await p.prepare(list(pending))
        try:
            for planner in self.planners:
                pending = listed[planner.request_kind]
                if not pending and planner.request_kind != RequestKind.DELIVERY:
                    continue
                if isinstance(planner, PreparingPlanner):
                    preparing.remove(planner)
                planned += await planner.dispatch(list(pending))
                await self.flush_records()
        finally:
            for p in preparing:
                p.discard()
        return planned

    async def _listed(
        self, kind: str, listed: dict[str, list[Any]], open_rows: list[RowRecord]
    ) -> None:
        """The pending requests of ``kind`` for the planners, in queue order (once per kind
        in a round: every delivery planner receives the same open requests, each plans only
        what is still unassigned, read afresh from the tasks)."""
        if kind in listed:
            return
        pending: list[Any]
        if kind == RequestKind.DELIVERY:
            pending = sorted(open_rows, key=queue_key)
        else:
            pending = await self.ctx.store.list_requests(
                states=[RequestState.APPROVED], kind=kind, limit=1_000_000
            )
            pending.sort(key=queue_key)
        listed[kind] = pending

    def round_fact(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, remembered under ``key`` until the end of the round (outside a round,
        computed every time).

        For facts the mode choice asks for every request of a round (whether drones are
        online at a warehouse, whether vans serve a community): scanning the registry and the
        pads once per request was a large part of a round at 5,000 open requests
        (``docs/benchmarks.md``). A round sees the fleet as it was at its first question; a
        vehicle that changes meanwhile counts from the next round (at most a few seconds)."""
        facts = self._facts
        if facts is None:
            return compute()
        if key in facts:
            return facts[key]  # type: ignore[no-any-return]
        value = facts[key] = compute()
        return value

    async def round_fact_async(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """:meth:`round_fact` for a coroutine's answer."""
        facts = self._facts
        if facts is None:
            return await compute()
        if key in facts:
            return facts[key]  # type: ignore[no-any-return]
        value = await compute()
        if self._facts is facts:
            facts[key] = value
        return value

    # --- closing at the deadline -----------------------------------------------------------

    async def close_due(self, records: list[RowRecord] | None = None) -> int:
        """Close the approved delivery requests whose deadline passed with nothing left to
        deliver (see ``missions.bookkeeping``); returns how many closed. ``records``: the
        round's open delivery requests (read when None); the closed ones are removed from it."""
        now = self.ctx.clock.now()
        candidates: list[Record] = (
            list(records)
            if records is not None
            else list(
                await self.ctx.store.list_requests(
                    states=[RequestState.APPROVED], kind=RequestKind.DELIVERY, limit=1_000_000
                )
            )
        )
        due = [
            r
            for r in candidates
            if r.request.state == RequestState.APPROVED
            and r.request.deadline is not None
            and r.request.deadline <= now
        ]
        if not due:
            return 0
        assigned = assigned_units(await self.ctx.store.tasks_of_requests(r.request.id for r in due))
        closed_ids: set[str] = set()
        for rec in due:
            if not due_for_closing(rec, assigned, now):
                waiting = sum(
                    i.allocated - i.delivered - assigned.get((rec.request.id, i.sku_id), 0)
                    for i in rec.items
                )
                await self.record_wait(
                    rec,
                    f"deadline passed: {waiting} allocated units still wait for a vehicle; "
                    "it closes once they are delivered",
                    key="deadline-passed",
                    kind=DecisionKind.DEADLINE,
                )
                continue
            try:
                async with self.ctx.store.transaction() as s:
                    events = await close_at_deadline(self.ctx, s, rec)
            except Conflict:
                continue  # moved on meanwhile (a vehicle delivered, an operator cancelled)
            self.ctx.journal.published(*events)
            self._waiting.pop(rec.request.id, None)
            closed_ids.add(rec.request.id)
        if records is not None and closed_ids:
            records[:] = [r for r in records if r.request.id not in closed_ids]
        return len(closed_ids)

    # --- carriers and the mode choice (installed by the mission kinds) ----------------------

    def add_serve_check(self, check: ServeCheck) -> None:
        """Ask ``check`` too whether a vehicle can take work from a warehouse to a community
        (the allocation step's :meth:`serves`)."""
        self.serve_checks.append(check)

    def set_carrier(self, name: str, available: Carrier) -> None:
        """Register how to know whether carrier ``name`` (``drone``, ``van``) can take
        delivery work for a community from a warehouse now."""
        self.carriers[name] = available

    async def carrier_available(
        self, name: str, *, community_id: str, warehouse_id: str | None
    ) -> bool:
        """Whether carrier ``name`` can take work now (False when no kind provides it)."""
        check = self.carriers.get(name)
        if check is None:
            return False
        return await check(self.ctx, community_id=community_id, warehouse_id=warehouse_id)

    async def serves(self, warehouse_id: str, community_id: str, flyable: bool) -> bool:
        """Whether a vehicle can take work from ``warehouse_id`` to ``community_id`` now (any
        registered :data:`ServeCheck` says yes)."""
        for check in self.serve_checks:
            if await check(warehouse_id, community_id, flyable):
                return True
        return False

    async def mode_for(
        self, rec: Record, lines: Lines, *, drones_available: bool | None = None
    ) -> ModeChoice:
        """How ``lines`` of ``rec`` travel: the one mode choice every delivery planner follows
        (the rule a mission kind installed as :attr:`mode_rule`; without one, by van)."""
        if self.mode_rule is None:
            return ModeChoice(Mode.VAN, "waits for a van: no other carrier is installed")
        return await self.mode_rule(rec, lines, drones_available)

    # --- recording -------------------------------------------------------------------------

    async def record_wait(
        self,
        rec: Record,
        reason: str,
        *,
        key: str | None = None,
        kind: DecisionKind = DecisionKind.UNSERVED,
        **data: Any,
    ) -> None:
        """Record why a request waits, once per distinct reason (or per ``key``, for reasons
        whose figures change every round)."""
        rid = rec.request.id
        last = self._waiting.get(rid)
        if last is not None and (last[0] == key if key is not None else last == (None, reason)):
            return
        self._waiting[rid] = (key, reason)
        d = Decision(kind=kind, subject_id=rid, reason=reason, request_ids=(rid,), data=data)
        await self._save(decision_event(self.ctx, d, request_id=rid, row=True))

    async def record(self, decision: Decision, **where: Any) -> None:
        """Store and publish one decision (``where``: request_id, mission_id, vehicle_id)."""
        await self._save(decision_event(self.ctx, decision, **where, row=True))

    async def _save(self, ev: MissionEvent) -> None:
        if self._unsaved is not None:
            self._unsaved.append(ev)
            return
        await self.ctx.store.add_events([ev])
        self.ctx.journal.published(ev)

    async def flush_records(self) -> None:
        """Store and publish the decisions recorded so far in this round, in one transaction.

        Inside a round, :meth:`record_wait` and :meth:`record` only collect: at 5,000 open
        requests a round records thousands of waits, and one transaction each was a large
        part of the round (``docs/benchmarks.md``, dispatch). The round stores them after
        the allocation and after each planner, so a request's record keeps its order: a wait
        one planner recorded comes before the mission the next planner gives it (a planner
        records a wait only for work it does not plan in that call). When storing fails, the
        waits are forgotten so that the next round records them again."""
        if not self._unsaved:
            return
        events, self._unsaved = self._unsaved, []
        try:
            async with self.ctx.store.transaction() as s:
                await self.ctx.store.insert_events(events, s)
        except Exception:
            for ev in events:
                if ev.request_id is not None:
                    self._waiting.pop(ev.request_id, None)
            raise
        self.ctx.journal.published(*events)

    def planned(self, request_id: str) -> None:
        """Forget the wait reason of a request that got a mission."""
        self._waiting.pop(request_id, None)


def queue_key(rec: Record) -> tuple[int, float, float]:
    """Queue order: priority class, then deadline, then arrival."""
    r = rec.request
    deadline = r.deadline.timestamp() if r.deadline else float("inf")
    return (Priority(r.priority).rank, deadline, r.created_at.timestamp())


__all__ = [
    "ROUND_BUCKETS_S",
    "Carrier",
    "Dispatcher",
    "ModeRule",
    "PreparingPlanner",
    "RequestPlanner",
    "RoundTimings",
    "ServeCheck",
    "queue_key",
]
