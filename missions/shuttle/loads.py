"""What vans have to carry: pending allocated delivery work cut into van stops.

The dispatcher's allocation step reserves stock for approved delivery requests and records it
in ``RequestItem.allocated``; vans carry only what is allocated and not yet on a vehicle
(``missions.open_work``). Each request line becomes whole boxes (``Sku.units_per_box``; a
part box counts as a box, since each request's goods are boxed apart to stay traceable) and
kilograms (full boxes at ``box_kg``, the rest at ``unit_kg``).

:func:`cut_stops` groups one community's lines into van stops the way the dispatch plan does:
by priority class, then deadline; a stop holds lines whose deadlines lie within
``window_s`` of its earliest, up to the van's box and mass capacity; a line larger than that is
cut into whole-box parts. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleet.store.rows import Record
from fleet.store.tables import Sku
from missions.inventory import SkuSpec
from missions.states import Priority

CONSOLIDATION_WINDOW_S = 3600.0
"""Lines of one community and class whose deadlines lie within this of the earliest share a
stop (the dispatch plan's rule)."""


def spec_of(sku: Sku) -> SkuSpec:
    return SkuSpec(
        id=sku.id,
        units_per_box=sku.units_per_box,
        box_kg=sku.box_kg,
        unit_kg=sku.unit_kg,
        box_volume_l=sku.box_volume_l,
        drone_eligible=sku.drone_eligible,
    )


@dataclass(frozen=True, slots=True)
class Line:
    """Units of one SKU of one request, ready to load."""

    request_id: str
    community_id: str
    sku_id: str
    units: int
    boxes: int
    kg: float
    priority: Priority
    deadline: float | None
    """World seconds."""
    queued_at: float
    """Approval (or creation) time, world seconds: ties go to the earlier."""


@dataclass(frozen=True, slots=True)
class StopLoad:
    """Lines of one community that travel together (one van stop)."""

    id: str
    community_id: str
    priority: Priority
    lines: tuple[Line, ...]

    @property
    def boxes(self) -> int:
        return sum(ln.boxes for ln in self.lines)

    @property
    def kg(self) -> float:
        return sum(ln.kg for ln in self.lines)

    @property
    def deadline(self) -> float | None:
        return min((ln.deadline for ln in self.lines if ln.deadline is not None), default=None)

    @property
    def request_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ln.request_id for ln in self.lines))


def lines_of(rec: Record, units: dict[str, int], skus: dict[str, Sku]) -> list[Line]:
    """The request's ``units`` per SKU as loadable lines (in the request's item order)."""
    r = rec.request
    queued = (r.approved_at or r.created_at).timestamp()
    deadline = r.deadline.timestamp() if r.deadline is not None else None
    out = []
    for item in rec.items:
        q = units.get(item.sku_id, 0)
        if q <= 0:
            continue
        spec = spec_of(skus[item.sku_id])
        out.append(
            Line(
                request_id=r.id,
                community_id=r.community_id,
                sku_id=item.sku_id,
                units=q,
                boxes=spec.boxes(q),
                kg=spec.kg(q),
                priority=Priority(r.priority),
                deadline=deadline,
                queued_at=queued,
            )
        )
    return out


def split_line(line: Line, boxes: int, spec: SkuSpec) -> tuple[Line, Line | None]:
    """The first ``boxes`` whole boxes of ``line`` and the rest (None if nothing is left)."""
    if boxes >= line.boxes:
        return line, None
    units = boxes * spec.units_per_box
    head = _with_units(line, units, spec)
    tail = _with_units(line, line.units - units, spec)
    return head, tail


def _with_units(line: Line, units: int, spec: SkuSpec) -> Line:
    return Line(
        line.request_id,
        line.community_id,
        line.sku_id,
        units,
        spec.boxes(units),
        spec.kg(units),
        line.priority,
        line.deadline,
        line.queued_at,
    )


@dataclass
class _Open:
    lines: list[Line] = field(default_factory=list)
    boxes: int = 0
    kg: float = 0.0
    first_deadline: float | None = None


def cut_stops(
    lines: Sequence[Line],
    skus: dict[str, Sku],
    *,
    max_boxes: int,
    max_kg: float,
    window_s: float = CONSOLIDATION_WINDOW_S,
) -> list[StopLoad]:
    """Group lines into stops, per community (see the module docstring). Stop ids are
    ``{community}.{n}``, numbered in the order stops are cut."""
    by_key: dict[tuple[str, Priority], list[Line]] = defaultdict(list)
    for ln in lines:
        by_key[(ln.community_id, ln.priority)].append(ln)
    out: list[StopLoad] = []
    count: dict[str, int] = defaultdict(int)
    for (community, priority), group in sorted(
        by_key.items(), key=lambda kv: (kv[0][0], kv[0][1].rank)
    ):
        group.sort(
            key=lambda ln: (
                ln.deadline if ln.deadline is not None else float("inf"),
                ln.queued_at,
                ln.request_id,
                ln.sku_id,
            )
        )
        cur = _Open()

        def close(c: _Open, community: str = community, priority: Priority = priority) -> None:
            if c.lines:
                count[community] += 1
                out.append(
                    StopLoad(f"{community}.{count[community]}", community, priority, tuple(c.lines))
                )

        queue = list(group)
        while queue:
            ln = queue.pop(0)
            spec = spec_of(skus[ln.sku_id])
            late = (
                cur.first_deadline is not None
                and ln.deadline is not None
                and ln.deadline > cur.first_deadline + window_s
            )
            if late:
                close(cur)
                cur = _Open()
            room_boxes = max_boxes - cur.boxes
            room_kg = max_kg - cur.kg
            if ln.boxes <= room_boxes and ln.kg <= room_kg + 1e-9:
                fit: Line | None = ln
                rest: Line | None = None
            else:
                by_kg = int(room_kg // spec.box_kg) if spec.box_kg > 0 else room_boxes
                n = min(room_boxes, by_kg, ln.boxes - 1)
                if n >= 1:
                    fit, rest = split_line(ln, n, spec)
                else:
                    fit, rest = None, ln
            if fit is not None:
                cur.lines.append(fit)
                cur.boxes += fit.boxes
                cur.kg += fit.kg
                if cur.first_deadline is None:
                    cur.first_deadline = fit.deadline
            if rest is not None:
                if not cur.lines:  # one box heavier than a whole van: cannot be carried
                    continue
                close(cur)
                cur = _Open()
                queue.insert(0, rest)
        close(cur)
    return out
