"""The mission service with fake vehicles, on the manual clock: mission logic in milliseconds.

:class:`FakeFleet` is what ``api.runtime.open_runtime`` builds, minus the sockets: the Shatou
world, a real SQLite store in the test's ``tmp_path`` (migrated, world and catalogue synced), the
registry and bus, a :class:`fleet.clock.ManualClock`, the :class:`missions.service.MissionService`
with the built-in kinds, and the broadcast service. Vehicles are the in-memory fakes of
:mod:`fleet.fakes`, attached to the registry as a link would discover them; each fake's
``settle`` hook is :meth:`FakeFleet.settle`, so a run following a vehicle sees every step.

Time moves only when a test advances the clock; everything else is waited for on conditions
(:meth:`FakeFleet.until`), never on sleeps. :meth:`FakeFleet.restart` stops the service and starts
a new one on the same store, as a process restart does (the fakes fly on and are discovered
again by the new registry).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fleet.clock import ManualClock
from fleet.events import EventBus
from fleet.fakes import FakeDrone, FakeSpeaker, FakeVan
from fleet.registry import VehicleRegistry
from fleet.settings import Settings
from fleet.store.repository import RequestRecord, Store
from fleet.store.tables import Mission, MissionEvent, ShuttlePlan, StockMovement, Vehicle
from fleet.van import TripNode
from fleet.vehicle import Capability, VehicleInfo
from fleet.world import World
from fleet.worldfile import load_world
from missions.broadcast.outcome import settle_all
from missions.broadcast.request import ClipMessage, CommunityArea, NewBroadcast
from missions.broadcast.service import BroadcastService
from missions.builtin import KINDS
from missions.catalogue import default_skus
from missions.context import MissionContext
from missions.journal import Journal
from missions.requests import ItemLine, NewDelivery
from missions.service import MissionService
from missions.shuttle.plans import PlanDraft
from missions.shuttle.service import ShuttleService
from missions.states import MISSION_TERMINAL, MissionKind, MissionState, Priority
from tests.service import WORLDS
from tests.support import eventually
from tests.unit.broadcast.clipserver import tone_wav

T = TypeVar("T")

WAIT_S = 10.0
"""Real seconds a condition may take (they take milliseconds; the margin is for a loaded
machine)."""
TZ = "Asia/Shanghai"


def fleet_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of a fake fleet: its own SQLite file, the Shatou world, quick van routing."""
    base: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'fleet.db'}"},
        "world": {"path": str(WORLDS / "shatou.geojson")},
        "broadcast": {"clip_dir": str(tmp_path / "clips")},
        "vda5050": {"links": []},
        "logging": {"level": "warning"},
        "shuttle": {"routing_time_limit_s": 0.1, "timezone": TZ},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return Settings.load(**base)


