"""The runtime supervisor: opens the vehicle links and runs the fleet's background tasks.

No mission logic. It enters every configured link (an async context manager each) on one
``AsyncExitStack``, and in its own ``TaskGroup`` keeps the record in step with the live fleet:
vehicles are stored when discovered, what vehicles say (status texts, link losses, failsafes)
is stored as vehicle events, and telemetry is sampled into ``vehicle_sample`` at a low rate.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import structlog

from fleet.clock import Clock
from fleet.errors import StreetfleetError
from fleet.events import EventBus, Severity, VehicleEvent, VehicleEventKind
from fleet.link import LinkContext, VehicleLink, create_link
from fleet.registry import VehicleRegistry
from fleet.store.repository import Store
from fleet.store.tables import MissionEvent, Vehicle, VehicleSample

log = structlog.get_logger(__name__)

RECORDED_KINDS = frozenset(
    {
        VehicleEventKind.DISCOVERED,
        VehicleEventKind.LINK_LOST,
        VehicleEventKind.LINK_REGAINED,
        VehicleEventKind.STATUS_TEXT,
        VehicleEventKind.FAILSAFE,
        VehicleEventKind.ARMED,
        VehicleEventKind.DISARMED,
        VehicleEventKind.MODE_CHANGED,
        VehicleEventKind.LANDED_STATE,
        VehicleEventKind.MISSION_STATE,
        VehicleEventKind.READINESS,
    }
)
"""Vehicle events kept in the record (as ``mission_event`` rows of kind ``vehicle``)."""


class FleetSupervisor:
    """Owns the links and the record-keeping tasks for the live fleet."""

    def __init__(
        self,
        *,
        links: list[tuple[str, dict[str, Any]]],
        registry: VehicleRegistry,
        bus: EventBus,
        clock: Clock,
        store: Store,
        sample_interval_s: float = 10.0,
    ) -> None:
        self.link_specs = links
        self.registry = registry
        self.bus = bus
        self.clock = clock
        self.store = store
        self.sample_interval_s = sample_interval_s
        self.links: list[VehicleLink] = []
        self._stack = AsyncExitStack()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            self._tg = await self._stack.enter_async_context(asyncio.TaskGroup())
            # subscribe before links open so no discovery is missed
            sub = self._stack.enter_context(
                self.bus.subscribe(lambda e: isinstance(e, VehicleEvent), maxsize=10_000)
            )
            self._tasks.append(self._tg.create_task(self._record_events(sub)))
            self._tasks.append(self._tg.create_task(self._sample()))
            for url, options in self.link_specs:
                ctx = LinkContext(self.registry, self.bus, self.clock, options)
                link = create_link(url, ctx)
                await self._stack.enter_async_context(link)
                self.links.append(link)
                log.info("link.open", url=url)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await self._stack.__aexit__(exc_type, exc, tb)

    async def _record_events(self, sub: Any) -> None:
        async for event in sub:
            assert isinstance(event, VehicleEvent)
            if event.kind not in RECORDED_KINDS:
                continue
            try:
                if event.kind == VehicleEventKind.DISCOVERED:
                    await self._store_vehicle(event.vehicle_id)
                await self.store.add_events(
                    [
                        MissionEvent(
                            at=self.clock.now(),
                            vehicle_id=event.vehicle_id,
                            kind="vehicle",
                            reason=event.message or str(event.kind),
                            data={
                                "event": str(event.kind),
                                "severity": str(event.severity),
                                **event.data,
                            },
                        )
                    ]
                )
            except StreetfleetError:
                log.exception("vehicle_event.record_failed", vehicle_id=event.vehicle_id)
            if event.severity in (Severity.WARNING, Severity.ERROR):
                log.warning(
                    "vehicle.event",
                    vehicle_id=event.vehicle_id,
                    kind=str(event.kind),
                    message=event.message,
                )

    async def _store_vehicle(self, vehicle_id: str) -> None:
        entry = self.registry.find(vehicle_id)
        if entry is None:
            return
        info, now = entry.info, self.clock.now()
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

    async def _sample(self) -> None:
        while True:
            await self.clock.sleep(self.sample_interval_s)
            now = self.clock.now()
            rows = []
            for entry in self.registry:
                st = entry.status
                pos = st.position
                rows.append(
                    VehicleSample(
                        vehicle_id=entry.info.id,
                        at=now,
                        lat=pos.lat if pos else None,
                        lon=pos.lon if pos else None,
                        rel_alt=pos.rel_alt if pos else None,
                        battery=st.battery_fraction,
                        mode=str(st.mode),
                        armed=st.armed,
                        link=str(st.link),
                    )
                )
            if rows:
                with contextlib.suppress(StreetfleetError):
                    async with self.store.transaction() as s:
                        s.add_all(rows)
