"""PX4's navigation states as the sim implements them, and how a ground station selects them.

:class:`Nav` is a vehicle's flight mode (PX4's ``nav_state``) with its custom mode (main, sub) on
the wire (:mod:`firmware_bridges.mavlink.wire.px4`); :func:`nav_for` is what MAV_CMD_DO_SET_MODE
selects; :data:`NAV_GROUPS` is each state's navigation-mode group in PX4's health-and-arming
checks (which modes a check blocks). Shared by the commander (:mod:`sim.drone.autopilot`), the
navigator (:mod:`sim.drone.navigator`), the failsafes (:mod:`sim.drone.failsafes`) and the
telemetry (:mod:`sim.drone.telemetry`).
"""

from __future__ import annotations

from enum import Enum

from firmware_bridges.mavlink.wire.px4 import AutoSubMode, MainMode
from sim.drone.arming_report import mode_bits


class Nav(Enum):
    """PX4 navigation states the sim implements, with their (main, sub) custom mode."""

    MANUAL = (MainMode.MANUAL, 0)
    """Manual (no sticks in SITL: holds)."""
    ALTCTL = (MainMode.ALTCTL, 0)
    """Altitude (holds)."""
    POSCTL = (MainMode.POSCTL, 0)
    """Position (holds)."""
    STABILIZED = (MainMode.STABILIZED, 0)
    """Stabilized (holds)."""
    ACRO = (MainMode.ACRO, 0)
    """Acro (holds)."""
    HOLD = (MainMode.AUTO, AutoSubMode.LOITER)
    """Hold (auto loiter)."""
    TAKEOFF = (MainMode.AUTO, AutoSubMode.TAKEOFF)
    """Takeoff."""
    MISSION = (MainMode.AUTO, AutoSubMode.MISSION)
    """Mission."""
    RTL = (MainMode.AUTO, AutoSubMode.RTL)
    """Return to launch."""
    LAND = (MainMode.AUTO, AutoSubMode.LAND)
    """Land."""

    @property
    def main(self) -> int:
        return int(self.value[0])

    @property
    def sub(self) -> int:
        return int(self.value[1])


_BY_MODE = {(n.main, n.sub): n for n in Nav}
AUTO_NAVS = frozenset({Nav.HOLD, Nav.TAKEOFF, Nav.MISSION, Nav.RTL, Nav.LAND})
"""The auto modes (PX4's ``AUTO`` main mode)."""
HOLDING_NAVS = frozenset({Nav.HOLD, Nav.POSCTL, Nav.ALTCTL, Nav.MANUAL, Nav.STABILIZED, Nav.ACRO})
"""Modes in which the sim holds its position (no sticks in SITL)."""
NAV_GROUPS: dict[Nav, int] = {
    Nav.MANUAL: mode_bits("manual"),
    Nav.ALTCTL: mode_bits("altctl"),
    Nav.POSCTL: mode_bits("posctl"),
    Nav.STABILIZED: mode_bits("stab"),
    Nav.ACRO: mode_bits("acro"),
    Nav.HOLD: mode_bits("loiter"),
    Nav.TAKEOFF: mode_bits("takeoff"),
    Nav.MISSION: mode_bits("mission"),
    Nav.RTL: mode_bits("rtl"),
    Nav.LAND: mode_bits("land"),
}
"""PX4's navigation-mode group of each nav state (``Report::getModeGroup``)."""


def nav_for(main: int, sub: int) -> Nav | None:
    """The nav state PX4 enters for DO_SET_MODE (main, sub); None if not supported."""
    if main != MainMode.AUTO:
        sub = 0
    elif sub == 0:
        sub = AutoSubMode.LOITER
    return _BY_MODE.get((main, sub))
