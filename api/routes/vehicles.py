"""``/v1/vehicles``: the live fleet, and what each vehicle reported."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic_core import to_json

from api.auth import AnyoneDep, OperatorDep
from api.deps import RuntimeDep
from api.schemas import MAX_ID, EventOut, VehicleOut
from api.views import busy_vehicles, event_out, vehicle_dict, vehicle_out
from fleet.errors import NotFound

router = APIRouter(prefix="/v1/vehicles", tags=["vehicles"])

VEHICLE_EVENT_KIND = "vehicle"
"""Kind of the mission-event rows that record vehicle events (``fleet.supervisor``)."""


@router.get("", response_model=list[VehicleOut])
async def list_vehicles(rt: RuntimeDep, who: AnyoneDep) -> Response:
    """Every vehicle the links have discovered, with its live status."""
    busy = busy_vehicles(rt)
    rows = [vehicle_dict(rt, e, busy) for e in sorted(rt.registry, key=lambda e: e.info.id)]
    return Response(to_json(rows), media_type="application/json")


@router.get("/{vehicle_id}", response_model=VehicleOut)
async def get_vehicle(vehicle_id: str, rt: RuntimeDep, who: AnyoneDep) -> VehicleOut:
    return vehicle_out(rt, rt.registry.get(vehicle_id))


@router.get("/{vehicle_id}/events", response_model=list[EventOut])
async def vehicle_events(
    vehicle_id: str,
    rt: RuntimeDep,
    who: AnyoneDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[EventOut]:
    """What the vehicle reported, oldest first: its texts and events in its own words, mode,
    arming, landed-state, mission-state and readiness changes, link losses and failsafes
    (``data.event`` names the kind). Page with ``after_id`` (the last ``id`` seen). A vehicle
    neither live nor on record is a 404 problem."""
    if rt.registry.find(vehicle_id) is None and await rt.store.vehicle(vehicle_id) is None:
        raise NotFound("vehicle", vehicle_id)
    rows = await rt.store.events(
        vehicle_id=vehicle_id, kind=VEHICLE_EVENT_KIND, after_id=after_id, limit=limit
    )
    return [event_out(e) for e in rows]


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    in_service: StrictBool = Field(description="False: take it out of service; true: back in")
    reason: str = Field(min_length=1, max_length=500, description="Why (recorded)")


class ServiceOut(BaseModel):
    vehicle_id: str
    in_service: bool
    changed: bool = Field(description="False when it already was so")


@router.put(
    "/{vehicle_id}/service",
    response_model=ServiceOut,
    responses={404: {"description": "No such vehicle on record"}},
)
async def set_service(
    vehicle_id: str, body: ServiceIn, rt: RuntimeDep, who: OperatorDep
) -> ServiceOut:
    """Take a vehicle out of service, or put it back. Out of service it is offered no work; a
    drone flying a mission is called home and the mission's work goes back in the queue for
    another drone; a van on a trip cancels its order and comes back, its undelivered stops
    planned onto other vans. Recorded as a vehicle event (``out_of_service``)."""
    changed = await rt.missions.set_in_service(
        vehicle_id, body.in_service, who.username, body.reason
    )
    return ServiceOut(vehicle_id=vehicle_id, in_service=body.in_service, changed=changed)
