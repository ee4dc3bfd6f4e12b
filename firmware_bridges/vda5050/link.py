"""The VDA 5050 vehicle link: master control for vans over one MQTT broker connection.

:class:`Vda5050Link` is created from a ``vda5050+mqtt://`` URL (forms in
:mod:`firmware_bridges.vda5050.address`; importing this module registers the schemes). While
open it owns, in its ``TaskGroup``:

- the connection loop: connects to the broker, subscribes to ``state``, ``connection`` (QoS 1)
  and ``factsheet`` of the vans it covers, and reconnects with exponential backoff (real time:
  it is about sockets) when the broker goes away;
- the watchdog: a van whose state has not arrived within the state timeout (world time) is
  marked :attr:`LinkState.UNKNOWN <fleet.vehicle.LinkState.UNKNOWN>`.

Vans are discovered from their first message and added to the registry with a
:class:`VanHandle` (the :class:`fleet.van.VanControl` of that van). Every state message is
translated in :mod:`~firmware_bridges.vda5050.translate` and written into the van's
``VehicleStatus`` in place, then the registry is touched. The connection topic drives the link
state: ``ONLINE`` -> ONLINE, ``OFFLINE`` -> OFFLINE, ``CONNECTIONBROKEN`` (the last will) ->
LOST. Payloads that are not JSON or not valid messages of their topic are logged, counted in
:attr:`Vda5050Link.stats` and dropped.

Options (``LinkContext.options``): ``world`` (a :class:`fleet.world.World`, for its map frame
and ``map_id``) or ``frame`` + ``map_id``; ``broker_url`` (for URLs without host);
``state_timeout_s`` (default: three state intervals from the factsheet, else 31 s: the
specification lets a van stay silent up to 30 s); ``resend_interval_s`` (3 s),
``order_timeout_s`` (60 s) and ``command_timeout_s`` (15 s), all world seconds; under a fast
clock the defaults are stretched to at least 0.5, 10 and 5 real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import SplitResult

import aiomqtt
import structlog

from firmware_bridges.vda5050 import translate, wire
from firmware_bridges.vda5050.address import SCHEMES, Vda5050Address
from fleet.errors import (
    CommandRejected,
    CommandTimeout,
    ConfigError,
    Conflict,
    LinkLost,
    ValidationError,
)
from fleet.events import Severity, VehicleEvent, VehicleEventKind
from fleet.geo import LocalFrame
from fleet.link import LinkContext, VehicleLink, register_scheme
from fleet.mqtt import BrokerAddress
from fleet.registry import VehicleEntry
from fleet.tasks import cancel_and_wait
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
from fleet.vehicle import Capability, LinkState, VehicleInfo, VehicleKind, VehicleStatus

log = structlog.get_logger(__name__)

RECONNECT_MIN_S = 0.2
"""First reconnect delay (real seconds)."""
RECONNECT_MAX_S = 10.0
"""Longest reconnect delay (real seconds)."""
KEEPALIVE_S = 15
"""MQTT keep-alive of the master control's connection."""
DEFAULT_STATE_TIMEOUT_S = 31.0
"""State timeout when neither the URL, the options nor the factsheet give one (a van may stay
silent for 30 s, section 6.10)."""
STATE_TIMEOUT_INTERVALS = 3.0
"""State timeout in state intervals when the factsheet states the interval."""
MIN_STATE_TIMEOUT_S = 2.0
"""Shortest state timeout derived from a factsheet."""
KEEP_TRIPS = 8
"""Trips per van whose actions and loads the link remembers (for events and box counts)."""
MIN_REAL_STATE_TIMEOUT_S = 1.0
"""A state timeout is never shorter than this in real seconds: under an accelerated clock,
network and scheduling jitter (real time) must not make vans look silent."""


