"""Stock through the HTTP API while the dispatcher allocates: never negative under concurrent
requests, receipts and corrections; the ledger replays to the stored balances; corrections are
signed with a reason and release allocations not yet on a vehicle; SKUs are created and
updated with validation."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import ManualClock
from missions.inventory import Ledger, Movement, MovementKind
from tests.service import RunningService, running_service, service_settings
from tests.support import eventually

COMMUNITIES = [f"C{i:02d}" for i in range(1, 13)]


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[RunningService]:
    async with running_service(service_settings(tmp_path), ManualClock()) as s:
        yield s


async def settled(svc: RunningService) -> None:
    d = svc.runtime.missions.dispatcher
    # a round already running may have read the record before the test's last change: kick,
    # let that round (or a new one) finish, then kick again for a round that starts after it
    for _ in range(2):
        start = d.rounds
        d.kick()
        await eventually(lambda start=start: d.rounds > start, message="a dispatch round")


async def stock_of(svc: RunningService, sku: str) -> dict[str, Any]:
    rows = (await svc.http.get("/v1/warehouses/W1/stock")).json()
    return next(r for r in rows if r["sku_id"] == sku)


def replay(ledger: list[dict[str, Any]]) -> Ledger:
    return Ledger.replay(
        Movement(
            kind=MovementKind(m["kind"]),
            warehouse_id=m["warehouse_id"],
            sku_id=m["sku_id"],
            quantity=m["quantity"],
            request_id=m["request_id"],
            mission_id=m["mission_id"],
            at=datetime.fromisoformat(m["at"]).timestamp(),
        )
        for m in ledger
    )


async def test_stock_never_goes_negative_under_concurrent_requests(svc: RunningService) -> None:
    http = svc.http
    rnd = random.Random(5)
    r = await http.post("/v1/warehouses/W1/stock", json={"sku_id": "test_kit", "quantity": 400})
    assert r.status_code == 201

    async def request(i: int) -> int:
        body = {
            "community_id": rnd.choice(COMMUNITIES),
            "items": [{"sku_id": "test_kit", "quantity": rnd.randint(5, 60)}],
            "priority": rnd.choice(["urgent_medical", "vulnerable", "standard"]),
        }
        return (await http.post("/v1/requests", json=body)).status_code

    async def correct(q: int) -> int:
        body = {"sku_id": "test_kit", "quantity": q, "reason": "count after a burst pipe"}
        r = await http.post("/v1/warehouses/W1/adjustments", json=body)
        if r.status_code == 409:
            assert r.json()["type"] == "/problems/insufficient-stock"
        return r.status_code

    async def receive(q: int) -> int:
        body = {"sku_id": "test_kit", "quantity": q}
        return (await http.post("/v1/warehouses/W1/stock", json=body)).status_code

    jobs = [request(i) for i in range(40)]
    jobs += [correct(-rnd.randint(20, 90)) for _ in range(10)]
    jobs += [receive(rnd.randint(10, 40)) for _ in range(6)]
    rnd.shuffle(jobs)
    codes = await asyncio.gather(*jobs)
    assert set(codes) <= {201, 409}, codes
    assert codes.count(201) >= 46  # every request and receipt, most corrections
    await settled(svc)

    st = await stock_of(svc, "test_kit")
    assert 0 <= st["reserved"] <= st["on_hand"]
    ledger = (await http.get("/v1/warehouses/W1/ledger", params={"limit": 5000})).json()
    assert all(
        m["on_hand_after"] >= 0 and 0 <= m["reserved_after"] <= m["on_hand_after"] for m in ledger
    )
    balance = replay(ledger).balance("W1", "test_kit")
    assert (balance.on_hand, balance.reserved) == (st["on_hand"], st["reserved"])

    # what is reserved is exactly what the requests were allocated (nothing flies here)
    reqs = (await http.get("/v1/requests", params={"limit": 1000})).json()
    assert sum(i["allocated"] for r in reqs for i in r["items"]) == st["reserved"]
    asked = sum(i["quantity"] for r in reqs for i in r["items"])
    assert st["reserved"] == min(asked, st["on_hand"])  # scarce stock is all promised


async def test_corrections_are_signed_with_a_reason_and_release_allocations(
    svc: RunningService,
) -> None:
    http = svc.http
    await http.post("/v1/warehouses/W1/stock", json={"sku_id": "test_kit", "quantity": 100})
    rid = (
        await http.post(
            "/v1/requests",
            json={"community_id": "C07", "items": [{"sku_id": "test_kit", "quantity": 100}]},
        )
    ).json()["id"]
    await settled(svc)
    assert (await stock_of(svc, "test_kit"))["reserved"] == 100

    # 30 kits found damaged: the request's promise shrinks first, then the count
    r = await http.post(
        "/v1/warehouses/W1/adjustments",
        json={"sku_id": "test_kit", "quantity": -30, "reason": "water damage"},
    )
    assert r.status_code == 201, r.text
    mv = r.json()
    assert (mv["kind"], mv["quantity"], mv["note"]) == ("adjust", -30, "water damage")
    assert (mv["on_hand_after"], mv["reserved_after"]) == (70, 70)
    req = (await http.get(f"/v1/requests/{rid}")).json()
    assert req["items"][0]["allocated"] == 70
    assert any("stock was corrected" in e["reason"] for e in req["events"])

    # more than is on hand: refused, nothing changes
    r = await http.post(
        "/v1/warehouses/W1/adjustments",
        json={"sku_id": "test_kit", "quantity": -80, "reason": "recount"},
    )
    assert r.status_code == 409 and r.json()["type"] == "/problems/insufficient-stock"
    st = await stock_of(svc, "test_kit")
    assert (st["on_hand"], st["reserved"]) == (70, 70)

    # found more than the books say
    r = await http.post(
        "/v1/warehouses/W1/adjustments",
        json={"sku_id": "test_kit", "quantity": 12, "reason": "recount: a pallet was missed"},
    )
    assert r.status_code == 201 and r.json()["on_hand_after"] == 82
    await settled(svc)
    assert (await http.get(f"/v1/requests/{rid}")).json()["items"][0]["allocated"] == 82

    for body, field in [
        ({"sku_id": "test_kit", "quantity": 0, "reason": "x"}, "quantity"),
        ({"sku_id": "test_kit", "quantity": -1}, "reason"),
        ({"sku_id": "test_kit", "quantity": -1, "reason": " "}, "reason"),
        ({"sku_id": "unicorn", "quantity": -1, "reason": "x"}, "sku_id"),
        ({"sku_id": "test_kit", "quantity": "lots", "reason": "x"}, "quantity"),
    ]:
        r = await http.post("/v1/warehouses/W1/adjustments", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, r.json()
    r = await http.post(
        "/v1/warehouses/W9/adjustments", json={"sku_id": "test_kit", "quantity": 1, "reason": "x"}
    )
    assert r.status_code == 404
    kinds = [m["kind"] for m in (await http.get("/v1/warehouses/W1/ledger")).json()]
    assert kinds.count("adjust") == 2


async def test_skus_are_created_and_updated_with_validation(svc: RunningService) -> None:
    http = svc.http
    body = {
        "name": "Insulin pens",
        "unit": "pen",
        "units_per_box": 10,
        "box_kg": 0.8,
        "box_volume_l": 2.0,
        "unit_kg": 0.07,
        "drone_eligible": True,
    }
    r = await http.put("/v1/skus/insulin", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/skus/insulin"
    assert r.json()["units_per_box"] == 10
    # usable at once
    r = await http.post(
        "/v1/requests",
        json={"community_id": "C02", "items": [{"sku_id": "insulin", "quantity": 3}]},
    )
    assert r.status_code == 201, r.text
    r = await http.put("/v1/skus/insulin", json={**body, "drone_eligible": False})
    assert r.status_code == 200
    skus = {s["id"]: s for s in (await http.get("/v1/skus")).json()}
    assert skus["insulin"]["drone_eligible"] is False

    for bad, field in [
        ({**body, "units_per_box": 0}, "units_per_box"),
        ({**body, "box_kg": -1}, "box_kg"),
        ({**body, "unit_kg": 5.0}, "unit_kg"),
        ({**body, "name": ""}, "name"),
        ({**body, "colour": "red"}, "colour"),
    ]:
        r = await http.put("/v1/skus/insulin", json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["field"] == field, r.json()
    assert (await http.put("/v1/skus/bad id!", json=body)).status_code == 422
    assert {s["id"] for s in (await http.get("/v1/skus")).json()} >= {"insulin", "mask"}
