"""Control of one van: :class:`VanHandle`, the :class:`fleet.van.VanControl` the VDA 5050 link
hands out for every van it discovers.

A handle turns the port's commands into VDA 5050 messages and waits for the van's answer in its
state: trips become orders (:func:`~firmware_bridges.vda5050.translate.trip_to_order`),
re-published with the next ``headerId`` every ``resend_interval_s`` until a state echoes their
``orderId``/``orderUpdateId`` (or the van rejects them, or ``order_timeout_s`` passes); pause,
resume, cancel, charging and requests become instant actions, re-sent the same way until the van
reports them ended. It remembers what it sent for the last :data:`KEEP_TRIPS` trips (actions,
loads), so that each state the link receives (:meth:`VanHandle.on_state`) updates the van's
``VehicleStatus`` with trip progress and box counts and raises the events of ended picks and
drops, new errors and mode changes. Transport, discovery, link state and the watchdog belong to
:class:`~firmware_bridges.vda5050.link.Vda5050Link`.

Per van it also keeps:

- the **protocol version** the van announces in its headers (:meth:`VanHandle.heard_version`):
  orders and instant actions are written in that version's shape (:func:`wire.encode`); a van
  on a major version the service does not speak is *refused*: its messages are not acted on,
  its status says why, and every command raises ``CommandRejected`` with that reason;
- the **explanations** of failures: the error whose ``errorReferences`` name a failed action
  (``ActionProgress.error``), remembered after the van drops the error from its state;
- the **ids the van gives its loads** (RFID, barcodes): a load that appears on board when one
  of this service's picks finishes is that pick's consignment (``VanLoad.vehicle_load_id``);
- the **newest position**: from ``state`` or ``visualization``, whichever has the later
  timestamp.

A cancel (:meth:`VanHandle.cancel_trip`) returns only once the van reports ``cancelOrder``
FINISHED *and* its order cleared (no node left); a cancel the van rejects (the action FAILED,
or an error naming the ``instantActions`` message it came in) raises ``CommandRejected``, one it
ignores ``CommandTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from firmware_bridges.vda5050 import translate, wire
from firmware_bridges.vda5050.handling import LoadHandling
from fleet.errors import CommandRejected, CommandTimeout, Conflict, LinkLost, ValidationError
from fleet.events import Severity, VehicleEventKind
from fleet.registry import VehicleEntry
from fleet.van import (
    ActionProgress,
    ActionStatus,
    Drop,
    FaultLevel,
    Pick,
    StopAction,
    TripResult,
    VanCapabilities,
    VanState,
    VanTrip,
    new_action_id,
)
from fleet.vehicle import LinkState, VehicleStatus

if TYPE_CHECKING:
    from firmware_bridges.vda5050.link import Vda5050Link

KEEP_TRIPS = 8
"""Trips per van whose actions and loads the handle remembers (for events and box counts)."""
KEEP_HEADERS = 64
"""``instantActions`` header ids per van remembered to match the van's rejections to them."""


@dataclass(slots=True)
class _TripBook:
    """What this service sent for one trip."""

    trip: VanTrip
    update_id: int
    base_end: tuple[str, int]
    """(node id, sequence id) of the decision point."""
    node_count: int
    action_seq: dict[str, int] = field(default_factory=dict)
    """Action id -> sequence id of its node, for every action sent for the trip."""


