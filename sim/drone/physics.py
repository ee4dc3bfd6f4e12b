"""Vehicle kinematics as a pure function: ``step(state, dt) -> state``.

Two models, chosen by :attr:`KinematicState.model`:

* **Multicopter** (like PX4's SIH quadrotor under its position controller): the horizontal
  velocity tracks a velocity towards the setpoint, limited to the setpoint's speed
  (``MPC_XY_CRUISE``, 5 m/s) and to ``acc_xy`` (``MPC_ACC_HOR``, 3 m/s²), slowing down so as to
  stop on the setpoint; the vertical velocity tracks the climb/descent speed of the setpoint
  (``MPC_TKO_SPEED`` 1.5 m/s, ``MPC_Z_V_AUTO_UP``/``DN``) with ``acc_z``; a landing setpoint
  descends at ``MPC_Z_VEL_MAX_DN`` (1 m/s) above ``MPC_LAND_ALT1`` (10 m), blending down to
  ``MPC_LAND_SPEED`` (0.7 m/s) below ``MPC_LAND_ALT2`` (5 m): about 30 s from 30 m.
* **Ackermann rover** (like PX4's SIH Ackermann rover): drives at up to the setpoint speed
  (``RO_SPEED_LIM``, 3 m/s) with ``acc_xy``, steering by pure pursuit towards the setpoint with
  the curvature bounded by ``tan(max steering angle) / wheel base``; it stays on the ground.

Positions are metres in a local frame (x east, y north) around the vehicle's reference point;
altitudes are metres above mean sea level; yaw is radians clockwise from north. The ground is
flat at ``ground_alt``. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum


class Model(Enum):
    """Which kinematic model a vehicle uses."""

    MULTICOPTER = "multicopter"
    """Quadrotor under a position controller."""
    ROVER = "rover"
    """Ackermann-steered ground rover."""


class SetpointKind(Enum):
    """What the controller is asked to do."""

    IDLE = "idle"
    """Motors off (disarmed): stay where it is; an airborne vehicle falls to the ground."""
    POSITION = "position"
    """Go to (x, y, alt) and hold there."""
    LAND = "land"
    """Hold (x, y) and descend along the landing profile until on the ground."""


@dataclass(frozen=True, slots=True)
class Setpoint:
    """A position setpoint with its speed limits."""

    kind: SetpointKind = SetpointKind.IDLE
    x: float = 0.0
    y: float = 0.0
    alt: float = 0.0
    speed_xy: float = 5.0
    speed_up: float = 1.5
    speed_down: float = 1.5


IDLE = Setpoint()
"""The motors-off setpoint."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Performance figures of a vehicle (from its parameters)."""

    acc_xy: float = 3.0
    """Horizontal acceleration, m/s² (MPC_ACC_HOR / RO_ACCEL_LIM)."""
    acc_z: float = 3.0
    """Vertical acceleration, m/s²."""
    land_speed_high: float = 1.0
    """Landing descent rate above ``land_alt1`` (MPC_Z_VEL_MAX_DN), m/s."""
    land_speed: float = 0.7
    """Landing descent rate below ``land_alt2`` (MPC_LAND_SPEED), m/s."""
    land_alt1: float = 10.0
    """MPC_LAND_ALT1, m above ground."""
    land_alt2: float = 5.0
    """MPC_LAND_ALT2, m above ground."""
    yaw_rate: float = math.radians(45.0)
    """Multicopter yaw rate, rad/s (MPC_YAWRAUTO_MAX)."""
    max_curvature: float = math.tan(0.5236) / 0.321
    """Rover: tan(RA_MAX_STR_ANG) / RA_WHEEL_BASE, 1/m."""


@dataclass(frozen=True, slots=True)
class KinematicState:
    """Where a vehicle is and how it moves, plus what it is asked to do."""

    x: float
    y: float
    alt: float
    ground_alt: float
    vx: float = 0.0
    vy: float = 0.0
    vz: float = 0.0
    yaw: float = 0.0
    on_ground: bool = True
    setpoint: Setpoint = IDLE
    limits: Limits = Limits()
    model: Model = Model.MULTICOPTER

    @property
    def height(self) -> float:
        """Height above the ground, m."""
        return self.alt - self.ground_alt

    @property
    def ground_speed(self) -> float:
        return math.hypot(self.vx, self.vy)


_MAX_SUBSTEP = 0.05
"""Longest integration step, s; longer ``dt`` is split so accelerated time stays accurate."""


def step(state: KinematicState, dt: float) -> KinematicState:
    """The state ``dt`` seconds later."""
    if dt <= 0:
        return state
    n = max(1, math.ceil(dt / _MAX_SUBSTEP))
    h = dt / n
    fn = _step_rover if state.model is Model.ROVER else _step_multicopter
    for _ in range(n):
        state = fn(state, h)
    return state


def _approach(current: float, target: float, max_delta: float) -> float:
    if target > current + max_delta:
        return current + max_delta
    if target < current - max_delta:
        return current - max_delta
    return target


