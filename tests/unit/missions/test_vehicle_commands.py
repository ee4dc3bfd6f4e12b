"""``missions.commands`` on fake drones and the manual clock: a held drone's mission is not
overdue and completes after the resume; a land in flight ends the mission as a cancel does; a
command the drone accepts without ever being seen in its state times out; a refused land leaves
the mission flying.

The wire (MAVLink, VDA 5050) and real PX4 are in ``tests/e2e/test_vehicle_commands.py``,
``tests/integration/test_vehicle_commands_vans.py`` and ``tests/sitl/test_vehicle_commands.py``.
"""

from __future__ import annotations

import pytest

from fleet.fakes.faults import FaultKind
from fleet.store.tables import VehicleCommand
from missions.commands import COMMAND_FINAL, CommandKind, CommandService, CommandState
from missions.states import MissionState, Phase
from tests.unit.missions.harness import FakeFleet
from tests.unit.missions.test_delivery_run import underway

pytestmark = pytest.mark.timeout(60)


async def finished(
    fleet: FakeFleet, commands: CommandService, rec: VehicleCommand
) -> VehicleCommand:
    async def final() -> VehicleCommand | None:
        got = await commands.get(rec.id)
        return got if got.state in COMMAND_FINAL else None

    return await fleet.until(final, f"command {rec.command} ends")


async def test_a_held_drone_is_not_overdue_and_its_delivery_completes_after_resume(
    fleet: FakeFleet,
) -> None:
    drone, _, m = await underway(fleet)
    await drone.fly_to_item(2)
    async with CommandService(fleet.ctx, fleet.service) as commands:
        rec, created = await commands.issue(
            drone.vehicle_id, CommandKind.HOLD, "crane", actor="ops"
        )
        assert created and rec.mission_id == m.id
        rec = await finished(fleet, commands, rec)
        assert rec.state == CommandState.SUCCEEDED, rec.outcome
        await fleet.advance(fleet.settings.drone_missions.max_flight_s + 120, step=60)
        held = await fleet.mission(m.id)
        assert held.state == MissionState.UNDERWAY, held.reason
        assert held.phase == Phase.WAIT
        resume, _ = await commands.issue(drone.vehicle_id, CommandKind.RESUME, "clear", actor="ops")
        resume = await finished(fleet, commands, resume)
        assert resume.state == CommandState.SUCCEEDED, resume.outcome
        await drone.fly()
        done = await fleet.wait_mission(m.id)
        assert done.state == MissionState.COMPLETED, done.reason
        reasons = await fleet.reasons(mission_id=m.id)
        assert "held by ops: crane" in reasons and "resumed by ops: clear" in reasons


async def test_a_land_in_flight_cancels_the_mission_where_the_drone_lands(
    fleet: FakeFleet,
) -> None:
    drone, rid, m = await underway(fleet)
    await drone.fly_to_item(2)
    async with CommandService(fleet.ctx, fleet.service) as commands:
        rec, _ = await commands.issue(drone.vehicle_id, CommandKind.LAND, "storm", actor="ops")
        rec = await finished(fleet, commands, rec)
        assert rec.state == CommandState.SUCCEEDED, rec.outcome
        assert "land" in drone.commands and "return_to_launch" not in drone.commands
        await fleet.wait_phase(m.id, Phase.LANDING)
        await drone.fly()
        done = await fleet.wait_mission(m.id)
        assert done.state == MissionState.CANCELLED, done.reason
        assert "cancelled by ops: land commanded: storm" in done.reason
        assert [k for k, _, _ in await fleet.ledger(rid)] == ["reserve", "load", "return"]


async def test_a_refused_land_leaves_the_mission_flying(fleet: FakeFleet) -> None:
    drone, _, m = await underway(fleet)
    await drone.fly_to_item(2)
    drone.faults.plan("land", FaultKind.REFUSE, "Switching to Land is currently not possible", 1)
    async with CommandService(fleet.ctx, fleet.service) as commands:
        rec, _ = await commands.issue(drone.vehicle_id, CommandKind.LAND, "storm", actor="ops")
        rec = await finished(fleet, commands, rec)
        assert rec.state == CommandState.FAILED, rec.outcome
        assert rec.vehicle_words == "Switching to Land is currently not possible"
        await drone.fly()
        done = await fleet.wait_mission(m.id)
        assert done.state == MissionState.COMPLETED, done.reason


async def test_a_command_accepted_but_never_seen_times_out(fleet: FakeFleet) -> None:
    drone = await fleet.add_drone(0)  # on the ground: the fake accepts Return, nothing moves
    async with CommandService(fleet.ctx, fleet.service) as commands:
        rec, _ = await commands.issue(drone.vehicle_id, CommandKind.RETURN, "test", actor="ops")

        async def acknowledged() -> bool:
            return (await commands.get(rec.id)).state == CommandState.ACKNOWLEDGED

        await fleet.until(acknowledged, "the drone acknowledged")
        await fleet.clock.advance(fleet.settings.commands.state_timeout_s + 1)
        rec = await finished(fleet, commands, rec)
        assert rec.state == CommandState.TIMED_OUT, rec.outcome
        assert rec.outcome.startswith("accepted, but not seen return within 30 s"), rec.outcome
