"""Fixtures for the MAVLink bridge tests: a link on a free UDP port with an accelerated clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from firmware_bridges.mavlink.link import MavlinkLink, register
from fleet.clock import AcceleratedClock
from fleet.events import EventBus
from fleet.link import LinkContext, create_link
from fleet.registry import VehicleRegistry

SPEED = 10.0
"""World seconds per real second in these tests: timeouts of 1.5 s take 0.15 s."""


@dataclass
class Env:
    registry: VehicleRegistry
    bus: EventBus
    clock: AcceleratedClock

    def ctx(self, **options: Any) -> LinkContext:
        return LinkContext(self.registry, self.bus, self.clock, options)


@pytest.fixture
def env() -> Env:
    register()  # the mavlink+udpin/udpout schemes, as the composition root does
    return Env(VehicleRegistry(), EventBus(), AcceleratedClock(SPEED))


OpenLink = Callable[..., AbstractAsyncContextManager[MavlinkLink]]


@pytest.fixture
def open_link(env: Env) -> OpenLink:
    @asynccontextmanager
    async def _open(
        url: str = "mavlink+udpin://127.0.0.1:0", **options: Any
    ) -> AsyncIterator[MavlinkLink]:
        options.setdefault("metadata_cache_dir", None)  # in memory: nothing in var/
        link = create_link(url, env.ctx(**options))
        assert isinstance(link, MavlinkLink)
        async with link:
            yield link

    return _open
