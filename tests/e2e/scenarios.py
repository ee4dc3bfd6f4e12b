"""Scenario bodies shared by the e2e suite (sim drones) and the SITL suite (real PX4).

Each scenario talks to a running service only through its HTTP API and checks the service's own
record (request and mission states, phases, the release and landing distances it measured, the
inventory ledger). The suites add what only they can check: the e2e tests the simulator's
ground truth, the SITL tests PX4's liveness and logs. ``speed`` is the time acceleration the
service's clock and the vehicles share; timeouts are world durations divided by it plus a margin
of real time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import shapely
from shapely.geometry import Polygon

from fleet.geo import LatLon, distance_m
from fleet.settings import Settings
from fleet.world import Community, World
from sim.speaker.payload import SimSpeakerPayload
from tests.e2e.backends import Check, Drones
from tests.service import RunningService, service_settings
from tests.support import eventually

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "20"))
"""Time acceleration of the e2e runs (world seconds per real second)."""

REQUEST_FINAL = frozenset({"delivered", "failed", "cancelled", "partially_delivered"})
"""Request states after which nothing changes."""
MISSION_FINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})
"""Mission states after which nothing changes."""


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
    """Wait until the service sees ``count`` drones online and ready to fly a mission
    (``VehicleStatus.ready_for_mission``: for PX4, its health and arming checks, home and
    global position)."""

    async def ready() -> list[dict[str, Any]] | None:
        vs = [v for v in (await http.get("/v1/vehicles")).json() if v["kind"] == "drone"]
        ok = len(vs) == count and all(v["ready_for_mission"] and v["link"] == "online" for v in vs)
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
        for mission_id in req["missions"]:
            m = (await http.get(f"/v1/missions/{mission_id}")).json()
            if m["phase"] == "go_to":
                return str(m["id"])
        return None

    mission_id: str = await eventually(
        _checked(cruising, check), timeout=300 / speed + 30, message="the drone is on its way"
    )
    req = (await http.get(f"/v1/requests/{first['id']}")).json()
    assert req["missions"] == [mission_id], f"the drone refused a mission first: {req['events']}"
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


# --- several deliveries at once ------------------------------------------------------------


async def fly_several(
    http: httpx.AsyncClient,
    communities: Sequence[Community],
    *,
    vehicles: int,
    speed: float,
    ready_timeout: float = 30.0,
    check: Check | None = None,
) -> list[Delivery]:
    """Requests for several communities arrive together and are flown at the same time, each
    by its own drone: every request ends ``delivered`` by exactly one completed mission,
    released within 5 m of its drop point, and the sorties overlap in time."""
    await add_stock(http, "medicine", 200)
    await wait_ready(http, vehicles, ready_timeout, check)
    ids = [
        (
            await post_request(
                http,
                {
                    "community_id": c.id,
                    "priority": "urgent_medical",
                    "items": [{"sku_id": "medicine", "quantity": 6}],
                },
            )
        )["id"]
        for c in communities
    ]
    out: list[Delivery] = []
    for request_id in ids:
        req = await wait_request(http, request_id, 1800 / speed + 60, check)
        assert req["state"] == "delivered", req["events"]
        assert len(req["missions"]) == 1, f"one mission per request: {req['events']}"
        mission = await wait_mission(http, req["missions"][0], 900 / speed + 60, check)
        assert mission["state"] == "completed", mission["reason"]
        assert mission["result"]["release_distance_m"] <= 5.0
        out.append(Delivery(req, mission))
    assert len({d.mission["vehicle_id"] for d in out}) == len(out), "one drone each"
    starts = [d.mission["started_at"] for d in out]
    ends = [d.mission["ended_at"] for d in out]
    assert max(starts) < min(ends), f"the sorties did not overlap: {starts} / {ends}"
    return out


# --- a plan the vehicle itself refuses ---------------------------------------------------------

REFUSAL_LIMIT_M = 250.0
"""GF_MAX_HOR_DIST preset on the refusing drone: PX4's geofence allows no waypoint farther than
this from home, and the community asked for lies beyond it."""


async def refused_by_vehicle(
    http: httpx.AsyncClient,
    community: Community,
    *,
    speed: float,
    ready_timeout: float = 30.0,
    check: Check | None = None,
) -> dict[str, Any]:
    """One drone whose own geofence (GF_MAX_HOR_DIST = :data:`REFUSAL_LIMIT_M`) forbids the
    route: the service uploads the plan, the vehicle rejects it, and the mission fails with the
    vehicle's own words for *this* refusal ("Geofence violation for waypoint N", N the first
    waypoint beyond the limit, counted from 1 as PX4 does) and nothing else. Nothing is lost:
    the request goes back to the queue with its stock still reserved, and the drone rests."""
    await add_stock(http, "medicine", 50)
    [drone] = await wait_ready(http, 1, ready_timeout, check)
    req = await post_request(
        http,
        {
            "community_id": community.id,
            "priority": "urgent_medical",
            "items": [{"sku_id": "medicine", "quantity": 4}],
        },
    )

    async def failed() -> dict[str, Any] | None:
        r = (await http.get(f"/v1/requests/{req['id']}")).json()
        for mission_id in r["missions"]:
            m: dict[str, Any] = (await http.get(f"/v1/missions/{mission_id}")).json()
            if m["state"] in MISSION_FINAL:
                return m
        return None

    mission: dict[str, Any] = await eventually(
        _checked(failed, check), timeout=300 / speed + 60, message="the drone answers the plan"
    )
    assert mission["state"] == "failed", mission["reason"]
    home = LatLon(drone["home"]["lat"], drone["home"]["lon"])
    beyond = [
        i + 1
        for i, item in enumerate(mission["plan"]["items"])
        if item.get("lat") is not None
        and distance_m(home, LatLon(item["lat"], item["lon"])) >= REFUSAL_LIMIT_M
    ]
    assert beyond, "the plan never leaves the drone's geofence: the scenario is wrong"
    words = f"Geofence violation for waypoint {beyond[0]}"
    assert mission["reason"].endswith(f"rejected the mission: {words}"), mission["reason"]
    # nothing lost: the request waits for another drone, its stock still reserved
    r = (await http.get(f"/v1/requests/{req['id']}")).json()
    assert r["state"] in {"approved", "scheduled"}, r["events"]
    stock = {s["sku_id"]: s for s in (await http.get("/v1/warehouses/W1/stock")).json()}
    assert stock["medicine"]["on_hand"] == 50 and stock["medicine"]["reserved"] == 4
    v = (await http.get(f"/v1/vehicles/{drone['id']}")).json()
    assert not v["armed"] and v["landed"] == "on_ground"
    return mission


# --- a loudspeaker broadcast -------------------------------------------------------------------


@dataclass
class BroadcastFlight:
    """What the broadcast scenario saw."""

    request: dict[str, Any]
    report: dict[str, Any]
    mission: dict[str, Any]
    records: list[Any]
    """The payload's own log of what it played (``PlaybackRecord``)."""


