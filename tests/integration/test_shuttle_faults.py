"""Van trips when things go wrong, over the real Mosquitto with sim vans and the real service:
an operator cancels a trip on the road (cancelOrder, then an unload trip from where the van
stopped, off its last node), and the service restarts while a van is out (a new bridge follows
an order it never sent).

The logic of every fault (a van lost mid-trip and recovered, taken out of service, a low battery,
a load missing at the gate, and these two) is tested on fake vans in
``tests/unit/shuttle/test_shuttle_run.py``; these two stay for what crosses the wire."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from fleet.clock import AcceleratedClock
from fleet.settings import Settings
from fleet.world import World
from fleet.worldfile import load_world
from sim.van.fleet import SimVanFleet
from tests.service import WORLDS, RunningService, running_service, service_settings
from tests.support import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

SPEED = 200.0
TZ = "Asia/Shanghai"
ACTIVE = ("planned", "authorized", "underway")


@dataclass
class Scene:
    svc: RunningService
    vans: SimVanFleet
    clock: AcceleratedClock
    world: World
    plan_id: str

    @property
    def http(self) -> httpx.AsyncClient:
        return self.svc.http


def settings_for(tmp_path: Path, mqtt_url: str, prefix: str, **shuttle: Any) -> Settings:
    host_port = mqtt_url.removeprefix("mqtt://")
    return service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mqtt={"url": mqtt_url},
        vda5050={"links": [f"vda5050+mqtt://{host_port}/streetfleet?prefix={prefix}"]},
        shuttle={"routing_time_limit_s": 0.2, "timezone": TZ, **shuttle},
    )


@asynccontextmanager
async def scene(
    tmp_path: Path,
    mqtt_url: str,
    prefix: str,
    *,
    vans: int = 1,
    battery_soc: float = 1.0,
    **shuttle: Any,
) -> AsyncIterator[Scene]:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    settings = settings_for(tmp_path, mqtt_url, prefix, **shuttle)
    async with (
        running_service(settings, clock) as svc,
        SimVanFleet(
            mqtt_url, clock, vans, world=world, topic_prefix=prefix, battery_soc=battery_soc
        ) as fleet,
    ):
        svc.runtime.missions.dispatcher.interval_s = 300.0
        http = svc.http

        async def online() -> bool:
            vs = (await http.get("/v1/vehicles")).json()
            return sum(v["kind"] == "van" and v["link"] == "online" for v in vs) == vans

        await eventually(online, timeout=20, message="sim vans online")
        for sku, qty in {"mask": 20_000, "alcohol": 2_400, "food_box": 100}.items():
            r = await http.post("/v1/warehouses/W1/stock", json={"sku_id": sku, "quantity": qty})
            assert r.status_code == 201, r.text
        local = clock.now().astimezone(ZoneInfo(TZ))
        r = await http.post(
            "/v1/shuttle-plans",
            json={
                "warehouse_id": "W1",
                "community_ids": [c.id for c in world.communities],
                "vehicle_ids": [f"van-VAN-{i + 1:02d}" for i in range(vans)],
                "shift_start": f"{local:%H:%M}",
                "shift_end": f"{local + timedelta(hours=8):%H:%M}",
                "timezone": TZ,
            },
        )
        assert r.status_code == 201, r.text
        yield Scene(svc, fleet, clock, world, r.json()["id"])


async def request(http: httpx.AsyncClient, community: str, **items: int) -> str:
    r = await http.post(
        "/v1/requests",
        json={
            "community_id": community,
            "items": [{"sku_id": k, "quantity": v} for k, v in items.items()],
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def mission_where(http: httpx.AsyncClient, pred: Any, message: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        for m in (await http.get("/v1/missions", params={"limit": 1000})).json():
            if m["kind"] == "van_shuttle" and pred(m):
                return dict(m)
        return None

    return await eventually(find, timeout=60, interval=0.05, message=message)


async def ledger(http: httpx.AsyncClient, request_id: str) -> dict[tuple[str, str], int]:
    """(kind, mission id) -> units, for one request."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    rows = (await http.get("/v1/warehouses/W1/ledger", params={"request_id": request_id})).json()
    for mv in rows:
        out[(mv["kind"], mv["mission_id"] or "")] += mv["quantity"]
    return dict(out)


