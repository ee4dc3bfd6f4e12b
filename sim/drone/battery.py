"""Battery discharge model, pure: ``discharge(battery, power_w, dt) -> battery``.

A sim drone's battery is an energy store: capacity from ``BAT1_CAPACITY`` (mAh) times the
nominal voltage of ``BAT1_N_CELLS`` LiPo cells (3.7 V each); the power drawn depends on what the
vehicle does (:func:`power_draw`): a 4S 5000 mAh quadrotor (74 Wh) hovers about 18 minutes.
Cell voltage runs linearly from 4.2 V full to 3.5 V empty. ``drain_multiplier`` (fault
injection) scales the draw. PX4 SITL's own battery simulator instead drains to
``SIM_BAT_MIN_PCT`` (50 %) in ``SIM_BAT_DRAIN`` seconds and stays there; see ``docs/sim.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sim.drone.physics import KinematicState, Model

CELL_NOMINAL_V = 3.7
"""Nominal LiPo cell voltage."""
CELL_FULL_V = 4.2
"""Cell voltage when full."""
CELL_EMPTY_V = 3.5
"""Cell voltage when empty."""

HOVER_POWER_W = 250.0
"""Multicopter hover power, W."""
CLIMB_POWER_W_PER_MPS = 40.0
"""Extra multicopter power per m/s of climb, W."""
FORWARD_POWER_W_PER_MPS2 = 1.2
"""Extra multicopter power per (m/s)² of ground speed, W (parasitic drag)."""
ARMED_IDLE_POWER_W = 30.0
"""Armed on the ground, motors idling, W."""
AVIONICS_POWER_W = 3.0
"""Disarmed: flight controller and radios, W."""
ROVER_POWER_W_PER_MPS = 15.0
"""Rover drive power per m/s, W (plus armed idle)."""


@dataclass(frozen=True, slots=True)
class Battery:
    """State of charge and electrical figures of one battery."""

    capacity_wh: float
    energy_wh: float
    cells: int = 4
    drain_multiplier: float = 1.0
    current_a: float = 0.0

    @classmethod
    def full(cls, capacity_mah: float = 5000.0, cells: int = 4) -> Battery:
        wh = capacity_mah / 1000.0 * CELL_NOMINAL_V * cells
        return cls(capacity_wh=wh, energy_wh=wh, cells=cells)

    @property
    def remaining(self) -> float:
        """State of charge, 0..1."""
        if self.capacity_wh <= 0:
            return 0.0
        return max(0.0, min(1.0, self.energy_wh / self.capacity_wh))

    @property
    def voltage_v(self) -> float:
        return self.cells * (CELL_EMPTY_V + (CELL_FULL_V - CELL_EMPTY_V) * self.remaining)

    def with_remaining(self, fraction: float) -> Battery:
        """The same battery charged to ``fraction`` (0..1)."""
        return replace(self, energy_wh=self.capacity_wh * max(0.0, min(1.0, fraction)))


def power_draw(kin: KinematicState, armed: bool) -> float:
    """Electrical power a vehicle draws in state ``kin``, W."""
    if not armed:
        return AVIONICS_POWER_W
    if kin.model is Model.ROVER:
        return ARMED_IDLE_POWER_W + ROVER_POWER_W_PER_MPS * kin.ground_speed
    if kin.on_ground:
        return ARMED_IDLE_POWER_W
    speed2 = kin.vx * kin.vx + kin.vy * kin.vy
    return (
        HOVER_POWER_W + CLIMB_POWER_W_PER_MPS * max(0.0, kin.vz) + FORWARD_POWER_W_PER_MPS2 * speed2
    )


def discharge(battery: Battery, power_w: float, dt: float) -> Battery:
    """The battery after drawing ``power_w`` for ``dt`` seconds."""
    p = power_w * battery.drain_multiplier
    energy = max(0.0, battery.energy_wh - p * dt / 3600.0)
    volts = battery.voltage_v
    return replace(battery, energy_wh=energy, current_a=p / volts if volts > 0 else 0.0)
