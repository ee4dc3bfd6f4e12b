"""The MAVLink mission protocol of a sim drone, as PX4's ``MavlinkMissionManager`` runs it.

Upload (MISSION_COUNT → MISSION_REQUEST_INT/MISSION_REQUEST per item → MISSION_ACK), download
(MISSION_REQUEST_LIST → MISSION_COUNT → items → ack) and clear (MISSION_CLEAR_ALL) for the
mission, fence and rally plan types, with PX4's rules:

* one transfer at a time; a MISSION_COUNT from another partner or during a transfer gets
  ``MAV_MISSION_ERROR``; a repeated MISSION_COUNT before the first item re-sends the request;
* an unexpected item sequence is ignored (the vehicle re-requests after 250 ms); an invalid item
  aborts the transfer with its error result and keeps the previous plan (partial failure);
* a transfer with no message from the partner for 5 s is abandoned ("Operation timeout");
* a count larger than the plan type holds gets ``MAV_MISSION_NO_SPACE``; count 0 clears;
* an item repeated after the final ACK is answered with ACCEPTED again.

It also reports progress like PX4: MISSION_CURRENT (seq, total, mission_state, mission_mode) on
every change of the current item and once a second; MISSION_ITEM_REACHED on each reached item,
then repeated once a second up to 10 more times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import ClassVar

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire.messages import Message
from firmware_bridges.mavlink.wire.mission_items import MissionItem, MissionType
from sim.drone.mission_items import FENCE_COMMANDS, MAX_COUNT, check_item

PROTOCOL_TIMEOUT_S = 5.0
"""MAVLINK_MISSION_PROTOCOL_TIMEOUT_DEFAULT: a transfer is abandoned after this silence."""
RETRY_TIMEOUT_S = 0.25
"""MAVLINK_MISSION_RETRY_TIMEOUT_DEFAULT: an item request is repeated after this."""
SLOW_RATE_S = 1.0
"""Period of the periodic MISSION_CURRENT and of MISSION_ITEM_REACHED repetitions."""
REACHED_REPEATS = 10
"""How many times MISSION_ITEM_REACHED is repeated after the first."""
MISSION_COMPONENTS = frozenset({0, 1, mavlink.MAV_COMP_ID_MISSIONPLANNER})
"""target_component values the mission manager answers to."""


class MissionState(IntEnum):
    """MISSION_STATE (MISSION_CURRENT.mission_state)."""

    UNKNOWN = 0
    """Not reported."""
    NO_MISSION = 1
    """No mission, or the uploaded mission is infeasible (PX4)."""
    NOT_STARTED = 2
    """Uploaded, not started."""
    ACTIVE = 3
    """Being executed."""
    PAUSED = 4
    """Started, then left mission mode."""
    COMPLETE = 5
    """Every item done."""


class MissionMode(IntEnum):
    """MISSION_CURRENT.mission_mode."""

    UNKNOWN = 0
    """Not reported."""
    ACTIVE = 1
    """In a mode that executes mission items (mission, takeoff, land)."""
    SUSPENDED = 2
    """In any other mode."""


class _State(Enum):
    IDLE = "idle"
    GETLIST = "getlist"
    SENDLIST = "sendlist"


@dataclass(slots=True)
class MissionResult:
    """What the navigator reports about the flight plan (PX4's ``mission_result``)."""

    valid: bool = True
    finished: bool = False
    seq_current: int = 0
    seq_reached: int = -1
    mode_active: bool = False


Send = Callable[[Message], None]
StatusText = Callable[[int, str], None]
OnStored = Callable[[MissionType, list[MissionItem]], int]
"""Called with a completely received plan; returns a MAV_MISSION_RESULT (ACCEPTED to keep it)."""


class MissionProtocol:
    """Mission, fence and rally plans of one vehicle and the transfers that change them."""

    def __init__(
        self, sysid: int, compid: int, send: Send, statustext: StatusText, on_stored: OnStored
    ) -> None:
        self.sysid = sysid
        self.compid = compid
        self._send = send
        self._statustext = statustext
        self._on_stored = on_stored
        self.plans: dict[MissionType, list[MissionItem]] = {t: [] for t in MAX_COUNT}
        self._state = _State.IDLE
        self._type = MissionType.MISSION
        self._int_mode = True
        self._partner = (0, 0)
        self._seq = 0
        self._count = 0
        self._buffer: list[MissionItem] = []
        self._last_recv = 0.0
        self._last_sent = 0.0
        self._last_upload_items = 0  # seq+1 of the last item of the last completed upload
        # progress reporting
        self.result = MissionResult()
        self._reported_current = -1
        self._reported_reached = -1
        self._reached_repeats = 0
        self._next_slow = 0.0
        self._mission_state = MissionState.NO_MISSION

    # --- properties ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._state is not _State.IDLE

    def mission_state(self) -> MissionState:
        """PX4's ``update_mission_state`` for the current result."""
        r = self.result
        if not self.plans[MissionType.MISSION] or not r.valid:
            self._mission_state = MissionState.NO_MISSION
        elif r.finished:
            self._mission_state = MissionState.COMPLETE
        elif r.mode_active:
            self._mission_state = MissionState.ACTIVE
        elif r.seq_reached >= 0:
            self._mission_state = MissionState.PAUSED
        elif r.seq_current < 1:
            self._mission_state = MissionState.NOT_STARTED
        return self._mission_state

    # --- incoming -----------------------------------------------------------------------

    def handle(self, msg: Message, now: float) -> bool:
        """Handle one decoded message; False if it is no mission-protocol message."""
        handler = self._HANDLERS.get(msg.get_type())
        if handler is None:
            return False
        if msg.target_system != self.sysid or msg.target_component not in MISSION_COMPONENTS:
            return True
        handler(self, msg, now)
        return True

    def _src(self, msg: Message) -> tuple[int, int]:
        return (msg.get_srcSystem(), msg.get_srcComponent())

    def _ack(self, partner: tuple[int, int], result: int, mission_type: int | None = None) -> None:
        self._send(
            mavlink.MAVLink_mission_ack_message(
                partner[0],
                partner[1],
                result,
                int(self._type if mission_type is None else mission_type),
            )
        )

    def _request(self, seq: int, now: float) -> None:
        self._last_sent = now
        p = self._partner
        if self._int_mode:
            self._send(
                mavlink.MAVLink_mission_request_int_message(p[0], p[1], seq, int(self._type))
            )
        else:
            self._send(mavlink.MAVLink_mission_request_message(p[0], p[1], seq, int(self._type)))

    def _on_count(self, msg: Message, now: float) -> None:
        src = self._src(msg)
        count: int = msg.count
        mtype: int = getattr(msg, "mission_type", 0)
        if self._state is _State.GETLIST:
            self._last_recv = now
            if src != self._partner:
                self._ack(src, mavlink.MAV_MISSION_ERROR, mtype)
                return
            if self._seq == 0:
                self._request(0, now)  # our first request was lost
                return
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "WPM: REJ. CMD: Busy")
            self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            return
        if self._state is not _State.IDLE:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "WPM: IGN MISSION_COUNT: Busy")
            self._ack(src, mavlink.MAV_MISSION_ERROR, mtype)
            return
        self._last_recv = now
        if mtype not in MAX_COUNT:
            self._ack(src, mavlink.MAV_MISSION_INVALID, mtype)
            return
        self._partner = src
        self._type = MissionType(mtype)
        if self._type is MissionType.MISSION:
            self.result.seq_reached = -1
        if count > MAX_COUNT[self._type]:
            self._ack(src, mavlink.MAV_MISSION_NO_SPACE)
            return
        if count == 0:
            result = self._on_stored(self._type, [])
            if result == mavlink.MAV_MISSION_ACCEPTED:
                self.plans[self._type] = []
            self._ack(src, result)
            return
        self._state = _State.GETLIST
        self._seq = 0
        self._count = count
        self._buffer = []
        self._request(0, now)

    def _on_item(self, msg: Message, now: float, int_mode: bool) -> None:
        src = self._src(msg)
        if src != self._partner:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "REJ. MIS ITEM: partner id mismatch")
            return
        self._int_mode = int_mode
        item = MissionItem.from_message(msg)
        seq: int = msg.seq
        if getattr(msg, "mission_type", 0) != self._type:
            self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            return
        if self._state is _State.IDLE:
            if self._last_upload_items and seq + 1 == self._last_upload_items:
                self._ack(self._partner, mavlink.MAV_MISSION_ACCEPTED)
            else:
                self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "IGN MISSION_ITEM: No transfer")
                self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            return
        if self._state is not _State.GETLIST:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "IGN MISSION_ITEM: Busy")
            self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            return
        self._last_recv = now
        if seq != self._seq:
            return  # not the expected one: ignore, the retry timer re-requests
        result = check_item(item, int_mode)
        if result != mavlink.MAV_MISSION_ACCEPTED:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "IGN MISSION_ITEM: Invalid item")
            self._ack(self._partner, result)
            self._state = _State.IDLE
            return
        bad = (self._type is MissionType.MISSION and item.command in FENCE_COMMANDS) or (
            self._type is MissionType.FENCE
            and item.command
            in (
                mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
            )
            and int(item.param1 + 0.5) < 3
        )
        if bad:
            self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            self._state = _State.IDLE
            return
        self._buffer.append(item)
        self._seq = seq + 1
        if self._seq < self._count:
            self._request(self._seq, now)
            return
        self._state = _State.IDLE
        self._last_upload_items = self._count
        result = self._on_stored(self._type, list(self._buffer))
        if result == mavlink.MAV_MISSION_ACCEPTED:
            self.plans[self._type] = list(self._buffer)
        self._ack(self._partner, result)

    def _on_item_int(self, msg: Message, now: float) -> None:
        self._on_item(msg, now, True)

    def _on_item_float(self, msg: Message, now: float) -> None:
        self._on_item(msg, now, False)

    def _on_request_list(self, msg: Message, now: float) -> None:
        src = self._src(msg)
        mtype: int = getattr(msg, "mission_type", 0)
        if self._state is _State.SENDLIST and self._seq == self._count:
            self._state = _State.IDLE  # previous download done without its ack
        if self._state is _State.IDLE or (
            self._state is _State.SENDLIST and mtype == self._type and src == self._partner
        ):
            if mtype not in MAX_COUNT:
                self._ack(src, mavlink.MAV_MISSION_INVALID, mtype)
                return
            self._last_recv = now
            self._state = _State.SENDLIST
            self._type = MissionType(mtype)
            self._partner = src
            self._seq = 0
            self._count = len(self.plans[self._type])
            self._last_sent = now
            self._send(mavlink.MAVLink_mission_count_message(src[0], src[1], self._count, mtype))
        else:
            self._statustext(
                mavlink.MAV_SEVERITY_INFO, "Mission download request ignored, already active"
            )

    def _on_request(self, msg: Message, now: float, int_mode: bool) -> None:
        src = self._src(msg)
        if src != self._partner:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "WPM: REJ. CMD: partner id mismatch")
            return
        self._int_mode = int_mode
        if self._state is _State.IDLE:
            return  # PX4 ignores stray requests silently
        if self._state is not _State.SENDLIST:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "WPM: REJ. CMD: Busy")
            return
        seq: int = msg.seq
        if getattr(msg, "mission_type", 0) != self._type:
            return
        self._last_recv = now
        if seq == self._seq and self._seq < self._count:
            self._seq += 1
        elif seq != self._seq - 1:
            self._state = _State.IDLE
            self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "WPM: REJ. CMD: Req. WP was unexpected")
            return
        items = self.plans[self._type]
        if seq >= len(items):
            self._state = _State.IDLE
            self._ack(self._partner, mavlink.MAV_MISSION_ERROR)
            return
        self._send_item(seq, items[seq])

    def _send_item(self, seq: int, it: MissionItem) -> None:
        current = 1 if (self._type is MissionType.MISSION and seq == self.result.seq_current) else 0
        self._last_sent = 0.0
        build = it.int_message if self._int_mode else it.float_message
        self._send(build(self._partner, seq, self._type, current))

    def _on_request_int(self, msg: Message, now: float) -> None:
        self._on_request(msg, now, True)

    def _on_request_float(self, msg: Message, now: float) -> None:
        self._on_request(msg, now, False)

    def _on_ack(self, msg: Message, now: float) -> None:
        if self._src(msg) != self._partner:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "REJ. WP CMD: partner id mismatch")
            return
        mtype = getattr(msg, "mission_type", 0)
        if self._state is _State.SENDLIST and mtype == self._type:
            self._last_recv = now
            self._state = _State.IDLE
        elif self._state is _State.GETLIST and msg.type == mavlink.MAV_MISSION_OPERATION_CANCELLED:
            self._state = _State.IDLE

    def _on_clear_all(self, msg: Message, now: float) -> None:
        src = self._src(msg)
        if self._state is not _State.IDLE:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "WPM: IGN CLEAR CMD: Busy")
            return
        self._last_recv = now
        mtype = getattr(msg, "mission_type", 0)
        types = list(MAX_COUNT) if mtype == MissionType.ALL else [mtype]
        if any(t not in MAX_COUNT for t in types):
            self._ack(src, mavlink.MAV_MISSION_INVALID, mtype)
            return
        result = int(mavlink.MAV_MISSION_ACCEPTED)
        for t in types:
            r = self._on_stored(MissionType(t), [])
            if r == mavlink.MAV_MISSION_ACCEPTED:
                self.plans[MissionType(t)] = []
            else:
                result = r
        self._ack(src, result, mtype)

    def _on_set_current(self, msg: Message, now: float) -> None:
        # handled by the navigator through MAV_CMD_DO_SET_MISSION_CURRENT semantics
        pass

    _HANDLERS: ClassVar[dict[str, Callable[[MissionProtocol, Message, float], None]]] = {
        "MISSION_COUNT": _on_count,
        "MISSION_ITEM_INT": _on_item_int,
        "MISSION_ITEM": _on_item_float,
        "MISSION_REQUEST_LIST": _on_request_list,
        "MISSION_REQUEST_INT": _on_request_int,
        "MISSION_REQUEST": _on_request_float,
        "MISSION_ACK": _on_ack,
        "MISSION_CLEAR_ALL": _on_clear_all,
    }

    # --- periodic -----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Retries, timeouts and progress reports due at ``now``."""
        if self._state is _State.GETLIST and now - self._last_sent > RETRY_TIMEOUT_S:
            self._request(self._seq, now)
        elif self._state is not _State.IDLE and now - self._last_recv > PROTOCOL_TIMEOUT_S:
            self._statustext(mavlink.MAV_SEVERITY_CRITICAL, "Operation timeout")
            self._state = _State.IDLE
        self._report(now)

    def _mission_current(self) -> None:
        count = len(self.plans[MissionType.MISSION])
        state = self.mission_state()
        seq = self.result.seq_current
        self._send(
            mavlink.MAVLink_mission_current_message(
                # PX4: 65535 (-1) from an upload until the navigator takes up the new plan
                (seq & 0xFFFF) if count > 0 else max(0, seq),
                count if count > 0 else 0xFFFF,
                int(state),
                int(MissionMode.ACTIVE if self.result.mode_active else MissionMode.SUSPENDED),
            )
        )

    def _report(self, now: float) -> None:
        r = self.result
        count = len(self.plans[MissionType.MISSION])
        changed = False
        if r.seq_current != self._reported_current:
            self._reported_current = r.seq_current
            changed = True
            if count > 0 and r.seq_current < count:
                self._mission_current()  # also for -1: the plan just arrived, not taken up
        if r.seq_reached != self._reported_reached:
            self._reported_reached = r.seq_reached
            self._reached_repeats = 0
            changed = True
            if count > 0 and r.seq_reached >= 0:
                self._send(mavlink.MAVLink_mission_item_reached_message(r.seq_reached))
        if changed:
            return
        if now >= self._next_slow:
            self._next_slow += SLOW_RATE_S
            if self._next_slow <= now:
                self._next_slow = now + SLOW_RATE_S
            self._mission_current()
            if (
                count > 0
                and r.seq_current >= 0
                and r.seq_reached >= 0
                and self._reached_repeats < REACHED_REPEATS
            ):
                self._send(mavlink.MAVLink_mission_item_reached_message(r.seq_reached))
                self._reached_repeats += 1
