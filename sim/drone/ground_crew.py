"""The ground crew at a drone's pad: a full battery for a drone that came home drained.

Not PX4 (a real drone's battery is swapped by people): with ``battery_swap_s`` set
(``SimFleet(battery_swap_s=...)``), a multicopter that has sat disarmed on its pad (within
:data:`BATTERY_SWAP_MAX_DISTANCE_M` of where it started) since it landed, or since boot, with less
than :data:`BATTERY_SWAP_BELOW` charge gets a full battery ``battery_swap_s`` world seconds later,
recorded in the ground truth as ``BATTERY_SWAP``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.drone.battery import Battery
from sim.drone.failsafes import BatteryLevel
from sim.truth import TruthKind

if TYPE_CHECKING:
    from sim.drone.autopilot import Autopilot

BATTERY_SWAP_BELOW = 0.9
"""The ground crew swaps batteries below this charge."""
BATTERY_SWAP_MAX_DISTANCE_M = 5.0
"""...only for a drone this close to its take-off point (its pad)."""


def swap_battery_if_due(ap: Autopilot, now: float) -> None:
    """Swap ``ap``'s used battery for a full one when the drone sits disarmed on its pad."""
    swap_s = ap.battery_swap_s
    if (
        swap_s is None
        or ap.armed
        or not ap.kin.on_ground
        or ap.battery.remaining >= BATTERY_SWAP_BELOW
        or math.hypot(ap.kin.x, ap.kin.y) > BATTERY_SWAP_MAX_DISTANCE_M
    ):
        return
    since = ap.landed_since if ap.landed_since is not None else ap.boot_time
    if now - since >= swap_s:
        before = ap.battery.remaining
        ap.battery = Battery.full(ap.params["BAT1_CAPACITY"], ap.params.get_int("BAT1_N_CELLS"))
        ap.failsafes.battery_level = BatteryLevel.NONE
        ap.record(TruthKind.BATTERY_SWAP, f"{before:.3f} -> 1.000")
