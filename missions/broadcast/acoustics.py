"""The speaker model: how loud a drone loudspeaker is on the ground, and so how far it is heard.

A loudspeaker payload is rated by its **source level** ``Ls``: the sound pressure level (dB SPL
re 20 µPa) it produces 1 m from the horn at full volume. Commercial drone megaphones advertise
110 dB (small speakers bundled with enterprise drones) to 130 dB (long-range megaphone pods);
the default, 120 dB, is the middle of that class. The payload's volume setting scales the
amplitude: ``v`` % of full output lowers the level by ``20·log10(100/v)`` dB.

The level at a listener at slant distance ``r`` metres (point source, free field) is::

    L(r) = Ls + 20·log10(v/100) - 20·log10(r / 1 m) - α·r - A_excess

* ``20·log10(r)``: spherical spreading, 6 dB per doubling of distance;
* ``α·r``: atmospheric absorption per ISO 9613-1:1993 (air temperature, relative humidity,
  pressure), evaluated at 2 kHz: the octave carrying most of speech intelligibility
  (consonants), where absorption is higher than in the lower speech bands, so the estimate is
  conservative;
* ``A_excess``: a flat planning margin for everything a free-field model ignores in a
  residential compound (screening by buildings, ground effect, wind, horn directivity off
  axis). Default 10 dB.

A message is **audible** (intelligible) where the level reaches the **required level**: the
background noise plus a speech-to-noise margin, never less than a floor. NFPA 72 asks voice
announcements in public mode to be 15 dB above the average ambient level; a locked-down
residential compound in daytime has an ambient level around 55 dB(A), so the default required
level is 70 dB.

The **audible slant range** ``S`` solves ``L(S) = required``; at flight altitude ``h`` above a
listener, the **audible radius** on the ground is ``sqrt(S² - h²)`` (zero when ``h >= S``).
Listeners are taken at ground level and the ground as flat at the take-off altitude.

With the defaults (120 dB, 70 dB required, 10 dB margin, 20 °C, 70 % RH: α = 9.0 dB/km at 2 kHz)
``S`` is about 91 m and the audible radius at 60 m is about 68 m: lanes 137 m apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from fleet.errors import ValidationError

REFERENCE_PRESSURE_KPA = 101.325
"""ISO 9613-1 reference atmospheric pressure."""
REFERENCE_TEMPERATURE_K = 293.15
"""ISO 9613-1 reference air temperature (20 °C)."""
TRIPLE_POINT_K = 273.16
"""Triple-point isotherm temperature of water (ISO 9613-1)."""
SPEECH_FREQUENCY_HZ = 2000.0
"""Frequency at which absorption is evaluated for speech (see module docstring)."""


def atmospheric_absorption_db_per_m(
    frequency_hz: float,
    temperature_c: float = 20.0,
    relative_humidity: float = 70.0,
    pressure_kpa: float = REFERENCE_PRESSURE_KPA,
) -> float:
    """Pure-tone atmospheric absorption coefficient α in dB per metre, ISO 9613-1:1993 §6.

    ``relative_humidity`` is in percent. Valid for the standard's range (-20..50 °C,
    10..100 % RH, 50 Hz..10 kHz).
    """
    if frequency_hz <= 0:
        raise ValueError("frequency must be positive")
    t = temperature_c + 273.15
    pa_pr = pressure_kpa / REFERENCE_PRESSURE_KPA
    tr = t / REFERENCE_TEMPERATURE_K
    # saturation vapour pressure over the reference pressure (ISO 9613-1 Annex B)
    c = -6.8346 * (TRIPLE_POINT_K / t) ** 1.261 + 4.6151
    psat_pr = 10.0**c
    h = relative_humidity * psat_pr / pa_pr  # molar concentration of water vapour, %
    fr_o = pa_pr * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    fr_n = pa_pr * tr**-0.5 * (9.0 + 280.0 * h * math.exp(-4.170 * (tr ** (-1.0 / 3.0) - 1.0)))
    f2 = frequency_hz**2
    return float(
        8.686
        * f2
        * (
            1.84e-11 / pa_pr * tr**0.5
            + tr**-2.5
            * (
                0.01275 * math.exp(-2239.1 / t) / (fr_o + f2 / fr_o)
                + 0.1068 * math.exp(-3352.0 / t) / (fr_n + f2 / fr_n)
            )
        )
    )


@dataclass(frozen=True)
class SpeakerModel:
    """A loudspeaker payload and the listening conditions it is planned for."""

    source_level_db: float = 120.0
    """dB SPL at 1 m on the horn axis, full volume."""
    background_db: float = 55.0
    """Ambient noise on the ground, dB(A)."""
    snr_db: float = 15.0
    """Speech-to-noise margin needed for intelligibility (NFPA 72: 15 dB above ambient)."""
    min_level_db: float = 65.0
    """Required level never goes below this (quiet nights still need a clear message)."""
    excess_attenuation_db: float = 10.0
    """Flat margin for buildings, ground effect, wind and directivity."""
    temperature_c: float = 20.0
    relative_humidity: float = 70.0
    """Percent."""
    pressure_kpa: float = REFERENCE_PRESSURE_KPA
    frequency_hz: float = SPEECH_FREQUENCY_HZ

    def __post_init__(self) -> None:
        if not 60.0 <= self.source_level_db <= 150.0:
            raise ValidationError("must be within 60..150 dB", field="source_level_db")
        if not 0.0 <= self.relative_humidity <= 100.0:
            raise ValidationError("must be within 0..100 %", field="relative_humidity")
        if self.excess_attenuation_db < 0 or self.snr_db < 0:
            raise ValidationError("margins must be >= 0", field="excess_attenuation_db")

    @cached_property
    def absorption_db_per_m(self) -> float:
        """α at the model's frequency and weather."""
        return atmospheric_absorption_db_per_m(
            self.frequency_hz, self.temperature_c, self.relative_humidity, self.pressure_kpa
        )

    @property
    def required_level_db(self) -> float:
        """Level a listener needs to understand the message."""
        return max(self.background_db + self.snr_db, self.min_level_db)

    @staticmethod
    def volume_gain_db(volume: int) -> float:
        """Level change of a volume setting (percent of full amplitude)."""
        if not 0 < volume <= 100:
            raise ValidationError("volume must be within 1..100 %", field="volume")
        return 20.0 * math.log10(volume / 100.0)

    def level_db(self, slant_m: float, volume: int = 100) -> float:
        """Level at ``slant_m`` metres from the speaker (clamped to 1 m)."""
        r = max(1.0, slant_m)
        return (
            self.source_level_db
            + self.volume_gain_db(volume)
            - 20.0 * math.log10(r)
            - self.absorption_db_per_m * r
            - self.excess_attenuation_db
        )

    def audible_slant_range_m(self, volume: int = 100) -> float:
        """Distance at which the level falls to the required level (0 if never reached)."""
        budget = (
            self.source_level_db
            + self.volume_gain_db(volume)
            - self.excess_attenuation_db
            - self.required_level_db
        )
        if budget <= 0:
            return 0.0
        # L(r) is strictly decreasing: solve 20·log10(r) + α·r = budget by bisection
        lo, hi = 1.0, 10.0 ** (budget / 20.0)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if 20.0 * math.log10(mid) + self.absorption_db_per_m * mid > budget:
                hi = mid
            else:
                lo = mid
        return lo

    def audible_radius_m(self, altitude_m: float, volume: int = 100) -> float:
        """Ground radius around the point under the speaker where the message is audible."""
        s = self.audible_slant_range_m(volume)
        if altitude_m >= s:
            return 0.0
        return math.sqrt(s * s - altitude_m * altitude_m)

    def describe(self, altitude_m: float, volume: int = 100) -> dict[str, float]:
        """The model's figures for a flight, for plans and reports."""
        return {
            "source_level_db": self.source_level_db,
            "volume_gain_db": self.volume_gain_db(volume),
            "required_level_db": self.required_level_db,
            "absorption_db_per_km": self.absorption_db_per_m * 1000.0,
            "excess_attenuation_db": self.excess_attenuation_db,
            "audible_slant_range_m": self.audible_slant_range_m(volume),
            "altitude_m": altitude_m,
            "audible_radius_m": self.audible_radius_m(altitude_m, volume),
            "level_below_db": self.level_db(altitude_m, volume),
        }
