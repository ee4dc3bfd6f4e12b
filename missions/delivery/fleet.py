"""The delivery drones as the drone delivery kind sees them: which drones serve which pads,
their energy and payload figures, flight distances around no-fly zones, and whether a drone can
reach a community at all.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from fleet.airspace import path_length, router_for
from fleet.errors import PlanningError
from fleet.geo import distance_m
from fleet.registry import VehicleEntry
from fleet.speaker import SpeakerControl
from fleet.vehicle import Capability, LinkState, VehicleKind
from fleet.world import Pad
from missions.context import MissionContext
from missions.routing.drones import XY, DroneSpec, estimate

PAD_MATCH_M = 15.0
"""A drone is on a pad when its home position is within this distance of it."""
PAD_CACHE_SIZE = 4096
"""Home positions remembered with their pad (cleared when full)."""


class DroneFleet:
    """Queries over the live delivery drones of one mission context."""

    def __init__(self, ctx: MissionContext) -> None:
        self.ctx = ctx
        self._pad_at: dict[tuple[str | None, float, float], Pad | None] = {}
        """The pad at a drone's home (per warehouse filter and position): a drone's home stays put
        between rounds, and the mode rule asks for every load of every round, so matching it
        against every pad each time was the largest cost of a dispatch round (``bench.dispatch
        --profile``)."""
        self._unreachable: dict[tuple[Any, ...], str | None] = {}
        """:meth:`drone_unreachable` answers, by (world, warehouse, community, kg, spec)."""
        self._shortest: dict[tuple[Any, ...], float] = {}
        """The shortest flight from a warehouse's pads to a community's drop point, by
        (world, warehouse, community, airspace): :meth:`drone_unreachable` is asked for every
        load mass, and the sortie's energy grows with the distance whatever the mass, so the
        nearest pad is found once per community instead of once per mass."""

    def drone_spec(self, entry: VehicleEntry | None = None) -> DroneSpec:
        """The energy and payload figures of a delivery drone (settings; the vehicle's own
        payload when it reports one)."""
        cfg = self.ctx.settings.drone_missions
        payload = entry.info.payload_kg if entry is not None and entry.info.payload_kg else None
        return DroneSpec(
            payload_kg=payload or cfg.payload_kg,
            cruise_alt_m=cfg.cruise_alt_m,
            drop_alt_m=cfg.drop_alt_m,
            drop_hold_s=cfg.drop_hold_s,
            reserve_fraction=cfg.reserve_fraction,
        )

    def flight_distance(self, a: XY, b: XY) -> float:
        """Flight path length between two local-frame points, around no-fly zones (metres;
        ``inf`` when no path exists)."""
        return _flight_distance(self.ctx.world, *self._airspace(), a, b)

    def _airspace(self) -> tuple[float, float]:
        cfg = self.ctx.settings.drone_missions
        return cfg.cruise_alt_m, cfg.no_fly_margin_m

    def drone_unreachable(self, warehouse_id: str, community_id: str, kg: float) -> str | None:
        """Why no drone from ``warehouse_id``'s pads can fly ``kg`` to the community's drop
        point and back with the reserve on a full battery (None when one can).

        The answer depends only on the world, the settings and these three values, and the
        mode rule asks it for every load of every round (each time over every pad), so it is
        remembered per (world, warehouse, community, load, drone figures)."""
        key = (self.ctx.world, warehouse_id, community_id, kg, self.drone_spec())
        if key in self._unreachable:
            return self._unreachable[key]
        if len(self._unreachable) >= PAD_CACHE_SIZE:
            self._unreachable.clear()
        why = self._unreachable[key] = self._drone_unreachable(warehouse_id, community_id, kg)
        return why

    def _drone_unreachable(self, warehouse_id: str, community_id: str, kg: float) -> str | None:
        world = self.ctx.world
        pads = world.pads_of(warehouse_id)
        if not pads:
            return f"warehouse {warehouse_id} has no drone pad"
        spec = self.drone_spec()
        key = (world, warehouse_id, community_id, self._airspace())
        d = self._shortest.get(key)
        if d is None:
            drop = world.xy(world.community(community_id).drop_point)
            d = min(self.flight_distance(world.xy(pad.location), drop) for pad in pads)
            if len(self._shortest) >= PAD_CACHE_SIZE:
                self._shortest.clear()
            self._shortest[key] = d
        # the energy of a sortie grows with its distance (fleet.energy), so the nearest pad's
        # is the least of all pads'
        best = estimate(spec, d, d, kg).energy if not math.isinf(d) else math.inf
        if best <= 1.0 - spec.reserve_fraction:
            return None
        if math.isinf(best):
            return f"no flight path from {warehouse_id}'s pads to the drop point of {community_id}"
        return (
            f"the drop point of {community_id} is out of drone range: the sortie needs "
            f"{best:.0%} of a full battery plus the {spec.reserve_fraction:.0%} reserve"
        )

    def delivery_drones(self, warehouse_id: str | None) -> list[tuple[VehicleEntry, Pad]]:
        """Delivery drones online at a pad of ``warehouse_id`` (any warehouse when None),
        busy or not, with their pad. Drones carrying a loudspeaker payload are not delivery
        drones: their payload bay holds the speaker."""
        world = self.ctx.world
        pads = [
            p
            for p in world.pads
            if p.warehouse_id is not None
            and (warehouse_id is None or p.warehouse_id == warehouse_id)
        ]
        out = []
        speaker_hosts = {
            e.control.host_vehicle_id
            for e in self.ctx.registry
            # the kind first: isinstance on a runtime Protocol inspects every attribute, and
            # this runs for every load of every dispatch round
            if e.info.kind == VehicleKind.PAYLOAD and isinstance(e.control, SpeakerControl)
        }
        for entry in self.ctx.registry:
            info, st = entry.info, entry.status
            if info.kind != VehicleKind.DRONE or Capability.DELIVERY not in info.capabilities:
                continue
            if info.id in speaker_hosts:
                continue  # its payload bay holds a loudspeaker, not a gripper load
            if info.id in self.ctx.out_of_service:
                continue  # an operator took it out of service
            where = st.home or st.position
            if where is None:
                continue
            key = (warehouse_id, where.lat, where.lon)
            if key in self._pad_at:
                pad = self._pad_at[key]
            else:
                pad = min(pads, key=lambda p: distance_m(p.location, where), default=None)
                if pad is not None and distance_m(pad.location, where) > PAD_MATCH_M:
                    pad = None
                if len(self._pad_at) >= PAD_CACHE_SIZE:
                    self._pad_at.clear()
                self._pad_at[key] = pad
            if pad is None:
                continue
            out.append((entry, pad))
        return out

    def online_at(self, warehouse_id: str | None) -> bool:
        """Whether a delivery drone is online at a pad of ``warehouse_id``."""
        return any(e.status.link == LinkState.ONLINE for e, _ in self.delivery_drones(warehouse_id))


@lru_cache(maxsize=4096)
def _flight_distance(world: Any, alt_m: float, margin_m: float, a: XY, b: XY) -> float:
    try:
        return path_length(router_for(world, alt_m, margin_m).path(a, b))
    except PlanningError:
        return math.inf
