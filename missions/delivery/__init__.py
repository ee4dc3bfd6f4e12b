"""Drone deliveries: urgent, light loads flown from a warehouse pad to a community's drop point.

* :mod:`.mode`: the mode choice (does a load fly, or wait for a van?), installed as the
  dispatcher's ``mode_rule`` that every delivery planner follows;
* :mod:`.fleet`: the delivery drones as this kind sees them (pads, energy, reach);
* :mod:`.plan`: the flight plan of one sortie (take-off, legs around no-fly zones, drop, return);
* :mod:`.planner`: turns loads the mode choice sends to drones into missions;
* :mod:`.run`: drives one drone through its sortie and books the release and the landing.

:data:`KIND` is what the service installs (:mod:`missions.kinds`).
"""

from __future__ import annotations

from missions.delivery.fleet import DroneFleet
from missions.delivery.mode import mode_rule
from missions.delivery.planner import DroneDeliveryPlanner
from missions.delivery.run import DroneDeliveryRun
from missions.kinds import MissionHost
from missions.states import MissionKind


class DroneDeliveryKind:
    """The drone delivery kind (see the package docstring)."""

    name = MissionKind.DRONE_DELIVERY.value

    def install(self, host: MissionHost) -> DroneFleet:
        dispatcher = host.dispatcher
        drones = DroneFleet(host.ctx)
        dispatcher.add_planner(
            DroneDeliveryPlanner(
                host.ctx,
                dispatcher,
                busy=host.is_busy,
                start_mission=host.spawn,
                mission_of=host.mission_of,
            )
        )
        host.register_run(DroneDeliveryRun)

        async def drones_serve(warehouse_id: str, community_id: str, flyable: bool) -> bool:
            del community_id
            return flyable and drones.online_at(warehouse_id)

        async def drones_available(
            ctx: object, *, community_id: str, warehouse_id: str | None
        ) -> bool:
            del ctx, community_id
            return drones.online_at(warehouse_id)

        dispatcher.add_serve_check(drones_serve)
        dispatcher.set_carrier("drone", drones_available)
        dispatcher.mode_rule = mode_rule(host.ctx, dispatcher, drones)
        return drones


KIND = DroneDeliveryKind()
"""The plugin the service installs."""

__all__ = ["KIND", "DroneDeliveryKind", "DroneDeliveryPlanner", "DroneDeliveryRun", "DroneFleet"]
