"""One MQTT connection that stays up: the reconnect loop every MQTT peer of the project shares.

:class:`MqttConnection` is an async context manager. While open it owns one task, in its own
``TaskGroup``, that connects to the broker (an ``aiomqtt.Client`` built from a
:class:`fleet.mqtt.BrokerAddress`: MQTT 3.1.1, clean session, a fresh client id per attempt,
an optional last will built anew for each attempt), subscribes, runs the owner's ``on_connect``
(birth messages), then hands every message to the owner's ``on_message``, and when the broker
goes away reconnects with exponential backoff. The backoff runs on real time (``asyncio.sleep``):
it is about sockets, not the world, so an accelerated clock does not hammer the broker.

- :meth:`MqttConnection.publish` is bounded: it publishes only while connected, waits at most
  ``publish_timeout_s`` for the broker, and answers False (counted in ``stats.unsent``) when the
  message could not go, so a caller's loop never hangs on a dead socket and retries as it sees
  fit.
- A message whose handler raises is logged and counted (``stats.handler_errors``); the
  connection goes on: one bad message or one bug must not take a link or a vehicle down.
- Leaving the context stops the task for sure (:func:`fleet.tasks.cancel_and_wait`: aiomqtt
  waits with ``asyncio.wait_for``, which can swallow a cancellation on Python 3.11); aiomqtt
  then disconnects cleanly. Goodbye messages (``OFFLINE``) are the owner's to publish before.
- :meth:`MqttConnection.crash` and :meth:`MqttConnection.recover` cut the TCP connection
  without a DISCONNECT and restore it (fault injection: the broker publishes the last will).

Users: the VDA 5050 link (``firmware_bridges.vda5050.link``), the speaker link
(``firmware_bridges.speaker.link``), the simulated van (``sim.van.client``) and the simulated
speaker payload (``sim.speaker.payload``).

**Allowed for the simulators.** This module is transport only, like the bridges' ``wire``
modules: it depends on aiomqtt, structlog, :mod:`fleet.mqtt` (broker URLs) and
:mod:`fleet.tasks`, and on nothing of the service's runtime (registry, bus, store, links,
settings). A simulated vehicle using it knows no more than a real vehicle's MQTT client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiomqtt
import structlog

from fleet.mqtt import BrokerAddress
from fleet.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

KEEPALIVE_S = 15
"""Default MQTT keep-alive (seconds); the broker declares a silent client lost after 1.5 times
this and publishes its last will."""
RECONNECT_MIN_S = 0.2
"""Default first reconnect delay (real seconds)."""
RECONNECT_MAX_S = 10.0
"""Default longest reconnect delay (real seconds); the delay doubles from the first up to this."""
PUBLISH_TIMEOUT_S = 10.0
"""Default longest wait for one publish (real seconds; aiomqtt's own default)."""

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None] | None]
"""Takes one incoming message; may be a plain function or a coroutine function."""


@dataclass(slots=True)
class ConnectionStats:
    """Counters of one connection; owners may extend it with their own counters and pass it in."""

    connects: int = 0
    """Successful connections (subscribed and ``on_connect`` done)."""
    disconnects: int = 0
    """Connections lost after they were up."""
    received: int = 0
    """Messages handed to the owner's ``on_message``."""
    published: int = 0
    """Publishes the broker took (QoS 0: handed to the socket)."""
    unsent: int = 0
    """Publishes that did not go (not connected, broker error or timeout)."""
    handler_errors: int = 0
    """Messages whose handler raised (logged with the traceback)."""


