"""What PX4 SITL showed, pinned for the sim (``docs/protocols/mavlink.md``, "Sim and PX4").

Each test holds one behaviour recorded on PX4 SITL (upstream PX4, SIH quadrotor) through the
service's MAVLink bridge, and checks the sim does the same: the arming report once ready, the
readiness the bridge derives from it, the report on MAV_CMD_RUN_PREARM_CHECKS, the events of a
delivery flight, and the landed states through take-off and landing.
"""

from __future__ import annotations

from pathlib import Path

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import px4_events
from fleet.drone import FlightPlan, Gripper, Land, Takeoff, Waypoint
from fleet.geo import offset_latlon
from fleet.vehicle import LandedState
from sim.drone.health import MIN_REPORT_INTERVAL_S
from tests.support import eventually
from tests.unit.mavlink.simlink import HOME, sim_link
from tests.unit.sim.harness import fleet_and_gcs

PX4_READY_CAN_ARM = ["loiter", "rtl", "takeoff", "land", "follow_target", "precland", "orbit"]
"""Mode groups PX4 SITL lets arm once ready, before any mission (``vtol_takeoff`` too)."""
PX4_READY_PROBLEMS = [
    ("check_modes_mission", "info", ("mission",)),
    ("check_modes_offboard_signal", "error", ("offboard",)),
    ("check_modes_manual_control", "warning", None),  # None: reported for every mode
]
"""The checks PX4 SITL still reports once ready, before any mission."""
PX4_FLIGHT_EVENTS = [
    "commander_armed_by",
    "mission_execute",
    "mission_climb_before_start",
    "commander_takeoff_detected",
    "commander_landing_detected",
    "mission_finished",
    "commander_disarmed_by",
]
"""PX4 SITL's events of a delivery flown by MISSION_START, in order (the differential check)."""


async def test_ready_report_and_readiness_are_px4s(tmp_path: Path) -> None:
    async with sim_link(1, cache_dir=tmp_path) as sl:
        drone = sl.drone(1)
        await eventually(lambda: drone.status.ready_for_mission, 10)
        report = drone.arming_report
        assert report is not None and report.with_metadata
        assert set(PX4_READY_CAN_ARM) <= set(report.arm_groups)
        assert "mission" not in report.arm_groups and "offboard" not in report.arm_groups
        got = [(p.event, str(p.severity), p.modes) for p in report.problems]
        for (name, severity, modes), (g_name, g_severity, g_modes) in zip(
            PX4_READY_PROBLEMS, got, strict=True
        ):
            assert (g_name, g_severity) == (name, severity)
            assert g_modes == modes if modes is not None else len(g_modes) > 20
        assert drone.status.not_ready == ()
        assert drone.status.ready_to_arm  # pre-arm bit, as PX4 sets it with the same report


async def test_readiness_waits_for_the_estimator_not_the_first_heartbeat(tmp_path: Path) -> None:
    """PX4 at boot: home at once, position estimates invalid for seconds; not ready till then."""
    async with sim_link(1, cache_dir=tmp_path) as sl:
        drone = sl.drone(1)
        assert not drone.status.ready_for_mission
        await eventually(lambda: drone.arming_report is not None, 10)
        if not drone.status.ready_for_mission:
            assert drone.status.not_ready  # says why, in the vehicle's words
        await eventually(lambda: drone.status.ready_for_mission, 10)
        v = sl.fleet[0]
        assert v.now() - v.ap.ready_at >= 2.0  # ESTIMATOR_SETTLE_S after home


async def test_run_prearm_checks_sends_a_fresh_report(tmp_path: Path) -> None:
    async with sim_link(1, cache_dir=tmp_path) as sl:
        drone = sl.drone(1)
        await eventually(lambda: drone.status.ready_for_mission, 10)
        reports = sl.fleet[0].ap.checks.reports
        report = await drone.run_prearm_checks()  # accepted, and the report follows at once
        assert report.can_arm("loiter")
        assert sl.fleet[0].ap.checks.reports == reports + 1


async def test_flight_events_landed_states_and_mission_states_are_px4s(tmp_path: Path) -> None:
    async with sim_link(1, cache_dir=tmp_path) as sl:
        drone = sl.drone(1)
        v = sl.fleet[0]
        await eventually(lambda: drone.status.ready_for_mission, 10)
        await eventually(lambda: v.ap.checks.reported(v.ap.failing_checks(v.now())), 10)
        with sl.bus.subscribe() as sub:
            drop = offset_latlon(HOME.lat, HOME.lon, 40.0, 0.0)
            plan = FlightPlan(
                (
                    Takeoff(15.0),
                    Waypoint(*drop, 15.0),
                    Waypoint(*drop, 5.0),
                    Gripper(),
                    Waypoint(*drop, 15.0),
                    Land(HOME.lat, HOME.lon),
                )
            )
            await drone.upload_mission(plan)
            await drone.start_mission()
            await eventually(lambda: not v.ap.armed and v.ap.truth.landings, 60)
            await eventually(lambda: drone.status.landed == LandedState.ON_GROUND, 5)
            await eventually(lambda: any(t.name == "commander_disarmed_by" for t in drone.texts), 5)
            seen = []
            while (ev := sub.get_nowait()) is not None:
                seen.append(ev)
        names = [
            e.data["event_name"]
            for e in seen
            if getattr(e, "kind", None) == "status_text" and e.data.get("event_name")
        ]
        flight = [n for n in names if n in PX4_FLIGHT_EVENTS]
        assert flight == PX4_FLIGHT_EVENTS
        # each message once: the STATUSTEXT twin of an event (PX4's tab) is not a second text
        texts = [e for e in seen if getattr(e, "kind", None) == "status_text"]
        assert all(t.data.get("source") == "event" for t in texts), [t.message for t in texts]
        landed = [e.data["landed"] for e in seen if getattr(e, "kind", None) == "landed_state"]
        assert landed == ["taking_off", "in_air", "landing", "on_ground"]
        states = [e.data["state"] for e in seen if getattr(e, "kind", None) == "mission_state"]
        assert states[-3:] == ["not_started", "active", "complete"]
        # the take-off state lasts until the take-off altitude, as PX4's take-off setpoint does
        up = next(e for e in v.truth.events if e.kind.value == "item_reached" and e.seq == 0)
        assert up.rel_alt >= 15.0 - 1.0


async def test_statustext_ids_count_up_and_mirror_events_with_a_tab() -> None:
    async with fleet_and_gcs(1, params={"NAV_DLL_ACT": 0}) as (fleet, gcs):
        v = fleet[0]
        await eventually(lambda: v.ap.ready_to_arm(v.now()), 5)
        for _ in range(2):
            ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
            assert ack.result == mavlink.MAV_RESULT_ACCEPTED
            ack = await gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0)
            assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        await gcs.wait_for("STATUSTEXT", lambda m: m.text.startswith("Disarmed"), timeout=5)
        texts = [m for m in gcs.of("STATUSTEXT") if m.text.startswith(("Armed", "Disarmed"))]
        assert [m.text for m in texts][-2:] == [
            "Armed by external command\t",
            "Disarmed by external command\t",
        ]
        ids = [m.id for m in texts]
        assert ids == sorted(set(ids))  # a new id per text
        armed = px4_events.px4_event_id("commander_armed_by")
        ev = await gcs.wait_for("EVENT", lambda m: m.event_id == armed, since=0)
        assert ev.arguments[0] == 4  # arm_disarm_reason_t command_external
        assert MIN_REPORT_INTERVAL_S == 2.0
