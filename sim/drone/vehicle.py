"""One sim vehicle on the wire: its UDP socket, MAVLink codec and message handling.

A :class:`SimVehicle` is what PX4 SITL instance *i* is on its API link: a UDP socket that sends
to ``target`` (127.0.0.1:14540+i by default) and, once a ground station has sent something,
replies to the address that ground station sent from (PX4's UDP partner behaviour). It packs the
MAVLink 2 messages due in one tick into as few datagrams as fit 1400 bytes, as PX4 buffers its
UDP output. It answers only messages addressed to its system id (or broadcast, where PX4 accepts
broadcast), sends STATUSTEXT only once a ``MAV_TYPE_GCS`` heartbeat arrived on the link, and with
a signing key configured drops every unsigned or wrongly signed message except RADIO_STATUS,
as PX4 does with signing enabled.

The logic lives in :class:`sim.drone.autopilot.Autopilot`, the mission protocol in
:class:`sim.drone.mission_protocol.MissionProtocol`; :meth:`SimVehicle.tick` is called by the
fleet's single simulation loop (:mod:`sim.runner`).

Fault injection (``docs/sim.md``): :meth:`SimVehicle.set_link_down` (stop sending and
receiving), :meth:`set_battery`, :meth:`set_battery_drain`, :meth:`set_gps_lost`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import ftp_protocol, px4_events
from firmware_bridges.mavlink.wire.messages import Message
from fleet.clock import Clock
from sim.drone import commands
from sim.drone import metadata as sim_metadata
from sim.drone.autopilot import ACCEPTED, FAILED, Autopilot, Home
from sim.drone.events import REQUEST_EVENT_ID, frames_of
from sim.drone.ftp_server import FtpServer
from sim.drone.mission_protocol import MissionProtocol
from sim.drone.modes import Nav
from sim.drone.params import ParamStore, UnknownParam, decode_value, encode_value
from sim.drone.physics import Model
from sim.drone.streams import BUILDERS, NORMAL_STREAMS, PX4_STREAMS, StreamDef
from sim.truth import GroundTruth

log = structlog.get_logger(__name__)

MAX_DATAGRAM = 1400
"""Bytes of MAVLink packed into one UDP datagram at most."""
COMPONENT_ID = 1
"""MAV_COMP_ID_AUTOPILOT1."""
PARAMS_PER_TICK = 20
"""PARAM_VALUE messages sent per tick while answering PARAM_REQUEST_LIST."""
UNSIGNED_ALLOWED = frozenset({mavlink.MAVLINK_MSG_ID_RADIO_STATUS})
"""Messages PX4 accepts unsigned when signing is on."""


@dataclass(frozen=True)
class VehicleConfig:
    """How to build one sim vehicle."""

    sysid: int
    home: Home
    target: tuple[str, int]
    """Where the API link sends until a ground station talks to it."""
    model: Model = Model.MULTICOPTER
    bind: tuple[str, int] = ("127.0.0.1", 0)
    """Local address of the vehicle's socket (port 0: any free port)."""
    params: Mapping[str, float] = field(default_factory=dict)
    signing_key: bytes | None = None
    ready_delay: float = 2.0
    """World seconds from start until GPS fix, home and ready-to-arm."""
    stream_rate_scale: float = 1.0
    """Multiplies every stream rate but HEARTBEAT's (1: PX4 normal mode)."""
    name: str = ""
    battery_swap_s: float | None = None
    """Ground crew: world seconds to swap a depleted battery on the pad (None: never)."""


def _rate_scale(msg_id: int, scale: float) -> float:
    """The rate multiplier of a stream: HEARTBEAT keeps its rate whatever the multiplier, as in
    PX4 (its heartbeat stream is ``const_rate``; a ground station's link timeout counts on it)."""
    return 1.0 if msg_id == mavlink.MAVLINK_MSG_ID_HEARTBEAT else scale


@dataclass(slots=True)
class _Stream:
    """One periodic message of a vehicle and when it is next due."""

    due: float
    """World time (``clock.monotonic()``) it is sent next; ``inf`` while stopped."""
    interval: float
    """World seconds between two (``inf``: stopped)."""
    definition: StreamDef


