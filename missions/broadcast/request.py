"""The broadcast request as community staff submit it, and its validation against the world.

A broadcast request says *where* (a community's polygon, or a polygon drawn on the map inside
the operating area), *what* (text spoken by espeak-ng in a language and voice, or an uploaded
clip), *how* (volume, how many times every resident must hear it, the speaker's repeat period),
*when* (now, at given times, or recurring) and *how urgent* (the request priority classes of
:class:`missions.states.Priority`).

Everything here is a frozen value object. :func:`validate_broadcast` checks a request against
the world and the clip store and returns the target area resolved to a polygon; every problem
is a :class:`fleet.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shapely.geometry import Polygon
from shapely.validation import explain_validity

from fleet.errors import NotFound, ValidationError
from fleet.world import World
from missions.broadcast.speech import check_text
from missions.broadcast.voices import DEFAULT_RATE_WPM, MAX_RATE_WPM, MIN_RATE_WPM, Language, Voice
from missions.states import Priority

MAX_REPEATS = 10
"""Most times a request may ask every resident to hear the message."""
MAX_PERIOD_S = 600.0
"""Longest start-to-start period of the speaker's loop."""
MAX_VERTICES = 200
"""Most vertices of a drawn polygon."""
MIN_AREA_M2 = 100.0
"""Smallest drawn area (a 10 m × 10 m square)."""
AREA_TOLERANCE_M = 1.0
"""How far a drawn polygon may stick out of the operating area (drawing precision)."""
MAX_TIMES = 50
"""Most start times of an ``AtTimes`` schedule."""
MAX_RECURRENCE_DAYS = 92
"""Longest span of a recurring schedule."""


# --- target area -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommunityArea:
    """The whole of a community's polygon."""

    community_id: str


@dataclass(frozen=True, slots=True)
class DrawnArea:
    """A polygon drawn on the map: (lat, lon) vertices, not closed."""

    vertices: tuple[tuple[float, float], ...]


TargetArea = CommunityArea | DrawnArea
"""Where a broadcast must be heard."""


@dataclass(frozen=True, eq=False)
class ResolvedArea:
    """A target area as a polygon, in WGS84 and in the world's local frame."""

    vertices: tuple[tuple[float, float], ...]
    """(lat, lon), not closed."""
    polygon: Polygon
    """Local frame, metres."""
    community_ids: tuple[str, ...]
    """Communities it overlaps (the one named, for a community area)."""
    name: str

    @property
    def area_m2(self) -> float:
        return float(self.polygon.area)


# --- message -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpokenMessage:
    """Text rendered to speech by espeak-ng."""

    text: str
    language: Language
    voice: Voice = Voice.FEMALE
    rate_wpm: int = DEFAULT_RATE_WPM


@dataclass(frozen=True, slots=True)
class ClipMessage:
    """An audio clip uploaded beforehand (to the clip store), named by its SHA-256."""

    sha256: str
    language: Language | None = None
    """What language it is in, for the record."""


Message = SpokenMessage | ClipMessage
"""What a broadcast says."""


# --- schedule ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Now:
    """As soon as a drone is available."""


@dataclass(frozen=True, slots=True)
class AtTimes:
    """At each of the given instants (timezone-aware)."""

    times: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class Recurring:
    """At ``times_of_day`` (local time in ``timezone``) on ``weekdays``, from ``start_date``
    through ``end_date`` inclusive."""

    times_of_day: tuple[time, ...]
    start_date: date
    end_date: date
    weekdays: frozenset[int] = frozenset(range(7))
    """0 = Monday ... 6 = Sunday."""
    timezone: str = "Asia/Shanghai"

    def occurrences(self, after: datetime, until: datetime) -> list[datetime]:
        """Start instants in ``[after, until)``, in UTC, in order."""
        tz = ZoneInfo(self.timezone)
        out: list[datetime] = []
        day = max(self.start_date, after.astimezone(tz).date())
        last = min(self.end_date, until.astimezone(tz).date())
        while day <= last:
            if day.weekday() in self.weekdays:
                for t in sorted(self.times_of_day):
                    at = datetime.combine(day, t, tzinfo=tz).astimezone(UTC)
                    if after <= at < until:
                        out.append(at)
            day += timedelta(days=1)
        return out


Schedule = Now | AtTimes | Recurring
"""When a broadcast is flown."""


