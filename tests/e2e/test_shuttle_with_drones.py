"""End to end: drones and a van at work together. Over real UDP (MAVLink sim drones) and the
real Mosquitto (VDA 5050 sim van), the service receives a van load and urgent medicine through
the HTTP API: the mode choice flies the medicine while the van runs its shuttle trip, both are
delivered, each traced to its own drop."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually, free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.mosquitto, pytest.mark.slow]

SPEED = float(os.environ.get("STREETFLEET_TEST_MIXED_SPEED", "25"))
"""World seconds per real second (sim drones fly real MAVLink missions)."""
TZ = "Asia/Shanghai"
FINAL = {"delivered", "partially_delivered", "failed", "cancelled"}


def span(m: dict[str, Any]) -> tuple[datetime, datetime]:
    """When a mission was under way (a van still driving home has no end yet)."""
    end = (
        datetime.fromisoformat(m["ended_at"]) if m["ended_at"] else datetime.max.replace(tzinfo=UTC)
    )
    return datetime.fromisoformat(m["started_at"]), end


async def test_medicine_flies_while_the_van_runs_its_shift(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(2)
    host_port = mqtt_url.removeprefix("mqtt://")
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{first + i}" for i in range(2)]},
        mqtt={"url": mqtt_url},
        vda5050={"links": [f"vda5050+mqtt://{host_port}/streetfleet?prefix={mqtt_prefix}"]},
        shuttle={"routing_time_limit_s": 0.3, "timezone": TZ},
    )
    async with (
        SimFleet(
            2,
            world=world,
            clock=clock,
            first_port=first,
            vans=1,
            mqtt_url=mqtt_url,
            van_topic_prefix=mqtt_prefix,
        ),
        running_service(settings, clock) as svc,
    ):
        http = svc.http

        async def fleet_ready() -> bool:
            vs = (await http.get("/v1/vehicles")).json()
            drones = [v for v in vs if v["kind"] == "drone"]
            vans = [v for v in vs if v["kind"] == "van"]
            return (
                len(drones) == 2
                and all(d["ready_to_arm"] and d["link"] == "online" for d in drones)
                and len(vans) == 1
                and vans[0]["link"] == "online"
            )

        await eventually(fleet_ready, timeout=40, message="two drones and a van ready")
        for sku, qty in {"medicine": 200, "mask": 20_000, "gloves": 5_000}.items():
            r = await http.post("/v1/warehouses/W1/stock", json={"sku_id": sku, "quantity": qty})
            assert r.status_code == 201, r.text
        local = clock.now().astimezone(ZoneInfo(TZ))
        r = await http.post(
            "/v1/shuttle-plans",
            json={
                "warehouse_id": "W1",
                "community_ids": [c.id for c in world.communities],
                "vehicle_ids": ["van-VAN-01"],
                "shift_start": f"{local:%H:%M}",
                "shift_end": f"{local + timedelta(hours=8):%H:%M}",
                "timezone": TZ,
            },
        )
        assert r.status_code == 201, r.text
        plan_id = r.json()["id"]

        van_reqs = []
        for community, masks in (("C03", 6000), ("C04", 4000)):
            r = await http.post(
                "/v1/requests",
                json={
                    "community_id": community,
                    "items": [
                        {"sku_id": "mask", "quantity": masks},
                        {"sku_id": "gloves", "quantity": 1000},
                    ],
                },
            )
            assert r.status_code == 201, r.text
            van_reqs.append(r.json()["id"])

        async def van_underway() -> bool:
            ms = (await http.get("/v1/missions")).json()
            return any(m["kind"] == "van_shuttle" and m["state"] == "underway" for m in ms)

        await eventually(van_underway, timeout=60, message="the van's trip is under way")
        r = await http.post(
            "/v1/requests",
            json={
                "community_id": "C05",
                "priority": "urgent_medical",
                "items": [{"sku_id": "medicine", "quantity": 12}],
            },
        )
        assert r.status_code == 201, r.text
        med = r.json()["id"]

        async def all_final() -> bool:
            for rid in [med, *van_reqs]:
                if (await http.get(f"/v1/requests/{rid}")).json()["state"] not in FINAL:
                    return False
            return True

        await eventually(all_final, timeout=3 * 3600 / SPEED + 60, interval=0.5)

        missions = {m["id"]: m for m in (await http.get("/v1/missions")).json()}
        medicine = (await http.get(f"/v1/requests/{med}")).json()
        assert medicine["state"] == "delivered", medicine["events"]
        [drone_mission] = [missions[mid] for mid in medicine["missions"]]
        assert drone_mission["kind"] == "drone_delivery" and drone_mission["state"] == "completed"
        assert any(e["kind"] == "payload" for e in medicine["events"]) or any(
            e["kind"] == "payload"
            for e in (await http.get(f"/v1/missions/{drone_mission['id']}")).json()["events"]
        )
        van_missions = set()
        for rid in van_reqs:
            req = (await http.get(f"/v1/requests/{rid}")).json()
            assert req["state"] == "delivered", req["events"]
            drops = [
                e
                for e in req["events"]
                if e["kind"] == "payload" and e["data"].get("action") == "drop"
            ]
            assert drops and all(e["data"]["load_id"].startswith(e["mission_id"]) for e in drops)
            van_missions |= {e["mission_id"] for e in drops}
        # the drone flew while the van was out on its trip
        d0, d1 = span(drone_mission)
        overlaps = [
            mid
            for mid in van_missions
            if span(missions[mid])[0] < d1 and d0 < span(missions[mid])[1]
        ]
        assert overlaps, (drone_mission, [missions[m] for m in van_missions])
        trips = (await http.get(f"/v1/shuttle-plans/{plan_id}/trips")).json()
        assert set(trips["boxes_delivered_by_community"]) == {"C03", "C04"}
