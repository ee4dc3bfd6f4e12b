"""Whether vans can take delivery work now: the question the dispatcher's mode choice asks.

:func:`van_service_available` is the one entry point other mission code calls (the shuttle
service installs it as the dispatcher's ``van_service``). It is a coroutine: ``if await
van_service_available(ctx): ...``.

The mode choice asks it for every request in every round, so the shuttle plans and the
vehicles taken out of service are read from the store at most every :data:`CACHE_S` world
seconds (and at least half a real second apart); the shuttle service forgets the snapshot when
an operator changes a plan. Another service process on the same database sees a change within
that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from fleet.store.repository import Store
from fleet.vehicle import LinkState, VehicleKind
from missions.context import MissionContext
from missions.shuttle.plans import PlanSpec, Shift
from missions.shuttle.records import plan_specs
from missions.shuttle.timing import world_floor

CACHE_S = 2.0
"""World seconds a snapshot of the plans is used before it is read again."""
CACHE_REAL_FLOOR_S = 0.5
"""...and at least this many real seconds."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    specs: tuple[PlanSpec, ...]
    out_of_service: frozenset[str]
    read_at: float
    """Clock ``monotonic()``."""


_SNAPSHOTS: WeakKeyDictionary[Store, _Snapshot] = WeakKeyDictionary()


def forget(store: Store) -> None:
    """Plans or vehicles changed: read them again at the next question."""
    _SNAPSHOTS.pop(store, None)


async def _snapshot(ctx: MissionContext) -> _Snapshot:
    clock = ctx.clock
    snap = _SNAPSHOTS.get(ctx.store)
    if snap is None or clock.monotonic() - snap.read_at > world_floor(
        clock.speed, CACHE_S, CACHE_REAL_FLOOR_S
    ):
        snap = _Snapshot(
            tuple(await plan_specs(ctx.store)),
            frozenset(v.id for v in await ctx.store.vehicles() if not v.in_service),
            clock.monotonic(),
        )
        _SNAPSHOTS[ctx.store] = snap
    return snap


async def active_shifts(
    ctx: MissionContext, at: datetime | None = None
) -> list[tuple[PlanSpec, Shift]]:
    """Plans whose shift is under way now (or at ``at``), with that shift."""
    now = at or ctx.clock.now()
    out = []
    for spec in (await _snapshot(ctx)).specs:
        shift = spec.shift_at(now)
        if shift is not None:
            out.append((spec, shift))
    return out


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
    snap = await _snapshot(ctx)
    now = ctx.clock.now()
    for spec in snap.specs:
        if community_id is not None and community_id not in spec.community_ids:
            continue
        if warehouse_id is not None and spec.warehouse_id != warehouse_id:
            continue
        if spec.shift_at(now) is None:
            continue
        for vid in spec.vehicle_ids:
            entry = ctx.registry.find(vid)
            if (
                entry is not None
                and entry.info.kind == VehicleKind.VAN
                and entry.status.link == LinkState.ONLINE
                and vid not in snap.out_of_service
            ):
                return True
    return False
