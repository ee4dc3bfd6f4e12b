"""The stock ledger's vocabulary: movement kinds and what each does to a warehouse's balances.

One table, used by the store (which applies movements to the ``stock`` balances in the same
transaction that appends the ledger line) and by :mod:`missions.inventory` (which checks the
per-request and per-mission rules and replays the ledger for audits). Balances per warehouse and
SKU are ``on_hand`` (units physically in the warehouse) and ``reserved`` (units of ``on_hand``
promised to requests and not yet loaded).

Quantities are units of the SKU and positive for every kind except ``adjust``, whose quantity is
signed (a count found 12 short is ``adjust -12``); zero is never a movement.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class MovementKind(StrEnum):
    """What a ledger line does."""

    RECEIVE = "receive"
    """Goods arrive at the warehouse."""
    RESERVE = "reserve"
    """Available stock is promised to a request (allocation)."""
    RELEASE = "release"
    """A promise is withdrawn (cancellation, re-allocation)."""
    LOAD = "load"
    """Reserved stock leaves on a vehicle for a mission."""
    DELIVER = "deliver"
    """Loaded stock is handed over at the community (no warehouse balance changes)."""
    RETURN = "return"
    """Loaded stock comes back to the warehouse undelivered."""
    ADJUST = "adjust"
    """Signed correction of on-hand stock after a count, damage or expiry."""


MOVEMENT_EFFECTS: Mapping[MovementKind, tuple[int, int]] = MappingProxyType(
    {
        MovementKind.RECEIVE: (+1, 0),
        MovementKind.RESERVE: (0, +1),
        MovementKind.RELEASE: (0, -1),
        MovementKind.LOAD: (-1, -1),
        MovementKind.DELIVER: (0, 0),
        MovementKind.RETURN: (+1, 0),
        MovementKind.ADJUST: (+1, 0),
    }
)
"""Movement kind → (sign on ``on_hand``, sign on ``reserved``) per unit of its quantity.

``adjust`` multiplies its signed quantity, so ``adjust -12`` takes 12 off ``on_hand``. Every
movement must leave ``0 <= reserved <= on_hand``."""

SIGNED_KINDS: frozenset[MovementKind] = frozenset({MovementKind.ADJUST})
"""Kinds whose quantity may be negative (never zero)."""

NEEDS_REQUEST: frozenset[MovementKind] = frozenset(
    {
        MovementKind.RESERVE,
        MovementKind.RELEASE,
        MovementKind.LOAD,
        MovementKind.DELIVER,
        MovementKind.RETURN,
    }
)
"""Kinds that belong to a request (every promised or moved unit is traceable to one)."""

NEEDS_MISSION: frozenset[MovementKind] = frozenset(
    {MovementKind.LOAD, MovementKind.DELIVER, MovementKind.RETURN}
)
"""Kinds that belong to the mission carrying the goods."""


def effect(kind: str | MovementKind, quantity: int) -> tuple[int, int]:
    """(change of ``on_hand``, change of ``reserved``) that ``quantity`` units of ``kind`` make.

    Raises ``ValueError`` for an unknown kind.
    """
    signs = MOVEMENT_EFFECTS[MovementKind(kind)]
    return signs[0] * quantity, signs[1] * quantity


def quantity_problem(kind: str | MovementKind, quantity: int) -> str | None:
    """Why ``quantity`` is not a valid quantity for ``kind`` (None when it is)."""
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return "quantity must be an integer"
    if quantity == 0:
        return "a movement must move something (quantity 0)"
    if quantity < 0 and MovementKind(kind) not in SIGNED_KINDS:
        return f"{MovementKind(kind).value} quantity must be positive"
    return None
