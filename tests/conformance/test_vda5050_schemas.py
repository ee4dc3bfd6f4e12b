"""Every message the bridge and the sim van send in a scripted scenario is valid against the
official VDA 5050 JSON schemas of the version they speak (``../shared/vda5050/2.1.0``, and
``../shared/vda5050/2.0.0`` with the sim van acting as a 2.0.0 vehicle: the bridge learns the
version from the van's headers and writes orders and instant actions in its shape), with the
spec's QoS and retain rules and its timestamp format.

The scenario covers: connection ONLINE, factsheet, state and visualization; a trip with pick
and drop, a horizon and an order update; rejected orders (validation, order, update and route
errors); pause, resume, state and factsheet requests; charging; cancel with and without an
order; the last will (CONNECTIONBROKEN) and a goodbye (OFFLINE).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from firmware_bridges.vda5050 import wire
from fleet.clock import AcceleratedClock
from fleet.errors import CommandRejected
from fleet.mqtt import BrokerAddress
from fleet.van import Drop, Pick, TripNode, VanTrip
from fleet.vehicle import LinkState
from tests.support import eventually
from tests.unit.vda5050.harness import MANUFACTURER, bridge, trip_through, vans

jsonschema = pytest.importorskip("jsonschema")

SCHEMA_ROOT = Path(
    os.environ.get(
        "STREETFLEET_VDA5050_SCHEMAS",
        Path(__file__).resolve().parents[3] / "shared" / "vda5050",
    )
)
"""Folder of the official schemas, one subfolder per release (``2.1.0``, ``2.0.0``)."""
SCHEMA_FILES = {
    "order": "order.schema",
    "instantActions": "instantActions.schema",
    "state": "state.schema",
    "visualization": "visualization.schema",
    "connection": "connection.schema",
    "factsheet": "factsheet.schema",
}
FACTSHEET_2_0 = "factsheet.json"
"""The 2.0.0 release names its factsheet schema so."""
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{2}Z$")
"""The spec's timestamp format: YYYY-MM-DDTHH:mm:ss.ffZ (section 6.4)."""

pytestmark = [pytest.mark.mosquitto]


def schema_dir(version: str) -> Path:
    """The official schemas of ``version``; skips the test when they are absent."""
    folder = SCHEMA_ROOT / version
    if not folder.is_dir():
        pytest.skip(
            f"official VDA 5050 {version} schemas not found in {folder} "
            "(set STREETFLEET_VDA5050_SCHEMAS to the folder holding 2.1.0/ and 2.0.0/)"
        )
    return folder


@dataclass
class Captured:
    topic: str
    subtopic: str
    payload: bytes
    qos: int
    retain: bool


def validators(version: str) -> dict[str, Any]:
    folder = schema_dir(version)
    out = {}
    for subtopic, name in SCHEMA_FILES.items():
        if subtopic == "factsheet" and version == wire.V2_0:
            name = FACTSHEET_2_0
        schema = json.loads((folder / name).read_text())
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        out[subtopic] = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return out


async def record(client: aiomqtt.Client, prefix: str, into: list[Captured]) -> None:
    async for m in client.messages:
        where = wire.split_topic(prefix, "uagv", m.topic.value)
        if where is None:
            continue
        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
        into.append(Captured(m.topic.value, where[2], payload, m.qos, m.retain))


def check(validator: Any, msg: Captured, version: str) -> list[str]:
    problems = [
        f"{msg.topic}: {e.json_path}: {e.message}"
        for e in validator.iter_errors(json.loads(msg.payload))
    ]
    data = json.loads(msg.payload)
    ts = data.get("timestamp")
    if ts is not None or msg.subtopic != "factsheet":
        if not isinstance(ts, str) or not TIMESTAMP.match(ts):
            problems.append(f"{msg.topic}: timestamp {ts!r} is not YYYY-MM-DDTHH:mm:ss.ffZ")
        else:
            datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if data.get("version") != version:
        problems.append(f"{msg.topic}: version {data.get('version')!r}, not {version}")
    return problems


