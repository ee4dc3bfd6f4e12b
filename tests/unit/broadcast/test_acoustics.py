"""The speaker model: ISO 9613-1 absorption, spreading, required level, audible radius."""

from __future__ import annotations

import math

import pytest

from fleet.errors import ValidationError
from missions.broadcast.acoustics import SpeakerModel, atmospheric_absorption_db_per_m

# ISO 9613-2:1996 Table 2, 20 °C and 70 % relative humidity, dB/km at the octave midbands
ISO_20C_70 = {63: 0.1, 125: 0.3, 250: 1.1, 500: 2.8, 1000: 5.0, 2000: 9.0, 4000: 22.9, 8000: 76.6}


@pytest.mark.parametrize(("nominal", "db_per_km"), sorted(ISO_20C_70.items()))
def test_absorption_matches_the_iso_table(nominal: int, db_per_km: float) -> None:
    # exact midband frequencies of the base-10 octave series
    exact = 1000.0 * 10 ** (round(3 * math.log2(nominal / 1000)) / 10)
    got = atmospheric_absorption_db_per_m(exact, 20.0, 70.0) * 1000
    assert got == pytest.approx(db_per_km, abs=0.06)


@pytest.mark.parametrize(
    ("temperature", "humidity", "db_per_km"),
    [(10, 70, 3.7), (30, 70, 7.4), (15, 20, 8.2), (15, 50, 4.2), (15, 80, 4.1)],
)
def test_absorption_other_weather(temperature: float, humidity: float, db_per_km: float) -> None:
    # ISO 9613-2 Table 2, 1 kHz octave
    got = atmospheric_absorption_db_per_m(1000.0, temperature, humidity) * 1000
    assert got == pytest.approx(db_per_km, abs=0.06)


def test_level_is_source_minus_spreading_absorption_and_margin() -> None:
    m = SpeakerModel(source_level_db=120, excess_attenuation_db=10)
    alpha = m.absorption_db_per_m
    assert m.level_db(1.0) == pytest.approx(110.0 - alpha)
    assert m.level_db(100.0) == pytest.approx(120 - 40 - 100 * alpha - 10)
    # 6 dB per doubling of distance, plus absorption over the extra distance
    assert m.level_db(50) - m.level_db(100) == pytest.approx(20 * math.log10(2) + 50 * alpha)
    # half volume is 6 dB quieter
    assert m.level_db(80, 50) == pytest.approx(m.level_db(80) - 20 * math.log10(2))


def test_required_level_is_background_plus_margin_with_a_floor() -> None:
    assert SpeakerModel(background_db=55, snr_db=15).required_level_db == 70
    assert SpeakerModel(background_db=40, snr_db=15, min_level_db=65).required_level_db == 65


def test_default_figures() -> None:
    m = SpeakerModel()
    s = m.audible_slant_range_m()
    assert m.level_db(s) == pytest.approx(m.required_level_db, abs=1e-6)
    assert s == pytest.approx(90.97, abs=0.05)
    assert m.audible_radius_m(60.0) == pytest.approx(math.sqrt(s * s - 60 * 60), abs=1e-6)
    assert m.audible_radius_m(60.0) == pytest.approx(68.4, abs=0.1)
    assert m.audible_radius_m(s + 1) == 0.0


def test_radius_grows_with_source_level_and_shrinks_with_noise() -> None:
    base = SpeakerModel()
    assert SpeakerModel(source_level_db=130).audible_radius_m(60) > base.audible_radius_m(60)
    assert SpeakerModel(background_db=65).audible_radius_m(60) < base.audible_radius_m(60)
    assert base.audible_radius_m(60, volume=70) < base.audible_radius_m(60)
    # a quiet speaker never reaches the required level
    assert SpeakerModel(source_level_db=75).audible_slant_range_m() == 0.0


def test_bad_models_and_volumes_are_refused() -> None:
    with pytest.raises(ValidationError):
        SpeakerModel(source_level_db=200)
    with pytest.raises(ValidationError):
        SpeakerModel(relative_humidity=120)
    with pytest.raises(ValidationError):
        SpeakerModel().level_db(10, volume=0)
