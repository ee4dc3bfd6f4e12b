"""One simulated van on its own MQTT connection, as a real van's VDA 5050 client behaves.

:class:`SimVan` is an async context manager. On entry it starts, in its own ``TaskGroup``:

- its broker connection (:class:`fleet.mqtt_client.MqttConnection`): connects with the last
  will ``connection: CONNECTIONBROKEN`` (QoS 1, retained), subscribes to ``order`` and
  ``instantActions``, publishes ``connection: ONLINE`` (QoS 1, retained) and its factsheet
  (retained), and reconnects with exponential backoff when the broker goes away (the van keeps
  driving its released base meanwhile, section 6.2);
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
from types import TracebackType
from typing import Self

import aiomqtt

from firmware_bridges.vda5050 import wire
from fleet.clock import Clock
from fleet.mqtt import BrokerAddress
from fleet.mqtt_client import MqttConnection
from fleet.tasks import cancel_and_wait
from sim.van.agv import VanAgv

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
        self.published: dict[str, int] = dict.fromkeys(wire.SUBTOPICS, 0)
        """Messages published per topic."""
        self._header_ids: dict[str, int] = dict.fromkeys(wire.SUBTOPICS, 0)
        self._mqtt = MqttConnection(
            self.address,
            name="simvan",
            client_id=f"sim-{agv.serial_number}",
            subscriptions=[(self.topic("order"), 0), (self.topic("instantActions"), 0)],
            on_message=self._receive,
            on_connect=self._on_connect,
            will=self._will,
            keepalive_s=KEEPALIVE_S,
            reconnect_min_s=RECONNECT_MIN_S,
            reconnect_max_s=RECONNECT_MAX_S,
            publish_timeout_s=PUBLISH_TIMEOUT_S,
            quiet=True,
            log_fields={"serial": agv.serial_number},
        )
        self.connected = self._mqtt.connected
        """Set while the van is connected to the broker (after its ONLINE and factsheet)."""
        self._wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def effective_state_interval_s(self) -> float:
        """World seconds between periodic states (longer than asked under a very fast clock)."""
        return max(self.state_interval_s, self._min_wait_s)

    @property
    def serial_number(self) -> str:
        return self.agv.serial_number

    @property
    def connections(self) -> int:
        """Successful connections so far."""
        return self._mqtt.stats.connects

    def topic(self, subtopic: str) -> str:
        return wire.topic(
            self.prefix, self.interface, self.agv.manufacturer, self.agv.serial_number, subtopic
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        await self._mqtt.__aenter__()
        self._tasks = [
            self._tg.create_task(self._live_loop(), name=f"simvan-{self.serial_number}-live")
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._mqtt.connected.is_set() and not self._mqtt.crashed:
            await self._publish_connection(wire.ConnectionState.OFFLINE)
        await cancel_and_wait(self._tasks)
        await self._mqtt.__aexit__(None, None, None)
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    def crash(self) -> None:
        """Lose the connection abruptly (no DISCONNECT): the broker sends the last will."""
        self._mqtt.crash()

    def recover(self) -> None:
        """Reconnect after :meth:`crash`."""
        self._mqtt.recover()

    # --- MQTT -------------------------------------------------------------------------------

    def _next_header(self, subtopic: str) -> int:
        self._header_ids[subtopic] += 1
        return self._header_ids[subtopic]

    async def _publish(self, subtopic: str, msg: wire.Wire) -> bool:
        """Publish one message; False when it did not go (the connection reconnects)."""
        if not await self._mqtt.publish(
            self.topic(subtopic),
            wire.encode(msg, self.agv.version),
            qos=wire.QOS[subtopic],
            retain=subtopic in wire.RETAINED,
        ):
            return False
        self.published[subtopic] += 1
        return True

    async def _publish_connection(self, state: wire.ConnectionState) -> bool:
        msg = self.agv.connection_message(self._next_header("connection"), self.clock.time(), state)
        return await self._publish("connection", msg)

    async def _publish_factsheet(self) -> bool:
        vis = self.visualization_interval_s
        msg = self.agv.factsheet_message(
            self._next_header("factsheet"),
            self.clock.time(),
            self.effective_state_interval_s,
            None if vis is None else max(vis, self._min_wait_s),
        )
        return await self._publish("factsheet", msg)

    def _will(self) -> aiomqtt.Will:
        msg = self.agv.connection_message(
            self._next_header("connection"),
            self.clock.time(),
            wire.ConnectionState.CONNECTIONBROKEN,
        )
        payload = wire.encode(msg, self.agv.version)
        return aiomqtt.Will(self.topic("connection"), payload, qos=1, retain=True)

    async def _on_connect(self) -> None:
        """ONLINE and the factsheet before anything else; then report the state at once."""
        if not (
            await self._publish_connection(wire.ConnectionState.ONLINE)
            and await self._publish_factsheet()
        ):
            raise aiomqtt.MqttError("could not announce the van")  # reconnect
        self.agv.dirty = True
        self._wake.set()

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
            if self._mqtt.connected.is_set():
                next_state, next_vis = await self._report(now, next_state, next_vis)
            active = agv.busy or agv.driving or agv.battery.charging
            due = next_state if self.visualization_interval_s is None else min(next_state, next_vis)
            wait = due - clock.monotonic()
            if active:
                wait = min(wait, self.tick_s)
            wait = max(wait, self._min_wait_s, 0.0)
            await self._sleep_or_wake(wait)
            self._wake.clear()

    async def _report(self, now: float, next_state: float, next_vis: float) -> tuple[float, float]:
        """Publish what is due: a requested factsheet, the state (on change or every interval),
        the visualization. Stops at a publish that fails (the connection reconnects); returns
        when the state and the visualization are due next."""
        agv, clock = self.agv, self.clock
        if agv.factsheet_requested:
            agv.factsheet_requested = False
            if not await self._publish_factsheet():
                return next_state, next_vis
        if agv.dirty or now >= next_state:
            agv.dirty = False
            if not await self._publish(
                "state", agv.state_message(self._next_header("state"), clock.time())
            ):
                return next_state, next_vis
            next_state = now + self.state_interval_s
        vis = self.visualization_interval_s
        if vis is not None and now >= next_vis:
            msg = agv.visualization_message(self._next_header("visualization"), clock.time())
            if await self._publish("visualization", msg):
                next_vis = now + vis
        return next_state, next_vis

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
