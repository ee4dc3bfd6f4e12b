"""PX4 conventions on the MAVLink wire: custom flight modes and their encoding.

PX4 packs its mode into HEARTBEAT.custom_mode as ``main_mode << 16 | sub_mode << 24``
(``px4_custom_mode.h``); base_mode carries MAV_MODE_FLAG_CUSTOM_MODE_ENABLED. MAV_CMD_DO_SET_MODE
takes param1 = base mode flags (custom enabled), param2 = main mode, param3 = sub mode.

This is a wire module: the simulators in ``sim/`` may import it, as a real vehicle would share
the firmware's constants. The mapping to the domain's flight modes is in
``firmware_bridges.mavlink.translate``.
"""

from __future__ import annotations

from enum import IntEnum


class MainMode(IntEnum):
    """PX4_CUSTOM_MAIN_MODE."""

    MANUAL = 1
    ALTCTL = 2
    POSCTL = 3
    AUTO = 4
    ACRO = 5
    OFFBOARD = 6
    STABILIZED = 7
    RATTITUDE_LEGACY = 8
    SIMPLE = 9
    TERMINATION = 10


class AutoSubMode(IntEnum):
    """PX4_CUSTOM_SUB_MODE_AUTO."""

    READY = 1
    TAKEOFF = 2
    LOITER = 3
    MISSION = 4
    RTL = 5
    LAND = 6
    RESERVED_DO_NOT_USE = 7
    FOLLOW_TARGET = 8
    PRECLAND = 9
    VTOL_TAKEOFF = 10


def encode_custom_mode(main: int, sub: int = 0) -> int:
    """HEARTBEAT.custom_mode for a PX4 main/sub mode."""
    return (main & 0xFF) << 16 | (sub & 0xFF) << 24


def decode_custom_mode(custom_mode: int) -> tuple[int, int]:
    """(main, sub) from HEARTBEAT.custom_mode."""
    return (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF
