"""The ground crew swaps a used battery once the drone sits disarmed on its pad."""

from __future__ import annotations

from fleet.clock import ManualClock
from sim.drone.autopilot import Autopilot, Home
from sim.drone.params import ParamStore
from sim.truth import TruthKind


def _autopilot(swap_s: float | None) -> tuple[Autopilot, ManualClock]:
    clock = ManualClock()
    ap = Autopilot("sim-1", Home(22.53, 114.03, 10.0), ParamStore(), clock, battery_swap_s=swap_s)
    return ap, clock


def _run(ap: Autopilot, clock: ManualClock, seconds: float, dt: float = 0.5) -> None:
    for _ in range(int(seconds / dt)):
        clock._now += dt  # the autopilot reads the clock; no task sleeps here
        ap.update(dt)


def test_depleted_battery_is_swapped_after_the_crew_time() -> None:
    ap, clock = _autopilot(60.0)
    _run(ap, clock, 3.0)
    ap.set_battery(0.4)
    _run(ap, clock, 30.0)
    assert ap.battery.remaining < 0.41
    _run(ap, clock, 40.0)
    assert ap.battery.remaining > 0.99
    assert ap.truth.of(TruthKind.BATTERY_SWAP)


def test_no_crew_no_swap() -> None:
    ap, clock = _autopilot(None)
    _run(ap, clock, 3.0)
    ap.set_battery(0.4)
    _run(ap, clock, 120.0)
    assert ap.battery.remaining < 0.41
    assert not ap.truth.of(TruthKind.BATTERY_SWAP)
