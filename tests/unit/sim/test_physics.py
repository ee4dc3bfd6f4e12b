"""Kinematics and battery: the pure models match PX4 SIH's figures."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from sim.drone.battery import Battery, discharge, power_draw
from sim.drone.physics import KinematicState, Model, Setpoint, SetpointKind, step

DT = 0.02


def run(s: KinematicState, seconds: float, dt: float = DT) -> list[KinematicState]:
    out = [s]
    for _ in range(round(seconds / dt)):
        s = step(s, dt)
        out.append(s)
    return out


def test_takeoff_climbs_at_the_setpoint_rate() -> None:
    s = KinematicState(
        0, 0, 10.0, 10.0, setpoint=Setpoint(SetpointKind.POSITION, 0, 0, 40.0, speed_up=1.5)
    )
    trace = run(s, 10.0)
    assert not trace[-1].on_ground
    # steady climb at MPC_TKO_SPEED once accelerated
    assert trace[-1].vz == pytest.approx(1.5, abs=1e-6)
    assert 13.5 < trace[-1].height < 15.0


def test_cruise_at_5_mps_and_stop_on_the_waypoint() -> None:
    s = KinematicState(0, 0, 30.0, 0.0, on_ground=False)
    s = replace(s, setpoint=Setpoint(SetpointKind.POSITION, 0, 200.0, 30.0, speed_xy=5.0))
    trace = run(s, 60.0)
    assert max(t.ground_speed for t in trace) == pytest.approx(5.0, abs=1e-6)
    assert trace[-1].y == pytest.approx(200.0, abs=0.05)
    assert trace[-1].ground_speed < 0.05
    # 200 m at 5 m/s plus acceleration and braking: about 42 s
    t_arrive = next(i for i, t in enumerate(trace) if abs(t.y - 200.0) < 0.5) * DT
    assert 40.0 < t_arrive < 44.0


def test_landing_from_30_m_takes_about_30_s() -> None:
    s = KinematicState(
        0, 0, 30.0, 0.0, on_ground=False, setpoint=Setpoint(SetpointKind.LAND, 0, 0, 0)
    )
    trace = run(s, 60.0)
    t_down = next(i for i, t in enumerate(trace) if t.on_ground) * DT
    assert 28.0 < t_down < 36.0
    assert trace[-1].alt == 0.0 and trace[-1].vz == 0.0


def test_step_splits_long_intervals() -> None:
    s = KinematicState(
        0, 0, 30.0, 0.0, on_ground=False, setpoint=Setpoint(SetpointKind.POSITION, 50.0, 0, 30.0)
    )
    fine = run(s, 10.0)[-1]
    coarse = step(s, 10.0)
    assert coarse.x == pytest.approx(fine.x, abs=0.2)


def test_disarmed_in_the_air_falls() -> None:
    s = KinematicState(0, 0, 20.0, 0.0, on_ground=False)
    end = run(s, 5.0)[-1]
    assert end.on_ground and end.alt == 0.0


def test_rover_turns_within_its_steering_limit_and_arrives() -> None:
    s = KinematicState(
        0,
        0,
        5.0,
        5.0,
        model=Model.ROVER,
        setpoint=Setpoint(SetpointKind.POSITION, -20.0, -20.0, 5.0, speed_xy=3.0),
    )
    trace = run(s, 40.0)
    assert math.hypot(trace[-1].x + 20.0, trace[-1].y + 20.0) < 0.5
    assert all(t.alt == 5.0 and t.on_ground for t in trace)
    assert max(t.ground_speed for t in trace) <= 3.0 + 1e-9
    # yaw rate never exceeds v * max curvature
    lim = s.limits
    for a, b in itertools.pairwise(trace):
        dyaw = abs((b.yaw - a.yaw + math.pi) % (2 * math.pi) - math.pi)
        assert dyaw <= b.ground_speed * lim.max_curvature * DT + 1e-9


def test_battery_hover_endurance_and_drain_multiplier() -> None:
    b = Battery.full(5000, 4)
    assert b.capacity_wh == pytest.approx(74.0)
    assert b.voltage_v == pytest.approx(16.8)
    hover = KinematicState(0, 0, 10.0, 0.0, on_ground=False)
    p = power_draw(hover, armed=True)
    minutes = b.capacity_wh / p * 60
    assert 15 < minutes < 20
    after = discharge(b, p, 60.0)
    fast = discharge(replace(b, drain_multiplier=10.0), p, 60.0)
    assert (b.energy_wh - fast.energy_wh) == pytest.approx(10 * (b.energy_wh - after.energy_wh))
    assert power_draw(hover, armed=False) < 5.0
