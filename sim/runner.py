"""Run a simulated fleet: many PX4-like vehicles in one process, on one asyncio loop.

:class:`SimFleet` is an async context manager that builds the vehicles (from a world's pads or
explicit home positions), opens one UDP socket per vehicle, and runs a single simulation loop
that advances every vehicle by the world time elapsed (:meth:`SimVehicle.tick`). Time comes
from the injected :class:`fleet.clock.Clock`: with an :class:`AcceleratedClock` the whole
fleet, PX4's timeouts included, runs N times faster (like ``PX4_SIM_SPEED_FACTOR``); with a
:class:`ManualClock` a test steps time by hand.

Port modes (where vehicle *i*, 0-based, system id ``first_sysid + i``, sends its API link):

* ``sequential`` (default): ``first_port + i``;
* ``px4``: like PX4 SITL, ``first_port + i`` for ``i <= 9`` and ``first_port + 9`` above;
* ``shared``: every vehicle sends to ``first_port`` (as behind mavlink-router), for large fleets.

In every mode a vehicle replies to the address a ground station last sent from.
:func:`run_sim` is the entry point of ``streetfleet sim``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Protocol

import structlog

from fleet.clock import AcceleratedClock, Clock, WallClock
from fleet.world import World
from sim.drone.autopilot import Home
from sim.drone.physics import Model
from sim.drone.vehicle import SimVehicle, VehicleConfig
from sim.van.fleet import SimVanFleet

log = structlog.get_logger(__name__)

DEFAULT_HOME = Home(22.5273, 114.0544, 12.0)
"""Home of vehicle 0 when there is neither a world nor explicit homes (Futian, Shenzhen)."""
DEFAULT_SPACING_M = 5.0
"""East spacing between vehicles placed around :data:`DEFAULT_HOME`."""
MAX_REAL_TICK_HZ = 50.0
"""The simulation loop runs at most this often per real second."""
MAX_SYSID = 254
"""Highest vehicle system id: MAVLink ids are one byte and 255 is the ground station's. System
ids only need to differ per link, so more vehicles run as several fleets (see :class:`SimFleet`)."""


class PortMode(StrEnum):
    """Where each vehicle sends its API link."""

    SEQUENTIAL = "sequential"
    """Vehicle i to first_port + i."""
    PX4 = "px4"
    """Like PX4 SITL: first_port + i, instances above 9 all to first_port + 9."""
    SHARED = "shared"
    """Every vehicle to first_port."""


def target_port(mode: PortMode | str, first_port: int, index: int) -> int:
    """The UDP port vehicle ``index`` (0-based) sends to."""
    mode = PortMode(mode)
    if mode is PortMode.SHARED:
        return first_port
    if mode is PortMode.PX4:
        return first_port + min(index, 9)
    return first_port + index


class SimComponent(Protocol):
    """Anything else a fleet runs alongside its MAVLink vehicles (vans, payloads)."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


def homes_from_world(world: World, count: int, start: int = 0) -> list[Home]:
    """Homes of vehicles ``start .. start+count-1``: vehicle i on pad ``i mod len(pads)``."""
    if not world.pads:
        raise ValueError(f"world {world.name!r} has no drone pads")
    pads = world.pads
    return [
        Home(p.location.lat, p.location.lon, p.ground_alt_m)
        for p in (pads[i % len(pads)] for i in range(start, start + count))
    ]


def default_homes(count: int, start: int = 0) -> list[Home]:
    """Homes in a row east of :data:`DEFAULT_HOME`, :data:`DEFAULT_SPACING_M` apart."""
    from fleet.geo import offset_latlon

    out = []
    for i in range(start, start + count):
        lat, lon = offset_latlon(DEFAULT_HOME.lat, DEFAULT_HOME.lon, i * DEFAULT_SPACING_M, 0.0)
        out.append(Home(lat, lon, DEFAULT_HOME.alt))
    return out


