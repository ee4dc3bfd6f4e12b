"""One vehicle as seen through a MAVLink link: its telemetry, texts, events and inbox.

A :class:`VehicleSession` is created when the link discovers a vehicle. The link hands it every
decoded frame from that system's autopilot through :data:`HANDLERS` (message id -> method);
the session updates the vehicle's :class:`fleet.vehicle.VehicleStatus` in place through
:mod:`.translate`, touches the registry, and publishes vehicle events (mode changes, arming,
failsafes, every STATUSTEXT and EVENT). Protocol answers (COMMAND_ACK, mission and parameter
messages) addressed to us go to its :class:`.inbox.Inbox`, whose listeners the command,
mission and parameter clients open while they wait.

Its parts: texts are kept for a few minutes (:meth:`VehicleSession.texts_since`) so that a
command refusal or an invalid mission can be reported with the vehicle's own reason; the
bookkeeping of texts, STATUSTEXT chunks and EVENT sequences is :mod:`.texts`. Readiness for a
mission (:meth:`VehicleSession.update_readiness`) is decided from what the vehicle reports, kept
in :class:`.readiness.ReadinessInputs` with its health-and-arming-checks reports; the rules are
:mod:`.verdicts`, as is the verdict on an uploaded plan (``plan_rejections``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import translate
from firmware_bridges.mavlink.arming_checks import ArmingReport
from firmware_bridges.mavlink.codec import Codec, LinkStats
from firmware_bridges.mavlink.inbox import Inbox, Listener
from firmware_bridges.mavlink.options import MavlinkOptions
from firmware_bridges.mavlink.readiness import ReadinessInputs
from firmware_bridges.mavlink.texts import (
    ChunkedText,
    ChunkedTexts,
    EventSequence,
    TextLog,
    TextRecord,
)
from firmware_bridges.mavlink.verdicts import is_plan_rejection
from firmware_bridges.mavlink.wire import ftp_protocol, px4_events
from firmware_bridges.mavlink.wire.component_info import (
    MSG_ID_COMPONENT_INFORMATION,
    MSG_ID_COMPONENT_METADATA,
)
from firmware_bridges.mavlink.wire.event_metadata import EventMetadata, RenderedEvent
from firmware_bridges.mavlink.wire.messages import Message
from fleet.clock import Clock
from fleet.events import EventBus, Severity, VehicleEvent, VehicleEventKind
from fleet.registry import VehicleEntry, VehicleRegistry
from fleet.vehicle import FlightMode, LinkState, MissionRunState

if TYPE_CHECKING:
    from firmware_bridges.mavlink.wire.mission_items import MissionItem

log = structlog.get_logger(__name__)

AUTOPILOT_COMPONENT = mavlink.MAV_COMP_ID_AUTOPILOT1
"""Component id of the flight controller (PX4's autopilot)."""
COMMANDED_MODE_GRACE_S = 5.0
"""A mode change within this long of our own request is not a failsafe."""
_FAILSAFE_MODES = frozenset({FlightMode.RTL, FlightMode.LAND, FlightMode.HOLD, FlightMode.RTGS})


class LinkPort(Protocol):
    """What a session needs from its link."""

    codec: Codec
    stats: LinkStats
    clock: Clock
    registry: VehicleRegistry
    bus: EventBus
    options: MavlinkOptions
    stalled_s: float
    """World seconds the service did not run on time, in all (not the vehicles' silence)."""

    def send_bytes(self, data: bytes, address: tuple[str, int]) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None: ...


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
        self._stalled_at_heartbeat = 0.0
        """``port.stalled_s`` when the last heartbeat was read."""
        self.texts = TextLog(self.clock)
        """What the vehicle said lately (STATUSTEXT and rendered EVENTs)."""
        self._chunked = ChunkedTexts()
        self._events = EventSequence()
        self.capabilities = 0
        """AUTOPILOT_VERSION.capabilities once received."""
        self.mission_items: list[MissionItem] = []
        """The mission last uploaded through this session (for progress interpretation)."""
        self.inbox = Inbox(self.clock)
        """Protocol answers addressed to us, for the clients waiting for them."""
        self._system_status: int | None = None
        self._commanded_mode: tuple[FlightMode, float] | None = None
        # -- readiness and plan verdicts (verdicts.py)
        self.plan_rejections: list[str] = []
        """Feasibility failures the vehicle reported since the last plan upload started."""
        self._mission_report: tuple[int, int] | None = None
        """(mission_state, total) of the last MISSION_CURRENT."""
        self.readiness = ReadinessInputs(self.clock)
        """What readiness is decided from besides the status, and the arming reports."""
        # -- component metadata, event rendering, arming report (metadata.py, arming_checks.py)
        self.flight_sw_version: int | None = None
        """AUTOPILOT_VERSION.flight_sw_version once received (the metadata cache key)."""
        self.event_metadata: EventMetadata | None = None
        """The vehicle's own event definitions once downloaded (None: built-in fallback)."""
        self.metadata_state = "not requested"
        """Where the metadata fetch stands: ``fetching``, ``loaded from vehicle|cache|memory``,
        ``not offered``, ``skipped: <why>``, ``failed: <reason>`` (metadata.py)."""

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
        self, msgids: Iterable[int], predicate: Callable[[Message], bool] | None = None
    ) -> Listener:
        return self.inbox.listen(msgids, predicate)

    def note_commanded_mode(self, mode: FlightMode) -> None:
        """Remember that we asked for ``mode`` (so the switch is not taken for a failsafe)."""
        self._commanded_mode = (mode, self.clock.monotonic())

    def texts_since(self, since: float, min_severity: Severity | None = None) -> list[TextRecord]:
        return self.texts.since(since, min_severity)

    async def wait_text(
        self, since: float, within: float, min_severity: Severity = Severity.WARNING
    ) -> list[TextRecord]:
        """Texts at or above ``min_severity`` since ``since``, waiting up to ``within`` world
        seconds for the first one if none has come yet."""
        return await self.texts.wait(since, within, min_severity)

    def _record_text(self, severity: Severity, text: str, source: str, **data: Any) -> None:
        now = self.clock.monotonic()
        name = data.get("event_name")
        rejection = is_plan_rejection(severity, text, source, name)
        self.texts.add(TextRecord(now, severity, text, source, name, rejection))
        if rejection:
            self.plan_rejections.append(text)
            self._refresh_mission_state()
        self.publish(VehicleEventKind.STATUS_TEXT, text, severity, source=source, **data)
        if severity in (Severity.WARNING, Severity.ERROR) and "failsafe" in text.lower():
            self.publish(VehicleEventKind.FAILSAFE, text, severity, source=source)

    def _touch(self) -> None:
        self.status.last_seen = self.clock.monotonic()
        self.port.registry.touch(self.vehicle_id)

    # -- link state -------------------------------------------------------------------------

    def check_link(self, now: float) -> None:
        """Called periodically by the link: declare the link lost after the timeout (the time
        the service itself did not run on time, ``port.stalled_s``, is not silence)."""
        if self.status.link == LinkState.ONLINE and self.last_heartbeat is not None:
            silent = now - self.last_heartbeat
            stalled = self.port.stalled_s - self._stalled_at_heartbeat
            if silent - stalled > self.port.options.link_timeout_s:
                self._declare_lost(silent, stalled)
        self._flush_chunks(now, force=False)
        self.update_readiness()  # a position gone stale, a report that never came

    def _declare_lost(self, silent: float, stalled: float) -> None:
        self.status.link = LinkState.LOST
        late = f"; the service ran {stalled:.1f} s late meanwhile" if stalled > 0 else ""
        self.publish(
            VehicleEventKind.LINK_LOST,
            f"no heartbeat for {silent:.1f} s{late}",
            Severity.WARNING,
            silent_s=round(silent, 3),
        )
        self.port.registry.touch(self.vehicle_id)
        self.inbox.link_lost()

    # -- telemetry handlers (message id -> method, see HANDLERS) ---------------------------------

    def on_heartbeat(self, msg: Message) -> None:
        if not translate.is_autopilot_heartbeat(msg.type, msg.autopilot):
            return
        now = self.clock.monotonic()
        self.last_heartbeat = now
        self._stalled_at_heartbeat = self.port.stalled_s
        self.readiness.autopilot = msg.autopilot
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

    def on_global_position_int(self, msg: Message) -> None:
        translate.apply_global_position(self.status, msg)
        stale = self.readiness.position_at is None
        self.readiness.position_at = self.clock.monotonic()
        if stale:
            self.update_readiness()
        self._touch()

    def on_home_position(self, msg: Message) -> None:
        had_home = self.status.home is not None
        translate.apply_home_position(self.status, msg)
        if not had_home:
            self.update_readiness()
        self._touch()

    def on_sys_status(self, msg: Message) -> None:
        was_ready = self.status.ready_to_arm
        translate.apply_sys_status(self.status, msg)
        if self.status.ready_to_arm != was_ready:
            self.update_readiness()
        self._touch()

    def on_battery_status(self, msg: Message) -> None:
        translate.apply_battery_status(self.status, msg)
        self._touch()

    def on_extended_sys_state(self, msg: Message) -> None:
        landed = translate.landed_state(msg.landed_state)
        if landed != self.status.landed:
            previous = self.status.landed
            self.status.landed = landed
            self.publish(
                VehicleEventKind.LANDED_STATE,
                f"{previous} -> {landed}",
                Severity.DEBUG,
                previous=str(previous),
                landed=str(landed),
            )
        self._touch()

    def on_mission_current(self, msg: Message) -> None:
        progress = self.status.mission
        # PX4 reports seq 65535 until its navigator has picked up a new plan, and total 65535
        # when it holds no plan at all
        progress.current = -1 if msg.seq == translate.UINT16_MAX else msg.seq
        progress.total = 0 if msg.total == translate.UINT16_MAX else msg.total
        self._mission_report = (msg.mission_state, msg.total)
        self._refresh_mission_state()
        self.inbox.offer(msg)
        self._touch()

    def _refresh_mission_state(self) -> None:
        """Map the last MISSION_CURRENT (and any feasibility failure since the last upload) to
        the domain's mission state; publish a change."""
        if self._mission_report is None:
            return
        progress = self.status.mission
        mission_state, total = self._mission_report
        state = translate.mission_run_state(mission_state, total, bool(self.plan_rejections))
        if state != progress.state:
            previous = progress.state
            progress.state = state
            data: dict[str, Any] = {"previous": str(previous), "state": str(state)}
            data["total"] = progress.total
            if state is MissionRunState.INVALID:
                data["reasons"] = list(dict.fromkeys(self.plan_rejections))
            self.publish(
                VehicleEventKind.MISSION_STATE,
                f"mission {previous} -> {state}",
                Severity.WARNING if state is MissionRunState.INVALID else Severity.DEBUG,
                **data,
            )

    def plan_upload_started(self) -> float:
        """Forget feasibility failures of earlier plans (a new upload starts now); the clock
        ``monotonic()`` of the start."""
        self.plan_rejections.clear()
        self._refresh_mission_state()
        return self.clock.monotonic()

    # -- readiness -------------------------------------------------------------------------------

    def update_readiness(self) -> None:
        """Decide whether the vehicle can fly a mission now, from what it said (see
        :func:`readiness`); publish READINESS when that changes."""
        st = self.status
        reasons = self.readiness.reasons(
            st, self.clock.monotonic(), self.port.options.position_timeout_s
        )
        ready = not reasons
        if ready == st.ready_for_mission and reasons == st.not_ready:
            return
        became = ready != st.ready_for_mission
        st.ready_for_mission = ready
        st.not_ready = reasons
        if became:
            self.publish(
                VehicleEventKind.READINESS,
                "ready to fly a mission" if ready else "not ready: " + "; ".join(reasons),
                ready=ready,
                reasons=list(reasons),
            )
        self.port.registry.touch(self.vehicle_id)

    def on_mission_item_reached(self, msg: Message) -> None:
        self.status.mission.reached = msg.seq
        self._touch()

    def on_autopilot_version(self, msg: Message) -> None:
        self.capabilities = msg.capabilities
        self._touch()

    # -- texts and events -------------------------------------------------------------------

    @property
    def speaks_events(self) -> bool:
        """Whether the vehicle uses the events protocol (it announced an event sequence)."""
        return self._events.last is not None

    def on_statustext(self, msg: Message, component: int | None = None) -> None:
        comp = self.component_id if component is None else component
        raw: bytes = msg._text_raw
        if msg.id == 0:
            text = translate.statustext(raw)
            if comp == self.component_id and self.speaks_events and translate.mirrors_event(raw):
                # PX4 ends a text with a tab when it sends the same message as an EVENT; a
                # ground station that reads events shows the event only (as QGC does)
                self._touch()
                return
            if text:
                extra = {} if comp == self.component_id else {"component": comp}
                self._record_text(translate.severity(msg.severity), text, "statustext", **extra)
            self._touch()
            return
        now = self.clock.monotonic()
        whole = self._chunked.add(comp, msg.id, msg.chunk_seq, msg.severity, raw, now)
        if whole is not None:
            self._emit_chunks(whole)
        self._touch()

    def _emit_chunks(self, chunked: ChunkedText) -> None:
        comp = chunked.component
        if comp == self.component_id and self.speaks_events and chunked.text.endswith("\t"):
            return  # mirrored by an EVENT (see on_statustext)
        text = chunked.text.rstrip("\t").strip()
        extra: dict[str, Any] = {} if comp == self.component_id else {"component": comp}
        if not chunked.complete:
            extra["incomplete"] = True
        if text:
            self._record_text(translate.severity(chunked.severity), text, "statustext", **extra)

    def _flush_chunks(self, now: float, force: bool) -> None:
        for chunked in self._chunked.expired(now, force):
            self._emit_chunks(chunked)

    def on_event(self, msg: px4_events.EventMessage) -> None:
        if msg.destination_system not in (0, self.our_ids[0]):
            return
        seq = msg.sequence
        new, missing = self._events.on_event(seq)
        if missing is not None:
            self._request_events(*missing)
        if not new:
            return  # re-sent after a request we did not need
        level = msg.external_level
        event = self.render_event(msg.event_id, msg.arguments)
        # health and arming check events make up the arming report, not texts (as in QGC)
        tracker = self.readiness.arming_checks
        reports = tracker.reports
        in_report = tracker.feed(
            seq, event, level, self.clock.monotonic(), with_metadata=self.event_metadata is not None
        )
        if tracker.reports != reports:
            self._arming_report_changed()
        if not in_report and level != px4_events.LOG_LEVEL_DISABLED:  # protocol level: debug
            self._record_text(
                translate.severity(level),
                event.message,
                "event",
                event_id=msg.event_id,
                event_name=event.name,
            )
        self._touch()

    def on_current_event_sequence(self, msg: px4_events.CurrentEventSequenceMessage) -> None:
        missing = self._events.on_current(msg.sequence, msg.flags)
        if missing is not None:
            self._request_events(*missing)

    def _request_events(self, first: int, last: int) -> None:
        self.send(px4_events.RequestEventMessage(self.system_id, self.component_id, first, last))

    # -- protocol answers (offered to listeners when addressed to us) -----------------------------

    def on_targeted(self, msg: Message) -> None:
        if self.addressed_to_us(msg.target_system, msg.target_component):
            self.inbox.offer(msg)
        else:
            self.port.stats.foreign += 1  # an answer to another ground station
        self._touch()

    def on_param_value(self, msg: Message) -> None:
        self.inbox.offer(msg)
        self._touch()

    # -- component metadata, event rendering, arming report --------------------------------------

    def on_component_metadata(self, msg: Message) -> None:
        """COMPONENT_METADATA / COMPONENT_INFORMATION: for the metadata fetch (metadata.py)."""
        self.inbox.offer(msg)
        self._touch()

    def on_autopilot_version_message(self, msg: Message) -> None:
        """AUTOPILOT_VERSION: :meth:`on_autopilot_version`, plus the firmware version."""
        self.flight_sw_version = int(msg.flight_sw_version)
        self.on_autopilot_version(msg)

    def render_event(self, event_id: int, arguments: bytes) -> RenderedEvent:
        """An EVENT rendered with the vehicle's metadata, else the built-in fallback, else raw
        (``event 0x........ args=..``); the result also names the event, its group and type."""
        metadata = self.event_metadata
        if metadata is not None:
            event = metadata.render(event_id, arguments)
            if event is not None:
                return event
        return px4_events.render_fallback(event_id, arguments)

    def set_event_metadata(self, metadata: EventMetadata) -> None:
        """Render events with ``metadata`` from now on (and the latest arming report again)."""
        self.event_metadata = metadata
        tracker = self.readiness.arming_checks
        if tracker.rerender(self.render_event, with_metadata=True) is not None:
            self._arming_report_changed()

    @property
    def arming_report(self) -> ArmingReport | None:
        """The latest complete health-and-arming-checks report, or None before the first."""
        return self.readiness.report

    async def wait_arming_report(
        self, within: float, since: float | None = None
    ) -> ArmingReport | None:
        """The next report to complete (or, with ``since``, the latest completed at or after
        that clock ``monotonic()``), waiting up to ``within`` world seconds; None if none."""
        return await self.readiness.wait_report(within, since, self._arming_report_changed)

    def _arming_report_changed(self) -> None:
        report = self.readiness.report
        if report is not None:
            self.status.extra["arming"] = report.as_dict()
        self.readiness.report_changed()
        self.update_readiness()
        self.port.registry.touch(self.vehicle_id)


