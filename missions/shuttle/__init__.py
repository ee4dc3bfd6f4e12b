"""Van shuttles: operators' shuttle plans, the van planner that fills each trip from pending
delivery work, and the run that drives a van through its trip (see ``docs/shuttles.md``).

:data:`KIND` is what the service installs (:mod:`missions.kinds`): the run, the van planner, the
``van`` carrier and the vans' serve check (both answered with the shuttle plans' hours by
:func:`van_service_available`). Its installed object is the :class:`ShuttleService` the API
uses for shuttle plans.
"""

from __future__ import annotations

from missions.kinds import MissionHost
from missions.shuttle.availability import van_service_available
from missions.shuttle.service import ShuttleService
from missions.states import MissionKind


class ShuttleKind:
    """The van shuttle kind."""

    name = MissionKind.VAN_SHUTTLE.value

    def install(self, host: MissionHost) -> ShuttleService:
        return ShuttleService.install(host)


KIND = ShuttleKind()
"""The plugin the service installs."""

__all__ = ["KIND", "ShuttleKind", "ShuttleService", "van_service_available"]
