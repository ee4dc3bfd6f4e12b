"""One vehicle as seen through a MAVLink link: its telemetry, texts, events and inbox.

A :class:`VehicleSession` is created when the link discovers a vehicle. The link hands it every
decoded frame from that system's autopilot through :data:`HANDLERS` (message id -> method);
the session updates the vehicle's :class:`fleet.vehicle.VehicleStatus` in place through
:mod:`.translate`, touches the registry, and publishes vehicle events (mode changes, arming,
failsafes, every STATUSTEXT and EVENT). Protocol answers (COMMAND_ACK, mission and parameter
messages) addressed to us are offered to :class:`Listener` queues that the command, mission
and parameter clients open while they wait.

Texts are kept for a few minutes (:meth:`VehicleSession.texts_since`) so that a command
refusal or an invalid mission can be reported with the vehicle's own reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import px4_events, translate
from firmware_bridges.mavlink.codec import Codec, LinkStats
from firmware_bridges.mavlink.options import MavlinkOptions
from fleet.clock import Clock
from fleet.events import EventBus, Severity, VehicleEvent, VehicleEventKind
from fleet.registry import VehicleEntry, VehicleRegistry
from fleet.vehicle import FlightMode, LinkState

if TYPE_CHECKING:
    from firmware_bridges.mavlink.translate import MissionItem

log = structlog.get_logger(__name__)

AUTOPILOT_COMPONENT = mavlink.MAV_COMP_ID_AUTOPILOT1
"""Component id of the flight controller (PX4's autopilot)."""
TEXT_MEMORY_S = 300.0
"""How long received texts are kept for reporting reasons (world seconds)."""
TEXT_MEMORY_COUNT = 200
"""At most this many texts are kept per vehicle."""
CHUNK_TIMEOUT_S = 2.0
"""A multi-chunk STATUSTEXT whose last chunk never comes is emitted after this long."""
COMMANDED_MODE_GRACE_S = 5.0
"""A mode change within this long of our own request is not a failsafe."""
EVENT_REQUEST_MAX_GAP = 32
"""Missing EVENT sequences re-requested at most per gap."""
_FAILSAFE_MODES = frozenset({FlightMode.RTL, FlightMode.LAND, FlightMode.HOLD, FlightMode.RTGS})


class LinkPort(Protocol):
    """What a session needs from its link."""

    codec: Codec
    stats: LinkStats
    clock: Clock
    registry: VehicleRegistry
    bus: EventBus
    options: MavlinkOptions

    def send_bytes(self, data: bytes, address: tuple[str, int]) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None: ...


@dataclass(slots=True)
class TextRecord:
    """One text the vehicle sent (STATUSTEXT or rendered EVENT)."""

    at: float
    """Clock monotonic() when received."""
    severity: Severity
    text: str
    source: str
    """``statustext`` or ``event``."""


class Listener:
    """A queue of protocol messages of some ids that pass a predicate; use as a context manager."""

    def __init__(
        self,
        session: VehicleSession,
        msgids: Iterable[int],
        predicate: Callable[[Any], bool] | None = None,
    ) -> None:
        self._session = session
        self.msgids = tuple(msgids)
        self.predicate = predicate
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def offer(self, msg: Any) -> None:
        if self.predicate is None or self.predicate(msg):
            self.queue.put_nowait(msg)

    async def get(self, within: float) -> Any:
        """Next message, waiting at most ``within`` world seconds (TimeoutError after)."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        return await self._session.clock.wait_for(self.queue.get(), within)

    def __enter__(self) -> Listener:
        for msgid in self.msgids:
            self._session._listeners.setdefault(msgid, []).append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for msgid in self.msgids:
            lst = self._session._listeners.get(msgid)
            if lst and self in lst:
                lst.remove(self)


@dataclass(slots=True)
class _Chunks:
    first_at: float
    severity: int
    parts: dict[int, str] = field(default_factory=dict)
    last: int | None = None
    """chunk_seq of the final chunk, once received."""


class VehicleSession:
    """Telemetry, events and protocol inbox of one vehicle on one link."""

    def __init__(
        self,
        port: LinkPort,
        entry: VehicleEntry,
        system_id: int,
        address: tuple[str, int],
    ) -> None:
        self.port = port
        self.clock = port.clock
        self.entry = entry
        self.status = entry.status
        self.vehicle_id = entry.info.id
        self.system_id = system_id
        self.component_id = AUTOPILOT_COMPONENT
        self.address = address
        self.last_heartbeat: float | None = None
        self.texts: deque[TextRecord] = deque(maxlen=TEXT_MEMORY_COUNT)
        self.text_waiters: list[asyncio.Future[None]] = []
        self.capabilities = 0
        """AUTOPILOT_VERSION.capabilities once received."""
        self.mission_items: list[MissionItem] = []
        """The mission last uploaded through this session (for progress interpretation)."""
        self._listeners: dict[int, list[Listener]] = {}
        self._chunks: dict[tuple[int, int], _Chunks] = {}
        self._system_status: int | None = None
        self._commanded_mode: tuple[FlightMode, float] | None = None
        self._event_seq: int | None = None
        self._events_seen: deque[int] = deque(maxlen=256)

    # -- helpers --------------------------------------------------------------------------

    @property
    def our_ids(self) -> tuple[int, int]:
        return self.port.codec.system_id, self.port.codec.component_id

    def send(self, msg: mavlink.MAVLink_message) -> None:
        self.port.send_bytes(self.port.codec.pack(msg), self.address)

    def publish(
        self,
        kind: VehicleEventKind,
        message: str = "",
        severity: Severity = Severity.INFO,
        **data: Any,
    ) -> None:
        self.port.bus.publish(
            VehicleEvent(
                at=self.clock.time(),
                vehicle_id=self.vehicle_id,
                kind=kind,
                message=message,
                severity=severity,
                data=data,
            )
        )

    def addressed_to_us(self, target_system: int, target_component: int) -> bool:
        sysid, compid = self.our_ids
        return target_system in (0, sysid) and target_component in (0, compid)

    def listen(
        self, msgids: Iterable[int], predicate: Callable[[Any], bool] | None = None
    ) -> Listener:
        return Listener(self, msgids, predicate)

    def _offer(self, msg: Any) -> None:
        listeners = self._listeners.get(msg.get_msgId())
        if listeners:
            for listener in tuple(listeners):
                listener.offer(msg)

    def note_commanded_mode(self, mode: FlightMode) -> None:
        """Remember that we asked for ``mode`` (so the switch is not taken for a failsafe)."""
        self._commanded_mode = (mode, self.clock.monotonic())

    def texts_since(self, since: float, min_severity: Severity | None = None) -> list[TextRecord]:
        order = [Severity.DEBUG, Severity.INFO, Severity.WARNING, Severity.ERROR]
        floor = order.index(min_severity) if min_severity is not None else 0
        return [t for t in self.texts if t.at >= since and order.index(t.severity) >= floor]

    async def wait_text(
        self, since: float, within: float, min_severity: Severity = Severity.WARNING
    ) -> list[TextRecord]:
        """Texts at or above ``min_severity`` since ``since``, waiting up to ``within`` world
        seconds for the first one if none has come yet."""
        found = self.texts_since(since, min_severity)
        if found or within <= 0:
            return found

        async def _wait() -> None:
            while not self.texts_since(since, min_severity):
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self.text_waiters.append(fut)
                await fut

        with contextlib.suppress(TimeoutError):
            await self.clock.wait_for(_wait(), within)
        return self.texts_since(since, min_severity)

    def _record_text(self, severity: Severity, text: str, source: str, **data: Any) -> None:
        now = self.clock.monotonic()
        self.texts.append(TextRecord(now, severity, text, source))
        while self.texts and self.texts[0].at < now - TEXT_MEMORY_S:
            self.texts.popleft()
        for fut in self.text_waiters:
            if not fut.done():
                fut.set_result(None)
        self.text_waiters.clear()
        self.publish(VehicleEventKind.STATUS_TEXT, text, severity, source=source, **data)
        if severity in (Severity.WARNING, Severity.ERROR) and "failsafe" in text.lower():
            self.publish(VehicleEventKind.FAILSAFE, text, severity, source=source)

    def _touch(self) -> None:
        self.status.last_seen = self.clock.monotonic()
        self.port.registry.touch(self.vehicle_id)

    # -- link state -------------------------------------------------------------------------

    def check_link(self, now: float) -> None:
        """Called periodically by the link: declare the link lost after the timeout."""
        if (
            self.status.link == LinkState.ONLINE
            and self.last_heartbeat is not None
            and now - self.last_heartbeat > self.port.options.link_timeout_s
        ):
            self.status.link = LinkState.LOST
            silent = now - self.last_heartbeat
            self.publish(
                VehicleEventKind.LINK_LOST,
                f"no heartbeat for {silent:.1f} s",
                Severity.WARNING,
                silent_s=round(silent, 3),
            )
            self.port.registry.touch(self.vehicle_id)
            for listeners in self._listeners.values():
                for listener in listeners:
                    listener.queue.put_nowait(LinkState.LOST)
        self._flush_chunks(now, force=False)

    # -- telemetry handlers (message id -> method, see HANDLERS) ---------------------------------

    def on_heartbeat(self, msg: Any) -> None:
        if not translate.is_autopilot_heartbeat(msg.type, msg.autopilot):
            return
        now = self.clock.monotonic()
        self.last_heartbeat = now
        status = self.status
        if status.link != LinkState.ONLINE:
            regained = status.link == LinkState.LOST
            status.link = LinkState.ONLINE
            if regained:
                self.publish(VehicleEventKind.LINK_REGAINED, "heartbeat received again")
        armed = translate.heartbeat_armed(msg.base_mode)
        if armed != status.armed:
            status.armed = armed
            self.publish(VehicleEventKind.ARMED if armed else VehicleEventKind.DISARMED)
        mode = translate.heartbeat_mode(msg.base_mode, msg.custom_mode)
        if mode != status.mode:
            old = status.mode
            status.mode = mode
            self.publish(
                VehicleEventKind.MODE_CHANGED, f"{old} -> {mode}", previous=str(old), mode=str(mode)
            )
            if self._looks_like_failsafe(old, mode, now):
                self.publish(
                    VehicleEventKind.FAILSAFE,
                    f"vehicle switched itself from {old} to {mode}",
                    Severity.WARNING,
                    previous=str(old),
                    mode=str(mode),
                )
        if msg.system_status != self._system_status:
            previous = self._system_status
            self._system_status = msg.system_status
            if translate.is_failsafe_state(msg.system_status) and previous is not None:
                name = mavlink.enums["MAV_STATE"][msg.system_status].name
                self.publish(
                    VehicleEventKind.FAILSAFE, f"vehicle state {name}", Severity.ERROR, state=name
                )
        self._touch()

    def _looks_like_failsafe(self, old: FlightMode, new: FlightMode, now: float) -> bool:
        if new not in _FAILSAFE_MODES or old in (FlightMode.UNKNOWN, new):
            return False
        if self._commanded_mode is not None:
            mode, at = self._commanded_mode
            if mode == new and now - at < COMMANDED_MODE_GRACE_S:
                return False
        if not self.status.armed:
            return False
        if old == FlightMode.TAKEOFF and new == FlightMode.HOLD:
            return False  # PX4 loiters once the take-off altitude is reached
        progress = self.status.mission
        if old == FlightMode.MISSION:
            if progress.total > 0 and progress.current >= progress.total - 1:
                return False  # PX4 holds (or lands/returns) after the last item
            if 0 <= progress.current < len(self.mission_items):
                current = self.mission_items[progress.current].command
                if current in (mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, mavlink.MAV_CMD_NAV_LAND):
                    return False
        return old in (
            FlightMode.MISSION,
            FlightMode.TAKEOFF,
            FlightMode.HOLD,
            FlightMode.POSCTL,
            FlightMode.OFFBOARD,
            FlightMode.ALTCTL,
        )

    def on_global_position_int(self, msg: Any) -> None:
        translate.apply_global_position(self.status, msg)
        self._touch()

    def on_home_position(self, msg: Any) -> None:
        translate.apply_home_position(self.status, msg)
        self._touch()

    def on_sys_status(self, msg: Any) -> None:
        translate.apply_sys_status(self.status, msg)
        self._touch()

    def on_battery_status(self, msg: Any) -> None:
        translate.apply_battery_status(self.status, msg)
        self._touch()

    def on_extended_sys_state(self, msg: Any) -> None:
        self.status.landed = translate.landed_state(msg.landed_state)
        self._touch()

    def on_mission_current(self, msg: Any) -> None:
        progress = self.status.mission
        progress.current = msg.seq
        if msg.total != translate.UINT16_MAX:
            progress.total = msg.total
        progress.state = translate.mission_run_state(msg.mission_state, msg.total)
        self._offer(msg)
        self._touch()

    def on_mission_item_reached(self, msg: Any) -> None:
        self.status.mission.reached = msg.seq
        self._touch()

    def on_autopilot_version(self, msg: Any) -> None:
        self.capabilities = msg.capabilities
        self._touch()

    # -- texts and events -------------------------------------------------------------------

    def on_statustext(self, msg: Any, component: int | None = None) -> None:
        comp = self.component_id if component is None else component
        raw: bytes = msg._text_raw
        final = b"\x00" in raw or len(raw) < 50
        text = translate.statustext(raw)
        extra = {} if comp == self.component_id else {"component": comp}
        if msg.id == 0:
            if text:
                self._record_text(translate.severity(msg.severity), text, "statustext", **extra)
            self._touch()
            return
        key = (comp, msg.id)
        chunks = self._chunks.get(key)
        if chunks is None:
            chunks = self._chunks[key] = _Chunks(self.clock.monotonic(), msg.severity)
        chunks.parts[msg.chunk_seq] = raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        if final:
            chunks.last = msg.chunk_seq
        if chunks.last is not None and len(chunks.parts) == chunks.last + 1:
            del self._chunks[key]
            self._emit_chunks(chunks, comp)
        self._touch()

    def _emit_chunks(self, chunks: _Chunks, comp: int) -> None:
        last = max(chunks.parts)
        parts = [chunks.parts.get(i, "…") for i in range(last + 1)]
        text = "".join(parts).rstrip("\t").strip()
        extra: dict[str, Any] = {} if comp == self.component_id else {"component": comp}
        if len(chunks.parts) != last + 1:
            extra["incomplete"] = True
        if text:
            self._record_text(translate.severity(chunks.severity), text, "statustext", **extra)

    def _flush_chunks(self, now: float, force: bool) -> None:
        for key, chunks in list(self._chunks.items()):
            if force or now - chunks.first_at > CHUNK_TIMEOUT_S:
                del self._chunks[key]
                self._emit_chunks(chunks, key[0])

    def on_event(self, msg: px4_events.EventMessage) -> None:
        if msg.destination_system not in (0, self.our_ids[0]):
            return
        seq = msg.sequence
        self._request_missing_events(seq)
        if seq in self._events_seen:
            return  # re-sent after a request we did not need
        self._events_seen.append(seq)
        level = msg.external_level
        if level != px4_events.LOG_LEVEL_DISABLED:  # protocol-level events are kept as debug
            text, name = px4_events.render_event(msg.event_id, msg.arguments)
            self._record_text(
                translate.severity(level), text, "event", event_id=msg.event_id, event_name=name
            )
        self._touch()

    def on_current_event_sequence(self, msg: px4_events.CurrentEventSequenceMessage) -> None:
        if msg.flags & 1:  # MAV_EVENT_CURRENT_SEQUENCE_FLAGS_RESET: the vehicle rebooted
            self._event_seq = msg.sequence
            self._events_seen.clear()
            return
        last = self._event_seq
        if last is None:
            self._event_seq = msg.sequence
            return
        ahead = (msg.sequence - last) & 0xFFFF
        if 0 < ahead < 0x8000:
            self._request_events(last + 1, msg.sequence)
            self._event_seq = msg.sequence

    def _request_missing_events(self, seq: int) -> None:
        """Note EVENT ``seq``; ask again for any skipped since the last one seen."""
        last = self._event_seq
        if last is None:
            self._event_seq = seq
            return
        ahead = (seq - last) & 0xFFFF
        if 0 < ahead < 0x8000:
            if ahead > 1:
                self._request_events(last + 1, seq - 1)
            self._event_seq = seq

    def _request_events(self, first: int, last: int) -> None:
        count = ((last - first) & 0xFFFF) + 1
        if count > EVENT_REQUEST_MAX_GAP:
            first = (last - EVENT_REQUEST_MAX_GAP + 1) & 0xFFFF
        self.send(
            px4_events.RequestEventMessage(
                self.system_id, self.component_id, first & 0xFFFF, last & 0xFFFF
            )
        )

    # -- protocol answers (offered to listeners when addressed to us) -----------------------------

    def on_targeted(self, msg: Any) -> None:
        if self.addressed_to_us(msg.target_system, msg.target_component):
            self._offer(msg)
        else:
            self.port.stats.foreign += 1  # an answer to another ground station
        self._touch()

    def on_param_value(self, msg: Any) -> None:
        self._offer(msg)
        self._touch()


HANDLERS: dict[int, Callable[[VehicleSession, Any], None]] = {
    mavlink.MAVLINK_MSG_ID_HEARTBEAT: VehicleSession.on_heartbeat,
    mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: VehicleSession.on_global_position_int,
    mavlink.MAVLINK_MSG_ID_HOME_POSITION: VehicleSession.on_home_position,
    mavlink.MAVLINK_MSG_ID_SYS_STATUS: VehicleSession.on_sys_status,
    mavlink.MAVLINK_MSG_ID_BATTERY_STATUS: VehicleSession.on_battery_status,
    mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: VehicleSession.on_extended_sys_state,
    mavlink.MAVLINK_MSG_ID_MISSION_CURRENT: VehicleSession.on_mission_current,
    mavlink.MAVLINK_MSG_ID_MISSION_ITEM_REACHED: VehicleSession.on_mission_item_reached,
    mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION: VehicleSession.on_autopilot_version,
    mavlink.MAVLINK_MSG_ID_STATUSTEXT: VehicleSession.on_statustext,
    px4_events.MSG_ID_EVENT: VehicleSession.on_event,
    px4_events.MSG_ID_CURRENT_EVENT_SEQUENCE: VehicleSession.on_current_event_sequence,
    mavlink.MAVLINK_MSG_ID_COMMAND_ACK: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_MISSION_REQUEST: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_MISSION_REQUEST_INT: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_MISSION_ACK: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_MISSION_COUNT: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_MISSION_ITEM_INT: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_MISSION_ITEM: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_PARAM_ERROR: VehicleSession.on_targeted,
    mavlink.MAVLINK_MSG_ID_PARAM_VALUE: VehicleSession.on_param_value,
}
"""Messages from a vehicle's autopilot that the service decodes; all others are skipped."""
