"""MAVSDK conformance scenarios against sim drones, one scenario per process.

Run as ``python -m tests.conformance.mavsdk_scenarios NAME``: the process starts its own sim
fleet on free UDP ports with an accelerated clock, drives it through ``mavsdk.asyncio`` (the
ctypes binding of the MAVSDK C++ library, an independent MAVLink implementation) and exits 0
when every check passed. mavsdk 4.1 aborts the whole process (``std::future_error``) when a
mode change it sends before arming is denied or unanswered, so :mod:`test_mavsdk` runs each
scenario in its own subprocess: such an abort fails that scenario only.

Time runs at :data:`SPEED` times real time. MAVSDK sends its ground-station heartbeat at 1 Hz
of *real* time, so the speed must stay well under ``COM_DL_LOSS_T`` (10 s) or the vehicle
declares the data link lost, exactly as PX4 SITL with ``PX4_SIM_SPEED_FACTOR`` would.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mavsdk.asyncio import ComponentType, Configuration, Mavsdk, System
from mavsdk.asyncio.plugins.action import ActionAsync
from mavsdk.asyncio.plugins.geofence import GeofenceAsync
from mavsdk.asyncio.plugins.mission import MissionAsync
from mavsdk.asyncio.plugins.mission_raw import MissionRawAsync
from mavsdk.asyncio.plugins.param import ParamAsync
from mavsdk.asyncio.plugins.telemetry import TelemetryAsync
from mavsdk.plugins.geofence import Circle, FenceType, GeofenceData, Point, Polygon
from mavsdk.plugins.mission import MissionItem, MissionPlan
from mavsdk.plugins.mission_raw import MissionItem as RawItem
from mavsdk.plugins.telemetry import FlightMode, LandedState
from pymavlink.dialects.v20 import common as mavlink

from fleet.clock import AcceleratedClock
from fleet.geo import LatLon, distance_m, offset_latlon
from sim.drone.autopilot import Home
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.support import free_udp_ports

SPEED = 4.0
"""World seconds per real second in these scenarios."""
HOME = Home(22.5273, 114.0544, 12.0)
"""Home of the first vehicle."""


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


async def until(pred: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``pred`` until true; fail after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def judged(d: Drone, total: int | None, timeout: float = 30.0) -> None:
    """Wait for the vehicle's verdict on the plan just uploaded, as a ground station must on
    PX4: its mission manager reports MISSION_CURRENT seq 65535 until the navigator has taken the
    new plan up (about a second on PX4 SITL), and MISSION_START before that is DENIED.
    ``total``: the raw item count (None when MAVSDK's mission plugin chose it)."""

    async def taken_up() -> None:
        progress = (
            d.raw.subscribe_mission_progress()
            if total is not None
            else d.mission.subscribe_mission_progress()
        )
        async for p in progress:
            if (total is None or p.total == total) and 0 <= p.current < p.total:
                return

    await asyncio.wait_for(taken_up(), timeout)


class Drone:
    """The MAVSDK plugins of one system."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.action = ActionAsync(system)
        self.telemetry = TelemetryAsync(system)
        self.mission = MissionAsync(system)
        self.raw = MissionRawAsync(system)
        self.param = ParamAsync(system)
        self.geofence = GeofenceAsync(system)

    async def ready(self, timeout: float = 20.0) -> None:
        """health_all_ok and armable (the pre-arm bit needs our heartbeat to have arrived)."""

        async def ok() -> bool:
            return bool(await self.telemetry.health_all_ok()) and bool(
                (await self.telemetry.health()).is_armable
            )

        await until(ok, timeout, "health_all_ok and armable")

    async def rel_alt(self) -> float:
        return float((await self.telemetry.position()).relative_altitude_m)

    async def wait_disarmed(self, timeout: float = 60.0) -> None:
        async def disarmed() -> bool:
            return not await self.telemetry.armed()

        await until(disarmed, timeout, "disarmed")


async def connect(mavsdk: Mavsdk, port: int, count: int = 1) -> list[Drone]:
    await mavsdk.add_any_connection(f"udpin://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while True:
        systems = [s for s in await mavsdk.get_systems() if await s.has_autopilot()]
        if len(systems) >= count:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(systems)} of {count} systems discovered")
        await asyncio.sleep(0.1)
    by_id = {await s.get_system_id(): s for s in systems}
    return [Drone(by_id[k]) for k in sorted(by_id)]


Scenario = Callable[[SimFleet, list[Drone]], Awaitable[None]]
SCENARIOS: dict[str, tuple[int, Scenario]] = {}


def scenario(vehicles: int = 1) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[fn.__name__] = (vehicles, fn)
        return fn

    return register


# --- scenarios ---------------------------------------------------------------------------


@scenario()
async def takeoff_and_land(fleet: SimFleet, drones: list[Drone]) -> None:
    """Issue 2: connect, health_all_ok, arm, take off to 10 m, land."""
    d, v = drones[0], fleet[0]
    await d.ready()
    await d.action.set_takeoff_altitude(10.0)
    check(abs(await d.action.get_takeoff_altitude() - 10.0) < 1e-3, "takeoff altitude set")
    await d.action.arm()
    await d.action.takeoff()

    async def at_10m() -> bool:
        return await d.rel_alt() >= 9.2 and await d.telemetry.flight_mode() == FlightMode.HOLD

    await until(at_10m, 30, "hovering at 10 m in Hold")
    check(await d.telemetry.in_air(), "in air")
    check(await d.rel_alt() < 10.8, "no overshoot above 10 m")
    await d.action.land()
    await d.wait_disarmed()
    check(await d.telemetry.landed_state() == LandedState.ON_GROUND, "landed state on ground")
    landing = v.truth.landings[-1]
    check(landing.distance_to(LatLon(HOME.lat, HOME.lon)) < 1.0, "landed where it took off")
    check("land" in v.truth.modes, "went through Land mode")


@scenario()
async def telemetry(fleet: SimFleet, drones: list[Drone]) -> None:
    """Position, battery, flight mode, in_air and landed state, on the ground and in the air."""
    d = drones[0]
    await d.ready()
    pos = await d.telemetry.position()
    check(
        distance_m(LatLon(HOME.lat, HOME.lon), LatLon(pos.latitude_deg, pos.longitude_deg)) < 0.5,
        "position at home",
    )
    check(abs(pos.absolute_altitude_m - HOME.alt) < 0.5, "AMSL altitude = ground")
    bat = await d.telemetry.battery()
    check(95.0 <= bat.remaining_percent <= 100.0, f"battery full ({bat.remaining_percent})")
    check(14.0 < bat.voltage_v < 17.0, "4S voltage")
    check(await d.telemetry.flight_mode() == FlightMode.HOLD, "boots in Hold")
    check(not await d.telemetry.in_air(), "not in air")
    check(await d.telemetry.landed_state() == LandedState.ON_GROUND, "on ground")
    home = await d.telemetry.home()
    check(abs(home.latitude_deg - HOME.lat) < 1e-6, "home position")
    await d.action.arm()

    async def armed() -> bool:
        return bool(await d.telemetry.armed())

    await until(armed, 5, "armed reported")
    await d.action.takeoff()

    async def flying() -> bool:
        return (
            bool(await d.telemetry.in_air())
            and await d.telemetry.landed_state() == LandedState.IN_AIR
        )

    await until(flying, 30, "in air")
    await d.action.land()
    await d.wait_disarmed()


@scenario()
async def mission_transfer(fleet: SimFleet, drones: list[Drone]) -> None:
    """Upload, download and clear a mission (mission plugin)."""
    d = drones[0]
    await d.ready()
    pts = [offset_latlon(HOME.lat, HOME.lon, e, n) for e, n in ((0, 40), (40, 40), (40, 0))]
    items = [
        MissionItem(
            lat,
            lon,
            15.0,
            5.0,
            True,
            math.nan,
            math.nan,
            MissionItem.CameraAction.NONE,
            math.nan,
            1.0,
            math.nan,
            math.nan,
            math.nan,
            MissionItem.VehicleAction.NONE,
        )
        for lat, lon in pts
    ]
    await d.mission.upload_mission(MissionPlan(items))
    plan = await d.mission.download_mission()
    check(len(plan.mission_items) == 3, f"3 items back, got {len(plan.mission_items)}")
    for a, b in zip(plan.mission_items, items, strict=True):
        check(
            abs(a.latitude_deg - b.latitude_deg) < 1e-6
            and abs(a.relative_altitude_m - 15.0) < 1e-3,
            "item round trip",
        )
    check(len(fleet[0].missions.plans[0]) >= 3, "sim stored the mission")
    await d.mission.clear_mission()
    plan = await d.mission.download_mission()
    check(len(plan.mission_items) == 0, "cleared")
    raw = await d.raw.download_mission()
    check(len(raw) == 0, "raw download empty after clear")


def _raw(
    seq: int,
    frame: int,
    cmd: int,
    p: tuple[float, float, float, float],
    lat: float,
    lon: float,
    alt: float,
) -> RawItem:
    if frame == mavlink.MAV_FRAME_MISSION:
        x, y = int(lat), int(lon)
    else:
        x, y = round(lat * 1e7), round(lon * 1e7)
    return RawItem(seq, frame, cmd, 1 if seq == 0 else 0, 1, *p, x, y, alt, 0)


@scenario()
async def mission_delivery(fleet: SimFleet, drones: list[Drone]) -> None:
    """A delivery mission with DO_GRIPPER, run to the end and followed through progress."""
    d, v = drones[0], fleet[0]
    await d.ready()
    drop = offset_latlon(HOME.lat, HOME.lon, 60.0, 80.0)
    rel = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    mis = mavlink.MAV_FRAME_MISSION
    items = [
        _raw(0, rel, mavlink.MAV_CMD_NAV_TAKEOFF, (0, 0, 0, math.nan), HOME.lat, HOME.lon, 20.0),
        _raw(1, rel, mavlink.MAV_CMD_NAV_WAYPOINT, (0, 1.0, 0, math.nan), drop[0], drop[1], 20.0),
        _raw(2, rel, mavlink.MAV_CMD_NAV_WAYPOINT, (0, 1.0, 0, math.nan), drop[0], drop[1], 5.0),
        _raw(
            3, mis, mavlink.MAV_CMD_DO_GRIPPER, (1, mavlink.GRIPPER_ACTION_RELEASE, 0, 0), 0, 0, 0
        ),
        _raw(4, rel, mavlink.MAV_CMD_NAV_WAYPOINT, (2.0, 1.0, 0, math.nan), drop[0], drop[1], 5.0),
        _raw(5, mis, mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, (0, 0, 0, 0), 0, 0, 0),
    ]
    await d.param.set_param_float("RTL_RETURN_ALT", 20.0)
    await d.raw.upload_mission(items)
    back = await d.raw.download_mission()
    check([i.command for i in back] == [i.command for i in items], "raw round trip")
    await judged(d, len(items))
    await d.action.arm()
    await d.raw.start_mission()
    seen: list[tuple[int, int]] = []

    async def follow() -> None:
        async for p in d.raw.subscribe_mission_progress():
            seen.append((p.current, p.total))
            if p.current == p.total:
                return

    await asyncio.wait_for(follow(), 90)
    check(seen[-1] == (6, 6), f"progress reached the end: {seen[-6:]}")
    await d.wait_disarmed(90)
    rel_events = v.truth.releases
    check(len(rel_events) == 1, "released once")
    check(
        rel_events[0].distance_to(LatLon(*drop)) < 5.0,
        f"released within 5 m of the drop point ({rel_events[0].distance_to(LatLon(*drop)):.1f} m)",
    )
    check(rel_events[0].rel_alt < 6.0, "released low")
    check(v.truth.landings[-1].distance_to(LatLon(HOME.lat, HOME.lon)) < 2.0, "landed back home")
    check("rtl" in v.truth.modes, "returned")


@scenario()
async def mission_plugin_run(fleet: SimFleet, drones: list[Drone]) -> None:
    """The mission plugin's own flow: upload, start, progress, is_mission_finished."""
    d = drones[0]
    await d.ready()
    pts = [offset_latlon(HOME.lat, HOME.lon, e, n) for e, n in ((0, 30), (30, 30))]
    items = [
        MissionItem(
            lat,
            lon,
            10.0,
            5.0,
            False,
            math.nan,
            math.nan,
            MissionItem.CameraAction.NONE,
            math.nan,
            1.0,
            math.nan,
            math.nan,
            math.nan,
            MissionItem.VehicleAction.NONE,
        )
        for lat, lon in pts
    ]
    await d.mission.set_return_to_launch_after_mission(False)
    await d.action.set_return_to_launch_altitude(12.0)
    await d.mission.upload_mission(MissionPlan(items))
    await judged(d, None)
    await d.action.arm()
    await d.mission.start_mission()

    async def finished() -> bool:
        return bool(await d.mission.is_mission_finished())

    await until(finished, 60, "mission finished")
    prog = await d.mission.mission_progress()
    check(prog.total == 2, f"total 2 ({prog.total})")
    check(await d.telemetry.in_air(), "still flying after the last waypoint")
    await d.action.return_to_launch()
    await d.wait_disarmed(90)


@scenario()
async def return_to_launch(fleet: SimFleet, drones: list[Drone]) -> None:
    """Take off, fly away, RTL: climbs to RTL_RETURN_ALT, comes home, lands, disarms."""
    d, v = drones[0], fleet[0]
    await d.ready()
    await d.param.set_param_float("RTL_RETURN_ALT", 25.0)
    await d.action.arm()
    await d.action.takeoff()

    async def hovering() -> bool:
        return await d.telemetry.flight_mode() == FlightMode.HOLD and await d.rel_alt() > 1.5

    await until(hovering, 30, "hovering")
    lat, lon = offset_latlon(HOME.lat, HOME.lon, 50.0, 0.0)
    await d.action.goto_location(lat, lon, HOME.alt + 15.0, math.nan)

    async def away() -> bool:
        p = await d.telemetry.position()
        return distance_m(LatLon(lat, lon), LatLon(p.latitude_deg, p.longitude_deg)) < 3.0

    await until(away, 40, "at the goto point")
    await d.action.return_to_launch()
    max_alt = 0.0

    async def home_and_down() -> bool:
        nonlocal max_alt
        max_alt = max(max_alt, await d.rel_alt())
        return not await d.telemetry.armed()

    await until(home_and_down, 90, "landed and disarmed")
    check(max_alt > 24.0, f"climbed to RTL_RETURN_ALT first ({max_alt:.1f} m)")
    check(v.truth.landings[-1].distance_to(LatLon(HOME.lat, HOME.lon)) < 2.0, "landed at home")


@scenario()
async def geofence(fleet: SimFleet, drones: list[Drone]) -> None:
    """Geofence upload (polygon and circle) and download through mission_raw."""
    d, v = drones[0], fleet[0]
    await d.ready()
    corners = [
        offset_latlon(HOME.lat, HOME.lon, e, n)
        for e, n in ((-200, -200), (200, -200), (200, 200), (-200, 200))
    ]
    poly = Polygon([Point(lat, lon) for lat, lon in corners], FenceType.INCLUSION)
    c_lat, c_lon = offset_latlon(HOME.lat, HOME.lon, 100.0, 100.0)
    circle = Circle(Point(c_lat, c_lon), 30.0, FenceType.EXCLUSION)
    await d.geofence.upload_geofence(GeofenceData([poly], [circle]))
    items = await d.raw.download_geofence()
    check(len(items) == 5, f"4 vertices + 1 circle, got {len(items)}")
    check(not v.ap.fence.empty, "sim stored the fence")
    check(not v.ap.fence.inside_areas(c_lat, c_lon), "circle excludes")
    out = offset_latlon(HOME.lat, HOME.lon, 300.0, 0.0)
    check(not v.ap.fence.inside_areas(*out), "polygon includes only its inside")
    check(v.ap.fence.inside_areas(HOME.lat, HOME.lon), "home inside")
    await d.geofence.clear_geofence()
    check(v.ap.fence.empty, "cleared")


@scenario()
async def infeasible_mission(fleet: SimFleet, drones: list[Drone]) -> None:
    """A waypoint outside the fence: upload accepted, start refused, vehicle stays on the ground."""
    d, v = drones[0], fleet[0]
    await d.ready()
    corners = [
        offset_latlon(HOME.lat, HOME.lon, e, n)
        for e, n in ((-100, -100), (100, -100), (100, 100), (-100, 100))
    ]
    await d.geofence.upload_geofence(
        GeofenceData([Polygon([Point(lat, lon) for lat, lon in corners], FenceType.INCLUSION)], [])
    )
    rel = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    inside = offset_latlon(HOME.lat, HOME.lon, 0.0, 50.0)
    outside = offset_latlon(HOME.lat, HOME.lon, 0.0, 300.0)
    items = [
        _raw(0, rel, mavlink.MAV_CMD_NAV_WAYPOINT, (0, 1.0, 0, math.nan), *inside, 10.0),
        _raw(1, rel, mavlink.MAV_CMD_NAV_WAYPOINT, (0, 1.0, 0, math.nan), *outside, 10.0),
    ]
    await d.raw.upload_mission(items)  # MISSION_ACK ACCEPTED, as on PX4
    await judged(d, len(items))
    check(not v.ap.result.valid, "mission marked invalid")
    try:
        await d.raw.start_mission()
    except Exception as e:  # MissionRawError
        check("DENIED" in str(e) or "REJECTED" in str(e), f"refused: {e}")
    else:
        raise AssertionError("an infeasible mission started")
    check(not await d.telemetry.armed(), "still disarmed")


@scenario()
async def parameters(fleet: SimFleet, drones: list[Drone]) -> None:
    """Parameter get/set with PX4 defaults, int32 and float."""
    d = drones[0]
    await d.ready()
    check(
        abs(await d.param.get_param_float("MIS_TAKEOFF_ALT") - 2.5) < 1e-6,
        "MIS_TAKEOFF_ALT default",
    )
    check(await d.param.get_param_int("NAV_DLL_ACT") == 0, "NAV_DLL_ACT default")
    check(await d.param.get_param_int("COM_LOW_BAT_ACT") == 3, "COM_LOW_BAT_ACT default")
    check(
        abs(await d.param.get_param_float("COM_DISARM_PRFLT") - 10.0) < 1e-6,
        "COM_DISARM_PRFLT default",
    )
    await d.param.set_param_int("NAV_DLL_ACT", 2)
    check(await d.param.get_param_int("NAV_DLL_ACT") == 2, "int32 set")
    check(fleet[0].params["NAV_DLL_ACT"] == 2, "sim holds the int value (bytewise)")
    await d.param.set_param_float("RTL_RETURN_ALT", 42.5)
    check(abs(await d.param.get_param_float("RTL_RETURN_ALT") - 42.5) < 1e-6, "float set")
    try:
        await d.param.get_param_float("NO_SUCH_PARAM")
    except Exception as e:  # ParamError
        check("NO_SUCH_PARAM" not in str(fleet[0].params._values), f"unknown rejected: {e}")
    else:
        raise AssertionError("unknown parameter read succeeded")
    all_params = await d.param.get_all_params()
    names = {p.name for p in all_params.int_params} | {p.name for p in all_params.float_params}
    check({"MIS_TAKEOFF_ALT", "NAV_DLL_ACT", "GF_ACTION", "BAT_CRIT_THR"} <= names, "listed")


@scenario(vehicles=10)
async def ten_vehicles(fleet: SimFleet, drones: list[Drone]) -> None:
    """Ten vehicles from one MAVSDK instance: all ready, all take off, all land."""
    check(len(drones) == 10, "ten systems")
    await asyncio.gather(*(d.ready(40) for d in drones))
    for d in drones:
        await d.action.arm()
    await asyncio.gather(*(d.action.takeoff() for d in drones))

    async def all_up() -> bool:
        for d in drones:
            if await d.rel_alt() < 1.5:
                return False
        return True

    await until(all_up, 40, "all ten airborne")
    await asyncio.gather(*(d.action.land() for d in drones))
    await asyncio.gather(*(d.wait_disarmed(60) for d in drones))
    for v in fleet.vehicles:
        check(len(v.truth.of(TruthKind.LANDING)) == 1, f"{v.vehicle_id} landed once")


async def run(name: str) -> None:
    vehicles, fn = SCENARIOS[name]
    port = free_udp_ports(1)
    clock = AcceleratedClock(SPEED)
    cfg = Configuration.create_with_component_type(ComponentType.GROUND_STATION)
    async with (
        SimFleet(
            vehicles, clock=clock, first_port=port, port_mode="shared", homes=None, ready_delay=2.0
        ) as fleet,
        Mavsdk(cfg) as mavsdk,
    ):
        drones = await connect(mavsdk, port, vehicles)
        await fn(fleet, drones)
    print(f"scenario {name}: ok")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in SCENARIOS:
        print(f"usage: {argv[0]} {{{','.join(SCENARIOS)}}}", file=sys.stderr)
        return 2
    asyncio.run(run(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


__all__: list[Any] = ["SCENARIOS"]
