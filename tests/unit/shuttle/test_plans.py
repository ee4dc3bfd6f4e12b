"""Shuttle plan rules: shift hours in local time, overnight shifts, validity days, overlaps and
validation errors that name the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fleet.errors import Conflict, ValidationError
from fleet.worldfile import load_world
from missions.shuttle.plans import PlanDraft, PlanSpec, overlaps, parse_hhmm, validate_draft

WORLD = load_world(Path(__file__).resolve().parents[3] / "examples" / "worlds" / "shatou.geojson")
SH = ZoneInfo("Asia/Shanghai")


def spec(
    start: str = "08:00",
    end: str = "16:00",
    *,
    vans: tuple[str, ...] = ("van-VAN-01",),
    tz: str = "Asia/Shanghai",
    valid_from: date | None = None,
    valid_until: date | None = None,
    plan_id: str = "p",
) -> PlanSpec:
    return PlanSpec(
        id=plan_id,
        name="",
        warehouse_id="W1",
        community_ids=("C01",),
        vehicle_ids=vans,
        start=parse_hhmm(start, "shift_start"),
        end=parse_hhmm(end, "shift_end"),
        tz=ZoneInfo(tz),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def draft(**kw: object) -> PlanDraft:
    base: dict[str, object] = {
        "warehouse_id": "W1",
        "community_ids": ["C01", "C02"],
        "vehicle_ids": ["van-VAN-01"],
        "shift_start": "08:00",
        "shift_end": "16:00",
        "timezone": "Asia/Shanghai",
    }
    base.update(kw)
    return PlanDraft(**base)  # type: ignore[arg-type]


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def test_day_shift_in_local_time() -> None:
    p = spec()
    s = p.shift_at(local(2026, 4, 1, 9))
    assert s is not None
    assert s.day == date(2026, 4, 1)
    assert s.start == datetime(2026, 4, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai (UTC+8)
    assert s.end == datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    assert s.hours == 8
    assert p.shift_at(local(2026, 4, 1, 7, 59)) is None
    assert p.shift_at(local(2026, 4, 1, 16, 0)) is None  # the end is exclusive
    nxt = p.next_shift(local(2026, 4, 1, 17))
    assert nxt is not None and nxt.day == date(2026, 4, 2)


def test_overnight_shift_belongs_to_the_day_it_starts() -> None:
    p = spec("22:00", "06:00")
    assert p.overnight and p.hours == 8
    s = p.shift_at(local(2026, 4, 2, 3))
    assert s is not None and s.day == date(2026, 4, 1)
    assert s.end.astimezone(SH) == local(2026, 4, 2, 6)
    assert p.shift_at(local(2026, 4, 2, 12)) is None


def test_validity_days() -> None:
    p = spec(valid_from=date(2026, 4, 2), valid_until=date(2026, 4, 3))
    assert p.shift_at(local(2026, 4, 1, 9)) is None
    assert p.shift_at(local(2026, 4, 3, 9)) is not None
    assert p.shift_at(local(2026, 4, 4, 9)) is None
    assert p.next_shift(local(2026, 4, 3, 17)) is None
    assert [s.day for s in p.shifts_between(date(2026, 3, 30), date(2026, 4, 10))] == [
        date(2026, 4, 2),
        date(2026, 4, 3),
    ]


def test_daylight_saving_shift_is_an_hour_shorter() -> None:
    p = spec("00:00", "08:00", tz="Europe/Berlin")
    s = p.shift_on(date(2026, 3, 29))  # clocks go forward at 02:00
    assert s is not None and s.hours == 7


@pytest.mark.parametrize(
    ("a", "b", "clash"),
    [
        (("08:00", "16:00"), ("16:00", "20:00"), False),
        (("08:00", "16:00"), ("15:00", "20:00"), True),
        (("22:00", "06:00"), ("05:00", "09:00"), True),
        (("22:00", "06:00"), ("06:00", "22:00"), False),
        (("08:00", "12:00"), ("07:00", "08:30"), True),
    ],
)
def test_overlap_of_daily_hours(a: tuple[str, str], b: tuple[str, str], clash: bool) -> None:
    assert (overlaps(spec(*a), spec(*b, plan_id="q")) is not None) is clash
    assert (overlaps(spec(*b, plan_id="q"), spec(*a)) is not None) is clash


def test_overlap_needs_common_days() -> None:
    a = spec(valid_until=date(2026, 4, 1))
    b = spec(valid_from=date(2026, 4, 2), plan_id="q")
    assert overlaps(a, b) is None
    night = spec("22:00", "06:00", valid_until=date(2026, 4, 1))
    morning = spec("05:00", "09:00", valid_from=date(2026, 4, 2), plan_id="q")
    assert overlaps(night, morning) is not None  # the night of the 1st runs into the 2nd


def test_overlap_across_time_zones() -> None:
    shanghai = spec("08:00", "16:00")  # 00:00-08:00 UTC
    utc = spec("07:00", "09:00", tz="UTC", plan_id="q")
    assert overlaps(shanghai, utc) is not None
    assert overlaps(shanghai, spec("08:00", "10:00", tz="UTC", plan_id="q")) is None


def test_valid_draft() -> None:
    s = validate_draft(draft(), plan_id="x", world=WORLD, known_vans=["van-VAN-01"], others=[])
    assert s.start == time(8) and s.community_ids == ("C01", "C02")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"warehouse_id": "W9"}, "warehouse_id"),
        ({"community_ids": []}, "community_ids"),
        ({"community_ids": ["C01", "C99"]}, "community_ids[1]"),
        ({"community_ids": ["C01", "C01"]}, "community_ids[1]"),
        ({"vehicle_ids": ["van-NOPE"]}, "vehicle_ids[0]"),
        ({"vehicle_ids": ["van-VAN-01", "van-VAN-01"]}, "vehicle_ids[1]"),
        ({"shift_start": "8:00"}, "shift_start"),
        ({"shift_end": "24:00"}, "shift_end"),
        ({"shift_end": "08:00"}, "shift_end"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"valid_from": date(2026, 4, 2), "valid_until": date(2026, 4, 1)}, "valid_until"),
    ],
)
def test_invalid_drafts_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_draft(
            draft(**change), plan_id="x", world=WORLD, known_vans=["van-VAN-01"], others=[]
        )
    assert exc.value.fields["field"] == field


def test_a_van_cannot_be_in_two_plans_at_once() -> None:
    other = spec("15:00", "20:00", plan_id="other")
    with pytest.raises(Conflict) as exc:
        validate_draft(draft(), plan_id="x", world=WORLD, known_vans=["van-VAN-01"], others=[other])
    assert exc.value.fields["field"] == "vehicle_ids"
    assert exc.value.fields["shuttle_plan_id"] == "other"
    # a later shift, a disabled draft, or the plan itself are fine
    later = spec("16:00", "20:00", plan_id="other")
    validate_draft(draft(), plan_id="x", world=WORLD, known_vans=["van-VAN-01"], others=[later])
    validate_draft(
        draft(enabled=False), plan_id="x", world=WORLD, known_vans=["van-VAN-01"], others=[other]
    )
    validate_draft(draft(), plan_id="other", world=WORLD, known_vans=["van-VAN-01"], others=[other])