class MqttConnection:
    """One client connection to a broker, kept up until the context is left.

    ``name`` starts the log event names (``{name}.connected``, ``{name}.broker_unreachable``,
    ``{name}.publish_failed``, ``{name}.handler_failed``) and ``log_fields`` are added to each;
    ``quiet`` logs connection changes at debug level (thousands of simulated vehicles).
    ``client_id`` is the prefix of the MQTT client id: each attempt adds 12 random hex digits,
    so a reconnecting client never collides with its own stale session. ``will`` is called at
    each attempt (a last will may carry a fresh header id).
    """

    def __init__(
        self,
        broker: BrokerAddress,
        *,
        name: str,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]],
        on_message: MessageHandler,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        will: Callable[[], aiomqtt.Will] | None = None,
        keepalive_s: int = KEEPALIVE_S,
        reconnect_min_s: float = RECONNECT_MIN_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
        stats: ConnectionStats | None = None,
        quiet: bool = False,
        log_fields: Mapping[str, object] | None = None,
    ) -> None:
        self.broker = broker
        self.name = name
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.keepalive_s = keepalive_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.publish_timeout_s = publish_timeout_s
        self.stats = stats if stats is not None else ConnectionStats()
        self.connected = asyncio.Event()
        """Set while connected, subscribed and past ``on_connect``."""
        self._on_message = on_message
        self._on_connect = on_connect
        self._will = will
        self._quiet = quiet
        self._fields: dict[str, object] = {"broker": broker.url, **(log_fields or {})}
        self._client: aiomqtt.Client | None = None
        self._crashed = asyncio.Event()
        self._recovered = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        self._task = tg.create_task(self._run(), name=f"{self.name}-mqtt {self.broker.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])  # aiomqtt's wait_for can swallow a cancel
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    def crash(self) -> None:
        """Lose the connection abruptly (no DISCONNECT): the broker sends the last will. The
        connection stays away until :meth:`recover`."""
        self._crashed.set()
        self._recovered.clear()
        client = self._client
        # aiomqtt has no abort: shut the paho client's socket down under it
        sock = client._client.socket() if client is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def recover(self) -> None:
        """Reconnect after :meth:`crash`."""
        self._crashed.clear()
        self._recovered.set()

    @property
    def crashed(self) -> bool:
        """Between :meth:`crash` and :meth:`recover`."""
        return self._crashed.is_set()

    # --- publishing ---------------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False
    ) -> bool:
        """Publish if connected; False when the message did not go (the caller retries)."""
        client = self._client
        if client is None:
            self.stats.unsent += 1
            return False
        try:
            await client.publish(
                topic, payload, qos=qos, retain=retain, timeout=self.publish_timeout_s
            )
        except aiomqtt.MqttError as exc:
            self.stats.unsent += 1
            log.info(f"{self.name}.publish_failed", topic=topic, error=str(exc), **self._fields)
            return False
        self.stats.published += 1
        return True

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.reconnect_min_s
        while True:
            if self._crashed.is_set():
                await self._recovered.wait()
            up = False
            try:
                async with aiomqtt.Client(
                    **self.broker.client_kwargs(),
                    identifier=f"{self.client_id}-{uuid.uuid4().hex[:12]}",
                    will=self._will() if self._will is not None else None,
                    keepalive=self.keepalive_s,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    clean_session=True,
                ) as client:
                    if self.subscriptions:
                        await client.subscribe(self.subscriptions)
                    self._client = client
                    if self._on_connect is not None:
                        await self._on_connect()
                    up = True
                    self.stats.connects += 1
                    self.connected.set()
                    delay = self.reconnect_min_s
                    (log.debug if self._quiet else log.info)(
                        f"{self.name}.connected", **self._fields
                    )
                    async for message in client.messages:
                        await self._handle(message)
            except aiomqtt.MqttError as exc:
                if up:
                    self.stats.disconnects += 1
                (log.debug if self._quiet else log.warning)(
                    f"{self.name}.broker_unreachable",
                    error=str(exc),
                    retry_s=delay,
                    **self._fields,
                )
            finally:
                self._client = None
                self.connected.clear()
            if not self._crashed.is_set():
                await asyncio.sleep(delay)  # transport back-off: real time
                delay = min(self.reconnect_max_s, delay * 2)

    async def _handle(self, message: aiomqtt.Message) -> None:
        self.stats.received += 1
        try:
            result = self._on_message(message)
            if result is not None:
                await result
        except Exception:
            # a bug or a bad message must not take the connection down: log, count, go on
            self.stats.handler_errors += 1
            log.exception(f"{self.name}.handler_failed", topic=message.topic.value, **self._fields)
