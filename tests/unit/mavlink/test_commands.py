"""Command and parameter protocols over real UDP against a scripted vehicle."""

from __future__ import annotations

import asyncio
import math
import struct
from typing import Any

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.wire import px4
from fleet.drone import Winch, WinchAction
from fleet.errors import CommandRejected, CommandTimeout, LinkLost
from fleet.events import VehicleEvent, VehicleEventKind
from fleet.vehicle import FlightMode, LinkState
from tests.support import eventually
from tests.unit.mavlink.conftest import Env, OpenLink
from tests.unit.mavlink.peer import Peer

ARM = mavlink.MAV_CMD_COMPONENT_ARM_DISARM


async def _vehicle(env: Env, link: Any, beat: bool = True) -> tuple[Peer, MavlinkDrone]:
    peer = await Peer.open(link.local_address)

    async def seen() -> bool:
        peer.heartbeat()
        await asyncio.sleep(0.02)
        return "drone-1" in env.registry

    await eventually(seen)
    # keep the vehicle alive and answer the discovery stream requests
    peer.auto.append(
        lambda m: (
            m.get_type() == "COMMAND_LONG"
            and m.command in (mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAV_CMD_REQUEST_MESSAGE)
            and (peer.ack(m.command), True)[1]
        )
    )
    control = env.registry.get("drone-1").control
    assert isinstance(control, MavlinkDrone)
    if beat:
        peer.beat()
    return peer, control


async def _answer(peer: Peer, command: int, results: list[int | None]) -> list[Any]:
    """Answer successive COMMAND_LONGs of ``command`` with ``results`` (None: stay silent)."""
    seen = []
    for result in results:
        msg = await peer.expect("COMMAND_LONG", lambda m: m.command == command)
        seen.append(msg)
        if result is not None:
            peer.ack(command, result)
    return seen


