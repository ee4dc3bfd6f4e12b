"""Harness for sim tests: a sim fleet on free UDP ports talking to a test ground station."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fleet.clock import AcceleratedClock, Clock
from sim.drone.autopilot import Home
from sim.runner import SimFleet
from tests.support import free_udp_ports
from tests.unit.sim.gcs import Gcs

HOME = Home(22.5273, 114.0544, 12.0)
"""Home of vehicle 0 in sim tests."""


@asynccontextmanager
async def fleet_and_gcs(
    drones: int = 1,
    *,
    speed: float = 20.0,
    clock: Clock | None = None,
    heartbeats: bool = True,
    **kwargs: Any,
) -> AsyncIterator[tuple[SimFleet, Gcs]]:
    """A sim fleet sending to a test GCS in shared port mode; waits until the GCS heard all."""
    port = free_udp_ports(1)
    clk = clock or AcceleratedClock(speed)
    async with (
        Gcs(port) as gcs,
        SimFleet(
            drones,
            clock=clk,
            first_port=port,
            port_mode="shared",
            ready_delay=kwargs.pop("ready_delay", 1.0),
            **kwargs,
        ) as fleet,
    ):
        for v in fleet.vehicles:
            await gcs.wait_for("HEARTBEAT", sysid=v.sysid, timeout=10)
        if heartbeats:
            gcs.start_heartbeats(tuple(v.sysid for v in fleet.vehicles), period=0.05)
        yield fleet, gcs
