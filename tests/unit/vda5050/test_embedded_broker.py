"""The embedded MQTT broker carries the whole van protocol: retained messages, QoS 1, last will."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import pytest

from fleet.clock import AcceleratedClock
from fleet.errors import ConfigError
from fleet.mqtt_broker import SHUTDOWN_TIMEOUT_S, EmbeddedBroker
from fleet.vehicle import LinkState
from tests.support import eventually
from tests.unit.vda5050.harness import bridge, delivery, vans


def test_loopback_only() -> None:
    with pytest.raises(ConfigError):
        EmbeddedBroker("0.0.0.0", 0)
    with pytest.raises(ConfigError):
        EmbeddedBroker("192.168.1.10", 0)
    with pytest.raises(ConfigError):
        EmbeddedBroker("127.0.0.1", 70000)
    assert EmbeddedBroker("localhost", 0).host == "127.0.0.1"


async def test_vans_and_bridge_over_the_embedded_broker() -> None:
    clock = AcceleratedClock(100.0)
    async with EmbeddedBroker(port=0) as broker:
        assert broker.port > 0 and broker.url == f"mqtt://127.0.0.1:{broker.port}"
        url = "vda5050+mqtt:///acme?prefix=embedded"  # the service's broker, from the options
        async with (
            vans(broker.url, clock, "embedded") as fleet,
            bridge(url, clock, {"broker_url": broker.url}) as b,
        ):
            await eventually(lambda: "van-VAN-01" in b.registry)
            entry = b.registry.get("van-VAN-01")
            await eventually(lambda: entry.info.max_boxes == 150)  # retained factsheet
            van = entry.control
            await van.send_trip(delivery("emb"))
            result = await van.wait_trip("emb", within=3600)
            assert result.ok
            fleet[0].crash()
            await eventually(lambda: entry.status.link is LinkState.LOST, timeout=10)
            fleet[0].recover()
            await eventually(lambda: entry.status.link is LinkState.ONLINE, timeout=10)
        # a second master control sees the retained goodbye
        async with bridge(url, clock, {"broker_url": broker.url}) as b2:
            await eventually(lambda: "van-VAN-01" in b2.registry)
            await eventually(lambda: b2.registry.get("van-VAN-01").status.link is LinkState.OFFLINE)


async def test_port_in_use_is_a_config_error() -> None:
    async with EmbeddedBroker(port=0) as first:
        with pytest.raises(ConfigError):
            async with EmbeddedBroker(port=first.port):
                pass


def _client_handler(broker: EmbeddedBroker) -> Any:
    """amqtt's handler of the one connected client (private: the shutdown reaches into it too)."""
    sessions = list(broker._broker._sessions.values())
    assert len(sessions) == 1
    return sessions[0][1]


async def _stubborn_reader(handler: Any, swallow: int, release: asyncio.Event) -> None:
    """Stands in for a client's reader and ignores ``swallow`` cancellations (as a reader under
    ``asyncio.wait_for`` on Python 3.11 can), or all of them until ``release``; then stops the
    real reader, which tells the waiting shutdown that it stopped."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            if swallow <= 0:
                break
            swallow -= 1
    handler._reader_real.cancel()


@pytest.mark.parametrize("swallow", [1, 10_000])
async def test_shutdown_is_bounded_when_a_reader_swallows_its_cancel(swallow: int) -> None:
    loop = asyncio.get_running_loop()
    broker = EmbeddedBroker(port=0)
    await broker.__aenter__()
    port = broker.port
    release = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", port, identifier="quiet-client", keepalive=600):
        await eventually(lambda: len(broker._broker._sessions) == 1)
        handler = _client_handler(broker)
        handler._reader_real = handler._reader_task
        handler._reader_task = asyncio.create_task(_stubborn_reader(handler, swallow, release))
        started = loop.time()
        await asyncio.wait_for(broker.__aexit__(None, None, None), timeout=SHUTDOWN_TIMEOUT_S + 5)
        took = loop.time() - started
        release.set()
    if swallow == 1:
        # cancelled again while the shutdown waited: an orderly shutdown, well before the bound
        assert took < SHUTDOWN_TIMEOUT_S
    else:
        assert took >= SHUTDOWN_TIMEOUT_S  # forced
    # whichever way it stopped, the port is free for the next start
    async with EmbeddedBroker(port=port) as again:
        assert again.port == port