@dataclass(slots=True)
class LinkStats:
    """Counters of one link (for logs, the API and benchmarks)."""

    messages: int = 0
    states: int = 0
    bad_json: int = 0
    """Payloads that were not JSON."""
    invalid: int = 0
    """JSON payloads that were not valid messages of their topic."""
    foreign: int = 0
    """Messages whose header names another vehicle than their topic."""
    connects: int = 0
    disconnects: int = 0
    orders_sent: int = 0
    order_resends: int = 0
    instant_actions_sent: int = 0
    unsent: int = 0
    """Publishes skipped because the broker was away (the command retries them)."""
    handler_errors: int = 0
    """Valid messages whose handling raised (logged with the traceback)."""

    @property
    def bad_payloads(self) -> int:
        return self.bad_json + self.invalid + self.foreign


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

    async def send_trip(self, trip: VanTrip) -> None:
        frame, map_id = self.link.map_frame()
        async with self._lock:
            self._check_online()
            order = translate.trip_to_order(trip, self._header("order"), frame, map_id)
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
        frame, map_id = self.link.map_frame()
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
            order = translate.trip_to_order(
                extension,
                self._header("order"),
                frame,
                map_id,
                update_id=update_id,
                first_sequence_id=stitch_seq,
            )
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
            "version": wire.PROTOCOL_VERSION,
            "manufacturer": self.manufacturer,
            "serial_number": self.serial_number,
        }

    def _check_online(self) -> None:
        """Fail fast only for a van that said goodbye (OFFLINE).

        A LOST van (last will) or an UNKNOWN one (silent) may be behind a broker or radio
        outage and keeps driving its released base (section 6.2): commands keep trying until
        their timeout, and trips are waited for until ``within``.
        """
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
            payload = order.to_json()
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
            return progress is not None and progress.status.ended

        deadline = clock.monotonic() + link.command_timeout_s
        while True:
            msg = wire.InstantActions(**self._header("instantActions"), actions=[action])
            if await link.publish(
                self.topic("instantActions"), msg.to_json(), wire.QOS["instantActions"]
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
            reason = str(faults[0]) if faults else progress.result or "failed"
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

    def on_state(self, msg: wire.State) -> None:
        link = self.link
        now = link.ctx.clock.monotonic()
        try:
            reported = wire.parse_timestamp(msg.timestamp)
        except ValueError:
            reported = None
        state = translate.state_to_domain(msg, self._picks, reported)
        status = self.status
        book = self._trip
        trip_nodes = (
            book.node_count if book is not None and book.trip.trip_id == msg.order_id else None
        )
        old = self._state
        frame, map_id = link.frame, link.map_id
        translate.apply_state(status, state, msg, frame, map_id, trip_nodes)
        status.last_seen = now
        self.last_state = msg
        self._state = state
        self.last_state_at = self.heard_at = now
        self.link.set_link_state(self, LinkState.ONLINE, "state received")
        self._events(old, state)
        link.ctx.registry.touch(self.vehicle_id)

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


class Vda5050Link(VehicleLink):
    """Master control for the vans one link URL covers (see the module docstring)."""

    def __init__(self, url: str, ctx: LinkContext, address: Vda5050Address | None = None) -> None:
        super().__init__(url, ctx)
        self.address = address or Vda5050Address.parse(url)
        opts: Mapping[str, Any] = ctx.options
        broker_url = self.address.broker_url or opts.get("broker_url")
        if not broker_url:
            raise ConfigError(
                f"link {self.address.display_url} names no broker and no broker_url is configured",
                url=self.address.display_url,
            )
        self.broker = BrokerAddress.parse(broker_url)
        world = opts.get("world")
        self.frame: LocalFrame | None = opts.get("frame") or (world.frame if world else None)
        self.map_id: str | None = opts.get("map_id") or (world.map_id if world else None)
        self.state_timeout_s = float(
            self.address.state_timeout_s or opts.get("state_timeout_s") or DEFAULT_STATE_TIMEOUT_S
        )
        self._fixed_timeout = bool(self.address.state_timeout_s or opts.get("state_timeout_s"))
        speed = ctx.clock.speed if math.isfinite(ctx.clock.speed) else 0.0

        def world_s(key: str, default: float, real_floor: float) -> float:
            # an explicit option is taken as is; a default never gets shorter than real_floor
            # real seconds, so that a fast clock does not outrun the network
            if key in opts:
                return float(opts[key])
            return max(default, real_floor * speed)

        self.resend_interval_s = world_s("resend_interval_s", 3.0, 0.5)
        self.order_timeout_s = world_s("order_timeout_s", 60.0, 10.0)
        self.command_timeout_s = world_s("command_timeout_s", 15.0, 5.0)
        self.default_max_boxes = int(opts.get("max_boxes", 0))
        self.stats = LinkStats()
        self.connected = asyncio.Event()
        """Set while the link is connected to the broker."""
        self._vans: dict[tuple[str, str], VanHandle] = {}
        self._client: aiomqtt.Client | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- VehicleLink --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks = [
            self._tg.create_task(
                self._connection_loop(), name=f"vda5050-{self.address.display_url}"
            ),
            self._tg.create_task(self._watchdog(), name="vda5050-watchdog"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel_and_wait(self._tasks)  # aiomqtt's wait_for can swallow a cancel
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    @property
    def vehicle_ids(self) -> list[str]:
        return [v.vehicle_id for v in self._vans.values()]

    def van(self, vehicle_id: str) -> VanHandle:
        """The handle of a discovered van."""
        for v in self._vans.values():
            if v.vehicle_id == vehicle_id:
                return v
        raise KeyError(vehicle_id)

    @staticmethod
    def vehicle_id(manufacturer: str, serial: str) -> str:
        """Fleet-wide id of a van: ``van-{serialNumber}``."""
        del manufacturer
        return f"van-{serial}"

    def map_frame(self) -> tuple[LocalFrame, str]:
        if self.frame is None or self.map_id is None:
            raise ConfigError(
                "the VDA 5050 link needs the operating area's map frame (option world, or "
                "frame and map_id) to send trips"
            )
        return self.frame, self.map_id

    # --- transport ----------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Publish if connected; False when the broker is away (the caller retries)."""
        client = self._client
        if client is None:
            self.stats.unsent += 1
            return False
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            self.stats.unsent += 1
            log.info("vda5050.publish_failed", topic=topic, error=str(exc))
            return False
        return True

    async def _connection_loop(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            try:
                async with aiomqtt.Client(
                    **self.broker.client_kwargs(),
                    identifier=f"streetfleet-mc-{uuid.uuid4().hex[:12]}",
                    keepalive=KEEPALIVE_S,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    clean_session=True,
                ) as client:
                    await client.subscribe(self.address.subscriptions())
                    self._client = client
                    self.stats.connects += 1
                    self.connected.set()
                    delay = RECONNECT_MIN_S
                    log.info(
                        "vda5050.connected", broker=self.broker.url, link=self.address.display_url
                    )
                    async for message in client.messages:
                        try:
                            self._handle(message)
                        except Exception:
                            # a bug must not take the link down: log, count, go on
                            self.stats.handler_errors += 1
                            log.exception("vda5050.handler_failed", topic=message.topic.value)
            except aiomqtt.MqttError as exc:
                if self._client is not None:
                    self.stats.disconnects += 1
                log.warning(
                    "vda5050.broker_unreachable",
                    broker=self.broker.url,
                    error=str(exc),
                    retry_s=delay,
                )
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(delay)  # transport back-off: real time
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _handle(self, message: aiomqtt.Message) -> None:
        self.stats.messages += 1
        where = self.address.split(message.topic.value)
        if where is None:
            return
        manufacturer, serial, subtopic = where
        if not self.address.covers(manufacturer, serial):
            return
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload or "").encode()
        if subtopic == "connection" and not payload:
            return  # a cleared retained message
        try:
            msg = wire.parse(subtopic, payload)
        except wire.WireError as exc:
            if exc.reason.startswith("message: Invalid JSON"):
                self.stats.bad_json += 1
            else:
                self.stats.invalid += 1
            log.warning("vda5050.bad_payload", topic=message.topic.value, reason=exc.reason)
            return
        if getattr(msg, "manufacturer", None) != manufacturer or (
            getattr(msg, "serial_number", None) != serial
        ):
            self.stats.foreign += 1
            log.warning("vda5050.header_mismatch", topic=message.topic.value)
            return
        van = self._van(manufacturer, serial)
        if isinstance(msg, wire.State):
            self.stats.states += 1
            van.on_state(msg)
        elif isinstance(msg, wire.Connection):
            self._on_connection(van, msg)
        elif isinstance(msg, wire.Factsheet):
            self._on_factsheet(van, msg)
        elif isinstance(msg, wire.Visualization):
            self._on_visualization(van, msg)

    # --- vans ---------------------------------------------------------------------------------

    def _van(self, manufacturer: str, serial: str) -> VanHandle:
        van = self._vans.get((manufacturer, serial))
        if van is not None:
            return van
        van = VanHandle(self, manufacturer, serial)
        self._vans[(manufacturer, serial)] = van
        self.ctx.registry.add(self._info(van), van)
        self.emit(van, VehicleEventKind.DISCOVERED, f"van {manufacturer}/{serial}")
        log.debug("vda5050.discovered", vehicle_id=van.vehicle_id, manufacturer=manufacturer)
        return van

    def _info(self, van: VanHandle) -> VehicleInfo:
        caps = van.capabilities
        return VehicleInfo(
            id=van.vehicle_id,
            kind=VehicleKind.VAN,
            link_url=self.address.display_url,
            address=f"{van.manufacturer}/{van.serial_number}",
            capabilities=frozenset({Capability.SHUTTLE}),
            payload_kg=caps.max_load_kg if caps is not None else 0.0,
            max_boxes=(caps.max_boxes if caps is not None and caps.max_boxes else 0)
            or self.default_max_boxes,
            name=van.serial_number if caps is None else f"{van.serial_number} ({caps.series_name})",
        )

    def _on_connection(self, van: VanHandle, msg: wire.Connection) -> None:
        state = msg.connection_state
        if state is wire.ConnectionState.ONLINE:
            van.heard_at = self.ctx.clock.monotonic()
            self.set_link_state(van, LinkState.ONLINE, "connection ONLINE")
        elif state is wire.ConnectionState.OFFLINE:
            self.set_link_state(van, LinkState.OFFLINE, "van went offline")
        else:
            self.set_link_state(van, LinkState.LOST, "connection broken (last will)")
        self.ctx.registry.touch(van.vehicle_id)

    def _on_factsheet(self, van: VanHandle, msg: wire.Factsheet) -> None:
        caps = translate.capabilities(msg)
        van.capabilities = caps
        van.factsheets += 1
        if not self._fixed_timeout and caps.state_interval_s:
            van.state_timeout_s = max(
                MIN_STATE_TIMEOUT_S, STATE_TIMEOUT_INTERVALS * caps.state_interval_s
            )
        self.ctx.registry.add(self._info(van), van)
        van.status.extra["van_capabilities"] = caps
        self.ctx.registry.touch(van.vehicle_id)

    def _on_visualization(self, van: VanHandle, msg: wire.Visualization) -> None:
        pos = msg.agv_position
        status = van.status
        if pos is not None and self.frame is not None and pos.map_id == self.map_id:
            status.position = translate.to_position(self.frame, pos.x, pos.y)
            status.heading_deg = translate.theta_to_heading(pos.theta)
            self.ctx.registry.touch(van.vehicle_id)

    def set_link_state(self, van: VanHandle, new: LinkState, reason: str) -> None:
        status = van.status
        old = status.link
        if old is new:
            return
        status.link = new
        if new is LinkState.ONLINE:
            if van.ever_online:
                self.emit(van, VehicleEventKind.LINK_REGAINED, reason)
            van.ever_online = True
        else:
            self.emit(
                van,
                VehicleEventKind.LINK_LOST,
                reason,
                Severity.INFO if new is LinkState.OFFLINE else Severity.WARNING,
                data={"link": new.value},
            )
        (log.debug if new is LinkState.ONLINE else log.info)(
            "vda5050.link_state", vehicle_id=van.vehicle_id, link=new.value, reason=reason
        )

    def emit(
        self,
        van: VanHandle,
        kind: VehicleEventKind,
        message: str,
        severity: Severity = Severity.INFO,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.ctx.bus.publish(
            VehicleEvent(
                at=self.ctx.clock.time(),
                vehicle_id=van.vehicle_id,
                kind=kind,
                message=message,
                severity=severity,
                data=data or {},
            )
        )

    async def _watchdog(self) -> None:
        clock = self.ctx.clock
        while True:
            shortest = min(
                [v.state_timeout_s for v in self._vans.values()] or [self.state_timeout_s]
            )
            await clock.sleep(max(0.05, min(1.0, shortest / 4)))
            now = clock.monotonic()
            floor = MIN_REAL_STATE_TIMEOUT_S * clock.speed if math.isfinite(clock.speed) else 0.0
            for van in list(self._vans.values()):
                since = van.heard_at
                if van.status.link is not LinkState.ONLINE or since is None:
                    continue
                if now - since > max(van.state_timeout_s, floor):
                    self.set_link_state(van, LinkState.UNKNOWN, f"no state for {now - since:.1f} s")
                    self.ctx.registry.touch(van.vehicle_id)


def _factory(url: str, parts: SplitResult, ctx: LinkContext) -> VehicleLink:
    del parts
    return Vda5050Link(url, ctx)


for _scheme in SCHEMES:
    register_scheme(_scheme, _factory)
