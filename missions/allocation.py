"""Fair allocation of a scarce SKU between communities, and between requests inside each one.

Pure and deterministic: the same demands, stock and weights give the same allocation.

**Rule** (for one SKU, ``S`` whole units in stock, community ``c`` asking ``d_c`` in total,
with weight ``w_c``; ``n`` communities ask):

1. *Covered*: if ``S >= sum(d_c)`` every request gets what it asked.
2. *Weighted max-min* (``n <= S < sum(d_c)``): every asking community first gets one unit
   (nobody is starved); the remaining units are handed out one at a time to the community with
   the lowest share per weight after receiving it, ``(x_c + 1) / w_c``, among those still short
   (integer water-filling; ties go to the community with the more urgent request, then the
   earlier deadline, then the larger weight, then the id). The result is
   ``x_c = min(d_c, max(1, ~level * w_c))`` rounded to whole units: no community could get one
   more unit without taking it from one whose share per weight would then be lower.
3. *Too few to go round* (``S < n``): one unit each to ``S`` communities ranked by their most
   urgent request's class, then its earliest deadline, then weight (larger first), then id; the
   others get nothing this round and are reported as starved, with that reason.

**Weights**: ``w_c = population + VULNERABLE_EXTRA * vulnerable_households`` (at least 1),
see :func:`community_weight`.

**Inside a community** its units go to its requests in priority order (urgent medical, then
vulnerable residents, then standard), then earliest deadline, then earliest approval, then id;
each request is filled before the next gets anything.

**Fairness index**: Jain's index of the satisfied fraction ``f_c = x_c / d_c`` of the asking
communities, weighted by ``w_c``: ``J = (sum w f)^2 / (sum w * sum w f^2)``; 1 when every
community gets the same fraction of what it asked. The unweighted index is reported too.

Quantities are integers in whatever unit the caller allocates (the dispatcher uses whole
boxes; the store counts units).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from fleet.errors import ValidationError
from missions.priorities import class_label
from missions.routing.decisions import Decision, DecisionKind
from missions.states import Priority

VULNERABLE_EXTRA = 2
"""Extra weight of a vulnerable household on top of its members (already in the population):
a household of one elderly person living alone weighs as much as three residents."""


def community_weight(
    population: int, vulnerable_households: int, *, vulnerable_extra: int = VULNERABLE_EXTRA
) -> int:
    """A community's allocation weight: ``population + vulnerable_extra * households``, >= 1."""
    if population < 0 or vulnerable_households < 0:
        raise ValidationError(
            "population and vulnerable households must be non-negative", field="population"
        )
    return max(1, population + vulnerable_extra * vulnerable_households)


class AllocationRule(StrEnum):
    """Which case of the rule applied to a SKU."""

    COVERED = "covered"
    """Stock covers every request."""
    MAX_MIN = "max_min"
    """Weighted max-min fairness above a one-unit floor per asking community."""
    TOO_FEW = "too_few"
    """Fewer units than asking communities: one unit each in priority order."""


@dataclass(frozen=True, slots=True)
class Demand:
    """One request's line for the SKU being allocated."""

    request_id: str
    community_id: str
    quantity: int
    priority: Priority = Priority.STANDARD
    deadline: float = math.inf
    approved_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RequestShare:
    """What one request receives, and why."""

    request_id: str
    community_id: str
    priority: Priority
    asked: int
    allocated: int
    reason: str

    @property
    def shortfall(self) -> int:
        return self.asked - self.allocated


@dataclass(frozen=True, slots=True)
class CommunityShare:
    """What one community receives, and why."""

    community_id: str
    weight: float
    asked: int
    allocated: int
    reason: str
    requests: tuple[RequestShare, ...]

    @property
    def shortfall(self) -> int:
        return self.asked - self.allocated

    @property
    def satisfied(self) -> float:
        """Fraction of what it asked that it receives."""
        return self.allocated / self.asked if self.asked else 1.0

    @property
    def per_weight(self) -> float:
        """Units received per unit of weight (the quantity max-min equalises)."""
        return self.allocated / self.weight


