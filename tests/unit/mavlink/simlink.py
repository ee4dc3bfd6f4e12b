"""A bridge link and sim vehicles on one UDP port, for tests of the metadata and FTP clients.

The sim vehicles answer COMPONENT_METADATA and serve their metadata over MAVLink FTP like PX4;
tests reach into ``fleet[i].ftp`` (the vehicle's :class:`sim.drone.ftp_server.FtpServer`) to
add files, count requests or lose answers.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.link import MavlinkLink, register
from fleet.clock import AcceleratedClock
from fleet.events import EventBus
from fleet.link import LinkContext, create_link
from fleet.registry import VehicleRegistry
from sim.drone.autopilot import Home
from sim.runner import SimFleet
from tests.support import free_port

SPEED = 10.0
"""World seconds per real second."""
HOME = Home(22.5273, 114.0544, 12.0)


@dataclass
class SimLink:
    link: MavlinkLink
    fleet: SimFleet
    registry: VehicleRegistry
    bus: EventBus
    clock: AcceleratedClock

    def drone(self, sysid: int) -> MavlinkDrone:
        control = self.registry.get(f"drone-{sysid}").control
        assert isinstance(control, MavlinkDrone)
        return control


@asynccontextmanager
async def sim_link(
    drones: int = 1,
    *,
    cache_dir: Path | None,
    clock: AcceleratedClock | None = None,
    port: int | None = None,
    **options: Any,
) -> AsyncIterator[SimLink]:
    """``drones`` sim vehicles sending to one bridge link; yields once all are discovered."""
    clock = clock or AcceleratedClock(SPEED)
    registry, bus = VehicleRegistry(), EventBus()
    port = port or free_port(socket.SOCK_DGRAM)
    opts = {"metadata_cache_dir": str(cache_dir) if cache_dir else None, **options}
    register()  # the mavlink+udpin/udpout schemes, as the composition root does
    link = create_link(f"mavlink+udpin://127.0.0.1:{port}", LinkContext(registry, bus, clock, opts))
    assert isinstance(link, MavlinkLink)
    homes = [Home(HOME.lat + i * 1e-4, HOME.lon, HOME.alt) for i in range(drones)]
    async with (
        link,
        SimFleet(
            drones, clock=clock, homes=homes, first_port=port, port_mode="shared", ready_delay=1.0
        ) as fleet,
    ):
        await registry.wait_added(drones, within=30, clock=clock)
        yield SimLink(link, fleet, registry, bus, clock)
