"""Heartbeat, health and the command protocol over real UDP, as PX4 SITL answers them."""

from __future__ import annotations

import math

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.px4 import AutoSubMode, MainMode, decode_custom_mode
from tests.support import eventually
from tests.unit.sim.harness import fleet_and_gcs

NAN = math.nan


async def test_heartbeat_mode_encoding_and_health() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        hb = await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert hb.get_srcComponent() == 1
        assert hb.autopilot == mavlink.MAV_AUTOPILOT_PX4
        assert hb.type == mavlink.MAV_TYPE_QUADROTOR
        assert hb.base_mode & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        assert not hb.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
        assert hb.custom_mode == (4 << 16) | (3 << 24)  # Hold: AUTO / LOITER
        # PX4: UNINIT while disarmed with failing pre-flight checks, STANDBY once they pass
        assert hb.system_status == mavlink.MAV_STATE_UNINIT
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        hb = await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert hb.system_status == mavlink.MAV_STATE_STANDBY
        st = await gcs.wait_for("SYS_STATUS", since=gcs.mark())
        for bit in (
            mavlink.MAV_SYS_STATUS_SENSOR_3D_GYRO,
            mavlink.MAV_SYS_STATUS_SENSOR_3D_ACCEL,
            mavlink.MAV_SYS_STATUS_SENSOR_3D_MAG,
            mavlink.MAV_SYS_STATUS_SENSOR_GPS,
        ):
            assert st.onboard_control_sensors_present & bit
            assert st.onboard_control_sensors_enabled & bit
            assert st.onboard_control_sensors_health & bit
        assert st.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_PREARM_CHECK
        home = await gcs.wait_for("HOME_POSITION", since=gcs.mark())
        assert abs(home.latitude * 1e-7 - v.config.home.lat) < 1e-6
        ext = await gcs.wait_for("EXTENDED_SYS_STATE", since=gcs.mark())
        assert ext.landed_state == mavlink.MAV_LANDED_STATE_ON_GROUND


async def test_not_ready_before_home_is_set() -> None:
    async with fleet_and_gcs(1, ready_delay=60.0) as (_fleet, gcs):
        st = await gcs.wait_for("SYS_STATUS", since=gcs.mark())
        assert not st.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_PREARM_CHECK
        # PX4 SIH has its GPS fix at once; the estimator publishes no global position yet
        assert st.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_SENSOR_GPS
        gps = await gcs.wait_for("GPS_RAW_INT", since=gcs.mark())
        assert gps.fix_type == mavlink.GPS_FIX_TYPE_3D_FIX
        assert not gcs.of("GLOBAL_POSITION_INT")
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        # 51 characters with PX4's tab: two chunks of one text id, as PX4 sends them
        denied = await gcs.wait_for("STATUSTEXT", lambda m: "Arming denied" in m.text)
        rest = await gcs.wait_for("STATUSTEXT", lambda m: m.id == denied.id and m.chunk_seq == 1)
        assert denied.text + rest.text == "Arming denied: Resolve system health failures first\t"
        ack = await gcs.command(
            mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_HOME_POSITION
        )
        assert ack.result == mavlink.MAV_RESULT_DENIED
        assert not gcs.of("HOME_POSITION")


async def test_no_statustext_without_gcs_heartbeat_and_arming_per_nav_dll_act() -> None:
    """PX4 (``rcAndDataLinkCheck.cpp``): without a ground station the vehicle may still arm
    unless NAV_DLL_ACT > 0; STATUSTEXT goes only to a link that sent GCS heartbeats."""
    async with fleet_and_gcs(1, heartbeats=False, params={"NAV_DLL_ACT": 2}) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready, 5)
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        assert not v.ap.armed
        st = await gcs.wait_for("SYS_STATUS", since=gcs.mark())
        assert not st.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_PREARM_CHECK
        assert not gcs.of("STATUSTEXT")  # "Arming denied" went nowhere
        # a non-GCS heartbeat (e.g. an onboard computer) does not count
        gcs.gcs_type = mavlink.MAV_TYPE_ONBOARD_CONTROLLER
        gcs.heartbeat()
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        gcs.gcs_type = mavlink.MAV_TYPE_GCS
        gcs.heartbeat()
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        txt = await gcs.wait_for("STATUSTEXT", lambda m: "Armed" in m.text)
        assert txt.severity == mavlink.MAV_SEVERITY_INFO
        assert txt.text == "Armed by external command\t"
    async with fleet_and_gcs(1, heartbeats=False) as (fleet, gcs):  # NAV_DLL_ACT 0 (default)
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED


