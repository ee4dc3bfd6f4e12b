"""The dispatcher with sim drones over real UDP: a request that gets only part of what it asked
is flown what it got, stays open for more stock and closes ``partially_delivered`` at its
deadline; a priority change after take-off keeps the flight; a deadline no drone can meet is
reported as a decision, not hidden."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from sim.runner import SimFleet
from sim.truth import TruthKind
from tests.service import WORLDS, RunningService, running_service, service_settings
from tests.support import eventually, free_udp_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = float(os.environ.get("STREETFLEET_TEST_DISPATCH_SPEED", "25"))
"""Time acceleration (world seconds per real second); 25 keeps PX4-like timing and short runs."""


async def drones_ready(svc: RunningService, n: int) -> None:
    async def ready() -> bool:
        vs = (await svc.http.get("/v1/vehicles")).json()
        return len(vs) == n and all(v["ready_to_arm"] and v["link"] == "online" for v in vs)

    await eventually(ready, timeout=30, message=f"{n} sim drones discovered and ready")


async def request(svc: RunningService, rid: str) -> dict[str, Any]:
    return dict((await svc.http.get(f"/v1/requests/{rid}")).json())


def history(req: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """A request's events, short enough for an assertion message."""
    return [(e["kind"], e["to_state"], e["reason"][:90]) for e in req["events"] or []]


async def test_partial_allocation_flies_what_it_got_and_closes_at_the_deadline(
    tmp_path: Path,
) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(1)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{first}"]},
        requests={"deadline_h": 0.25},
    )
    async with (
        SimFleet(1, world=world, clock=clock, first_port=first) as sim,
        running_service(settings, clock) as svc,
    ):
        http = svc.http
        await http.post("/v1/warehouses/W1/stock", json={"sku_id": "medicine", "quantity": 5})
        await drones_ready(svc, 1)
        rid = (
            await http.post(
                "/v1/requests",
                json={
                    "community_id": "C02",
                    "priority": "urgent_medical",
                    "items": [{"sku_id": "medicine", "quantity": 12}],
                },
            )
        ).json()["id"]

        async def flying() -> str | None:
            req = await request(svc, rid)
            if req["state"] != "in_progress" or not req["missions"]:
                return None
            return str(req["missions"][0])

        mission_id = await eventually(
            flying, timeout=300 / SPEED + 20, message="the 5 allocated packs are flying"
        )
        # a priority change after take-off does not tear the flight up
        r = await http.post(
            f"/v1/requests/{rid}/priority",
            json={"priority": "vulnerable", "reason": "re-triaged by the clinic"},
        )
        assert r.status_code == 200, r.text
        kept = [e for e in r.json()["events"] if e["data"].get("kind") == "kept"]
        assert kept and kept[0]["mission_id"] == mission_id

        async def back_in_queue() -> dict[str, Any] | None:
            req = await request(svc, rid)
            return req if req["items"][0]["delivered"] == 5 else None

        req = await eventually(
            back_in_queue, timeout=900 / SPEED + 20, message="the 5 packs are delivered"
        )
        assert req["state"] == "approved", history(req)  # open for more stock
        assert req["items"][0]["allocated"] == 5

        async def closed() -> dict[str, Any] | None:
            req = await request(svc, rid)
            return req if req["state"] not in {"approved", "scheduled", "in_progress"} else None

        req = await eventually(
            closed, timeout=900 / SPEED + 20, interval=0.2, message="closed at its deadline"
        )
        assert req["state"] == "partially_delivered", history(req)
        assert "delivered 5 of 12 medicine" in req["reason"] and "short 7 medicine" in req["reason"]
        [ev] = [e for e in req["events"] if e["to_state"] == "partially_delivered"]
        assert ev["data"]["shortfall"] == {"medicine": 7}

        mission = (await http.get(f"/v1/missions/{mission_id}")).json()
        assert mission["state"] == "completed", mission["reason"]
        assert mission["tasks"][0]["load"] == [{"sku_id": "medicine", "quantity": 5}]
        ledger = (await http.get("/v1/warehouses/W1/ledger", params={"request_id": rid})).json()
        assert [(m["kind"], m["quantity"]) for m in ledger] == [
            ("reserve", 5),
            ("load", 5),
            ("deliver", 5),
        ]
        assert ledger[0]["mission_id"] is None and ledger[1]["mission_id"] == mission_id
        assert len(sim[0].truth.of(TruthKind.RELEASE)) == 1


async def test_a_deadline_no_drone_can_meet_is_reported(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    clock = AcceleratedClock(SPEED)
    first = free_udp_ports(2)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": SPEED},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{first + i}" for i in range(2)]},
        requests={"deadline_h": 0.02},  # 72 s: no drone drops at C05 that fast
    )
    async with (
        SimFleet(2, world=world, clock=clock, first_port=first),
        running_service(settings, clock) as svc,
    ):
        http = svc.http
        await http.post("/v1/warehouses/W1/stock", json={"sku_id": "medicine", "quantity": 50})
        await drones_ready(svc, 2)
        rid = (
            await http.post(
                "/v1/requests",
                json={
                    "community_id": "C05",
                    "priority": "urgent_medical",
                    "items": [{"sku_id": "medicine", "quantity": 10}],
                },
            )
        ).json()["id"]

        async def reported() -> list[dict[str, Any]]:
            ds = (await http.get("/v1/decisions", params={"request_id": rid})).json()
            return [d for d in ds if d["data"].get("kind") == "deadline"]

        [late] = await eventually(reported, timeout=20, message="a deadline decision")
        assert "cannot meet its" in late["reason"] and "min late" in late["reason"]
        assert late["mission_id"] is not None  # still flown, as early as possible
        ds = (await http.get("/v1/decisions", params={"mission_id": late["mission_id"]})).json()
        chosen = [d for d in ds if d["data"].get("kind") == "assignment"]
        assert chosen and "chosen" in chosen[0]["reason"]
        # the other drone was considered and the decision says why not
        assert chosen[0]["data"]["alternatives"], chosen[0]
        assert chosen[0]["data"]["data"]["on_time"] is False
