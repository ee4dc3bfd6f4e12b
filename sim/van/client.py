"""One simulated van on its own MQTT connection, as a real van's VDA 5050 client behaves.

:class:`SimVan` is an async context manager. On entry it starts, in its own ``TaskGroup``:

- the connection loop: connects with the last will ``connection: CONNECTIONBROKEN`` (QoS 1,
  retained), publishes ``connection: ONLINE`` (QoS 1, retained) and its factsheet (retained),
  subscribes to ``order`` and ``instantActions``, and reconnects with exponential backoff when
  the broker goes away (the van keeps driving its released base meanwhile, section 6.2);
- the live loop: advances the vehicle on the injected clock, publishes ``state`` every
  ``state_interval_s`` world seconds and at once on every change the specification lists,
  ``visualization`` every ``visualization_interval_s``, and the factsheet on request.

On exit it publishes ``connection: OFFLINE`` and disconnects cleanly (so the broker drops the
last will). :meth:`crash` cuts the TCP connection without a DISCONNECT packet (fault injection):
the broker then publishes the last will, and the van stays away until :meth:`recover`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import uuid
from types import TracebackType
from typing import Self

import aiomqtt
import structlog

from firmware_bridges.vda5050 import wire
from fleet.clock import Clock
from fleet.mqtt import BrokerAddress
from fleet.tasks import cancel_and_wait
from sim.van.agv import VanAgv

log = structlog.get_logger(__name__)

RECONNECT_MIN_S = 0.2
"""First reconnect delay after the broker goes away (real seconds)."""
RECONNECT_MAX_S = 5.0
"""Longest reconnect delay (real seconds)."""
MIN_REAL_WAIT_S = 0.05
"""The live loop runs at most 20 times per real second, however fast the clock runs; under a
fast clock the state interval is therefore at least 0.05 s times the clock's speed."""
KEEPALIVE_S = 15
"""MQTT keep-alive; the broker declares the van lost after 1.5 times this (section 6.14)."""
PUBLISH_TIMEOUT_S = 1.0
"""Longest wait for a publish to leave (real seconds). On a connection that has just broken a
publish would otherwise wait aiomqtt's default 10 s, and the van's live loop with it: no state,
no driving, while the connection loop has long reconnected."""


