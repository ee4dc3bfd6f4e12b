"""``DroneBroadcastRun`` on a fake drone carrying a fake speaker, on the manual clock: every
transition of a broadcast flight, the playback records it collects and how the request settles.

The wire (MAVLink, the speaker protocol over MQTT) is tested in ``tests/integration`` and flown
end to end in ``tests/e2e/test_broadcast_flight.py`` and ``test_broadcast_restart.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.fakes import FakeDrone, FakeSpeaker
from fleet.safety import FAILSAFE_PARAMETERS
from fleet.store.tables import Mission
from missions.states import MissionState, Phase, Priority, RequestState
from tests.unit.missions.harness import FakeFleet, open_fleet

pytestmark = pytest.mark.timeout(60)


async def flying(fleet: FakeFleet) -> tuple[FakeDrone, FakeSpeaker, str, Mission]:
    """A speaker drone on W1's first pad flying a broadcast over C03."""
    drone, speaker = await fleet.add_speaker_drone(0)
    rid = await fleet.broadcast("C03", repeats=2)
    m = await fleet.mission_for(rid, MissionState.UNDERWAY)
    return drone, speaker, rid, m


async def states_of(fleet: FakeFleet, mission_id: str) -> list[str]:
    return [
        str(e.to_state)
        for e in await fleet.events(mission_id=mission_id)
        if e.kind == "state" and e.request_id is None
    ]


async def phases_of(fleet: FakeFleet, mission_id: str) -> list[str]:
    return [
        str(e.data["phase"]) for e in await fleet.events(mission_id=mission_id) if e.kind == "phase"
    ]


async def flown_again(fleet: FakeFleet, request_id: str, attempt: int) -> bool:
    """The request went back to the queue after ``attempt`` failed."""
    return any(
        f"attempt {attempt} " in r and "it will be flown again" in r
        for r in await fleet.reasons(request_id=request_id)
    )


async def occurrences(fleet: FakeFleet, request_id: str) -> list[dict[str, object]]:
    details = (await fleet.get_request(request_id)).request.details
    return list(details.get("occurrences", []))


async def test_a_broadcast_is_flown_its_records_kept_and_the_request_completed(
    fleet: FakeFleet,
) -> None:
    drone, speaker, rid, m = await flying(fleet)
    # the failsafe policy set and read back, fence and rally points checked, before the plan
    policy = ["set_parameter"] * len(FAILSAFE_PARAMETERS)
    policy += ["get_parameter"] * len(FAILSAFE_PARAMETERS)
    assert drone.commands == [
        *policy,
        "upload_geofence",
        "download_geofence",
        "upload_rally",
        "download_rally",
        "upload_mission",
        "start_mission",
    ]
    assert speaker.commands == ["stop", "load_clip", "set_volume", "play_in_area"]
    assert m.result["session_id"] == speaker.status.session_id
    assert m.result["payload_id"] == "SPK-1"
    await drone.fly()

    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    assert done.reason.startswith("broadcast flown and landed 0.0 m from home")
    assert speaker.commands[-1] == "stop" and not speaker.playing
    assert await states_of(fleet, m.id) == ["planned", "authorized", "underway", "completed"]
    assert await phases_of(fleet, m.id) == [
        "preflight",
        "takeoff",
        "go_to",
        "broadcast",
        "return",
        "landing",
        "done",
    ]
    # every play the payload made is in the record, and only plays inside the area
    assert len(done.result["playback"]) == len(speaker.records) > 0
    assert done.result["records_complete"] is True
    assert done.result["plays"]["completed"] == len(speaker.records)
    assert len(done.result["track"]) >= 1

    req = await fleet.wait_request(rid, RequestState.COMPLETED)
    assert "no playback outside the area" in req.request.reason
    [entry] = await occurrences(fleet, rid)
    assert entry["state"] == "completed" and entry["attempt"] == 1
    assert entry["missions"] == [m.id] and entry["no_playback_outside"] is True