class SimFleet:
    """Simulated PX4 drones (and rovers) sharing one loop; an async context manager.

    ``homes`` (explicit) wins over ``world`` (pads), which wins over the default row. Drones
    come first (system ids ``first_sysid ..``), then rovers. ``params`` presets parameters on
    every vehicle (like ``PX4_PARAM_<NAME>``); ``signing_key`` (32 bytes) turns on MAVLink 2
    signing. ``components`` are entered and exited with the fleet (for vans and payloads).
    System ids must stay within 1..:data:`MAX_SYSID` (one link's worth of vehicles).
    ``battery_swap_s`` lets a ground crew put a full battery into a drone that has sat disarmed
    on its pad that long (None: batteries are never swapped, as on a bare PX4).
    ``vans`` > 0 adds that many VDA 5050 vans (:class:`sim.van.fleet.SimVanFleet`, each on its
    own connection to the MQTT broker at ``mqtt_url``, topics under ``van_topic_prefix``) at the
    world's warehouse docks; they are in :attr:`vans`.
    """

    def __init__(
        self,
        drones: int = 1,
        *,
        rovers: int = 0,
        clock: Clock | None = None,
        world: World | None = None,
        homes: Sequence[Home] | None = None,
        first_port: int = 14540,
        port_mode: PortMode | str = PortMode.SEQUENTIAL,
        host: str = "127.0.0.1",
        bind_host: str = "127.0.0.1",
        first_sysid: int = 1,
        params: Mapping[str, float] | None = None,
        signing_key: bytes | None = None,
        ready_delay: float = 2.0,
        stream_rate_scale: float = 1.0,
        tick: float = 0.02,
        components: Sequence[SimComponent] = (),
        vans: int = 0,
        mqtt_url: str | None = None,
        van_topic_prefix: str = "",
        battery_swap_s: float | None = None,
    ) -> None:
        if drones < 0 or rovers < 0 or vans < 0:
            raise ValueError("vehicle counts must not be negative")
        if signing_key is not None and len(signing_key) != 32:
            raise ValueError("a MAVLink signing key has 32 bytes")
        total = drones + rovers
        if first_sysid < 1 or first_sysid + total - 1 > MAX_SYSID:
            raise ValueError(
                f"{total} vehicles from system id {first_sysid} need ids up to "
                f"{first_sysid + total - 1}; MAVLink system ids are 1..{MAX_SYSID} per link "
                "(255 is the ground station). Run more vehicles as several SimFleets, each "
                "sending to its own port (port_mode='shared') with system ids from 1, and give "
                "the service one link per port (docs/sim.md, 'More than 254 vehicles')"
            )
        self.clock = clock or WallClock()
        self.world = world
        if homes is not None:
            if len(homes) < total:
                raise ValueError(f"{total} vehicles need {total} homes, got {len(homes)}")
            hs = list(homes[:total])
        elif world is not None:
            hs = homes_from_world(world, total)
        else:
            hs = default_homes(total)
        self.port_mode = PortMode(port_mode)
        self.first_port = first_port
        self.tick = tick
        self.vehicles: list[SimVehicle] = []
        for i in range(total):
            model = Model.MULTICOPTER if i < drones else Model.ROVER
            sysid = first_sysid + i
            cfg = VehicleConfig(
                sysid=sysid,
                home=hs[i],
                target=(host, target_port(self.port_mode, first_port, i)),
                model=model,
                bind=(bind_host, 0),
                params=dict(params or {}),
                signing_key=signing_key,
                ready_delay=ready_delay,
                stream_rate_scale=stream_rate_scale,
                name=f"sim-{'drone' if model is Model.MULTICOPTER else 'rover'}-{sysid}",
                battery_swap_s=battery_swap_s,
            )
            self.vehicles.append(SimVehicle(cfg, self.clock))
        self._components = list(components)
        self.vans: SimVanFleet | None = None
        """The simulated vans, when ``vans`` > 0."""
        if vans:
            if mqtt_url is None:
                raise ValueError("sim vans need the MQTT broker's URL (mqtt_url)")
            self.vans = SimVanFleet(
                mqtt_url, self.clock, vans, world=world, topic_prefix=van_topic_prefix
            )
            self._components.append(self.vans)
        self._stack: AsyncExitStack | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self.ticks = 0
        self.tick_cpu_s = 0.0

    # --- access -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.vehicles)

    def __getitem__(self, index: int) -> SimVehicle:
        return self.vehicles[index]

    def by_sysid(self, sysid: int) -> SimVehicle:
        for v in self.vehicles:
            if v.sysid == sysid:
                return v
        raise KeyError(sysid)

    @property
    def drones(self) -> list[SimVehicle]:
        return [v for v in self.vehicles if v.config.model is Model.MULTICOPTER]

    @property
    def rovers(self) -> list[SimVehicle]:
        return [v for v in self.vehicles if v.config.model is Model.ROVER]

    def period(self) -> float:
        """World seconds between two simulation steps."""
        speed = self.clock.speed
        if math.isinf(speed):
            return self.tick
        return max(self.tick, speed / MAX_REAL_TICK_HZ)

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> SimFleet:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            for v in self.vehicles:
                await v.start()
                stack.callback(v.close)
            for c in self._components:
                await stack.enter_async_context(c)
            tg = asyncio.TaskGroup()
            await stack.enter_async_context(tg)
            self._tg = tg
            self._loop_task = tg.create_task(self._run(), name="sim-loop")
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        log.info(
            "sim.fleet.started",
            vehicles=len(self.vehicles),
            port_mode=self.port_mode.value,
            first_port=self.first_port,
            speed=self.clock.speed,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        log.info("sim.fleet.stopped", vehicles=len(self.vehicles), ticks=self.ticks)

    async def _run(self) -> None:
        clock = self.clock
        period = self.period()
        last = clock.monotonic()
        while True:
            await clock.sleep(period)
            now = clock.monotonic()
            dt = now - last
            last = now
            if dt <= 0:
                continue
            t0 = time.process_time()
            for v in self.vehicles:
                try:
                    v.tick(now, dt)
                except Exception:
                    log.exception("sim.vehicle.tick_failed", vehicle=v.vehicle_id)
            self.tick_cpu_s += time.process_time() - t0
            self.ticks += 1


def load_world(path: str | Path) -> World:
    """Load a world file (``docs/world-format.md``) with the fleet's loader."""
    from fleet.worldfile import load_world as _load

    return _load(path)


async def run_sim(
    drones: int = 3,
    *,
    world: str | Path | World | None = None,
    speed: float = 1.0,
    rovers: int = 0,
    first_port: int = 14540,
    port_mode: PortMode | str = PortMode.SEQUENTIAL,
    host: str = "127.0.0.1",
    params: Mapping[str, float] | None = None,
    signing_key: bytes | None = None,
    clock: Clock | None = None,
    duration: float | None = None,
    on_ready: Callable[[SimFleet], Awaitable[None] | None] | None = None,
    vans: int = 0,
    mqtt_url: str | None = None,
    van_topic_prefix: str = "",
) -> None:
    """Run a sim fleet until cancelled (Ctrl-C) or for ``duration`` world seconds.

    ``world`` is a world file path or a loaded :class:`World`; its pads are the vehicles'
    homes. ``speed`` > 1 accelerates time (ignored when ``clock`` is given).
    """
    if isinstance(world, str | Path):
        world = load_world(world)
    clk = clock or (WallClock() if speed == 1.0 else AcceleratedClock(speed))
    async with SimFleet(
        drones,
        rovers=rovers,
        clock=clk,
        world=world,
        first_port=first_port,
        port_mode=port_mode,
        host=host,
        params=params,
        signing_key=signing_key,
        vans=vans,
        mqtt_url=mqtt_url,
        van_topic_prefix=van_topic_prefix,
    ) as fleet:
        for v in fleet.vehicles:
            log.info(
                "sim.vehicle.ready",
                vehicle=v.vehicle_id,
                sysid=v.sysid,
                sends_to=f"{v.target[0]}:{v.target[1]}",
                home=f"{v.config.home.lat:.6f},{v.config.home.lon:.6f}",
            )
        for van in fleet.vans.vans if fleet.vans is not None else ():
            log.info(
                "sim.van.ready",
                serial=van.serial_number,
                topics=van.topic("+"),
                node=van.agv.last_node_id,
            )
        if on_ready is not None:
            r = on_ready(fleet)
            if r is not None:
                await r
        if duration is None:
            await asyncio.Event().wait()
        else:
            await clk.sleep(duration)
