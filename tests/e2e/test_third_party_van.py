"""A van of another vendor, as MAVSDK is for drones: the virtual AGV of the npm package
``vda-5050-lib`` (an independent VDA 5050 2.0.0 implementation, ``tests/peers/vda-5050-lib``,
installed by ``make peers``), driven by the whole service over the real Mosquitto.

The service learns from the vehicle's headers that it speaks 2.0.0 and writes to it in that
shape, asks for its factsheet, plans within what it declares (one EPAL load at ``floor``
stations: the site's load and station types are set for it), follows its position from
visualization while it sends states only on change, matches the load it reports under its own
RFID id to the consignment, and:

- carries a load from the warehouse dock to a community gate and comes home;
- carries two communities' loads on two trips (the vehicle takes one load at a time);
- is cancelled on the road: the vehicle confirms the cancel, drives home from where it stopped
  (an order whose first node's allowed deviation is spelt the 2.0.0 way) and unloads there;
- with a factsheet that wrongly claims two load positions, fails its second pick: the failure
  is explained in the vehicle's own words, and the van is not driven to the gate of the load it
  does not have.

The library's deviations from the specification are handled in the peer's harness
(``virtual-agv.js``), the way an integrator would; see ``docs/protocols/vda5050.md``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
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
from fleet.world import World
from fleet.worldfile import load_world
from tests.service import ROOT, WORLDS, RunningService, running_service, service_settings
from tests.support import eventually, require

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

PEER = ROOT / "tests" / "peers" / "vda-5050-lib"
"""The peer's harness; ``make peers`` installs its locked dependencies (``npm ci``)."""
SPEED = 40.0
"""World seconds per real second, for the service's clock and the vehicle's time lapse."""
TZ = "Asia/Shanghai"
ACTIVE = ("planned", "authorized", "underway")
VAN = "van-AGV-01"


def node_program() -> str:
    """``node``, with the peer's dependencies installed; skip (fail under CI=true) if not."""
    node = shutil.which("node")
    require(node is not None, "Node.js is not installed (the vda-5050-lib peer needs node >= 18)")
    require(
        (PEER / "node_modules" / "vda-5050-lib" / "package.json").is_file(),
        f"the vda-5050-lib peer is not installed: run make peers (npm ci in {PEER})",
    )
    assert node is not None
    return node


@asynccontextmanager
async def virtual_agv(
    mqtt_url: str, prefix: str, world: World, **extra: Any
) -> AsyncIterator[None]:
    """The library's virtual AGV standing at the warehouse dock, until the block ends."""
    node = node_program()
    dock = world.dock_node("W1")
    config = {
        "brokerUrl": mqtt_url,
        "topicPrefix": prefix,
        "manufacturer": "vdalib",
        "serialNumber": "AGV-01",
        "mapId": world.map_id,
        "x": dock.x,
        "y": dock.y,
        "theta": 0.0,
        "lastNodeId": dock.id,
        "vehicleSpeed": 5.0,
        "timeLapse": SPEED,
        **extra,
    }
    proc = await asyncio.create_subprocess_exec(
        node,
        str(PEER / "virtual-agv.js"),
        json.dumps(config),
        cwd=PEER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"READY":
            err = await proc.stderr.read() if proc.stderr else b""
            pytest.fail(f"virtual AGV did not start: {line!r} {err.decode()[-2000:]}")
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@dataclass
class Scene:
    svc: RunningService
    world: World
    clock: AcceleratedClock

    @property
    def http(self) -> httpx.AsyncClient:
        return self.svc.http


@asynccontextmanager
async def scene(tmp_path: Path, mqtt_url: str, prefix: str, **agv: Any) -> AsyncIterator[Scene]:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    host_port = mqtt_url.removeprefix("mqtt://")
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mqtt={"url": mqtt_url},
        vda5050={
            "links": [f"vda5050+mqtt://{host_port}/vdalib?prefix={prefix}"],
            # the site's pick and drop parameters, as the vehicle's integrator set them up
            "load_type": "EPAL",
            "pick_station_type": "floor",
            "drop_station_type": "floor",
            # what its factsheet cannot say: how many standard boxes go on its pallet
            "vehicles": {VAN: {"max_boxes": 8}},
        },
        shuttle={"routing_time_limit_s": 0.2, "timezone": TZ},
    )
    async with virtual_agv(mqtt_url, prefix, world, **agv), running_service(settings, clock) as svc:
        svc.runtime.missions.dispatcher.interval_s = 300.0
        http = svc.http

        async def known() -> dict[str, Any] | None:
            for v in (await http.get("/v1/vehicles")).json():
                if v["id"] == VAN and v["link"] == "online":
                    return dict(v)
            return None

        await eventually(known, timeout=30, message="the virtual AGV is online")
        entry = svc.runtime.registry.get(VAN)
        await eventually(
            lambda: entry.status.extra["van_capabilities"].from_factsheet,
            timeout=30,
            message="its factsheet, asked for with factsheetRequest",
        )
        r = await http.post("/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": 50_000})
        assert r.status_code == 201, r.text
        local = clock.now().astimezone(ZoneInfo(TZ))
        r = await http.post(
            "/v1/shuttle-plans",
            json={
                "warehouse_id": "W1",
                "community_ids": [c.id for c in world.communities],
                "vehicle_ids": [VAN],
                "shift_start": f"{local:%H:%M}",
                "shift_end": f"{local + timedelta(hours=8):%H:%M}",
                "timezone": TZ,
            },
        )
        assert r.status_code == 201, r.text
        yield Scene(svc, world, clock)