class VanHandle:
    """One van as the link sees it; implements :class:`fleet.van.VanControl`."""

    def __init__(self, link: Vda5050Link, manufacturer: str, serial: str) -> None:
        self.link = link
        self.manufacturer = manufacturer
        self.serial_number = serial
        self.vehicle_id = link.vehicle_id(manufacturer, serial)
        self.capabilities: VanCapabilities | None = None
        self.last_state: wire.State | None = None
        self._state: VanState | None = None
        self.last_state_at: float | None = None
        """Clock ``monotonic()`` when the last state arrived."""
        self.heard_at: float | None = None
        """Clock ``monotonic()`` of the last state or ONLINE (the watchdog's reference)."""
        self.ever_online = False
        self.state_timeout_s: float = link.state_timeout_s
        self.factsheets = 0
        """Factsheets received."""
        self.factsheet: wire.Factsheet | None = None
        self.version: str = wire.PROTOCOL_VERSION
        """The shape orders and instant actions are written in (:data:`wire.SUPPORTED_VERSIONS`)."""
        self.announced_version: str = ""
        """The version the van's own headers announce."""
        self.refused: str | None = None
        """Why the service does not drive this van (a protocol version it does not speak)."""
        self.factsheet_requested = False
        """A ``factsheetRequest`` was sent (on discovery, when no factsheet came)."""
        self._position_at: float | None = None
        """The van's timestamp of the position shown (state or visualization)."""
        self._load_ids: dict[str, str] = {}
        """The van's own id of a load -> the consignment (load id) this service picked."""
        self._pending_picks: list[str] = []
        """Load ids of finished picks whose load the van has not reported on board yet."""
        self._explained: dict[str, str] = {}
        """Action id -> the van's error that named it when it failed."""
        self._instant_headers: dict[int, str] = {}
        """``instantActions`` header id -> action id it carried."""
        self._header_ids: dict[str, int] = {"order": 0, "instantActions": 0}
        self._lock = asyncio.Lock()
        self._trip: _TripBook | None = None
        self._picks: dict[str, Pick] = {}
        self._actions: dict[str, tuple[str, str, StopAction]] = {}
        """action id -> (trip id, node id, action) for every stop action sent."""
        self._action_status: dict[str, ActionStatus] = {}
        self._fault_keys: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self._recent: deque[str] = deque()

    # --- VanControl ----------------------------------------------------------------------------

    @property
    def state(self) -> VanState | None:
        return self._state

    @property
    def entry(self) -> VehicleEntry:
        return self.link.ctx.registry.get(self.vehicle_id)

    @property
    def status(self) -> VehicleStatus:
        return self.entry.status

    @property
    def handling(self) -> LoadHandling:
        return self.link.handling

    def declared_actions(self) -> dict[str, wire.AgvAction]:
        """The van's factsheet actions by type (empty without a factsheet)."""
        fs = self.factsheet
        return {a.action_type: a for a in fs.protocol_features.agv_actions} if fs else {}

    def _check_trip(self, trip: VanTrip) -> None:
        """Refuse a trip the van cannot do, before it goes out: a pick or drop it does not
        declare, a load type outside its load sets."""
        caps = self.capabilities
        if caps is None or not caps.from_factsheet:
            return
        declared = self.declared_actions()
        for _, action in trip.actions():
            if not isinstance(action, Pick | Drop):
                continue
            kind = "pick" if isinstance(action, Pick) else "drop"
            if declared and kind not in caps.node_actions:
                raise CommandRejected(
                    f"van {self.vehicle_id} declares no {kind} action",
                    vehicle_id=self.vehicle_id,
                    error_type="unsupported",
                )
            load_type = self.handling.station(kind, action.site)["loadType"]
            if caps.load_types and load_type not in caps.load_types:
                raise CommandRejected(
                    f"van {self.vehicle_id} has no load set for load type {load_type} "
                    f"(it declares {', '.join(sorted(caps.load_types))})",
                    vehicle_id=self.vehicle_id,
                    error_type="unsupported",
                )

    def _order(self, trip: VanTrip, **kwargs: Any) -> wire.Order:
        frame, map_id = self.link.map_frame()
        self._check_trip(trip)
        return translate.trip_to_order(
            trip,
            self._header("order"),
            frame,
            map_id,
            handling=self.handling,
            declared=self.declared_actions(),
            **kwargs,
        )

    async def send_trip(self, trip: VanTrip) -> None:
        async with self._lock:
            self._check_online()
            order = self._order(trip)
            book = _TripBook(
                trip=trip,
                update_id=0,
                base_end=(trip.decision_node.node_id, 2 * (trip.released - 1)),
                node_count=len(trip.nodes),
            )
            self._remember(trip, book, 0)
            previous, self._trip = self._trip, book
            try:
                await self._deliver(order)
            except BaseException:
                if self._trip is book:
                    self._trip = previous
                raise

    async def update_trip(self, extension: VanTrip) -> None:
        async with self._lock:
            self._check_online()
            book = self._trip
            if book is None or book.trip.trip_id != extension.trip_id:
                raise Conflict(
                    f"van {self.vehicle_id} has no trip {extension.trip_id} to update",
                    vehicle_id=self.vehicle_id,
                    trip_id=extension.trip_id,
                )
            stitch_id, stitch_seq = book.base_end
            first = extension.nodes[0]
            if first.node_id != stitch_id:
                raise ValidationError(
                    f"an update must start at the decision point {stitch_id}, not {first.node_id}",
                    field="nodes",
                )
            if first.actions:
                raise ValidationError(
                    "the stitching node keeps the actions it was first sent with; "
                    "put new actions on later nodes",
                    field="nodes",
                )
            update_id = book.update_id + 1
            order = self._order(extension, update_id=update_id, first_sequence_id=stitch_seq)
            await self._deliver(order)
            # the old horizon is gone, with its actions; the extension's come in
            for aid, seq in list(book.action_seq.items()):
                if seq > stitch_seq:
                    del book.action_seq[aid]
                    self._actions.pop(aid, None)
            self._remember(extension, book, stitch_seq)
            book.update_id = update_id
            book.base_end = (
                extension.decision_node.node_id,
                stitch_seq + 2 * (extension.released - 1),
            )
            book.node_count = stitch_seq // 2 + len(extension.nodes)

    async def cancel_trip(self) -> None:
        await self._instant("cancelOrder")
        # FINISHED is not all: the order must be cleared (no node left to traverse)
        try:
            await self._wait(self._order_cleared, None)
        except CommandTimeout:
            raise CommandTimeout(
                f"van {self.vehicle_id} finished cancelOrder but still holds nodes of its order",
                vehicle_id=self.vehicle_id,
                action="cancelOrder",
            ) from None

    def _order_cleared(self, _: VehicleEntry) -> bool:
        return self._state is not None and not self._state.remaining_nodes

    async def pause(self) -> None:
        await self._instant("startPause")

    async def resume(self) -> None:
        await self._instant("stopPause")

    async def start_charging(self) -> None:
        await self._instant("startCharging")

    async def stop_charging(self) -> None:
        await self._instant("stopCharging")

    async def request_state(self) -> VanState:
        before = self.entry.version
        await self._instant("stateRequest")
        await self._wait(lambda e: e.version > before and self._state is not None, None)
        assert self._state is not None
        return self._state

    async def request_factsheet(self) -> VanCapabilities:
        before = self.factsheets
        self.factsheet_requested = True
        await self._instant("factsheetRequest")
        await self._wait(lambda _: self.factsheets > before, None)
        assert self.capabilities is not None
        return self.capabilities

    async def wait_trip(self, trip_id: str, within: float | None) -> TripResult:
        seen = False

        def done(_: VehicleEntry) -> bool:
            nonlocal seen
            self._check_online()
            state = self._state
            if state is None:
                return False
            if state.trip_id == trip_id:
                seen = True
                return not state.busy
            if seen or (self._trip is not None and self._trip.trip.trip_id != trip_id):
                raise Conflict(
                    f"van {self.vehicle_id} now runs trip {state.trip_id}, not {trip_id}",
                    vehicle_id=self.vehicle_id,
                    trip_id=trip_id,
                )
            return False

        try:
            await self.link.ctx.registry.wait_for(
                self.vehicle_id, done, within, self.link.ctx.clock
            )
        except TimeoutError:
            raise CommandTimeout(
                f"trip {trip_id} not done within {within} s",
                vehicle_id=self.vehicle_id,
                trip_id=trip_id,
            ) from None
        state = self._state
        assert state is not None
        ids = [aid for aid, (tid, _, _) in self._actions.items() if tid == trip_id]
        progress = tuple(state.action(aid) or _unknown(aid, self._actions[aid][2]) for aid in ids)
        return TripResult(trip_id=trip_id, actions=progress)

    # --- sending ------------------------------------------------------------------------------

    def _header(self, subtopic: str) -> dict[str, Any]:
        self._header_ids[subtopic] += 1
        return {
            "header_id": self._header_ids[subtopic],
            "timestamp": wire.format_timestamp(self.link.ctx.clock.time()),
            "version": self.version,
            "manufacturer": self.manufacturer,
            "serial_number": self.serial_number,
        }

    def _check_online(self) -> None:
        """Fail fast only for a van that said goodbye (OFFLINE).

        A LOST van (last will) or an UNKNOWN one (silent) may be behind a broker or radio
        outage and keeps driving its released base (section 6.2): commands keep trying until
        their timeout, and trips are waited for until ``within``.
        """
        if self.refused is not None:
            raise CommandRejected(
                f"van {self.vehicle_id} is not driven: {self.refused}",
                vehicle_id=self.vehicle_id,
                error_type="unsupportedVersion",
            )
        if self.status.link is LinkState.OFFLINE:
            raise LinkLost(f"van {self.vehicle_id} is offline", vehicle_id=self.vehicle_id)

    def _remember(self, trip: VanTrip, book: _TripBook, first_seq: int) -> None:
        if trip.trip_id not in self._recent:
            self._recent.append(trip.trip_id)
            self._forget_old_trips()
        for i, node in enumerate(trip.nodes):
            for action in node.actions:
                self._actions[action.action_id] = (trip.trip_id, node.node_id, action)
                book.action_seq[action.action_id] = first_seq + 2 * i
                if isinstance(action, Pick):
                    self._picks[action.load_id] = action

    def _forget_old_trips(self) -> None:
        """Keep what was sent for the last :data:`KEEP_TRIPS` trips only (an 8-hour shift
        sends hundreds)."""
        while len(self._recent) > KEEP_TRIPS:
            old = self._recent.popleft()
            for aid in [a for a, (tid, _, _) in self._actions.items() if tid == old]:
                action = self._actions.pop(aid)[2]
                self._action_status.pop(aid, None)
                if isinstance(action, Pick) and self._picks.get(action.load_id) is action:
                    del self._picks[action.load_id]

    async def _deliver(self, order: wire.Order) -> None:
        """Publish ``order`` until the van's state echoes it; raise if the van rejects it."""
        link, clock = self.link, self.link.ctx.clock
        order_id, update_id = order.order_id, order.order_update_id

        def answered(_: VehicleEntry) -> bool:
            state = self._state
            if state is None:
                return False
            for f in state.faults:
                if (
                    f.type in wire.ORDER_REJECTION_ERRORS
                    and f.reference("orderId") == order_id
                    and f.reference("orderUpdateId") in (None, str(update_id))
                ):
                    raise CommandRejected(
                        f"van {self.vehicle_id} rejected trip {order_id}: {f}",
                        vehicle_id=self.vehicle_id,
                        trip_id=order_id,
                        update=update_id,
                        error_type=f.type,
                        references=dict(f.references),
                    )
            return state.trip_id == order_id and state.trip_update >= update_id

        deadline = clock.monotonic() + link.order_timeout_s
        first = True
        while True:
            payload = wire.encode(order, self.version)
            if await link.publish(self.topic("order"), payload, wire.QOS["order"]):
                link.stats.orders_sent += 1
                if not first:
                    link.stats.order_resends += 1
                first = False
            left = deadline - clock.monotonic()
            if left <= 0:
                raise CommandTimeout(
                    f"van {self.vehicle_id} did not confirm trip {order_id} "
                    f"(update {update_id}) within {link.order_timeout_s} s",
                    vehicle_id=self.vehicle_id,
                    trip_id=order_id,
                    update=update_id,
                )
            with contextlib.suppress(TimeoutError):
                await link.ctx.registry.wait_for(
                    self.vehicle_id, answered, min(left, link.resend_interval_s), clock
                )
                return
            # not confirmed yet: same order, next header id (the van ignores a duplicate)
            order = order.model_copy(update=self._header("order"))

    async def _instant(self, action_type: str, **params: wire.ParamValue) -> ActionProgress:
        """Send one instant action and wait until the van reports it FINISHED."""
        link, clock = self.link, self.link.ctx.clock
        self._check_online()
        action_id = new_action_id()
        action = wire.action(action_type, action_id, wire.BlockingType.NONE, None, **params)

        def ended(_: VehicleEntry) -> bool:
            self._check_online()
            state = self._state
            progress = state.action(action_id) if state is not None else None
            if progress is not None and progress.status.ended:
                return True
            if progress is None and state is not None:
                # rejected as a message (validation): the error names its header, not the action
                for f in state.faults:
                    if f.reference("topic") == "instantActions" and (
                        self._instant_headers.get(int(f.reference("headerId") or -1)) == action_id
                    ):
                        raise CommandRejected(
                            f"van {self.vehicle_id} rejected {action_type}: {f}",
                            vehicle_id=self.vehicle_id,
                            action=action_type,
                            error_type=f.type,
                            references=dict(f.references),
                        )
            return False

        deadline = clock.monotonic() + link.command_timeout_s
        while True:
            msg = wire.InstantActions(**self._header("instantActions"), actions=[action])
            self._instant_headers[msg.header_id] = action_id
            while len(self._instant_headers) > KEEP_HEADERS:
                del self._instant_headers[next(iter(self._instant_headers))]
            if await link.publish(
                self.topic("instantActions"),
                wire.encode(msg, self.version),
                wire.QOS["instantActions"],
            ):
                link.stats.instant_actions_sent += 1
            left = deadline - clock.monotonic()
            if left <= 0:
                raise CommandTimeout(
                    f"van {self.vehicle_id} did not finish {action_type} within "
                    f"{link.command_timeout_s} s",
                    vehicle_id=self.vehicle_id,
                    action=action_type,
                )
            with contextlib.suppress(TimeoutError):
                await link.ctx.registry.wait_for(
                    self.vehicle_id, ended, min(left, link.resend_interval_s), clock
                )
                break
        state = self._state
        assert state is not None
        progress = state.action(action_id)
        assert progress is not None
        if progress.status is ActionStatus.FAILED:
            faults = [f for f in state.faults if f.reference("actionId") == action_id]
            reason = str(faults[0]) if faults else progress.why or "failed"
            raise CommandRejected(
                f"van {self.vehicle_id} refused {action_type}: {reason}",
                vehicle_id=self.vehicle_id,
                action=action_type,
                error_type=faults[0].type if faults else None,
                result=progress.result,
            )
        return progress

    async def _wait(self, predicate: Callable[[VehicleEntry], bool], within: float | None) -> None:
        limit = self.link.command_timeout_s if within is None else within
        try:
            await self.link.ctx.registry.wait_for(
                self.vehicle_id, predicate, limit, self.link.ctx.clock
            )
        except TimeoutError:
            raise CommandTimeout(
                f"van {self.vehicle_id} did not answer within {limit} s",
                vehicle_id=self.vehicle_id,
            ) from None

    def topic(self, subtopic: str) -> str:
        return self.link.address.topic(self.manufacturer, self.serial_number, subtopic)

    # --- receiving ----------------------------------------------------------------------------

    def heard_version(self, version: str) -> bool:
        """Take the version a message of the van announces; False when the service does not
        speak it (the van is then refused, see the module docstring)."""
        if version == self.announced_version:
            return self.refused is None
        self.announced_version = version
        shape = wire.speaks(version)
        self.status.extra["vda5050_version"] = version
        if shape is None:
            self.refused = (
                f"it speaks VDA 5050 {version}; this service speaks "
                f"{' and '.join(wire.SUPPORTED_VERSIONS)} (major version 2)"
            )
            self._mark_refused()
            return False
        if self.refused is not None:
            self.refused = None
            self.capabilities = self.handling.capabilities(self.factsheet, self.vehicle_id, version)
            self.status.extra["van_capabilities"] = self.capabilities
        self.version = shape
        return True

    def _mark_refused(self) -> None:
        reason = self.refused or ""
        status = self.status
        status.ready_to_arm = status.armed = status.ready_for_mission = False
        status.not_ready = (reason,)
        status.errors = (reason,)
        self.capabilities = VanCapabilities(
            series_name="not driven",
            max_load_kg=0.0,
            max_boxes=None,
            speed_max_mps=0.0,
            unsupported=(reason,),
            from_factsheet=False,
            protocol_version=self.announced_version,
        )
        status.extra["van_capabilities"] = self.capabilities
        self.link.emit(
            self,
            VehicleEventKind.STATUS_TEXT,
            f"van {self.vehicle_id} is not driven: {reason}",
            Severity.ERROR,
            data={"error_type": "unsupportedVersion", "version": self.announced_version},
        )
        self.link.ctx.registry.touch(self.vehicle_id)

    def on_state(self, msg: wire.State) -> None:
        link = self.link
        now = link.ctx.clock.monotonic()
        try:
            reported: float | None = wire.parse_timestamp(msg.timestamp)
        except ValueError:
            reported = None
        self._match_loads(msg)
        state = translate.state_to_domain(
            msg, self._picks, reported, self._load_ids, self._explained
        )
        for a in state.actions:
            if a.error and a.action_id not in self._explained:
                self._explained[a.action_id] = a.error
        while len(self._explained) > 256:
            del self._explained[next(iter(self._explained))]
        status = self.status
        book = self._trip
        trip_nodes = (
            book.node_count if book is not None and book.trip.trip_id == msg.order_id else None
        )
        old = self._state
        frame, map_id = link.frame, link.map_id
        newer = self._newer(reported)
        translate.apply_state(status, state, msg, frame, map_id, trip_nodes, position=newer)
        if newer and msg.agv_position is not None:
            self._position_at = reported
        status.last_seen = now
        self.last_state = msg
        self._state = state
        self.last_state_at = self.heard_at = now
        self.link.set_link_state(self, LinkState.ONLINE, "state received")
        self._events(old, state)
        link.ctx.registry.touch(self.vehicle_id)

    def on_visualization(self, msg: wire.Visualization) -> None:
        """A position between states: shown when it is newer than the one shown."""
        link = self.link
        self.heard_at = link.ctx.clock.monotonic()
        self.link.set_link_state(self, LinkState.ONLINE, "visualization received")
        pos = msg.agv_position
        if pos is None or link.frame is None or pos.map_id != link.map_id:
            return
        try:
            reported: float | None = wire.parse_timestamp(msg.timestamp)
        except ValueError:
            reported = None
        if not self._newer(reported):
            return
        self._position_at = reported
        status = self.status
        status.position = translate.to_position(link.frame, pos.x, pos.y)
        status.heading_deg = translate.theta_to_heading(pos.theta)
        if msg.velocity is not None:
            status.ground_speed_mps = math.hypot(msg.velocity.vx or 0.0, msg.velocity.vy or 0.0)
        link.ctx.registry.touch(self.vehicle_id)

    def _newer(self, reported: float | None) -> bool:
        """Whether a position reported at ``reported`` (the van's clock) is at least as new as
        the one shown (without timestamps: the one that arrives last)."""
        return reported is None or self._position_at is None or reported >= self._position_at

    def _match_loads(self, msg: wire.State) -> None:
        """Tie the loads a van reports under its own ids to the picks that loaded them: a load
        that appears on board once one of this service's picks has finished is that pick's
        consignment (in the order the picks finished)."""
        for a in msg.action_states:
            if a.action_status is not wire.ActionStatus.FINISHED:
                continue
            if self._action_status.get(a.action_id) is ActionStatus.FINISHED:
                continue
            sent = self._actions.get(a.action_id)
            picked = sent[2].load_id if sent is not None and isinstance(sent[2], Pick) else None
            if picked is not None and picked not in self._pending_picks:
                self._pending_picks.append(picked)
        del self._pending_picks[:-16]
        if msg.loads is None:
            return
        on_board = {load.load_id or "" for load in msg.loads}
        for load in msg.loads:
            own = load.load_id or ""
            if own in self._picks:
                if own in self._pending_picks:
                    self._pending_picks.remove(own)
                continue
            if not own or own in self._load_ids or not self._pending_picks:
                continue
            self._load_ids[own] = self._pending_picks.pop(0)
        for own in [k for k in self._load_ids if k not in on_board]:
            del self._load_ids[own]

    def _events(self, old: VanState | None, new: VanState) -> None:
        link = self.link
        if old is not None and (old.operating_mode, old.paused) != (new.operating_mode, new.paused):
            link.emit(
                self,
                VehicleEventKind.MODE_CHANGED,
                f"{new.operating_mode.value}{' (paused)' if new.paused else ''}",
                data={"operating_mode": new.operating_mode.value, "paused": new.paused},
            )
        keys = set()
        for f in new.faults:
            key = (f.type, f.references)
            keys.add(key)
            if key not in self._fault_keys:
                link.emit(
                    self,
                    VehicleEventKind.STATUS_TEXT,
                    str(f),
                    Severity.ERROR if f.level is FaultLevel.FATAL else Severity.WARNING,
                    data={"error_type": f.type, "references": dict(f.references)},
                )
        self._fault_keys = keys
        for progress in new.actions:
            before = self._action_status.get(progress.action_id)
            if before is progress.status:
                continue
            self._action_status[progress.action_id] = progress.status
            sent = self._actions.get(progress.action_id)
            if sent is None or not progress.status.ended:
                continue
            trip_id, node_id, action = sent
            if isinstance(action, Pick | Drop):
                link.emit(
                    self,
                    VehicleEventKind.PAYLOAD,
                    f"{'pick' if isinstance(action, Pick) else 'drop'} of {action.boxes} boxes "
                    f"({action.load_id}) {progress.status.value}",
                    Severity.INFO if progress.status is ActionStatus.FINISHED else Severity.WARNING,
                    data={
                        "action": "pick" if isinstance(action, Pick) else "drop",
                        "action_id": action.action_id,
                        "status": progress.status.value,
                        "trip_id": trip_id,
                        "node_id": node_id,
                        "load_id": action.load_id,
                        "boxes": action.boxes,
                        "mass_kg": action.mass_kg,
                        "sku": action.sku,
                        "result": progress.result,
                    },
                )


def _unknown(action_id: str, action: StopAction) -> ActionProgress:
    return ActionProgress(action_id, type(action).__name__.lower(), ActionStatus.FAILED, "unknown")