async def test_a_clip_the_speaker_refuses_fails_the_flight_and_the_next_attempt_flies(
    fleet: FakeFleet,
) -> None:
    drone, speaker = await fleet.add_speaker_drone(0)
    speaker.refuse("load_clip", "checksum mismatch", times=1)
    rid = await fleet.broadcast("C03", repeats=2)
    first = await fleet.mission_for(rid, MissionState.FAILED)
    assert first.reason == (
        "could not prepare the broadcast: speaker SPK-1 refused clip_load: checksum mismatch"
    )
    assert "start_mission" not in drone.commands
    await fleet.until(
        lambda: flown_again(fleet, rid, 1), "the request goes back to the queue for attempt 2"
    )
    second = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert second.plan["attempt"] == 2
    await drone.fly()
    await fleet.wait_request(rid, RequestState.COMPLETED)
    [entry] = await occurrences(fleet, rid)
    assert entry["state"] == "completed" and entry["attempt"] == 2


async def test_a_start_the_drone_refuses_fails_and_silences_the_speaker(fleet: FakeFleet) -> None:
    drone, speaker = await fleet.add_speaker_drone(0)
    drone.refuse("start_mission", "Arming denied: resolve health failures first")
    rid = await fleet.broadcast("C03", repeats=2)
    first = await fleet.mission_for(rid, MissionState.FAILED)
    assert first.reason == (
        "vehicle refused to start: drone-1 refused MAV_CMD_MISSION_START: DENIED "
        "(Arming denied: resolve health failures first)"
    )
    assert await states_of(fleet, first.id) == ["planned", "authorized", "failed"]
    assert speaker.commands[-1] == "stop" and not speaker.playing
    assert not speaker.records


async def test_attempts_are_limited_then_the_request_fails(fleet: FakeFleet) -> None:
    _, speaker = await fleet.add_speaker_drone(0)
    speaker.refuse("play_in_area", "busy")
    rid = await fleet.broadcast("C03", repeats=2)
    req = await fleet.wait_request(rid, RequestState.FAILED)
    attempts = sorted(m.plan["attempt"] for m in await fleet.missions_of(rid))
    assert attempts == [1, 2, 3]  # broadcast.max_attempts
    assert "no broadcast completed" in req.request.reason
    [entry] = await occurrences(fleet, rid)
    assert entry["state"] == "failed" and entry["attempt"] == 3


async def test_a_cancel_before_take_off_stops_and_silences_the_speaker(fleet: FakeFleet) -> None:
    drone, speaker = await fleet.add_speaker_drone(0)
    drone.hold_back("upload_mission")
    rid = await fleet.broadcast("C03", repeats=2)
    m = await fleet.mission_for(rid, MissionState.PLANNED)
    await fleet.until(lambda: drone.waiting("upload_mission"), "the upload under way")
    rec = await fleet.service.cancel_request(rid, "staff", "testing moved to tomorrow")
    assert rec.request.state == RequestState.CANCELLED
    done = await fleet.mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert done.result.get("requeue", False) is False
    drone.let_through("upload_mission")
    await fleet.until(lambda: speaker.commands[-1] == "stop", "the speaker is silenced")
    assert "start_mission" not in drone.commands and not speaker.playing
    await fleet.round()
    assert [x.id for x in await fleet.missions_of(rid)] == [m.id]


async def test_a_replanned_unstarted_broadcast_is_flown_again_not_cancelled(
    fleet: FakeFleet,
) -> None:
    # MissionService cancels an unstarted mission with requeue=True on a re-plan (here a
    # priority change): the occurrence is flown again by a new attempt
    drone, speaker = await fleet.add_speaker_drone(0)
    drone.hold_back("upload_mission")
    rid = await fleet.broadcast("C03", repeats=2)
    m = await fleet.mission_for(rid, MissionState.PLANNED)
    await fleet.until(lambda: drone.waiting("upload_mission"), "the upload under way")
    await fleet.service.change_priority(rid, Priority.URGENT_MEDICAL, "operator", "outbreak")
    first = await fleet.mission(m.id)
    assert first.state == MissionState.CANCELLED
    assert first.result.get("requeue") is True, "a re-plan must not count as a cancel"
    assert (await fleet.get_request(rid)).request.state == RequestState.APPROVED
    drone.let_through("upload_mission")
    second = await fleet.mission_for(rid, MissionState.UNDERWAY)
    assert second.id != m.id and second.plan["attempt"] == 2
    await drone.fly()
    req = await fleet.wait_request(rid, RequestState.COMPLETED)
    assert req.request.priority == Priority.URGENT_MEDICAL
    [entry] = await occurrences(fleet, rid)
    assert entry["state"] == "completed" and entry["attempt"] == 2
    assert speaker.records and {r.session_id for r in speaker.records} == {
        second.result["session_id"]
    }