@dataclass(frozen=True, slots=True)
class Allocation:
    """The allocation of one SKU."""

    sku_id: str
    stock: int
    rule: AllocationRule
    asked: int
    allocated: int
    level: float
    """Water level: units per unit of weight a community short of its demand receives
    (0 unless the max-min rule applied)."""
    communities: tuple[CommunityShare, ...]
    requests: tuple[RequestShare, ...]
    jain_index: float
    """Weighted Jain's index of the satisfied fraction (see module docstring)."""
    jain_unweighted: float
    starved: tuple[str, ...]
    """Communities that asked and receive nothing (only under ``TOO_FEW``)."""

    @property
    def left(self) -> int:
        """Stock not allocated."""
        return self.stock - self.allocated

    @property
    def shortfall(self) -> int:
        return self.asked - self.allocated

    def request(self, request_id: str) -> RequestShare:
        for r in self.requests:
            if r.request_id == request_id:
                return r
        raise KeyError(request_id)

    def community(self, community_id: str) -> CommunityShare:
        for c in self.communities:
            if c.community_id == community_id:
                return c
        raise KeyError(community_id)

    def decisions(self) -> list[Decision]:
        """One allocation decision per request, carrying the community's reason in ``data``."""
        by_c = {c.community_id: c for c in self.communities}
        out = []
        for r in self.requests:
            c = by_c[r.community_id]
            out.append(
                Decision(
                    kind=DecisionKind.ALLOCATION,
                    subject_id=r.request_id,
                    reason=r.reason,
                    quantity=r.allocated,
                    request_ids=(r.request_id,),
                    data={
                        "sku_id": self.sku_id,
                        "asked": r.asked,
                        "allocated": r.allocated,
                        "shortfall": r.shortfall,
                        "priority": r.priority.value,
                        "community_id": r.community_id,
                        "community_asked": c.asked,
                        "community_allocated": c.allocated,
                        "community_weight": c.weight,
                        "community_reason": c.reason,
                        "rule": self.rule.value,
                        "stock": self.stock,
                        "jain_index": self.jain_index,
                    },
                )
            )
        return out


