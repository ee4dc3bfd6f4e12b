"""Scenario bodies shared by the e2e suite (sim drones) and the SITL suite (real PX4).

Each scenario talks to a running service only through its HTTP API and checks the service's own
record (request and mission states, phases, the release and landing distances it measured, the
inventory ledger). The suites add what only they can check: the e2e tests the simulator's
ground truth, the SITL tests PX4's liveness and logs. ``speed`` is the time acceleration the
service's clock and the vehicles share; timeouts are world durations divided by it plus a margin
of real time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fleet.settings import Settings
from fleet.world import Community
from tests.service import service_settings
from tests.support import eventually

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "20"))
"""Time acceleration of the e2e runs (world seconds per real second)."""

REQUEST_FINAL = frozenset({"delivered", "failed", "cancelled", "partially_delivered"})
"""Request states after which nothing changes."""
MISSION_FINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})
"""Mission states after which nothing changes."""

Check = Callable[[], None]
"""Called while waiting; raises to fail fast (e.g. a PX4 process died)."""


def drone_service_settings(tmp_path: Path, ports: Sequence[int], speed: float) -> Settings:
    """Service settings for drones on ``ports`` (one ``mavlink+udpin`` link each) at ``speed``."""
    return service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": speed},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{p}" for p in ports]},
    )


def _checked(predicate: Callable[[], Any], check: Check | None) -> Callable[[], Any]:
    if check is None:
        return predicate

    def run() -> Any:
        check()
        return predicate()

    return run


async def add_stock(
    http: httpx.AsyncClient, sku: str, quantity: int, warehouse: str = "W1"
) -> None:
    r = await http.post(
        f"/v1/warehouses/{warehouse}/stock", json={"sku_id": sku, "quantity": quantity}
    )
    assert r.status_code == 201, r.text


async def wait_ready(
    http: httpx.AsyncClient, count: int, timeout: float, check: Check | None = None
) -> list[dict[str, Any]]:
    """Wait until the service sees ``count`` vehicles online and ready to arm
    (``VehicleStatus.ready_to_arm``, from the vehicles' own pre-arm checks)."""

    async def ready() -> list[dict[str, Any]] | None:
        vs = (await http.get("/v1/vehicles")).json()
        ok = len(vs) == count and all(v["ready_to_arm"] and v["link"] == "online" for v in vs)
        return vs if ok else None

    result: list[dict[str, Any]] = await eventually(
        _checked(ready, check),
        timeout=timeout,
        message=f"{count} vehicle(s) discovered and ready to arm",
    )
    return result


async def post_request(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post("/v1/requests", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def wait_request(
    http: httpx.AsyncClient,
    request_id: str,
    timeout: float,
    check: Check | None = None,
    message: str = "the request reaches a final state",
) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        req: dict[str, Any] = (await http.get(f"/v1/requests/{request_id}")).json()
        return req if req["state"] in REQUEST_FINAL else None

    result: dict[str, Any] = await eventually(
        _checked(final, check), timeout=timeout, interval=0.5, message=message
    )
    return result


async def wait_mission(
    http: httpx.AsyncClient,
    mission_id: str,
    timeout: float,
    check: Check | None = None,
    states: frozenset[str] = MISSION_FINAL,
    message: str = "the mission ends",
) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        m: dict[str, Any] = (await http.get(f"/v1/missions/{mission_id}")).json()
        return m if m["state"] in states else None

    result: dict[str, Any] = await eventually(
        _checked(done, check), timeout=timeout, interval=0.5, message=message
    )
    return result


# --- delivery ----------------------------------------------------------------------------


@dataclass
class Delivery:
    """What the delivery scenario saw: the final request and its mission."""

    request: dict[str, Any]
    mission: dict[str, Any]


async def fly_delivery(
    http: httpx.AsyncClient,
    community: Community,
    *,
    vehicles: int,
    speed: float,
    ready_timeout: float = 30.0,
    check: Check | None = None,
) -> Delivery:
    """Stock the warehouse, wait for ``vehicles`` ready drones, request 12 boxes of medicine for
    ``community`` and follow the request to ``delivered``, checking the service's record:
    mission states and phases, the dispatcher's decision, release within 5 m of the drop point,
    landing within 3 m of the pad, and every unit traceable in the ledger."""
    await add_stock(http, "medicine", 200)
    await wait_ready(http, vehicles, ready_timeout, check)

    req = await post_request(
        http,
        {
            "community_id": community.id,
            "priority": "urgent_medical",
            "items": [{"sku_id": "medicine", "quantity": 12}],
        },
    )
    request_id = req["id"]
    req = await wait_request(http, request_id, 1800 / speed + 60, check)
    assert req["state"] == "delivered", req["events"]
    assert req["items"][0]["delivered"] == 12
    [mission_id] = req["missions"]

    mission = await wait_mission(http, mission_id, 900 / speed + 60, check)
    assert mission["state"] == "completed", mission["reason"]
    states = [
        e["to_state"] for e in mission["events"] if e["kind"] == "state" and e["request_id"] is None
    ]
    assert states == ["planned", "authorized", "underway", "completed"]
    phases = [e["data"]["phase"] for e in mission["events"] if e["kind"] == "phase"]
    assert phases[:2] == ["preflight", "takeoff"]
    assert {"go_to", "drop_off", "return", "landing", "done"} <= set(phases)
    assert any(e["kind"] == "decision" and "chosen" in e["reason"] for e in mission["events"])

    # the service's own record of the release and the landing
    assert mission["result"]["release_distance_m"] <= 5.0
    assert mission["result"]["landing_distance_m"] <= 3.0

    # every unit is traceable: reserved, loaded, delivered for this request
    ledger = (await http.get("/v1/warehouses/W1/ledger", params={"request_id": request_id})).json()
    assert [(m["kind"], m["quantity"]) for m in ledger] == [
        ("reserve", 12),
        ("load", 12),
        ("deliver", 12),
    ]
    stock = {s["sku_id"]: s for s in (await http.get("/v1/warehouses/W1/stock")).json()}
    assert stock["medicine"]["on_hand"] == 188
    assert stock["medicine"]["reserved"] == 0
    return Delivery(req, mission)


# --- restart -----------------------------------------------------------------------------


@dataclass
class InFlight:
    """Left by the first service run of the restart scenario."""

    first_request_id: str
    mission_id: str
    second_request_id: str


async def start_delivery_then_stop(
    http: httpx.AsyncClient,
    *,
    speed: float,
    ready_timeout: float = 30.0,
    check: Check | None = None,
) -> InFlight:
    """First service run of the restart scenario: a delivery to C04 is under way (cruising)
    and a second request (C01) is accepted just before the service stops."""
    await add_stock(http, "test_kit", 100)
    await wait_ready(http, 1, ready_timeout, check)
    first = await post_request(
        http, {"community_id": "C04", "items": [{"sku_id": "test_kit", "quantity": 20}]}
    )

    async def cruising() -> str | None:
        req = (await http.get(f"/v1/requests/{first['id']}")).json()
        if not req["missions"]:
            return None
        m = (await http.get(f"/v1/missions/{req['missions'][0]}")).json()
        return m["id"] if m["phase"] == "go_to" else None

    mission_id: str = await eventually(
        _checked(cruising, check), timeout=300 / speed + 30, message="the drone is on its way"
    )
    # accepted just before the stop: must survive it
    second = await post_request(
        http, {"community_id": "C01", "items": [{"sku_id": "test_kit", "quantity": 5}]}
    )
    return InFlight(first["id"], mission_id, second["id"])


async def resume_after_restart(
    http: httpx.AsyncClient, inflight: InFlight, *, speed: float, check: Check | None = None
) -> None:
    """Second service run: the mission flown during the restart is followed to the end and the
    request accepted before the stop is flown after the drone is back."""
    req1 = await wait_request(
        http,
        inflight.first_request_id,
        1200 / speed + 60,
        check,
        message="the first request is delivered",
    )
    assert req1["state"] == "delivered", req1["events"]
    m = (await http.get(f"/v1/missions/{inflight.mission_id}")).json()
    assert any("service restarted" in e["reason"] for e in m["events"])
    await wait_mission(
        http,
        inflight.mission_id,
        600 / speed + 60,
        check,
        states=frozenset({"completed"}),
        message="the resumed mission completes",
    )
    # the request accepted before the stop is flown after the drone is back
    req2 = await wait_request(
        http,
        inflight.second_request_id,
        1200 / speed + 60,
        check,
        message="the second request is delivered",
    )
    assert req2["state"] == "delivered", req2["events"]
