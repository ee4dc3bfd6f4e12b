"""Durations under an accelerated clock: world seconds with a floor in real seconds.

Link losses, broker restarts and database round trips take real time however fast the world
clock runs, so waits that guard against them never get shorter than a few real seconds.
"""

from __future__ import annotations

import math


def world_floor(clock_speed: float, world_s: float, real_s: float) -> float:
    """``world_s``, but at least ``real_s`` real seconds under a clock running ``clock_speed``
    times faster than real time (a manual clock, of infinite speed, gets ``world_s``)."""
    return max(world_s, real_s * clock_speed) if math.isfinite(clock_speed) else world_s
