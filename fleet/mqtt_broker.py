"""An embedded MQTT 3.1.1 broker (amqtt) for running the service with no external broker.

When ``settings.mqtt.url`` is unset, the composition root starts an :class:`EmbeddedBroker`
and gives its :attr:`~EmbeddedBroker.url` to the VDA 5050 and speaker bridges and to the
simulators, so ``make demo`` needs no Mosquitto. It listens on loopback only, allows anonymous
clients (nothing outside the machine can reach it), keeps retained messages and last wills in
memory, and is meant for one street's demo or a laptop: production and tests use Mosquitto by
URL.

Usage::

    async with EmbeddedBroker(port=0) as broker:   # 0: pick a free port
        print(broker.url)                           # mqtt://127.0.0.1:<port>
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from types import TracebackType
from typing import Any, Self

import structlog

from fleet.errors import ConfigError
from fleet.tasks import RECANCEL_S

log = structlog.get_logger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
"""Addresses the embedded broker may listen on."""

SHUTDOWN_TIMEOUT_S = 5.0
"""Longest wait for an orderly shutdown; then its sockets and tasks are closed by force."""


class EmbeddedBroker:
    """An amqtt broker on a loopback address, as an async context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        if host != "localhost":
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ConfigError(
                    f"the embedded MQTT broker listens on loopback only, not {host!r}", host=host
                )
        if not 0 <= port <= 65535:
            raise ConfigError(f"bad port {port} for the embedded MQTT broker", port=port)
        self.host = "127.0.0.1" if host == "localhost" else host
        self.requested_port = port
        self.port: int = port
        """The port it listens on (the chosen one when ``port=0`` was asked)."""
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the running broker."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    async def __aenter__(self) -> Self:
        from amqtt.broker import Broker
        from amqtt.errors import BrokerError

        bind = (
            f"[{self.host}]:{self.requested_port}"
            if ":" in self.host
            else (f"{self.host}:{self.requested_port}")
        )
        config = {
            "listeners": {"default": {"type": "tcp", "bind": bind}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        # amqtt logs every connection at INFO; the service's log level governs through this
        logging.getLogger("amqtt").setLevel(
            max(logging.getLogger().getEffectiveLevel(), logging.WARNING)
        )
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as exc:
            raise ConfigError(
                f"cannot start the embedded MQTT broker on {bind}: {exc}", bind=bind
            ) from exc
        self._broker = broker
        server = broker._servers["default"]  # the listener amqtt opened
        sockets = server.instance.sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await _shutdown(broker)


async def _shutdown(broker: Any) -> None:
    """Stop an amqtt broker, bounded in time.

    amqtt stops each client by cancelling its reader task and waiting until the reader says it
    stopped. The reader reads under ``asyncio.wait_for``, which on Python 3.11 can swallow a
    cancellation that arrives as a read completes (CPython gh-86296): the reader then reads on
    and the shutdown waits for ever (seen with a client that had gone quiet). So while the
    shutdown waits, the readers still running are cancelled again every ``RECANCEL_S``; if it
    still has not finished after ``SHUTDOWN_TIMEOUT_S`` the listeners, client connections and
    broker tasks are closed by force, so that the port is free for the next start.
    """
    # amqtt's private attributes, read defensively: without them the shutdown is only unbounded
    sessions = getattr(broker, "_sessions", {})
    handlers = [h for _session, h in list(sessions.values()) if h is not None]
    task = asyncio.create_task(broker.shutdown(), name="amqtt-shutdown")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHUTDOWN_TIMEOUT_S
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=RECANCEL_S)
            if done:
                task.result()
                return
            if loop.time() >= deadline:
                break
            for handler in handlers:
                reader = getattr(handler, "_reader_task", None)
                if reader is not None and not reader.done():
                    reader.cancel()
    except BaseException:
        task.cancel()
        raise
    log.warning("mqtt.embedded_broker_forced_shutdown", timeout_s=SHUTDOWN_TIMEOUT_S)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    for handler in handlers:
        reader = getattr(handler, "_reader_task", None)
        if reader is not None:
            reader.cancel()
        adapter = getattr(handler, "writer", None)
        writer = getattr(adapter, "_writer", None)
        if writer is not None:
            writer.transport.abort()
    for name in ("_broadcast_task", "_session_monitor_task"):
        t = getattr(broker, name, None)
        if t is not None:
            t.cancel()
    for server in getattr(broker, "_servers", {}).values():
        instance = getattr(server, "instance", None)
        if instance is not None:
            instance.close()
