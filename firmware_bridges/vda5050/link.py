"""The VDA 5050 vehicle link: master control for vans over one MQTT broker connection.

:class:`Vda5050Link` is created from a ``vda5050+mqtt://`` URL (forms in
:mod:`firmware_bridges.vda5050.address`; its :func:`register` adds the schemes). While
open it owns:

- its broker connection (:class:`fleet.mqtt_client.MqttConnection`): subscribed to ``state``,
  ``connection`` (QoS 1) and ``factsheet`` of the vans it covers, reconnecting with exponential
  backoff (real time: it is about sockets) when the broker goes away;
- in its ``TaskGroup``, the watchdog: a van whose state has not arrived within the state timeout
  (world time) is marked :attr:`LinkState.UNKNOWN <fleet.vehicle.LinkState.UNKNOWN>`.

Vans are discovered from their first message and added to the registry with a
:class:`~firmware_bridges.vda5050.control.VanHandle` (the :class:`fleet.van.VanControl` of that
van, in :mod:`firmware_bridges.vda5050.control`: commands and the receive path). Every state
message is translated in :mod:`~firmware_bridges.vda5050.translate` and written into the van's
``VehicleStatus`` in place, then the registry is touched. The connection topic drives the link
state: ``ONLINE`` -> ONLINE, ``OFFLINE`` -> OFFLINE, ``CONNECTIONBROKEN`` (the last will) ->
LOST. Payloads that are not JSON or not valid messages of their topic are logged, counted in
:attr:`Vda5050Link.stats` and dropped.

Every message's header ``version`` tells the van's protocol version
(:meth:`VanHandle.heard_version`); a van on a major version the service does not speak is
added to the registry *refused* (with the reason) and its messages are not acted on. A van that
has sent no factsheet when its first state arrives is asked for one (``factsheetRequest``, once;
the VDA 5050 text lets a van publish its factsheet only on request); meanwhile it has the
conservative figures of the settings (:mod:`~firmware_bridges.vda5050.handling`).

Options (``LinkContext.options``): ``world`` (a :class:`fleet.world.World`, for its map frame
and ``map_id``) or ``frame`` + ``map_id``; ``broker_url`` (for URLs without host);
``vda5050`` (a :class:`fleet.settings.Vda5050Settings`: load handling, per-vehicle figures,
defaults); ``state_timeout_s`` (default: three state intervals from the factsheet, else 45 s:
the specification lets a van stay silent up to 30 s, plus half of that as margin for a broker
or radio delay); ``resend_interval_s`` (3 s),
``order_timeout_s`` (60 s) and ``command_timeout_s`` (15 s), all world seconds; under a fast
clock the defaults are stretched to at least 0.5, 10 and 5 real seconds.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import SplitResult

import aiomqtt
import structlog

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.address import SCHEMES, Vda5050Address
from firmware_bridges.vda5050.control import VanHandle
from firmware_bridges.vda5050.handling import LoadHandling
from fleet.errors import ConfigError, StreetfleetError
from fleet.events import Severity, VehicleEvent, VehicleEventKind
from fleet.geo import LocalFrame
from fleet.link import LinkContext, VehicleLink, register_scheme
from fleet.mqtt import BrokerAddress
from fleet.mqtt_client import ConnectionStats, MqttConnection
from fleet.settings import Vda5050Settings
from fleet.tasks import cancel_and_wait
from fleet.vehicle import Capability, LinkState, VehicleInfo, VehicleKind

log = structlog.get_logger(__name__)

RECONNECT_MIN_S = 0.2
"""First reconnect delay (real seconds)."""
RECONNECT_MAX_S = 10.0
"""Longest reconnect delay (real seconds)."""
KEEPALIVE_S = 15
"""MQTT keep-alive of the master control's connection."""
MAX_STATE_INTERVAL_S = 30.0
"""A van may send its state as seldom as every 30 s (section 6.10: on change, at least every
30 s)."""
STATE_TIMEOUT_MARGIN_S = 15.0
"""Margin over that before a silent van is UNKNOWN: a state delayed by a broker, radio or
scheduling hiccup of up to half the interval is not silence."""
DEFAULT_STATE_TIMEOUT_S = MAX_STATE_INTERVAL_S + STATE_TIMEOUT_MARGIN_S
"""State timeout when neither the URL, the options nor the factsheet give one: 45 s."""
STATE_TIMEOUT_INTERVALS = 3.0
"""State timeout in state intervals when the factsheet states the interval."""
MIN_STATE_TIMEOUT_S = 2.0
"""Shortest state timeout derived from a factsheet."""
MIN_REAL_STATE_TIMEOUT_S = 1.0
"""A state timeout is never shorter than this in real seconds: under an accelerated clock,
network and scheduling jitter (real time) must not make vans look silent."""


