"""The energy model of a delivery multicopter: how long a sortie takes and how much battery it
uses.

One model for every estimate the service makes: the dispatcher's drone assignment
(:mod:`missions.routing.drones`), the flight plans of drone deliveries
(:mod:`missions.delivery.plan`) and broadcast endurance. Figures are battery fractions (0..1).

A sortie takes off, climbs to cruise altitude, cruises ``out_m`` loaded, descends to the drop
altitude, holds while the load is released, climbs back, cruises ``back_m`` empty and lands::

    L = 1 + PAYLOAD_FACTOR_PER_KG * payload_kg                         (loaded factor)
    energy = L * (out_km * CRUISE_PER_KM + loaded_vertical_min * HOVER_PER_MIN)
           +     (back_km * CRUISE_PER_KM + empty_vertical_min * HOVER_PER_MIN)

Vertical minutes (climbs, descents, the hold at the drop point and :data:`TAKEOFF_OVERHEAD_S`)
are flown at hover power. The defaults describe a light delivery quadcopter flying PX4's auto
modes: 5 m/s cruise (``MPC_XY_CRUISE``), 1.5 m/s climb and 1 m/s descent (conservative against
``MPC_Z_V_AUTO_UP``/``_DN``), about 33 minutes of hover on a full battery when empty and 28
minutes with its 2.5 kg payload.
"""

from __future__ import annotations

from dataclasses import dataclass

CRUISE_SPEED_MPS = 5.0
"""Horizontal cruise speed assumed for estimates (PX4 ``MPC_XY_CRUISE`` default)."""
CLIMB_SPEED_MPS = 1.5
"""Vertical speed assumed for climbs (PX4 ``MPC_Z_V_AUTO_UP`` default is 3; SIH measured 1.5)."""
DESCENT_SPEED_MPS = 1.0
"""Vertical speed assumed for descents and landing."""
HOVER_PER_MIN = 0.030
"""Battery fraction per minute of vertical flight or hover, empty."""
CRUISE_PER_KM = 0.10
"""Battery fraction per kilometre of cruise, empty (= ``HOVER_PER_MIN`` per minute at 5 m/s)."""
PAYLOAD_FACTOR_PER_KG = 0.07
"""Extra consumption per kilogram carried (+17.5 % with 2.5 kg)."""
REFERENCE_PAYLOAD_KG = 2.5
"""Payload of the reference delivery drone."""
TAKEOFF_OVERHEAD_S = 10.0
"""Arming, spool-up and landing settle per sortie, flown at hover power."""
LOADED_PER_MIN = HOVER_PER_MIN * (1.0 + PAYLOAD_FACTOR_PER_KG * REFERENCE_PAYLOAD_KG)
"""Battery fraction per minute of flight carrying the full reference payload (about 3.5 %):
the conservative rate for whole-flight estimates that do not split loaded and empty legs."""


def loaded_factor(payload_kg: float) -> float:
    """Consumption multiplier while carrying ``payload_kg``."""
    return 1.0 + PAYLOAD_FACTOR_PER_KG * max(0.0, payload_kg)


@dataclass(frozen=True, slots=True)
class SortieEstimate:
    """Time and energy of one sortie."""

    out_m: float
    back_m: float
    flight_s: float
    """Take-off to landing."""
    to_drop_s: float
    """Take-off to release."""
    energy: float
    """Battery fraction used."""


def estimate_sortie(
    out_m: float,
    back_m: float,
    payload_kg: float,
    *,
    cruise_alt_m: float,
    drop_alt_m: float,
    drop_hold_s: float,
    cruise_speed_mps: float = CRUISE_SPEED_MPS,
    climb_speed_mps: float = CLIMB_SPEED_MPS,
    descent_speed_mps: float = DESCENT_SPEED_MPS,
    cruise_per_km: float = CRUISE_PER_KM,
    hover_per_min: float = HOVER_PER_MIN,
    payload_factor_per_kg: float = PAYLOAD_FACTOR_PER_KG,
    overhead_s: float = TAKEOFF_OVERHEAD_S,
) -> SortieEstimate:
    """A sortie flying ``out_m`` with ``payload_kg`` and ``back_m`` empty (see the module)."""
    climb = cruise_alt_m / climb_speed_mps
    lower = (cruise_alt_m - drop_alt_m) / descent_speed_mps
    rise = (cruise_alt_m - drop_alt_m) / climb_speed_mps
    land = cruise_alt_m / descent_speed_mps
    loaded_vertical = overhead_s + climb + lower
    empty_vertical = drop_hold_s + rise + land
    factor = 1.0 + payload_factor_per_kg * max(0.0, payload_kg)
    energy = factor * (out_m / 1000 * cruise_per_km + loaded_vertical / 60 * hover_per_min) + (
        back_m / 1000 * cruise_per_km + empty_vertical / 60 * hover_per_min
    )
    to_drop = loaded_vertical + out_m / cruise_speed_mps
    flight = to_drop + back_m / cruise_speed_mps + empty_vertical
    return SortieEstimate(out_m, back_m, flight, to_drop, energy)
