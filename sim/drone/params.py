"""PX4 parameters a sim drone holds, with PX4's defaults, and the parameter wire encoding.

PX4 advertises ``MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE``: an INT32 parameter travels in
``PARAM_VALUE.param_value`` / ``PARAM_SET.param_value`` as the four bytes of the integer
reinterpreted as a float, not as a numeric conversion. :func:`encode_value` and
:func:`decode_value` do that. Names are at most 16 characters (``param_id``).

The table holds the parameters the service and MAVSDK rely on, with the defaults of PX4 v1.14/1.15
for the SIH quadrotor (``MPC_*``, ``NAV_*``, ``COM_*``, ``BAT_*``, ``GF_*``, ``RTL_*``, ``MIS_*``)
and a few rover ones. Unknown names are answered with PARAM_ERROR (does not exist), as PX4 does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum


class ParamType(IntEnum):
    """MAV_PARAM_TYPE values PX4 uses."""

    INT32 = 6
    """MAV_PARAM_TYPE_INT32 (sent bytewise)."""
    REAL32 = 9
    """MAV_PARAM_TYPE_REAL32."""


@dataclass(frozen=True, slots=True)
class ParamDef:
    """One parameter: name, type and PX4 default."""

    name: str
    type: ParamType
    default: float
    doc: str = ""


def _i(name: str, default: int, doc: str = "") -> ParamDef:
    return ParamDef(name, ParamType.INT32, float(default), doc)


def _f(name: str, default: float, doc: str = "") -> ParamDef:
    return ParamDef(name, ParamType.REAL32, float(default), doc)


PX4_PARAMS: tuple[ParamDef, ...] = (
    _f("MIS_TAKEOFF_ALT", 2.5, "Default take-off altitude above home, m"),
    _i("MIS_TKO_LAND_REQ", 0, "Mission take-off/landing required (0: no)"),
    _f("MIS_DIST_1WP", 10000.0, "First waypoint farther from home than this: warning, m (0: off)"),
    _f("MIS_COMMAND_TOUT", 0.0, "Time a mission waits for a payload command, s"),
    _f("MIS_YAW_TMT", -1.0, "Yaw timeout, s"),
    _f("NAV_ACC_RAD", 2.0, "Default waypoint acceptance radius, m"),
    _f("NAV_MC_ALT_RAD", 0.8, "Multicopter altitude acceptance radius, m"),
    _i(
        "NAV_DLL_ACT",
        0,
        "Data-link-loss action: 0 off, 1 hold, 2 return, 3 land, 5 terminate, 6 lockdown",
    ),
    _i("NAV_RCL_ACT", 2, "RC-loss action"),
    _f("COM_DL_LOSS_T", 10.0, "Data-link-loss timeout, s"),
    _f("COM_FAIL_ACT_T", 5.0, "Delay (in Hold) before a failsafe action, s"),
    _i(
        "COM_LOW_BAT_ACT",
        3,
        "Battery failsafe: 0 warn, 2 land, 3 return at critical / land at emergency",
    ),
    _f("COM_DISARM_PRFLT", 10.0, "Auto-disarm when armed but not taken off, s (<=0 off)"),
    _f("COM_DISARM_LAND", 2.0, "Auto-disarm after landing, s (<=0 off)"),
    _i("COM_ARM_WO_GPS", 0, "Allow arming without GPS"),
    _i("COM_RC_IN_MODE", 3, "Manual control input source"),
    _f("BAT_LOW_THR", 0.15, "Low battery threshold (fraction)"),
    _f("BAT_CRIT_THR", 0.07, "Critical battery threshold (fraction)"),
    _f("BAT_EMERGEN_THR", 0.05, "Emergency battery threshold (fraction)"),
    _i("BAT1_N_CELLS", 4, "Battery cells in series"),
    _f("BAT1_CAPACITY", 10000.0, "Battery capacity, mAh (the sim's reference delivery quad)"),
    _i("GF_ACTION", 2, "Geofence action: 0 none, 1 warn, 2 hold, 3 return, 4 terminate, 5 land"),
    _f("GF_MAX_HOR_DIST", 0.0, "Max horizontal distance from home, m (0: off)"),
    _f("GF_MAX_VER_DIST", 0.0, "Max height above home, m (0: off)"),
    _i("GF_SOURCE", 0, "Geofence position source"),
    _f("RTL_RETURN_ALT", 60.0, "Return altitude above home, m"),
    _f("RTL_DESCEND_ALT", 30.0, "Return: loiter/descend altitude above home, m"),
    _f("RTL_LAND_DELAY", 0.0, "Return: hover before landing, s (-1: forever)"),
    _f("RTL_MIN_DIST", 10.0, "Return: below this distance from home, climb only to current alt, m"),
    _i("RTL_TYPE", 0, "Return type: 0 closest of home and rally points"),
    _f("MPC_XY_CRUISE", 5.0, "Cruise speed in auto modes, m/s"),
    _f("MPC_XY_VEL_MAX", 12.0, "Maximum horizontal speed, m/s"),
    _f("MPC_ACC_HOR", 3.0, "Horizontal acceleration in auto modes, m/s^2"),
    _f("MPC_Z_V_AUTO_UP", 3.0, "Auto climb rate, m/s"),
    _f("MPC_Z_V_AUTO_DN", 1.5, "Auto descent rate, m/s"),
    _f("MPC_Z_VEL_MAX_DN", 1.0, "Maximum descent rate (landing above MPC_LAND_ALT1), m/s"),
    _f("MPC_TKO_SPEED", 1.5, "Take-off climb rate, m/s"),
    _f("MPC_LAND_SPEED", 0.7, "Landing descent rate below MPC_LAND_ALT2, m/s"),
    _f("MPC_LAND_ALT1", 10.0, "Altitude where landing starts slowing down, m"),
    _f("MPC_LAND_ALT2", 5.0, "Altitude below which landing uses MPC_LAND_SPEED, m"),
    _f("MPC_YAWRAUTO_MAX", 45.0, "Auto yaw rate, deg/s"),
    _f("GND_SPEED_THR_SC", 1.0, "Rover: speed scaling"),
    _f("RO_SPEED_LIM", 3.0, "Rover: speed limit in auto modes, m/s"),
    _f("RO_ACCEL_LIM", 1.5, "Rover: acceleration limit, m/s^2"),
    _f("RA_WHEEL_BASE", 0.321, "Ackermann rover wheel base, m"),
    _f("RA_MAX_STR_ANG", 0.5236, "Ackermann rover max steering angle, rad"),
    _f("RA_ACC_RAD_MAX", 3.0, "Ackermann rover max acceptance radius, m"),
    _i("SYS_AUTOSTART", 10040, "Airframe (10040: SIH quadrotor X)"),
    _i("MAV_SYS_ID", 1, "MAVLink system id"),
    _i("MAV_TYPE", 2, "MAV_TYPE"),
    _i("CAL_GYRO0_ID", 1310988, "Gyro calibration id"),
    _i("CAL_ACC0_ID", 1310988, "Accelerometer calibration id"),
    _i("CAL_MAG0_ID", 197388, "Magnetometer calibration id"),
    _i("SDLOG_MODE", 0, "Logging mode"),
)
"""Every parameter a sim drone knows, in PARAM_REQUEST_LIST order."""


def encode_value(ptype: ParamType, value: float) -> float:
    """The float carried on the wire for ``value`` (INT32 bytewise as PX4 does)."""
    if ptype == ParamType.INT32:
        return float(struct.unpack("<f", struct.pack("<i", round(value)))[0])
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def decode_value(ptype: ParamType, wire: float) -> float:
    """The parameter value of a wire float (INT32 bytewise as PX4 does)."""
    if ptype == ParamType.INT32:
        return float(struct.unpack("<i", struct.pack("<f", wire))[0])
    return float(wire)


class UnknownParam(KeyError):
    """No parameter of that name or index."""


class ParamStore:
    """The live parameter values of one vehicle, in table order."""

    def __init__(
        self,
        defs: Iterable[ParamDef] = PX4_PARAMS,
        overrides: Mapping[str, float] | None = None,
    ) -> None:
        self._defs = {d.name: d for d in defs}
        self._order = list(self._defs)
        self._values = {d.name: d.default for d in self._defs.values()}
        for name, value in (overrides or {}).items():
            self.set(name, value)

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def get(self, name: str) -> float:
        if name not in self._values:
            raise UnknownParam(name)
        return self._values[name]

    def get_int(self, name: str) -> int:
        return int(self.get(name))

    def definition(self, name: str) -> ParamDef:
        if name not in self._defs:
            raise UnknownParam(name)
        return self._defs[name]

    def index(self, name: str) -> int:
        if name not in self._defs:
            raise UnknownParam(name)
        return self._order.index(name)

    def name_at(self, index: int) -> str:
        if not 0 <= index < len(self._order):
            raise UnknownParam(str(index))
        return self._order[index]

    def set(self, name: str, value: float) -> float:
        """Set a value (rounded for INT32); returns the stored value."""
        d = self.definition(name)
        v = float(round(value)) if d.type == ParamType.INT32 else float(value)
        self._values[name] = v
        return v