async def test_a_cancel_in_flight_returns_home_and_keeps_the_records(fleet: FakeFleet) -> None:
    drone, speaker, rid, m = await flying(fleet)
    await drone.fly(lambda d: len(speaker.records) >= 3)
    await fleet.wait_phase(m.id, Phase.BROADCAST)
    await fleet.service.cancel_mission(m.id, "operator", "thunderstorm")
    await fleet.wait_phase(m.id, Phase.RETURN)
    assert drone.commands[-1] == "return_to_launch"
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.CANCELLED
    assert done.reason.startswith("cancelled (cancelled by operator: thunderstorm); landed")
    assert len(done.result["playback"]) == len(speaker.records) >= 3
    assert done.result["requeue"] is False
    req = await fleet.wait_request(rid, RequestState.CANCELLED)
    [entry] = await occurrences(fleet, rid)
    assert entry["state"] == "cancelled"
    assert req.request.reason


async def test_link_lost_and_regained_is_noted_and_the_broadcast_goes_on(
    fleet: FakeFleet,
) -> None:
    drone, _, rid, m = await flying(fleet)
    await drone.fly_to_item(5)
    await drone.lose_link()
    await drone.fly_to_item(10)
    await drone.regain_link()
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    notes = [e.reason for e in await fleet.events(mission_id=m.id) if e.kind == "vehicle"]
    assert notes == ["link lost; the drone continues its mission", "link regained"]
    await fleet.wait_request(rid, RequestState.COMPLETED)


async def test_a_drone_lost_for_good_fails_when_overdue_with_what_was_recorded(
    fleet: FakeFleet,
) -> None:
    drone, speaker, rid, m = await flying(fleet)
    await drone.fly(lambda d: len(speaker.records) >= 2)
    await drone.lose_link()
    limit = max(fleet.settings.broadcast.max_flight_s, 1.3 * m.plan["duration_s"]) + 300
    await fleet.advance(limit + 1, step=60)
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.FAILED
    assert done.reason == f"not back after {limit:.0f} s"
    assert len(done.result["playback"]) == len(speaker.records) >= 2
    reasons = await fleet.reasons(mission_id=m.id)
    assert any(r.startswith("return to launch failed") for r in reasons), reasons
    await fleet.until(lambda: flown_again(fleet, rid, 1), "the occurrence is to be flown again")


async def test_a_restart_in_flight_follows_the_broadcast_again(fleet: FakeFleet) -> None:
    drone, speaker, rid, m = await flying(fleet)
    await drone.fly(lambda d: len(speaker.records) >= 2)
    await fleet.stop()
    await drone.fly_to_item(20)  # still broadcasting while the service is down
    await fleet.start()
    await drone.fly()
    done = await fleet.wait_mission(m.id)
    assert done.state == MissionState.COMPLETED, done.reason
    reasons = await fleet.reasons(mission_id=m.id)
    assert "service restarted; following the mission again" in reasons
    # the payload kept its records of the whole session until they were collected
    assert len(done.result["playback"]) == len(speaker.records)
    await fleet.wait_request(rid, RequestState.COMPLETED)


async def sortie(
    fleet: FakeFleet, request_id: str, attempt: int, n: int, *states: MissionState
) -> Mission:
    """Wait for the request's mission flying sortie ``n`` of ``attempt`` (in ``states``)."""

    async def found() -> Mission | None:
        for m in await fleet.missions_of(request_id):
            if m.plan["attempt"] == attempt and m.plan["sortie"] == n:
                return m if not states or m.state in states else None
        return None

    return await fleet.until(found, f"sortie {n} of attempt {attempt} in {states}")