@pytest.mark.parametrize("version", [wire.PROTOCOL_VERSION, wire.V2_0])
async def test_every_message_of_a_scripted_scenario_is_schema_valid(
    mqtt_url: str, mqtt_prefix: str, version: str
) -> None:
    validate = validators(version)
    clock = AcceleratedClock(100.0)
    addr = BrokerAddress.parse(mqtt_url)
    link_url = f"vda5050+mqtt://{addr.host}:{addr.port}/{MANUFACTURER}?prefix={mqtt_prefix}"
    captured: list[Captured] = []
    async with aiomqtt.Client(addr.host, addr.port) as spy:
        await spy.subscribe(f"{mqtt_prefix}/#", qos=1)
        async with asyncio.TaskGroup() as tg:
            recorder = tg.create_task(record(spy, mqtt_prefix, captured))
            async with bridge(link_url, clock) as b:
                async with vans(
                    mqtt_url, clock, mqtt_prefix, battery_soc=0.6, version=version
                ) as fleet:
                    await scenario(b, fleet, version)
                await eventually(
                    lambda: any(
                        c.subtopic == "connection" and b'"OFFLINE"' in c.payload for c in captured
                    ),
                    message="OFFLINE on leaving",
                )
            recorder.cancel()

    by_topic: dict[str, list[Captured]] = defaultdict(list)
    for c in captured:
        by_topic[c.subtopic].append(c)
    assert set(by_topic) == set(SCHEMA_FILES), f"topics seen: {sorted(by_topic)}"
    problems = [p for c in captured for p in check(validate[c.subtopic], c, version)]
    assert not problems, "\n".join(problems[:20])

    # QoS: connection at 1, everything else at 0 (section 6.2)
    assert {c.qos for c in by_topic["connection"]} == {1}
    assert {c.qos for c in captured if c.subtopic != "connection"} == {0}
    states = {json.loads(c.payload)["connectionState"] for c in by_topic["connection"]}
    assert states == {"ONLINE", "CONNECTIONBROKEN", "OFFLINE"}
    # the scenario exercised what it claims
    errors = {e["errorType"] for c in by_topic["state"] for e in json.loads(c.payload)["errors"]}
    assert errors >= {
        "validationError",
        "orderError",
        "orderUpdateError",
        "noRouteError",
        "noOrderToCancel",
    }
    statuses = {
        a["actionStatus"] for c in by_topic["state"] for a in json.loads(c.payload)["actionStates"]
    }
    assert statuses == {"WAITING", "RUNNING", "FINISHED", "FAILED"}
    instant = [a for c in by_topic["instantActions"] for a in json.loads(c.payload)["actions"]]
    instant_types = {a["actionType"] for a in instant}
    if version == wire.V2_0:  # the 2.0.0 schema's name, and its text's
        assert all(a["actionName"] == a["actionType"] for a in instant)
    else:
        assert not any("actionName" in a for a in instant)
    deviations = {
        "allowedDeviationXy" if version == wire.V2_0 else "allowedDeviationXY"
        for c in by_topic["order"]
        for n in json.loads(c.payload)["nodes"]
        for k in n.get("nodePosition", {})
        if k.lower() == "alloweddeviationxy"
    }
    assert deviations == {"allowedDeviationXy" if version == wire.V2_0 else "allowedDeviationXY"}
    assert instant_types >= {
        "startPause",
        "stopPause",
        "cancelOrder",
        "stateRequest",
        "factsheetRequest",
        "startCharging",
        "stopCharging",
    }
    updates = {json.loads(c.payload)["orderUpdateId"] for c in by_topic["order"]}
    assert updates >= {0, 1}
    # header ids grow by one per topic and sender
    for subtopic in ("state", "order", "instantActions"):
        per_sender: dict[str, list[int]] = defaultdict(list)
        for c in by_topic[subtopic]:
            data = json.loads(c.payload)
            if data.get("orderId") == "broken":
                continue  # published by hand above
            per_sender[data["serialNumber"]].append(data["headerId"])
        for ids in per_sender.values():
            assert ids == sorted(ids) and len(set(ids)) == len(ids), subtopic

    # retained: connection and factsheet, as a newcomer sees them
    async with aiomqtt.Client(addr.host, addr.port) as late:
        await late.subscribe(f"{mqtt_prefix}/#", qos=1)
        retained: list[Captured] = []

        async def first_two() -> None:
            async for m in late.messages:
                where = wire.split_topic(mqtt_prefix, "uagv", m.topic.value)
                assert where is not None
                payload = m.payload if isinstance(m.payload, bytes) else b""
                retained.append(Captured(m.topic.value, where[2], payload, m.qos, m.retain))
                if len(retained) == 2:
                    return

        await asyncio.wait_for(first_two(), 10)
    assert {(c.subtopic, c.retain) for c in retained} == {("connection", True), ("factsheet", True)}
    assert b'"OFFLINE"' in next(c.payload for c in retained if c.subtopic == "connection")


