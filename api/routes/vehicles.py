"""``/v1/vehicles``: the live fleet."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.schemas import VehicleOut
from api.views import vehicle_out

router = APIRouter(prefix="/v1/vehicles", tags=["vehicles"])


@router.get("", response_model=list[VehicleOut])
async def list_vehicles(rt: RuntimeDep) -> list[VehicleOut]:
    """Every vehicle the links have discovered, with its live status."""
    return [vehicle_out(rt, e) for e in sorted(rt.registry, key=lambda e: e.info.id)]


@router.get("/{vehicle_id}", response_model=VehicleOut)
async def get_vehicle(vehicle_id: str, rt: RuntimeDep) -> VehicleOut:
    return vehicle_out(rt, rt.registry.get(vehicle_id))
