"""What mission services share: store, world, live registry, bus, clock, journal, settings, and
the airspace reservations of the drone flights (:mod:`fleet.deconfliction`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet.clock import Clock
from fleet.deconfliction import AirspaceBook, Separation
from fleet.events import EventBus
from fleet.registry import VehicleRegistry
from fleet.settings import SafetySettings, Settings
from fleet.store.repository import Store
from fleet.world import World
from missions.journal import Journal


def separation(safety: SafetySettings) -> Separation:
    """The deconfliction's separation under the ``safety`` settings."""
    return Separation(
        horizontal_m=safety.separation_h_m,
        vertical_m=safety.separation_v_m,
        margin_s=safety.reservation_margin_s,
        slack=safety.reservation_slack,
        start_slack_s=safety.start_slack_s,
        horizontal_error_m=safety.track_error_m,
        vertical_error_m=safety.altitude_error_m,
    )


@dataclass(frozen=True)
class MissionContext:
    """Dependencies of the dispatcher, the executor and the monitors."""

    store: Store
    world: World
    registry: VehicleRegistry
    bus: EventBus
    clock: Clock
    journal: Journal
    settings: Settings
    airspace: AirspaceBook = field(init=False)
    """Every drone flight's reserved 4D volume (one book per service process)."""
    out_of_service: set[str] = field(default_factory=set)
    """Vehicles an operator took out of service (``vehicle.in_service`` false in the record,
    read at start and kept current by :meth:`MissionService.set_in_service`): the planners
    offer them no work."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "airspace", AirspaceBook(separation(self.settings.safety)))