async def scenario(b: Any, fleet: Any, version: str) -> None:
    await eventually(lambda: "van-VAN-01" in b.registry)
    entry = b.registry.get("van-VAN-01")
    van, sim = entry.control, fleet[0]
    await eventually(lambda: entry.status.link is LinkState.ONLINE)
    assert van.version == version and van.announced_version == version
    await van.request_factsheet()
    # rejections of every kind
    with pytest.raises(CommandRejected):
        await van.send_trip(trip_through("too-big", [(0, 0), (10, 0)], {0: [Pick("X", 200, 1.0)]}))
    with pytest.raises(CommandRejected):
        await van.send_trip(trip_through("far", [(900, 900), (910, 900)]))
    broken = wire.Order(
        header_id=9999,
        timestamp=wire.format_timestamp(clock_time(b)),
        version=version,
        manufacturer=MANUFACTURER,
        serial_number="VAN-01",
        order_id="broken",
        order_update_id=0,
        nodes=[],
        edges=[],
    )
    await b.link.publish(van.topic("order"), wire.encode(broken, version), 0)
    await eventually(
        lambda: van.state is not None and any(f.type == "validationError" for f in van.state.faults)
    )
    with pytest.raises(CommandRejected):
        await van.cancel_trip()
    # a trip with a horizon (its drop waits there), extended by an update
    trip = trip_through(
        "t1",
        [(0, 0), (60, 0), (60, 40), (0, 40)],
        {0: [Pick("L1", 12, 70.0, "masks")], 2: [Drop("L1", 12, 70.0, "masks")]},
        base=2,
    )
    await van.send_trip(trip)
    await eventually(lambda: sim.agv.last_node_id == "N60_0" and not sim.agv.driving, timeout=30)
    # a new order that does not continue the running one: orderUpdateError
    with pytest.raises(CommandRejected):
        await van.send_trip(trip_through("intruder", [(60, 0), (60, -40)]))
    ext = trip_through("t1", [(60, 0), (60, 40), (0, 40)], {1: [Drop("L1", 12, 70.0, "masks")]})
    await van.update_trip(ext)
    await van.pause()
    await van.request_state()
    await van.resume()
    result = await van.wait_trip("t1", within=3600)
    assert result.ok and len(result.actions) == 2  # the replaced horizon drop is forgotten
    # charging where the van stands, then a trip cancelled midway
    sim.agv.chargers = ((0.0, 40.0),)
    await van.start_charging()
    await van.stop_charging()
    await van.send_trip(trip_through("c", [(0, 40), (2000, 40)]))
    await eventually(lambda: sim.agv.pose.speed > 3, timeout=20)
    await van.cancel_trip()
    # home from where the cancel stopped it: the first node's allowed deviation covers the way
    # (the field whose spelling differs between 2.0.0 and 2.1.0)
    node = trip_through("home", [(0, 40)]).nodes[0]
    await van.send_trip(VanTrip("home", (TripNode(node.node_id, node.position, (), "", 2500.0),)))
    await eventually(lambda: van.state is not None and van.state.trip_id == "home")
    # the last will, then back
    sim.crash()
    await eventually(lambda: entry.status.link is LinkState.LOST, timeout=10)
    sim.recover()
    await eventually(lambda: entry.status.link is LinkState.ONLINE, timeout=10)


def clock_time(b: Any) -> float:
    return float(b.link.ctx.clock.time())
