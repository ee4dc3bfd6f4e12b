"""What a broadcast request does after each flight, on the real record (SQLite): the proof of
the occurrence, flying it again after a failure, the next occurrence, the end.

Flights are stood in for by mission rows whose playback records are what the plan predicts
(:func:`missions.broadcast.planner.predicted_records`), written as the run writes them; the
flights themselves are flown in ``tests/e2e/test_broadcast_flight.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import ManualClock
from fleet.events import EventBus
from fleet.registry import VehicleRegistry
from fleet.settings import Settings
from fleet.store.repository import Store
from fleet.store.tables import Mission, Task
from fleet.worldfile import load_world
from missions.broadcast.dispatch import broadcast_params
from missions.broadcast.occurrences import next_step, occurrence_key, settled_keys
from missions.broadcast.outcome import (
    attempts_of,
    finish,
    latest_attempt,
    record_missed,
    settle,
    settle_all,
    speaker_model,
)
from missions.broadcast.planner import DroneStart, plan_broadcast, predicted_records
from missions.broadcast.record import record_to_json, share_to_json
from missions.broadcast.request import (
    AtTimes,
    ClipMessage,
    CommunityArea,
    NewBroadcast,
    broadcast_from_dict,
    resolve_area,
)
from missions.broadcast.service import BroadcastService
from missions.context import MissionContext
from missions.journal import Journal
from missions.states import MissionKind, MissionState, RequestState, TaskState
from tests.service import WORLDS
from tests.unit.broadcast.clipserver import tone_wav


@dataclass
class Env:
    ctx: MissionContext
    svc: BroadcastService
    clock: ManualClock
    sha: str


@asynccontextmanager
async def env(tmp_path: Path, clip_s: float = 3.0, **broadcast: Any) -> AsyncIterator[Env]:
    settings = Settings.load(
        database={"url": f"sqlite:///{tmp_path / 'sf.db'}"},
        world={"path": str(WORLDS / "shatou.geojson")},
        broadcast={"clip_dir": str(tmp_path / "clips"), **broadcast},
        vda5050={"links": []},
    )
    world = load_world(settings.world.path)
    clock = ManualClock()
    bus = EventBus()
    async with Store.open(settings.database.url) as store:
        await store.sync_world(world)
        ctx = MissionContext(
            store, world, VehicleRegistry(), bus, clock, Journal(clock, bus), settings
        )
        svc = BroadcastService.from_settings(ctx)
        clip = await svc.clips.put(tone_wav(clip_s))
        yield Env(ctx, svc, clock, clip.sha256)


async def fly(
    e: Env,
    request_id: str,
    occurrence: str,
    attempt: int,
    outcome: MissionState = MissionState.COMPLETED,
    *,
    sound: bool = True,
) -> list[Mission]:
    """Plan the occurrence on drones at the pads and record its missions as ended, with the
    playback the plan predicts (none with ``sound=False``), as the planner and run do."""
    ctx = e.ctx
    rec = await ctx.store.get_request(request_id)
    new = broadcast_from_dict(rec.request.details)
    area = resolve_area(new.area, ctx.world)
    starts = [
        DroneStart(f"drone-{i + 1}", p.location.lat, p.location.lon)
        for i, p in enumerate(ctx.world.pads)
    ]
    plan = plan_broadcast(
        area,
        ctx.world,
        starts,
        rec.request.details["clip"]["duration_s"],
        broadcast_params(ctx.settings.broadcast, new),
        speaker_model(ctx),
    )
    now = e.clock.now()
    records = predicted_records(plan, ctx.world, e.clock.time())
    missions = []
    async with ctx.store.transaction() as s:
        for i, d in enumerate(plan.drones):
            mine = [r for r in records if r.payload_id == f"predicted-{d.vehicle_id}"]
            m = Mission(
                kind=MissionKind.DRONE_BROADCAST,
                vehicle_id=None,
                state=outcome,
                created_at=now,
                started_at=now if sound else None,
                ended_at=now,
                reason="" if outcome == MissionState.COMPLETED else "link lost",
                plan=share_to_json(
                    d,
                    plan,
                    request_id=request_id,
                    occurrence=occurrence,
                    attempt=attempt,
                    share=i,
                    clip_sha256=e.sha,
                ),
                result={"playback": [record_to_json(r) for r in mine] if sound else []},
            )
            s.add(m)
            await s.flush()
            s.add(
                Task(
                    request_id=request_id,
                    mission_id=m.id,
                    kind=MissionKind.DRONE_BROADCAST,
                    community_id=rec.request.community_id,
                    state=TaskState.DONE,
                    created_at=now,
                )
            )
            missions.append(m)
    # the request was scheduled for it (the planner's move)
    await ctx.store.update_request(request_id, state=RequestState.IN_PROGRESS)
    return missions


async def submit(e: Env, community: str = "C03", **kw: Any) -> str:
    new = NewBroadcast(area=CommunityArea(community), message=ClipMessage(e.sha), repeats=2, **kw)
    sub = await e.svc.submit(new, "staff")
    assert sub.created and sub.record.request.state == RequestState.APPROVED
    return sub.record.request.id


async def state_of(e: Env, request_id: str) -> tuple[RequestState, str, dict[str, Any]]:
    req = (await e.ctx.store.get_request(request_id)).request
    return RequestState(req.state), req.reason, req.details


async def test_a_completed_flight_completes_the_request_with_its_proof(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        rid = await submit(e)
        req = (await e.ctx.store.get_request(rid)).request
        assert req.approved_at is not None
        key = occurrence_key(req.approved_at)
        [m] = await fly(e, rid, key, 1)
        assert await settle(e.ctx, rid)
        assert not await settle(e.ctx, rid)  # settling twice changes nothing
        state, reason, details = await state_of(e, rid)
        assert state == RequestState.COMPLETED
        assert "broadcast completed" in reason and "no playback outside" in reason
        [entry] = details["occurrences"]
        assert entry["state"] == "completed" and entry["at"] == key
        assert entry["missions"] == [m.id] and entry["covered_fraction"] >= 0.95
        assert entry["no_playback_outside"] is True
        proof = await e.svc.proof(rid)
        assert proof.state == "completed" and proof.occurrence == key
        assert proof.report.covered_fraction == pytest.approx(entry["covered_fraction"], abs=1e-4)
        assert (await e.svc.proof(rid)) is proof  # cached
        png = await e.svc.proof_png(rid)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_failed_flight_is_flown_again_then_the_request_fails(tmp_path: Path) -> None:
    async with env(tmp_path, max_attempts=2) as e:
        rid = await submit(e)
        key = occurrence_key((await e.ctx.store.get_request(rid)).request.approved_at)  # type: ignore[arg-type]
        await fly(e, rid, key, 1, MissionState.FAILED, sound=False)
        assert await settle(e.ctx, rid)
        state, reason, details = await state_of(e, rid)
        assert state == RequestState.APPROVED and details["occurrences"] == []
        events = await e.ctx.store.events(request_id=rid)
        assert any(
            ev.to_state == RequestState.APPROVED and "it will be flown again" in ev.reason
            for ev in events
        )
        latest = await latest_attempt(e.ctx, rid)
        assert latest is not None and latest.attempt == 1 and not latest.active
        # the dispatcher flies the same occurrence again, as attempt 2; it fails too
        step = next_step(
            broadcast_from_dict(details).schedule,
            (await e.ctx.store.get_request(rid)).request.approved_at,  # type: ignore[arg-type]
            settled_keys(details),
            e.clock.now(),
            lead_s=120,
            max_delay_s=1800,
        )
        assert step.due is not None and occurrence_key(step.due) == key
        await fly(e, rid, key, 2, MissionState.INTERRUPTED)
        assert await settle(e.ctx, rid)
        state, reason, details = await state_of(e, rid)
        assert state == RequestState.FAILED
        [entry] = details["occurrences"]
        assert entry["state"] == "failed" and entry["attempt"] == 2
        assert "no broadcast completed" in reason and "link lost" in reason
        # the partial proof of the last attempt is still served
        assert [a.attempt for a in await attempts_of(e.ctx, rid)] == [1, 2]
        assert (await e.svc.proof(rid)).attempt == 2


async def test_each_occurrence_is_flown_and_logged_until_the_last(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        t1 = e.clock.now() + timedelta(hours=1)
        t2 = e.clock.now() + timedelta(hours=3)
        t3 = e.clock.now() + timedelta(hours=5)
        rid = await submit(e, schedule=AtTimes((t1, t2, t3)))
        await e.clock.advance(3600)
        await fly(e, rid, occurrence_key(t1), 1)
        assert await settle(e.ctx, rid)
        state, reason, details = await state_of(e, rid)
        assert state == RequestState.APPROVED
        assert [x["state"] for x in details["occurrences"]] == ["completed"]
        # the second one was never flown: the dispatcher records it missed
        await e.clock.advance(3 * 3600)
        step = next_step(
            broadcast_from_dict(details).schedule,
            e.clock.now(),
            settled_keys(details),
            e.clock.now(),
            lead_s=120,
            max_delay_s=1800,
        )
        assert step.missed == (t2.replace(microsecond=0),) and step.waiting_for is not None
        await record_missed(e.ctx, rid, step.missed, "no free drone carrying a speaker")
        await e.clock.advance(3600)
        await fly(e, rid, occurrence_key(t3), 1)
        assert await settle(e.ctx, rid)
        state, reason, details = await state_of(e, rid)
        assert state == RequestState.COMPLETED
        assert [x["state"] for x in details["occurrences"]] == ["completed", "missed", "completed"]
        assert "2 of 3 broadcasts completed" in reason and "missed" in reason
        # every occurrence has its own proof
        assert (await e.svc.proof(rid, occurrence_key(t1))).occurrence == occurrence_key(t1)
        assert (await e.svc.proof(rid)).occurrence == occurrence_key(t3)


async def test_a_cancelled_flight_cancels_the_occurrence_and_restart_settles(
    tmp_path: Path,
) -> None:
    async with env(tmp_path) as e:
        rid = await submit(e)
        key = occurrence_key((await e.ctx.store.get_request(rid)).request.approved_at)  # type: ignore[arg-type]
        await fly(e, rid, key, 1, MissionState.CANCELLED)
        # nobody settled it (as if the service stopped right after the flight): at start
        assert await settle_all(e.ctx) == 1
        state, reason, details = await state_of(e, rid)
        assert state == RequestState.CANCELLED and "cancelled" in reason
        assert details["occurrences"][0]["state"] == "cancelled"


async def test_a_request_whose_occurrences_all_passed_ends(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        t1 = e.clock.now() + timedelta(minutes=10)
        rid = await submit(e, schedule=AtTimes((t1,)))
        await record_missed(e.ctx, rid, [t1], "no free drone carrying a speaker")
        await finish(e.ctx, rid)
        state, reason, _ = await state_of(e, rid)
        assert state == RequestState.FAILED
        assert "no broadcast completed" in reason and "no free drone" in reason


async def test_an_occurrence_flown_by_two_drones_is_proven_from_both(tmp_path: Path) -> None:
    # the largest community with a 12 s message needs more flight than one drone has
    async with env(tmp_path, clip_s=12.0) as e:
        rid = await submit(e, "C06")
        key = occurrence_key((await e.ctx.store.get_request(rid)).request.approved_at)  # type: ignore[arg-type]
        missions = await fly(e, rid, key, 1)
        assert len(missions) == 2
        # the first drone landing settles nothing while the second still flies
        await e.ctx.store.update_mission(missions[1].id, state=MissionState.UNDERWAY)
        assert not await settle(e.ctx, rid)
        proof = await e.svc.proof(rid)
        assert proof.state == "in_progress"
        await e.ctx.store.update_mission(missions[1].id, state=MissionState.COMPLETED)
        assert await settle(e.ctx, rid)
        state, _, details = await state_of(e, rid)
        assert state == RequestState.COMPLETED
        [entry] = details["occurrences"]
        assert entry["missions"] == [m.id for m in missions]
        proof = await e.svc.proof(rid)
        assert len(proof.report.payload_ids) == 2
        assert proof.report.covered_fraction >= 0.95
