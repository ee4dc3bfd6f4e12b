"""Parameter protocol over UDP: PX4 defaults, bytewise int32, PARAM_ERROR for unknown names."""

from __future__ import annotations

import struct

from pymavlink.dialects.v20 import common as mavlink

from sim.drone.params import PX4_PARAMS, ParamStore, ParamType, decode_value, encode_value
from tests.support import eventually
from tests.unit.sim.harness import fleet_and_gcs


def test_int32_travels_bytewise() -> None:
    wire = encode_value(ParamType.INT32, 3)
    assert struct.pack("<f", wire) == struct.pack("<i", 3)
    assert decode_value(ParamType.INT32, wire) == 3
    assert decode_value(ParamType.REAL32, encode_value(ParamType.REAL32, 2.5)) == 2.5


def test_px4_defaults_the_service_relies_on() -> None:
    p = ParamStore()
    expected = {
        "MIS_TAKEOFF_ALT": 2.5,
        "RTL_RETURN_ALT": 60.0,
        "NAV_DLL_ACT": 0,
        "COM_DL_LOSS_T": 10.0,
        "COM_LOW_BAT_ACT": 3,
        "BAT_LOW_THR": 0.15,
        "BAT_CRIT_THR": 0.07,
        "BAT_EMERGEN_THR": 0.05,
        "GF_ACTION": 2,
        "GF_MAX_HOR_DIST": 0.0,
        "GF_MAX_VER_DIST": 0.0,
        "COM_DISARM_PRFLT": 10.0,
        "COM_DISARM_LAND": 2.0,
        "COM_FAIL_ACT_T": 5.0,
        "MIS_COMMAND_TOUT": 0.0,
        "MPC_XY_CRUISE": 5.0,
    }
    for name, value in expected.items():
        assert p[name] == value, name
    assert all(len(d.name) <= 16 for d in PX4_PARAMS)


async def test_read_set_list_and_unknown() -> None:
    async with fleet_and_gcs(1, params={"RTL_RETURN_ALT": 33.0}) as (fleet, gcs):
        mav = gcs.mav
        since = gcs.mark()
        gcs.send(mav.param_request_read_encode(1, 1, b"NAV_DLL_ACT", -1))
        pv = await gcs.wait_for("PARAM_VALUE", lambda m: m.param_id == "NAV_DLL_ACT", since=since)
        assert pv.param_type == mavlink.MAV_PARAM_TYPE_INT32
        assert decode_value(ParamType.INT32, pv.param_value) == 0
        assert pv.param_count == len(PX4_PARAMS)

        # preset like PX4_PARAM_RTL_RETURN_ALT
        since = gcs.mark()
        gcs.send(mav.param_request_read_encode(1, 1, b"RTL_RETURN_ALT", -1))
        pv = await gcs.wait_for(
            "PARAM_VALUE", lambda m: m.param_id == "RTL_RETURN_ALT", since=since
        )
        assert pv.param_value == 33.0 and pv.param_type == mavlink.MAV_PARAM_TYPE_REAL32

        since = gcs.mark()
        gcs.send(
            mav.param_set_encode(
                1, 1, b"NAV_DLL_ACT", encode_value(ParamType.INT32, 2), mavlink.MAV_PARAM_TYPE_INT32
            )
        )
        pv = await gcs.wait_for("PARAM_VALUE", lambda m: m.param_id == "NAV_DLL_ACT", since=since)
        assert decode_value(ParamType.INT32, pv.param_value) == 2
        assert fleet[0].params["NAV_DLL_ACT"] == 2

        since = gcs.mark()
        gcs.send(mav.param_request_read_encode(1, 1, b"NOPE_PARAM", -1))
        err = await gcs.wait_for("PARAM_ERROR", since=since)
        assert err.param_id == "NOPE_PARAM"
        assert err.error == mavlink.MAV_PARAM_ERROR_DOES_NOT_EXIST
        gcs.send(mav.param_set_encode(1, 1, b"NOPE_PARAM", 1.0, mavlink.MAV_PARAM_TYPE_REAL32))
        await gcs.wait_for("PARAM_ERROR", since=gcs.mark() - 0)

        # addressed to another system: ignored
        since = gcs.mark()
        gcs.send(
            mav.param_set_encode(
                7, 1, b"NAV_DLL_ACT", encode_value(ParamType.INT32, 1), mavlink.MAV_PARAM_TYPE_INT32
            )
        )
        gcs.send(mav.param_request_read_encode(1, 1, b"NAV_DLL_ACT", -1))
        pv = await gcs.wait_for("PARAM_VALUE", lambda m: m.param_id == "NAV_DLL_ACT", since=since)
        assert decode_value(ParamType.INT32, pv.param_value) == 2

        since = gcs.mark()
        gcs.send(mav.param_request_list_encode(1, 1))

        def listed() -> set[str]:
            return {m.param_id for m in gcs.messages[since:] if m.get_type() == "PARAM_VALUE"}

        await eventually(lambda: len(listed()) >= len(PX4_PARAMS), 10)
        assert listed() == {d.name for d in PX4_PARAMS}
