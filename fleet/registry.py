"""The live vehicle registry: every known vehicle, its static info, live status and control handle.

Links add vehicles when they discover them and mutate their :class:`VehicleStatus` in place on
every message (the hot path: hundreds of vehicles at tens of messages a second each), then call
:meth:`VehicleRegistry.touch`. Touching is O(1) and wakes only tasks that wait on that vehicle
through :meth:`VehicleRegistry.wait_for`. Nothing here does I/O; the store samples it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fleet.clock import Clock
from fleet.errors import Conflict, NotFound
from fleet.vehicle import VehicleInfo, VehicleStatus


@dataclass(slots=True)
class VehicleEntry:
    """One vehicle in the registry."""

    info: VehicleInfo
    status: VehicleStatus
    control: Any
    """The link's command handle (``DroneControl`` for drones)."""
    version: int = 0
    """Incremented on every touch."""
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class VehicleRegistry:
    """In-memory registry of live vehicles."""

    def __init__(self) -> None:
        self._entries: dict[str, VehicleEntry] = {}
        self._added: list[asyncio.Future[None]] = []

    def add(
        self, info: VehicleInfo, control: Any, status: VehicleStatus | None = None
    ) -> VehicleEntry:
        """Register a vehicle; re-adding the same id from the same link refreshes its handle."""
        existing = self._entries.get(info.id)
        if existing is not None:
            if existing.info.link_url != info.link_url:
                raise Conflict(
                    f"vehicle id {info.id} is already served by {existing.info.link_url}",
                    vehicle_id=info.id,
                )
            existing.info = info
            existing.control = control
            self.touch(info.id)
            return existing
        entry = VehicleEntry(info=info, status=status or VehicleStatus(), control=control)
        self._entries[info.id] = entry
        self._wake(self._added)
        return entry

    def remove(self, vehicle_id: str) -> None:
        entry = self._entries.pop(vehicle_id, None)
        if entry is not None:
            self._wake(entry.waiters)

    def get(self, vehicle_id: str) -> VehicleEntry:
        try:
            return self._entries[vehicle_id]
        except KeyError:
            raise NotFound("vehicle", vehicle_id) from None

    def find(self, vehicle_id: str) -> VehicleEntry | None:
        return self._entries.get(vehicle_id)

    def __iter__(self) -> Iterator[VehicleEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, vehicle_id: object) -> bool:
        return vehicle_id in self._entries

    def touch(self, vehicle_id: str) -> None:
        """Record that a vehicle's status changed; wakes its waiters."""
        entry = self._entries.get(vehicle_id)
        if entry is None:
            return
        entry.version += 1
        if entry.waiters:
            self._wake(entry.waiters)

    @staticmethod
    def _wake(waiters: list[asyncio.Future[None]]) -> None:
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()

    async def wait_for(
        self,
        vehicle_id: str,
        predicate: Callable[[VehicleEntry], bool],
        within: float | None,
        clock: Clock,
    ) -> VehicleEntry:
        """Wait until ``predicate(entry)`` holds, for at most ``within`` world seconds.

        Raises ``TimeoutError`` on timeout and ``NotFound`` if the vehicle is removed.
        """

        async def _wait() -> VehicleEntry:
            while True:
                entry = self.get(vehicle_id)
                if predicate(entry):
                    return entry
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                entry.waiters.append(fut)
                await fut

        return await clock.wait_for(_wait(), within)

    async def wait_added(self, count: int, within: float | None, clock: Clock) -> None:
        """Wait until at least ``count`` vehicles are registered."""

        async def _wait() -> None:
            while len(self._entries) < count:
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._added.append(fut)
                await fut

        await clock.wait_for(_wait(), within)
