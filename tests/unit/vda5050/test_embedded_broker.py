"""The embedded MQTT broker carries the whole van protocol: retained messages, QoS 1, last will."""

from __future__ import annotations

import pytest

from fleet.clock import AcceleratedClock
from fleet.errors import ConfigError
from fleet.mqtt_broker import EmbeddedBroker
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
