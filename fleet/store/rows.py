"""Plain rows of requests and their lines, for the reads a dispatch round makes in bulk.

A dispatch round looks at every open delivery request (5,000 in the dispatch benchmark). Loaded
as ORM objects (``Request``, ``RequestItem``) each costs the ORM's identity map, instance state
and pydantic bookkeeping, and that loading was the largest cost a round ran on the event loop
(``docs/benchmarks.md``, dispatch). These rows hold the same columns as plain slotted
dataclasses, read with Core ``SELECT`` statements (``Store.open_request_rows``,
``Store.item_rows``): a few times cheaper, and detached by construction, so a round can keep
them and change them in memory (the allocation step does) without a session noticing.

:data:`Record` is what the dispatch path accepts: a :class:`~fleet.store.repository.
RequestRecord` (ORM objects, what the API and tests build) or a :class:`RowRecord`; both have
the same attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from fleet.store.repository import RequestRecord


@dataclass(slots=True)
class RequestRow:
    """The columns of one ``request`` row (see ``fleet.store.tables.Request``)."""

    id: str
    kind: str
    community_id: str
    warehouse_id: str | None
    state: str
    priority: str
    created_at: datetime
    approved_at: datetime | None
    deadline: datetime | None
    details: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass(slots=True)
class ItemRow:
    """The columns of one ``request_item`` row (see ``fleet.store.tables.RequestItem``)."""

    id: int | None
    request_id: str
    sku_id: str
    quantity: int
    allocated: int = 0
    loaded: int = 0
    delivered: int = 0


@dataclass(frozen=True, slots=True)
class RowRecord:
    """A request with its lines (in line id order), as plain rows."""

    request: RequestRow
    items: list[ItemRow]


Record: TypeAlias = "RequestRecord | RowRecord"
"""A request with its lines, as ORM objects or as plain rows (same attribute names)."""

__all__ = ["ItemRow", "Record", "RequestRow", "RowRecord"]
