"""Which drones the dispatcher counts as delivery drones at a warehouse: a drone carrying a
loudspeaker payload is not one (its payload bay holds the speaker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.clock import ManualClock
from fleet.events import EventBus
from fleet.geo import Position
from fleet.registry import VehicleRegistry
from fleet.settings import Settings
from fleet.speaker import SpeakerControl
from fleet.store.repository import Store
from fleet.vehicle import Capability, LinkState, VehicleInfo, VehicleKind
from fleet.worldfile import load_world
from missions.context import MissionContext
from missions.delivery.fleet import DroneFleet
from missions.dispatcher import Dispatcher
from missions.journal import Journal
from tests.service import WORLDS


class _Speaker:
    """The speaker port as the registry shows it: only who carries it matters here."""

    def __init__(self, host: str) -> None:
        self.payload_id = f"SPK-{host}"
        self.host_vehicle_id = host

    status = None

    async def load_clip(self, clip): ...  # type: ignore[no-untyped-def]
    async def play_in_area(self, spec): ...  # type: ignore[no-untyped-def]
    async def stop(self): ...  # type: ignore[no-untyped-def]
    async def set_volume(self, percent): ...  # type: ignore[no-untyped-def]
    def playback_records(self, session_id=None): ...  # type: ignore[no-untyped-def]
    async def wait_session_end(self, session_id, within): ...  # type: ignore[no-untyped-def]


@pytest.fixture
async def dispatcher(tmp_path: Path) -> AsyncIterator[Dispatcher]:
    world = load_world(WORLDS / "shatou.geojson")
    clock = ManualClock()
    async with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        registry, bus = VehicleRegistry(), EventBus()
        ctx = MissionContext(
            store=store,
            world=world,
            registry=registry,
            bus=bus,
            clock=clock,
            journal=Journal(clock, bus),
            settings=Settings.load(),
        )
        for i, pad in enumerate(world.pads[:2], start=1):
            entry = registry.add(
                VehicleInfo(
                    id=f"drone-{i}",
                    kind=VehicleKind.DRONE,
                    link_url="mavlink+udpin://x",
                    address=str(i),
                    capabilities=frozenset({Capability.DELIVERY}),
                ),
                control=None,
            )
            entry.status.link = LinkState.ONLINE
            entry.status.home = Position(pad.location.lat, pad.location.lon)
        registry.add(
            VehicleInfo(
                id="speaker-SPK-2",
                kind=VehicleKind.PAYLOAD,
                link_url="speaker+mqtt:///",
                address="SPK-2",
            ),
            control=_Speaker("drone-2"),
        )
        yield Dispatcher(ctx)


async def test_a_drone_carrying_a_speaker_is_not_a_delivery_drone(
    dispatcher: Dispatcher,
) -> None:
    assert isinstance(dispatcher.ctx.registry.get("speaker-SPK-2").control, SpeakerControl)
    ids = [e.info.id for e, _ in DroneFleet(dispatcher.ctx).delivery_drones("W1")]
    assert ids == ["drone-1"]


async def test_a_vehicle_that_refused_rests_for_a_while(dispatcher: Dispatcher) -> None:
    from missions.dispatcher import REST_AFTER_REFUSAL_S

    clock = dispatcher.ctx.clock
    assert isinstance(clock, ManualClock)
    dispatcher.rest("drone-1", "MISSION_START denied")
    assert dispatcher.resting("drone-1") == "MISSION_START denied"
    assert dispatcher.resting("drone-2") is None
    await clock.advance(REST_AFTER_REFUSAL_S + 1)
    assert dispatcher.resting("drone-1") is None
