"""A simulated loudspeaker payload speaking the speaker protocol over MQTT.

:class:`SimSpeakerPayload` behaves like the payload of ``docs/protocols/speaker.md``: it
announces itself (``info``, ``connection`` with a last will), obeys commands (``clip_load``
fetches the clip over HTTP and checks its SHA-256 and WAV format; ``play_area``, ``play_stop``,
``volume_set``, ``records_resend``), publishes its state every second and on change, and
reports every play as a ``playback`` record with the positions of its drone sampled while it
sounded. Every incoming message is validated: a bad one gets an error reply (when it carries a
``tid``) and an ``error`` event, never a crash.

It follows its drone as a real payload reads its flight controller: ``position`` is a callable
returning the drone's ground truth (:func:`follow` reads a :class:`sim.drone.vehicle.SimVehicle`
in the same process). It **sounds only while the drone is inside the area** and at least the
minimum height above take-off, looking ``lookahead_s`` ahead so that it falls silent before
crossing the boundary (the rules are in the protocol document, "Playback rules"). Time is the
injected clock's; the payload ticks every ``tick_s`` world seconds. The geometry of those rules
(positions, look-ahead, missed checks) is in :mod:`sim.speaker.area_gate`, fetching and checking
clips in :mod:`sim.speaker.clip`; the broker connection is a
:class:`fleet.mqtt_client.MqttConnection`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import aiomqtt
import httpx
import structlog
from pydantic import BaseModel

from firmware_bridges.speaker import wire
from fleet.clock import Clock
from fleet.mqtt import BrokerAddress
from fleet.mqtt_client import MqttConnection
from fleet.tasks import cancel_and_wait
from sim.speaker.area_gate import (
    AreaGate,
    HostFix,
    PlaySession,
    PositionSource,
    Sample,
    follow,
    play_session,
)
from sim.speaker.clip import MAX_CLIP_BYTES, Clip, ClipError, check_clip, fetch_clip

__all__ = [
    "MAX_CLIP_BYTES",
    "HostFix",
    "PayloadStats",
    "PositionSource",
    "SimSpeakerPayload",
    "attach_speaker",
    "follow",
]

log = structlog.get_logger(__name__)

RECONNECT_S = 0.5
"""Delay before reconnecting to the broker (real seconds)."""
KEEPALIVE_S = 15
"""MQTT keep-alive (seconds)."""
PUBLISH_TIMEOUT_S = 2.0
"""Longest wait for a publish (real seconds): its position checks run in the same loop, and on a
broken connection aiomqtt would wait 10 s. A record not confirmed in time counts as unsent and
goes again when the service asks for it."""


@dataclass
class _Play:
    started_at: float
    samples: list[Sample]
    volume: int
    last_sample_t: float


@dataclass
class PayloadStats:
    """Counters for tests."""

    commands: int = 0
    bad_messages: int = 0
    published_records: int = 0
    resent_records: int = 0


@dataclass
class SimSpeakerPayload:
    """A loudspeaker payload on a simulated drone (see module docstring)."""

    payload_id: str
    broker_url: str
    clock: Clock
    position: PositionSource
    host_vehicle: str | None = None
    namespace: str = wire.DEFAULT_NAMESPACE
    tick_s: float = 0.1
    """World seconds between two checks of the drone's position."""
    lookahead_s: float = 1.0
    """Silent when the drone, keeping its velocity, would be outside this much later."""
    sample_s: float = 1.0
    """World seconds between two recorded positions while sounding."""
    state_interval_s: float = 1.0
    source_level_db: float = 120.0
    model: str = "streetfleet sim speaker"
    http_timeout_s: float = 30.0
    clear_retained_on_exit: bool = False
    """Clear the retained topics when leaving (tests sharing a broker)."""
    suppress_seqs: set[int] = field(default_factory=set)
    """Fault injection: records with these sequence numbers are not published until resent."""

    volume: int = 100
    state: wire.PayloadState = wire.PayloadState.IDLE
    clip: Clip | None = None
    session: PlaySession | None = None
    records: list[wire.PlaybackMsg] = field(default_factory=list)
    """Every playback record, in sequence order (the payload's log)."""
    events: list[wire.EventMsg] = field(default_factory=list)
    """Every event published."""
    stats: PayloadStats = field(default_factory=PayloadStats)
    error: wire.ErrorInfo | None = None

    def __post_init__(self) -> None:
        if not wire.PAYLOAD_ID_RE.match(self.payload_id):
            raise ValueError(f"bad payload id {self.payload_id!r}")
        self.namespace = wire.check_namespace(self.namespace)
        self.broker = BrokerAddress.parse(self.broker_url)
        self._mqtt = MqttConnection(
            self.broker,
            name="sim.speaker",
            client_id=f"sim-speaker-{self.payload_id}",
            subscriptions=[(self._topic(wire.Channel.COMMAND), 1)],
            on_message=self._on_message,
            on_connect=self._on_connect,
            will=self._will,
            keepalive_s=KEEPALIVE_S,
            reconnect_min_s=RECONNECT_S,
            reconnect_max_s=RECONNECT_S,
            publish_timeout_s=PUBLISH_TIMEOUT_S,
            quiet=True,
            log_fields={"payload": self.payload_id},
        )
        self.connected = self._mqtt.connected
        """Set while connected to the broker (after the birth messages)."""
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._play: _Play | None = None
        self._loading = False
        self._gate = AreaGate(self.tick_s, self.lookahead_s)
        self._prev_ok = False
        self._unsent: set[int] = set()
        self._last_state_at = float("-inf")
        self._state_dirty = True

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        await self._mqtt.__aenter__()
        self._tasks = [
            tg.create_task(self._tick_loop(), name=f"sim-speaker-tick {self.payload_id}"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        offline = self._connection(wire.ConnectionState.OFFLINE)
        if await self._publish(wire.Channel.CONNECTION, offline) and self.clear_retained_on_exit:
            for ch in (wire.Channel.INFO, wire.Channel.CONNECTION, wire.Channel.STATE):
                await self._mqtt.publish(self._topic(ch), b"", qos=1, retain=True)
        await cancel_and_wait(self._tasks)
        await self._mqtt.__aexit__(None, None, None)
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    # --- MQTT ---------------------------------------------------------------------------------

    def _topic(self, channel: wire.Channel) -> str:
        return wire.topic(self.namespace, self.payload_id, channel)

    def _connection(self, state: wire.ConnectionState) -> wire.ConnectionMsg:
        return wire.ConnectionMsg(timestamp=self._now_ms(), state=state)

    def _now_ms(self) -> int:
        return wire.ms(self.clock.time())

    async def _publish(self, channel: wire.Channel, msg: BaseModel, qos: int = 1) -> bool:
        retain = channel in (wire.Channel.INFO, wire.Channel.CONNECTION, wire.Channel.STATE)
        return await self._mqtt.publish(
            self._topic(channel), wire.encode(msg), qos=qos, retain=retain
        )

    def _will(self) -> aiomqtt.Will:
        return aiomqtt.Will(
            self._topic(wire.Channel.CONNECTION),
            wire.encode(self._connection(wire.ConnectionState.CONNECTIONBROKEN)),
            qos=1,
            retain=True,
        )

    async def _on_connect(self) -> None:
        """Birth messages, then the records made while the broker was away."""
        await self._publish(wire.Channel.INFO, self._info())
        await self._publish(wire.Channel.CONNECTION, self._connection(wire.ConnectionState.ONLINE))
        self._state_dirty = True
        await self._publish_state()
        for seq in sorted(self._unsent):
            if await self._publish(wire.Channel.PLAYBACK, self.records[seq]):
                self._unsent.discard(seq)

    def _info(self) -> wire.InfoMsg:
        return wire.InfoMsg(
            timestamp=self._now_ms(),
            payload_id=self.payload_id,
            host_vehicle=self.host_vehicle,
            model=self.model,
            firmware="sim-1.0",
            source_level_db=self.source_level_db,
            formats=["wav"],
            max_clip_s=600.0,
        )

    async def _on_message(self, message: aiomqtt.Message) -> None:
        raw = message.payload
        if not isinstance(raw, bytes | bytearray):
            raw = str(raw or "").encode()
        self.stats.commands += 1
        try:
            cmd, data = wire.decode_command(raw)
        except wire.WireError as exc:
            self.stats.bad_messages += 1
            if exc.tid is not None:
                await self._reply(
                    exc.tid,
                    "",
                    wire.RESULT_OF_CODE.get(exc.code, wire.Result.BAD_REQUEST),
                    exc.code,
                    exc.reason,
                )
            await self._event(wire.EventKind.ERROR, code=exc.code, message=exc.reason, tid=exc.tid)
            return
        try:
            await self._execute(cmd, data)
        except Exception as exc:  # the payload never dies of a command
            log.exception("sim.speaker.command_failed", payload=self.payload_id)
            await self._reply(cmd.tid, cmd.method, wire.Result.INTERNAL, "internal", str(exc))

    async def _reply(
        self,
        tid: str,
        method: str,
        result: wire.Result,
        code: str | None = None,
        message: str = "",
        output: dict[str, object] | None = None,
    ) -> None:
        await self._publish(
            wire.Channel.REPLY,
            wire.ReplyMsg(
                timestamp=self._now_ms(),
                tid=tid,
                method=str(method),
                result=int(result),
                error=wire.ErrorInfo(code=code, message=message) if code else None,
                output=output or {},
            ),
        )

    async def _event(
        self,
        kind: wire.EventKind,
        *,
        code: str | None = None,
        message: str = "",
        tid: str | None = None,
        session_id: str | None = None,
        data: dict[str, object] | None = None,
    ) -> None:
        ev = wire.EventMsg(
            timestamp=self._now_ms(),
            kind=kind,
            code=code,
            message=message[:1000],
            tid=tid,
            session_id=session_id,
            data=data or {},
        )
        self.events.append(ev)
        await self._publish(wire.Channel.EVENT, ev)

    # --- commands -----------------------------------------------------------------------------

    async def _execute(self, cmd: wire.CommandMsg, data: wire._Wire) -> None:
        m = cmd.method
        if isinstance(data, wire.ClipLoadData):
            if self._loading:
                await self._reply(cmd.tid, m, wire.Result.BUSY, "busy", "a clip is loading")
                return
            if self.session is not None:
                await self._reply(
                    cmd.tid, m, wire.Result.BUSY, "busy", "a broadcast is active; stop it first"
                )
                return
            self._loading = True
            self._set_state(wire.PayloadState.LOADING)
            assert self._tg is not None
            self._tg.create_task(self._load(cmd.tid, data))
        elif isinstance(data, wire.PlayAreaData):
            if self._loading:
                await self._reply(cmd.tid, m, wire.Result.BUSY, "busy", "a clip is loading")
                return
            if self.clip is None:
                await self._reply(cmd.tid, m, wire.Result.NO_CLIP, "no_clip", "load a clip first")
                return
            period = None if data.period_ms is None else data.period_ms / 1000.0
            if period is not None and period < self.clip.duration_s:
                await self._reply(
                    cmd.tid,
                    m,
                    wire.Result.BAD_REQUEST,
                    "bad_request",
                    f"period {period:g} s is shorter than the clip ({self.clip.duration_s:.2f} s)",
                )
                return
            session = play_session(cmd.tid, data, period)
            if session is None:
                await self._reply(
                    cmd.tid,
                    m,
                    wire.Result.BAD_REQUEST,
                    "bad_request",
                    "the area is not a simple polygon",
                )
                return
            if self.session is not None:
                await self._end_session(wire.EndReason.STOPPED)
            self.session = session
            self._set_state(wire.PayloadState.WAITING)
            await self._reply(cmd.tid, m, wire.Result.OK, output={"session_id": cmd.tid})
            await self._event(wire.EventKind.SESSION_STARTED, session_id=cmd.tid)
        elif isinstance(data, wire.PlayStopData):
            if self.session is not None:
                await self._end_session(wire.EndReason.STOPPED)
            await self._reply(cmd.tid, m, wire.Result.OK)
        elif isinstance(data, wire.VolumeSetData):
            self.volume = data.volume
            if self._play is not None:
                self._play.volume = min(self._play.volume, data.volume)
            self._state_dirty = True
            await self._reply(cmd.tid, m, wire.Result.OK)
        elif isinstance(data, wire.RecordsResendData):
            count = 0
            for rec in self.records:
                if rec.seq >= data.from_seq:
                    self.suppress_seqs.discard(rec.seq)
                    await self._publish(wire.Channel.PLAYBACK, rec)
                    count += 1
            self.stats.resent_records += count
            await self._reply(cmd.tid, m, wire.Result.OK, output={"count": count})

    async def _load(self, tid: str, data: wire.ClipLoadData) -> None:
        method = wire.Method.CLIP_LOAD
        try:
            await self._event(
                wire.EventKind.CLIP_PROGRESS, tid=tid, data={"step": "download", "percent": 0}
            )
            try:
                body = await fetch_clip(data.url, self.http_timeout_s)
            except (httpx.HTTPError, ValueError) as exc:
                self._set_state(wire.PayloadState.READY if self.clip else wire.PayloadState.IDLE)
                await self._reply(tid, method, wire.Result.FETCH_FAILED, "fetch_failed", str(exc))
                return
            await self._event(
                wire.EventKind.CLIP_PROGRESS, tid=tid, data={"step": "verify", "percent": 100}
            )
            try:
                loaded = check_clip(body, data.sha256)
            except ClipError as exc:
                self._set_state(wire.PayloadState.READY if self.clip else wire.PayloadState.IDLE)
                await self._reply(tid, method, exc.result, exc.code, exc.reason)
                return
            self.clip = loaded
            self._set_state(wire.PayloadState.READY)
            await self._reply(
                tid,
                method,
                wire.Result.OK,
                output={"duration_ms": wire.ms(loaded.duration_s), "size_bytes": loaded.size_bytes},
            )
        finally:
            self._loading = False

    # --- playback -----------------------------------------------------------------------------

    def _set_state(self, state: wire.PayloadState) -> None:
        if state is not self.state:
            self.state = state
            self._state_dirty = True

    async def _tick_loop(self) -> None:
        while True:
            await self.clock.sleep(self.tick_s)
            try:
                await self._tick()
            except Exception:
                log.exception("sim.speaker.tick_failed", payload=self.payload_id)

    async def _tick(self) -> None:
        now = self.clock.time()
        fix = self.position()
        session = self.session
        ok = False
        if session is not None and self.clip is not None:
            ok, why = self._gate.check(session, fix, self.clock.time())
            play = self._play
            missed = None if play is None else self._gate.missed_stop(session, now, fix)
            if play is not None:
                end_at = play.started_at + self.clip.duration_s
                if missed is not None and missed[0] < end_at:
                    at, why = missed
                    await self._finish_play(
                        session,
                        at,
                        False,
                        wire.EndReason(why),
                        self._gate.interpolate(at, now, fix),
                    )
                    session.next_start = float("-inf")
                elif now >= end_at:
                    # the clip ended between the last tick and now: interpolate its last position
                    last = self._gate.interpolate(end_at, now, fix)
                    await self._finish_play(session, end_at, True, wire.EndReason.COMPLETED, last)
                    session.next_start = (
                        end_at if session.period_s is None else play.started_at + session.period_s
                    )
                    if session.repeats and session.plays_completed >= session.repeats:
                        await self._end_session(wire.EndReason.COMPLETED)
                        session = None
                elif not ok:
                    await self._finish_play(
                        session, now, False, wire.EndReason(why), self._gate.sample(now, fix)
                    )
                    session.next_start = float("-inf")
                elif fix is not None and now - play.last_sample_t >= self.sample_s:
                    play.samples.append(self._gate.sample(now, fix))
                    play.last_sample_t = now
            if session is not None and self._play is None:
                if ok and now >= session.next_start and fix is not None:
                    # a play that fell due since the last tick (chained loop) starts when due
                    due = session.next_start
                    if self._prev_ok and missed is None and self._gate.prev_t - 1e-9 <= due < now:
                        start, first = due, self._gate.interpolate(due, now, fix)
                    else:
                        start, first = now, self._gate.sample(now, fix)
                    self._play = _Play(start, [first], self.volume, start)
                    session.plays_started += 1
                    self._set_state(wire.PayloadState.PLAYING)
                elif self.state is not wire.PayloadState.WAITING:
                    self._set_state(wire.PayloadState.WAITING)
        self._gate.advance(now, fix)
        self._prev_ok = ok
        if self._state_dirty or now - self._last_state_at >= self.state_interval_s:
            await self._publish_state(fix)

    async def _finish_play(
        self,
        session: PlaySession,
        end: float,
        completed: bool,
        reason: wire.EndReason,
        last: Sample,
    ) -> None:
        play = self._play
        assert play is not None and self.clip is not None
        self._play = None
        samples = [s for s in play.samples if s[0] < end]
        samples.append((end, last[1], last[2], last[3]))
        seq = len(self.records)
        rec = wire.PlaybackMsg(
            timestamp=self._now_ms(),
            session_id=session.session_id,
            seq=seq,
            clip_sha256=self.clip.sha256,
            started_at=wire.ms(play.started_at),
            ended_at=wire.ms(end),
            completed=completed,
            end_reason=reason,
            volume=play.volume,
            samples=[(wire.ms(t), lat, lon, alt) for t, lat, lon, alt in samples],
        )
        self.records.append(rec)
        if session.first_seq < 0:
            session.first_seq = seq
        session.last_seq = seq
        if completed:
            session.plays_completed += 1
        self._set_state(wire.PayloadState.WAITING)
        if seq in self.suppress_seqs:
            return
        if await self._publish(wire.Channel.PLAYBACK, rec):
            self.stats.published_records += 1
        else:
            self._unsent.add(seq)

    async def _end_session(self, reason: wire.EndReason) -> None:
        session = self.session
        if session is None:
            return
        if self._play is not None:
            fix = self.position()
            now = self.clock.time()
            await self._finish_play(
                session, now, False, wire.EndReason.STOPPED, self._gate.sample(now, fix)
            )
        self.session = None
        self._set_state(wire.PayloadState.READY if self.clip else wire.PayloadState.IDLE)
        await self._event(
            wire.EventKind.SESSION_ENDED,
            session_id=session.session_id,
            data={
                "reason": reason.value,
                "plays_started": session.plays_started,
                "plays_completed": session.plays_completed,
                "first_seq": session.first_seq,
                "last_seq": session.last_seq,
            },
        )

    async def _publish_state(self, fix: HostFix | None = None) -> None:
        fix = fix if fix is not None else self.position()
        session = self.session
        inside = False
        if session is not None:
            inside, _ = self._gate.check(session, fix, self.clock.time())
        msg = wire.StateMsg(
            timestamp=self._now_ms(),
            state=self.state,
            volume=self.volume,
            clip=None
            if self.clip is None
            else wire.ClipInfo(
                sha256=self.clip.sha256,
                duration_ms=wire.ms(self.clip.duration_s),
                size_bytes=self.clip.size_bytes,
            ),
            session=None
            if session is None
            else wire.SessionInfo(
                session_id=session.session_id,
                repeats=session.repeats,
                period_ms=None if session.period_s is None else wire.ms(session.period_s),
                plays_started=session.plays_started,
                plays_completed=session.plays_completed,
                inside_area=inside,
            ),
            position=None
            if fix is None
            else wire.PositionInfo(lat=fix.lat, lon=fix.lon, rel_alt=fix.rel_alt),
            error=self.error,
            last_seq=len(self.records) - 1,
        )
        if await self._publish(wire.Channel.STATE, msg, qos=0):
            self._last_state_at = self.clock.time()
            self._state_dirty = False


def attach_speaker(
    vehicle: object,
    broker_url: str,
    clock: Clock,
    *,
    payload_id: str | None = None,
    host_vehicle: str | None = None,
    **options: object,
) -> SimSpeakerPayload:
    """A speaker payload mounted on a sim drone: it follows the drone's ground truth.

    ``payload_id`` defaults to ``SPK-{sysid}`` and ``host_vehicle`` to ``drone-{sysid}`` (the
    fleet id the MAVLink bridge gives that drone). Enter it as a context manager, or pass it to
    :class:`sim.runner.SimFleet` in ``components``.
    """
    # a sim.drone SimVehicle, taken as object so that this module does not import sim.drone
    sysid = int(vehicle.sysid)  # type: ignore[attr-defined]
    return SimSpeakerPayload(
        payload_id=payload_id or f"SPK-{sysid}",
        broker_url=broker_url,
        clock=clock,
        position=follow(vehicle),
        host_vehicle=host_vehicle or f"drone-{sysid}",
        **options,  # type: ignore[arg-type]  # SimSpeakerPayload's own fields, checked by it
    )