def next_occurrences(schedule: Schedule, after: datetime, until: datetime) -> list[datetime]:
    """Start instants of ``schedule`` in ``[after, until)`` (``Now`` gives ``after``)."""
    if isinstance(schedule, Now):
        return [after]
    if isinstance(schedule, AtTimes):
        return sorted(t.astimezone(UTC) for t in schedule.times if after <= t < until)
    return schedule.occurrences(after, until)


# --- the request -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewBroadcast:
    """A broadcast request as submitted."""

    area: TargetArea
    message: Message
    volume: int = 100
    """Speaker volume, percent of full output."""
    repeats: int = 2
    """How many times every point of the area must hear the whole message."""
    period_s: float | None = None
    """Start-to-start period of the speaker's loop; None: clip length plus a 2 s pause."""
    schedule: Schedule = field(default_factory=Now)
    priority: Priority = Priority.STANDARD
    note: str = ""
    requested_by: str = ""
    idempotency_key: str | None = None


ClipLookup = Callable[[str], float | None]
"""Duration in seconds of a stored clip by SHA-256, or None when there is no such clip."""


def validate_broadcast(
    new: NewBroadcast,
    world: World,
    now: datetime,
    clip_duration: ClipLookup | None = None,
) -> ResolvedArea:
    """Check every field of ``new``; return its target area as a polygon.

    ``clip_duration`` looks up uploaded clips (required for a :class:`ClipMessage`). Raises
    :class:`ValidationError` with ``field`` set to the offending field.
    """
    area = resolve_area(new.area, world)
    duration = _validate_message(new.message, clip_duration)
    if isinstance(new.volume, bool) or not isinstance(new.volume, int):
        raise ValidationError("volume must be an integer percentage", field="volume")
    if not 1 <= new.volume <= 100:
        raise ValidationError("volume must be within 1..100 %", field="volume")
    if isinstance(new.repeats, bool) or not isinstance(new.repeats, int):
        raise ValidationError("repeats must be an integer", field="repeats")
    if not 1 <= new.repeats <= MAX_REPEATS:
        raise ValidationError(f"repeats must be within 1..{MAX_REPEATS}", field="repeats")
    if new.period_s is not None:
        if not math.isfinite(new.period_s) or not 1.0 <= new.period_s <= MAX_PERIOD_S:
            raise ValidationError(
                f"period_s must be within 1..{MAX_PERIOD_S:.0f} s", field="period_s"
            )
        if duration is not None and new.period_s < duration:
            raise ValidationError(
                f"period_s ({new.period_s:g} s) is shorter than the clip ({duration:.1f} s)",
                field="period_s",
            )
    _validate_schedule(new.schedule, now)
    try:
        Priority(new.priority)
    except ValueError:
        raise ValidationError(
            f"priority must be one of {', '.join(p.value for p in Priority)}", field="priority"
        ) from None
    if len(new.note) > 2000:
        raise ValidationError("at most 2000 characters", field="note")
    return area


def resolve_area(target: TargetArea, world: World) -> ResolvedArea:
    """The polygon of a target area; ``ValidationError`` (field ``area``) when unusable."""
    if isinstance(target, CommunityArea):
        try:
            c = world.community(target.community_id)
        except NotFound:
            raise ValidationError(
                f"unknown community {target.community_id!r} in world {world.name}",
                field="area.community_id",
            ) from None
        verts = tuple(c.boundary)
        if len(verts) > 1 and verts[0] == verts[-1]:
            verts = verts[:-1]
        return ResolvedArea(verts, c.polygon, (c.id,), c.name)
    if not isinstance(target, DrawnArea):
        raise ValidationError("area must be a community or a drawn polygon", field="area")
    verts = tuple((float(lat), float(lon)) for lat, lon in target.vertices)
    if len(verts) > 1 and verts[0] == verts[-1]:
        verts = verts[:-1]
    if len(verts) < 3:
        raise ValidationError("a drawn area needs at least three vertices", field="area.vertices")
    if len(verts) > MAX_VERTICES:
        raise ValidationError(f"at most {MAX_VERTICES} vertices", field="area.vertices")
    for n, (lat, lon) in enumerate(verts):
        if not (math.isfinite(lat) and math.isfinite(lon)) or not (
            -90 <= lat <= 90 and -180 <= lon <= 180
        ):
            raise ValidationError(
                f"vertex {n} is not a WGS84 position: ({lat}, {lon})", field="area.vertices"
            )
    poly = Polygon([world.frame.to_xy(lat, lon) for lat, lon in verts])
    if not poly.is_valid:
        raise ValidationError(
            f"the drawn polygon is not simple: {explain_validity(poly)}", field="area.vertices"
        )
    if poly.area < MIN_AREA_M2:
        raise ValidationError(
            f"the drawn area is {poly.area:.0f} m², smaller than {MIN_AREA_M2:.0f} m²",
            field="area.vertices",
        )
    outside = poly.difference(world.area.buffer(AREA_TOLERANCE_M))
    if not outside.is_empty:
        raise ValidationError(
            f"the drawn area reaches {outside.area:.0f} m² outside the operating area "
            f"of {world.name}",
            field="area.vertices",
        )
    overlaps = tuple(c.id for c in world.communities if c.polygon.intersects(poly))
    return ResolvedArea(verts, poly, overlaps, "drawn area")


