"""The van bridge with a Mosquitto of the test's own: a real broker outage, and credentials
with an ACL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.clock import AcceleratedClock
from fleet.events import VehicleEventKind
from fleet.van import Drop, Pick, VanTrip
from fleet.vehicle import LinkState
from tests.support import eventually
from tests.unit.vda5050.harness import Mosquitto, bridge, delivery, trip_through, vans

pytestmark = [pytest.mark.slow]

PREFIX = "site-a"


def url(broker_port: int, creds: str = "", path: str = "acme") -> str:
    at = f"{creds}@" if creds else ""
    return f"vda5050+mqtt://{at}127.0.0.1:{broker_port}/{path}?prefix={PREFIX}"


def out_and_back(trip_id: str, start: tuple[float, float]) -> VanTrip:
    x, y = start
    return trip_through(
        trip_id,
        [(x, y), (x, y + 100), (x, y)],
        {0: [Pick(f"{trip_id}-L", 5, 30.0)], 1: [Drop(f"{trip_id}-L", 5, 30.0)]},
    )


async def test_broker_outage_van_drives_on_and_order_is_delivered_once(tmp_path: Path) -> None:
    clock = AcceleratedClock(20.0)
    mq = Mosquitto(tmp_path)
    mq.start()
    try:
        opts = {"order_timeout_s": 3600.0, "resend_interval_s": 2.0}
        async with vans(mq.url, clock, PREFIX) as fleet, bridge(url(mq.port), clock, opts) as b:
            await eventually(lambda: "van-VAN-01" in b.registry)
            entry = b.registry.get("van-VAN-01")
            van, agv = entry.control, fleet[0].agv
            await eventually(lambda: entry.status.link is LinkState.ONLINE)

            # 1. the van keeps driving its released base while the broker is down
            await van.send_trip(trip_through("long", [(0, 0), (400, 0), (400, 100)]))
            mq.stop()
            await eventually(lambda: not b.link.connected.is_set(), timeout=10)
            await eventually(lambda: not fleet[0].connected.is_set(), timeout=10)
            await eventually(
                lambda: agv.last_node_id == "N400_100" and not agv.busy,
                timeout=30,
                message="trip driven to its end during the outage",
            )
            assert entry.status.mission.reached < 2  # the bridge has not heard of it yet

            # 2. a trip sent during the outage goes out once the broker is back
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(van.send_trip(out_and_back("late", (400, 100))))
                await eventually(
                    lambda: b.link.stats.unsent >= 2, timeout=30, message="attempts in the outage"
                )
                assert not task.done()
                mq.start()
            assert b.link.stats.connects == 2 and fleet[0].connections == 2
            await van.wait_trip("late", within=3600)
            assert entry.status.link is LinkState.ONLINE
            assert entry.status.mission.reached == 2
            picks = [e for e in b.of(VehicleEventKind.PAYLOAD) if e.data["action"] == "pick"]
            assert [e.data["trip_id"] for e in picks] == ["late"]  # applied once
            assert agv.cargo == {}
    finally:
        mq.stop()


async def test_credentials_and_acl(tmp_path: Path) -> None:
    users = {"fleet": "fleet-pw", "van01": "van01-pw"}
    acl = [
        "user fleet",
        *(f"topic read {PREFIX}/uagv/v2/+/+/{t}" for t in ("state", "connection", "factsheet")),
        *(f"topic write {PREFIX}/uagv/v2/+/+/{t}" for t in ("order", "instantActions")),
        "",
        "user van01",
        f"topic read {PREFIX}/uagv/v2/acme/VAN-01/order",
        f"topic read {PREFIX}/uagv/v2/acme/VAN-01/instantActions",
        *(
            f"topic write {PREFIX}/uagv/v2/acme/VAN-01/{t}"
            for t in ("state", "connection", "factsheet", "visualization")
        ),
    ]
    clock = AcceleratedClock(50.0)
    with Mosquitto(tmp_path, users=users, acl="\n".join(acl) + "\n") as mq:
        van_url = f"mqtt://van01:van01-pw@127.0.0.1:{mq.port}"
        async with (
            vans(van_url, clock, PREFIX) as fleet,
            # the same login used for another serial number: the ACL drops its traffic
            vans(van_url, clock, PREFIX, serial_prefix="IMP-"),
            bridge(url(mq.port, "fleet:wrong"), clock) as bad,
            bridge(url(mq.port, "fleet:fleet-pw"), clock) as good,
        ):
            await eventually(lambda: "van-VAN-01" in good.registry)
            van = good.registry.get("van-VAN-01").control
            await van.send_trip(delivery("secure"))
            await van.wait_trip("secure", within=3600)
            assert fleet[0].agv.order_id == "secure"
            assert good.link.stats.states > 10
            assert "van-IMP-01" not in good.registry
            assert bad.link.stats.connects == 0 and len(bad.registry) == 0
