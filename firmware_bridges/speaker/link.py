"""The speaker link: loudspeaker payloads over one MQTT broker connection.

:class:`SpeakerLink` is created from a ``speaker+mqtt://`` URL (forms in
:mod:`firmware_bridges.speaker.address`; its :func:`register` adds the schemes). While
open it owns:

- its broker connection (:class:`fleet.mqtt_client.MqttConnection`): subscribed to the
  payloads' ``info``, ``connection``, ``state`` (QoS 0), ``reply``, ``playback`` and ``event``
  (QoS 1) topics, reconnecting with exponential backoff (real time: it is about sockets);
- in its ``TaskGroup``, the watchdog (world time): a payload silent for longer than its state
  timeout is marked :attr:`LinkState.LOST <fleet.vehicle.LinkState.LOST>`; a session whose end
  was announced but whose playback records have gaps gets a ``records_resend`` until they are
  all in.

Payloads are discovered from their first message and added to the vehicle registry as
``speaker-{payload_id}`` with kind ``payload``, their host drone and a
:class:`~firmware_bridges.speaker.control.SpeakerHandle`
(the :class:`fleet.speaker.SpeakerControl` of that payload) as control handle;
:func:`fleet.speaker.speaker_on` finds the speaker of a drone. Messages that are not valid are
logged, counted in :attr:`SpeakerLink.stats` and dropped: a payload cannot crash the link.

Options (``LinkContext.options``): ``broker_url`` (for URLs without host), ``state_timeout_s``
(5), ``command_timeout_s`` (10), ``clip_timeout_s`` (60), ``resend_interval_s`` (3), all world
seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import SplitResult

import aiomqtt
import structlog

from firmware_bridges.speaker import translate, wire
from firmware_bridges.speaker.address import SCHEMES, SpeakerAddress
from firmware_bridges.speaker.control import Session, SpeakerHandle
from fleet.errors import CommandTimeout, ConfigError, LinkError, LinkLost
from fleet.events import Severity, VehicleEvent, VehicleEventKind
from fleet.geo import Position
from fleet.link import LinkContext, VehicleLink, register_scheme
from fleet.mqtt import BrokerAddress
from fleet.mqtt_client import ConnectionStats, MqttConnection
from fleet.tasks import cancel_and_wait
from fleet.vehicle import Capability, LinkState, VehicleInfo, VehicleKind

log = structlog.get_logger(__name__)

RECONNECT_MIN_S = 0.2
"""First reconnection delay (real seconds)."""
RECONNECT_MAX_S = 10.0
"""Longest reconnection delay (real seconds)."""
KEEPALIVE_S = 15
"""MQTT keepalive."""
DEFAULT_STATE_TIMEOUT_S = 5.0
"""Payloads publish state every second; five missed ones mean lost."""
DEFAULT_COMMAND_TIMEOUT_S = 10.0
"""Wait for a reply this long (world seconds)."""
DEFAULT_CLIP_TIMEOUT_S = 60.0
"""A clip load (download and check) may take this long."""
DEFAULT_RESEND_INTERVAL_S = 3.0
"""Ask again for missing playback records this often."""


@dataclass
class LinkStats(ConnectionStats):
    """Counters for diagnostics and tests (the connection's own come from
    :class:`ConnectionStats`)."""

    messages: int = 0
    bad_messages: int = 0
    records: int = 0
    duplicate_records: int = 0
    resend_requests: int = 0


class SpeakerLink(VehicleLink):
    """Loudspeaker payloads behind one MQTT broker (see module docstring)."""

    def __init__(self, url: str, ctx: LinkContext) -> None:
        super().__init__(url, ctx)
        self.address = SpeakerAddress.parse(url)
        opts: Mapping[str, Any] = ctx.options
        broker_url = self.address.broker_url or opts.get("broker_url")
        if not broker_url:
            raise ConfigError(
                f"link {self.address.display_url} names no broker and no broker_url is configured",
                url=self.address.display_url,
            )
        self.broker = BrokerAddress.parse(broker_url)
        self.state_timeout_s = float(
            self.address.state_timeout_s or opts.get("state_timeout_s", DEFAULT_STATE_TIMEOUT_S)
        )
        self.command_timeout_s = float(
            self.address.command_timeout_s
            or opts.get("command_timeout_s", DEFAULT_COMMAND_TIMEOUT_S)
        )
        self.clip_timeout_s = float(
            self.address.clip_timeout_s or opts.get("clip_timeout_s", DEFAULT_CLIP_TIMEOUT_S)
        )
        self.resend_interval_s = float(opts.get("resend_interval_s", DEFAULT_RESEND_INTERVAL_S))
        self.stats = LinkStats()
        self._speakers: dict[str, SpeakerHandle] = {}
        self._pending: dict[str, asyncio.Future[wire.ReplyMsg]] = {}
        self._mqtt = MqttConnection(
            self.broker,
            name="speaker",
            client_id="streetfleet-speaker",
            subscriptions=self.address.subscriptions(),
            on_message=self._handle,
            keepalive_s=KEEPALIVE_S,
            reconnect_min_s=RECONNECT_MIN_S,
            reconnect_max_s=RECONNECT_MAX_S,
            stats=self.stats,
        )
        self.connected = self._mqtt.connected
        """Set while the link is connected to the broker."""
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        await self._mqtt.__aenter__()
        self._tasks = [tg.create_task(self._watchdog(), name="speaker-watchdog")]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel_and_wait(self._tasks)
        await self._mqtt.__aexit__(None, None, None)
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    @property
    def vehicle_ids(self) -> list[str]:
        return [s.vehicle_id for s in self._speakers.values()]

    @property
    def speakers(self) -> list[SpeakerHandle]:
        return list(self._speakers.values())

    def speaker(self, payload_id: str) -> SpeakerHandle:
        """The handle of a discovered payload (``KeyError`` if unknown)."""
        return self._speakers[payload_id]

    # --- commands -----------------------------------------------------------------------------

    async def call(
        self,
        speaker: SpeakerHandle,
        method: wire.Method,
        data: wire._Wire,
        timeout_s: float | None = None,
        tid: str | None = None,
    ) -> wire.ReplyMsg:
        """Send one command and wait for its reply; raises on refusal, timeout or loss."""
        if speaker.vehicle_status.link in (LinkState.LOST, LinkState.OFFLINE):
            raise LinkLost(
                f"speaker {speaker.payload_id} is {speaker.vehicle_status.link}",
                vehicle_id=speaker.vehicle_id,
            )
        tid = tid or uuid.uuid4().hex
        msg = translate.command(tid, method, data, self.ctx.clock.time())
        fut: asyncio.Future[wire.ReplyMsg] = asyncio.get_running_loop().create_future()
        self._pending[tid] = fut
        timeout = timeout_s if timeout_s is not None else self.command_timeout_s
        try:
            if not await self.publish(
                self.address.topic(speaker.payload_id, wire.Channel.COMMAND), wire.encode(msg), 1
            ):
                raise LinkError(
                    f"cannot send {method} to speaker {speaker.payload_id}: broker unreachable",
                    vehicle_id=speaker.vehicle_id,
                )
            try:
                reply = await self.ctx.clock.wait_for(fut, timeout)
            except TimeoutError:
                raise CommandTimeout(
                    f"speaker {speaker.payload_id} did not answer {method} within {timeout:g} s",
                    vehicle_id=speaker.vehicle_id,
                    method=str(method),
                ) from None
        finally:
            self._pending.pop(tid, None)
        if reply.result != wire.Result.OK:
            raise translate.rejection(speaker.payload_id, reply)
        return reply

    async def request_resend(self, speaker: SpeakerHandle, from_seq: int) -> None:
        now = self.ctx.clock.monotonic()
        if now - speaker.last_resend < self.resend_interval_s:
            return
        speaker.last_resend = now
        self.stats.resend_requests += 1
        msg = translate.command(
            uuid.uuid4().hex,
            wire.Method.RECORDS_RESEND,
            wire.RecordsResendData(from_seq=from_seq),
            self.ctx.clock.time(),
        )
        await self.publish(
            self.address.topic(speaker.payload_id, wire.Channel.COMMAND), wire.encode(msg), 1
        )

    # --- transport ----------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Publish if connected; False when the broker is away."""
        return await self._mqtt.publish(topic, payload, qos=qos)

    def _handle(self, message: aiomqtt.Message) -> None:
        self.stats.messages += 1
        where = wire.split_topic(self.address.namespace, message.topic.value)
        if where is None:
            return
        payload_id, channel = where
        if not self.address.covers(payload_id) or channel is wire.Channel.COMMAND:
            return
        raw = message.payload
        if not isinstance(raw, bytes | bytearray):
            raw = str(raw or "").encode()
        if not raw and channel in (wire.Channel.INFO, wire.Channel.CONNECTION, wire.Channel.STATE):
            return  # a cleared retained message
        try:
            self._dispatch(payload_id, channel, raw)
        except wire.WireError as exc:
            self.stats.bad_messages += 1
            log.warning(
                "speaker.bad_message",
                payload=payload_id,
                channel=str(channel),
                code=exc.code,
                reason=exc.reason,
            )
        except Exception:  # a payload must never take the link down
            self.stats.bad_messages += 1
            log.exception("speaker.message_failed", payload=payload_id, channel=str(channel))

    def _dispatch(self, payload_id: str, channel: wire.Channel, raw: bytes | bytearray) -> None:
        if channel is wire.Channel.REPLY:
            reply = wire.decode(wire.ReplyMsg, raw)
            self._heard(self._speaker(payload_id))
            fut = self._pending.get(reply.tid)
            if fut is not None and not fut.done():
                fut.set_result(reply)
            return
        if channel is wire.Channel.INFO:
            info = wire.decode(wire.InfoMsg, raw)
            sp = self._speaker(payload_id, info.host_vehicle)
            sp.info = info
            if self.address.host_vehicle is None and info.host_vehicle != sp.host_vehicle_id:
                sp.host_vehicle_id = info.host_vehicle
            self._register(sp)
            return
        sp = self._speaker(payload_id)
        if channel is wire.Channel.CONNECTION:
            conn = wire.decode(wire.ConnectionMsg, raw)
            new = {
                wire.ConnectionState.ONLINE: LinkState.ONLINE,
                wire.ConnectionState.OFFLINE: LinkState.OFFLINE,
                wire.ConnectionState.CONNECTIONBROKEN: LinkState.LOST,
            }[conn.state]
            if new is LinkState.ONLINE:
                self._heard(sp)
            self._set_link(sp, new, f"connection {conn.state.value}")
        elif channel is wire.Channel.STATE:
            state = wire.decode(wire.StateMsg, raw)
            translate.update_status(sp.status, state)
            if state.position is not None:
                sp.vehicle_status.position = Position(
                    state.position.lat, state.position.lon, 0.0, state.position.rel_alt
                )
            sp.vehicle_status.extra["speaker"] = sp.status
            self._heard(sp)
            if sp.gaps():
                self._spawn_resend(sp, min(sp.gaps()))
        elif channel is wire.Channel.PLAYBACK:
            pb = wire.decode(wire.PlaybackMsg, raw)
            rec = translate.record(payload_id, pb)
            self._heard(sp)
            if rec.seq in sp.records:
                self.stats.duplicate_records += 1
            else:
                sp.records[rec.seq] = rec
                self.stats.records += 1
                self._event(
                    sp,
                    "playback record",
                    {
                        "session_id": rec.session_id,
                        "seq": rec.seq,
                        "completed": rec.completed,
                        "end_reason": rec.end_reason,
                        "duration_s": round(rec.duration_s, 2),
                    },
                    Severity.DEBUG,
                )
        elif channel is wire.Channel.EVENT:
            ev = wire.decode(wire.EventMsg, raw)
            self._heard(sp)
            self._on_event(sp, ev)
        self.ctx.registry.touch(sp.vehicle_id)

    def _on_event(self, sp: SpeakerHandle, ev: wire.EventMsg) -> None:
        data = dict(ev.data)
        if ev.kind is wire.EventKind.SESSION_STARTED and ev.session_id:
            sp.sessions.setdefault(ev.session_id, Session(ev.session_id))
            self._event(sp, "broadcast session started", {"session_id": ev.session_id, **data})
        elif ev.kind is wire.EventKind.SESSION_ENDED and ev.session_id:
            session = sp.sessions.setdefault(ev.session_id, Session(ev.session_id))
            session.reason = str(data.get("reason", ""))
            session.first_seq = _int(data.get("first_seq"), -1)
            session.last_seq = _int(data.get("last_seq"), -1)
            session.plays_completed = _int(data.get("plays_completed"), 0)
            session.ended.set()
            if sp.missing(session):
                self._spawn_resend(sp, min(sp.missing(session)))
            self._event(
                sp,
                f"broadcast session ended: {session.reason}",
                {"session_id": ev.session_id, **data},
            )
        elif ev.kind is wire.EventKind.ERROR:
            self._event(
                sp,
                f"speaker error {ev.code}: {ev.message}",
                {"code": ev.code, "tid": ev.tid, **data},
                Severity.WARNING,
            )
        else:
            self._event(
                sp, f"clip {data.get('step', '')} {data.get('percent', '')}%", data, Severity.DEBUG
            )

    def _spawn_resend(self, sp: SpeakerHandle, from_seq: int) -> None:
        if self._tg is not None:
            self._tg.create_task(self.request_resend(sp, from_seq))

    def _speaker(self, payload_id: str, host: str | None = None) -> SpeakerHandle:
        sp = self._speakers.get(payload_id)
        if sp is None:
            sp = SpeakerHandle(self, payload_id, self.address.host_vehicle or host)
            self._speakers[payload_id] = sp
            self._register(sp)
            log.info("speaker.discovered", payload=payload_id, host=sp.host_vehicle_id)
            self._event(
                sp,
                "speaker discovered",
                {"host_vehicle_id": sp.host_vehicle_id},
                kind=VehicleEventKind.DISCOVERED,
            )
        return sp

    def _register(self, sp: SpeakerHandle) -> None:
        info = VehicleInfo(
            id=sp.vehicle_id,
            kind=VehicleKind.PAYLOAD,
            link_url=self.address.display_url,
            address=sp.payload_id,
            capabilities=frozenset({Capability.BROADCAST}),
            name=(sp.info.model if sp.info and sp.info.model else f"speaker {sp.payload_id}"),
        )
        self.ctx.registry.add(info, sp, sp.vehicle_status)

    def _heard(self, sp: SpeakerHandle) -> None:
        sp.heard_at = self.ctx.clock.monotonic()
        sp.vehicle_status.last_seen = sp.heard_at
        sp.status.last_seen = sp.heard_at
        if sp.vehicle_status.link is not LinkState.ONLINE:
            self._set_link(sp, LinkState.ONLINE, "heard")

    def _set_link(self, sp: SpeakerHandle, new: LinkState, why: str) -> None:
        old = sp.vehicle_status.link
        if old is new:
            return
        sp.vehicle_status.link = new
        sp.status.online = new is LinkState.ONLINE
        kind = {
            LinkState.LOST: VehicleEventKind.LINK_LOST,
            LinkState.ONLINE: VehicleEventKind.LINK_REGAINED,
        }.get(new, VehicleEventKind.STATUS_TEXT)
        if old is LinkState.UNKNOWN and new is LinkState.ONLINE:
            return
        self._event(
            sp,
            f"speaker link {old} -> {new} ({why})",
            {"from": str(old), "to": str(new)},
            Severity.WARNING if new is LinkState.LOST else Severity.INFO,
            kind,
        )
        self.ctx.registry.touch(sp.vehicle_id)

    def _event(
        self,
        sp: SpeakerHandle,
        message: str,
        data: dict[str, Any],
        severity: Severity = Severity.INFO,
        kind: VehicleEventKind = VehicleEventKind.PAYLOAD,
    ) -> None:
        self.ctx.bus.publish(
            VehicleEvent(
                at=self.ctx.clock.time(),
                vehicle_id=sp.vehicle_id,
                kind=kind,
                message=message,
                severity=severity,
                data={"payload_id": sp.payload_id, **data},
            )
        )

    async def _watchdog(self) -> None:
        clock = self.ctx.clock
        while True:
            await clock.sleep(max(0.05, min(1.0, self.state_timeout_s / 4)))
            now = clock.monotonic()
            for sp in list(self._speakers.values()):
                if sp.vehicle_status.link is not LinkState.ONLINE or sp.heard_at is None:
                    continue
                if now - sp.heard_at > self.state_timeout_s:
                    self._set_link(sp, LinkState.LOST, f"silent for {now - sp.heard_at:.1f} s")
                for session in sp.sessions.values():
                    if session.ended.is_set() and sp.missing(session):
                        await self.request_resend(sp, min(sp.missing(session)))


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _factory(url: str, parts: SplitResult, ctx: LinkContext) -> VehicleLink:
    del parts
    return SpeakerLink(url, ctx)


def register() -> None:
    """Make ``speaker+mqtt`` URLs (and the other schemes of ``SCHEMES``) create this link through
    :func:`fleet.link.create_link`; the composition root and test fixtures call it once before
    they create links (importing this module registers nothing)."""
    for scheme in SCHEMES:
        register_scheme(scheme, _factory)
