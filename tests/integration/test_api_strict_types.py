"""Bodies are typed strictly: a JSON ``true`` or ``"5"`` where a number is expected, or ``1``
where a boolean is, is a 422 problem naming the field, never silently converted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.service import running_service, service_settings


@pytest.fixture
async def svc(tmp_path: Path) -> Any:
    async with running_service(service_settings(tmp_path)) as s:
        yield s


@pytest.mark.parametrize("quantity", [True, False, "5", None, 5.5])
async def test_a_quantity_must_be_an_integer(svc: Any, quantity: Any) -> None:
    r = await svc.http.post(
        "/v1/requests",
        json={"community_id": "C01", "items": [{"sku_id": "mask", "quantity": quantity}]},
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "items[0].quantity"


async def test_numbers_and_booleans_are_not_swapped(svc: Any) -> None:
    sku = {"name": "Gauze", "units_per_box": 10, "box_kg": 2, "box_volume_l": 20, "unit_kg": 0.2}
    for field, wrong in (("box_kg", True), ("units_per_box", "10"), ("drone_eligible", 1)):
        r = await svc.http.put("/v1/skus/gauze", json={**sku, field: wrong})
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert (await svc.http.put("/v1/skus/gauze", json=sku)).status_code == 201
    r = await svc.http.post("/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": "10"})
    assert r.status_code == 422 and r.json()["field"] == "quantity", r.text
    # an integer where a decimal is expected is a number, and is taken
    r = await svc.http.post("/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": 10})
    assert r.status_code in (200, 201), r.text