class FakeFleet:
    """The mission service over fake vehicles (see the module docstring)."""

    def __init__(self, settings: Settings, store: Store, world: World) -> None:
        self.settings = settings
        self.store = store
        self.world = world
        self.clock = ManualClock()
        self.drones: dict[str, FakeDrone] = {}
        self.vans: dict[str, FakeVan] = {}
        self.speakers: dict[str, FakeSpeaker] = {}
        self._service: MissionService | None = None
        self._clips: dict[str, float] = {}
        """SHA-256 -> duration of the clips submitted (what speakers can fetch)."""
        self.broadcasts: BroadcastService
        self.ctx: MissionContext

    # --- the service --------------------------------------------------------------------------

    @property
    def service(self) -> MissionService:
        assert self._service is not None, "the service is not running"
        return self._service

    @property
    def registry(self) -> VehicleRegistry:
        return self.ctx.registry

    @property
    def shuttles(self) -> ShuttleService:
        kind = self.service.kind(MissionKind.VAN_SHUTTLE.value)
        assert isinstance(kind, ShuttleService)
        return kind

    async def start(self) -> None:
        """Start the service (a new process): a new registry and bus, the fakes discovered
        again, the record recovered (``MissionService`` and ``settle_all`` at start)."""
        bus = EventBus()
        self.ctx = MissionContext(
            store=self.store,
            world=self.world,
            registry=VehicleRegistry(),
            bus=bus,
            clock=self.clock,
            journal=Journal(self.clock, bus),
            settings=self.settings,
        )
        for vehicle in [*self.drones.values(), *self.vans.values(), *self.speakers.values()]:
            vehicle.attach(self.ctx.registry)
        service = MissionService(self.ctx, KINDS)
        await service.__aenter__()
        self._service = service
        self.broadcasts = BroadcastService.from_settings(self.ctx, service.dispatcher.kick)
        await settle_all(self.ctx)

    async def stop(self) -> None:
        """Stop the service without touching the record (as at shutdown)."""
        if self._service is not None:
            service, self._service = self._service, None
            await service.__aexit__(None, None, None)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    # --- waiting ------------------------------------------------------------------------------

    async def until(
        self, predicate: Callable[[], T | Awaitable[T]], message: str = "", timeout: float = WAIT_S
    ) -> T:
        """Wait (real time) until ``predicate`` returns something truthy; returns it."""

        async def check() -> T:
            value = predicate()
            if inspect.isawaitable(value):
                return await value
            return value

        return await eventually(check, timeout=timeout, interval=0.001, message=message)

    async def settle(self, vehicle_id: str) -> None:
        """Wait until the run following ``vehicle_id`` has looked at its latest status: it waits
        on the vehicle again, or no run follows it any more."""

        def looked() -> bool:
            entry = self.registry.find(vehicle_id)
            return (
                entry is None
                or bool(entry.waiters)
                or self._service is None
                or not self._service.is_busy(vehicle_id)
            )

        await self.until(looked, f"the run following {vehicle_id} sees its status")

    async def round(self) -> None:
        """Wait until a whole dispatch round has run after everything the test did."""
        d = self.service.dispatcher
        for _ in range(2):
            start = d.rounds
            d.kick()
            await self.until(lambda start=start: d.rounds > start, "a dispatch round")

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move world time on (sleepers due wake and run), with a dispatch round before (it
        sees everything the test did; a round must not straddle the jump, in a real process it
        takes milliseconds of world time) and after (the dispatcher's periodic round)."""
        if self._service is not None:
            await self.round()
        await self.clock.advance(seconds, step)
        if self._service is not None:
            await self.round()  # the dispatcher runs at least every few world seconds

    # --- vehicles -----------------------------------------------------------------------------

    async def discovered(self, info: VehicleInfo) -> None:
        """Store a vehicle as the supervisor does when its link discovers it."""
        now = self.clock.now()
        await self.store.upsert_vehicle(
            Vehicle(
                id=info.id,
                kind=info.kind,
                link_url=info.link_url,
                address=info.address,
                name=info.name,
                capabilities=sorted(info.capabilities),
                payload_kg=info.payload_kg,
                max_boxes=info.max_boxes,
                first_seen=now,
                last_seen=now,
            )
        )

    async def add_drone(
        self, pad: int | str = 0, *, vehicle_id: str | None = None, battery: float = 0.95
    ) -> FakeDrone:
        """A delivery drone on a pad (index in the world's pads, or pad id)."""
        p = self.world.pads[pad] if isinstance(pad, int) else self.world.pad(pad)
        vid = vehicle_id or f"drone-{len(self.drones) + 1}"
        drone = FakeDrone(vid, p.location, clock=self.clock, battery=battery)
        drone.settle = lambda: self.settle(vid)
        self.drones[vid] = drone
        await self.discovered(drone.info)
        drone.attach(self.registry)
        self.service.dispatcher.kick()
        return drone

    async def add_speaker_drone(
        self, pad: int | str = 0, *, vehicle_id: str | None = None, battery: float = 0.95
    ) -> tuple[FakeDrone, FakeSpeaker]:
        """A drone carrying a loudspeaker payload that knows every clip of the clip store."""
        p = self.world.pads[pad] if isinstance(pad, int) else self.world.pad(pad)
        vid = vehicle_id or f"drone-{len(self.drones) + 1}"
        drone = FakeDrone(
            vid,
            p.location,
            clock=self.clock,
            battery=battery,
            capabilities=frozenset({Capability.DELIVERY, Capability.BROADCAST}),
        )
        drone.settle = lambda: self.settle(vid)
        payload_id = f"SPK-{vid.rsplit('-', 1)[-1]}"
        speaker = FakeSpeaker(payload_id, vid, clock=self.clock, clips=self.clip_durations())
        speaker.ride_on(drone)
        self.drones[vid] = drone
        self.speakers[payload_id] = speaker
        await self.discovered(drone.info)
        await self.discovered(speaker.info)
        drone.attach(self.registry)
        speaker.attach(self.registry)
        self.service.dispatcher.kick()
        return drone, speaker

    def clip_durations(self) -> dict[str, float]:
        return dict(self._clips)

    async def add_van(
        self, vehicle_id: str = "van-VAN-01", warehouse_id: str = "W1", **kw: Any
    ) -> FakeVan:
        """A van standing at the warehouse's dock."""
        dock = self.world.dock_node(warehouse_id)
        van = FakeVan(vehicle_id, TripNode(dock.id, dock.latlon), clock=self.clock, **kw)
        van.settle = lambda: self.settle(vehicle_id)
        self.vans[vehicle_id] = van
        await self.discovered(van.info)
        van.attach(self.registry)
        self.service.dispatcher.kick()
        return van

    async def shuttle_plan(
        self,
        vehicle_ids: list[str],
        communities: list[str] | None = None,
        *,
        warehouse_id: str = "W1",
        hours: float = 8.0,
    ) -> ShuttlePlan:
        """A shuttle plan putting ``vehicle_ids`` on a shift starting now."""
        local = self.clock.now().astimezone(ZoneInfo(TZ))
        end = local + timedelta(hours=hours)
        draft = PlanDraft(
            name="test shift",
            warehouse_id=warehouse_id,
            community_ids=communities or [c.id for c in self.world.communities],
            vehicle_ids=vehicle_ids,
            shift_start=f"{local:%H:%M}",
            shift_end=f"{end:%H:%M}",
            timezone=TZ,
        )
        return await self.shuttles.create(draft, "operator")

    # --- work ---------------------------------------------------------------------------------

    async def receive(self, sku: str, quantity: int, warehouse_id: str = "W1") -> StockMovement:
        mv = await self.store.move_stock(
            "receive", warehouse_id, sku, quantity, at=self.clock.now(), actor="test"
        )
        self.service.dispatcher.kick()
        return mv

    async def request(
        self, community_id: str, priority: Priority = Priority.STANDARD, **items: int
    ) -> str:
        """Submit a delivery request (auto-approved); returns its id."""
        rec, _ = await self.service.requests.submit_delivery(
            NewDelivery(
                community_id=community_id,
                items=tuple(ItemLine(sku, q) for sku, q in items.items()),
                priority=priority,
            ),
            "staff",
        )
        return rec.request.id

    async def broadcast(self, community_id: str = "C03", clip_s: float = 3.0, **kw: Any) -> str:
        """Submit a broadcast of a tone clip over a community (auto-approved)."""
        clip = await self.broadcasts.clips.put(tone_wav(clip_s))
        self._clips[clip.sha256] = clip.duration_s
        for speaker in self.speakers.values():
            speaker.clips[clip.sha256] = clip.duration_s
        new = NewBroadcast(area=CommunityArea(community_id), message=ClipMessage(clip.sha256), **kw)
        sub = await self.broadcasts.submit(new, "staff")
        return sub.record.request.id

    # --- the record ---------------------------------------------------------------------------

    async def get_request(self, request_id: str) -> RequestRecord:
        return await self.store.get_request(request_id)

    async def mission(self, mission_id: str) -> Mission:
        return await self.store.get_mission(mission_id)

    async def missions_of(self, request_id: str) -> list[Mission]:
        """The missions that carried the request, oldest first (by their first event: the
        manual clock may give them all the same creation time)."""
        tasks = await self.store.request_tasks(request_id)
        found = await self.store.missions_by_id(t.mission_id for t in tasks if t.mission_id)
        order = {}
        for mid in found:
            first = await self.store.events(mission_id=mid, limit=1)
            order[mid] = first[0].id if first else 0
        return sorted(found.values(), key=lambda m: (m.created_at, order[m.id] or 0))

    async def mission_for(
        self, request_id: str, *states: MissionState, message: str = ""
    ) -> Mission:
        """Wait for the newest mission carrying the request (in one of ``states``)."""

        async def found() -> Mission | None:
            ms = await self.missions_of(request_id)
            if ms and (not states or ms[-1].state in states):
                return ms[-1]
            return None

        return await self.until(found, message or f"a mission for {request_id} {states}")

    async def wait_mission(
        self, mission_id: str, *states: MissionState, message: str = ""
    ) -> Mission:
        """Wait until the mission is in one of ``states`` (default: any terminal state)."""
        wanted = set(states or MISSION_TERMINAL)

        async def reached() -> Mission | None:
            m = await self.mission(mission_id)
            return m if m.state in wanted else None

        return await self.until(reached, message or f"mission {mission_id} reaches {wanted}")

    async def wait_phase(self, mission_id: str, phase: str) -> Mission:
        async def reached() -> Mission | None:
            m = await self.mission(mission_id)
            return m if m.phase == phase else None

        return await self.until(reached, f"mission {mission_id} in phase {phase}")

    async def wait_request(self, request_id: str, *states: str, message: str = "") -> Any:
        async def reached() -> RequestRecord | None:
            rec = await self.get_request(request_id)
            return rec if rec.request.state in states else None

        return await self.until(reached, message or f"request {request_id} reaches {states}")

    async def events(self, **where: Any) -> list[MissionEvent]:
        return list(await self.store.events(**where))

    async def reasons(self, **where: Any) -> list[str]:
        return [e.reason for e in await self.events(**where)]

    async def ledger(self, request_id: str) -> list[tuple[str, int, str | None]]:
        """(kind, quantity, mission id) of the request's stock movements, in order."""
        rows = await self.store.ledger(request_id=request_id, limit=10_000)
        return [(mv.kind, mv.quantity, mv.mission_id) for mv in rows]

    async def stock(self, sku: str, warehouse_id: str = "W1") -> tuple[int, int]:
        """(on hand, reserved)."""
        for st in await self.store.stock(warehouse_id):
            if st.sku_id == sku:
                return st.on_hand, st.reserved
        return 0, 0


@asynccontextmanager
async def open_fleet(tmp_path: Path, **overrides: Any) -> AsyncIterator[FakeFleet]:
    """A running fake fleet (see the module docstring)."""
    settings = fleet_settings(tmp_path, **overrides)
    world = load_world(settings.world.path)
    async with Store.open(settings.database.url) as store:
        await store.sync_world(world)
        for sku in default_skus():
            await store.upsert_sku(sku)
        fleet = FakeFleet(settings, store, world)
        await fleet.start()
        try:
            yield fleet
        finally:
            await fleet.stop()
