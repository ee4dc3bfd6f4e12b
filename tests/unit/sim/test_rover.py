"""The Ackermann rover: MAV_TYPE_GROUND_ROVER, same modes, missions on the ground."""

from __future__ import annotations

from pymavlink.dialects.v20 import common as mavlink

from fleet.geo import LatLon, offset_latlon
from sim.truth import TruthKind
from tests.support import eventually
from tests.unit.sim.harness import HOME, fleet_and_gcs

REL = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
NAN = float("nan")


async def test_rover_mission_ends_in_hold_armed_and_rtl_disarms() -> None:
    async with fleet_and_gcs(0, rovers=1, speed=20.0) as (fleet, gcs):
        v = fleet[0]
        hb = await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert (
            hb.type == mavlink.MAV_TYPE_GROUND_ROVER and hb.autopilot == mavlink.MAV_AUTOPILOT_PX4
        )
        a = offset_latlon(HOME.lat, HOME.lon, 0.0, 30.0)
        b = offset_latlon(HOME.lat, HOME.lon, 25.0, 30.0)
        plan = [
            (REL, mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, NAN, *a, 5),  # a waypoint for a rover
            (REL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 0, 0, NAN, *b, 0),
        ]
        assert (await gcs.upload(plan)).type == mavlink.MAV_MISSION_ACCEPTED
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        assert (await gcs.command(mavlink.MAV_CMD_MISSION_START, 0, 0)).result == 0
        done = await gcs.wait_for("MISSION_CURRENT", lambda m: m.mission_state == 5, timeout=20)
        assert done.total == 2
        await eventually(lambda: v.ap.nav.name == "HOLD", 5)
        assert v.ap.armed  # a rover ends its mission in Hold, still armed
        reached = v.truth.of(TruthKind.ITEM_REACHED)
        assert (
            reached[0].distance_to(LatLon(*a)) <= 2.0 and reached[1].distance_to(LatLon(*b)) <= 2.0
        )
        assert all(abs(e.rel_alt) < 1e-6 for e in v.truth.events)
        # PX4's rover land detector: armed and not in Land mode is "not landed"
        ext = await gcs.wait_for("EXTENDED_SYS_STATE", since=gcs.mark())
        assert ext.landed_state == mavlink.MAV_LANDED_STATE_IN_AIR
        assert (await gcs.command(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)).result == 0
        await eventually(lambda: not v.ap.armed, 20)
        lat, lon = v.ap.latlon()
        assert (
            LatLon(lat, lon)
            and v.truth.of(TruthKind.DISARMED)[-1].distance_to(LatLon(HOME.lat, HOME.lon)) <= 2.5
        )


async def test_rover_disarm_rules_follow_px4s_rover_land_detector() -> None:
    """Armed, a PX4 rover is never 'landed': no preflight auto-disarm however long it stands,
    EXTENDED_SYS_STATE says IN_AIR. NAV_LAND stops it, its land detector reports landed and
    the commander disarms it COM_DISARM_LAND (2 s) later."""
    async with fleet_and_gcs(0, rovers=1, speed=20.0) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        ext = await gcs.wait_for("EXTENDED_SYS_STATE", since=gcs.mark())
        assert ext.landed_state == mavlink.MAV_LANDED_STATE_ON_GROUND  # disarmed
        assert (await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)).result == 0
        armed_at = v.now()
        prflt = v.params["COM_DISARM_PRFLT"]
        await eventually(lambda: v.now() - armed_at > prflt + 2.0, 5)
        assert v.ap.armed  # a multicopter would have disarmed after COM_DISARM_PRFLT
        ext = await gcs.wait_for("EXTENDED_SYS_STATE", since=gcs.mark())
        assert ext.landed_state == mavlink.MAV_LANDED_STATE_IN_AIR
        ack = await gcs.command(mavlink.MAV_CMD_NAV_LAND, 0, 0, 0, NAN, NAN, NAN, NAN)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        landed_at = v.now()
        ext = await gcs.wait_for("EXTENDED_SYS_STATE", since=gcs.mark())
        assert ext.landed_state == mavlink.MAV_LANDED_STATE_ON_GROUND
        await eventually(lambda: not v.ap.armed, 5)
        waited = v.truth.of(TruthKind.DISARMED)[-1].t - landed_at
        assert v.params["COM_DISARM_LAND"] <= waited <= v.params["COM_DISARM_LAND"] + 1.0
        assert "auto disarm on land" in v.truth.of(TruthKind.DISARMED)[-1].detail
