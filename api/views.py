"""Turning records and live state into API bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.runtime import Runtime
from api.schemas import (
    EventOut,
    ItemOut,
    MissionOut,
    RequestOut,
    TaskOut,
    VehicleOut,
)
from fleet.geo import Position
from fleet.registry import VehicleEntry
from fleet.store.repository import RequestRecord
from fleet.store.tables import Mission, MissionEvent, Task


def event_out(e: MissionEvent) -> EventOut:
    return EventOut.model_validate(e, from_attributes=True)


def request_out(
    rec: RequestRecord, tasks: Sequence[Task] = (), events: Sequence[MissionEvent] | None = None
) -> RequestOut:
    r = rec.request
    missions = sorted({t.mission_id for t in tasks if t.mission_id})
    return RequestOut(
        id=r.id,
        kind=r.kind,
        community_id=r.community_id,
        warehouse_id=r.warehouse_id,
        state=r.state,
        priority=r.priority,
        requested_by=r.requested_by,
        note=r.note,
        created_at=r.created_at,
        approved_at=r.approved_at,
        deadline=r.deadline,
        closed_at=r.closed_at,
        reason=r.reason,
        items=[
            ItemOut(
                sku_id=i.sku_id, quantity=i.quantity, allocated=i.allocated, delivered=i.delivered
            )
            for i in rec.items
        ],
        missions=missions,
        events=[event_out(e) for e in events] if events is not None else None,
    )


def mission_out(
    m: Mission, tasks: Sequence[Task], events: Sequence[MissionEvent] | None = None
) -> MissionOut:
    return MissionOut(
        id=m.id,
        kind=m.kind,
        vehicle_id=m.vehicle_id,
        state=m.state,
        phase=m.phase,
        created_at=m.created_at,
        started_at=m.started_at,
        ended_at=m.ended_at,
        reason=m.reason,
        plan=m.plan,
        result=m.result,
        tasks=[TaskOut.model_validate(t, from_attributes=True) for t in tasks],
        events=[event_out(e) for e in events] if events is not None else None,
    )


def _pos(p: Position | None) -> dict[str, float] | None:
    return None if p is None else {"lat": p.lat, "lon": p.lon, "alt": p.alt, "rel_alt": p.rel_alt}


def busy_vehicles(rt: Runtime) -> dict[str, str]:
    """Vehicle id → the mission it is running (one pass over the runs, for a whole list)."""
    return {
        run.mission.vehicle_id: mid
        for mid, run in rt.missions.runs.items()
        if run.mission.vehicle_id is not None
    }


def vehicle_dict(rt: Runtime, entry: VehicleEntry, busy: dict[str, str]) -> dict[str, Any]:
    """A vehicle as :class:`~api.schemas.VehicleOut` describes it, as plain data.

    Why not the model: ``GET /v1/vehicles`` lists every vehicle several times a second per
    dashboard, and building and validating 500 models, then FastAPI validating them again
    against the response model, was most of its cost (``bench.api``); the route serialises
    these dicts in one call instead. The shape is the model's: the OpenAPI test
    (schemathesis) and ``tests/integration/test_api_live.py`` validate answers against it."""
    info, st = entry.info, entry.status
    heard = None if st.last_seen is None else max(0.0, rt.clock.monotonic() - st.last_seen)
    return {
        "id": info.id,
        "kind": info.kind,
        "name": info.name,
        "link_url": info.link_url,
        "address": info.address,
        "capabilities": sorted(info.capabilities),
        "payload_kg": info.payload_kg,
        "link": st.link,
        "position": _pos(st.position),
        "home": _pos(st.home),
        "heading_deg": st.heading_deg,
        "ground_speed_mps": st.ground_speed_mps,
        "battery_fraction": st.battery_fraction,
        "armed": st.armed,
        "mode": st.mode,
        "landed": st.landed,
        "ready_to_arm": st.ready_to_arm,
        "ready_for_mission": st.ready_for_mission,
        "not_ready": list(st.not_ready),
        "mission": {
            "current": st.mission.current,
            "total": st.mission.total,
            "state": st.mission.state,
        },
        "seconds_since_heard": heard,
        "busy_with": busy.get(info.id),
        "errors": list(st.errors),
    }


def vehicle_out(rt: Runtime, entry: VehicleEntry) -> VehicleOut:
    return VehicleOut.model_validate(vehicle_dict(rt, entry, busy_vehicles(rt)))