class SimVan:
    """A simulated van connected to an MQTT broker (see the module docstring)."""

    def __init__(
        self,
        agv: VanAgv,
        broker_url: str,
        clock: Clock,
        *,
        topic_prefix: str = "",
        interface: str = wire.DEFAULT_INTERFACE,
        state_interval_s: float = 1.0,
        visualization_interval_s: float | None = 1.0,
        tick_s: float = 0.1,
    ) -> None:
        self.agv = agv
        self.clock = clock
        self.address = BrokerAddress.parse(broker_url)
        self.prefix = topic_prefix
        self.interface = interface
        self.state_interval_s = state_interval_s
        self.visualization_interval_s = visualization_interval_s
        self._min_wait_s = MIN_REAL_WAIT_S * clock.speed if math.isfinite(clock.speed) else 0.0
        self.tick_s = max(tick_s, self._min_wait_s)
        """World seconds between physics updates while the van is busy."""
        self.connected = asyncio.Event()
        """Set while the van is connected to the broker."""
        self.published: dict[str, int] = dict.fromkeys(wire.SUBTOPICS, 0)
        """Messages published per topic."""
        self.connections = 0
        """Successful connections so far."""
        self._header_ids: dict[str, int] = dict.fromkeys(wire.SUBTOPICS, 0)
        self._client: aiomqtt.Client | None = None
        self._wake = asyncio.Event()
        self._crashed = asyncio.Event()
        self._recovered = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def effective_state_interval_s(self) -> float:
        """World seconds between periodic states (longer than asked under a very fast clock)."""
        return max(self.state_interval_s, self._min_wait_s)

    @property
    def serial_number(self) -> str:
        return self.agv.serial_number

    def topic(self, subtopic: str) -> str:
        return wire.topic(
            self.prefix, self.interface, self.agv.manufacturer, self.agv.serial_number, subtopic
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        name = f"simvan-{self.serial_number}"
        self._tasks = [
            self._tg.create_task(self._connection_loop(), name=f"{name}-mqtt"),
            self._tg.create_task(self._live_loop(), name=f"{name}-live"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client = self._client
        if client is not None and not self._crashed.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await self._publish_connection(client, wire.ConnectionState.OFFLINE)
        await cancel_and_wait(self._tasks)
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    def crash(self) -> None:
        """Lose the connection abruptly (no DISCONNECT): the broker sends the last will."""
        self._crashed.set()
        self._recovered.clear()
        client = self._client
        sock = client._client.socket() if client is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def recover(self) -> None:
        """Reconnect after :meth:`crash`."""
        self._crashed.clear()
        self._recovered.set()

    # --- MQTT -------------------------------------------------------------------------------

    def _next_header(self, subtopic: str) -> int:
        self._header_ids[subtopic] += 1
        return self._header_ids[subtopic]

    async def _publish(self, client: aiomqtt.Client, subtopic: str, msg: wire.Wire) -> None:
        await client.publish(
            self.topic(subtopic),
            msg.to_json(),
            qos=wire.QOS[subtopic],
            retain=subtopic in wire.RETAINED,
            timeout=PUBLISH_TIMEOUT_S,
        )
        self.published[subtopic] += 1

    async def _publish_connection(
        self, client: aiomqtt.Client, state: wire.ConnectionState
    ) -> None:
        msg = self.agv.connection_message(self._next_header("connection"), self.clock.time(), state)
        await self._publish(client, "connection", msg)

    async def _publish_factsheet(self, client: aiomqtt.Client) -> None:
        vis = self.visualization_interval_s
        msg = self.agv.factsheet_message(
            self._next_header("factsheet"),
            self.clock.time(),
            self.effective_state_interval_s,
            None if vis is None else max(vis, self._min_wait_s),
        )
        await self._publish(client, "factsheet", msg)

    async def _connection_loop(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            if self._crashed.is_set():
                await self._recovered.wait()
            will_msg = self.agv.connection_message(
                self._next_header("connection"),
                self.clock.time(),
                wire.ConnectionState.CONNECTIONBROKEN,
            )
            will = aiomqtt.Will(self.topic("connection"), will_msg.to_json(), qos=1, retain=True)
            try:
                async with aiomqtt.Client(
                    **self.address.client_kwargs(),
                    identifier=f"sim-{self.agv.serial_number}-{uuid.uuid4().hex[:8]}",
                    will=will,
                    keepalive=KEEPALIVE_S,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    clean_session=True,
                ) as client:
                    await client.subscribe(
                        [(self.topic("order"), 0), (self.topic("instantActions"), 0)]
                    )
                    await self._publish_connection(client, wire.ConnectionState.ONLINE)
                    await self._publish_factsheet(client)
                    self._client = client
                    self.connections += 1
                    self.connected.set()
                    self.agv.dirty = True
                    self._wake.set()
                    delay = RECONNECT_MIN_S
                    log.debug("simvan.connected", serial=self.serial_number)
                    async for message in client.messages:
                        try:
                            self._receive(message)
                        except Exception:
                            log.exception("simvan.receive_failed", serial=self.serial_number)
            except aiomqtt.MqttError as exc:
                log.debug("simvan.disconnected", serial=self.serial_number, error=str(exc))
            finally:
                self._client = None
                self.connected.clear()
            if not self._crashed.is_set():
                # transport back-off runs on real time: it is about sockets, not the world
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX_S, delay * 2)

    def _receive(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode()
        name = message.topic.value
        if name == self.topic("order"):
            self.agv.receive_order(bytes(payload))
        elif name == self.topic("instantActions"):
            self.agv.receive_instant_actions(bytes(payload))
        self._wake.set()

    # --- world ------------------------------------------------------------------------------

    async def _live_loop(self) -> None:
        clock, agv = self.clock, self.agv
        last = clock.monotonic()
        next_state = last
        next_vis = last
        while True:
            now = clock.monotonic()
            agv.tick(now - last)
            last = now
            client = self._client
            if client is not None:
                try:
                    if agv.factsheet_requested:
                        agv.factsheet_requested = False
                        await self._publish_factsheet(client)
                    if agv.dirty or now >= next_state:
                        agv.dirty = False
                        msg = agv.state_message(self._next_header("state"), clock.time())
                        await self._publish(client, "state", msg)
                        next_state = now + self.state_interval_s
                    vis = self.visualization_interval_s
                    if vis is not None and now >= next_vis:
                        msg2 = agv.visualization_message(
                            self._next_header("visualization"), clock.time()
                        )
                        await self._publish(client, "visualization", msg2)
                        next_vis = now + vis
                except aiomqtt.MqttError:
                    pass  # the connection loop reconnects
            active = agv.busy or agv.driving or agv.battery.charging
            due = next_state if self.visualization_interval_s is None else min(next_state, next_vis)
            wait = due - clock.monotonic()
            if active:
                wait = min(wait, self.tick_s)
            wait = max(wait, self._min_wait_s, 0.0)
            await self._sleep_or_wake(wait)
            self._wake.clear()

    async def _sleep_or_wake(self, seconds: float) -> None:
        """Wait ``seconds`` of world time, or less if a message wakes the van."""
        if self._wake.is_set():
            return
        if not math.isfinite(self.clock.speed):  # a manual clock: only it knows when
            with contextlib.suppress(TimeoutError):
                await self.clock.wait_for(self._wake.wait(), seconds)
            return
        # a timer instead of wait_for's extra task per cycle (thousands of vans per process)
        timer = asyncio.get_running_loop().call_later(self.clock.to_real(seconds), self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