def jain_index(values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Jain's fairness index ``(sum w x)^2 / (sum w * sum w x^2)``; 1.0 for no or all-zero
    values (nobody is treated differently)."""
    if weights is None:
        weights = [1.0] * len(values)
    if len(weights) != len(values):
        raise ValueError("one weight per value")
    sw = math.fsum(weights)
    swx = math.fsum(w * x for w, x in zip(weights, values, strict=True))
    swx2 = math.fsum(w * x * x for w, x in zip(weights, values, strict=True))
    if sw <= 0 or swx2 <= 0:
        return 1.0
    return (swx * swx) / (sw * swx2)


def allocate(
    sku_id: str,
    stock: int,
    demands: Iterable[Demand],
    weights: Mapping[str, int | float],
) -> Allocation:
    """Allocate ``stock`` whole units of ``sku_id`` among ``demands`` by the module's rule.

    ``weights`` maps every community that asks to its weight (see :func:`community_weight`).
    Raises :class:`ValidationError` on a negative stock, a non-positive quantity, a duplicate
    request or a community without a positive weight.
    """
    if not isinstance(stock, int) or stock < 0:
        raise ValidationError("stock must be a non-negative integer", field="stock")
    lines = list(demands)
    seen: set[str] = set()
    for d in lines:
        if d.request_id in seen:
            raise ValidationError(
                f"request {d.request_id} appears twice for {sku_id}", field="request_id"
            )
        seen.add(d.request_id)
        if not isinstance(d.quantity, int) or d.quantity <= 0:
            raise ValidationError(
                f"request {d.request_id}: quantity must be a positive integer", field="quantity"
            )
        w = weights.get(d.community_id)
        if w is None or not w > 0 or not math.isfinite(w):
            raise ValidationError(
                f"community {d.community_id} has no positive weight", field="weights"
            )

    by_c: dict[str, list[Demand]] = defaultdict(list)
    for d in lines:
        by_c[d.community_id].append(d)
    for reqs in by_c.values():
        reqs.sort(key=_request_order)
    cids = sorted(by_c)
    asked = {c: sum(d.quantity for d in by_c[c]) for c in cids}
    total = sum(asked.values())
    n = len(cids)
    wf = {c: Fraction(weights[c]) for c in cids}

    level = Fraction(0)
    if stock >= total:
        rule = AllocationRule.COVERED
        x = dict(asked)
    elif stock >= n:
        rule = AllocationRule.MAX_MIN
        x, level = _water_fill(cids, asked, wf, stock, by_c)
    else:
        rule = AllocationRule.TOO_FEW
        ranked = sorted(cids, key=lambda c: _community_rank(c, by_c, wf))
        x = dict.fromkeys(cids, 0)
        for c in ranked[:stock]:
            x[c] = 1

    # --- split inside communities and explain --------------------------------------------
    comm_shares: list[CommunityShare] = []
    req_shares: list[RequestShare] = []
    ranked_all = sorted(cids, key=lambda c: _community_rank(c, by_c, wf))
    rank_of = {c: i + 1 for i, c in enumerate(ranked_all)}
    for c in cids:
        creason = _community_reason(
            rule, c, asked[c], x[c], wf[c], level, stock, total, n, rank_of[c]
        )
        left = x[c]
        ahead = 0
        shares = []
        for i, d in enumerate(by_c[c]):
            got = min(d.quantity, left)
            left -= got
            shares.append(
                RequestShare(
                    request_id=d.request_id,
                    community_id=c,
                    priority=d.priority,
                    asked=d.quantity,
                    allocated=got,
                    reason=_request_reason(d, got, c, asked[c], x[c], ahead, i),
                )
            )
            ahead += got
        comm_shares.append(CommunityShare(c, float(wf[c]), asked[c], x[c], creason, tuple(shares)))
        req_shares.extend(shares)

    fractions = [cs.satisfied for cs in comm_shares]
    ws = [cs.weight for cs in comm_shares]
    return Allocation(
        sku_id=sku_id,
        stock=stock,
        rule=rule,
        asked=total,
        allocated=sum(x.values()),
        level=float(level),
        communities=tuple(comm_shares),
        requests=tuple(req_shares),
        jain_index=jain_index(fractions, ws),
        jain_unweighted=jain_index(fractions),
        starved=tuple(c for c in cids if x[c] == 0),
    )


def allocate_all(
    stock: Mapping[str, int],
    demands: Mapping[str, Iterable[Demand]],
    weights: Mapping[str, int | float],
) -> dict[str, Allocation]:
    """Allocate every SKU in ``demands`` (SKU id -> lines) from ``stock`` (SKU id -> units);
    a SKU missing from ``stock`` has none."""
    return {
        sku: allocate(sku, stock.get(sku, 0), lines, weights)
        for sku, lines in sorted(demands.items())
    }


# --- the water-filling ---------------------------------------------------------------------


def _request_order(d: Demand) -> tuple[int, float, float, str]:
    return (d.priority.rank, d.deadline, d.approved_at, d.request_id)


def _community_rank(
    c: str, by_c: Mapping[str, list[Demand]], wf: Mapping[str, Fraction]
) -> tuple[int, float, Fraction, str]:
    first = by_c[c][0]  # sorted by class then deadline: the most urgent, earliest request
    return (first.priority.rank, first.deadline, -wf[c], c)


def _water_fill(
    cids: list[str],
    asked: Mapping[str, int],
    wf: Mapping[str, Fraction],
    stock: int,
    by_c: Mapping[str, list[Demand]],
) -> tuple[dict[str, int], Fraction]:
    """Integer weighted max-min above a floor of one unit; returns (units, level)."""
    extra = stock - len(cids)  # after the one-unit floor

    def fill(theta: Fraction) -> dict[str, int]:
        # every unit k >= 2 of c whose key k / w_c <= theta
        return {c: max(1, min(asked[c], math.floor(theta * wf[c]))) for c in cids}

    def used(theta: Fraction) -> int:
        return sum(fill(theta).values()) - len(cids)

    hi_f = max(float(Fraction(asked[c]) / wf[c]) for c in cids) * 2 + 1.0
    lo_f = 0.0
    # Bisection on floats, each probe evaluated exactly: converges to the threshold within an
    # ulp, so the hand-out below deals only with ties at the next key.
    for _ in range(200):
        mid = (lo_f + hi_f) / 2
        if mid in (lo_f, hi_f):
            break
        if used(Fraction(mid)) <= extra:
            lo_f = mid
        else:
            hi_f = mid
    theta = Fraction(lo_f)
    x = fill(theta)
    left = extra - (sum(x.values()) - len(cids))
    heap = [
        (Fraction(x[c] + 1) / wf[c], _community_rank(c, by_c, wf), c)
        for c in cids
        if x[c] < asked[c]
    ]
    heapq.heapify(heap)
    level = theta
    while left > 0 and heap:
        key, rank, c = heapq.heappop(heap)
        x[c] += 1
        left -= 1
        level = max(level, key)
        if x[c] < asked[c]:
            heapq.heappush(heap, (Fraction(x[c] + 1) / wf[c], rank, c))
    assert left == 0, "stock below demand must be handed out entirely"
    return x, level


# --- reasons -------------------------------------------------------------------------------


def _community_reason(
    rule: AllocationRule,
    c: str,
    asked: int,
    got: int,
    w: Fraction,
    level: Fraction,
    stock: int,
    total: int,
    n: int,
    rank: int,
) -> str:
    wtxt = f"{float(w):g}"
    if rule is AllocationRule.COVERED:
        return f"asked {asked}, gets all: stock {stock} covers the {total} asked by everyone"
    if rule is AllocationRule.TOO_FEW:
        head = f"only {stock} for {n} asking communities, one each in order of most urgent "
        head += "request, earliest deadline, then weight"
        if got:
            return f"asked {asked}, gets {got}: {head}; ranks {rank} of {n}"
        return f"asked {asked}, gets 0 (starved this round): {head}; ranks {rank} of {n}"
    fair = float(level * w)
    if got == asked:
        return (
            f"asked {asked}, gets all: below its fair share of {fair:.1f} "
            f"(weight {wtxt} x level {float(level):.4g}) of the {stock} in stock"
        )
    if got == 1 and fair < 1:
        return (
            f"asked {asked}, gets 1: the one-unit minimum every asking community receives "
            f"(its fair share by weight {wtxt} would be {fair:.2f})"
        )
    return (
        f"asked {asked}, gets {got} (short {asked - got}): weighted max-min share of the "
        f"{stock} in stock ({total} asked): water level {float(level):.4g} per unit of weight "
        f"x weight {wtxt} = {fair:.1f}, in whole units, the last ones going to the lowest "
        "share per weight (ties: most urgent request first); none could get more without "
        "taking from a community with a lower share per weight"
    )


def _request_reason(
    d: Demand, got: int, c: str, c_asked: int, c_got: int, ahead: int, index: int
) -> str:
    if got == d.quantity:
        return f"asked {d.quantity}, gets {got}; community {c} gets {c_got} of {c_asked}"
    queue = (
        "it is first in its community's queue"
        if index == 0
        else f"{ahead} went to the {index} request(s) ahead of this {class_label(d.priority)} one"
    )
    return (
        f"asked {d.quantity}, gets {got} (short {d.quantity - got}): community {c} gets "
        f"{c_got} of {c_asked} asked; inside a community units go by class (urgent medical, "
        f"vulnerable, standard), then deadline, then approval, and {queue}"
    )