def _validate_message(message: Message, clip_duration: ClipLookup | None) -> float | None:
    if isinstance(message, SpokenMessage):
        check_text(message.text)
        try:
            Language(message.language)
        except ValueError:
            raise ValidationError(
                f"language must be one of {', '.join(x.value for x in Language)}",
                field="message.language",
            ) from None
        try:
            Voice(message.voice)
        except ValueError:
            raise ValidationError(
                f"voice must be one of {', '.join(v.value for v in Voice)}",
                field="message.voice",
            ) from None
        if not MIN_RATE_WPM <= message.rate_wpm <= MAX_RATE_WPM:
            raise ValidationError(
                f"rate must be within {MIN_RATE_WPM}..{MAX_RATE_WPM} wpm",
                field="message.rate_wpm",
            )
        return None
    if isinstance(message, ClipMessage):
        if clip_duration is None:
            raise ValidationError("clips are not available here", field="message.sha256")
        duration = clip_duration(message.sha256)
        if duration is None:
            raise ValidationError(
                f"no uploaded clip {message.sha256!r}; upload it first", field="message.sha256"
            )
        return duration
    raise ValidationError("message must be text or a clip", field="message")


def _validate_schedule(schedule: Schedule, now: datetime) -> None:
    if isinstance(schedule, Now):
        return
    if isinstance(schedule, AtTimes):
        if not 1 <= len(schedule.times) <= MAX_TIMES:
            raise ValidationError(f"give 1..{MAX_TIMES} times", field="schedule.times")
        for n, t in enumerate(schedule.times):
            if t.tzinfo is None or t.utcoffset() is None:
                raise ValidationError(
                    f"time {n} has no timezone (use e.g. 2022-04-01T09:00:00+08:00)",
                    field="schedule.times",
                )
            if t < now - timedelta(minutes=1):
                raise ValidationError(f"time {n} ({t.isoformat()}) is past", field="schedule.times")
        if len(set(schedule.times)) != len(schedule.times):
            raise ValidationError("a time is given twice", field="schedule.times")
        return
    if isinstance(schedule, Recurring):
        try:
            tz = ZoneInfo(schedule.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"unknown timezone {schedule.timezone!r}", field="schedule.timezone"
            ) from None
        if not 1 <= len(schedule.times_of_day) <= 24:
            raise ValidationError("give 1..24 times of day", field="schedule.times_of_day")
        if len(set(schedule.times_of_day)) != len(schedule.times_of_day):
            raise ValidationError("a time of day is given twice", field="schedule.times_of_day")
        if not schedule.weekdays or not schedule.weekdays <= set(range(7)):
            raise ValidationError(
                "weekdays must be a non-empty subset of 0 (Monday) .. 6 (Sunday)",
                field="schedule.weekdays",
            )
        if schedule.end_date < schedule.start_date:
            raise ValidationError("end_date is before start_date", field="schedule.end_date")
        if (schedule.end_date - schedule.start_date).days > MAX_RECURRENCE_DAYS:
            raise ValidationError(
                f"a recurring schedule spans at most {MAX_RECURRENCE_DAYS} days",
                field="schedule.end_date",
            )
        if schedule.end_date < now.astimezone(tz).date():
            raise ValidationError("the schedule has ended already", field="schedule.end_date")
        far = datetime.combine(schedule.end_date + timedelta(days=1), time(0), tzinfo=tz)
        if not schedule.occurrences(now, far):
            raise ValidationError(
                "the schedule has no future occurrence (check weekdays and dates)",
                field="schedule",
            )
        return
    raise ValidationError("schedule must be now, at times, or recurring", field="schedule")
