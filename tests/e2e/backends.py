"""The drones a shared scenario flies, simulated or real PX4 SITL, behind one interface.

A scenario body (:mod:`tests.e2e.scenarios`) talks to the service over HTTP and needs from the
drones only what the service needs: UDP ports to listen on, the time acceleration its clock
must share with them, how long they take to become ready, a liveness check, and, for a
loudspeaker payload, where each drone is. :func:`sim_drones` gives that for sim drones (with
their ground truth in :attr:`Drones.sim`); ``tests/sitl/conftest.py`` gives it for PX4 SITL
instances. The same test body then runs on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.clock import AcceleratedClock
from fleet.settings import Settings
from fleet.world import World
from sim.runner import SimFleet
from sim.speaker.payload import PositionSource, follow
from tests.service import service_settings
from tests.support import free_udp_ports

Check = Callable[[], None]
"""Called while waiting; raises to fail fast (e.g. a PX4 process died)."""

PositionFeed = Callable[[int], AbstractAsyncContextManager[PositionSource]]
"""Drone index -> a context manager giving that drone's position as its flight controller
reports it (what a payload riding on it reads)."""

SIM_READY_TIMEOUT_S = 30.0
"""Real seconds for sim drones to become ready."""


@dataclass
class Drones:
    """Drones a scenario flies, as the service sees them."""

    backend: str
    """``sim`` or ``px4``."""
    ports: list[int]
    """UDP ports their API links send to (one ``mavlink+udpin`` link each)."""
    clock: AcceleratedClock
    """The clock the service shares with them (its speed is theirs)."""
    ready_timeout: float
    """Real seconds they may take to become ready to fly."""
    check: Check | None = None
    sim: SimFleet | None = None
    """The simulator, for ground truth (None on PX4)."""
    position_feed: PositionFeed | None = None
    system_ids: list[int] = field(default_factory=list)

    @property
    def speed(self) -> float:
        return self.clock.speed

    def vehicle_id(self, index: int) -> str:
        """The fleet id the MAVLink bridge gives drone ``index``."""
        return f"drone-{self.system_ids[index]}"

    def settings(self, tmp_path: Path, **overrides: Any) -> Settings:
        """Service settings listening to these drones, on their clock."""
        mavlink = {"links": [f"mavlink+udpin://127.0.0.1:{p}" for p in self.ports]}
        mavlink.update(overrides.pop("mavlink", {}))
        return service_settings(
            tmp_path,
            clock={"mode": "accelerated", "speed": self.speed},
            mavlink=mavlink,
            **overrides,
        )


def _follow_sim(fleet: SimFleet) -> PositionFeed:
    def feed(index: int) -> AbstractAsyncContextManager[PositionSource]:
        return nullcontext(follow(fleet[index]))

    return feed


@asynccontextmanager
async def sim_drones(
    count: int,
    world: World,
    speed: float,
    *,
    params: Mapping[str, float] | None = None,
    homes: Sequence[Any] | None = None,
    **sim: Any,
) -> AsyncIterator[Drones]:
    """``count`` sim drones on the world's pads, sending to free UDP ports, at ``speed``
    (``sim``: more :class:`sim.runner.SimFleet` options)."""
    clock = AcceleratedClock(speed)
    first = free_udp_ports(count)
    async with SimFleet(
        count, world=world, homes=homes, clock=clock, first_port=first, params=params, **sim
    ) as fleet:
        yield Drones(
            backend="sim",
            ports=list(range(first, first + count)),
            clock=clock,
            ready_timeout=SIM_READY_TIMEOUT_S,
            sim=fleet,
            position_feed=_follow_sim(fleet),
            system_ids=[v.sysid for v in fleet.vehicles],
        )