async def test_acks_results_and_mode_changes() -> None:
    async with fleet_and_gcs(1) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        ack = await gcs.command(31999)  # no such command
        assert ack.result == mavlink.MAV_RESULT_UNSUPPORTED
        # mission mode without a mission: rejected, mode unchanged
        ack = await gcs.set_mode(MainMode.AUTO, AutoSubMode.MISSION)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        ack = await gcs.command(mavlink.MAV_CMD_MISSION_START, 0, 0)
        assert ack.result == mavlink.MAV_RESULT_DENIED
        # DO_SET_MODE: param2 main, param3 sub
        ack = await gcs.set_mode(MainMode.POSCTL)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        hb = await gcs.wait_for(
            "HEARTBEAT", lambda m: decode_custom_mode(m.custom_mode) == (3, 0), since=gcs.mark()
        )
        assert hb.base_mode & mavlink.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
        ack = await gcs.set_mode(MainMode.AUTO, AutoSubMode.LOITER)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        # arm twice (duplicates are harmless), disarm
        for _ in range(2):
            ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
            assert ack.result == mavlink.MAV_RESULT_ACCEPTED
            assert (
                ack.target_system == 255
                and ack.target_component == mavlink.MAV_COMP_ID_MISSIONPLANNER
            )
        hb = await gcs.wait_for(
            "HEARTBEAT",
            lambda m: m.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED,
            since=gcs.mark(),
        )
        assert hb.system_status == mavlink.MAV_STATE_ACTIVE
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        # commands for another component are not answered by the autopilot
        since = gcs.mark()
        gcs.send(
            gcs.mav.command_long_encode(
                1, 100, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0
            )
        )
        await gcs.wait_for("HEARTBEAT", since=since)
        await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert not [m for m in gcs.messages[since:] if m.get_type() == "COMMAND_ACK"]
        assert not v.ap.armed


async def test_takeoff_with_nan_uses_mis_takeoff_alt_then_holds() -> None:
    async with fleet_and_gcs(1, params={"MIS_TAKEOFF_ALT": 6.0}) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        # takeoff while disarmed switches to Takeoff mode; arming then takes off
        ack = await gcs.command(mavlink.MAV_CMD_NAV_TAKEOFF, NAN, NAN, NAN, NAN, NAN, NAN, NAN)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await eventually(lambda: v.ap.nav.name == "HOLD" and v.ap.in_air, 10)
        assert 5.0 < v.ap.rel_alt() < 6.9
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0)
        assert ack.result == mavlink.MAV_RESULT_TEMPORARILY_REJECTED  # not landed
        assert v.truth.modes[:2] == ["takeoff", "hold"]


async def test_gripper_in_progress_then_accepted_and_winch_unacked() -> None:
    async with fleet_and_gcs(1, speed=10.0) as (fleet, gcs):
        v = fleet[0]
        since = gcs.mark()
        ack = await gcs.command(mavlink.MAV_CMD_DO_GRIPPER, 1, mavlink.GRIPPER_ACTION_RELEASE)
        assert ack.result == mavlink.MAV_RESULT_IN_PROGRESS
        t0 = v.now()
        final = await gcs.wait_for(
            "COMMAND_ACK",
            lambda m: (
                m.command == mavlink.MAV_CMD_DO_GRIPPER and m.result == mavlink.MAV_RESULT_ACCEPTED
            ),
            since=since,
        )
        assert final is not None
        assert 0.7 <= v.now() - t0 <= 2.0
        assert len(v.truth.releases) == 1
        since = gcs.mark()
        gcs.send(
            gcs.mav.command_long_encode(
                1,
                1,
                mavlink.MAV_CMD_DO_WINCH,
                0,
                1,
                mavlink.WINCH_RELATIVE_LENGTH_CONTROL,
                2.0,
                0,
                0,
                0,
                0,
            )
        )
        await eventually(lambda: v.ap.winch_length_m == 2.0, 5)
        await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert not [m for m in gcs.messages[since:] if m.get_type() == "COMMAND_ACK"]


