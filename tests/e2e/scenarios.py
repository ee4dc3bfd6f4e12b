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
import itertools
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry import Polygon

from fleet.drone import DroneControl
from fleet.geo import LatLon, distance_m
from fleet.safety import FAILSAFE_PARAMETERS, failsafe_policy
from fleet.settings import Settings
from fleet.vehicle import LandedState
from fleet.world import Community, World
from sim.speaker.payload import SimSpeakerPayload
from tests.e2e.backends import Check, Drones
from tests.e2e.separation import (
    Approach,
    TelemetryRecorder,
    closest_approach,
    recording,
    registry_source,
)
from tests.service import RunningService, service_settings
from tests.support import eventually

SPEED = float(os.environ.get("STREETFLEET_TEST_SPEED", "20"))
"""Time acceleration of the e2e runs (world seconds per real second)."""

REQUEST_FINAL = frozenset({"delivered", "failed", "cancelled", "partially_delivered"})
"""Request states after which nothing changes."""
MISSION_FINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})
"""Mission states after which nothing changes."""


def drone_service_settings(
    tmp_path: Path, ports: Sequence[int], speed: float, **overrides: Any
) -> Settings:
    """Service settings for drones on ``ports`` (one ``mavlink+udpin`` link each) at ``speed``."""
    return service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": speed},
        mavlink={"links": [f"mavlink+udpin://127.0.0.1:{p}" for p in ports]},
        **overrides,
    )


FLY_ON_WITHOUT_US: dict[str, Any] = {"safety": {"nav_dll_act": 0}}
"""The fleet policy of the restart scenarios: the service is stopped on purpose while drones
fly, and they fly on (NAV_DLL_ACT 0) instead of returning after COM_DL_LOSS_T."""


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


async def post_urgent_medicine(http: httpx.AsyncClient, community: Community) -> dict[str, Any]:
    """An urgent-medical request of 4 units of medicine for ``community`` (the flight
    scenarios' request: one drone sortie)."""
    return await post_request(
        http,
        {
            "community_id": community.id,
            "priority": "urgent_medical",
            "items": [{"sku_id": "medicine", "quantity": 4}],
        },
    )


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
    req = await post_urgent_medicine(http, community)

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
    """The first (or only) flight's mission."""
    records: list[Any]
    """The payload's own log of what it played (``PlaybackRecord``)."""
    missions: list[dict[str, Any]] = field(default_factory=list)
    """Every flight's mission, in share order."""


