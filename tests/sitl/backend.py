"""PX4 SITL instances as :class:`tests.e2e.backends.Drones`, for the shared scenario bodies.

The same test body runs on sim drones (:func:`tests.e2e.backends.sim_drones`) and on PX4
(:func:`px4_drones`): the service listens on the instances' API ports on an AcceleratedClock at
PX4's ``PX4_SIM_SPEED_FACTOR``, and a payload riding on instance i reads PX4's own position from
the instance's payload link (UDP 14030+i,
:class:`sim.speaker.mavlink_position.MavlinkPositionFeed`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fleet import energy
from fleet.clock import AcceleratedClock
from fleet.world import World
from sim.runner import homes_from_world
from sim.speaker.mavlink_position import MavlinkPositionFeed, payload_port
from sim.speaker.payload import PositionSource
from tests.e2e.backends import Drones
from tests.sitl.px4 import Px4Build, Px4Instance, Px4Sitl

BATTERY_AT_MODEL_RATE: dict[str, float] = {
    "SIM_BAT_DRAIN": round(60.0 / energy.LOADED_PER_MIN),
    "SIM_BAT_MIN_PCT": 5.0,
}
"""PX4 SITL's battery simulator drains linearly while armed (by 1/SIM_BAT_DRAIN per second,
down to SIM_BAT_MIN_PCT, full again when disarmed; default 60 s down to 50 %). Set to the energy
model's loaded rate (:data:`fleet.energy.LOADED_PER_MIN`, 3.5 %/min: 1714 s from full to empty),
PX4's reported battery follows what the service predicts, so the in-flight energy check and the
vehicle's own battery failsafes see realistic figures (``docs/safety.md``, calibration)."""

READY_TIMEOUT_S = 120.0
"""Real seconds for PX4 to boot, get a position and pass its checks (about 5 s when the machine
is idle; several instances starting together on two cores take longer)."""


def sitl_for(
    build: Px4Build,
    count: int,
    world: World,
    speed: float,
    workdir: Path,
    params: Mapping[str, Any] | None = None,
    first_instance: int = 0,
) -> Px4Sitl:
    """``count`` instances standing on the world's pads (instance i on pad i mod len(pads))."""
    homes = homes_from_world(world, count, start=first_instance)
    instances = [
        Px4Instance(
            first_instance + i,
            (h.lat, h.lon, h.alt),
            speed=speed,
            params={**BATTERY_AT_MODEL_RATE, **dict(params or {})},
        )
        for i, h in enumerate(homes)
    ]
    return Px4Sitl(
        build,
        instances,
        workdir,
        extra_ports={
            **{i.api_port: f"API link of PX4 instance {i.index}" for i in instances},
            **{payload_port(i.index): f"payload link of PX4 instance {i.index}" for i in instances},
        },
    )


@asynccontextmanager
async def px4_drones(sitl: Px4Sitl, speed: float) -> AsyncIterator[Drones]:
    """Start ``sitl`` and present it as :class:`Drones`; stop it on exit."""
    clock = AcceleratedClock(speed)
    instances = sitl.instances

    def feed(index: int) -> AbstractAsyncContextManager[PositionSource]:
        inst = instances[index]
        return MavlinkPositionFeed(payload_port(inst.index), inst.system_id, clock)

    async with sitl:
        yield Drones(
            backend="px4",
            ports=sitl.api_ports(),
            clock=clock,
            ready_timeout=READY_TIMEOUT_S,
            check=sitl.raise_if_exited,
            position_feed=feed,
            system_ids=[i.system_id for i in instances],
        )
