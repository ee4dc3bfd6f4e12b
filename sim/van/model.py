"""Vehicle model of an unmanned light delivery van on city streets, and its pure physics.

:class:`VanSpec` holds the figures (defaults below, all overridable); :func:`drive` moves the van
along one straight road segment for ``dt`` seconds and :func:`battery_step` drains or charges
the battery. Both are pure functions of a frozen state, as the rest of ``sim`` does.

The default figures describe a typical L4 unmanned light delivery van of the kind Chinese
streets used during the 2020-2022 lockdowns (about 3 m³ of cargo, under a tonne of payload,
lithium battery, electric drive), operated under the usual city rules for such vans:

- cargo: at most 150 standard boxes and 1000 kg per trip;
- speed: at most 30 km/h (8.33 m/s), and never above the road's limit; corners are taken at
  the speed a 1.5 m/s² lateral acceleration allows on a curve rounded with 6 m tangents
  (about 3 m/s for a right-angle turn);
- acceleration 1.0 m/s² and service braking 2.0 m/s² when loaded, so stops are smooth for
  pedestrians and cargo;
- loading: 90 s per stop (park, open, check the manifest, close) plus 8 s per box loaded at a
  warehouse dock (staff carry them) or 6 s per box unloaded at a community gate;
- energy: a 22 kWh pack; 0.18 kWh/km empty plus 0.04 kWh/km per 1000 kg of cargo, and 0.3 kW
  for computers, sensors and lights: about 110 km per charge empty, 100 km fully loaded;
- charging: 6.6 kW on-board AC charger at the warehouse dock (empty to full in about
  3.5 hours; an hour's charge adds about 30 km);
- battery voltage: 72 V class pack, 66 V empty to 78 V full.

See ``docs/protocols/vda5050.md`` for how this model appears on the wire (factsheet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

KMH = 1 / 3.6
"""m/s per km/h."""


@dataclass(frozen=True, slots=True)
class VanSpec:
    """Figures of one van type (see the module docstring for the reasoning)."""

    series_name: str = "streetfleet SV-150"
    max_boxes: int = 150
    max_load_kg: float = 1000.0
    max_speed_mps: float = 30 * KMH
    min_speed_mps: float = 0.3
    """Slowest controlled speed."""
    acceleration_mps2: float = 1.0
    deceleration_mps2: float = 2.0
    lateral_accel_mps2: float = 1.5
    corner_tangent_m: float = 6.0
    """Length of the tangents a corner is rounded with (sets the corner radius)."""
    length_m: float = 4.5
    width_m: float = 1.7
    height_m: float = 2.3
    per_stop_s: float = 90.0
    """Fixed time of every pick or drop: park, open, check, close."""
    pick_per_box_s: float = 8.0
    drop_per_box_s: float = 6.0
    battery_kwh: float = 22.0
    drive_kwh_per_km: float = 0.18
    cargo_kwh_per_km_per_t: float = 0.04
    aux_kw: float = 0.3
    charge_kw: float = 6.6
    voltage_empty_v: float = 66.0
    voltage_full_v: float = 78.0
    position_tolerance_m: float = 1.0
    """A node counts as reached within this distance unless the order allows more."""
    charger_radius_m: float = 15.0
    """How close to a charger the van must stand to charge."""

    def pick_duration(self, boxes: int) -> float:
        """Seconds to load ``boxes`` boxes at one stop."""
        return self.per_stop_s + boxes * self.pick_per_box_s

    def drop_duration(self, boxes: int) -> float:
        """Seconds to unload ``boxes`` boxes at one stop."""
        return self.per_stop_s + boxes * self.drop_per_box_s

    def kwh_per_m(self, cargo_kg: float) -> float:
        """Traction energy per metre with ``cargo_kg`` on board."""
        return (self.drive_kwh_per_km + self.cargo_kwh_per_km_per_t * cargo_kg / 1000) / 1000

    def reach_m(self, soc: float, cargo_kg: float = 0.0) -> float:
        """Distance the remaining charge drives (at 20 km/h average, with auxiliaries)."""
        aux_per_m = self.aux_kw / (20 * KMH) / 3600
        return max(0.0, soc * self.battery_kwh / (self.kwh_per_m(cargo_kg) + aux_per_m))

    def corner_speed(self, turn_rad: float) -> float:
        """Highest speed through a node where the road turns by ``turn_rad``."""
        turn = abs(turn_rad)
        if turn < math.radians(5):
            return self.max_speed_mps
        if turn >= math.pi - 1e-6:
            return self.min_speed_mps
        radius = self.corner_tangent_m / math.tan(turn / 2)
        return max(
            self.min_speed_mps, min(self.max_speed_mps, math.sqrt(self.lateral_accel_mps2 * radius))
        )


@dataclass(frozen=True, slots=True)
class Pose:
    """Where the van is and how fast it goes (map frame: x east, y north, theta CCW from x)."""

    x: float
    y: float
    theta: float
    speed: float = 0.0
    odometer_m: float = 0.0


def wrap_angle(a: float) -> float:
    """``a`` in [-pi, pi]."""
    return math.atan2(math.sin(a), math.cos(a))


def drive(
    pose: Pose,
    target: tuple[float, float],
    dt: float,
    spec: VanSpec,
    limit_mps: float,
    end_speed_mps: float,
) -> tuple[Pose, bool]:
    """Move toward ``target`` for ``dt`` seconds.

    The van accelerates up to ``limit_mps`` and brakes so that it passes ``target`` at no more
    than ``end_speed_mps`` (0 to stop there). Returns the new pose and whether the target was
    reached (then the van stands on it, or passes it at ``end_speed_mps``).
    """
    tx, ty = target
    dx, dy = tx - pose.x, ty - pose.y
    dist = math.hypot(dx, dy)
    theta = math.atan2(dy, dx) if dist > 1e-6 else pose.theta
    limit = max(0.0, min(limit_mps, spec.max_speed_mps))
    end = max(0.0, min(end_speed_mps, limit))
    if dist <= 1e-3:
        return replace(pose, x=tx, y=ty, theta=theta, speed=min(pose.speed, end)), True
    # highest speed at the end of this step from which service braking b still reaches `end`
    # at the target: v1 <= sqrt(end² + 2b(dist - (v0 + v1) dt / 2)), solved for v1
    b, v0 = spec.deceleration_mps2, pose.speed
    c = end * end + 2 * b * dist - b * dt * v0
    brake_cap = (-b * dt + math.sqrt(b * b * dt * dt + 4 * c)) / 2 if c > 0 else 0.0
    v1 = min(limit, v0 + spec.acceleration_mps2 * dt, brake_cap)
    v1 = max(v1, v0 - b * dt, 0.0)
    if end <= 0 and v1 < spec.min_speed_mps:
        # creep the last centimetres instead of stalling short of a stop
        v1 = min(spec.min_speed_mps, dist / dt) if dt > 0 else v1
    step = (v0 + v1) / 2 * dt
    if step >= dist:
        return (
            Pose(
                tx,
                ty,
                theta,
                speed=min(v1, end) if end > 0 else 0.0,
                odometer_m=pose.odometer_m + dist,
            ),
            True,
        )
    ux, uy = dx / dist, dy / dist
    return (
        Pose(
            pose.x + ux * step,
            pose.y + uy * step,
            theta,
            speed=v1,
            odometer_m=pose.odometer_m + step,
        ),
        False,
    )


def brake(pose: Pose, dt: float, spec: VanSpec) -> Pose:
    """Slow down in a straight line (pause, cancel, no released road ahead)."""
    v0 = pose.speed
    if v0 <= 0:
        return pose
    v1 = max(0.0, v0 - spec.deceleration_mps2 * dt)
    t = dt if v1 > 0 else v0 / spec.deceleration_mps2
    step = (v0 + v1) / 2 * t
    return Pose(
        pose.x + math.cos(pose.theta) * step,
        pose.y + math.sin(pose.theta) * step,
        pose.theta,
        speed=v1,
        odometer_m=pose.odometer_m + step,
    )


@dataclass(frozen=True, slots=True)
class Battery:
    """State of charge of the traction battery."""

    soc: float = 1.0
    """0..1."""
    charging: bool = False

    def voltage(self, spec: VanSpec) -> float:
        return spec.voltage_empty_v + (spec.voltage_full_v - spec.voltage_empty_v) * self.soc


def battery_step(
    battery: Battery, spec: VanSpec, dt: float, distance_m: float, cargo_kg: float
) -> Battery:
    """Energy drawn over ``dt`` seconds while driving ``distance_m``, or charged if plugged in.

    Charging stops by itself when the battery is full.
    """
    if battery.charging:
        soc = min(1.0, battery.soc + spec.charge_kw * dt / 3600 / spec.battery_kwh)
        return Battery(soc=soc, charging=soc < 1.0)
    used = distance_m * spec.kwh_per_m(cargo_kg) + spec.aux_kw * dt / 3600
    return Battery(soc=max(0.0, battery.soc - used / spec.battery_kwh), charging=False)