async def test_a_later_sortie_waits_for_its_drone_and_a_swapped_battery(
    tmp_path: Path,
) -> None:
    # flights of at most 700 s: C02 takes two, and there is one speaker drone
    async with open_fleet(tmp_path, broadcast={"max_flight_s": 700.0}) as fleet:
        drone, _ = await fleet.add_speaker_drone(0)
        rid = await fleet.broadcast("C02", repeats=2)
        first = await sortie(fleet, rid, 1, 0, MissionState.UNDERWAY)
        second = await sortie(fleet, rid, 1, 1)
        assert (first.plan["sortie"], second.plan["sortie"]) == (0, 1)
        assert second.plan["after"] == first.id and second.vehicle_id == first.vehicle_id
        assert second.state == MissionState.PLANNED
        drone.set_battery(0.3)  # what a long first flight leaves: not enough for the second
        await drone.fly()
        await fleet.wait_mission(first.id, MissionState.COMPLETED)

        async def waits_for_the_swap() -> bool:
            return any(
                "waiting for the battery swap" in r
                for r in await fleet.reasons(mission_id=second.id)
            )

        await fleet.until(waits_for_the_swap, "the second sortie waits for the battery swap")
        assert (await fleet.mission(second.id)).state == MissionState.PLANNED
        assert "start_mission" not in drone.commands[drone.commands.index("start_mission") + 1 :]
        drone.set_battery(1.0)  # the ground crew swapped it
        await fleet.wait_mission(second.id, MissionState.UNDERWAY)
        await drone.fly()
        await fleet.wait_request(rid, RequestState.COMPLETED)
        [entry] = await occurrences(fleet, rid)
        assert entry["state"] == "completed" and entry["attempt"] == 1
        assert entry["missions"] == [first.id, second.id]


async def test_a_later_sortie_is_not_flown_when_the_one_before_failed(tmp_path: Path) -> None:
    async with open_fleet(tmp_path, broadcast={"max_flight_s": 700.0}) as fleet:
        drone, speaker = await fleet.add_speaker_drone(0)
        speaker.refuse("load_clip", "checksum mismatch", times=1)
        rid = await fleet.broadcast("C02", repeats=2)
        await sortie(fleet, rid, 1, 0, MissionState.FAILED)
        second = await sortie(fleet, rid, 1, 1)
        done = await fleet.wait_mission(second.id)
        assert done.state == MissionState.CANCELLED
        assert done.reason.endswith("ended failed; the attempt is flown again")
        # the occurrence is flown again, both sorties, and completes
        await fleet.until(lambda: flown_again(fleet, rid, 1), "attempt 2 is planned")
        await sortie(fleet, rid, 2, 0, MissionState.UNDERWAY)
        await drone.fly()  # its battery flies the second share too: it may start at once
        later = await sortie(fleet, rid, 2, 1, MissionState.UNDERWAY, MissionState.COMPLETED)
        if later.state == MissionState.UNDERWAY:
            await drone.fly()
        await fleet.wait_request(rid, RequestState.COMPLETED)


async def test_a_later_sortie_whose_drone_gets_no_fresh_battery_fails_after_its_wait(
    tmp_path: Path,
) -> None:
    settings = {"max_flight_s": 700.0, "sortie_wait_s": 600.0}
    async with open_fleet(tmp_path, broadcast=settings) as fleet:
        drone, _ = await fleet.add_speaker_drone(0)
        rid = await fleet.broadcast("C02", repeats=2)
        first = await sortie(fleet, rid, 1, 0, MissionState.UNDERWAY)
        second = await sortie(fleet, rid, 1, 1)
        drone.set_battery(0.3)
        await drone.fly()
        await fleet.wait_mission(first.id, MissionState.COMPLETED)

        async def waits() -> bool:
            return any("battery swap" in r for r in await fleet.reasons(mission_id=second.id))

        await fleet.until(waits, "the second sortie waits for the battery swap")
        await fleet.advance(599.0, step=60.0)
        assert (await fleet.mission(second.id)).state == MissionState.PLANNED
        await fleet.advance(2.0)
        done = await fleet.wait_mission(second.id)
        assert done.state == MissionState.FAILED
        assert "not flown: after 600 s, drone-1's battery (30%)" in done.reason
        assert "start_mission" not in drone.commands[drone.commands.index("start_mission") + 1 :]
        # the occurrence is flown again: one drone, both shares again
        await fleet.until(lambda: flown_again(fleet, rid, 1), "attempt 2 is planned")
