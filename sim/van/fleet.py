"""Run many simulated vans, each on its own MQTT connection: :class:`SimVanFleet`.

Vans are placed at the world's warehouse docks (van *i* at dock ``i mod len(warehouses)``, on
the dock's road node, facing along the road), charge at those docks, and carry the world's road
network as their on-board map, so they drive the roads' shapes between order nodes. Without a
world they start at explicit :class:`VanStart` poses (or all at the map origin) on map
``local``. Serial numbers are ``{serial_prefix}{i:02d}`` from 1; every van publishes under
``[topic_prefix/]uagv/v2/{manufacturer}/{serial}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

from firmware_bridges.vda5050 import wire
from fleet.clock import Clock
from fleet.world import World
from sim.van.agv import VanAgv
from sim.van.client import SimVan
from sim.van.model import Battery, Pose, VanSpec
from sim.van.route import XY

log = structlog.get_logger(__name__)

DEFAULT_MANUFACTURER = "streetfleet"
"""Manufacturer of simulated vans (second topic level after the version)."""
DEFAULT_MAP_ID = "local"
"""Map id of vans started without a world."""


@dataclass(frozen=True, slots=True)
class VanStart:
    """Where a van starts: map pose and the road node it stands on (``""``: none)."""

    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0
    node_id: str = ""


def starts_from_world(world: World, count: int) -> list[VanStart]:
    """Van *i* at the dock of warehouse ``i mod len(warehouses)``, facing along its road."""
    if not world.warehouses:
        raise ValueError(f"world {world.name!r} has no warehouse")
    net = world.road_network
    out = []
    for i in range(count):
        node = world.dock_node(world.warehouses[i % len(world.warehouses)].id)
        theta = 0.0
        edges = net.out_edges(node)
        if edges:
            (x0, y0), (x1, y1) = edges[0].geometry[0], edges[0].geometry[1]
            theta = math.atan2(y1 - y0, x1 - x0)
        out.append(VanStart(node.x, node.y, theta, node.id))
    return out


def road_paths(world: World) -> dict[str, tuple[XY, ...]]:
    """The world's road network as a van's on-board map: edge id -> shape."""
    return {e.id: tuple(e.geometry) for e in world.road_network.edges}


class SimVanFleet:
    """``count`` simulated vans on one broker; an async context manager."""

    def __init__(
        self,
        broker_url: str,
        clock: Clock,
        count: int = 1,
        *,
        world: World | None = None,
        starts: Sequence[VanStart] | None = None,
        manufacturer: str = DEFAULT_MANUFACTURER,
        serial_prefix: str = "VAN-",
        topic_prefix: str = "",
        interface: str = wire.DEFAULT_INTERFACE,
        spec: VanSpec | None = None,
        battery_soc: float = 1.0,
        state_interval_s: float = 1.0,
        visualization_interval_s: float | None = 1.0,
        version: str = wire.PROTOCOL_VERSION,
    ) -> None:
        """``version``: the VDA 5050 version the vans speak (``2.0.0`` or ``2.1.0``)."""
        if count < 0:
            raise ValueError("van count must not be negative")
        if starts is not None and len(starts) < count:
            raise ValueError(f"{count} vans need {count} starts, got {len(starts)}")
        if starts is None:
            starts = starts_from_world(world, count) if world is not None else [VanStart()] * count
        map_id = world.map_id if world is not None else DEFAULT_MAP_ID
        chargers: tuple[XY, ...] = ()
        paths: dict[str, tuple[XY, ...]] = {}
        if world is not None:
            chargers = tuple(world.xy(w.dock) for w in world.warehouses)
            chargers += tuple(world.dock_node(w.id).xy for w in world.warehouses)
            paths = road_paths(world)
        self.vans: list[SimVan] = []
        for i in range(count):
            s = starts[i]
            agv = VanAgv(
                manufacturer=manufacturer,
                serial_number=f"{serial_prefix}{i + 1:02d}",
                map_id=map_id,
                pose=Pose(s.x, s.y, s.theta),
                spec=spec or VanSpec(),
                last_node_id=s.node_id,
                chargers=chargers,
                paths=paths,
                battery=Battery(soc=battery_soc),
                version=version,
            )
            self.vans.append(
                SimVan(
                    agv,
                    broker_url,
                    clock,
                    topic_prefix=topic_prefix,
                    interface=interface,
                    state_interval_s=state_interval_s,
                    visualization_interval_s=visualization_interval_s,
                )
            )
        self._stack: AsyncExitStack | None = None

    def __len__(self) -> int:
        return len(self.vans)

    def __getitem__(self, index: int) -> SimVan:
        return self.vans[index]

    def by_serial(self, serial: str) -> SimVan:
        for v in self.vans:
            if v.serial_number == serial:
                return v
        raise KeyError(serial)

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            for van in self.vans:
                await stack.enter_async_context(van)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        log.info("sim.vans.started", vans=len(self.vans))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        log.info("sim.vans.stopped", vans=len(self.vans))
