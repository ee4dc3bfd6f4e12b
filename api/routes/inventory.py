"""``/v1/skus``, ``/v1/sites`` and ``/v1/warehouses/{id}/stock``: catalogue, places, stock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import ActorDep, RuntimeDep
from api.schemas import MovementOut, SiteOut, SkuOut, StockOut, StockReceiptIn
from fleet.errors import NotFound, ValidationError

router = APIRouter(prefix="/v1", tags=["inventory"])


@router.get("/skus", response_model=list[SkuOut])
async def list_skus(rt: RuntimeDep) -> list[SkuOut]:
    return [SkuOut.model_validate(s, from_attributes=True) for s in await rt.store.skus()]


@router.get("/sites", response_model=list[SiteOut])
async def list_sites(rt: RuntimeDep, kind: str | None = None) -> list[SiteOut]:
    """Warehouses, communities and pads of the world."""
    return [SiteOut.model_validate(s, from_attributes=True) for s in await rt.store.sites(kind)]


def _warehouse(rt: RuntimeDep, warehouse_id: str) -> None:
    if warehouse_id not in {w.id for w in rt.world.warehouses}:
        raise NotFound("warehouse", warehouse_id)


@router.get("/warehouses/{warehouse_id}/stock", response_model=list[StockOut])
async def get_stock(warehouse_id: str, rt: RuntimeDep) -> list[StockOut]:
    _warehouse(rt, warehouse_id)
    return [
        StockOut(
            warehouse_id=s.warehouse_id,
            sku_id=s.sku_id,
            on_hand=s.on_hand,
            reserved=s.reserved,
            available=s.on_hand - s.reserved,
        )
        for s in await rt.store.stock(warehouse_id)
    ]


@router.post(
    "/warehouses/{warehouse_id}/stock",
    response_model=MovementOut,
    status_code=status.HTTP_201_CREATED,
)
async def receive_stock(
    warehouse_id: str, body: StockReceiptIn, rt: RuntimeDep, actor: ActorDep
) -> MovementOut:
    """Record goods received at a warehouse (a ``receive`` line in the ledger)."""
    _warehouse(rt, warehouse_id)
    if body.sku_id not in {s.id for s in await rt.store.skus()}:
        raise ValidationError(f"unknown SKU {body.sku_id!r}", field="sku_id")
    mv = await rt.store.move_stock(
        "receive",
        warehouse_id,
        body.sku_id,
        body.quantity,
        at=rt.clock.now(),
        actor=actor,
        note=body.note,
    )
    rt.missions.dispatcher.kick()
    return MovementOut.model_validate(mv, from_attributes=True)


@router.get("/warehouses/{warehouse_id}/ledger", response_model=list[MovementOut])
async def get_ledger(
    warehouse_id: str,
    rt: RuntimeDep,
    sku_id: str | None = None,
    request_id: str | None = None,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[MovementOut]:
    """Stock movements, oldest first; page with ``after_id``."""
    _warehouse(rt, warehouse_id)
    rows = await rt.store.ledger(
        warehouse_id=warehouse_id,
        sku_id=sku_id,
        request_id=request_id,
        after_id=after_id,
        limit=limit,
    )
    return [MovementOut.model_validate(m, from_attributes=True) for m in rows]