async def request(http: httpx.AsyncClient, community: str, masks: int) -> str:
    r = await http.post(
        "/v1/requests",
        json={"community_id": community, "items": [{"sku_id": "mask", "quantity": masks}]},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def missions(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    got = (await http.get("/v1/missions", params={"limit": 1000})).json()
    return [m for m in got if m["kind"] == "van_shuttle"]


async def ended(http: httpx.AsyncClient, mission_id: str, timeout: float = 90) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        got = (await http.get(f"/v1/missions/{mission_id}")).json()
        return dict(got) if got["state"] not in ACTIVE else None

    return await eventually(done, timeout=timeout, interval=0.1, message="the trip ends")


def reasons(mission: dict[str, Any]) -> list[str]:
    return [e["reason"] for e in mission["events"]]


async def test_delivery_and_two_communities_on_two_trips(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    async with scene(tmp_path, mqtt_url, mqtt_prefix) as sc:
        http, registry = sc.http, sc.svc.runtime.registry
        entry = registry.get(VAN)
        van = entry.control
        # what the service learnt of the vehicle
        assert van.announced_version == "2.0.0" and van.version == "2.0.0"
        caps = entry.status.extra["van_capabilities"]
        assert caps.max_loads == 1 and caps.max_boxes == 8 and caps.max_load_kg == 20.0
        assert caps.load_types == {"EPAL"} and not caps.unsupported
        first = await request(http, "C01", 3000)  # 6 boxes, 15 kg
        second = await request(http, "C02", 2000)
        positions: set[tuple[float, float]] = set()

        async def both_done() -> list[dict[str, Any]] | None:
            pos = entry.status.position
            if pos is not None:
                positions.add((round(pos.lat, 6), round(pos.lon, 6)))
            ms = await missions(http)
            return ms if len(ms) >= 2 and all(m["state"] not in ACTIVE for m in ms) else None

        ms = await eventually(both_done, timeout=180, interval=0.05, message="two trips done")
        for m in ms:
            full = (await http.get(f"/v1/missions/{m['id']}")).json()
            assert full["state"] == "completed", (full["state"], reasons(full)[-5:])
            assert len(full["plan"]["loads"]) == 1  # one load at a time, as it declares
        for rid in (first, second):
            req = (await http.get(f"/v1/requests/{rid}")).json()
            assert req["state"] == "delivered", req["state"]
        assert len(positions) > 3  # followed on the road
        assert van.link.stats.bad_payloads == 0


async def test_cancel_on_the_road_is_confirmed_and_the_load_comes_home(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    async with scene(tmp_path, mqtt_url, mqtt_prefix) as sc:
        http = sc.http
        entry = sc.svc.runtime.registry.get(VAN)
        rid = await request(http, "C12", 3000)  # the farthest gate

        async def leaving() -> dict[str, Any] | None:
            for m in await missions(http):
                vs = entry.status.extra.get("van")
                if m["state"] == "underway" and m["phase"] == "go_to" and vs and vs.driving:
                    return m
            return None

        m = await eventually(leaving, timeout=60, interval=0.02, message="the van leaves the dock")
        vs = entry.status.extra["van"]
        assert vs.loads and vs.loads[0].vehicle_load_id.startswith("RFID_")
        assert vs.loads[0].load_id == f"{m['id']}.C12"
        r = await http.post(f"/v1/missions/{m['id']}/cancel", json={"reason": "road closed"})
        assert r.status_code == 200, r.text
        done = await ended(http, m["id"])
        assert done["state"] == "cancelled", (done["state"], reasons(done)[-6:])
        assert any("confirmed the cancel" in x for x in reasons(done))
        assert done["result"].get("returned") == [f"{m['id']}.C12"], reasons(done)[-6:]
        req = (await http.get(f"/v1/requests/{rid}")).json()
        assert req["state"] == "cancelled", req["state"]
        vs = entry.status.extra["van"]
        dock = sc.world.dock_node("W1")
        assert vs.last_node_id == dock.id and vs.loads == ()
        assert vs.map_pose is not None
        assert abs(vs.map_pose[0] - dock.x) < 1 and abs(vs.map_pose[1] - dock.y) < 1


async def test_a_failed_pick_is_explained_and_its_gate_is_not_driven_to(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    # an integrator's mistake: the factsheet claims two load positions, the vehicle holds one
    async with scene(tmp_path, mqtt_url, mqtt_prefix, loadPositions=["front", "back"]) as sc:
        http = sc.http
        caps = sc.svc.runtime.registry.get(VAN).status.extra["van_capabilities"]
        assert caps.max_loads == 2
        near = await request(http, "C01", 1000)
        other = await request(http, "C02", 1000)
        ms = await eventually(lambda: missions(http), timeout=60, message="a trip is planned")
        first = ms[0]
        done = await ended(http, first["id"], timeout=120)
        plan_loads = {ld["load_id"] for ld in first["plan"]["loads"]}
        if len(plan_loads) < 2:
            pytest.skip("the planner put the two communities on separate trips")
        text = " | ".join(reasons(done))
        assert "pick failed: orderActionError" in text and "load already picked" in text, text
        assert "drives on as order" in text, text
        assert done["state"] == "failed", done["state"]
        skipped = done["plan"]["skip"]
        assert len(skipped) == 1
        # the missing load's work goes back to the queue and is delivered by a later trip
        for rid in (near, other):

            async def delivered(rid: str = rid) -> bool:
                req = (await http.get(f"/v1/requests/{rid}")).json()
                return bool(req["state"] == "delivered")

            await eventually(delivered, timeout=180, message=f"request {rid} delivered")
