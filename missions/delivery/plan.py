"""Drone delivery missions: what fits a drone, and the flight plan of one sortie.

A sortie takes off from a warehouse pad, cruises at ``cruise_alt_m`` to the community's drop
point (around no-fly zones), descends to ``drop_alt_m``, opens the gripper, holds
``drop_hold_s`` (PX4 does not block on a mission DO_GRIPPER, so the hold waypoint after it gives
the payload time to fall clear), climbs back, flies the reverse path and lands on its pad.
The plan is stored with the mission, with the indices of the items that mark each phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet import energy as energy_model
from fleet.airspace import path_length_m, route_around
from fleet.drone import (
    FlightItem,
    FlightPlan,
    Gripper,
    GripperAction,
    Land,
    Takeoff,
    Waypoint,
)
from fleet.errors import PlanningError
from fleet.geo import LatLon
from fleet.settings import DroneMissionSettings
from fleet.store.tables import Sku
from fleet.world import Community, Pad, World
from missions.flight_json import item_from_json, item_to_json

CRUISE_SPEED_MPS = energy_model.CRUISE_SPEED_MPS
"""Horizontal cruise speed assumed for estimates (:mod:`fleet.energy`, PX4 MPC_XY_CRUISE)."""
CLIMB_SPEED_MPS = energy_model.CLIMB_SPEED_MPS
"""Vertical speed assumed for climbs (:mod:`fleet.energy`)."""
DESCENT_SPEED_MPS = energy_model.DESCENT_SPEED_MPS
"""Vertical speed assumed for descents and landing (:mod:`fleet.energy`)."""
HOVER_POWER_FRACTION_PER_MIN = energy_model.LOADED_PER_MIN
"""Battery fraction a loaded delivery multicopter uses per minute of flight (≈ 28 min endurance;
:data:`fleet.energy.LOADED_PER_MIN`)."""


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """A planned sortie."""

    plan: FlightPlan
    pad_id: str
    warehouse_id: str
    """The pad's warehouse: the load comes from its stock."""
    community_id: str
    drop: LatLon
    gripper_index: int
    """Index of the gripper item: passing it means the load was released."""
    drop_index: int
    """Index of the descent waypoint above the drop point."""
    return_index: int
    """First item of the way back."""
    land_index: int
    distance_m: float
    duration_s: float
    energy_fraction: float
    """Estimated battery fraction the sortie uses."""


def load_mass_kg(lines: list[tuple[Sku, int]]) -> float:
    """Mass of a load given as (SKU, units) lines."""
    return sum(sku.unit_kg * qty for sku, qty in lines)


def drone_can_carry(lines: list[tuple[Sku, int]], payload_kg: float) -> tuple[bool, str]:
    """Whether a drone with ``payload_kg`` may carry the load, and why not."""
    banned = [sku.id for sku, _ in lines if not sku.drone_eligible]
    if banned:
        return False, f"not allowed on drones: {', '.join(banned)}"
    mass = load_mass_kg(lines)
    if mass > payload_kg:
        return False, f"load {mass:.2f} kg exceeds the drone payload of {payload_kg:.2f} kg"
    return True, f"load {mass:.2f} kg within the drone payload of {payload_kg:.2f} kg"


