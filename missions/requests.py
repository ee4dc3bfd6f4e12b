"""Requests: validation, storage, approval and cancellation.

A request is stored (with its items, its first event and an audit line, in one transaction)
before the caller hears "accepted", so nothing accepted is lost by a crash. With
``requests.auto_approve`` it is approved on arrival and its deadline starts; otherwise an
operator approves or rejects it. Approved requests wake the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from fleet.clock import Clock
from fleet.errors import Conflict, NotFound, ValidationError
from fleet.settings import RequestSettings
from fleet.store.repository import RequestRecord, Store
from fleet.store.tables import AuditLog, Request, RequestItem
from fleet.world import World
from missions.journal import EventKind, Journal
from missions.states import REQUEST_CANCELLABLE, Priority, RequestKind, RequestState


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One SKU line asked for."""

    sku_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery request as submitted."""

    community_id: str
    items: tuple[ItemLine, ...]
    priority: Priority = Priority.STANDARD
    warehouse_id: str | None = None
    """Warehouse to serve it from; None lets the dispatcher choose."""
    note: str = ""
    requested_by: str = ""
    idempotency_key: str | None = None


@dataclass(slots=True)
class RequestService:
    """Accepts, approves, rejects and cancels requests."""

    store: Store
    world: World
    clock: Clock
    journal: Journal
    settings: RequestSettings
    on_approved: Callable[[], None] = field(default=lambda: None)
    """Called after a request is approved (wakes the dispatcher)."""
    _sku_ids: set[str] = field(default_factory=set)

    async def refresh_catalogue(self) -> None:
        self._sku_ids = {s.id for s in await self.store.skus()}

    async def submit_delivery(self, new: NewDelivery, actor: str) -> tuple[RequestRecord, bool]:
        """Validate and store a delivery request; returns it and whether it is new."""
        self._validate_delivery(new)
        now = self.clock.now()
        req = Request(
            kind=RequestKind.DELIVERY,
            community_id=new.community_id,
            warehouse_id=new.warehouse_id,
            state=RequestState.SUBMITTED,
            priority=new.priority,
            requested_by=new.requested_by or actor,
            note=new.note,
            idempotency_key=new.idempotency_key,
            created_at=now,
        )
        events = [
            self.journal.event(
                EventKind.STATE, "request submitted", to_state=RequestState.SUBMITTED, actor=actor
            )
        ]
        if self.settings.auto_approve:
            req.state = RequestState.APPROVED
            req.approved_at = now
            req.deadline = now + timedelta(hours=self.settings.deadline_h)
            events.append(
                self.journal.event(
                    EventKind.STATE,
                    "approved by rule requests.auto_approve",
                    from_state=RequestState.SUBMITTED,
                    to_state=RequestState.APPROVED,
                    deadline=req.deadline.isoformat(),
                )
            )
        items = [
            RequestItem(request_id="", sku_id=i.sku_id, quantity=i.quantity) for i in new.items
        ]
        audit = AuditLog(
            at=now,
            actor=actor,
            action="request.submit",
            object_type="request",
            object_id="",
            detail={"community_id": new.community_id},
        )
        record, created = await self.store.create_request(req, items, events, audit)
        if created:
            self.journal.published(*events)
            if record.request.state == RequestState.APPROVED:
                self.on_approved()
        return record, created

    def _validate_delivery(self, new: NewDelivery) -> None:
        try:
            self.world.community(new.community_id)
        except NotFound:
            raise ValidationError(
                f"unknown community {new.community_id!r} in world {self.world.name}",
                field="community_id",
            ) from None
        if new.warehouse_id is not None and new.warehouse_id not in {
            w.id for w in self.world.warehouses
        }:
            raise ValidationError(f"unknown warehouse {new.warehouse_id!r}", field="warehouse_id")
        if not new.items:
            raise ValidationError("a delivery needs at least one item", field="items")
        if len(new.items) > self.settings.max_lines:
            raise ValidationError(
                f"at most {self.settings.max_lines} lines per request", field="items"
            )
        seen: set[str] = set()
        for n, line in enumerate(new.items):
            where = f"items[{n}]"
            if line.sku_id not in self._sku_ids:
                raise ValidationError(f"unknown SKU {line.sku_id!r}", field=f"{where}.sku_id")
            if line.sku_id in seen:
                raise ValidationError(
                    f"SKU {line.sku_id!r} appears twice; merge the lines", field=f"{where}.sku_id"
                )
            seen.add(line.sku_id)
            if not 0 < line.quantity <= self.settings.max_units_per_line:
                raise ValidationError(
                    f"quantity must be between 1 and {self.settings.max_units_per_line}",
                    field=f"{where}.quantity",
                )

    async def approve(self, request_id: str, actor: str) -> Request:
        now = self.clock.now()
        ev = self.journal.event(
            EventKind.STATE,
            f"approved by {actor}",
            from_state=RequestState.SUBMITTED,
            to_state=RequestState.APPROVED,
        )
        req = await self.store.update_request(
            request_id,
            expected_states=[RequestState.SUBMITTED],
            events=[ev],
            state=RequestState.APPROVED,
            approved_at=now,
            deadline=now + timedelta(hours=self.settings.deadline_h),
        )
        self.journal.published(ev)
        self.on_approved()
        return req

    async def reject(self, request_id: str, actor: str, reason: str) -> Request:
        if not reason.strip():
            raise ValidationError("say why the request is rejected", field="reason")
        ev = self.journal.event(
            EventKind.STATE,
            f"rejected by {actor}: {reason}",
            from_state=RequestState.SUBMITTED,
            to_state=RequestState.REJECTED,
        )
        req = await self.store.update_request(
            request_id,
            expected_states=[RequestState.SUBMITTED],
            events=[ev],
            state=RequestState.REJECTED,
            reason=reason,
            closed_at=self.clock.now(),
        )
        self.journal.published(ev)
        return req

    async def get(self, request_id: str) -> RequestRecord:
        return await self.store.get_request(request_id)

    async def list(
        self,
        *,
        states: Sequence[str] | None = None,
        community_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RequestRecord]:
        return await self.store.list_requests(
            states=states, community_id=community_id, limit=limit, offset=offset
        )

    def check_cancellable(self, record: RequestRecord) -> None:
        if record.request.state not in REQUEST_CANCELLABLE:
            raise Conflict(
                f"request {record.request.id} is {record.request.state} and can no longer be "
                "cancelled by itself; cancel its missions instead",
                request_id=record.request.id,
                state=record.request.state,
            )