async def fly_broadcast(
    svc: RunningService,
    drones: Drones,
    world: World,
    *,
    speaker: int,
    community_id: str = "C03",
) -> BroadcastFlight:
    """Community staff request a broadcast over HTTP; the service speaks the text with
    espeak-ng, plans the coverage and flies it with the drone carrying the speaker payload
    (drone index ``speaker``; the payload is simulated over MQTT and reads where its drone is
    from the drone itself). Checked: the request and mission records, the proof of coverage
    (at least 95 % of the area heard the message twice, no playback outside, every record
    received) and, independently of the service, the payload's own log: it never sounded
    outside the community."""
    http = svc.http
    broker = svc.runtime.mqtt_url
    assert broker is not None and broker.startswith("mqtt://127.0.0.1:")
    assert drones.position_feed is not None
    host = drones.vehicle_id(speaker)
    payload_id = f"SPK-{drones.system_ids[speaker]}"
    community = world.community(community_id)
    area = Polygon([world.frame.to_xy(lat, lon) for lat, lon in community.boundary])
    async with (
        drones.position_feed(speaker) as position,
        SimSpeakerPayload(
            payload_id=payload_id,
            broker_url=broker,
            clock=drones.clock,
            position=position,
            host_vehicle=host,
        ) as payload,
    ):

        async def fleet_ready() -> bool:
            vs = {v["id"]: v for v in (await http.get("/v1/vehicles")).json()}
            ds = [vs.get(drones.vehicle_id(i)) for i in range(len(drones.ports))]
            spk = vs.get(f"speaker-{payload_id}")
            return (
                all(d and d["ready_for_mission"] and d["link"] == "online" for d in ds)
                and spk is not None
                and spk["link"] == "online"
            )

        await eventually(
            _checked(fleet_ready, drones.check),
            timeout=drones.ready_timeout,
            message="the drones and the speaker are ready",
        )
        r = await http.post(
            "/v1/broadcasts",
            json={
                "area": {"community_id": community_id},
                "message": {
                    "text": "Nucleic acid testing today at the north gate.",
                    "language": "en",
                },
                "repeats": 2,
                "priority": "vulnerable",
                "requested_by": f"staff {community_id}-7",
            },
            headers={"X-Actor": f"staff {community_id}-7"},
        )
        assert r.status_code == 201, r.text
        req = r.json()
        request_id = req["id"]
        assert req["kind"] == "broadcast" and req["community_id"] == community_id
        assert req["state"] == "approved"
        assert req["preview"]["predicted_coverage"] >= 0.95
        clip = req["clip"]
        assert clip["source"] == "tts" and 1.0 < clip["duration_s"] < 10.0
        wav = await http.get(f"/v1/clips/{clip['sha256']}.wav")
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        assert hashlib.sha256(wav.content).hexdigest() == clip["sha256"]

        async def finished() -> dict[str, Any] | None:
            b: dict[str, Any] = (await http.get(f"/v1/broadcasts/{request_id}")).json()
            return b if b["state"] in {"completed", "failed", "cancelled"} else None

        done = await eventually(
            _checked(finished, drones.check),
            timeout=1500 / drones.speed + 60,
            interval=0.5,
            message="the broadcast request reaches a final state",
        )
        assert done["state"] == "completed", done["events"]
        [mission_id] = done["missions"]
        [occurrence] = done["occurrences"]
        assert occurrence["state"] == "completed"
        assert occurrence["vehicles"] == [host]

        r = await http.get(f"/v1/requests/{request_id}/report")
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["state"] == "completed"
        assert report["covered_fraction"] >= 0.95, report
        assert report["outside"]["no_playback_outside"] is True
        assert report["outside"]["samples_outside"] == 0
        assert report["outside"]["playback_outside_s"] == 0.0
        assert report["missing_records"] == []
        assert report["payload_ids"] == [payload_id]
        assert report["repeats_required"] == 2
        assert report["plays"]["completed"] >= 4
        assert report["started_at"] < report["ended_at"]
        png = await http.get(report["png_url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 2000

        m = (await http.get(f"/v1/missions/{mission_id}")).json()
        assert m["kind"] == "drone_broadcast" and m["vehicle_id"] == host
        states = [
            e["to_state"] for e in m["events"] if e["kind"] == "state" and e["request_id"] is None
        ]
        assert states == ["planned", "authorized", "underway", "completed"]
        phases = [e["data"]["phase"] for e in m["events"] if e["kind"] == "phase"]
        assert phases[:2] == ["preflight", "takeoff"]
        assert {"go_to", "broadcast", "return", "done"} <= set(phases)
        assert any(
            e["kind"] == "decision" and f"{host} (speaker {payload_id}" in e["reason"]
            for e in m["events"]
        )
        assert m["result"]["records_complete"] is True
        records = list(payload.records)

    # independent of the service: the payload's own log of what it played
    assert len(records) == report["plays"]["total"]
    for rec in records:
        for _, lat, lon, _alt in rec.samples:
            x, y = world.frame.to_xy(lat, lon)
            assert shapely.intersects_xy(area, x, y), f"the payload sounded outside {community_id}"
    return BroadcastFlight(done, report, m, records)
