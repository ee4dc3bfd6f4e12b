"""End to end: one sim van runs an 8-hour shuttle shift in the Shatou world over the real
Mosquitto, in accelerated time. A day's demand of the reference deployment arrives through the
HTTP API in three waves, stock is received through the API, and the shuttle plan is defined
through the API. At the end: at least 500 boxes delivered, to all 12 communities, every box
traced from the ledger (reserve, load, deliver with request and mission ids) through its
request to the drop event of its load."""

from __future__ import annotations

import math
import os
import random
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from fleet.clock import AcceleratedClock
from fleet.world import World
from fleet.worldfile import load_world
from missions.catalogue import DEFAULT_SKUS
from missions.inventory import Ledger, Movement, MovementKind
from sim.runner import SimFleet
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.mosquitto, pytest.mark.slow]

SPEED = float(os.environ.get("STREETFLEET_TEST_SHUTTLE_SPEED", "500"))
"""World seconds per real second for the shift (8 h in about a minute at 500)."""
SHIFT_H = 8.0
TZ = "Asia/Shanghai"

REFERENCE_DAY: dict[str, int] = {
    "mask": 80_000,
    "gloves": 30_000,
    "face_shield": 10_000,
    "alcohol": 10_000,
    "protective_suit": 3_000,
}
"""One day's load of the reference deployment, in units (about 890 boxes, 7.9 t)."""
WAVES = ((0.0, 0.5), (2.0, 0.3), (4.0, 0.2))
"""(hours after the shift starts, share of the day's demand) of the request waves."""
UNITS_PER_BOX = {s.id: s.units_per_box for s in DEFAULT_SKUS}