@dataclass(slots=True)
class LinkStats(ConnectionStats):
    """Counters of one link (for logs, the API and benchmarks); the connection's counters
    (``connects``, ``disconnects``, ``unsent``: publishes skipped because the broker was away,
    which the commands retry; ``handler_errors``) come from :class:`ConnectionStats`."""

    messages: int = 0
    states: int = 0
    bad_json: int = 0
    """Payloads that were not JSON."""
    invalid: int = 0
    """JSON payloads that were not valid messages of their topic."""
    foreign: int = 0
    """Messages whose header names another vehicle than their topic."""
    foreign_version: int = 0
    """Messages of a protocol version the service does not speak."""
    orders_sent: int = 0
    order_resends: int = 0
    instant_actions_sent: int = 0

    @property
    def bad_payloads(self) -> int:
        return self.bad_json + self.invalid + self.foreign


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
        vda = opts.get("vda5050")
        self.settings: Vda5050Settings = (
            vda if isinstance(vda, Vda5050Settings) else (Vda5050Settings())
        )
        self.handling = LoadHandling(self.settings)
        fixed = (
            self.address.state_timeout_s
            or opts.get("state_timeout_s")
            or self.settings.state_timeout_s
        )
        self.state_timeout_s = float(fixed or DEFAULT_STATE_TIMEOUT_S)
        self._fixed_timeout = bool(fixed)
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
        self._asks: set[asyncio.Task[None]] = set()
        self.stats = LinkStats()
        self._vans: dict[tuple[str, str], VanHandle] = {}
        self._mqtt = MqttConnection(
            self.broker,
            name="vda5050",
            client_id="streetfleet-mc",
            subscriptions=self.address.subscriptions(),
            on_message=self._handle,
            keepalive_s=KEEPALIVE_S,
            reconnect_min_s=RECONNECT_MIN_S,
            reconnect_max_s=RECONNECT_MAX_S,
            stats=self.stats,
            log_fields={"link": self.address.display_url},
        )
        self.connected = self._mqtt.connected
        """Set while the link is connected to the broker."""
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- VehicleLink --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        await self._mqtt.__aenter__()
        self._tasks = [self._tg.create_task(self._watchdog(), name="vda5050-watchdog")]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel_and_wait([*self._tasks, *self._asks])
        await self._mqtt.__aexit__(None, None, None)
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
        return await self._mqtt.publish(topic, payload, qos=qos)

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
            head = wire.header_of(payload)
            version = head.get("version")
            if (
                isinstance(version, str)
                and wire.speaks(version) is None
                and (head.get("manufacturer"), head.get("serialNumber")) == (manufacturer, serial)
            ):
                self.stats.foreign_version += 1
                self._van(manufacturer, serial).heard_version(version)
                return
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
        if not van.heard_version(str(getattr(msg, "version", ""))):
            self.stats.foreign_version += 1
            return
        if isinstance(msg, wire.State):
            self.stats.states += 1
            van.on_state(msg)
            if not van.factsheets and not van.factsheet_requested:
                van.factsheet_requested = True
                task = self._tg.create_task(self._ask_factsheet(van)) if self._tg else None
                if task is not None:
                    self._asks.add(task)
                    task.add_done_callback(self._asks.discard)
        elif isinstance(msg, wire.Connection):
            self._on_connection(van, msg)
        elif isinstance(msg, wire.Factsheet):
            self._on_factsheet(van, msg)
        elif isinstance(msg, wire.Visualization):
            van.on_visualization(msg)

    async def _ask_factsheet(self, van: VanHandle) -> None:
        """Ask a van that has not published a factsheet for one (once)."""
        try:
            await van.request_factsheet()
        except StreetfleetError as exc:
            log.info("vda5050.no_factsheet", vehicle_id=van.vehicle_id, reason=str(exc))

    # --- vans ---------------------------------------------------------------------------------

    def _van(self, manufacturer: str, serial: str) -> VanHandle:
        van = self._vans.get((manufacturer, serial))
        if van is not None:
            return van
        van = VanHandle(self, manufacturer, serial)
        van.capabilities = self.handling.capabilities(None, van.vehicle_id)
        self._vans[(manufacturer, serial)] = van
        self.ctx.registry.add(self._info(van), van)
        van.status.extra["van_capabilities"] = van.capabilities
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
            name=f"{van.serial_number} ({caps.series_name})"
            if caps is not None and caps.from_factsheet
            else van.serial_number,
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
        caps = self.handling.capabilities(msg, van.vehicle_id, van.announced_version)
        van.factsheet = msg
        van.capabilities = caps
        van.factsheets += 1
        if not self._fixed_timeout and caps.state_interval_s:
            van.state_timeout_s = max(
                MIN_STATE_TIMEOUT_S, STATE_TIMEOUT_INTERVALS * caps.state_interval_s
            )
        self.ctx.registry.add(self._info(van), van)
        van.status.extra["van_capabilities"] = caps
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


def register() -> None:
    """Make ``vda5050+mqtt`` URLs (and the other schemes of ``SCHEMES``) create this link through
    :func:`fleet.link.create_link`; the composition root and test fixtures call it once before
    they create links (importing this module registers nothing)."""
    for scheme in SCHEMES:
        register_scheme(scheme, _factory)
