"""Pure rules without sockets: item acceptance, fence geometry, feasibility, mode mapping."""

from __future__ import annotations

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.mission_items import MissionItem
from fleet.geo import offset_latlon
from sim.drone.feasibility import check_mission
from sim.drone.fence import Fence, breach_reason
from sim.drone.mission_items import check_item
from sim.drone.modes import Nav, nav_for

LAT, LON = 22.5273, 114.0544
REL = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT
REL_INT = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
MIS = mavlink.MAV_FRAME_MISSION


def item(
    seq: int,
    frame: int,
    cmd: int,
    east: float = 0,
    north: float = 0,
    alt: float = 10,
    p1: float = 0,
) -> MissionItem:
    del seq  # the item's place in its plan (a wire item carries no sequence number)
    lat, lon = offset_latlon(LAT, LON, east, north)
    return MissionItem(cmd, frame, param1=p1, x=round(lat * 1e7), y=round(lon * 1e7), z=alt)


def test_item_frames_as_px4_parses_them() -> None:
    ok = int(mavlink.MAV_MISSION_ACCEPTED)
    assert check_item(item(0, REL, mavlink.MAV_CMD_NAV_WAYPOINT), int_mode=False) == ok
    assert check_item(item(0, REL_INT, mavlink.MAV_CMD_NAV_WAYPOINT), int_mode=True) == ok
    assert (
        check_item(item(0, REL_INT, mavlink.MAV_CMD_NAV_WAYPOINT), int_mode=False)
        == mavlink.MAV_MISSION_UNSUPPORTED_FRAME
    )
    assert check_item(item(0, MIS, mavlink.MAV_CMD_DO_GRIPPER), int_mode=True) == ok
    assert check_item(item(0, MIS, mavlink.MAV_CMD_DO_WINCH), int_mode=True) == ok
    assert (
        check_item(item(0, REL, mavlink.MAV_CMD_DO_GRIPPER), int_mode=True)
        == mavlink.MAV_MISSION_UNSUPPORTED
    )
    assert (
        check_item(item(0, MIS, mavlink.MAV_CMD_NAV_RALLY_POINT), int_mode=True)
        == mavlink.MAV_MISSION_UNSUPPORTED
    )
    assert check_item(item(0, REL, mavlink.MAV_CMD_NAV_RALLY_POINT), int_mode=True) == ok
    assert (
        check_item(
            item(0, mavlink.MAV_FRAME_LOCAL_NED, mavlink.MAV_CMD_NAV_WAYPOINT), int_mode=True
        )
        == mavlink.MAV_MISSION_UNSUPPORTED_FRAME
    )
    assert (
        check_item(
            item(0, MIS, mavlink.MAV_CMD_DO_SET_ROI, p1=mavlink.MAV_ROI_TARGET), int_mode=True
        )
        == mavlink.MAV_MISSION_INVALID_PARAM1
    )


def _square(half: float, cmd: int) -> list[MissionItem]:
    corners = ((-half, -half), (half, -half), (half, half), (-half, half))
    return [item(i, REL, cmd, e, n, 0, p1=4) for i, (e, n) in enumerate(corners)]


def test_fence_inclusion_exclusion_and_limits() -> None:
    inc = _square(100, mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION)
    exc = [item(4, REL, mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, 50, 50, 0, p1=10)]
    f = Fence(inc + exc)
    assert f.inside_areas(LAT, LON)
    assert not f.inside_areas(*offset_latlon(LAT, LON, 150, 0))
    assert not f.inside_areas(*offset_latlon(LAT, LON, 52, 48))
    assert f.inside_areas(*offset_latlon(LAT, LON, 65, 50))
    assert Fence().inside_areas(LAT, LON)
    assert breach_reason(Fence(), LAT, LON, 50.0, 10.0, 0, 40.0) == "maximum altitude exceeded"
    assert (
        breach_reason(Fence(), LAT, LON, 10.0, 50.0, 40.0, 0)
        == "maximum distance from home exceeded"
    )
    assert breach_reason(f, LAT, LON, 10.0, 10.0, 0, 0) is None
    # two inclusion areas: inside either is fine
    other = [
        item(5 + i, REL, mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, 300, 0, 0, p1=30)
        for i in range(1)
    ]
    assert Fence(inc + other).inside_areas(*offset_latlon(LAT, LON, 300, 10))


def test_feasibility() -> None:
    fence = Fence(_square(100, mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION))
    home = (LAT, LON, 12.0)
    good = [
        item(0, REL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 50),
        item(1, REL, mavlink.MAV_CMD_NAV_WAYPOINT, 50, 50),
    ]
    assert check_mission(good, home, fence, 0, 0, 900).valid
    bad = [*good, item(2, REL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 200)]
    r = check_mission(bad, home, fence, 0, 0, 900)
    assert not r.valid and r.reason == "Geofence violation for waypoint 3"
    # PX4 (v1.14+): a far first waypoint is a warning, the plan stays valid
    far = [item(0, REL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 1500)]
    r = check_mission(far, home, Fence(), 0, 0, 900)
    assert r.valid and r.reason == ""
    [warning] = r.reports
    assert (warning.event, warning.values, warning.level) == (
        "navigator_mis_first_wp_far",
        (1500,),
        4,
    )
    assert warning.text == "First waypoint far away from home: 1500m. Correct mission loaded?"
    assert check_mission(far, home, Fence(), 0, 0, 0).reports == ()
    # GF_MAX_HOR_DIST: PX4 keeps a waypoint only while it is *closer* than the limit
    assert check_mission(far, home, Fence(), 1500.0, 0, 0).reason == (
        "Geofence violation for waypoint 1"
    )
    assert check_mission(far, home, Fence(), 1501.0, 0, 0).valid
    jump = [*good, item(2, MIS, mavlink.MAV_CMD_DO_JUMP, p1=7)]
    assert not check_mission(jump, home, fence, 0, 0, 900).valid
    assert not check_mission(good, None, fence, 0, 0, 900).valid
    high = [item(0, REL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 50, alt=80)]
    assert not check_mission(high, home, Fence(), 0, 60.0, 900).valid


def test_do_set_mode_mapping() -> None:
    assert nav_for(4, 3) is Nav.HOLD
    assert nav_for(4, 4) is Nav.MISSION
    assert nav_for(4, 5) is Nav.RTL
    assert nav_for(4, 6) is Nav.LAND
    assert nav_for(4, 2) is Nav.TAKEOFF
    assert nav_for(4, 0) is Nav.HOLD
    assert nav_for(3, 7) is Nav.POSCTL  # sub mode ignored outside AUTO
    assert nav_for(6, 0) is None  # offboard
    assert nav_for(42, 0) is None
