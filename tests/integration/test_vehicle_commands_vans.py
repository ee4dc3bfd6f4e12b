"""Operators' commands to vans over the real Mosquitto with sim vans (VDA 5050 instant actions
``startPause``, ``stopPause``, ``cancelOrder``) and the real service: a pause during a trip
holds the van and the trip goes on after the resume; a cancel_order ends the trip's mission the
way a mission cancel does; a cancel with no order is refused in the van's words; fleet-wide
commands need their confirmation; idempotent retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.scenarios import OPERATOR, check_life_cycle, post_command, wait_command
from tests.integration.test_shuttle_faults import ACTIVE, ledger, mission_where, request, scene
from tests.support import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


async def test_pause_then_resume_a_van_on_its_trip(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    async with scene(tmp_path, mqtt_url, mqtt_prefix) as sc:
        http = sc.http
        ops = await sc.svc.client(OPERATOR, "operator")
        rid = await request(http, "C12", mask=5000)  # the farthest gate, 2.7 km
        m = await mission_where(
            http,
            lambda m: m["state"] == "underway" and m["phase"] == "go_to",
            "the van leaves the dock with the load",
        )
        van = m["vehicle_id"]
        r = await post_command(ops, van, "land", "wrong kind", expect=422)
        assert r["field"] == "command", r
        key = f"pause-{m['id']}"
        rec = await post_command(ops, van, "pause", "children crossing", key=key)
        assert rec["state"] == "accepted" and rec["mission_id"] == m["id"], rec
        again = await post_command(ops, van, "pause", "children crossing", key=key, expect=200)
        assert again["id"] == rec["id"]
        rec = await wait_command(http, rec["id"], 30)
        check_life_cycle(rec)
        assert rec["outcome"] == "the van reports itself paused", rec

        agv = sc.vans[0].agv
        assert agv.paused
        x, y = agv.pose.x, agv.pose.y
        later = sc.clock.time() + 300.0  # five minutes stopped
        await eventually(lambda: sc.clock.time() > later, timeout=10)
        assert (agv.pose.x, agv.pose.y) == (x, y), "a paused van does not drive"
        got = (await http.get(f"/v1/missions/{m['id']}")).json()
        assert got["state"] == "underway", got["reason"]
        reasons = [e["reason"] for e in got["events"]]
        assert f"paused by {OPERATOR}: children crossing" in reasons
        assert f"pause commanded by {OPERATOR}: children crossing" in reasons

        rec = await post_command(ops, van, "resume", "road clear")
        rec = await wait_command(http, rec["id"], 30)
        check_life_cycle(rec)

        async def ended() -> dict[str, Any] | None:
            got = (await http.get(f"/v1/missions/{m['id']}")).json()
            return dict(got) if got["state"] not in ACTIVE else None

        done = await eventually(ended, timeout=60, interval=0.1, message="the trip ends")
        assert done["state"] == "completed", done["reason"]
        assert f"resumed by {OPERATOR}: road clear" in [e["reason"] for e in done["events"]]
        req = (await http.get(f"/v1/requests/{rid}")).json()
        assert req["state"] == "delivered", req["state"]
        listed = (await http.get(f"/v1/vehicles/{van}/commands")).json()
        assert [c["command"] for c in listed] == ["resume", "pause"]


async def test_cancel_order_ends_the_trip_as_a_cancel_and_a_van_refuses_one_without_order(
    tmp_path: Path, mqtt_url: str, mqtt_prefix: str
) -> None:
    async with scene(tmp_path, mqtt_url, mqtt_prefix) as sc:
        http = sc.http
        ops = await sc.svc.client(OPERATOR, "operator")
        rid = await request(http, "C12", mask=5000)
        m = await mission_where(
            http,
            lambda m: m["state"] == "underway" and m["phase"] == "go_to",
            "the van leaves the dock with the load",
        )
        van = m["vehicle_id"]
        rec = await post_command(ops, van, "cancel_order", "road closed")
        rec = await wait_command(http, rec["id"], 30)
        check_life_cycle(rec)

        async def ended() -> dict[str, Any] | None:
            got = (await http.get(f"/v1/missions/{m['id']}")).json()
            return dict(got) if got["state"] not in ACTIVE else None

        # as POST /v1/missions/{id}/cancel does (tests/integration/test_shuttle_faults.py)
        done = await eventually(ended, timeout=60, interval=0.1, message="the trip ends")
        assert done["state"] == "cancelled", done["reason"]
        assert done["result"].get("returned") == [f"{m['id']}.C12"], done["result"]
        reasons = [e["reason"] for e in done["events"]]
        assert f"cancel_order commanded by {OPERATOR}: road closed" in reasons
        assert any("the van confirmed the cancel" in r for r in reasons)
        moves = await ledger(http, rid)
        assert moves[("load", m["id"])] == 5000 and moves[("return", m["id"])] == 5000
        req = (await http.get(f"/v1/requests/{rid}")).json()
        assert req["state"] == "cancelled", req["state"]
        dock = sc.world.dock_node("W1")
        agv = sc.vans[0].agv
        assert abs(agv.pose.x - dock.x) < 2 and abs(agv.pose.y - dock.y) < 2

        # nothing to cancel now: the van says so
        await eventually(lambda: not agv.busy, timeout=30, message="the van is idle")
        rec = await post_command(ops, van, "cancel_order", "just in case")
        rec = await wait_command(http, rec["id"], 30)
        assert rec["state"] == "failed", rec
        assert rec["vehicle_result"] == "noOrderToCancel", rec
        assert "there is no order to cancel" in rec["vehicle_words"], rec

        # fleet-wide: refused without its confirmation, then sent with it, once
        r = await ops.post("/v1/commands", json={"command": "pause", "reason": "drill"})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "confirm" and r.json()["expected"] == "ALL 1 VEHICLES"
        body = {"command": "pause", "reason": "drill", "confirm": "ALL 2 VEHICLES"}
        r = await ops.post("/v1/commands", json=body)
        assert r.status_code == 422 and r.json()["expected"] == "ALL 1 VEHICLES", r.text
        body["confirm"] = "ALL 1 VEHICLES"
        headers = {"Idempotency-Key": "drill-1"}
        r = await ops.post("/v1/commands", json=body, headers=headers)
        assert r.status_code == 201, r.text
        fleet = r.json()
        assert fleet["count"] == 1 and [c["vehicle_id"] for c in fleet["commands"]] == [van]
        r = await ops.post("/v1/commands", json=body, headers=headers)
        assert r.status_code == 200 and r.json()["batch_id"] == fleet["batch_id"], r.text
        rec = await wait_command(http, fleet["commands"][0]["id"], 30)
        check_life_cycle(rec)
        assert agv.paused