def _wrap_pi(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def landing_speed(limits: Limits, height: float) -> float:
    """PX4's landing descent rate at ``height`` above ground."""
    if height >= limits.land_alt1:
        return limits.land_speed_high
    if height <= limits.land_alt2:
        return limits.land_speed
    f = (height - limits.land_alt2) / (limits.land_alt1 - limits.land_alt2)
    return limits.land_speed + f * (limits.land_speed_high - limits.land_speed)


def _step_multicopter(s: KinematicState, dt: float) -> KinematicState:
    sp, lim = s.setpoint, s.limits
    if sp.kind is SetpointKind.IDLE:
        if s.on_ground:
            return replace(s, vx=0.0, vy=0.0, vz=0.0)
        # motors off in the air: free fall (a disarm in flight is a crash)
        vz = s.vz - 9.81 * dt
        alt = s.alt + vz * dt
        if alt <= s.ground_alt:
            return replace(s, alt=s.ground_alt, vx=0.0, vy=0.0, vz=0.0, on_ground=True)
        return replace(s, alt=alt, vz=vz, x=s.x + s.vx * dt, y=s.y + s.vy * dt)

    # horizontal: velocity towards the setpoint, braking to stop on it
    dx, dy = sp.x - s.x, sp.y - s.y
    dist = math.hypot(dx, dy)
    if s.on_ground and sp.kind is SetpointKind.POSITION and sp.alt <= s.ground_alt + 0.05:
        dist = 0.0  # nothing to do on the ground
    if dist > 1e-3 and not s.on_ground:
        v_des = min(sp.speed_xy, math.sqrt(2.0 * lim.acc_xy * dist))
        if v_des * dt > dist:
            v_des = dist / dt
        ux, uy = dx / dist, dy / dist
        dvx, dvy = v_des * ux - s.vx, v_des * uy - s.vy
    else:
        dvx, dvy = -s.vx, -s.vy
    dv = math.hypot(dvx, dvy)
    max_dv = lim.acc_xy * dt
    if dv > max_dv:
        dvx, dvy = dvx * max_dv / dv, dvy * max_dv / dv
    vx, vy = s.vx + dvx, s.vy + dvy

    # vertical
    height = s.height
    if sp.kind is SetpointKind.LAND:
        vz_des = -landing_speed(lim, height)
    else:
        dz = sp.alt - s.alt
        if dz >= 0:
            vz_des = min(sp.speed_up, math.sqrt(2.0 * lim.acc_z * dz))
        else:
            vz_des = -min(sp.speed_down, math.sqrt(2.0 * lim.acc_z * -dz))
        if abs(vz_des) * dt > abs(dz):
            vz_des = dz / dt
    vz = _approach(s.vz, vz_des, lim.acc_z * dt)
    if s.on_ground and vz < 0:
        vz = 0.0

    x, y, alt = s.x + vx * dt, s.y + vy * dt, s.alt + vz * dt
    on_ground = s.on_ground
    if alt <= s.ground_alt:
        alt, vz = s.ground_alt, 0.0
        if sp.kind is SetpointKind.LAND or vz_des <= 0:
            on_ground = True
            vx = vy = 0.0
    elif alt > s.ground_alt + 0.1:
        on_ground = False

    yaw = s.yaw
    speed = math.hypot(vx, vy)
    if speed > 1.0:
        want = math.atan2(vx, vy)
        err = _wrap_pi(want - yaw)
        yaw = _wrap_pi(yaw + max(-lim.yaw_rate * dt, min(lim.yaw_rate * dt, err)))
    return replace(s, x=x, y=y, alt=alt, vx=vx, vy=vy, vz=vz, yaw=yaw, on_ground=on_ground)


def _step_rover(s: KinematicState, dt: float) -> KinematicState:
    sp, lim = s.setpoint, s.limits
    speed = math.hypot(s.vx, s.vy)
    if sp.kind is not SetpointKind.POSITION:
        v_des = 0.0
        curvature = 0.0
    else:
        dx, dy = sp.x - s.x, sp.y - s.y
        dist = math.hypot(dx, dy)
        if dist < 0.05:
            v_des, curvature = 0.0, 0.0
        else:
            alpha = _wrap_pi(math.atan2(dx, dy) - s.yaw)
            # pure pursuit with the setpoint as look-ahead point
            if abs(alpha) > math.pi / 2:
                # target behind: full lock towards it, slowly
                curvature = math.copysign(lim.max_curvature, alpha)
                v_des = min(sp.speed_xy, 1.0)
            else:
                curvature = 2.0 * math.sin(alpha) / max(dist, 0.5)
                curvature = max(-lim.max_curvature, min(lim.max_curvature, curvature))
                v_des = min(sp.speed_xy, math.sqrt(2.0 * lim.acc_xy * dist))
    speed = _approach(speed, v_des, lim.acc_xy * dt)
    yaw = _wrap_pi(s.yaw + speed * curvature * dt)
    vx, vy = speed * math.sin(yaw), speed * math.cos(yaw)
    return replace(
        s,
        x=s.x + vx * dt,
        y=s.y + vy * dt,
        alt=s.ground_alt,
        vx=vx,
        vy=vy,
        vz=0.0,
        yaw=yaw,
        on_ground=True,
    )