async def test_request_message_and_message_interval() -> None:
    async with fleet_and_gcs(1, speed=1.0) as (_fleet, gcs):
        since = gcs.mark()
        ack = await gcs.command(
            mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        av = await gcs.wait_for("AUTOPILOT_VERSION", since=since)
        for cap in (
            mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT,
            mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT,
            mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE,
            mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2,
            mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE,
            mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY,
        ):
            assert av.capabilities & cap
        ack = await gcs.command(mavlink.MAV_CMD_REQUEST_MESSAGE, 12345)
        assert ack.result == mavlink.MAV_RESULT_DENIED
        # GLOBAL_POSITION_INT from 5 Hz to 20 Hz
        ack = await gcs.command(
            mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 50_000
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await gcs.wait_for("GLOBAL_POSITION_INT", since=gcs.mark())
        start = gcs.mark()
        first = await gcs.wait_for("HEARTBEAT", since=start)
        second = await gcs.wait_for("HEARTBEAT", since=gcs.messages.index(first) + 1)
        a, b = gcs.messages.index(first), gcs.messages.index(second)
        n = sum(1 for m in gcs.messages[a:b] if m.get_type() == "GLOBAL_POSITION_INT")
        assert 15 <= n <= 25
        # disabled with -1
        ack = await gcs.command(
            mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_ATTITUDE, -1
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        start = gcs.mark()
        await gcs.wait_for("HEARTBEAT", since=start)
        await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert not [m for m in gcs.messages[start:] if m.get_type() == "ATTITUDE"]


async def test_target_system_filtering_on_a_shared_port() -> None:
    async with fleet_and_gcs(3) as (fleet, gcs):
        for v in fleet.vehicles:
            await eventually(lambda v=v: v.ap.ready_to_arm(v.now()), 5)
        ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1, sysid=2)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED and ack.get_srcSystem() == 2
        await eventually(lambda: fleet[1].ap.armed, 2)
        assert not fleet[0].ap.armed and not fleet[2].ap.armed
        # a command to system 2 sent to vehicle 1's address is ignored by vehicle 1
        since = gcs.mark()
        gcs.send(
            gcs.mav.command_long_encode(2, 1, mavlink.MAV_CMD_NAV_LAND, 0, 0, 0, 0, 0, 0, 0, 0),
            sysid=1,
        )
        await gcs.wait_for("HEARTBEAT", since=since, sysid=1)
        await gcs.wait_for("HEARTBEAT", since=gcs.mark(), sysid=1)
        assert not [m for m in gcs.messages[since:] if m.get_type() == "COMMAND_ACK"]
        assert fleet[0].ap.nav.name == "HOLD"


async def test_message_rate_answers_follow_px4() -> None:
    """SET_MESSAGE_INTERVAL: ACCEPTED for any message PX4 has a stream for, FAILED for
    HEARTBEAT, MISSION_CURRENT (no stream in PX4) and unsupported options; MESSAGE_INTERVAL
    reports the current interval; the legacy GET_HOME_POSITION is DENIED before home is set."""
    async with fleet_and_gcs(1, speed=5.0, ready_delay=30.0) as (fleet, gcs):
        smi = mavlink.MAV_CMD_SET_MESSAGE_INTERVAL
        ack = await gcs.command(mavlink.MAV_CMD_GET_HOME_POSITION)
        assert ack.result == mavlink.MAV_RESULT_DENIED
        for msg_id in (mavlink.MAVLINK_MSG_ID_HEARTBEAT, mavlink.MAVLINK_MSG_ID_MISSION_CURRENT):
            ack = await gcs.command(smi, msg_id, 1_000_000)
            assert ack.result == mavlink.MAV_RESULT_FAILED, msg_id
        ack = await gcs.command(
            mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_MISSION_CURRENT
        )
        assert ack.result == mavlink.MAV_RESULT_DENIED
        # param3 (stream instance) and param7 (response target) are refused; NaN means unset
        ack = await gcs.command(smi, mavlink.MAVLINK_MSG_ID_ALTITUDE, 500_000, 1)
        assert ack.result == mavlink.MAV_RESULT_FAILED
        ack = await gcs.command(smi, mavlink.MAVLINK_MSG_ID_ALTITUDE, 500_000, 0, 0, 0, 0, 2)
        assert ack.result == mavlink.MAV_RESULT_FAILED
        ack = await gcs.command(
            smi, mavlink.MAVLINK_MSG_ID_ALTITUDE, 500_000, NAN, NAN, NAN, NAN, NAN
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        # a PX4 stream the vehicle has no data for: accepted, nothing is sent
        ack = await gcs.command(smi, mavlink.MAVLINK_MSG_ID_RC_CHANNELS, 100_000)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        # a stream outside the default set (SYSTEM_TIME) starts at the asked rate
        ack = await gcs.command(smi, mavlink.MAVLINK_MSG_ID_SYSTEM_TIME, 200_000)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await gcs.wait_for("SYSTEM_TIME", since=gcs.mark())
        since = gcs.mark()
        ack = await gcs.command(
            mavlink.MAV_CMD_GET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_ALTITUDE
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        mi = await gcs.wait_for("MESSAGE_INTERVAL", since=since)
        assert (mi.message_id, mi.interval_us) == (mavlink.MAVLINK_MSG_ID_ALTITUDE, 500_000)
        # interval 0 restores the default (1 Hz); -1 stops the stream (interval then 0)
        await gcs.command(smi, mavlink.MAVLINK_MSG_ID_ALTITUDE, 0)
        since = gcs.mark()
        await gcs.command(mavlink.MAV_CMD_GET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_ALTITUDE)
        mi = await gcs.wait_for("MESSAGE_INTERVAL", since=since)
        assert mi.interval_us == 1_000_000
        await gcs.command(smi, mavlink.MAVLINK_MSG_ID_SYSTEM_TIME, -1)
        since = gcs.mark()
        await gcs.command(mavlink.MAV_CMD_GET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_SYSTEM_TIME)
        mi = await gcs.wait_for("MESSAGE_INTERVAL", since=since)
        assert mi.interval_us == 0
        assert not [m for m in gcs.messages if m.get_type() == "RC_CHANNELS"]
        assert not fleet[0].ap.ready


async def test_normal_stream_set_matches_px4_rates() -> None:
    """Per world second the sim sends PX4's normal-mode set: about 58 messages, with PX4's rates
    (stepped by a manual clock in 20 ms steps, so every stream gets all its samples)."""
    from fleet.clock import ManualClock
    from sim.drone.streams import normal_rate_total
    from sim.runner import SimFleet
    from tests.support import free_udp_ports
    from tests.unit.sim.gcs import Gcs

    assert 55.0 <= normal_rate_total() <= 60.0
    clock = ManualClock()
    async with (
        Gcs(free_udp_ports(1)) as gcs,
        SimFleet(1, clock=clock, first_port=gcs.port, port_mode="shared", ready_delay=1.0) as fleet,
    ):
        v = fleet[0]
        await clock.advance(5.0, step=0.02)  # ready, home set: every stream has data
        assert v.ap.ready
        await eventually(lambda: len(gcs.messages) >= v.sent_messages * 0.99, 5)
        start, sent0 = gcs.mark(), v.sent_messages
        await clock.advance(20.0, step=0.02)
        await eventually(lambda: len(gcs.messages) - start >= v.sent_messages - sent0, 5)
        window = [m.get_type() for m in gcs.messages[start:]]

        def rate(t: str) -> float:
            return window.count(t) / 20

        assert len(window) / 20 == pytest.approx(normal_rate_total(), abs=1.0)
        for t, hz in (
            ("ATTITUDE", 15.0),
            ("ATTITUDE_QUATERNION", 10.0),
            ("GLOBAL_POSITION_INT", 5.0),
            ("GPS_RAW_INT", 5.0),
            ("VFR_HUD", 4.0),
            ("ATTITUDE_TARGET", 2.0),
            ("POSITION_TARGET_LOCAL_NED", 1.5),
            ("SYS_STATUS", 1.0),
            ("MISSION_CURRENT", 1.0),
            ("OPEN_DRONE_ID_SYSTEM", 1.0),
            ("HOME_POSITION", 0.5),
            ("PING", 0.1),
        ):
            assert rate(t) == pytest.approx(hz, abs=0.1), t
        assert "SYSTEM_TIME" not in window  # not in PX4's normal mode