def day_demand(world: World, seed: int = 7) -> list[dict[str, Any]]:
    """The day's requests: each community asks a share of every SKU proportional to its
    population (with +-30 % noise), in whole boxes, split over the waves; a few food parcels
    for vulnerable residents. Returns request bodies with a ``wave`` index."""
    rng = random.Random(seed)
    pops = {c.id: c.population * rng.uniform(0.7, 1.3) for c in world.communities}
    total = sum(pops.values())
    out: list[dict[str, Any]] = []
    for w, (_, share) in enumerate(WAVES):
        for c in world.communities:
            items = []
            for sku, units in REFERENCE_DAY.items():
                per_box = UNITS_PER_BOX[sku]
                boxes = max(1, round(units * share * pops[c.id] / total / per_box))
                items.append({"sku_id": sku, "quantity": boxes * per_box})
            out.append(
                {
                    "wave": w,
                    "community_id": c.id,
                    "items": items,
                    "priority": "standard",
                    "requested_by": f"{c.id} staff",
                }
            )
            if w == 0:
                parcels = max(2, c.vulnerable_households // 20)
                out.append(
                    {
                        "wave": w,
                        "community_id": c.id,
                        "items": [{"sku_id": "food_box", "quantity": parcels}],
                        "priority": "vulnerable",
                        "requested_by": f"{c.id} staff",
                        "note": "elderly residents living alone",
                    }
                )
    return out


async def submit(http: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        r = await http.post("/v1/requests", json={k: v for k, v in body.items() if k != "wave"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def check_traceability(
    http: httpx.AsyncClient, request_ids: list[str], plan_id: str
) -> dict[str, int]:
    """Every delivered unit: deliver movements (request, mission) match the request's
    delivered counts and loads; every deliver is matched by a drop event of a load of that
    mission that carries this request. Returns boxes delivered per community."""
    trips = (await http.get(f"/v1/shuttle-plans/{plan_id}/trips")).json()["trips"]
    loads_of = {t["mission_id"]: {ld["load_id"] for ld in t["loads"]} for t in trips}
    boxes: dict[str, int] = defaultdict(int)
    traced = 0
    for rid in request_ids:
        req = (await http.get(f"/v1/requests/{rid}")).json()
        ledger = (await http.get("/v1/warehouses/W1/ledger", params={"request_id": rid})).json()
        by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        by_mission: dict[tuple[str, str], int] = defaultdict(int)
        for mv in ledger:
            by_kind[mv["kind"]][mv["sku_id"]] += mv["quantity"]
            if mv["kind"] == "deliver":
                assert mv["mission_id"], mv
                by_mission[(mv["mission_id"], mv["sku_id"])] += mv["quantity"]
            if mv["kind"] in ("load", "deliver", "return"):
                assert mv["mission_id"] and mv["request_id"] == rid, mv
        drops: dict[tuple[str, str], int] = defaultdict(int)
        for ev in req["events"]:
            if ev["kind"] == "payload" and ev["data"].get("action") == "drop":
                load_id = ev["data"]["load_id"]
                assert load_id in loads_of.get(ev["mission_id"], set()), ev
                for sku, q in ev["data"]["units"].items():
                    drops[(ev["mission_id"], sku)] += q
        for item in req["items"]:
            sku, delivered = item["sku_id"], item["delivered"]
            assert by_kind["deliver"][sku] == delivered, (rid, sku, by_kind)
            assert by_kind["load"][sku] >= delivered, (rid, sku, by_kind)
            assert by_kind["reserve"][sku] >= by_kind["load"][sku] - by_kind["return"][sku], (
                rid,
                sku,
                by_kind,
            )
            if delivered:
                traced += 1
                boxes[req["community_id"]] += math.ceil(delivered / UNITS_PER_BOX[sku])
        assert dict(drops) == dict(by_mission), (rid, drops, by_mission)
    assert traced > 0
    return boxes


async def check_ledger_replays(http: httpx.AsyncClient) -> None:
    """Replaying the whole ledger under the ledger rules gives the stored balances."""
    rows: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (
            await http.get("/v1/warehouses/W1/ledger", params={"after_id": after, "limit": 5000})
        ).json()
        rows += page
        if len(page) < 5000:
            break
        after = page[-1]["id"]
    ledger = Ledger.replay(
        Movement(
            MovementKind(r["kind"]),
            r["warehouse_id"],
            r["sku_id"],
            r["quantity"],
            request_id=r["request_id"],
            mission_id=r["mission_id"],
        )
        for r in rows
    )
    for st in (await http.get("/v1/warehouses/W1/stock")).json():
        b = ledger.balance("W1", st["sku_id"])
        assert (b.on_hand, b.reserved) == (st["on_hand"], st["reserved"]), st


def plan_body(clock: AcceleratedClock, world: World, van_id: str) -> dict[str, Any]:
    local = clock.now().astimezone(ZoneInfo(TZ))
    end = local + timedelta(hours=SHIFT_H)
    return {
        "name": "Shatou day shift",
        "warehouse_id": "W1",
        "community_ids": [c.id for c in world.communities],
        "vehicle_ids": [van_id],
        "shift_start": f"{local:%H:%M}",
        "shift_end": f"{end:%H:%M}",
        "timezone": TZ,
    }


async def test_one_van_eight_hour_shift(tmp_path: Path, mqtt_url: str, mqtt_prefix: str) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    host_port = mqtt_url.removeprefix("mqtt://")
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mqtt={"url": mqtt_url},
        vda5050={"links": [f"vda5050+mqtt://{host_port}/streetfleet?prefix={mqtt_prefix}"]},
        shuttle={"routing_time_limit_s": 0.25, "timezone": TZ},
    )
    demand = day_demand(world)
    real_start = time.monotonic()
    async with (
        running_service(settings, clock) as svc,
        SimFleet(
            0, world=world, clock=clock, vans=1, mqtt_url=mqtt_url, van_topic_prefix=mqtt_prefix
        ),
    ):
        http = svc.http
        # rounds are woken by every event that matters; the steady interval only backs them up
        svc.runtime.missions.dispatcher.interval_s = 300.0

        async def van_online() -> str | None:
            for v in (await http.get("/v1/vehicles")).json():
                if v["kind"] == "van" and v["link"] == "online":
                    return str(v["id"])
            return None

        van_id = await eventually(van_online, timeout=20, message="the sim van is online")
        totals: dict[str, int] = defaultdict(int)
        for body in demand:
            for it in body["items"]:
                totals[it["sku_id"]] += it["quantity"]
        for sku, qty in sorted(totals.items()):
            r = await http.post(
                "/v1/warehouses/W1/stock",
                json={"sku_id": sku, "quantity": qty, "note": "day's supplies"},
            )
            assert r.status_code == 201, r.text
        r = await http.post("/v1/shuttle-plans", json=plan_body(clock, world, van_id))
        assert r.status_code == 201, r.text
        plan = r.json()
        assert plan["hours"] == SHIFT_H and plan["current_shift"] is not None
        shift_start = clock.time()
        shift_end = shift_start + SHIFT_H * 3600 - 60  # the plan's minutes are truncated

        request_ids: list[str] = []
        for w, (after_h, _) in enumerate(WAVES):
            wave_at = shift_start + after_h * 3600
            await eventually(
                lambda t=wave_at: clock.time() >= t, timeout=after_h * 3600 / SPEED + 5
            )
            request_ids += await submit(http, [b for b in demand if b["wave"] == w])

        async def shift_over() -> bool:
            if clock.time() < shift_end:
                return False
            ms = (await http.get("/v1/missions", params={"limit": 1000})).json()
            return not any(m["state"] in ("planned", "authorized", "underway") for m in ms)

        await eventually(
            shift_over,
            timeout=SHIFT_H * 3600 / SPEED + 120,
            interval=0.5,
            message="the shift ends and the last trip is back",
        )
        real_s = time.monotonic() - real_start

        trips = (await http.get(f"/v1/shuttle-plans/{plan['id']}/trips")).json()
        done = [t for t in trips["trips"] if t["mission_id"] is not None]
        delivered_by_community = trips["boxes_delivered_by_community"]
        missions = {
            m["id"]: m for m in (await http.get("/v1/missions", params={"limit": 1000})).json()
        }
        for t in done:
            m = missions[t["mission_id"]]
            assert m["plan"]["boxes"] <= 150 and m["plan"]["kg"] <= 1000 + 1e-6, m["plan"]
            assert m["plan"]["return_at"] <= shift_end + 60, m["plan"]
        states = defaultdict(int)
        for t in done:
            states[t["state"]] += 1
        print(
            f"\nshift of {SHIFT_H:.0f} h at {SPEED:.0f}x in {real_s:.0f} s real: "
            f"{len(done)} trips {dict(states)}, {trips['boxes_delivered']} boxes delivered, "
            f"by community {delivered_by_community}"
        )
        assert trips["boxes_delivered"] >= 500, trips["boxes_delivered"]
        assert sorted(delivered_by_community) == sorted(c.id for c in world.communities)
        assert states["completed"] >= len(done) - 1, dict(states)

        traced = await check_traceability(http, request_ids, plan["id"])
        assert sum(traced.values()) >= 500
        assert sorted(traced) == sorted(c.id for c in world.communities)
        await check_ledger_replays(http)
        last_back = max(
            m["ended_at"] for m in missions.values() if m["kind"] == "van_shuttle" and m["ended_at"]
        )
        assert last_back is not None
