"""One pool's share: how a warehouse's stock of one SKU is split between the requests that ask for
it (the rule of :mod:`missions.allocation`, with each community's carried units as a floor; see
:mod:`missions.allocation_step` for what is in play). Pure: value types and one function, no
store and no clock, so benchmarks and tests can swap or call it alone
(:attr:`missions.allocation_step.AllocationStep.share`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.store.rows import ItemRow, Record
from fleet.store.tables import RequestItem
from missions.allocation import (
    Allocation,
    AllocationRule,
    Demand,
    RequestShare,
    allocate,
    jain_index,
)
from missions.states import Priority

__all__ = ["CommunityOutcome", "PoolLine", "PoolOutcome", "share_pool"]


@dataclass(frozen=True, slots=True)
class PoolLine:
    """One request line in a pool: what it asks, carries and holds."""

    rec: Record
    item: RequestItem | ItemRow
    carried: int
    """Delivered plus on vehicles' work."""
    held: int
    """Allocated and not yet on a vehicle (reserved in stock)."""

    @property
    def request_id(self) -> str:
        return self.rec.request.id

    @property
    def community_id(self) -> str:
        return self.rec.request.community_id

    @property
    def want(self) -> int:
        """Units it could still receive."""
        return max(0, self.item.quantity - self.carried)

    def demand(self, quantity: int) -> Demand:
        r = self.rec.request
        return Demand(
            request_id=r.id,
            community_id=r.community_id,
            quantity=quantity,
            priority=Priority(r.priority),
            deadline=r.deadline.timestamp() if r.deadline else math.inf,
            approved_at=(r.approved_at or r.created_at).timestamp(),
        )


@dataclass(frozen=True, slots=True)
class CommunityOutcome:
    """One community's share of a pool this round."""

    community_id: str
    weight: float
    asked: int
    """Units its open requests ask in total."""
    carried: int
    """Units of it on vehicles or delivered (its floor)."""
    allocated: int
    """Its share in total (carried included)."""
    reason: str

    @property
    def shortfall(self) -> int:
        return self.asked - self.allocated

    @property
    def satisfied(self) -> float:
        return self.allocated / self.asked if self.asked else 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "community_id": self.community_id,
            "weight": self.weight,
            "asked": self.asked,
            "carried": self.carried,
            "allocated": self.allocated,
            "shortfall": self.shortfall,
            "satisfied": round(self.satisfied, 4),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """The allocation of one SKU at one warehouse this round."""

    warehouse_id: str
    sku_id: str
    rule: AllocationRule
    available: int
    """Units not promised to anyone before the round."""
    held: int
    """Units promised to requests and not on a vehicle before the round."""
    carried: int
    """Units of open requests on vehicles or delivered."""
    asked: int
    allocated: int
    level: float
    jain_index: float
    jain_unweighted: float
    starved: tuple[str, ...]
    communities: tuple[CommunityOutcome, ...]

    @property
    def in_play(self) -> int:
        """Units shared this round (available + held + carried)."""
        return self.available + self.held + self.carried

    @property
    def shortfall(self) -> int:
        return self.asked - self.allocated

    def signature(self) -> tuple[Any, ...]:
        return (
            self.in_play,
            tuple((c.community_id, c.asked, c.allocated) for c in self.communities),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "warehouse_id": self.warehouse_id,
            "sku_id": self.sku_id,
            "rule": self.rule.value,
            "available": self.available,
            "held": self.held,
            "carried": self.carried,
            "in_play": self.in_play,
            "asked": self.asked,
            "allocated": self.allocated,
            "shortfall": self.shortfall,
            "level": self.level,
            "jain_index": round(self.jain_index, 6),
            "jain_unweighted": round(self.jain_unweighted, 6),
            "starved": list(self.starved),
            "communities": [c.as_json() for c in self.communities],
        }

    def describe(self) -> str:
        short = [c for c in self.communities if c.shortfall > 0]
        text = (
            f"{self.sku_id} at {self.warehouse_id}: {self.in_play} in play ({self.available} "
            f"available, {self.held} promised and waiting, {self.carried} on vehicles or "
            f"delivered) for {self.asked} asked by {len(self.communities)} "
            f"communit{'y' if len(self.communities) == 1 else 'ies'}; rule {self.rule.value}; "
            f"Jain's index {self.jain_index:.3f}"
        )
        if short:
            text += "; short: " + ", ".join(f"{c.community_id} {c.shortfall}" for c in short)
        return text


def share_pool(
    warehouse_id: str,
    sku_id: str,
    available: int,
    wants: Sequence[PoolLine],
    weights: Mapping[str, int | float],
) -> tuple[PoolOutcome, dict[str, int], dict[str, str]]:
    """Share one pool (see the module): community shares by weighted max-min with each
    community's carried units as a floor, then each community's extra split between its
    requests by class, deadline and approval. Pure.

    Returns the outcome, each request's new *held* quantity (units reserved and not on a
    vehicle) and the reason of its split inside its community."""
    by_c: dict[str, list[PoolLine]] = defaultdict(list)
    for w in wants:
        by_c[w.community_id].append(w)
    floor = {c: sum(w.carried for w in ws) for c, ws in by_c.items()}
    asked = {c: sum(w.item.quantity for w in ws) for c, ws in by_c.items()}
    held = sum(w.held for w in wants)
    carried = sum(floor.values())
    in_play = available + held + carried

    active = set(by_c)
    fixed: set[str] = set()
    alloc: Allocation | None = None
    while active:
        alloc = allocate(
            sku_id,
            in_play - sum(floor[c] for c in fixed),
            [w.demand(w.item.quantity) for w in wants if w.community_id in active],
            {c: weights[c] for c in active},
        )
        below = {c for c in active if alloc.community(c).allocated < floor[c]}
        if not below:
            break
        fixed |= below
        active -= below
        alloc = None
    share = {c: floor[c] for c in fixed}
    reasons = {
        c: f"asked {asked[c]}, keeps the {floor[c]} its requests already carry or received, "
        "at or above its share this round: gets nothing more"
        for c in fixed
    }
    if alloc is not None:
        for c in active:
            cs = alloc.community(c)
            share[c] = cs.allocated
            reasons[c] = cs.reason

    targets: dict[str, int] = {}
    request_reason: dict[str, str] = {}
    for c, ws in by_c.items():
        extra = share[c] - floor[c]
        open_ws = [w for w in ws if w.want > 0]
        if not open_ws:
            continue
        inner = allocate(sku_id, extra, [w.demand(w.want) for w in open_ws], {c: weights[c]})
        for w in open_ws:
            rs: RequestShare = inner.request(w.request_id)
            targets[w.request_id] = rs.allocated
            request_reason[w.request_id] = rs.reason
    communities = tuple(
        CommunityOutcome(
            community_id=c,
            weight=float(weights[c]),
            asked=asked[c],
            carried=floor[c],
            allocated=share[c],
            reason=reasons[c],
        )
        for c in sorted(by_c)
    )
    fractions = [co.satisfied for co in communities]
    ws_ = [co.weight for co in communities]
    outcome = PoolOutcome(
        warehouse_id=warehouse_id,
        sku_id=sku_id,
        rule=alloc.rule if alloc is not None else AllocationRule.TOO_FEW,
        available=available,
        held=held,
        carried=carried,
        asked=sum(asked.values()),
        allocated=sum(share.values()),
        level=alloc.level if alloc is not None else 0.0,
        jain_index=jain_index(fractions, ws_),
        jain_unweighted=jain_index(fractions),
        starved=tuple(co.community_id for co in communities if co.allocated == 0),
        communities=communities,
    )
    return outcome, targets, request_reason
