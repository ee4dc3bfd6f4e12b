"""The live feed behind ``GET /v1/events/stream`` (Server-Sent Events) and ``/v1/events/ws``
(WebSocket): recorded events, resumable by id, and vehicle telemetry at a bounded rate, each
filtered by what the caller may see.

**Events** are read from the record (the ``mission_event`` table: request and mission events,
and the vehicle events the supervisor records), not from the in-memory bus: every event has its
row id, a client that reconnects with the last id it saw (SSE ``Last-Event-ID``, or
``?after_id=``) gets everything after it and nothing twice, and a slow client lags instead of
losing events. The bus only wakes the feed (a committed event is read within milliseconds);
without news it looks every :data:`POLL_S` seconds. Without an id the feed starts at the newest
event (live only).

**Telemetry** is the registry's live status of each vehicle, sent when it changed, at most
``telemetry_hz`` times a second per vehicle (2 by default): positions are state, not history, so
they are not replayed on resume.

**Scope**: community staff get the events of their communities' requests and of the missions
that carry their work, and the telemetry of the vehicles flying those missions now; no other
vehicle events. Other roles get everything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from api.runtime import Runtime
from api.scope import serves
from fleet.accounts import Principal
from fleet.errors import NotFound
from fleet.events import VehicleEvent
from fleet.store.tables import MissionEvent
from missions.journal import MissionEventPublished

POLL_S = 1.0
"""Real seconds between two reads of the record when the bus has said nothing."""
PAGE = 500
"""Events read at a time (a client far behind catches up page by page)."""
VEHICLE_KIND = "vehicle"
"""Kind of the rows that record vehicle events (``fleet.supervisor``)."""


def event_message(ev: MissionEvent) -> dict[str, Any]:
    """A recorded event as the feed sends it."""
    if ev.kind == VEHICLE_KIND:
        data = dict(ev.data)
        return {
            "type": "vehicle_event",
            "id": ev.id,
            "at": ev.at.timestamp(),
            "vehicle_id": ev.vehicle_id,
            "kind": data.pop("event", ""),
            "severity": data.pop("severity", "info"),
            "message": ev.reason,
            "mission_id": ev.mission_id,
            "data": data,
        }
    return {
        "type": "mission_event",
        "id": ev.id,
        "at": ev.at.timestamp(),
        "mission_id": ev.mission_id,
        "request_id": ev.request_id,
        "vehicle_id": ev.vehicle_id,
        "kind": ev.kind,
        "from_state": ev.from_state,
        "to_state": ev.to_state,
        "reason": ev.reason,
        "data": ev.data,
    }


class Scope:
    """What one caller may see (lookups cached for the life of the feed)."""

    def __init__(self, rt: Runtime, who: Principal) -> None:
        self.rt, self.who = rt, who
        self._requests: dict[str, bool] = {}
        self._missions: dict[str, bool] = {}

    async def request(self, request_id: str) -> bool:
        seen = self._requests.get(request_id)
        if seen is None:
            try:
                rec = await self.rt.store.get_request(request_id)
                seen = self.who.may_act_for(rec.request.community_id)
            except NotFound:
                seen = False
            self._requests[request_id] = seen
        return seen

    async def mission(self, mission_id: str) -> bool:
        seen = self._missions.get(mission_id)
        if seen is None:
            seen = serves(self.who, await self.rt.store.mission_tasks(mission_id))
            self._missions[mission_id] = seen
        return seen

    async def event(self, ev: MissionEvent) -> bool:
        if not self.who.scoped:
            return True
        if ev.kind == VEHICLE_KIND:
            return False
        if ev.request_id is not None and await self.request(ev.request_id):
            return True
        return ev.mission_id is not None and await self.mission(ev.mission_id)

    async def vehicle(self, vehicle_id: str) -> bool:
        """Staff see a vehicle's telemetry while it flies a mission carrying their work."""
        if not self.who.scoped:
            return True
        for mission_id, run in self.rt.missions.runs.items():
            if run.mission.vehicle_id == vehicle_id and await self.mission(mission_id):
                return True
        return False


def telemetry_message(rt: Runtime, vehicle_id: str) -> dict[str, Any] | None:
    entry = rt.registry.find(vehicle_id)
    if entry is None:
        return None
    st = entry.status
    pos = st.position
    return {
        "type": "telemetry",
        "vehicle_id": vehicle_id,
        "at": rt.clock.time(),
        "link": st.link,
        "position": None
        if pos is None
        else {"lat": pos.lat, "lon": pos.lon, "alt": pos.alt, "rel_alt": pos.rel_alt},
        "heading_deg": st.heading_deg,
        "ground_speed_mps": st.ground_speed_mps,
        "battery_fraction": st.battery_fraction,
        "mode": st.mode,
        "armed": st.armed,
        "landed": st.landed,
        "mission": {"current": st.mission.current, "total": st.mission.total},
    }


async def feed(
    rt: Runtime,
    who: Principal,
    after_id: int | None,
    *,
    telemetry_hz: float = 2.0,
    events: bool = True,
    telemetry: bool = True,
) -> AsyncGenerator[dict[str, Any], None]:
    """The messages for one caller, forever (the caller stops iterating to end it)."""
    scope = Scope(rt, who)
    last = after_id if after_id is not None else await rt.store.last_event_id()
    period = 1.0 / telemetry_hz if telemetry_hz > 0 else float("inf")
    sent_version: dict[str, int] = {}
    next_telemetry = 0.0
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    sub = rt.bus.subscribe(lambda e: isinstance(e, MissionEventPublished | VehicleEvent))

    async def wake() -> None:
        async for _ in sub:
            woken.set()

    waker = asyncio.create_task(wake())
    try:
        while True:
            if events:
                while True:
                    rows = await rt.store.events(after_id=last, limit=PAGE)
                    for ev in rows:
                        last = ev.id or last
                        if await scope.event(ev):
                            yield event_message(ev)
                    if len(rows) < PAGE:
                        break
            if telemetry and loop.time() >= next_telemetry:
                next_telemetry = loop.time() + period
                for entry in list(rt.registry):
                    vid = entry.info.id
                    if sent_version.get(vid) == entry.version:
                        continue
                    if not await scope.vehicle(vid):
                        continue
                    sent_version[vid] = entry.version
                    msg = telemetry_message(rt, vid)
                    if msg is not None:
                        yield msg
            woken.clear()
            wait = POLL_S
            if telemetry:
                wait = min(wait, max(0.0, next_telemetry - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), wait)
    finally:
        waker.cancel()
        sub.close()
