"""Broadcast requests: every field validated against the world, round trip through plain data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from fleet.errors import ValidationError
from missions.broadcast.request import (
    AtTimes,
    ClipMessage,
    CommunityArea,
    DrawnArea,
    NewBroadcast,
    Now,
    Recurring,
    SpokenMessage,
    broadcast_from_dict,
    broadcast_to_dict,
    next_occurrences,
    resolve_area,
    validate_broadcast,
)
from missions.broadcast.voices import Language, Voice, espeak_voice, parse_voice_list
from missions.states import Priority
from tests.unit.broadcast.worlds import make_world, rect

NOW = datetime(2022, 4, 1, 1, 0, tzinfo=UTC)
WORLD = make_world({"C1": rect(0, 0, 200, 150)}, extent=1000.0)
SHA = "ab" * 32


def ll(x: float, y: float) -> tuple[float, float]:
    return WORLD.frame.to_latlon(x, y)


def base(**changes: object) -> NewBroadcast:
    new = NewBroadcast(
        area=CommunityArea("C1"),
        message=SpokenMessage("今天下午三点核酸检测", Language.MANDARIN),
    )
    return replace(new, **changes)  # type: ignore[arg-type]


def field_of(new: NewBroadcast, clips: dict[str, float] | None = None) -> str:
    with pytest.raises(ValidationError) as err:
        validate_broadcast(new, WORLD, NOW, (clips or {}).get)
    return str(err.value.fields["field"])


def test_a_community_request_resolves_to_its_polygon() -> None:
    area = validate_broadcast(base(), WORLD, NOW)
    assert area.community_ids == ("C1",)
    assert area.area_m2 == pytest.approx(200 * 150)
    assert len(area.vertices) == 4


def test_a_drawn_polygon_inside_the_area_is_accepted() -> None:
    verts = (ll(10, 10), ll(100, 10), ll(100, 80), ll(10, 80))
    area = validate_broadcast(base(area=DrawnArea(verts)), WORLD, NOW)
    assert area.area_m2 == pytest.approx(90 * 70, rel=1e-6)
    assert area.community_ids == ("C1",)
    # a closed ring is accepted as well
    closed = validate_broadcast(base(area=DrawnArea((*verts, verts[0]))), WORLD, NOW)
    assert closed.area_m2 == pytest.approx(area.area_m2)


@pytest.mark.parametrize(
    ("area", "field"),
    [
        (CommunityArea("nope"), "area.community_id"),
        (DrawnArea(((22.5, 114.0), (22.5, 114.001))), "area.vertices"),
        # a bow tie is not a simple polygon
        (DrawnArea((ll(0, 0), ll(50, 50), ll(50, 0), ll(0, 50))), "area.vertices"),
        # too small
        (DrawnArea((ll(0, 0), ll(5, 0), ll(5, 5), ll(0, 5))), "area.vertices"),
        # sticks out of the operating area
        (DrawnArea((ll(900, 0), ll(1100, 0), ll(1100, 100), ll(900, 100))), "area.vertices"),
        (DrawnArea(((95.0, 114.0), (22.5, 114.001), (22.6, 114.0))), "area.vertices"),
    ],
)
def test_bad_areas_name_the_field(area: object, field: str) -> None:
    assert field_of(base(area=area)) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"message": SpokenMessage("   ", Language.ENGLISH)}, "message.text"),
        ({"message": SpokenMessage("x" * 1001, Language.ENGLISH)}, "message.text"),
        ({"message": SpokenMessage("bell\x07", Language.ENGLISH)}, "message.text"),
        ({"message": SpokenMessage("hi", "fr")}, "message.language"),  # type: ignore[arg-type]
        ({"message": SpokenMessage("hi", Language.ENGLISH, "robot")}, "message.voice"),  # type: ignore[arg-type]
        ({"message": SpokenMessage("hi", Language.ENGLISH, rate_wpm=20)}, "message.rate_wpm"),
        ({"message": ClipMessage("cd" * 32)}, "message.clip_sha256"),
        ({"volume": 0}, "volume"),
        ({"volume": 101}, "volume"),
        ({"volume": True}, "volume"),
        ({"repeats": 0}, "repeats"),
        ({"repeats": 11}, "repeats"),
        ({"period_s": 0.5}, "period_s"),
        ({"period_s": float("nan")}, "period_s"),
        ({"priority": "asap"}, "priority"),
        ({"note": "n" * 2001}, "note"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], field: str) -> None:
    assert field_of(base(**changes)) == field


def test_an_uploaded_clip_must_exist_and_fit_the_period() -> None:
    clips = {SHA: 20.0}
    ok = base(message=ClipMessage(SHA, Language.CANTONESE), period_s=25.0)
    validate_broadcast(ok, WORLD, NOW, clips.get)
    assert field_of(replace(ok, period_s=10.0), clips) == "period_s"
    assert field_of(replace(ok, message=ClipMessage("00" * 32)), clips) == "message.clip_sha256"


def test_schedules() -> None:
    later = NOW + timedelta(hours=2)
    validate_broadcast(base(schedule=AtTimes((later, later + timedelta(hours=1)))), WORLD, NOW)
    assert field_of(base(schedule=AtTimes(()))) == "schedule.times"
    assert field_of(base(schedule=AtTimes((NOW - timedelta(hours=1),)))) == "schedule.times"
    naive = datetime(2022, 4, 1, 12, 0)
    assert field_of(base(schedule=AtTimes((naive,)))) == "schedule.times"
    assert field_of(base(schedule=AtTimes((later, later)))) == "schedule.times"
    daily = Recurring((time(9, 0), time(15, 30)), date(2022, 4, 1), date(2022, 4, 7))
    validate_broadcast(base(schedule=daily), WORLD, NOW)
    assert field_of(base(schedule=replace(daily, timezone="Mars/Olympus"))) == "schedule.timezone"
    assert field_of(base(schedule=replace(daily, weekdays=frozenset({7})))) == "schedule.weekdays"
    assert field_of(base(schedule=replace(daily, end_date=date(2022, 3, 1)))) == (
        "schedule.end_date"
    )
    assert field_of(base(schedule=replace(daily, end_date=date(2022, 12, 1)))) == (
        "schedule.end_date"
    )
    assert field_of(base(schedule=replace(daily, times_of_day=()))) == "schedule.times_of_day"


def test_recurring_occurrences_are_local_times_in_utc() -> None:
    weekdays = Recurring(
        (time(9, 0),), date(2022, 4, 1), date(2022, 4, 10), weekdays=frozenset({0, 2, 4})
    )
    got = weekdays.occurrences(NOW, NOW + timedelta(days=14))
    # 2022-04-01 is a Friday; Mon 4th, Wed 6th, Fri 8th follow; 09:00 in Shanghai is 01:00 UTC
    assert [t.isoformat() for t in got] == [
        "2022-04-01T01:00:00+00:00",
        "2022-04-04T01:00:00+00:00",
        "2022-04-06T01:00:00+00:00",
        "2022-04-08T01:00:00+00:00",
    ]
    assert next_occurrences(Now(), NOW, NOW + timedelta(days=1)) == [NOW]
    at = AtTimes((NOW + timedelta(days=3), NOW + timedelta(hours=1)))
    assert next_occurrences(at, NOW, NOW + timedelta(days=1)) == [NOW + timedelta(hours=1)]


def test_plain_data_round_trip() -> None:
    new = base(
        area=DrawnArea((ll(10, 10), ll(100, 10), ll(100, 80))),
        message=SpokenMessage("Testing at 3 pm", Language.ENGLISH, Voice.MALE, 150),
        volume=80,
        repeats=3,
        period_s=30.0,
        schedule=Recurring(
            (time(9, 0),), date(2022, 4, 1), date(2022, 4, 3), weekdays=frozenset({1, 3})
        ),
        priority=Priority.VULNERABLE,
        note="building 3",
        idempotency_key="k-1",
    )
    data = broadcast_to_dict(new)
    assert broadcast_from_dict(data) == new
    clip = base(message=ClipMessage(SHA, None), schedule=AtTimes((NOW,)))
    assert broadcast_from_dict(broadcast_to_dict(clip)) == clip


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "body"),
        ({"message": {"text": "x", "language": "en"}}, "area"),
        ({"area": {"vertices": [[1, 2], [3]]}, "message": {}}, "area.vertices"),
        ({"area": {"community_id": 5}, "message": {}}, "area.community_id"),
        (
            {"area": {"community_id": "C1"}, "message": {"text": "x", "language": "xx"}},
            "message.language",
        ),
        ({"area": {"community_id": "C1"}, "message": {"sound": 1}}, "message"),
        (
            {
                "area": {"community_id": "C1"},
                "message": {"text": "x", "language": "en"},
                "volume": "loud",
            },
            "volume",
        ),
        (
            {
                "area": {"community_id": "C1"},
                "message": {"text": "x", "language": "en"},
                "schedule": {"kind": "at", "times": ["noon"]},
            },
            "schedule.times",
        ),
        (
            {
                "area": {"community_id": "C1"},
                "message": {"text": "x", "language": "en"},
                "schedule": {"kind": "weekly"},
            },
            "schedule.kind",
        ),
    ],
)
def test_bad_plain_data_names_the_field(data: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        broadcast_from_dict(data)  # type: ignore[arg-type]
    assert err.value.fields["field"] == field


def test_resolve_area_of_a_community_drops_the_closing_vertex() -> None:
    area = resolve_area(CommunityArea("C1"), WORLD)
    assert area.vertices[0] != area.vertices[-1]


def test_voices_map_to_espeak() -> None:
    assert espeak_voice(Language.MANDARIN, Voice.FEMALE) == "cmn+f3"
    assert espeak_voice(Language.CANTONESE, Voice.MALE) == "yue"
    assert espeak_voice(Language.ENGLISH, Voice.MALE) == "en-gb"
    listing = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 5  cmn             --/M      Chinese_(Mandarin) sit/cmn              (zh-cmn 5)\n"
        " 2  en-gb           --/M      English_(Great_Britain) gmw/en          (en 2)\n"
    )
    assert parse_voice_list(listing) == {"cmn", "en-gb"}
