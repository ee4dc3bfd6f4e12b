"""Failsafes with PX4's parameters and timings, in accelerated world time.

Times are read from the vehicle's ground truth (world seconds), so the checks hold at any clock
speed; the simulation loop steps 0.4 world seconds at 20x, hence the tolerances.
"""

from __future__ import annotations

from pymavlink.dialects.v20 import common as mavlink

from fleet.geo import LatLon, offset_latlon
from sim.drone.vehicle import SimVehicle
from sim.truth import TruthKind
from tests.support import eventually
from tests.unit.sim.gcs import Gcs
from tests.unit.sim.harness import HOME, fleet_and_gcs

TOL = 0.6


async def airborne(v: SimVehicle, gcs: Gcs, alt: float = 10.0) -> None:
    await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
    assert (await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)).result == 0
    assert (
        await gcs.command(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, float("nan"), 0, 0, HOME.alt + alt)
    ).result == 0
    await eventually(lambda: v.ap.nav.name == "HOLD" and v.ap.in_air, 15)


def mode_time(v: SimVehicle, mode: str, after: float) -> float:
    return next(e.t for e in v.truth.of(TruthKind.MODE) if e.detail == mode and e.t >= after)


async def test_data_link_loss_holds_then_returns() -> None:
    async with fleet_and_gcs(1, params={"NAV_DLL_ACT": 2}) as (fleet, gcs):
        v = fleet[0]
        await airborne(v, gcs)
        gcs.stop_heartbeats()
        await eventually(lambda: v.truth.failsafes, 5)
        last_hb = v.ap.last_gcs_heartbeat
        assert last_hb is not None
        fs = v.truth.failsafes[0]
        assert "data link" in fs.detail and fs.detail.endswith("rtl")
        assert abs(fs.t - last_hb - 10.0) <= TOL  # COM_DL_LOSS_T
        await eventually(lambda: v.ap.nav.name == "RTL", 5)
        assert abs(mode_time(v, "rtl", fs.t) - fs.t - 5.0) <= TOL  # COM_FAIL_ACT_T in Hold
        between = [
            e.detail
            for e in v.truth.of(TruthKind.MODE)
            if fs.t - TOL <= e.t < mode_time(v, "rtl", fs.t)
        ]
        assert set(between) <= {"hold"}  # held (it already hovered in Hold)
        await eventually(lambda: not v.ap.armed, 20)
        assert v.truth.landings[-1].distance_to(LatLon(HOME.lat, HOME.lon)) < 1.5


async def test_data_link_loss_is_ignored_by_default() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        await airborne(v, gcs)
        gcs.stop_heartbeats()
        t0 = v.now()
        await eventually(lambda: v.now() - t0 > 16.0, 5)
        assert v.ap.gcs_lost
        assert not v.truth.failsafes
        assert v.ap.nav.name == "HOLD" and v.ap.in_air


async def test_battery_low_critical_emergency_and_home_moves() -> None:
    async with fleet_and_gcs(1, params={"RTL_RETURN_ALT": 15.0}) as (fleet, gcs):
        v = fleet[0]
        await airborne(v, gcs)
        lat, lon = offset_latlon(HOME.lat, HOME.lon, 60.0, 0.0)
        ack = await gcs.command(
            mavlink.MAV_CMD_DO_REPOSITION, -1, 0, 0, float("nan"), lat, lon, HOME.alt + 10
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await eventually(lambda: v.ap.kin.x > 58.0, 20)
        since = gcs.mark()
        v.set_battery(0.12)
        await gcs.wait_for("STATUSTEXT", lambda m: "Low battery" in m.text, since=since)
        assert not v.truth.failsafes
        v.set_battery(0.065)
        await eventually(lambda: v.truth.failsafes, 5)
        crit = v.truth.failsafes[0]
        assert "critical battery" in crit.detail
        await eventually(lambda: v.ap.nav.name == "RTL", 5)
        assert abs(mode_time(v, "rtl", crit.t) - crit.t - 5.0) <= TOL
        v.set_battery(0.045)
        await eventually(lambda: v.ap.nav.name == "LAND", 5)
        emerg = v.truth.failsafes[-1]
        assert "emergency battery" in emerg.detail
        assert mode_time(v, "land", emerg.t) - emerg.t <= TOL  # no delay
        await eventually(lambda: not v.ap.armed, 30)
        landing = v.truth.landings[-1]
        assert landing.distance_to(LatLon(HOME.lat, HOME.lon)) > 10.0
        home = await gcs.wait_for("HOME_POSITION", since=gcs.mark(), timeout=10)
        assert LatLon(home.latitude * 1e-7, home.longitude * 1e-7) == LatLon(
            round(landing.lat * 1e7) * 1e-7, round(landing.lon * 1e7) * 1e-7
        )
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED  # battery too low


async def test_geofence_breach_holds_then_takes_gf_action() -> None:
    async with fleet_and_gcs(1, params={"GF_MAX_HOR_DIST": 30.0, "GF_ACTION": 3}) as (fleet, gcs):
        v = fleet[0]
        await airborne(v, gcs)
        lat, lon = offset_latlon(HOME.lat, HOME.lon, 0.0, 80.0)
        await gcs.command(
            mavlink.MAV_CMD_DO_REPOSITION, -1, 0, 0, float("nan"), lat, lon, HOME.alt + 10
        )
        await eventually(lambda: v.truth.failsafes, 20)
        fs = v.truth.failsafes[0]
        assert "geofence" in fs.detail
        assert 29.0 < fs.distance_to(LatLon(HOME.lat, HOME.lon)) < 33.0
        await eventually(lambda: v.ap.nav.name == "RTL", 10)
        assert abs(mode_time(v, "rtl", fs.t) - fs.t - 5.0) <= TOL
        await eventually(lambda: not v.ap.armed, 30)


async def test_geofence_default_action_is_hold() -> None:
    async with fleet_and_gcs(1, params={"GF_MAX_VER_DIST": 15.0}) as (fleet, gcs):
        v = fleet[0]
        await airborne(v, gcs)
        ack = await gcs.command(
            mavlink.MAV_CMD_DO_REPOSITION, -1, 0, 0, float("nan"), HOME.lat, HOME.lon, HOME.alt + 30
        )
        assert ack.result == 0
        await eventually(lambda: v.truth.failsafes, 20)
        t = v.truth.failsafes[0].t
        await eventually(lambda: v.now() > t + 7.0, 5)
        assert v.ap.nav.name == "HOLD" and v.ap.in_air
        assert v.ap.rel_alt() < 17.0


async def test_gps_loss_lands_in_place() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        await airborne(v, gcs)
        v.set_gps_lost(True)
        await eventually(lambda: v.ap.nav.name == "LAND", 5)
        st = await gcs.wait_for("SYS_STATUS", since=gcs.mark())
        assert not st.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_SENSOR_GPS
        await eventually(lambda: not v.ap.armed, 30)


async def test_link_down_fault_stops_traffic_both_ways() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        v.set_link_down(True)
        sent = v.sent_datagrams
        since_rx = v.received_messages
        t0 = v.now()
        await eventually(lambda: v.now() - t0 > 3.0, 5)  # GCS heartbeats keep arriving
        assert v.sent_datagrams == sent
        assert v.received_messages == since_rx
        assert v.truth.of(TruthKind.FAULT)[-1].detail == "data link down"
        v.set_link_down(False)
        await gcs.wait_for("HEARTBEAT", since=gcs.mark())