def plan_delivery(
    world: World, pad: Pad, community: Community, cfg: DroneMissionSettings
) -> DeliveryPlan:
    """The flight plan from ``pad`` to ``community``'s drop point and back."""
    drop = community.drop_point
    if pad.warehouse_id is None:
        raise PlanningError(f"pad {pad.id} belongs to no warehouse: nothing to load there")
    if world.no_fly_at(drop, cfg.drop_alt_m) is not None:
        raise PlanningError(f"the drop point of {community.id} is inside a no-fly zone")
    if cfg.cruise_alt_m > world.max_altitude_m:
        raise PlanningError(
            f"cruise altitude {cfg.cruise_alt_m} m exceeds the world's ceiling "
            f"{world.max_altitude_m} m"
        )
    out = route_around(
        world, pad.location, drop, alt_m=cfg.cruise_alt_m, margin_m=cfg.no_fly_margin_m
    )
    back = list(reversed(out))
    alt, low = cfg.cruise_alt_m, cfg.drop_alt_m
    items: list[FlightItem] = [Takeoff(rel_alt=alt, lat=pad.location.lat, lon=pad.location.lon)]
    items += [Waypoint(p.lat, p.lon, alt) for p in out[1:]]  # ends above the drop point
    drop_index = len(items)
    items.append(Waypoint(drop.lat, drop.lon, low, acceptance_m=1.0))
    gripper_index = len(items)
    items.append(Gripper(GripperAction.RELEASE))
    items.append(Waypoint(drop.lat, drop.lon, low, hold_s=cfg.drop_hold_s, acceptance_m=1.0))
    return_index = len(items)
    items.append(Waypoint(drop.lat, drop.lon, alt))
    items += [Waypoint(p.lat, p.lon, alt) for p in back[1:]]  # ends above the pad
    land_index = len(items)
    items.append(Land(pad.location.lat, pad.location.lon))

    horizontal = 2 * path_length_m(world, out)
    vertical_up = alt + (alt - low)
    vertical_down = (alt - low) + alt
    duration = (
        horizontal / CRUISE_SPEED_MPS
        + vertical_up / CLIMB_SPEED_MPS
        + vertical_down / DESCENT_SPEED_MPS
        + cfg.drop_hold_s
        + 10.0
    )
    energy = duration / 60.0 * HOVER_POWER_FRACTION_PER_MIN
    return DeliveryPlan(
        plan=FlightPlan(tuple(items)),
        pad_id=pad.id,
        warehouse_id=pad.warehouse_id,
        community_id=community.id,
        drop=drop,
        gripper_index=gripper_index,
        drop_index=drop_index,
        return_index=return_index,
        land_index=land_index,
        distance_m=horizontal,
        duration_s=duration,
        energy_fraction=energy,
    )


def check_energy(plan: DeliveryPlan, battery_fraction: float | None, reserve: float) -> None:
    """Raise ``PlanningError`` unless the battery covers the sortie plus the reserve."""
    if battery_fraction is None:
        raise PlanningError("the drone has not reported its battery")
    need = plan.energy_fraction + reserve
    if battery_fraction < need:
        raise PlanningError(
            f"battery {battery_fraction:.0%} is below the {need:.0%} the sortie needs "
            f"({plan.energy_fraction:.0%} + {reserve:.0%} reserve)",
            battery=battery_fraction,
            needed=need,
        )


# --- plan (de)serialisation for the mission record ------------------------------------------


def plan_to_json(dp: DeliveryPlan) -> dict[str, Any]:
    """The plan as stored in ``Mission.plan``."""
    return {
        "type": "drone_delivery",
        "pad_id": dp.pad_id,
        "warehouse_id": dp.warehouse_id,
        "community_id": dp.community_id,
        "drop": [dp.drop.lat, dp.drop.lon],
        "gripper_index": dp.gripper_index,
        "drop_index": dp.drop_index,
        "return_index": dp.return_index,
        "land_index": dp.land_index,
        "distance_m": round(dp.distance_m, 1),
        "duration_s": round(dp.duration_s, 1),
        "energy_fraction": round(dp.energy_fraction, 4),
        "items": [item_to_json(it) for it in dp.plan.items],
    }


def plan_from_json(data: dict[str, Any]) -> DeliveryPlan:
    return DeliveryPlan(
        plan=FlightPlan(tuple(item_from_json(it) for it in data["items"])),
        pad_id=data["pad_id"],
        warehouse_id=data["warehouse_id"],
        community_id=data["community_id"],
        drop=LatLon(*data["drop"]),
        gripper_index=data["gripper_index"],
        drop_index=data["drop_index"],
        return_index=data["return_index"],
        land_index=data["land_index"],
        distance_m=data["distance_m"],
        duration_s=data["duration_s"],
        energy_fraction=data["energy_fraction"],
    )
