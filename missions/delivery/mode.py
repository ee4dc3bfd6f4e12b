"""The mode choice: does a delivery load fly by drone or wait for a van?

One function, :func:`choose_mode`, used by every delivery planner (drones plan the loads it
sends to drones, vans the loads it sends to vans; drones plan first in each round). The rule,
for the unassigned allocated lines of one request (``missions.open_work``):

1. A load with a SKU that may not fly (``Sku.drone_eligible``), or heavier than a drone's
   payload, **waits for a van**.
2. A load no drone can carry to the community and back with the battery reserve, even on a
   full battery, **waits for a van**.
3. A load of an **urgent medical** or **vulnerable residents** request **flies** (it waits for a
   free drone if none is free now), unless no delivery drone serves its warehouse while a van
   does: then it goes by van.
4. Any other load **waits for a van** while a van can take work (a van online, within a shuttle
   plan's hours when plans exist); when no van can, it **flies**.

Every choice comes with its reason, which the dispatcher records on the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleet.store.rows import Record
from fleet.store.tables import Sku
from missions.modes import Mode, ModeChoice
from missions.priorities import class_label
from missions.states import Priority

if TYPE_CHECKING:
    from missions.context import MissionContext
    from missions.delivery.fleet import DroneFleet
    from missions.dispatcher import Dispatcher, ModeRule
    from missions.open_work import Lines

DRONE_CLASSES: frozenset[Priority] = frozenset({Priority.URGENT_MEDICAL, Priority.VULNERABLE})
"""Priority classes whose light loads fly even while vans run."""


def load_kg(lines: list[tuple[Sku, int]]) -> float:
    """Mass of a load counted in units (what a drone's gripper holds)."""
    return sum(sku.unit_kg * qty for sku, qty in lines)


def choose_mode(
    lines: list[tuple[Sku, int]],
    priority: Priority,
    *,
    payload_kg: float,
    van_available: bool,
    drones_available: bool = True,
    unreachable: str | None = None,
) -> ModeChoice:
    """The mode of a load (see the module's rule).

    ``van_available``: a van can take work now for this community; ``drones_available``: a
    delivery drone serves the load's warehouse (online at one of its pads, busy or not);
    ``unreachable``: why no drone can fly to the community and back on a full battery with
    the reserve (``None`` when one can).
    """
    banned = sorted(sku.id for sku, _ in lines if not sku.drone_eligible)
    if banned:
        return ModeChoice(Mode.VAN, f"waits for a van: {', '.join(banned)} may not fly")
    kg = load_kg(lines)
    if kg > payload_kg + 1e-9:
        return ModeChoice(
            Mode.VAN,
            f"waits for a van: the load of {kg:.2f} kg exceeds the drone payload of "
            f"{payload_kg:.2f} kg",
        )
    if unreachable:
        return ModeChoice(Mode.VAN, f"waits for a van: {unreachable}")
    light = f"{kg:.2f} kg within the {payload_kg:.2f} kg drone payload"
    label = class_label(priority)
    if priority in DRONE_CLASSES:
        if not drones_available and van_available:
            return ModeChoice(
                Mode.VAN,
                f"{label} and light ({light}), but no delivery drone serves its warehouse "
                "while a van does: goes by van",
            )
        return ModeChoice(Mode.DRONE, f"{label} and light ({light}): flies by drone")
    if van_available:
        return ModeChoice(
            Mode.VAN, f"waits for a van: {label} loads go by van while vans run ({light})"
        )
    return ModeChoice(Mode.DRONE, f"{label}, light ({light}) and no van can take it now: flies")


def mode_rule(ctx: MissionContext, dispatcher: Dispatcher, drones: DroneFleet) -> ModeRule:
    """The dispatcher's mode rule: :func:`choose_mode` with the live fleet (vans from the van
    carrier, drones from ``drones``)."""

    async def rule(rec: Record, lines: Lines, drones_available: bool | None) -> ModeChoice:
        req = rec.request
        warehouse_id = req.warehouse_id
        community_id = req.community_id
        # the same for every request of a community in a round: asked once per round
        # (Dispatcher.round_fact), not once per request
        van = await dispatcher.round_fact_async(
            ("mode:van", community_id, warehouse_id),
            lambda: dispatcher.carrier_available(
                "van", community_id=community_id, warehouse_id=warehouse_id
            ),
        )
        if drones_available is None:
            drones_available = dispatcher.round_fact(
                ("mode:drones", warehouse_id), lambda: drones.online_at(warehouse_id)
            )
        unreachable = (
            drones.drone_unreachable(warehouse_id, req.community_id, load_kg(lines))
            if warehouse_id is not None
            else None
        )
        return choose_mode(
            lines,
            Priority(req.priority),
            payload_kg=ctx.settings.drone_missions.payload_kg,
            van_available=van,
            drones_available=drones_available,
            unreachable=unreachable,
        )

    return rule