async def fly_broadcast(
    svc: RunningService,
    drones: Drones,
    world: World,
    *,
    speaker: int,
    community_id: str = "C03",
    flights: int = 1,
    while_first_flies: Callable[[], Awaitable[None]] | None = None,
) -> BroadcastFlight:
    """Community staff request a broadcast over HTTP; the service speaks the text with
    espeak-ng, plans the coverage and flies it with the drone carrying the speaker payload
    (drone index ``speaker``; the payload is simulated over MQTT and reads where its drone is
    from the drone itself). Checked: the request and mission records, the proof of coverage
    (at least 95 % of the area heard the message twice, no playback outside, every record
    received) and, independently of the service, the payload's own log: it never sounded
    outside the community.

    ``flights`` > 1: the area is longer than the drone's flight time, and the one speaker drone
    flies it in that many sorties, one after the other (``while_first_flies`` runs once the
    first is underway: e.g. to drain its battery so that a swap is needed in between).

    The staff member is a ``community_staff`` account of that community: it asks, follows the
    broadcast and its missions, and reads the proof with its own token."""
    staff = f"staff-{community_id.lower()}-7"
    http = await svc.client(staff, "community_staff", [community_id])
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
                "requested_by": staff,
            },
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

        if while_first_flies is not None:

            async def first_underway() -> bool:
                b = (await http.get(f"/v1/broadcasts/{request_id}")).json()
                for mid in b["missions"]:
                    m = (await http.get(f"/v1/missions/{mid}")).json()
                    if m["plan"]["share"] == 0:
                        return bool(m["state"] == "underway")
                return False

            await eventually(
                _checked(first_underway, drones.check),
                timeout=600 / drones.speed + 60,
                message="the first flight is underway",
            )
            await while_first_flies()

        done = await eventually(
            _checked(finished, drones.check),
            timeout=flights * 1500 / drones.speed + 60,
            interval=0.5,
            message="the broadcast request reaches a final state",
        )
        assert done["state"] == "completed", done["events"]
        assert len(done["missions"]) == flights, done["missions"]
        [occurrence] = done["occurrences"]
        assert occurrence["state"] == "completed"
        assert occurrence["vehicles"] == [host] * flights

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

        missions = [(await http.get(f"/v1/missions/{mid}")).json() for mid in done["missions"]]
        missions.sort(key=lambda m: m["plan"]["share"])
        for i, m in enumerate(missions):
            assert m["kind"] == "drone_broadcast" and m["vehicle_id"] == host
            assert m["plan"]["sortie"] == i
            states = [
                e["to_state"]
                for e in m["events"]
                if e["kind"] == "state" and e["request_id"] is None
            ]
            assert states == ["planned", "authorized", "underway", "completed"]
            phases = [e["data"]["phase"] for e in m["events"] if e["kind"] == "phase"]
            assert phases[:2] == ["preflight", "takeoff"]
            assert {"broadcast", "return", "done"} <= set(phases)
            # a share whose first station lies over the pad has no transit to fly
            assert ("go_to" in phases) == (m["plan"]["first_station_index"] > 1), phases
            assert any(
                e["kind"] == "decision" and f"{host} (speaker {payload_id}" in e["reason"]
                for e in m["events"]
            )
            assert m["result"]["records_complete"] is True
        for before, after in itertools.pairwise(missions):
            # a later sortie takes off only once the one before it has ended
            assert after["plan"]["after"] == before["id"]
            assert after["started_at"] > before["ended_at"]
        m = missions[0]
        records = list(payload.records)

    # independent of the service: the payload's own log of what it played
    assert len(records) == report["plays"]["total"]
    for rec in records:
        for _, lat, lon, _alt in rec.samples:
            x, y = world.frame.to_xy(lat, lon)
            assert shapely.intersects_xy(area, x, y), f"the payload sounded outside {community_id}"
    return BroadcastFlight(done, report, m, records, missions)


# --- crossing deliveries, kept apart by strategic deconfliction -------------------------------


@dataclass
class Crossing:
    """What the crossing scenario saw."""

    approach: Approach | None
    """The closest two airborne drones came in the service's recorded telemetry."""
    missions: list[dict[str, Any]]
    delayed: int
    """Flights that took off later than asked because of another's reservation."""
    layered: int
    """Flights moved to another altitude layer."""


