"""Shuttle plans as the domain sees them: shift hours in local time, shifts, validation rules.

A plan says which vans serve which communities from which warehouse, and when: a daily shift
from ``shift_start`` to ``shift_end`` (``HH:MM``, local time in the plan's IANA time zone; an
end at or before the start means the shift ends the next day), optionally only on the days
from ``valid_from`` to ``valid_until``. A :class:`Shift` is one concrete occurrence of those
hours (its local day, and start and end as aware UTC datetimes). Daylight-saving gaps are
resolved as :mod:`zoneinfo` does (the wall time is taken with ``fold=0``).

Pure: no I/O; the store rows are converted with :meth:`PlanSpec.from_row`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleet.errors import Conflict, ValidationError
from fleet.store.tables import ShuttlePlan
from fleet.world import World

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
"""Shift hours are written ``HH:MM`` on a 24-hour clock."""
MAX_COMMUNITIES = 200
"""Most communities one plan may serve."""
MAX_VEHICLES = 100
"""Most vans one plan may use."""


def parse_hhmm(value: str, field: str) -> time:
    """``HH:MM`` as a :class:`datetime.time`; :class:`ValidationError` naming ``field``."""
    m = HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValidationError(
            f"{value!r} is not a time of day written HH:MM (00:00 to 23:59)", field=field
        )
    return time(int(m.group(1)), int(m.group(2)))


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ValidationError` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)", field=field
        ) from None


@dataclass(frozen=True, slots=True)
class Shift:
    """One occurrence of a plan's hours."""

    plan_id: str
    day: date
    """Local day the shift starts."""
    start: datetime
    """Aware UTC."""
    end: datetime
    """Aware UTC."""

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """A validated plan."""

    id: str
    name: str
    warehouse_id: str
    community_ids: tuple[str, ...]
    vehicle_ids: tuple[str, ...]
    start: time
    end: time
    tz: ZoneInfo
    valid_from: date | None = None
    valid_until: date | None = None
    enabled: bool = True

    @classmethod
    def from_row(cls, row: ShuttlePlan) -> PlanSpec:
        return cls(
            id=row.id,
            name=row.name,
            warehouse_id=row.warehouse_id,
            community_ids=tuple(row.community_ids),
            vehicle_ids=tuple(row.vehicle_ids),
            start=parse_hhmm(row.shift_start, "shift_start"),
            end=parse_hhmm(row.shift_end, "shift_end"),
            tz=zone(row.timezone),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            enabled=row.enabled,
        )

    @property
    def overnight(self) -> bool:
        """The shift ends on the day after it starts."""
        return self.end <= self.start

    @property
    def hours(self) -> float:
        """Nominal shift length (daylight-saving changes may add or take an hour)."""
        a = self.start.hour * 60 + self.start.minute
        b = self.end.hour * 60 + self.end.minute
        return ((b - a) % (24 * 60) or 24 * 60) / 60

    def runs_on(self, day: date) -> bool:
        """Whether a shift starts on local ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_until is not None and day > self.valid_until)

    def shift_on(self, day: date) -> Shift | None:
        """The shift starting on local ``day`` (None if the plan does not run that day)."""
        if not self.runs_on(day):
            return None
        start = datetime.combine(day, self.start, self.tz)
        end_day = day + timedelta(days=1) if self.overnight else day
        end = datetime.combine(end_day, self.end, self.tz)
        return Shift(self.id, day, start.astimezone(UTC), end.astimezone(UTC))

    def shift_at(self, at: datetime) -> Shift | None:
        """The shift under way at ``at`` (an aware datetime), if any."""
        if not self.enabled:
            return None
        local = at.astimezone(self.tz).date()
        for day in (local, local - timedelta(days=1)):
            s = self.shift_on(day)
            if s is not None and s.contains(at):
                return s
        return None

    def next_shift(self, at: datetime, horizon_days: int = 366) -> Shift | None:
        """The shift under way at ``at`` or the next one to start (None if none is left)."""
        if not self.enabled:
            return None
        now = self.shift_at(at)
        if now is not None:
            return now
        local = at.astimezone(self.tz).date()
        for k in range(horizon_days + 1):
            s = self.shift_on(local + timedelta(days=k))
            if s is not None and s.start >= at:
                return s
            if self.valid_until is not None and local + timedelta(days=k) > self.valid_until:
                return None
        return None

    def shifts_between(self, first: date, last: date) -> list[Shift]:
        """Shifts starting on local days ``first`` to ``last``."""
        out = []
        day = first
        while day <= last:
            s = self.shift_on(day)
            if s is not None:
                out.append(s)
            day += timedelta(days=1)
        return out


def overlaps(a: PlanSpec, b: PlanSpec) -> Shift | None:
    """A shift of ``a`` that overlaps one of ``b`` (None if their hours never meet).

    Both patterns repeat daily, so a few days where both run (the first ones and the last one
    of the common validity, each with its neighbours) decide it.
    """
    lo = max((d for d in (a.valid_from, b.valid_from) if d is not None), default=None)
    hi = min((d for d in (a.valid_until, b.valid_until) if d is not None), default=None)
    if lo is None:
        lo = hi - timedelta(days=3) if hi is not None else date(2000, 1, 3)
    if hi is None:
        hi = lo + timedelta(days=3)
    lo, hi = lo - timedelta(days=1), hi + timedelta(days=1)
    if hi < lo:
        return None
    days = sorted({lo + timedelta(days=k) for k in range(min(4, (hi - lo).days + 1))} | {hi})
    for day in days:
        sa = a.shift_on(day)
        if sa is None:
            continue
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            sb = b.shift_on(d)
            if sb is not None and sa.start < sb.end and sb.start < sa.end:
                return sa
    return None


@dataclass(frozen=True, slots=True)
class PlanDraft:
    """A plan as an operator submits it (before validation)."""

    warehouse_id: str
    community_ids: Sequence[str]
    vehicle_ids: Sequence[str]
    shift_start: str
    shift_end: str
    timezone: str
    name: str = ""
    valid_from: date | None = None
    valid_until: date | None = None
    enabled: bool = True


def validate_draft(
    draft: PlanDraft,
    *,
    plan_id: str,
    world: World,
    known_vans: Iterable[str],
    others: Iterable[PlanSpec],
) -> PlanSpec:
    """Check a draft against the world, the known vans and the other plans.

    Raises :class:`ValidationError` naming the field (unknown warehouse, community or van, bad
    hours or days, empty or repeated lists) or :class:`Conflict` when a van would be in two
    plans whose hours overlap.
    """
    if draft.warehouse_id not in {w.id for w in world.warehouses}:
        raise ValidationError(
            f"unknown warehouse {draft.warehouse_id!r} in world {world.name}", field="warehouse_id"
        )
    communities = {c.id for c in world.communities}
    if not draft.community_ids:
        raise ValidationError("a shuttle plan serves at least one community", field="community_ids")
    if len(draft.community_ids) > MAX_COMMUNITIES:
        raise ValidationError(
            f"at most {MAX_COMMUNITIES} communities per plan", field="community_ids"
        )
    seen: set[str] = set()
    for n, cid in enumerate(draft.community_ids):
        if cid not in communities:
            raise ValidationError(
                f"unknown community {cid!r} in world {world.name}", field=f"community_ids[{n}]"
            )
        if cid in seen:
            raise ValidationError(f"community {cid!r} is listed twice", field=f"community_ids[{n}]")
        seen.add(cid)
    vans = set(known_vans)
    if len(draft.vehicle_ids) > MAX_VEHICLES:
        raise ValidationError(f"at most {MAX_VEHICLES} vans per plan", field="vehicle_ids")
    seen = set()
    for n, vid in enumerate(draft.vehicle_ids):
        if vid not in vans:
            raise ValidationError(
                f"unknown van {vid!r}: not a van the fleet has seen "
                f"(known: {', '.join(sorted(vans)) or 'none'})",
                field=f"vehicle_ids[{n}]",
            )
        if vid in seen:
            raise ValidationError(f"van {vid!r} is listed twice", field=f"vehicle_ids[{n}]")
        seen.add(vid)
    start = parse_hhmm(draft.shift_start, "shift_start")
    end = parse_hhmm(draft.shift_end, "shift_end")
    if start == end:
        raise ValidationError(
            f"the shift ends when it starts ({draft.shift_end}); give it a length",
            field="shift_end",
        )
    tz = zone(draft.timezone)
    if (
        draft.valid_from is not None
        and draft.valid_until is not None
        and draft.valid_until < draft.valid_from
    ):
        raise ValidationError("valid_until is before valid_from", field="valid_until")
    spec = PlanSpec(
        id=plan_id,
        name=draft.name,
        warehouse_id=draft.warehouse_id,
        community_ids=tuple(draft.community_ids),
        vehicle_ids=tuple(draft.vehicle_ids),
        start=start,
        end=end,
        tz=tz,
        valid_from=draft.valid_from,
        valid_until=draft.valid_until,
        enabled=draft.enabled,
    )
    if spec.enabled:
        for other in others:
            if other.id == plan_id or not other.enabled:
                continue
            shared = sorted(set(spec.vehicle_ids) & set(other.vehicle_ids))
            if not shared:
                continue
            clash = overlaps(spec, other)
            if clash is not None:
                raise Conflict(
                    f"van {shared[0]} is already on shuttle plan {other.id}"
                    f"{f' ({other.name})' if other.name else ''} from "
                    f"{other.start:%H:%M} to {other.end:%H:%M} {other.tz.key}; its hours overlap "
                    f"this plan's shift of {clash.day.isoformat()}",
                    field="vehicle_ids",
                    vehicle_id=shared[0],
                    shuttle_plan_id=other.id,
                )
    return spec
