"""What mission services share: store, world, live registry, bus, clock, journal, settings."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.clock import Clock
from fleet.events import EventBus
from fleet.registry import VehicleRegistry
from fleet.settings import Settings
from fleet.store.repository import Store
from fleet.world import World
from missions.journal import Journal


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
