"""Whether vans can take delivery work now: the question the dispatcher's mode choice asks.

:func:`van_service_available` is the one entry point other mission code calls. It is a
coroutine (it reads the shuttle plans from the store, so that several service processes on one
database agree): ``if await van_service_available(ctx): ...``.
"""

from __future__ import annotations

from datetime import datetime

from fleet.vehicle import LinkState, VehicleKind
from missions.context import MissionContext
from missions.shuttle.plans import PlanSpec, Shift
from missions.shuttle.records import plan_specs


async def active_shifts(
    ctx: MissionContext, at: datetime | None = None
) -> list[tuple[PlanSpec, Shift]]:
    """Plans whose shift is under way now (or at ``at``), with that shift."""
    now = at or ctx.clock.now()
    out = []
    for spec in await plan_specs(ctx.store):
        shift = spec.shift_at(now)
        if shift is not None:
            out.append((spec, shift))
    return out


async def out_of_service(ctx: MissionContext) -> set[str]:
    """Vehicles an operator took out of service."""
    return {v.id for v in await ctx.store.vehicles() if not v.in_service}


async def van_service_available(
    ctx: MissionContext,
    *,
    community_id: str | None = None,
    warehouse_id: str | None = None,
) -> bool:
    """True when at least one van can take work now: it is in an enabled shuttle plan whose
    shift is under way, online, a van, and not taken out of service. ``community_id`` and
    ``warehouse_id`` narrow it to plans serving that community from that warehouse.

    Await it: ``if await van_service_available(ctx, community_id=c): ...``.
    """
    shifts = await active_shifts(ctx)
    if not shifts:
        return False
    off = await out_of_service(ctx)
    for spec, _ in shifts:
        if community_id is not None and community_id not in spec.community_ids:
            continue
        if warehouse_id is not None and spec.warehouse_id != warehouse_id:
            continue
        for vid in spec.vehicle_ids:
            entry = ctx.registry.find(vid)
            if (
                entry is not None
                and entry.info.kind == VehicleKind.VAN
                and entry.status.link == LinkState.ONLINE
                and vid not in off
            ):
                return True
    return False