HANDLERS: dict[int, Callable[[VehicleSession, Message], None]] = {
    mavlink.MAVLINK_MSG_ID_HEARTBEAT: VehicleSession.on_heartbeat,
    mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: VehicleSession.on_global_position_int,
    mavlink.MAVLINK_MSG_ID_HOME_POSITION: VehicleSession.on_home_position,
    mavlink.MAVLINK_MSG_ID_SYS_STATUS: VehicleSession.on_sys_status,
    mavlink.MAVLINK_MSG_ID_BATTERY_STATUS: VehicleSession.on_battery_status,
    mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: VehicleSession.on_extended_sys_state,
    mavlink.MAVLINK_MSG_ID_MISSION_CURRENT: VehicleSession.on_mission_current,
    mavlink.MAVLINK_MSG_ID_MISSION_ITEM_REACHED: VehicleSession.on_mission_item_reached,
    mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION: VehicleSession.on_autopilot_version_message,
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
    # component metadata (metadata.py) and MAVLink FTP (ftp.py)
    MSG_ID_COMPONENT_METADATA: VehicleSession.on_component_metadata,
    MSG_ID_COMPONENT_INFORMATION: VehicleSession.on_component_metadata,
    ftp_protocol.MSG_ID: VehicleSession.on_targeted,
}
"""Messages from a vehicle's autopilot that the service decodes; all others are skipped."""
