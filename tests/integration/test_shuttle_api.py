"""``/v1/shuttle-plans`` over HTTP against the real service: create, read, replace, delete,
errors that name the field, overlapping hours for a van, optimistic versions, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import AcceleratedClock
from fleet.store.tables import Vehicle
from tests.service import RunningService, running_service, service_settings

START = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
"""09:00 in Shanghai."""


def body(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "day shift",
        "warehouse_id": "W1",
        "community_ids": ["C01", "C02", "C03"],
        "vehicle_ids": ["van-VAN-01"],
        "shift_start": "08:00",
        "shift_end": "16:00",
        "timezone": "Asia/Shanghai",
    }
    base.update(kw)
    return base


@pytest.fixture
async def svc(tmp_path: Path) -> Any:
    clock = AcceleratedClock(1.0, start=START.timestamp())
    async with running_service(service_settings(tmp_path), clock) as s:
        for serial in ("VAN-01", "VAN-02"):
            await s.runtime.store.upsert_vehicle(
                Vehicle(
                    id=f"van-{serial}",
                    kind="van",
                    link_url="vda5050+mqtt:///",
                    address=f"streetfleet/{serial}",
                    first_seen=START,
                    last_seen=START,
                )
            )
        yield s


async def test_create_read_list(svc: RunningService) -> None:
    http = await svc.client("ops-li", "operator")
    r = await http.post("/v1/shuttle-plans", json=body())
    assert r.status_code == 201, r.text
    plan = r.json()
    assert r.headers["location"] == f"/v1/shuttle-plans/{plan['id']}"
    assert plan["hours"] == 8.0 and plan["version"] == 1 and plan["created_by"] == "ops-li"
    assert plan["current_shift"] == {
        "day": "2026-04-01",
        "start": "2026-04-01T00:00:00Z",
        "end": "2026-04-01T08:00:00Z",
    }
    assert plan["next_shift"]["day"] == "2026-04-02"
    assert (await http.get(f"/v1/shuttle-plans/{plan['id']}")).json() == plan
    assert [p["id"] for p in (await http.get("/v1/shuttle-plans")).json()] == [plan["id"]]
    trips = (await http.get(f"/v1/shuttle-plans/{plan['id']}/trips")).json()
    assert trips["trips"] == [] and trips["boxes_delivered"] == 0
    audit = await svc.runtime.store.audit_log()
    assert any(a.action == "shuttle_plan.create" and a.actor == "ops-li" for a in audit)


async def test_default_time_zone_is_the_setting(svc: RunningService) -> None:
    r = await svc.http.post("/v1/shuttle-plans", json=body(timezone=None))
    assert r.status_code == 201, r.text
    assert r.json()["timezone"] == svc.settings.shuttle.timezone


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"warehouse_id": "W9"}, 422, "warehouse_id"),
        ({"community_ids": ["C01", "C99"]}, 422, "community_ids[1]"),
        ({"community_ids": ["C01", "C01"]}, 422, "community_ids[1]"),
        ({"community_ids": []}, 422, "community_ids"),
        ({"vehicle_ids": ["van-NOPE"]}, 422, "vehicle_ids[0]"),
        ({"shift_start": "25:00"}, 422, "shift_start"),
        ({"shift_end": "8:00"}, 422, "shift_end"),
        ({"shift_end": "08:00"}, 422, "shift_end"),
        ({"timezone": "Mars/Olympus"}, 422, "timezone"),
        ({"valid_from": "2026-04-03", "valid_until": "2026-04-02"}, 422, "valid_until"),
        ({"surprise": 1}, 422, "surprise"),
    ],
)
async def test_bad_plans_name_the_field(
    svc: RunningService, change: dict[str, Any], status: int, field: str
) -> None:
    r = await svc.http.post("/v1/shuttle-plans", json=body(**change))
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["field"] == field, problem


async def test_a_van_cannot_be_on_two_plans_at_the_same_hours(svc: RunningService) -> None:
    http = svc.http
    first = (await http.post("/v1/shuttle-plans", json=body())).json()
    r = await http.post(
        "/v1/shuttle-plans", json=body(shift_start="15:00", shift_end="20:00", name="late")
    )
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "vehicle_ids" and r.json()["shuttle_plan_id"] == first["id"]
    # after the first shift ends it is fine, and so is another van at the same hours
    r = await http.post("/v1/shuttle-plans", json=body(shift_start="16:00", shift_end="20:00"))
    assert r.status_code == 201, r.text
    r = await http.post("/v1/shuttle-plans", json=body(vehicle_ids=["van-VAN-02"]))
    assert r.status_code == 201, r.text


async def test_replace_with_versions(svc: RunningService) -> None:
    http = svc.http
    plan = (await http.post("/v1/shuttle-plans", json=body())).json()
    url = f"/v1/shuttle-plans/{plan['id']}"
    r = await http.put(url, json=body(shift_end="18:00", community_ids=["C04"], version=1))
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["version"] == 2 and new["hours"] == 10 and new["community_ids"] == ["C04"]
    r = await http.put(url, json=body(version=1))
    assert r.status_code == 409 and "changed meanwhile" in r.json()["detail"]
    # a replacement that would overlap another plan of the van is refused and changes nothing
    await http.post("/v1/shuttle-plans", json=body(shift_start="18:00", shift_end="22:00"))
    r = await http.put(url, json=body(shift_end="19:00"))
    assert r.status_code == 409 and r.json()["field"] == "vehicle_ids"
    assert (await http.get(url)).json()["shift_end"] == "18:00"
    r = await http.put("/v1/shuttle-plans/nope", json=body())
    assert r.status_code == 404


async def test_delete_hides_the_plan_and_frees_its_vans(svc: RunningService) -> None:
    http = svc.http
    plan = (await http.post("/v1/shuttle-plans", json=body())).json()
    url = f"/v1/shuttle-plans/{plan['id']}"
    assert (await http.delete(url)).status_code == 204
    assert (await http.get(url)).status_code == 404
    assert (await http.get(f"{url}/trips")).status_code == 404
    assert (await http.delete(url)).status_code == 404
    assert (await http.get("/v1/shuttle-plans")).json() == []
    r = await http.post("/v1/shuttle-plans", json=body())
    assert r.status_code == 201, r.text


async def test_a_disabled_plan_has_no_shift(svc: RunningService) -> None:
    r = await svc.http.post("/v1/shuttle-plans", json=body(enabled=False))
    assert r.status_code == 201
    assert r.json()["current_shift"] is None and r.json()["next_shift"] is None
    # a disabled plan does not block another one for the same van
    r = await svc.http.post("/v1/shuttle-plans", json=body())
    assert r.status_code == 201, r.text
