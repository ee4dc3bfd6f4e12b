"""The request API over real HTTP: validation names the field, nothing is half-written,
idempotent retries, approval and cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service import RunningService, running_service, service_settings


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[RunningService]:
    async with running_service(service_settings(tmp_path)) as s:
        yield s


def body(**kw: object) -> dict[str, object]:
    b: dict[str, object] = {"community_id": "C03", "items": [{"sku_id": "medicine", "quantity": 5}]}
    b.update(kw)
    return b


async def test_submit_and_read_back(svc: RunningService) -> None:
    r = await svc.http.post("/v1/requests", json=body(priority="urgent_medical"))
    assert r.status_code == 201, r.text
    req = r.json()
    assert r.headers["location"] == f"/v1/requests/{req['id']}"
    assert req["state"] in {"approved", "scheduled"}  # no drones here, it waits approved
    assert req["deadline"] is not None
    got = (await svc.http.get(f"/v1/requests/{req['id']}")).json()
    assert got["items"] == [{"sku_id": "medicine", "quantity": 5, "allocated": 0, "delivered": 0}]
    kinds = [(e["kind"], e["to_state"]) for e in got["events"]]
    assert ("state", "submitted") in kinds
    assert ("state", "approved") in kinds

    # with no drone online, the dispatcher says why it waits
    async def waiting() -> bool:
        evs = (await svc.http.get(f"/v1/requests/{req['id']}")).json()["events"]
        return any(e["kind"] == "decision" and "waits" in e["reason"] for e in evs)

    from tests.support import eventually

    await eventually(waiting, timeout=10, message="a decision explaining the wait")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(community_id="C99"), "community_id"),
        (body(items=[{"sku_id": "unicorn", "quantity": 1}]), "items[0].sku_id"),
        (body(items=[{"sku_id": "medicine", "quantity": 0}]), "items[0].quantity"),
        (body(items=[{"sku_id": "medicine", "quantity": "many"}]), "items[0].quantity"),
        (body(items=[]), "items"),
        (
            body(
                items=[{"sku_id": "medicine", "quantity": 1}, {"sku_id": "medicine", "quantity": 2}]
            ),
            "items[1].sku_id",
        ),
        (body(priority="whenever"), "priority"),
        (body(colour="red"), "colour"),
        ({"items": [{"sku_id": "medicine", "quantity": 1}]}, "community_id"),
    ],
)
async def test_invalid_input_names_the_field_and_writes_nothing(
    svc: RunningService, payload: dict[str, object], field: str
) -> None:
    r = await svc.http.post("/v1/requests", json=payload)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["field"] == field, problem
    assert problem["reason"]
    assert (await svc.http.get("/v1/requests")).json() == []


async def test_not_json_is_a_clear_422(svc: RunningService) -> None:
    r = await svc.http.post(
        "/v1/requests", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["type"] == "/problems/validation"


async def test_idempotency_key_returns_the_first_request(svc: RunningService) -> None:
    h = {"Idempotency-Key": "staff-C03-0001"}
    first = await svc.http.post("/v1/requests", json=body(), headers=h)
    again = await svc.http.post("/v1/requests", json=body(), headers=h)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert len((await svc.http.get("/v1/requests")).json()) == 1


async def test_unknown_ids_are_404_problems(svc: RunningService) -> None:
    for path in ("/v1/requests/nope", "/v1/missions/nope", "/v1/vehicles/nope"):
        r = await svc.http.get(path)
        assert r.status_code == 404, path
        assert r.json()["type"] == "/problems/not-found"


async def test_cancel_an_approved_request(svc: RunningService) -> None:
    req = (await svc.http.post("/v1/requests", json=body())).json()
    r = await svc.http.post(f"/v1/requests/{req['id']}/cancel", json={"reason": "resident moved"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    again = await svc.http.post(f"/v1/requests/{req['id']}/cancel", json={})
    assert again.status_code == 409


async def test_stock_receipt_and_ledger(svc: RunningService) -> None:
    r = await svc.http.post("/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": 5000})
    assert r.status_code == 201, r.text
    stock = (await svc.http.get("/v1/warehouses/W1/stock")).json()
    assert {
        "warehouse_id": "W1",
        "sku_id": "mask",
        "on_hand": 5000,
        "reserved": 0,
        "available": 5000,
    } in stock
    ledger = (await svc.http.get("/v1/warehouses/W1/ledger")).json()
    assert [m["kind"] for m in ledger] == ["receive"]
    bad = await svc.http.post("/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": -5})
    assert bad.status_code == 422
    assert bad.json()["field"] == "quantity"
    assert (
        await svc.http.post("/v1/warehouses/W9/stock", json={"sku_id": "mask", "quantity": 1})
    ).status_code == 404


async def test_openapi_is_published(svc: RunningService) -> None:
    spec = (await svc.http.get("/openapi.json")).json()
    assert "/v1/requests" in spec["paths"]
    assert (await svc.http.get("/docs")).status_code == 200