class _Outbox:
    """File-like sink pymavlink writes packed messages to."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, buf: bytes) -> None:
        self.parts.append(bytes(buf))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, vehicle: SimVehicle) -> None:
        self.vehicle = vehicle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.vehicle.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while nobody listens yet: PX4 keeps sending too
        pass


class SimVehicle:
    """A PX4-like vehicle speaking MAVLink 2 over its own UDP socket."""

    def __init__(self, config: VehicleConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.sysid = config.sysid
        self.vehicle_id = config.name or f"sim-{config.sysid}"
        params = {"MAV_SYS_ID": float(config.sysid)}
        if config.model is Model.ROVER:
            params["MAV_TYPE"] = float(mavlink.MAV_TYPE_GROUND_ROVER)
            params["SYS_AUTOSTART"] = 51001.0
        params.update(config.params)
        self.params = ParamStore(overrides=params)
        self.ap = Autopilot(
            self.vehicle_id,
            config.home,
            self.params,
            clock,
            config.model,
            config.ready_delay,
            config.battery_swap_s,
        )
        self.mav_type = int(
            mavlink.MAV_TYPE_GROUND_ROVER
            if config.model is Model.ROVER
            else mavlink.MAV_TYPE_QUADROTOR
        )
        self._outbox = _Outbox()
        self.mav = mavlink.MAVLink(self._outbox, srcSystem=config.sysid, srcComponent=COMPONENT_ID)
        self.mav.robust_parsing = True
        if config.signing_key is not None:
            self.mav.signing.secret_key = config.signing_key
            self.mav.signing.sign_outgoing = True
            self.mav.signing.link_id = 0
            self.mav.signing.allow_unsigned_callback = lambda _mav, msg_id: (
                msg_id in UNSIGNED_ALLOWED
            )
        self.missions = MissionProtocol(
            config.sysid, COMPONENT_ID, self.mav.send, self._statustext, self.ap.store_plan
        )
        self.missions.result = self.ap.result
        self.ftp = FtpServer(sim_metadata.files().files)
        """MAVLink FTP server of the vehicle's metadata files (``ftp_server.py``)."""
        self._transport: asyncio.DatagramTransport | None = None
        self.target: tuple[str, int] = config.target
        self.link_down = False
        self.unresponsive = False
        self.gcs_seen = False
        self.rejected_unsigned = 0
        self._text_id = 0
        """STATUSTEXT.id of the next text (PX4 numbers its texts)."""
        self._pending_acks: list[tuple[float, int, int, int, int]] = []
        self._ack_target = (0, 0)
        self._param_queue: list[int] = []
        self._streams: list[_Stream] = []
        offset = (config.sysid * 0.0137) % 1.0  # spread vehicles' sends over time
        t0 = clock.monotonic()
        for s in NORMAL_STREAMS:
            interval = 1.0 / (s.rate_hz * _rate_scale(s.msg_id, config.stream_rate_scale))
            self._streams.append(_Stream(t0 + offset * interval, interval, s))
        self.sent_messages = 0
        self.sent_datagrams = 0
        self.received_messages = 0

    # --- Context for stream builders ----------------------------------------------------

    def now(self) -> float:
        return self.clock.monotonic()

    @property
    def truth(self) -> GroundTruth:
        return self.ap.truth

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._transport is not None, "vehicle not started"
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.config.bind
        )
        self._transport = transport
        log.info(
            "sim.vehicle.started",
            vehicle=self.vehicle_id,
            sysid=self.sysid,
            model=self.config.model.value,
            local=self.local_address,
            target=self.target,
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # --- fault injection ----------------------------------------------------------------

    def set_link_down(self, down: bool) -> None:
        """Cut (True) or restore the data link: nothing is sent or received while it is down."""
        self.link_down = down
        self.ap.record_fault("data link down" if down else "data link restored")

    def set_battery(self, fraction: float) -> None:
        """Set the state of charge (0..1)."""
        self.ap.set_battery(fraction)

    def set_battery_drain(self, multiplier: float) -> None:
        """Scale the battery's power draw (e.g. 20: drains twenty times faster)."""
        self.ap.set_drain_multiplier(multiplier)

    def set_gps_lost(self, lost: bool) -> None:
        """Lose (True) or regain the GPS fix."""
        self.ap.set_gps_fault(lost)

    def set_wind(self, east_mps: float, north_mps: float) -> None:
        """Blow a wind (a gust while set) that pushes the vehicle off its track in the air."""
        self.ap.set_wind(east_mps, north_mps)

    def set_unresponsive(self, unresponsive: bool) -> None:
        """Stop (True) or resume answering commands, parameter requests and mission
        transfers; telemetry goes on (a hung command handler on the vehicle)."""
        self.unresponsive = unresponsive
        self.ap.record_fault("commands unanswered" if unresponsive else "commands answered")

    # --- incoming -----------------------------------------------------------------------

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.link_down:
            return
        mav = self.mav
        if mav.buf_len():
            # a frame never spans datagrams: drop what a bad datagram left half-parsed
            mav.buf = bytearray()
            mav.buf_index = 0
            mav.expected_length = mavlink.HEADER_LEN_V1 + 2
        extra = self._extra_messages(data) if REQUEST_EVENT_ID in data else []
        try:
            msgs = mav.parse_buffer(data) or []
        except Exception:  # pymavlink raises on some malformed input even in robust mode
            log.debug("sim.vehicle.bad_datagram", vehicle=self.vehicle_id, size=len(data))
            msgs = []
        msgs = [*msgs, *extra]
        if not msgs:
            return
        now = self.clock.monotonic()
        accepted = False
        for msg in msgs:
            mtype = msg.get_type()
            if mtype == "BAD_DATA":
                if "signature" in str(getattr(msg, "reason", "")).lower():
                    self.rejected_unsigned += 1
                continue
            accepted = True
            self.received_messages += 1
            try:
                self._handle(msg, now)
            except Exception:
                log.exception("sim.vehicle.handler_failed", vehicle=self.vehicle_id, msg=mtype)
        if accepted:
            self.target = (addr[0], addr[1])
        self._flush()

    def _extra_messages(self, data: bytes) -> list[Message]:
        """REQUEST_EVENT frames of a datagram (pymavlink's dialect does not know them)."""
        out = []
        for frame in frames_of(data, frozenset({px4_events.MSG_ID_REQUEST_EVENT})):
            try:
                out.append(px4_events.decode_extra(self.mav, frame))
            except px4_events.EventDecodeError as exc:
                if "sign" in str(exc):
                    self.rejected_unsigned += 1
                log.debug("sim.vehicle.bad_event_frame", vehicle=self.vehicle_id, error=str(exc))
        return out

    def _handle(self, msg: Message, now: float) -> None:
        mtype = msg.get_type()
        if mtype == "HEARTBEAT":
            if msg.type == mavlink.MAV_TYPE_GCS:
                self.gcs_seen = True
                self.ap.gcs_heartbeat(now)
            return
        if self.unresponsive and mtype not in ("SETUP_SIGNING",):
            return  # heard (heartbeats above), never answered
        if self.missions.handle(msg, now):
            return
        if mtype in ("COMMAND_LONG", "COMMAND_INT"):
            self._command(msg)
        elif mtype == "PARAM_REQUEST_READ":
            self._param_read(msg)
        elif mtype == "PARAM_REQUEST_LIST":
            if self._for_me_strict(msg):
                self._param_queue = list(range(len(self.params)))
        elif mtype == "PARAM_SET":
            self._param_set(msg)
        elif mtype == "TIMESYNC":
            if msg.tc1 == 0:
                self.mav.send(self.mav.timesync_encode(int(self.clock.monotonic() * 1e9), msg.ts1))
        elif mtype == "MISSION_SET_CURRENT" and self._for_me_strict(msg):
            self.ap.set_current_item(msg.seq)
        elif mtype == "FILE_TRANSFER_PROTOCOL" and self._for_me(msg):
            self._ftp_send(
                self.ftp.handle(
                    ftp_protocol.payload_of(msg), (msg.get_srcSystem(), msg.get_srcComponent()), now
                )
            )
        elif mtype == "REQUEST_EVENT" and self._for_me(msg):
            for m in self.ap.events.request(
                msg.first_sequence, msg.last_sequence, msg.get_srcSystem(), msg.get_srcComponent()
            ):
                self.mav.send(m)

    def _ftp_send(self, answers: list[tuple[tuple[int, int], ftp_protocol.FtpPayload]]) -> None:
        for (sysid, compid), payload in answers:
            self.mav.send(ftp_protocol.message(sysid, compid, payload))

    def _for_me(self, msg: Message) -> bool:
        return msg.target_system in (0, self.sysid) and msg.target_component in (0, COMPONENT_ID)

    def _for_me_strict(self, msg: Message) -> bool:
        return msg.target_system == self.sysid and msg.target_component in (0, COMPONENT_ID)

    def _command(self, msg: Message) -> None:
        if not self._for_me(msg):
            return
        cmd = commands.Command.from_message(msg)
        self._ack_target = (msg.get_srcSystem(), msg.get_srcComponent())
        result = commands.handle(self, cmd)
        if result != commands.NO_ACK:
            self.mav.send(
                self.mav.command_ack_encode(
                    cmd.command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()
                )
            )

    def schedule_ack(self, command: int, result: int, delay: float) -> None:
        """Send a COMMAND_ACK for ``command`` ``delay`` world seconds from now."""
        due = self.clock.monotonic() + delay
        self._pending_acks.append((due, command, result, *self._ack_target))

    def set_message_interval(
        self, msg_id: int, interval_us: float, extra: tuple[float, ...] = ()
    ) -> int:
        """MAV_CMD_SET_MESSAGE_INTERVAL as PX4's ``MavlinkReceiver::set_message_interval``.

        ``interval_us`` < 0 stops the stream, 0 restores its default rate, > 0 sets it.
        ``extra`` holds param3, param4 and param7, which PX4 refuses when set. The result is
        ACCEPTED for any message PX4 has a stream for (a stream without data sends nothing),
        FAILED for HEARTBEAT, for messages without a PX4 stream and for unsupported options.
        """
        if msg_id == mavlink.MAVLINK_MSG_ID_HEARTBEAT or msg_id not in PX4_STREAMS:
            return FAILED
        if any(math.isfinite(p) and round(p) != 0 for p in extra):
            return FAILED
        build = BUILDERS.get(msg_id)
        if build is None:
            return ACCEPTED
        entry = next((e for e in self._streams if e.definition.msg_id == msg_id), None)
        if interval_us < -1e-5:
            interval = math.inf
        elif interval_us > 1e-5:
            interval = interval_us / 1e6
        else:
            default = next((s for s in NORMAL_STREAMS if s.msg_id == msg_id), None)
            if default is None:
                return ACCEPTED  # no default rate: PX4 leaves the stream as it is
            interval = 1.0 / (default.rate_hz * _rate_scale(msg_id, self.config.stream_rate_scale))
        if entry is None:
            if not math.isfinite(interval):
                return ACCEPTED
            entry = _Stream(0.0, interval, StreamDef(msg_id, 1.0 / interval, build))
            self._streams.append(entry)
        entry.interval = interval
        entry.due = self.clock.monotonic() + interval if math.isfinite(interval) else math.inf
        return ACCEPTED

    def message_interval_us(self, msg_id: int) -> int:
        """The interval MESSAGE_INTERVAL reports: µs between messages, 0 when not streamed."""
        for entry in self._streams:
            if entry.definition.msg_id == msg_id and math.isfinite(entry.interval):
                return round(entry.interval * 1e6)
        return 0

    def request_message(self, msg_id: int) -> bool:
        """Send ``msg_id`` once; False when the sim cannot build it now (PX4 then DENIES)."""
        if msg_id in sim_metadata.ANSWERED:  # COMPONENT_METADATA / _INFORMATION
            boot_ms = int(max(0.0, self.clock.monotonic() - self.ap.boot_time) * 1000)
            self.mav.send(sim_metadata.answer(msg_id, boot_ms))
            return True
        build = BUILDERS.get(msg_id)
        if build is None:
            return False
        m = build(self)
        if m is None:
            return False
        self.mav.send(m)
        return True

    # --- parameters ---------------------------------------------------------------------

    def _param_value(self, name: str) -> Message:
        d = self.params.definition(name)
        return self.mav.param_value_encode(
            name.encode(),
            encode_value(d.type, self.params[name]),
            int(d.type),
            len(self.params),
            self.params.index(name),
        )

    def _param_error(self, msg: Message, name: str, index: int) -> None:
        self.mav.send(
            self.mav.param_error_encode(
                msg.get_srcSystem(),
                msg.get_srcComponent(),
                name.encode()[:16],
                index,
                mavlink.MAV_PARAM_ERROR_DOES_NOT_EXIST,
            )
        )

    @staticmethod
    def _name(raw: Any) -> str:
        if isinstance(raw, bytes):
            raw = raw.decode("ascii", "replace")
        return str(raw).rstrip("\x00")

    def _param_read(self, msg: Message) -> None:
        if not self._for_me_strict(msg):
            return
        name = self._name(msg.param_id)
        try:
            if msg.param_index >= 0:
                name = self.params.name_at(msg.param_index)
            self.mav.send(self._param_value(name))
        except UnknownParam:
            self._param_error(msg, name, msg.param_index)

    def _param_set(self, msg: Message) -> None:
        if not self._for_me_strict(msg):
            return
        name = self._name(msg.param_id)
        try:
            d = self.params.definition(name)
        except UnknownParam:
            self._param_error(msg, name, -1)
            return
        self.params.set(name, decode_value(d.type, msg.param_value))
        log.info("sim.param.set", vehicle=self.vehicle_id, name=name, value=self.params[name])
        if name in ("GF_MAX_HOR_DIST", "GF_MAX_VER_DIST", "MIS_DIST_1WP"):
            self.ap.revalidate_mission()
        self.mav.send(self._param_value(name))

    # --- outgoing -----------------------------------------------------------------------

    def _statustext(self, severity: int, text: str) -> None:
        self.ap.text(severity, text)

    def tick(self, now: float, dt: float) -> None:
        """Advance the vehicle by ``dt`` and send what is due at ``now``."""
        ap = self.ap
        ap.update(dt)
        self.missions.result = ap.result
        ap.result.mode_active = ap.nav in (Nav.MISSION, Nav.TAKEOFF, Nav.LAND)
        self.missions.tick(now)
        send = self.mav.send
        if ap.texts:
            if self.gcs_seen:
                for severity, text in ap.texts:
                    self._send_statustext(severity, text)
            ap.texts.clear()
        for m in ap.events.due(now):  # events go to every link, unlike STATUSTEXT
            send(m)
        self._ftp_send(self.ftp.due(now))  # MAVLink FTP burst packets
        if self._pending_acks:
            keep = []
            for due, command, result, ts, tc in self._pending_acks:
                if now >= due:
                    send(self.mav.command_ack_encode(command, result, 0, 0, ts, tc))
                else:
                    keep.append((due, command, result, ts, tc))
            self._pending_acks = keep
        if self._param_queue:
            batch, self._param_queue = (
                self._param_queue[:PARAMS_PER_TICK],
                self._param_queue[PARAMS_PER_TICK:],
            )
            for i in batch:
                send(self._param_value(self.params.name_at(i)))
        for entry in self._streams:
            if now >= entry.due:
                interval = entry.interval
                nxt = entry.due + interval
                entry.due = nxt if nxt > now else now + interval
                m = entry.definition.build(self)
                if m is not None:
                    send(m)
        self._flush()

    def _send_statustext(self, severity: int, text: str) -> None:
        """One STATUSTEXT as PX4's stream sends it: a new id per text, in 50-byte chunks."""
        data = text.encode()
        text_id = self._text_id
        self._text_id = (self._text_id + 1) & 0xFFFF
        chunks = [data[i : i + 50] for i in range(0, len(data), 50)] or [b""]
        for seq, chunk in enumerate(chunks):
            self.mav.send(self.mav.statustext_encode(severity, chunk, text_id, seq))

    def _flush(self) -> None:
        parts = self._outbox.parts
        if not parts:
            return
        self._outbox.parts = []
        transport = self._transport
        if transport is None or self.link_down:
            return
        self.sent_messages += len(parts)
        chunk: list[bytes] = []
        size = 0
        for p in parts:
            if size + len(p) > MAX_DATAGRAM and chunk:
                transport.sendto(b"".join(chunk), self.target)
                self.sent_datagrams += 1
                chunk, size = [], 0
            chunk.append(p)
            size += len(p)
        if chunk:
            transport.sendto(b"".join(chunk), self.target)
            self.sent_datagrams += 1