async def fly_crossing(
    svc: RunningService,
    drones: Drones,
    routes: Sequence[tuple[str, str]],
    *,
    recorders: Sequence[TelemetryRecorder] = (),
) -> Crossing:
    """Deliveries requested all at once whose paths cross (``routes``: (warehouse, community)
    pairs), one drone each: every request ends ``delivered``; each flight reserved its airspace
    (a safety note on its record); and the service's recorded telemetry (GLOBAL_POSITION_INT as
    the registry holds it, sampled every 0.5 world s) shows no two airborne drones closer than
    ``safety.separation_h_m`` unless ``separation_v_m`` apart vertically. ``recorders`` are
    sampled too (e.g. the simulator's ground truth) and checked the same way."""
    http = svc.http
    safety = svc.settings.safety
    world = svc.runtime.world
    for warehouse in sorted({w for w, _ in routes}):
        await add_stock(http, "medicine", 10 * len(routes), warehouse)
    await wait_ready(http, len(routes), drones.ready_timeout, drones.check)
    heard = TelemetryRecorder(drones.clock, registry_source(svc.runtime.registry, world))
    tasks = [recording(heard), *(recording(r) for r in recorders)]
    try:
        ids = [
            (
                await post_request(
                    http,
                    {
                        "community_id": community,
                        "warehouse_id": warehouse,
                        "priority": "urgent_medical",
                        "items": [{"sku_id": "medicine", "quantity": 3}],
                    },
                )
            )["id"]
            for warehouse, community in routes
        ]
        missions: list[dict[str, Any]] = []
        for request_id in ids:
            req = await wait_request(http, request_id, 3600 / drones.speed + 180, drones.check)
            assert req["state"] == "delivered", req["events"]
            [mission_id] = req["missions"]
            m = await wait_mission(http, mission_id, 900 / drones.speed + 60, drones.check)
            assert m["state"] == "completed", m["reason"]
            missions.append(m)
    finally:
        for t in tasks:
            t.cancel()
    assert len({m["vehicle_id"] for m in missions}) == len(routes), "one drone each"
    delayed = layered = 0
    for m in missions:
        notes = [e for e in m["events"] if e["kind"] == "safety"]
        reserved = next(e for e in notes if e["reason"].startswith("airspace reserved"))
        [secured] = [e for e in notes if e["reason"].startswith("failsafe policy set")]
        # two warehouses: the other one's pads are this drone's rally points, read back
        assert secured["data"]["rally_points"] >= 1
        if reserved["data"]["waited_for"]:
            delayed += reserved["data"]["layer_m"] is None
            layered += reserved["data"]["layer_m"] is not None
    approach = None
    for rec in (heard, *recorders):
        assert len(rec.times) > 100, "the telemetry was recorded"
        found = closest_approach(rec, safety.separation_h_m, safety.separation_v_m)
        assert found is None or not found.violates(safety.separation_h_m, safety.separation_v_m), (
            f"separation lost: {found}"
        )
        if rec is heard:
            approach = found
    return Crossing(approach, missions, delayed, layered)


# --- flight safety: the policy on the vehicle, a sag, a fence that stops the flight -------------


async def secured_delivery(
    svc: RunningService, drones: Drones, community: Community
) -> dict[str, Any]:
    """A delivery flown after the failsafe policy was set and read back: the record says so
    with the values read back, and the vehicle, asked again over MAVLink after the flight,
    still holds every value of the policy."""
    d = await fly_delivery(
        svc.http,
        community,
        vehicles=len(drones.ports),
        speed=drones.speed,
        ready_timeout=drones.ready_timeout,
        check=drones.check,
    )
    m = d.mission
    policy = failsafe_policy(
        svc.settings.safety, svc.runtime.world, svc.settings.drone_missions.cruise_alt_m
    )
    [secured] = [
        e
        for e in m["events"]
        if e["kind"] == "safety" and e["reason"].startswith("failsafe policy set and read back")
    ]
    assert secured["data"]["parameters"] == pytest_approx(policy)
    assert secured["data"]["fence_polygons"] >= 1
    control = svc.runtime.registry.get(m["vehicle_id"]).control
    assert isinstance(control, DroneControl)
    held = {name: await control.get_parameter(name) for name in FAILSAFE_PARAMETERS}
    assert held == pytest_approx(policy)
    r = m["result"]
    air = r["battery_airborne"]
    print(
        f"energy: the vehicle reported {air['first']:.4f} -> {air['last']:.4f} over "
        f"{air['seconds']} s in the air (used {air['used']:.4f}), the model predicts "
        f"{air['predicted']:.4f}; take-off {r['battery_at_takeoff']}, landing "
        f"{r['battery_at_landing']}; planned {m['plan']['duration_s']} s (energy "
        f"{m['plan']['energy_fraction']}), flown {m['started_at']} .. {r['landed_at']}"
    )
    # the energy model, calibrated against what the vehicle's battery reports in the air:
    # never less than it used (the reserve holds), and not so cautious that it refuses
    # sorties the battery could fly
    assert 0.7 * air["predicted"] <= air["used"] <= air["predicted"] + 0.01, air
    return m


