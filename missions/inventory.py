"""Stock ledger rules, pure: what each movement does to a warehouse's balances, and when it is
refused.

The store persists :class:`Movement` lines (table ``stock_movement``) and the balances they
produce (table ``stock``); this module decides, without I/O, whether a movement is allowed and
what the balances are after it. Replaying a warehouse's movements from the start with
:meth:`Ledger.replay` gives the same balances as the ``stock`` table: that is the audit.

Quantities are integers of the SKU's unit (pieces, bottles, pairs); :class:`SkuSpec` converts
units to boxes and kilograms for loads. Balances per (warehouse, SKU):

* ``on_hand`` units physically in the warehouse;
* ``reserved`` units of ``on_hand`` promised to requests and not yet loaded
  (``available = on_hand - reserved`` can be promised);
* ``in_transit`` units loaded onto a vehicle and neither delivered nor returned, per
  (request, mission), so every unit that leaves is traceable to its request.

The movement kinds and what each does to ``on_hand`` and ``reserved`` are
:data:`fleet.ledger.MOVEMENT_EFFECTS`, the one table the store applies too; this module adds the
per-request and per-mission rules. Invariant, checked before every movement:
``0 <= reserved <= on_hand`` and every in-transit count ``>= 0``. Stock never goes negative: a
movement that would break the invariant raises :class:`~fleet.errors.InsufficientStock` and
changes nothing.

=========  ==========================================  =====================================
kind       effect                                      refused when
=========  ==========================================  =====================================
receive    on_hand += q                                q <= 0
reserve    reserved += q (for request r)               q > available
release    reserved -= q (for request r)               q > reserved for r
load       on_hand -= q, reserved -= q,                q > reserved for r
           in_transit[r, mission] += q
deliver    in_transit[r, mission] -= q                 q > in transit for (r, mission)
return     in_transit[r, mission] -= q, on_hand += q   q > in transit for (r, mission)
adjust     on_hand += q (q signed: count corrections,  on_hand + q < reserved (release first)
           damage, expiry)
=========  ==========================================  =====================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from fleet.errors import InsufficientStock, ValidationError
from fleet.ledger import NEEDS_MISSION, NEEDS_REQUEST, MovementKind, effect, quantity_problem

__all__ = [
    "Balance",
    "Ledger",
    "Movement",
    "MovementKind",
    "SkuSpec",
    "StockKey",
    "balances",
]


@dataclass(frozen=True, slots=True)
class SkuSpec:
    """What the dispatcher needs to know about a SKU: packing and mass."""

    id: str
    units_per_box: int
    box_kg: float
    """Mass of a full box."""
    unit_kg: float
    """Mass of one unit with its share of packaging."""
    box_volume_l: float = 0.0
    drone_eligible: bool = True
    """Whether it may fly (no bulk liquids, no hazardous goods)."""

    def __post_init__(self) -> None:
        if self.units_per_box <= 0:
            raise ValidationError("units per box must be positive", field="units_per_box")
        if self.box_kg <= 0 or self.unit_kg <= 0:
            raise ValidationError("masses must be positive", field="box_kg")

    def boxes(self, units: int) -> int:
        """Boxes that ``units`` take (a partial box counts as one)."""
        return math.ceil(units / self.units_per_box) if units > 0 else 0

    def kg(self, units: int) -> float:
        """Mass of ``units`` packed in full boxes plus loose units for the remainder."""
        full, rest = divmod(max(0, units), self.units_per_box)
        return full * self.box_kg + rest * self.unit_kg


@dataclass(frozen=True, slots=True)
class Movement:
    """One ledger line."""

    kind: MovementKind
    warehouse_id: str
    sku_id: str
    quantity: int
    """Units; positive for every kind but ``adjust``, which is signed."""
    request_id: str | None = None
    """Required for reserve, release, load, deliver and return."""
    mission_id: str | None = None
    """Required for load, deliver and return."""
    at: float = 0.0
    """World time of the movement."""
    actor: str = "system"
    note: str = ""


@dataclass(frozen=True, slots=True)
class Balance:
    """Balances of one SKU at one warehouse."""

    on_hand: int = 0
    reserved: int = 0
    in_transit: int = 0
    """Total loaded and not yet delivered or returned."""
    delivered: int = 0
    """Total ever delivered."""

    @property
    def available(self) -> int:
        """Units that can still be promised."""
        return self.on_hand - self.reserved


StockKey = tuple[str, str]
"""(warehouse id, SKU id)."""


@dataclass
class Ledger:
    """Balances folded from movements, with the rules that refuse a bad movement.

    Mutable on purpose (the fold of a long ledger should not copy it at every line); use
    :meth:`copy` for a what-if.
    """

    _balances: dict[StockKey, Balance] = field(default_factory=dict)
    _reserved_for: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _in_transit: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    count: int = 0
    """Movements applied."""

    @classmethod
    def replay(cls, movements: Iterable[Movement]) -> Ledger:
        """The ledger after ``movements`` in order; raises on the first refused one."""
        ledger = cls()
        for m in movements:
            ledger.apply(m)
        return ledger

    def copy(self) -> Ledger:
        return Ledger(
            dict(self._balances), dict(self._reserved_for), dict(self._in_transit), self.count
        )

    def balance(self, warehouse_id: str, sku_id: str) -> Balance:
        return self._balances.get((warehouse_id, sku_id), Balance())

    def balances(self) -> dict[StockKey, Balance]:
        """Every (warehouse, SKU) balance seen so far."""
        return dict(self._balances)

    def reserved_for(self, warehouse_id: str, sku_id: str, request_id: str) -> int:
        """Units reserved for one request and not yet loaded or released."""
        return self._reserved_for.get((warehouse_id, sku_id, request_id), 0)

    def in_transit(self, warehouse_id: str, sku_id: str, request_id: str, mission_id: str) -> int:
        """Units of one request loaded on one mission, not yet delivered or returned."""
        return self._in_transit.get((warehouse_id, sku_id, request_id, mission_id), 0)

    def check(self, m: Movement) -> Balance:
        """The balance ``m`` would produce; raises if the ledger refuses it."""
        _validate_shape(m)
        b = self.balance(m.warehouse_id, m.sku_id)
        q = m.quantity
        kind = m.kind
        d_hand, d_res = effect(kind, q)
        on_hand, reserved = b.on_hand + d_hand, b.reserved + d_res
        in_transit, delivered = b.in_transit, b.delivered
        if kind is MovementKind.LOAD:
            in_transit += q
        elif kind is MovementKind.DELIVER:
            in_transit -= q
            delivered += q
        elif kind is MovementKind.RETURN:
            in_transit -= q
        after = Balance(on_hand, reserved, in_transit, delivered)
        if kind is MovementKind.ADJUST and on_hand < b.reserved:
            raise _refused(
                m,
                f"adjusting on-hand stock by {q} leaves {on_hand}, below the "
                f"{b.reserved} reserved; release reservations first",
                b,
            )
        if kind is MovementKind.RESERVE and q > b.available:
            raise _refused(m, f"only {b.available} available to reserve, {q} asked", b)
        if kind in (MovementKind.RELEASE, MovementKind.LOAD):
            assert m.request_id is not None
            mine = self.reserved_for(m.warehouse_id, m.sku_id, m.request_id)
            if q > mine:
                raise _refused(m, f"request holds {mine} reserved, cannot {kind.value} {q}", b)
        if kind in (MovementKind.DELIVER, MovementKind.RETURN):
            assert m.request_id is not None and m.mission_id is not None
            carried = self.in_transit(m.warehouse_id, m.sku_id, m.request_id, m.mission_id)
            if q > carried:
                raise _refused(
                    m, f"mission carries {carried} for this request, cannot {kind.value} {q}", b
                )
        if not 0 <= after.reserved <= after.on_hand:  # the store's own condition
            raise _refused(m, f"would leave on hand {on_hand}, reserved {reserved}", b)
        return after

    def apply(self, m: Movement) -> Balance:
        """Apply ``m`` and return the new balance; raises and changes nothing if refused."""
        after = self.check(m)
        key = (m.warehouse_id, m.sku_id)
        self._balances[key] = after
        q = m.quantity
        if m.request_id is not None:
            rkey = (m.warehouse_id, m.sku_id, m.request_id)
            if m.kind is MovementKind.RESERVE:
                self._reserved_for[rkey] = self._reserved_for.get(rkey, 0) + q
            elif m.kind in (MovementKind.RELEASE, MovementKind.LOAD):
                left = self._reserved_for[rkey] - q
                if left:
                    self._reserved_for[rkey] = left
                else:
                    del self._reserved_for[rkey]
            if m.mission_id is not None and m.kind in NEEDS_MISSION:
                tkey = (m.warehouse_id, m.sku_id, m.request_id, m.mission_id)
                delta = q if m.kind is MovementKind.LOAD else -q
                left = self._in_transit.get(tkey, 0) + delta
                if left:
                    self._in_transit[tkey] = left
                else:
                    self._in_transit.pop(tkey, None)
        self.count += 1
        return after


def balances(movements: Iterable[Movement]) -> dict[StockKey, Balance]:
    """Balances per (warehouse, SKU) after ``movements``; raises on a refused movement."""
    return Ledger.replay(movements).balances()


def _validate_shape(m: Movement) -> None:
    problem = quantity_problem(m.kind, m.quantity)
    if problem is not None:
        raise ValidationError(problem, field="quantity")
    if m.kind in NEEDS_REQUEST and not m.request_id:
        raise ValidationError(f"{m.kind.value} needs the request it is for", field="request_id")
    if m.kind in NEEDS_MISSION and not m.mission_id:
        raise ValidationError(f"{m.kind.value} needs the mission carrying it", field="mission_id")


def _refused(m: Movement, why: str, b: Balance) -> InsufficientStock:
    return InsufficientStock(
        f"{m.kind.value} of {m.quantity} {m.sku_id} at {m.warehouse_id} refused: {why}",
        warehouse_id=m.warehouse_id,
        sku_id=m.sku_id,
        kind=m.kind.value,
        quantity=m.quantity,
        on_hand=b.on_hand,
        reserved=b.reserved,
        request_id=m.request_id,
        mission_id=m.mission_id,
    )
