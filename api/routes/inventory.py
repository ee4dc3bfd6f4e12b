"""``/v1/skus``, ``/v1/sites`` and ``/v1/warehouses/{id}/...``: catalogue, places, stock
receipts and corrections, and the ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.auth import AnyoneDep, OperatorDep, ReaderDep
from api.deps import RuntimeDep
from api.schemas import (
    MAX_ID,
    AdjustmentIn,
    Ident,
    MovementOut,
    SiteOut,
    SkuIn,
    SkuOut,
    StockOut,
    StockReceiptIn,
)
from fleet.errors import NotFound, ValidationError
from fleet.store.tables import AuditLog, Sku

router = APIRouter(prefix="/v1", tags=["inventory"])


@router.get("/skus", response_model=list[SkuOut])
async def list_skus(rt: RuntimeDep, who: AnyoneDep) -> list[SkuOut]:
    return [SkuOut.model_validate(s, from_attributes=True) for s in await rt.store.skus()]


@router.put(
    "/skus/{sku_id}",
    response_model=SkuOut,
    status_code=status.HTTP_200_OK,
    responses={201: {"description": "Created"}, 422: {"description": "Invalid SKU"}},
)
async def put_sku(
    sku_id: Ident, body: SkuIn, rt: RuntimeDep, who: OperatorDep, response: Response
) -> SkuOut:
    """Create a SKU (201) or replace its description (200). Stock is counted in its ``unit``;
    a change of packing or mass applies to loads planned from now on."""
    existing = {s.id for s in await rt.store.skus()}
    sku = Sku(id=sku_id, **body.model_dump())
    await rt.store.upsert_sku(sku)
    await rt.store.audit(
        AuditLog(
            at=rt.clock.now(),
            actor=who.username,
            action="sku.update" if sku_id in existing else "sku.create",
            object_type="sku",
            object_id=sku_id,
            detail=body.model_dump(),
        )
    )
    await rt.missions.requests.refresh_catalogue()
    rt.missions.dispatcher.kick()
    if sku_id not in existing:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/v1/skus/{sku_id}"
    return SkuOut.model_validate(sku, from_attributes=True)


@router.get("/sites", response_model=list[SiteOut])
async def list_sites(rt: RuntimeDep, who: AnyoneDep, kind: str | None = None) -> list[SiteOut]:
    """Warehouses, communities and pads of the world."""
    return [SiteOut.model_validate(s, from_attributes=True) for s in await rt.store.sites(kind)]


def _warehouse(rt: RuntimeDep, warehouse_id: str) -> None:
    if warehouse_id not in {w.id for w in rt.world.warehouses}:
        raise NotFound("warehouse", warehouse_id)


@router.get("/warehouses/{warehouse_id}/stock", response_model=list[StockOut])
async def get_stock(warehouse_id: str, rt: RuntimeDep, who: AnyoneDep) -> list[StockOut]:
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
    warehouse_id: str, body: StockReceiptIn, rt: RuntimeDep, who: OperatorDep
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
        actor=who.username,
        note=body.note,
    )
    rt.missions.dispatcher.kick()
    return MovementOut.model_validate(mv, from_attributes=True)


@router.post(
    "/warehouses/{warehouse_id}/adjustments",
    response_model=MovementOut,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The correction would make stock negative"}},
)
async def adjust_stock(
    warehouse_id: str, body: AdjustmentIn, rt: RuntimeDep, who: OperatorDep
) -> MovementOut:
    """Correct a count (an ``adjust`` line, signed quantity, reason required). Taking off more
    than is available first releases allocations not yet on a vehicle (least urgent requests
    first; the next dispatch round shares the rest again); if even that is not enough (the
    units are on missions), 409 and nothing changes."""
    _warehouse(rt, warehouse_id)
    if body.sku_id not in {s.id for s in await rt.store.skus()}:
        raise ValidationError(f"unknown SKU {body.sku_id!r}", field="sku_id")
    mv = await rt.missions.adjust_stock(
        warehouse_id, body.sku_id, body.quantity, who.username, body.reason
    )
    return MovementOut.model_validate(mv, from_attributes=True)


@router.get("/warehouses/{warehouse_id}/ledger", response_model=list[MovementOut])
async def get_ledger(
    warehouse_id: str,
    rt: RuntimeDep,
    who: ReaderDep,
    sku_id: str | None = None,
    request_id: str | None = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
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