def pytest_approx(values: dict[str, float]) -> Any:
    return pytest.approx(values, rel=1e-5, abs=1e-5)


async def _one_mission(
    http: httpx.AsyncClient, request_id: str, timeout: float, check: Check | None
) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        r = (await http.get(f"/v1/requests/{request_id}")).json()
        missions = [(await http.get(f"/v1/missions/{mid}")).json() for mid in r["missions"]]
        if not missions:
            return None
        first: dict[str, Any] = min(missions, key=lambda m: m["created_at"])
        return first if first["state"] in MISSION_FINAL else None

    result: dict[str, Any] = await eventually(
        _checked(ended, check), timeout=timeout, interval=0.5, message="the first mission ends"
    )
    return result


async def urgent_delivery_cruising(
    svc: RunningService, drones: Drones, community: Community
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An urgent-medical delivery to ``community`` requested once every drone is ready;
    returns (the request, its mission) once the drone cruises (phase ``go_to``): where the
    fault scenarios inject their fault."""
    http = svc.http
    await add_stock(http, "medicine", 50)
    await wait_ready(http, len(drones.ports), drones.ready_timeout, drones.check)
    req = await post_urgent_medicine(http, community)

    async def cruising() -> dict[str, Any] | None:
        r = (await http.get(f"/v1/requests/{req['id']}")).json()
        for mission_id in r["missions"]:
            m: dict[str, Any] = (await http.get(f"/v1/missions/{mission_id}")).json()
            if m["phase"] == "go_to":
                return m
        return None

    m = await eventually(
        _checked(cruising, drones.check), timeout=300 / drones.speed + 60, message="on its way"
    )
    return req, m


async def battery_sag_recall(
    svc: RunningService, drones: Drones, community: Community
) -> dict[str, Any]:
    """A drone whose battery sags in flight (the test made it drain fast) is recalled by the
    service once the battery is below what the rest of the sortie needs plus the reserve,
    before the vehicle says anything about its battery; it comes down (home, or where its own
    emergency failsafe lands it when the sag outruns the reserve), the mission fails with the
    reason, and the request goes back to the queue for another sortie."""
    http = svc.http
    await add_stock(http, "medicine", 50)
    await wait_ready(http, len(drones.ports), drones.ready_timeout, drones.check)
    req = await post_urgent_medicine(http, community)
    m = await _one_mission(http, req["id"], 1200 / drones.speed + 60, drones.check)
    assert m["state"] == "failed", m["reason"]
    assert "recalled: battery" in m["reason"], m["reason"]
    events = sorted(m["events"], key=lambda e: e["at"])
    [recall] = [
        i
        for i, e in enumerate(events)
        if e["kind"] == "safety" and "the rest of the sortie needs" in e["reason"]
    ]
    # the service acted first: every battery word of the vehicle's own comes after the recall
    # (a sag steeper than the reserve covers then ends in the vehicle's emergency landing)
    vehicle_battery = [
        i
        for i, e in enumerate(events)
        if e["kind"] == "safety"
        and e["reason"].startswith("vehicle: ")
        and "battery" in e["reason"].lower()
    ]
    assert all(i > recall for i in vehicle_battery), [e["reason"] for e in events]
    assert m["result"]["landing_position"] is not None
    assert not m["result"].get("released")
    r = (await http.get(f"/v1/requests/{req['id']}")).json()
    assert r["state"] in {"approved", "scheduled", "in_progress", "delivered"}, r["events"]
    return m


async def fence_stops_the_flight(
    svc: RunningService, drones: Drones, community: Community, limit_m: float = 120.0
) -> dict[str, Any]:
    """Once the drone cruises, its fence is tightened over MAVLink (GF_MAX_HOR_DIST); the
    vehicle's own geofence stops the flight (GF_ACTION 3, set by the policy: return), and the
    service reports the mission failed with the vehicle's own words."""
    http = svc.http
    _, m = await urgent_delivery_cruising(svc, drones, community)
    control = svc.runtime.registry.get(m["vehicle_id"]).control
    assert isinstance(control, DroneControl)
    await control.set_parameter("GF_MAX_HOR_DIST", limit_m)
    m = await wait_mission(http, m["id"], 900 / drones.speed + 60, drones.check)
    assert m["state"] == "failed", m["reason"]
    assert "the vehicle said:" in m["reason"], m["reason"]
    said = [
        e["reason"]
        for e in m["events"]
        if e["kind"] == "safety" and e["reason"].startswith("vehicle: ")
    ]
    assert any("fence" in s.lower() for s in said), said
    assert not m["result"].get("released")
    return m


async def gps_lost_in_flight(
    svc: RunningService,
    drones: Drones,
    community: Community,
    lose_gps: Callable[[str, DroneControl], Awaitable[None]],
) -> dict[str, Any]:
    """Once a delivery cruises, its drone loses GPS (``lose_gps``: the test's injection). The
    vehicle comes down where it is by its own failsafe (no global position: land or descend);
    the service records the vehicle's words, fails the mission once the drone is down and
    disarmed without releasing, and the request is delivered by another drone."""
    http = svc.http
    req, m = await urgent_delivery_cruising(svc, drones, community)
    entry = svc.runtime.registry.get(m["vehicle_id"])
    assert isinstance(entry.control, DroneControl)
    await lose_gps(m["vehicle_id"], entry.control)
    m = await wait_mission(http, m["id"], 900 / drones.speed + 60, drones.check)
    assert m["state"] == "failed", m["reason"]
    assert not m["result"].get("released")
    said = [
        e["reason"]
        for e in m["events"]
        if e["kind"] == "safety" and e["reason"].startswith("vehicle: ")
    ]
    assert said, [e["reason"] for e in m["events"]]  # in the vehicle's own words
    # where it is: down and disarmed, as its own telemetry says
    assert entry.status.landed == LandedState.ON_GROUND and not entry.status.armed
    r = await wait_request(http, req["id"], 1800 / drones.speed + 60, drones.check)
    assert r["state"] == "delivered", r["events"]
    [other] = [mid for mid in r["missions"] if mid != m["id"]]
    second = await wait_mission(http, other, 900 / drones.speed + 60, drones.check)
    assert second["state"] == "completed" and second["vehicle_id"] != m["vehicle_id"]
    return m


async def service_lost_in_flight(
    first: RunningService, drones: Drones, community: Community
) -> tuple[str, str]:
    """First run of the lost-link scenario: a delivery is cruising when the service (the
    ground station) goes silent; returns (request id, mission id)."""
    req, m = await urgent_delivery_cruising(first, drones, community)
    return req["id"], str(m["id"])


async def home_by_its_own_failsafe(
    svc: RunningService, drones: Drones, request_id: str, mission_id: str
) -> dict[str, Any]:
    """Second run: the drone, its link lost for longer than COM_DL_LOSS_T, came home by its own
    failsafe (NAV_DLL_ACT 2, set by the service before take-off); the service finds it on its
    pad, fails the mission (nothing released) and delivers the request with another sortie."""
    http = svc.http
    m = await wait_mission(http, mission_id, 900 / drones.speed + 60, drones.check)
    assert m["state"] == "failed", m["reason"]
    assert "without releasing the payload" in m["reason"], m["reason"]
    assert m["result"]["landing_distance_m"] <= 5.0
    req = await wait_request(http, request_id, 1800 / drones.speed + 60, drones.check)
    assert req["state"] == "delivered", req["events"]
    assert mission_id in req["missions"] and len(req["missions"]) == 2, req["missions"]
    return m


# --- operators' commands to drones -----------------------------------------------------------

COMMAND_FINAL = frozenset({"succeeded", "failed", "timed_out"})
"""Command states after which the record no longer changes."""
OPERATOR = "ops-li"
"""The operator account the command scenarios act as."""
HELD_DELIVERY: dict[str, Any] = {"drone_missions": {"max_flight_s": 420.0}}
"""Settings of :func:`hold_then_resume`: C02 is about 275 s away and back, so a hold longer
than the rest of these 420 s would end the mission as overdue if holding did not stop its
deadline."""


async def post_command(
    http: httpx.AsyncClient,
    vehicle_id: str,
    command: str,
    reason: str,
    *,
    key: str | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    """``POST /v1/vehicles/{id}/commands``; returns the record (or the problem)."""
    headers = {"Idempotency-Key": key} if key else {}
    r = await http.post(
        f"/v1/vehicles/{vehicle_id}/commands",
        json={"command": command, "reason": reason},
        headers=headers,
    )
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    if expect in (200, 201):
        assert r.headers["Location"] == f"/v1/commands/{body['id']}"
    return body


async def wait_command(
    http: httpx.AsyncClient, command_id: str, timeout: float, check: Check | None = None
) -> dict[str, Any]:
    """Follow a command's record until it is final."""

    async def final() -> dict[str, Any] | None:
        rec: dict[str, Any] = (await http.get(f"/v1/commands/{command_id}")).json()
        return rec if rec["state"] in COMMAND_FINAL else None

    result: dict[str, Any] = await eventually(
        _checked(final, check), timeout=timeout, interval=0.2, message="the command ends"
    )
    return result


def check_life_cycle(rec: dict[str, Any], state: str = "succeeded") -> None:
    """A command's record went accepted -> sent -> acknowledged -> ``state``, in order, by
    the operator."""
    assert rec["state"] == state, rec
    assert rec["requested_by"] == OPERATOR and rec["role"] == "operator", rec
    times = [rec["accepted_at"], rec["sent_at"], rec["acknowledged_at"], rec["ended_at"]]
    assert all(times), rec
    assert times == sorted(times), rec


async def delivery_in_flight(
    svc: RunningService,
    drones: Drones,
    community: Community,
    away_m: float = 0.0,
    *,
    vehicles: int = 1,
) -> tuple[str, dict[str, Any]]:
    """One drone (of ``vehicles`` ready ones) flies medicine to ``community``; returns the
    request id and its mission once the drone cruises towards the drop point, at least
    ``away_m`` from its pad."""
    http = svc.http
    await add_stock(http, "medicine", 50)
    await wait_ready(http, vehicles, drones.ready_timeout, drones.check)
    req = await post_urgent_medicine(http, community)

    async def cruising() -> dict[str, Any] | None:
        r = (await http.get(f"/v1/requests/{req['id']}")).json()
        for mission_id in r["missions"]:
            m: dict[str, Any] = (await http.get(f"/v1/missions/{mission_id}")).json()
            if m["state"] == "underway" and m["phase"] == "go_to":
                v = (await http.get(f"/v1/vehicles/{m['vehicle_id']}")).json()
                pad = svc.runtime.world.pad(m["plan"]["pad_id"])
                here = LatLon(v["position"]["lat"], v["position"]["lon"])
                if distance_m(here, pad.location) >= away_m:
                    return m
        return None

    mission: dict[str, Any] = await eventually(
        _checked(cruising, drones.check),
        timeout=300 / drones.speed + drones.ready_timeout,
        message="the drone is on its way",
    )
    return req["id"], mission


def _reasons(mission: dict[str, Any]) -> list[str]:
    return [e["reason"] for e in mission["events"]]


async def hold_then_resume(
    svc: RunningService, drones: Drones, community: Community
) -> dict[str, Any]:
    """An operator holds a drone on its way to ``community`` (PX4 Hold), longer than the
    mission's deadline (settings :data:`HELD_DELIVERY`), then resumes it: the hold is
    acknowledged and seen (mode ``hold``), a retried POST with the same Idempotency-Key gives
    the same record (200), the mission stays ``underway`` past its deadline with "held by" on
    its record, the resume continues the mission (mode ``mission``) and the delivery completes.
    Returns the completed mission."""
    http = svc.http
    ops = await svc.client(OPERATOR, "operator")
    speed = drones.speed
    limit = svc.settings.drone_missions.max_flight_s
    request_id, mission = await delivery_in_flight(svc, drones, community)
    drone = mission["vehicle_id"]
    key = f"hold-{mission['id']}"
    hold = await post_command(ops, drone, "hold", "crane working at the drop point", key=key)
    assert hold["mission_id"] == mission["id"], hold
    again = await post_command(
        ops, drone, "hold", "crane working at the drop point", key=key, expect=200
    )
    assert again["id"] == hold["id"]
    hold = await wait_command(http, hold["id"], 60 / speed + 30, drones.check)
    check_life_cycle(hold)
    assert "hold" in hold["outcome"], hold
    listed = (await http.get(f"/v1/vehicles/{drone}/commands")).json()
    assert [c["id"] for c in listed] == [hold["id"]]

    # held past the mission's deadline: still under way, still holding
    started = (await http.get(f"/v1/missions/{mission['id']}")).json()["started_at"]
    deadline = datetime.fromisoformat(started).timestamp() + limit
    await eventually(
        _checked(lambda: drones.clock.time() > deadline + 20, drones.check),
        timeout=(limit + 60) / speed + 30,
        message="the mission's deadline passes while the drone is held",
    )
    m = (await http.get(f"/v1/missions/{mission['id']}")).json()
    assert m["state"] == "underway", m["reason"]
    assert m["phase"] == "wait", m["phase"]
    assert any(r == f"held by {OPERATOR}: crane working at the drop point" for r in _reasons(m))
    v = (await http.get(f"/v1/vehicles/{drone}")).json()
    assert v["mode"] == "hold" and v["landed"] == "in_air", v

    resume = await post_command(ops, drone, "resume", "crane gone")
    resume = await wait_command(http, resume["id"], 60 / speed + 30, drones.check)
    check_life_cycle(resume)
    assert "mission" in resume["outcome"], resume

    req = await wait_request(http, request_id, 1200 / speed + 60, drones.check)
    assert req["state"] == "delivered", req["events"]
    m = await wait_mission(http, mission["id"], 600 / speed + 60, drones.check)
    assert m["state"] == "completed", m["reason"]
    reasons = _reasons(m)
    assert f"resumed by {OPERATOR}: crane gone" in reasons
    assert f"hold commanded by {OPERATOR}: crane working at the drop point" in reasons
    assert m["result"]["release_distance_m"] <= 5.0
    listed = (await http.get(f"/v1/vehicles/{drone}/commands")).json()
    assert [c["command"] for c in listed] == ["resume", "hold"]  # newest first
    oldest = (await http.get(f"/v1/vehicles/{drone}/commands", params={"order": "oldest"})).json()
    assert [c["command"] for c in oldest] == ["hold", "resume"]
    return m


async def stop_in_flight(
    svc: RunningService, drones: Drones, community: Community, command: str
) -> dict[str, Any]:
    """An operator commands ``return`` or ``land`` to a drone on its way to ``community``: the
    command succeeds (mode ``rtl`` / ``land``) and the mission ends as a cancelled one does
    (``cancelled`` once the drone is down and disarmed, the load back to stock, the request
    cancelled), the command on its record. Returns the mission."""
    assert command in ("return", "land")
    http = svc.http
    ops = await svc.client(OPERATOR, "operator")
    request_id, mission = await delivery_in_flight(svc, drones, community, away_m=80.0)
    drone = mission["vehicle_id"]
    rec = await post_command(ops, drone, command, "thunderstorm coming")
    rec = await wait_command(http, rec["id"], 60 / drones.speed + 30, drones.check)
    check_life_cycle(rec)
    mode = {"return": "rtl", "land": "land"}[command]
    assert rec["outcome"] in (f"mode {mode} reported", "landed"), rec
    m = await wait_mission(http, mission["id"], 900 / drones.speed + 60, drones.check)
    assert m["state"] == "cancelled", m["reason"]
    assert f"cancelled by {OPERATOR}: {command} commanded: thunderstorm coming" in m["reason"]
    reasons = _reasons(m)
    assert f"{command} commanded by {OPERATOR}: thunderstorm coming" in reasons
    phases = [e["data"]["phase"] for e in m["events"] if e["kind"] == "phase"]
    assert ("return" if command == "return" else "landing") in phases
    assert not m["result"].get("released")
    req = (await http.get(f"/v1/requests/{request_id}")).json()
    assert req["state"] == "cancelled", req["state"]
    ledger = (await http.get("/v1/warehouses/W1/ledger", params={"request_id": request_id})).json()
    kinds = [mv["kind"] for mv in ledger]
    assert "load" in kinds and "return" in kinds and "deliver" not in kinds, kinds
    pad = svc.runtime.world.pad(m["plan"]["pad_id"])
    here = m["result"]["landing_position"]
    away = distance_m(LatLon(here[0], here[1]), pad.location)
    if command == "return":
        assert away <= 3.0, away
    else:
        assert away > 50.0, away  # it landed where it was, on its way out
    return m


async def out_of_service_in_flight(
    svc: RunningService, drones: Drones, community: Community
) -> dict[str, Any]:
    """An operator takes the drone flying a delivery out of service: it is called home, its
    mission ends ``cancelled`` with its work back in the queue, and another drone delivers the
    request; the drone out of service gets no work until it is put back. Needs two drones.
    Returns the request."""
    http = svc.http
    ops = await svc.client(OPERATOR, "operator")
    request_id, mission = await delivery_in_flight(svc, drones, community, away_m=60.0, vehicles=2)
    first = mission["vehicle_id"]
    r = await ops.put(
        f"/v1/vehicles/{first}/service", json={"in_service": False, "reason": "motor noise"}
    )
    assert r.status_code == 200 and r.json()["changed"] is True, r.text
    again = await ops.put(
        f"/v1/vehicles/{first}/service", json={"in_service": False, "reason": "motor noise"}
    )
    assert again.json()["changed"] is False
    m = await wait_mission(http, mission["id"], 900 / drones.speed + 60, drones.check)
    assert m["state"] == "cancelled", m["reason"]
    assert f"taken out of service by {OPERATOR}: motor noise" in m["reason"]
    req = await wait_request(http, request_id, 1800 / drones.speed + 60, drones.check)
    assert req["state"] == "delivered", [e["reason"] for e in req["events"]]
    assert any("its work is back in the queue" in e["reason"] for e in req["events"])
    [other] = [x for x in req["missions"] if x != mission["id"]]
    done = await wait_mission(http, other, 900 / drones.speed + 60, drones.check)
    assert done["vehicle_id"] != first, (first, done["vehicle_id"], mission["vehicle_id"])
    assert done["state"] == "completed", done["reason"]
    flown = (await http.get("/v1/missions", params={"vehicle_id": first})).json()
    assert [x["id"] for x in flown] == [mission["id"]], "no work while out of service"
    events = (await http.get(f"/v1/vehicles/{first}/events")).json()
    assert any(e["data"].get("event") == "out_of_service" for e in events)
    back = await ops.put(
        f"/v1/vehicles/{first}/service", json={"in_service": True, "reason": "motor replaced"}
    )
    assert back.json() == {"vehicle_id": first, "in_service": True, "changed": True}
    return dict(req)