async def test_arm_accepted_and_targeted(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        answer = asyncio.create_task(_answer(peer, ARM, [mavlink.MAV_RESULT_ACCEPTED]))
        await drone.arm()
        (msg,) = await answer
        assert (msg.param1, msg.target_system, msg.target_component, msg.confirmation) == (
            1.0,
            1,
            1,
            0,
        )
        peer.close()


async def test_lost_ack_is_retried_with_confirmation(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        answer = asyncio.create_task(_answer(peer, ARM, [None, None, mavlink.MAV_RESULT_ACCEPTED]))
        await drone.disarm()
        sent = await answer
        assert [m.confirmation for m in sent] == [0, 1, 2]
        assert all(m.param1 == 0.0 for m in sent)
        peer.close()


async def test_ack_for_another_gcs_is_ignored(env: Env, open_link: OpenLink) -> None:
    async with open_link(command_retries=1) as link:
        peer, drone = await _vehicle(env, link)

        async def wrong_target() -> None:
            await peer.expect("COMMAND_LONG", lambda m: m.command == ARM)
            peer.ack(ARM, target_system=254)  # someone else's answer
            await peer.expect("COMMAND_LONG", lambda m: m.command == ARM)
            peer.ack(ARM, mavlink.MAV_RESULT_ACCEPTED)

        task = asyncio.create_task(wrong_target())
        await drone.arm()
        await task
        assert peer.count("COMMAND_LONG", lambda m: m.command == ARM) == 2
        peer.close()


async def test_denied_with_reason(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)

        async def deny() -> None:
            await peer.expect("COMMAND_LONG", lambda m: m.command == ARM)
            peer.statustext("Arming denied: resolve health failures first\t")
            peer.ack(ARM, mavlink.MAV_RESULT_DENIED)

        task = asyncio.create_task(deny())
        with pytest.raises(CommandRejected) as info:
            await drone.arm()
        await task
        err = info.value
        assert err.fields["result"] == "DENIED"
        assert err.fields["reason"] == "Arming denied: resolve health failures first"
        assert "resolve health" in str(err)
        assert err.fields["vehicle_id"] == "drone-1"
        peer.close()


@pytest.mark.parametrize(
    ("result", "name"),
    [
        (mavlink.MAV_RESULT_TEMPORARILY_REJECTED, "TEMPORARILY_REJECTED"),
        (mavlink.MAV_RESULT_UNSUPPORTED, "UNSUPPORTED"),
        (mavlink.MAV_RESULT_FAILED, "FAILED"),
    ],
)
async def test_other_refusals(env: Env, open_link: OpenLink, result: int, name: str) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        task = asyncio.create_task(_answer(peer, mavlink.MAV_CMD_DO_SET_MODE, [result]))
        with pytest.raises(CommandRejected) as info:
            await drone.hold()
        await task
        assert info.value.fields["result"] == name
        assert info.value.fields["reason"] is None
        peer.close()


async def test_timeout_after_all_retries(env: Env, open_link: OpenLink) -> None:
    async with open_link(command_retries=2) as link:
        peer, drone = await _vehicle(env, link)
        with pytest.raises(CommandTimeout) as info:
            await drone.arm()
        assert info.value.fields["attempts"] == 3
        assert peer.count("COMMAND_LONG", lambda m: m.command == ARM) == 3
        peer.close()


async def test_in_progress_then_accepted(env: Env, open_link: OpenLink) -> None:
    async with open_link(command_timeout_s=1.0) as link:
        peer, drone = await _vehicle(env, link)
        gripper = mavlink.MAV_CMD_DO_GRIPPER

        async def px4_gripper() -> None:
            msg = await peer.expect("COMMAND_LONG", lambda m: m.command == gripper)
            assert (msg.param1, msg.param2) == (1.0, float(mavlink.GRIPPER_ACTION_RELEASE))
            peer.ack(gripper, mavlink.MAV_RESULT_IN_PROGRESS)
            await asyncio.sleep(0.25)  # 2.5 world s: longer than the ack timeout
            peer.ack(gripper, mavlink.MAV_RESULT_ACCEPTED)

        with env.bus.subscribe(
            lambda e: getattr(e, "kind", None) == VehicleEventKind.PAYLOAD
        ) as ev:
            task = asyncio.create_task(px4_gripper())
            await drone.release_payload()
            await task
            payload = await asyncio.wait_for(ev.get(), 1)
            assert isinstance(payload, VehicleEvent)
        assert peer.count("COMMAND_LONG", lambda m: m.command == gripper) == 1  # no resend
        peer.close()


async def test_winch_without_ack_is_unconfirmed_not_resent(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        confirmed = await drone.operate_winch(Winch(WinchAction.LENGTH, length_m=3.0))
        assert confirmed is False
        sent = [m for m in peer.received if m.get_type() == "COMMAND_LONG" and m.command == 42600]
        assert len(sent) == 1
        assert (sent[0].param2, sent[0].param3) == (
            float(mavlink.WINCH_RELATIVE_LENGTH_CONTROL),
            3.0,
        )
        peer.close()


async def test_mode_commands_use_px4_numbers(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        peer.auto_ack()
        for action, sub in (
            (drone.hold, px4.AutoSubMode.LOITER),
            (drone.land, px4.AutoSubMode.LAND),
            (drone.return_to_launch, px4.AutoSubMode.RTL),
        ):
            await action()
            msg = [m for m in peer.received if m.get_type() == "COMMAND_LONG"][-1]
            assert msg.command == mavlink.MAV_CMD_DO_SET_MODE
            assert (msg.param1, msg.param2, msg.param3) == (
                float(mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED),
                float(px4.MainMode.AUTO),
                float(sub),
            )
        with pytest.raises(CommandRejected):
            await drone.set_mode(FlightMode.UNKNOWN)
        await drone.start_mission(0)
        start = [m for m in peer.received if m.get_type() == "COMMAND_LONG"][-1]
        assert start.command == mavlink.MAV_CMD_MISSION_START and start.param1 == 0
        peer.close()


async def test_takeoff_altitude_is_amsl(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        peer.auto_ack()
        with pytest.raises(CommandRejected):
            await drone.takeoff(20.0)  # no home yet
        peer.send(
            mavlink.MAVLink_home_position_message(
                225400000, 1140560000, 12500, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0
            )
        )
        await eventually(lambda: drone.status.home is not None)
        await drone.takeoff(20.0)
        await drone.takeoff()
        sent = [m for m in peer.received if m.get_type() == "COMMAND_LONG" and m.command == 22]
        assert sent[0].param7 == pytest.approx(32.5)
        assert math.isnan(sent[1].param7) and math.isnan(sent[1].param5)
        peer.close()


async def test_commands_fail_fast_when_link_lost(env: Env, open_link: OpenLink) -> None:
    async with open_link(link_timeout_s=1.0) as link:
        peer, drone = await _vehicle(env, link, beat=False)
        await eventually(lambda: drone.status.link == LinkState.LOST)
        with pytest.raises(LinkLost):
            await drone.arm()
        peer.close()


def _int_as_float(value: int) -> float:
    return float(struct.unpack("<f", struct.pack("<i", value))[0])


async def test_parameters_bytewise(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        params: dict[str, tuple[float, int]] = {
            "NAV_DLL_ACT": (_int_as_float(0), mavlink.MAV_PARAM_TYPE_INT32),
            "MIS_TAKEOFF_ALT": (2.5, mavlink.MAV_PARAM_TYPE_REAL32),
        }

        def server(m: Any) -> bool:
            t = m.get_type()
            if t in ("PARAM_REQUEST_READ", "PARAM_SET"):
                name = m.param_id
                if name not in params:
                    peer.send(
                        mavlink.MAVLink_param_error_message(
                            255, 190, name.encode(), -1, mavlink.MAV_PARAM_ERROR_DOES_NOT_EXIST
                        )
                    )
                    return True
                if t == "PARAM_SET":
                    params[name] = (m.param_value, m.param_type)
                value, ptype = params[name]
                peer.send(mavlink.MAVLink_param_value_message(name.encode(), value, ptype, 2, 0))
                return True
            return False

        peer.auto.append(server)
        assert await drone.get_parameter("NAV_DLL_ACT") == 0
        assert await drone.get_parameter("MIS_TAKEOFF_ALT") == pytest.approx(2.5)
        await drone.set_parameter("NAV_DLL_ACT", 2)
        # the int travelled bytewise inside the float field
        assert params["NAV_DLL_ACT"][0] == _int_as_float(2)
        assert await drone.get_parameter("NAV_DLL_ACT") == 2
        await drone.set_parameter("MIS_TAKEOFF_ALT", 12.0)
        assert await drone.get_parameter("MIS_TAKEOFF_ALT") == 12.0
        with pytest.raises(CommandRejected) as info:
            await drone.get_parameter("NO_SUCH_PARAM")
        assert info.value.fields["result"] == "DOES_NOT_EXIST"
        peer.close()


async def test_parameter_not_applied(env: Env, open_link: OpenLink) -> None:
    async with open_link(command_retries=1) as link:
        peer, drone = await _vehicle(env, link)

        def stubborn(m: Any) -> bool:
            if m.get_type() in ("PARAM_REQUEST_READ", "PARAM_SET"):
                peer.send(
                    mavlink.MAVLink_param_value_message(
                        b"GF_ACTION", _int_as_float(1), mavlink.MAV_PARAM_TYPE_INT32, 1, 0
                    )
                )
                return True
            return False

        peer.auto.append(stubborn)
        with pytest.raises(CommandRejected) as info:
            await drone.set_parameter("GF_ACTION", 3)
        assert info.value.fields["result"] == "NOT_APPLIED"
        peer.close()


async def test_in_progress_without_final_ack_times_out(env: Env, open_link: OpenLink) -> None:
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        gripper = mavlink.MAV_CMD_DO_GRIPPER

        def stuck(m: Any) -> bool:
            if m.get_type() == "COMMAND_LONG" and m.command == gripper:
                peer.ack(gripper, mavlink.MAV_RESULT_IN_PROGRESS, progress=10)
                return True
            return False

        peer.auto.insert(0, stuck)
        with pytest.raises(CommandTimeout, match="in progress"):
            await drone.release_payload()  # 10 world s = 1 real s
        assert peer.count("COMMAND_LONG", lambda m: m.command == gripper) == 1
        peer.close()


async def test_link_lost_while_waiting(env: Env, open_link: OpenLink) -> None:
    async with open_link(link_timeout_s=1.0, command_timeout_s=5.0) as link:
        peer, drone = await _vehicle(env, link, beat=False)
        peer.heartbeat()
        with pytest.raises(LinkLost):
            await drone.arm()  # the vehicle goes silent: no ack, no heartbeat
        assert peer.count("COMMAND_LONG", lambda m: m.command == ARM) == 1
        peer.close()


async def test_a_mission_start_denied_while_px4_takes_the_plan_up_is_tried_once_more(
    env: Env, open_link: OpenLink
) -> None:
    # PX4's commander sees a new plan one health-check cycle after the navigator reported it
    # valid: a start in between is denied "No valid mission" (seen on PX4 SITL)
    async with open_link() as link:
        peer, drone = await _vehicle(env, link)
        starts: list[Any] = []

        def px4(msg: Any) -> bool:
            if msg.get_type() != "COMMAND_LONG" or msg.command != mavlink.MAV_CMD_MISSION_START:
                return False
            starts.append(msg)
            if len(starts) == 1:
                peer.statustext(
                    "Mission start denied! No valid mission", mavlink.MAV_SEVERITY_CRITICAL
                )
                peer.ack(msg.command, mavlink.MAV_RESULT_DENIED)
            else:
                peer.ack(msg.command)
            return True

        peer.auto.insert(0, px4)
        peer.auto_ack()
        with pytest.raises(CommandRejected, match="No valid mission"):
            await drone.start_mission(0)  # nothing uploaded: the refusal stands
        assert len(starts) == 1
        starts.clear()
        drone.mission_items = [object()]  # type: ignore[list-item]  # a plan was uploaded
        await drone.start_mission(0)
        assert len(starts) == 2
        starts.clear()
        peer.auto.remove(px4)
        peer.auto.insert(
            0,
            lambda m: (
                m.get_type() == "COMMAND_LONG"
                and m.command == mavlink.MAV_CMD_MISSION_START
                and (
                    starts.append(m),
                    peer.statustext("Arming denied: GPS"),
                    peer.ack(m.command, mavlink.MAV_RESULT_DENIED),
                    True,
                )[-1]
            ),
        )
        with pytest.raises(CommandRejected, match="GPS"):
            await drone.start_mission(0)  # any other refusal is not tried again
        assert len(starts) == 1
        peer.close()
