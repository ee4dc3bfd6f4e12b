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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar
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
        try:
            check_text(message.text)
        except ValidationError as exc:
            raise ValidationError(str(exc.fields["reason"]), field="message.text") from None
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
            raise ValidationError("clips are not available here", field="message.clip_sha256")
        duration = clip_duration(message.sha256)
        if duration is None:
            raise ValidationError(
                f"no uploaded clip {message.sha256!r}; upload it first", field="message.clip_sha256"
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


# --- plain data (API bodies, the stored request body) ------------------------------------


def broadcast_to_dict(new: NewBroadcast) -> dict[str, Any]:
    """A request as JSON-able data (the form :func:`broadcast_from_dict` reads)."""
    area: dict[str, Any]
    if isinstance(new.area, CommunityArea):
        area = {"community_id": new.area.community_id}
    else:
        area = {"vertices": [[lat, lon] for lat, lon in new.area.vertices]}
    message: dict[str, Any]
    if isinstance(new.message, SpokenMessage):
        message = {
            "text": new.message.text,
            "language": str(new.message.language),
            "voice": str(new.message.voice),
            "rate_wpm": new.message.rate_wpm,
        }
    else:
        message = {
            "clip_sha256": new.message.sha256,
            "language": None if new.message.language is None else str(new.message.language),
        }
    schedule: dict[str, Any]
    if isinstance(new.schedule, Now):
        schedule = {"kind": "now"}
    elif isinstance(new.schedule, AtTimes):
        schedule = {"kind": "at", "times": [t.isoformat() for t in new.schedule.times]}
    else:
        r = new.schedule
        schedule = {
            "kind": "recurring",
            "times_of_day": [t.isoformat(timespec="minutes") for t in r.times_of_day],
            "weekdays": sorted(r.weekdays),
            "start_date": r.start_date.isoformat(),
            "end_date": r.end_date.isoformat(),
            "timezone": r.timezone,
        }
    return {
        "area": area,
        "message": message,
        "volume": new.volume,
        "repeats": new.repeats,
        "period_s": new.period_s,
        "schedule": schedule,
        "priority": str(new.priority),
        "note": new.note,
        "requested_by": new.requested_by,
        "idempotency_key": new.idempotency_key,
    }


def broadcast_from_dict(data: Mapping[str, Any]) -> NewBroadcast:
    """Read a request from plain data; ``ValidationError`` names the field of any type error.

    Values are checked for shape here and for meaning by :func:`validate_broadcast`.
    """

    def obj(value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise ValidationError("must be an object", field=where)
        return value

    def get(m: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        value = m.get(key)
        if not isinstance(value, kind):
            raise ValidationError(f"must be {_kind_name(kind)}", field=where)
        return value

    def enum(cls: type[_E], value: Any, where: str) -> _E:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(str(v.value) for v in cls)
            raise ValidationError(f"must be one of {choices}", field=where) from None

    root = obj(data, "body")
    a = obj(root.get("area"), "area")
    area: TargetArea
    if "community_id" in a:
        area = CommunityArea(get(a, "community_id", str, "area.community_id"))
    elif "vertices" in a:
        verts = get(a, "vertices", list, "area.vertices")
        pts = []
        for n, v in enumerate(verts):
            if (
                not isinstance(v, list | tuple)
                or len(v) != 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in v)
            ):
                raise ValidationError(f"vertex {n} must be [lat, lon]", field="area.vertices")
            pts.append((float(v[0]), float(v[1])))
        area = DrawnArea(tuple(pts))
    else:
        raise ValidationError("give community_id or vertices", field="area")
    m = obj(root.get("message"), "message")
    message: Message
    if "text" in m:
        message = SpokenMessage(
            text=get(m, "text", str, "message.text"),
            language=enum(Language, m.get("language"), "message.language"),
            voice=enum(Voice, m.get("voice", Voice.FEMALE.value), "message.voice"),
            rate_wpm=_int(m.get("rate_wpm", DEFAULT_RATE_WPM), "message.rate_wpm"),
        )
    elif "clip_sha256" in m:
        lang = m.get("language")
        message = ClipMessage(
            sha256=get(m, "clip_sha256", str, "message.clip_sha256"),
            language=None if lang is None else enum(Language, lang, "message.language"),
        )
    else:
        raise ValidationError("give text or clip_sha256", field="message")
    s = obj(root.get("schedule", {"kind": "now"}), "schedule")
    schedule: Schedule
    kind = s.get("kind", "now")
    if kind == "now":
        schedule = Now()
    elif kind == "at":
        times = get(s, "times", list, "schedule.times")
        schedule = AtTimes(tuple(_datetime(t, "schedule.times") for t in times))
    elif kind == "recurring":
        schedule = Recurring(
            times_of_day=tuple(
                _time(t, "schedule.times_of_day")
                for t in get(s, "times_of_day", list, "schedule.times_of_day")
            ),
            start_date=_date(s.get("start_date"), "schedule.start_date"),
            end_date=_date(s.get("end_date"), "schedule.end_date"),
            weekdays=frozenset(
                _int(d, "schedule.weekdays") for d in s.get("weekdays", list(range(7)))
            ),
            timezone=str(s.get("timezone", "Asia/Shanghai")),
        )
    else:
        raise ValidationError("kind must be now, at or recurring", field="schedule.kind")
    period = root.get("period_s")
    if period is not None and (not isinstance(period, int | float) or isinstance(period, bool)):
        raise ValidationError("must be a number of seconds or null", field="period_s")
    key = root.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise ValidationError("must be a string", field="idempotency_key")
    return NewBroadcast(
        area=area,
        message=message,
        volume=_int(root.get("volume", 100), "volume"),
        repeats=_int(root.get("repeats", 2), "repeats"),
        period_s=None if period is None else float(period),
        schedule=schedule,
        priority=enum(Priority, root.get("priority", Priority.STANDARD.value), "priority"),
        note=str(root.get("note", "") or ""),
        requested_by=str(root.get("requested_by", "") or ""),
        idempotency_key=key,
    )


_E = TypeVar("_E", bound=StrEnum)


def _kind_name(kind: type) -> str:
    return "a string" if kind is str else "a list" if kind is list else kind.__name__


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("must be an integer", field=where)
    return value


def _datetime(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError("times are ISO 8601 strings", field=where)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO 8601 date-time", field=where) from None


def _time(value: Any, where: str) -> time:
    if not isinstance(value, str):
        raise ValidationError("times of day are HH:MM strings", field=where)
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a time of day (HH:MM)", field=where) from None


def _date(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise ValidationError("dates are YYYY-MM-DD strings", field=where)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a date (YYYY-MM-DD)", field=where) from None
