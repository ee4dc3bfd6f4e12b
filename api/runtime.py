"""The composition root's runtime: builds every long-lived part of the service from settings.

``open_runtime(settings)`` is the one place that wires the fleet core, the store, the vehicle
links (every bridge's URL schemes are registered here, explicitly: importing a bridge
registers nothing) and the mission services; the FastAPI lifespan and the CLI
both use it. Leaving the context stops everything in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from firmware_bridges.mavlink.link import MavlinkLink
from firmware_bridges.mavlink.link import register as register_mavlink
from firmware_bridges.speaker.link import SpeakerLink
from firmware_bridges.speaker.link import register as register_speaker
from firmware_bridges.vda5050.link import Vda5050Link
from firmware_bridges.vda5050.link import register as register_vda5050
from fleet.clock import Clock, make_clock
from fleet.events import EventBus
from fleet.mqtt_broker import EmbeddedBroker
from fleet.registry import VehicleRegistry
from fleet.settings import Settings
from fleet.store.repository import Store
from fleet.supervisor import FleetSupervisor
from fleet.world import World
from fleet.worldfile import load_world
from missions.broadcast.outcome import settle_all
from missions.broadcast.service import BroadcastService
from missions.builtin import KINDS
from missions.catalogue import default_skus
from missions.commands import CommandService
from missions.context import MissionContext
from missions.journal import Journal
from missions.service import MissionService

log = structlog.get_logger(__name__)

MqttLink = Vda5050Link | SpeakerLink
"""A vehicle link over an MQTT broker (vans, speaker payloads): ``connected``, ``broker``,
``address.display_url`` and ``stats`` (:class:`fleet.mqtt_client.ConnectionStats`)."""


@dataclass(frozen=True)
class Runtime:
    """Everything routes and commands need."""

    settings: Settings
    clock: Clock
    world: World
    store: Store
    registry: VehicleRegistry
    bus: EventBus
    supervisor: FleetSupervisor
    missions: MissionService
    mqtt_url: str | None
    """The broker vans and payloads use (the embedded one when ``mqtt.url`` is unset)."""
    broadcasts: BroadcastService
    """Broadcast requests, clips and proofs of coverage."""
    commands: CommandService
    """Operators' commands to vehicles and their records."""

    def mavlink_links(self) -> list[MavlinkLink]:
        """The MAVLink UDP endpoints the supervisor opened."""
        return [link for link in self.supervisor.links if isinstance(link, MavlinkLink)]

    def mqtt_links(self) -> list[MqttLink]:
        """The links that reach their vehicles through an MQTT broker."""
        return [link for link in self.supervisor.links if isinstance(link, MqttLink)]


def mavlink_options(settings: Settings) -> dict[str, Any]:
    """Options every MAVLink link gets."""
    return {
        **settings.mavlink.model_dump(exclude={"links"}),
        "payload_kg": settings.drone_missions.payload_kg,
    }


@asynccontextmanager
async def open_runtime(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """Start the service's runtime; yields it ready (links open, dispatcher running)."""
    register_mavlink()
    register_vda5050()
    register_speaker()
    clock = clock or make_clock(settings.clock.mode, settings.clock.speed)
    world = load_world(settings.world.path)
    log.info(
        "world.loaded",
        name=world.name,
        communities=len(world.communities),
        warehouses=len(world.warehouses),
        pads=len(world.pads),
    )
    async with Store.open(
        settings.database.url,
        settings.database.db_schema,
        migrate_first=settings.database.migrate_on_start,
        echo=settings.database.echo,
    ) as store:
        await store.sync_world(world)
        if await store.sku_count() == 0:
            for sku in default_skus():
                await store.upsert_sku(sku)
            log.info("catalogue.seeded", skus=len(default_skus()))
        registry, bus = VehicleRegistry(), EventBus()
        async with AsyncExitStack() as stack:
            mqtt_url = settings.mqtt.url
            if (settings.vda5050.links or settings.broadcast.speaker_links) and mqtt_url is None:
                broker = await stack.enter_async_context(
                    EmbeddedBroker(port=settings.mqtt.embedded_port)
                )
                mqtt_url = broker.url
                log.info("mqtt.embedded_broker", url=mqtt_url)
            links = [(url, mavlink_options(settings)) for url in settings.mavlink.links]
            links += [
                (
                    url,
                    {
                        "world": world,
                        "broker_url": mqtt_url,
                        "max_boxes": settings.vda5050.max_boxes,
                        "vda5050": settings.vda5050,
                    },
                )
                for url in settings.vda5050.links
            ]
            links += [(url, {"broker_url": mqtt_url}) for url in settings.broadcast.speaker_links]
            supervisor = await stack.enter_async_context(
                FleetSupervisor(links=links, registry=registry, bus=bus, clock=clock, store=store)
            )
            ctx = MissionContext(
                store=store,
                world=world,
                registry=registry,
                bus=bus,
                clock=clock,
                journal=Journal(clock, bus),
                settings=settings,
            )
            async with (
                MissionService(ctx, KINDS) as missions,
                CommandService(ctx, missions) as commands,
            ):
                broadcasts = BroadcastService.from_settings(ctx, missions.dispatcher.kick)
                await settle_all(ctx)  # flights that ended while the service was down
                yield Runtime(
                    settings=settings,
                    clock=clock,
                    world=world,
                    store=store,
                    registry=registry,
                    bus=bus,
                    supervisor=supervisor,
                    missions=missions,
                    mqtt_url=mqtt_url,
                    broadcasts=broadcasts,
                    commands=commands,
                )