async def test_cancelled_trip_comes_back_to_the_dock_and_unloads(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    async with scene(tmp_path, mqtt_url, mqtt_prefix) as sc:
        http = sc.http
        rid = await request(http, "C12", mask=5000)  # the farthest gate, 2.7 km
        m = await mission_where(
            http,
            lambda m: m["state"] == "underway" and m["phase"] == "go_to",
            "the van leaves the dock with the load",
        )
        stock_before = {
            s["sku_id"]: s["on_hand"] for s in (await http.get("/v1/warehouses/W1/stock")).json()
        }
        r = await http.post(f"/v1/missions/{m['id']}/cancel", json={"reason": "road closed"})
        assert r.status_code == 200, r.text

        async def ended() -> dict[str, Any] | None:
            got = (await http.get(f"/v1/missions/{m['id']}")).json()
            return dict(got) if got["state"] not in ACTIVE else None

        done = await eventually(ended, timeout=60, interval=0.1, message="the trip ends")
        assert done["state"] == "cancelled", done
        assert done["result"].get("returned") == [f"{m['id']}.C12"], (
            done["result"],
            [e["reason"][:200] for e in done["events"]][-6:],
        )
        moves = await ledger(http, rid)
        assert moves[("load", m["id"])] == 5000 and moves[("return", m["id"])] == 5000
        assert ("deliver", m["id"]) not in moves
        stock = {
            s["sku_id"]: s["on_hand"] for s in (await http.get("/v1/warehouses/W1/stock")).json()
        }
        assert stock["mask"] == stock_before["mask"] + 5000
        req = (await http.get(f"/v1/requests/{rid}")).json()
        assert req["state"] == "cancelled", req["state"]
        # the van stood where the cancel stopped it, drove back and unloaded at the dock
        dock = sc.world.dock_node("W1")
        agv = sc.vans[0].agv
        assert abs(agv.pose.x - dock.x) < 2 and abs(agv.pose.y - dock.y) < 2
        assert not agv.cargo
        events = (await http.get(f"/v1/missions/{m['id']}")).json()["events"]
        assert any("bringing 1 loads back" in e["reason"] for e in events)


async def test_restart_while_a_van_is_out_books_what_happened_meanwhile(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    settings = settings_for(tmp_path, mqtt_url, mqtt_prefix)
    async with SimVanFleet(mqtt_url, clock, 1, world=world, topic_prefix=mqtt_prefix) as fleet:
        async with running_service(settings, clock) as svc:
            svc.runtime.missions.dispatcher.interval_s = 300.0
            http = svc.http

            async def online() -> bool:
                return any(v["link"] == "online" for v in (await http.get("/v1/vehicles")).json())

            await eventually(online, timeout=20)
            r = await http.post(
                "/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": 9000}
            )
            assert r.status_code == 201
            local = clock.now().astimezone(ZoneInfo(TZ))
            r = await http.post(
                "/v1/shuttle-plans",
                json={
                    "warehouse_id": "W1",
                    "community_ids": ["C08", "C10"],
                    "vehicle_ids": ["van-VAN-01"],
                    "shift_start": f"{local:%H:%M}",
                    "shift_end": f"{local + timedelta(hours=8):%H:%M}",
                    "timezone": TZ,
                },
            )
            assert r.status_code == 201
            rids = [await request(http, "C08", mask=4000), await request(http, "C10", mask=5000)]
            m = await mission_where(
                http,
                lambda m: m["state"] == "underway" and m["phase"] == "go_to",
                "the van leaves with both loads",
            )
        # the service is down while the van drives and drops at both gates
        agv = fleet[0].agv
        await eventually(lambda: not agv.cargo, timeout=60, interval=0.05, message="both dropped")
        async with running_service(settings, clock) as svc:
            http = svc.http

            async def done() -> dict[str, Any] | None:
                got = (await http.get(f"/v1/missions/{m['id']}")).json()
                return dict(got) if got["state"] not in ACTIVE else None

            after = await eventually(done, timeout=60, interval=0.1, message="resumed and done")
            assert after["state"] == "completed", after["reason"]
            reasons = [e["reason"] for e in after["events"]]
            assert any("service restarted" in r for r in reasons)
            for rid, qty in zip(rids, (4000, 5000), strict=True):
                req = (await http.get(f"/v1/requests/{rid}")).json()
                assert req["state"] == "delivered" and req["items"][0]["delivered"] == qty
                moves = await ledger(http, rid)
                assert moves[("load", m["id"])] == qty and moves[("deliver", m["id"])] == qty
