"""The one seam mission kinds plug in through.

A mission kind (a drone delivery, a loudspeaker broadcast, a van shuttle) is a package under
``missions/`` that owns its planner, its run and its rules, and exposes one :class:`KindPlugin`.
:class:`missions.service.MissionService` installs the plugins it is given, in order (the order
of their planners in every dispatch round), through :meth:`KindPlugin.install` with itself as
the :class:`MissionHost`; a plugin registers its run (``host.register_run``), its planner
(``host.dispatcher.add_planner``) and whatever else it offers the others through the dispatcher
(``add_serve_check``, ``set_carrier``, ``mode_rule``). Neither the service nor the dispatcher
names a kind, and kinds never import each other (an import-linter contract keeps them apart);
the composition root lists the kinds (:mod:`missions.builtin`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from fleet.store.tables import Mission
from missions.context import MissionContext
from missions.run import MissionRun

if TYPE_CHECKING:
    from missions.dispatcher import Dispatcher


class MissionHost(Protocol):
    """What a mission kind plugs into (:class:`missions.service.MissionService`)."""

    ctx: MissionContext
    runs: dict[str, MissionRun]

    @property
    def dispatcher(self) -> Dispatcher: ...

    def is_busy(self, vehicle_id: str) -> bool:
        """Whether the vehicle runs a mission now."""
        ...

    def spawn(self, mission: Mission) -> None:
        """Start running a planned mission."""
        ...

    def register_run(self, run: type[MissionRun]) -> None:
        """Execute missions of ``run.kind`` with ``run``."""
        ...

    def mission_of(self, vehicle_id: str) -> Mission | None:
        """The mission a vehicle runs, if any."""
        ...


class KindPlugin(Protocol):
    """One mission kind, as the service installs it."""

    name: str
    """The kind's name (``drone_delivery``, ``drone_broadcast``, ``van_shuttle``)."""

    def install(self, host: MissionHost) -> object:
        """Register the kind with ``host``; returns the kind's own service object (what the
        API reaches through ``MissionService.kind(name)``), or None."""
        ...
