"""The speaker protocol end to end over the real Mosquitto: the speaker link and the sim payload.

The payload fetches clips from a real HTTP server on loopback; its drone is a scripted mover
(positions as a function of world time); the clock runs ten times faster than real time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import pytest
from shapely.geometry import Point, Polygon

from firmware_bridges.speaker import wire
from firmware_bridges.speaker.address import link_url
from firmware_bridges.speaker.link import SpeakerHandle, SpeakerLink
from firmware_bridges.speaker.link import register as register_speaker
from fleet.clock import AcceleratedClock
from fleet.errors import CommandRejected, LinkLost
from fleet.events import EventBus, VehicleEvent, VehicleEventKind
from fleet.geo import LocalFrame
from fleet.link import LinkContext, create_link
from fleet.mqtt import BrokerAddress
from fleet.registry import VehicleRegistry
from fleet.speaker import BroadcastArea, ClipRef, PlaySpec, SpeakerControl, SpeakerState, speaker_on
from fleet.vehicle import LinkState, VehicleKind
from sim.speaker.payload import HostFix, SimSpeakerPayload
from tests.support import eventually
from tests.unit.broadcast.clipserver import ClipServer, tone_wav

register_speaker()  # the bridge's URL schemes, as the composition root does

pytestmark = pytest.mark.mosquitto

SPEED = 10.0
"""World seconds per real second."""
FRAME = LocalFrame(22.54, 114.06)
SQUARE_XY = [(-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0)]
SQUARE = Polygon(SQUARE_XY)
AREA = BroadcastArea(tuple(FRAME.to_latlon(x, y) for x, y in SQUARE_XY), min_rel_alt_m=20.0)


class Mover:
    """A drone flying straight legs between keyframes (world seconds from ``start()``)."""

    def __init__(self, clock: AcceleratedClock) -> None:
        self.clock = clock
        self.keys: list[tuple[float, float, float, float]] = [(0.0, -300.0, 0.0, 40.0)]
        self.t0 = clock.monotonic()

    def route(self, *keys: tuple[float, float, float, float]) -> None:
        """Fly through ``(t, x, y, alt)`` keyframes starting now."""
        self.t0 = self.clock.monotonic()
        self.keys = list(keys)

    step_s = 0.0
    """When > 0, positions are those of the last multiple of ``step_s`` (a simulator stepping
    its drone that often, or late), reported with the time they held."""

    def xy(self, t: float | None = None) -> tuple[float, float, float]:
        if t is None:
            t = self.clock.monotonic() - self.t0
        keys = self.keys
        if t <= keys[0][0]:
            return keys[0][1:]
        for (ta, xa, ya, za), (tb, xb, yb, zb) in itertools.pairwise(keys):
            if t <= tb:
                w = (t - ta) / (tb - ta)
                return xa + w * (xb - xa), ya + w * (yb - ya), za + w * (zb - za)
        return keys[-1][1:]

    def fix(self) -> HostFix:
        t = self.clock.monotonic() - self.t0
        held = math.floor(t / self.step_s) * self.step_s if self.step_s > 0 else t
        x, y, z = self.xy(held)
        lat, lon = FRAME.to_latlon(x, y)
        return HostFix(lat, lon, z, self.clock.time() - (t - held))


@dataclass
class Env:
    clock: AcceleratedClock
    registry: VehicleRegistry
    bus: EventBus
    link: SpeakerLink
    payload: SimSpeakerPayload
    mover: Mover
    clips: ClipServer
    namespace: str
    mqtt_url: str

    async def speaker(self) -> SpeakerHandle:
        await eventually(lambda: "speaker-SPK-1" in self.registry, message="payload discovered")
        await eventually(lambda: self.payload.connected.is_set())
        sp = self.link.speaker("SPK-1")
        await eventually(lambda: sp.status.state is not SpeakerState.UNKNOWN)
        return sp

    async def loaded(self, seconds: float = 4.0) -> tuple[SpeakerHandle, ClipRef]:
        sp = await self.speaker()
        url, sha = self.clips.add(tone_wav(seconds))
        clip = ClipRef(url, sha)
        await sp.load_clip(clip)
        return sp, clip


@pytest.fixture
async def env(mqtt_url: str, mqtt_prefix: str) -> AsyncIterator[Env]:
    clock = AcceleratedClock(SPEED)
    registry, bus = VehicleRegistry(), EventBus()
    namespace = f"{mqtt_prefix}/speaker"
    mover = Mover(clock)
    link = create_link(
        link_url(mqtt_url, ns=namespace),
        LinkContext(registry, bus, clock, {"state_timeout_s": 5.0, "resend_interval_s": 1.0}),
    )
    assert isinstance(link, SpeakerLink)
    payload = SimSpeakerPayload(
        payload_id="SPK-1",
        broker_url=mqtt_url,
        clock=clock,
        position=mover.fix,
        host_vehicle="drone-1",
        namespace=namespace,
        clear_retained_on_exit=True,
    )
    async with ClipServer() as clips, link:
        await eventually(link.connected.is_set, message="link connected to the broker")
        async with payload:
            yield Env(clock, registry, bus, link, payload, mover, clips, namespace, mqtt_url)


async def test_discovery_registers_the_payload_on_its_drone(env: Env) -> None:
    sp = await env.speaker()
    entry = env.registry.get("speaker-SPK-1")
    assert entry.info.kind == VehicleKind.PAYLOAD
    assert entry.info.address == "SPK-1"
    assert entry.status.link == LinkState.ONLINE
    assert isinstance(sp, SpeakerControl)
    assert speaker_on(env.registry, "drone-1") is sp
    assert sp.host_vehicle_id == "drone-1"
    assert sp.status.state is SpeakerState.IDLE and sp.status.volume == 100
    await eventually(lambda: entry.status.position is not None)
    assert entry.status.position is not None and entry.status.position.rel_alt == 40.0


async def test_broadcast_sounds_only_inside_the_area(env: Env) -> None:
    sp, clip = await env.loaded(4.0)
    assert sp.status.clip is not None and sp.status.clip.duration_s == pytest.approx(4.0)
    await sp.set_volume(80)
    # out, across the square at 10 m/s (20 s inside), out, back in for 10 s
    env.mover.route(
        (0.0, -150.0, 0.0, 40.0),
        (35.0, 200.0, 0.0, 40.0),
        (45.0, 50.0, 50.0, 40.0),
        (55.0, 50.0, 50.0, 40.0),
        (60.0, 300.0, 50.0, 40.0),
    )
    session = await sp.play_in_area(PlaySpec(AREA, repeats=0))
    await eventually(lambda: env.mover.clock.monotonic() - env.mover.t0 > 62, timeout=20)
    await sp.stop()
    await sp.wait_session_end(session, within=30)
    records = sp.playback_records(session)
    assert [r.seq for r in records] == list(range(len(records)))
    completed = [r for r in records if r.completed]
    # 20 s crossing: 4 or 5 complete plays; the 10 s visit: 2 more
    assert 6 <= len(completed) <= 7
    assert any(not r.completed and r.end_reason == "left_area" for r in records)
    for r in records:
        assert r.volume == 80 and r.clip_sha256 == clip.sha256
        for s in r.samples:
            x, y = FRAME.to_xy(s.lat, s.lon)
            assert SQUARE.covers(Point(x, y)), (r.seq, x, y)
        if r.completed:
            assert r.duration_s == pytest.approx(4.0, abs=0.01)
    # consecutive plays inside the area chain back to back
    for a, b in itertools.pairwise(completed):
        if b.started_at - a.ended_at < 1.0:
            assert b.started_at == pytest.approx(a.ended_at, abs=0.002)
    # the link has exactly what the payload recorded
    assert len(records) == len(env.payload.records)
    await eventually(lambda: sp.status.state is SpeakerState.READY)


async def test_repeats_end_the_session_and_records_lost_on_the_way_are_fetched(env: Env) -> None:
    sp, _ = await env.loaded(2.0)
    env.payload.suppress_seqs = {1, 2}
    env.mover.route((0.0, 0.0, 0.0, 40.0))  # hover in the middle
    with env.bus.subscribe(lambda e: isinstance(e, VehicleEvent)) as events:
        session = await sp.play_in_area(PlaySpec(AREA, repeats=4, period_s=3.0))
        await sp.wait_session_end(session, within=60)
        records = sp.playback_records(session)
        assert [r.seq for r in records] == [0, 1, 2, 3]
        assert all(r.completed for r in records)
        starts = [r.started_at for r in records]
        assert [round(b - a, 3) for a, b in itertools.pairwise(starts)] == [3.0] * 3
        assert env.link.stats.resend_requests >= 1
        assert env.payload.stats.resent_records >= 2
        messages = []
        while (ev := events.get_nowait()) is not None:
            assert isinstance(ev, VehicleEvent)
            messages.append(ev.message)
        assert "broadcast session started" in messages
        assert "broadcast session ended: completed" in messages


async def test_refusals(env: Env) -> None:
    sp = await env.speaker()
    with pytest.raises(CommandRejected) as err:
        await sp.play_in_area(PlaySpec(AREA))
    assert err.value.fields["code"] == "no_clip"
    url, sha = env.clips.add(tone_wav(1.0))
    with pytest.raises(CommandRejected) as err:
        await sp.load_clip(ClipRef(url, "0" * 64))
    assert err.value.fields["code"] == "checksum_mismatch"
    with pytest.raises(CommandRejected) as err:
        await sp.load_clip(ClipRef(env.clips.url("/nothing.wav"), sha))
    assert err.value.fields["code"] == "fetch_failed"
    not_audio, not_sha = env.clips.add(b"this is no audio at all", "/bad.wav")
    with pytest.raises(CommandRejected) as err:
        await sp.load_clip(ClipRef(not_audio, not_sha))
    assert err.value.fields["code"] == "bad_audio"
    await sp.load_clip(ClipRef(url, sha))
    with pytest.raises(CommandRejected) as err:
        await sp.play_in_area(PlaySpec(AREA, period_s=0.5))
    assert err.value.fields["code"] == "bad_request"
    await eventually(lambda: sp.status.state is SpeakerState.READY)


async def publish(env: Env, channel: wire.Channel, payload: bytes, pid: str = "SPK-1") -> None:
    async with aiomqtt.Client(**BrokerAddress.parse(env.mqtt_url).client_kwargs()) as c:
        await c.publish(wire.topic(env.namespace, pid, channel), payload, qos=1)


async def test_bad_commands_get_error_replies_and_never_crash_the_payload(env: Env) -> None:
    sp, _ = await env.loaded(1.0)
    replies: list[wire.ReplyMsg] = []
    async with aiomqtt.Client(**BrokerAddress.parse(env.mqtt_url).client_kwargs()) as c:
        await c.subscribe(wire.topic(env.namespace, "SPK-1", wire.Channel.REPLY), qos=1)
        cmd_topic = wire.topic(env.namespace, "SPK-1", wire.Channel.COMMAND)
        bad = [
            b"\x00\x01 garbage",
            b"{}",
            json.dumps({"version": "9.0", "timestamp": 1, "tid": "v9", "method": "play_stop"}),
            json.dumps({"version": "1.0", "timestamp": 1, "tid": "u1", "method": "fly"}),
            json.dumps(
                {
                    "version": "1.0",
                    "timestamp": 1,
                    "tid": "b1",
                    "method": "volume_set",
                    "data": {"volume": -3},
                }
            ),
        ]
        for payload in bad:
            await c.publish(cmd_topic, payload, qos=1)

        async def collect() -> None:
            async for m in c.messages:
                replies.append(wire.decode(wire.ReplyMsg, m.payload))  # type: ignore[arg-type]
                if len(replies) == 3:
                    return

        await asyncio.wait_for(collect(), 10)
    results = {r.tid: wire.Result(r.result) for r in replies}
    assert results == {
        "v9": wire.Result.UNSUPPORTED_VERSION,
        "u1": wire.Result.UNKNOWN_METHOD,
        "b1": wire.Result.BAD_REQUEST,
    }
    await eventually(lambda: env.payload.stats.bad_messages == 5)
    codes = [e.code for e in env.payload.events if e.kind is wire.EventKind.ERROR]
    assert codes == [
        "bad_json",
        "bad_message",
        "unsupported_version",
        "unknown_method",
        "bad_request",
    ]
    # still working
    await sp.set_volume(30)
    assert env.payload.volume == 30


async def test_bad_messages_from_a_payload_never_crash_the_link(env: Env) -> None:
    sp = await env.speaker()
    before = env.link.stats.bad_messages
    await publish(env, wire.Channel.STATE, b"nonsense")
    await publish(
        env, wire.Channel.PLAYBACK, json.dumps({"version": "1.0", "timestamp": 1}).encode()
    )
    await publish(
        env,
        wire.Channel.EVENT,
        json.dumps({"version": "1.0", "timestamp": 1, "kind": "x"}).encode(),
    )
    await publish(env, wire.Channel.STATE, b"{}", pid="bad/id")  # not a topic of ours
    await eventually(lambda: env.link.stats.bad_messages == before + 3)
    await sp.set_volume(55)
    assert sp.status.volume == 55


async def test_link_state_follows_the_payload(env: Env) -> None:
    sp = await env.speaker()
    with env.bus.subscribe(
        lambda e: isinstance(e, VehicleEvent) and e.kind == VehicleEventKind.LINK_LOST
    ) as lost:
        # a second payload that announces itself once and then falls silent
        ghost = wire.StateMsg(timestamp=1, state=wire.PayloadState.IDLE, volume=100)
        await publish(env, wire.Channel.STATE, wire.encode(ghost), pid="SPK-GHOST")
        await eventually(lambda: "speaker-SPK-GHOST" in env.registry)
        event = await asyncio.wait_for(lost.get(), 10)
        assert isinstance(event, VehicleEvent) and event.vehicle_id == "speaker-SPK-GHOST"
    ghost_sp = env.link.speaker("SPK-GHOST")
    with pytest.raises(LinkLost):
        await ghost_sp.set_volume(10)
    assert sp.vehicle_status.link == LinkState.ONLINE
    # a payload leaving cleanly says OFFLINE
    await env.payload.__aexit__(None, None, None)
    await eventually(lambda: sp.vehicle_status.link == LinkState.OFFLINE, timeout=10)
    # (the fixture's exit is harmless after this)
    env.payload.__aexit__ = _noop  # type: ignore[method-assign]


async def _noop(*_: object) -> None:
    return None


async def _crossing(env: Env, then: Callable[[], Awaitable[None]] | None = None) -> list[Any]:
    """Fly out of the square at 5 m/s while sounding one long clip, calling ``then`` just before
    the boundary; the records of the session."""
    sp, _ = await env.loaded(60.0)
    env.mover.route((0.0, 0.0, 0.0, 40.0), (40.0, 200.0, 0.0, 40.0))
    session = await sp.play_in_area(PlaySpec(AREA, repeats=0))
    await eventually(lambda: env.payload.state is wire.PayloadState.PLAYING, timeout=10)
    if then is not None:
        await eventually(lambda: env.mover.xy()[0] >= 90.0, timeout=20, interval=0.001)
        await then()
    await eventually(lambda: env.mover.xy()[0] > 150.0, timeout=20)
    await sp.stop()
    await sp.wait_session_end(session, within=30)
    return sp.playback_records(session)


def _assert_silent_outside(records: list[Any]) -> None:
    assert any(r.end_reason == "left_area" for r in records), records
    for r in records:
        for s in r.samples:
            x, y = FRAME.to_xy(s.lat, s.lon)
            assert SQUARE.covers(Point(x, y)), (r.seq, r.end_reason, x, y)


async def test_silent_before_the_boundary_with_positions_older_than_its_checks(env: Env) -> None:
    # the drone's position is updated only every 1.5 s (longer than the payload's lookahead)
    env.mover.step_s = 1.5
    _assert_silent_outside(await _crossing(env))


async def test_silent_before_the_boundary_when_its_loop_stalls(env: Env) -> None:
    async def stall() -> None:
        # the whole process stops for 3 world seconds 2-4 m before the payload would have
        # fallen silent; the drone flies on (the mover is a function of the clock)
        time.sleep(3.0 / SPEED)  # noqa: ASYNC251 - blocking the loop is the point

    _assert_silent_outside(await _crossing(env, stall))
