"""Fair allocation in the running service, through the HTTP API: scarce stock shared between
communities by weighted max-min (every asking community gets something, shortfall and Jain's
index reported), whatever the order requests and stock arrive in; priority classes first inside
a community; a priority change re-allocates; overdue requests close with their shortfall.

No vehicle is online, so allocated stock stays reserved for the requests (nothing flies) and
the manual clock only moves when a test moves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import ManualClock
from fleet.worldfile import load_world
from missions.allocation import community_weight
from tests.service import WORLDS, RunningService, running_service, service_settings
from tests.support import eventually

WORLD = load_world(WORLDS / "shatou.geojson")
WEIGHT = {c.id: community_weight(c.population, c.vulnerable_households) for c in WORLD.communities}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningService]:
    async with running_service(service_settings(tmp_path), clock) as s:
        yield s


async def settled(svc: RunningService) -> None:
    """Wait until a whole dispatch round has run after everything the test did."""
    d = svc.runtime.missions.dispatcher
    # a round already running may have read the record before the test's last change: kick,
    # let that round (or a new one) finish, then kick again for a round that starts after it
    for _ in range(2):
        start = d.rounds
        d.kick()
        await eventually(lambda start=start: d.rounds > start, message="a dispatch round")


async def ask(
    svc: RunningService, community: str, qty: int, sku: str = "test_kit", **kw: Any
) -> str:
    r = await svc.http.post(
        "/v1/requests",
        json={"community_id": community, "items": [{"sku_id": sku, "quantity": qty}], **kw},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def receive(svc: RunningService, qty: int, sku: str = "test_kit") -> None:
    r = await svc.http.post("/v1/warehouses/W1/stock", json={"sku_id": sku, "quantity": qty})
    assert r.status_code == 201, r.text


async def allocated(svc: RunningService, rid: str) -> int:
    req = (await svc.http.get(f"/v1/requests/{rid}")).json()
    return int(req["items"][0]["allocated"])


async def pool(svc: RunningService, sku: str = "test_kit") -> dict[str, Any]:
    latest = (await svc.http.get("/v1/allocations/latest")).json()
    [p] = [p for p in latest["pools"] if p["sku_id"] == sku and p["warehouse_id"] == "W1"]
    return dict(p)


ASKS = {"C01": 300, "C02": 300, "C05": 20, "C11": 5, "C12": 300}
STOCK = 400


def check_fair_shares(p: dict[str, Any]) -> dict[str, int]:
    """The weighted max-min guarantees on a pool report; returns the shares."""
    x = {c["community_id"]: c["allocated"] for c in p["communities"]}
    asked = {c["community_id"]: c["asked"] for c in p["communities"]}
    assert asked == ASKS
    assert sum(x.values()) == STOCK, "scarce stock is handed out entirely"
    assert all(v >= 1 for v in x.values()), f"a community that asked was starved: {x}"
    for c in x:
        if x[c] < asked[c]:  # c is short: nobody above the floor has more per weight
            for o in x:
                if x[o] > 1:
                    assert x[o] / WEIGHT[o] <= (x[c] + 1) / WEIGHT[c] + 1e-12, (c, o, x)
    assert x["C11"] == 5 and x["C05"] == 20, "small asks below their fair share are served"
    for c in p["communities"]:
        assert c["shortfall"] == c["asked"] - c["allocated"]
        assert c["reason"]
    assert 0 < p["jain_index"] <= 1
    assert p["rule"] == "max_min"
    return x


async def test_scarce_stock_is_shared_fairly_whatever_the_arrival_order(
    svc: RunningService,
) -> None:
    # stock first, one community asks first and is promised everything it asked for ...
    await receive(svc, STOCK)
    early = await ask(svc, "C01", ASKS["C01"])
    await settled(svc)
    assert await allocated(svc, early) == 300
    # ... then the others ask: the promise is re-balanced before anything left on a vehicle
    rids = {"C01": early}
    for c, q in ASKS.items():
        if c != "C01":
            rids[c] = await ask(svc, c, q)
    await settled(svc)
    p = await pool(svc)
    x = check_fair_shares(p)
    for c, rid in rids.items():
        assert await allocated(svc, rid) == x[c]
    latest = (await svc.http.get("/v1/allocations/latest")).json()
    assert latest["jain_index"] is not None
    assert latest["shortfall"] == {c: {"test_kit": ASKS[c] - x[c]} for c in ASKS if ASKS[c] > x[c]}

    # the stock record agrees: everything reserved, per request, without a mission
    [st] = [
        s
        for s in (await svc.http.get("/v1/warehouses/W1/stock")).json()
        if s["sku_id"] == "test_kit"
    ]
    assert (st["on_hand"], st["reserved"], st["available"]) == (STOCK, STOCK, 0)
    ledger = (await svc.http.get("/v1/warehouses/W1/ledger", params={"request_id": early})).json()
    assert (ledger[0]["kind"], ledger[0]["quantity"]) == ("reserve", 300)
    assert {m["kind"] for m in ledger[1:]} <= {"reserve", "release"}  # one step per arrival
    assert all(m["mission_id"] is None for m in ledger)
    held = sum(m["quantity"] * (1 if m["kind"] == "reserve" else -1) for m in ledger)
    assert held == x["C01"]

    # every request's decision says why this quantity
    for c, rid in rids.items():
        ds = (await svc.http.get("/v1/decisions", params={"request_id": rid})).json()
        last = [d for d in ds if d["data"].get("kind") == "allocation"][-1]
        assert last["data"]["quantity"] == x[c]
        assert last["data"]["data"]["shortfall"] == ASKS[c] - x[c]
        assert last["data"]["data"]["community_id"] == c
        assert f"{x[c]} of {ASKS[c]} allocated" in last["reason"]
    # and the pool's summary is a decision too, with the per-community figures
    ds = (await svc.http.get("/v1/decisions")).json()
    pools = [d for d in ds if d["request_id"] is None and d["data"]["data"].get("scope") == "pool"]
    assert pools and pools[-1]["data"]["data"]["allocated"] == STOCK
    assert "Jain's index" in pools[-1]["reason"]


async def test_stock_arriving_after_the_requests_is_shared_fairly(svc: RunningService) -> None:
    rids = {c: await ask(svc, c, q) for c, q in ASKS.items()}
    await settled(svc)
    p = await pool(svc)
    assert p["allocated"] == 0 and p["starved"] == sorted(ASKS)
    r = (await svc.http.get(f"/v1/requests/{rids['C05']}")).json()
    assert any(e["kind"] == "decision" and "waits for stock" in e["reason"] for e in r["events"])
    await receive(svc, STOCK)
    await settled(svc)
    x = check_fair_shares(await pool(svc))
    for c, rid in rids.items():
        assert await allocated(svc, rid) == x[c]


async def test_priority_classes_first_inside_a_community_and_a_priority_change_reallocates(
    svc: RunningService, clock: ManualClock
) -> None:
    await receive(svc, 60)
    s1 = await ask(svc, "C03", 50)
    await clock.advance(60)  # a minute later: its deadline is a minute later too
    s2 = await ask(svc, "C03", 50)
    await settled(svc)
    assert (await allocated(svc, s1), await allocated(svc, s2)) == (50, 10)
    urgent = await ask(svc, "C03", 30, priority="urgent_medical")
    await settled(svc)
    assert [await allocated(svc, r) for r in (urgent, s1, s2)] == [30, 30, 0]
    ds = (await svc.http.get("/v1/decisions", params={"request_id": s2})).json()
    assert "inside the community" in ds[-1]["reason"]

    # the later standard request becomes "vulnerable": it now goes before the other one
    r = await svc.http.post(
        f"/v1/requests/{s2}/priority",
        json={"priority": "vulnerable", "reason": "resident is 91 and lives alone"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["priority"] == "vulnerable"
    assert any(
        "priority changed from standard to vulnerable" in e["reason"] for e in body["events"]
    )
    await settled(svc)
    assert [await allocated(svc, r) for r in (urgent, s2, s1)] == [30, 30, 0]
    [st] = [
        s
        for s in (await svc.http.get("/v1/warehouses/W1/stock")).json()
        if s["sku_id"] == "test_kit"
    ]
    assert st["reserved"] == 60

    bad = await svc.http.post(
        f"/v1/requests/{s1}/priority", json={"priority": "vulnerable", "reason": "  "}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "reason"
    bad = await svc.http.post(
        f"/v1/requests/{s1}/priority", json={"priority": "asap", "reason": "x"}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "priority"
    assert (await svc.http.post(f"/v1/requests/{s1}/cancel", json={})).status_code == 200
    closed = await svc.http.post(
        f"/v1/requests/{s1}/priority", json={"priority": "vulnerable", "reason": "x"}
    )
    assert closed.status_code == 409


async def test_cancel_releases_the_allocation_and_the_others_get_it(svc: RunningService) -> None:
    await receive(svc, 40)
    a = await ask(svc, "C01", 40)
    b = await ask(svc, "C02", 40)
    await settled(svc)
    first = (await allocated(svc, a), await allocated(svc, b))
    assert sum(first) == 40 and min(first) >= 1
    r = await svc.http.post(f"/v1/requests/{a}/cancel", json={"reason": "resident moved"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    ledger = (await svc.http.get("/v1/warehouses/W1/ledger", params={"request_id": a})).json()
    assert ledger[-1]["kind"] == "release" and ledger[-1]["reserved_after"] == 40 - first[0]
    await settled(svc)
    assert await allocated(svc, b) == 40


async def test_overdue_requests_close_with_their_shortfall(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = service_settings(tmp_path, requests={"deadline_h": 1.0})
    async with running_service(settings, clock) as svc:
        nothing = await ask(svc, "C04", 12, sku="medicine", priority="urgent_medical")
        await receive(svc, 5, sku="test_kit")
        waiting = await ask(svc, "C06", 8)  # allocated 5, but no vehicle comes
        await settled(svc)
        assert await allocated(svc, waiting) == 5
        await clock.advance(3600 + 10)
        await settled(svc)

        req = (await svc.http.get(f"/v1/requests/{nothing}")).json()
        assert req["state"] == "failed", req["events"]
        assert "deadline" in req["reason"] and "short 12 medicine" in req["reason"]
        assert req["closed_at"] is not None
        [ev] = [e for e in req["events"] if e["to_state"] == "failed"]
        assert ev["data"]["shortfall"] == {"medicine": 12}

        # allocated units still wait for a vehicle: it stays open (and says so)
        req = (await svc.http.get(f"/v1/requests/{waiting}")).json()
        assert req["state"] == "approved"
        assert any(
            e["kind"] == "decision" and e["data"].get("kind") == "deadline" for e in req["events"]
        )
        # past its deadline it keeps what it holds and takes no more
        await receive(svc, 50)
        await settled(svc)
        assert await allocated(svc, waiting) == 5
