"""The VDA 5050 bridge against sim vans over the real Mosquitto (unique topic prefix per test)."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from firmware_bridges.vda5050 import wire
from fleet.clock import AcceleratedClock
from fleet.errors import CommandRejected, Conflict, LinkLost, ValidationError
from fleet.events import VehicleEventKind
from fleet.mqtt import BrokerAddress
from fleet.van import ActionStatus, Pick, VanCapabilities, VanControl
from fleet.vehicle import FlightMode, LinkState, MissionRunState, VehicleKind
from tests.support import eventually
from tests.unit.vda5050.harness import (
    FRAME,
    MANUFACTURER,
    bridge,
    delivery,
    trip_through,
    vans,
)

pytestmark = [pytest.mark.mosquitto]

SPEED = 100.0
"""World seconds per real second in these tests."""


def link_url(mqtt_url: str, prefix: str, path: str = MANUFACTURER, query: str = "") -> str:
    addr = BrokerAddress.parse(mqtt_url)
    q = f"prefix={prefix}" + (f"&{query}" if query else "")
    return f"vda5050+mqtt://{addr.host}:{addr.port}/{path}?{q}"


async def test_discovery_factsheet_and_a_delivery_trip(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix, 2) as fleet,
        bridge(link_url(mqtt_url, mqtt_prefix), clock) as b,
    ):
        await eventually(lambda: len(b.registry) == 2, message="both vans discovered")
        entry = b.registry.get("van-VAN-01")
        assert entry.info.kind is VehicleKind.VAN
        assert entry.info.address == "acme/VAN-01"
        await eventually(lambda: entry.info.max_boxes == 150, message="capacity from factsheet")
        assert entry.info.payload_kg == 1000.0
        caps = entry.status.extra["van_capabilities"]
        assert isinstance(caps, VanCapabilities) and "pick" in caps.node_actions
        await eventually(lambda: entry.status.link is LinkState.ONLINE)
        van = entry.control
        assert isinstance(van, VanControl)
        trip = delivery("trip-1", boxes=24, kg=160.0)
        await van.send_trip(trip)
        assert van.state is not None and van.state.trip_id == "trip-1"
        assert entry.status.mission.state is MissionRunState.ACTIVE
        assert entry.status.mode is FlightMode.MISSION
        result = await van.wait_trip("trip-1", within=3600)
        assert result.ok and [a.status for a in result.actions] == [ActionStatus.FINISHED] * 2
        assert entry.status.mission.state is MissionRunState.COMPLETE
        assert entry.status.position is not None
        x, y = FRAME.to_xy(entry.status.position.lat, entry.status.position.lon)
        assert abs(x) < 1.0 and abs(y) < 1.0  # back at the dock
        payload = b.of(VehicleEventKind.PAYLOAD, "van-VAN-01")
        assert [
            (e.data["action"], e.data["status"], e.data["load_id"], e.data["boxes"])
            for e in payload
        ] == [
            ("pick", "finished", "trip-1-L", 24),
            ("drop", "finished", "trip-1-L", 24),
        ]
        assert payload[1].data["node_id"] == "N100_50" and payload[1].data["trip_id"] == "trip-1"
        assert b.of(VehicleEventKind.DISCOVERED, "van-VAN-02")
        # the other van did nothing
        assert fleet.by_serial("VAN-02").agv.order_id == ""
        assert b.link.stats.bad_payloads == 0


async def test_rejected_trips_raise_with_the_vans_error(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix),
        bridge(link_url(mqtt_url, mqtt_prefix), clock) as b,
    ):
        await eventually(lambda: "van-VAN-01" in b.registry)
        van = b.registry.get("van-VAN-01").control
        too_much = trip_through("big", [(0, 0), (50, 0)], {0: [Pick("L", 151, 10.0)]})
        with pytest.raises(CommandRejected) as err:
            await van.send_trip(too_much)
        assert err.value.fields["error_type"] == "orderError"
        assert err.value.fields["references"]["orderId"] == "big"
        far = trip_through("far", [(500, 500), (600, 500)])
        with pytest.raises(CommandRejected) as err:
            await van.send_trip(far)
        assert err.value.fields["error_type"] == "noRouteError"
        warnings = b.of(VehicleEventKind.STATUS_TEXT, "van-VAN-01")
        assert {e.data["error_type"] for e in warnings} >= {"orderError", "noRouteError"}
        # a good trip is still taken, and clears the warnings
        await van.send_trip(delivery("ok"))
        assert van.state is not None and van.state.faults == ()


async def test_horizon_and_order_update(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix) as fleet,
        bridge(link_url(mqtt_url, mqtt_prefix), clock) as b,
    ):
        await eventually(lambda: "van-VAN-01" in b.registry)
        van = b.registry.get("van-VAN-01").control
        agv = fleet[0].agv
        trip = trip_through("t", [(0, 0), (100, 0), (100, 100), (0, 100)], base=2)
        await van.send_trip(trip)
        await eventually(lambda: agv.last_node_id == "N100_0" and not agv.driving, timeout=20)
        # the bridge hears it with the van's next state message
        await eventually(
            lambda: van.state is not None and van.state.last_node_id == "N100_0", timeout=20
        )
        assert van.state is not None and van.state.remaining_nodes == ("N100_100", "N0_100")
        assert van.state.released_remaining == 0 and van.state.new_base_request
        with pytest.raises(ValidationError):
            await van.update_trip(trip_through("t", [(0, 0), (100, 0)]))  # not the decision point
        with pytest.raises(Conflict):
            await van.update_trip(trip_through("other", [(100, 0), (100, 100)]))
        await van.update_trip(trip_through("t", [(100, 0), (100, 100), (0, 100)]))
        assert van.state.trip_update == 1
        await van.wait_trip("t", within=600)
        assert agv.last_node_id == "N0_100" and agv.last_node_sequence_id == 6
        entry = b.registry.get("van-VAN-01")
        assert (entry.status.mission.total, entry.status.mission.reached) == (4, 3)


async def test_pause_resume_and_cancel(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix) as fleet,
        bridge(link_url(mqtt_url, mqtt_prefix), clock) as b,
    ):
        await eventually(lambda: "van-VAN-01" in b.registry)
        entry = b.registry.get("van-VAN-01")
        van = entry.control
        agv = fleet[0].agv
        with pytest.raises(CommandRejected) as err:
            await van.cancel_trip()
        assert err.value.fields["error_type"] == "noOrderToCancel"
        await van.send_trip(trip_through("long", [(0, 0), (3000, 0)]))
        await eventually(lambda: agv.pose.speed > 5, timeout=20)
        await van.pause()
        await eventually(lambda: entry.status.mode is FlightMode.HOLD, timeout=10)
        await eventually(lambda: not agv.driving, timeout=10)
        assert entry.status.mission.state is MissionRunState.PAUSED
        x = agv.pose.x
        state = await van.request_state()
        assert state.paused and not state.driving
        await van.resume()
        await eventually(lambda: agv.pose.x > x + 10, timeout=20)
        assert b.of(VehicleEventKind.MODE_CHANGED)
        await van.cancel_trip()
        assert van.state is not None and not van.state.busy and not van.state.driving
        assert 0 < agv.pose.x < 3000
        with pytest.raises(CommandRejected):
            await van.cancel_trip()
        # after the cancel a new trip starts where the van stopped
        here = agv.pose.x
        back = trip_through("back", [(3000, 0), (0, 0)])
        back = type(back)(
            "back",
            (
                type(back.nodes[0])(
                    "N3000_0", back.nodes[0].position, allowed_deviation_m=3000 - here + 1
                ),
                back.nodes[1],
            ),
            back.edges,
        )
        await van.send_trip(back)
        await van.wait_trip("back", within=900)
        assert abs(agv.pose.x) < 0.01


async def test_charging_and_factsheet_request(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix, battery_soc=0.5) as fleet,
        bridge(link_url(mqtt_url, mqtt_prefix), clock) as b,
    ):
        await eventually(lambda: "van-VAN-01" in b.registry)
        van = b.registry.get("van-VAN-01").control
        agv = fleet[0].agv
        agv.chargers = ((0.0, 0.0),)
        await van.start_charging()
        await eventually(lambda: van.state is not None and van.state.charging)
        with pytest.raises(CommandRejected) as err:
            await van.send_trip(delivery("d"))
        assert err.value.fields["error_type"] == "orderError"
        await van.stop_charging()
        await van.send_trip(delivery("d2"))
        caps = await van.request_factsheet()
        assert caps.max_boxes == 150


async def test_connection_topic_last_will_and_goodbye(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with bridge(link_url(mqtt_url, mqtt_prefix), clock) as b:
        async with vans(mqtt_url, clock, mqtt_prefix) as fleet:
            await eventually(lambda: "van-VAN-01" in b.registry)
            entry = b.registry.get("van-VAN-01")
            await eventually(lambda: entry.status.link is LinkState.ONLINE)
            fleet[0].crash()
            await eventually(
                lambda: entry.status.link is LinkState.LOST,
                timeout=10,
                message="CONNECTIONBROKEN from the last will",
            )
            # a trip for a LOST van keeps trying: it goes out when the van is back
            async with asyncio.TaskGroup() as tg:
                sending = tg.create_task(entry.control.send_trip(delivery("x")))
                await eventually(lambda: b.link.stats.orders_sent >= 2, timeout=10)
                assert not sending.done()
                fleet[0].recover()
            assert entry.status.link is LinkState.ONLINE
            assert fleet[0].agv.order_id == "x"
            assert b.of(VehicleEventKind.LINK_REGAINED, "van-VAN-01")
        # leaving the context: OFFLINE, sent by the van itself
        await eventually(lambda: entry.status.link is LinkState.OFFLINE, timeout=10)
        lost = b.of(VehicleEventKind.LINK_LOST, "van-VAN-01")
        assert [e.data["link"] for e in lost] == ["lost", "offline"]
        with pytest.raises(LinkLost):
            await entry.control.send_trip(delivery("y"))
    # the retained OFFLINE tells a later master control the van is away
    async with bridge(link_url(mqtt_url, mqtt_prefix), clock) as b2:
        await eventually(lambda: "van-VAN-01" in b2.registry)
        await eventually(lambda: b2.registry.get("van-VAN-01").status.link is LinkState.OFFLINE)


async def test_silent_van_is_unknown_after_state_timeout(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    addr = BrokerAddress.parse(mqtt_url)
    base = wire.topic(mqtt_prefix, "uagv", MANUFACTURER, "MUTE-1", "")
    header = {
        "version": "2.1.0",
        "manufacturer": MANUFACTURER,
        "serial_number": "MUTE-1",
        "timestamp": wire.format_timestamp(clock.time()),
    }
    from tests.unit.vda5050.orders import van as make_van

    agv = make_van()
    agv.serial_number = "MUTE-1"
    async with (
        bridge(link_url(mqtt_url, mqtt_prefix, query="state_timeout=20"), clock) as b,
        aiomqtt.Client(addr.host, addr.port) as raw,
    ):
        await b.link.connected.wait()
        online = wire.Connection(
            header_id=1, connection_state=wire.ConnectionState.ONLINE, **header
        )
        await raw.publish(base + "connection", online.to_json(), qos=1)
        await raw.publish(base + "state", agv.state_message(1, clock.time()).to_json())
        await eventually(lambda: "van-MUTE-1" in b.registry)
        entry = b.registry.get("van-MUTE-1")
        await eventually(lambda: entry.status.link is LinkState.ONLINE)
        # no more states: after 20 world seconds (1 s real at least) the van is unknown
        await eventually(lambda: entry.status.link is LinkState.UNKNOWN, timeout=5)
        lost = b.of(VehicleEventKind.LINK_LOST, "van-MUTE-1")
        assert lost and lost[-1].data["link"] == "unknown"
        await raw.publish(base + "state", agv.state_message(2, clock.time()).to_json())
        await eventually(lambda: entry.status.link is LinkState.ONLINE)
        assert b.of(VehicleEventKind.LINK_REGAINED, "van-MUTE-1")


async def test_bad_payloads_are_counted_and_dropped(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    addr = BrokerAddress.parse(mqtt_url)
    base = wire.topic(mqtt_prefix, "uagv", MANUFACTURER, "VAN-01", "")
    async with (
        vans(mqtt_url, clock, mqtt_prefix) as fleet,
        bridge(link_url(mqtt_url, mqtt_prefix), clock) as b,
        aiomqtt.Client(addr.host, addr.port) as raw,
    ):
        await eventually(lambda: "van-VAN-01" in b.registry)
        entry = b.registry.get("van-VAN-01")
        await raw.publish(base + "state", b"\xff\xfe not json")
        await raw.publish(base + "state", b'{"headerId": "one"}')
        await raw.publish(base + "factsheet", b'{"version": 2}')
        good = fleet[0].agv.state_message(999, clock.time())
        foreign = good.model_copy(update={"serial_number": "VAN-77"})
        await raw.publish(base + "state", foreign.to_json())
        await eventually(lambda: b.link.stats.bad_payloads == 4, timeout=10)
        assert (b.link.stats.bad_json, b.link.stats.invalid, b.link.stats.foreign) == (1, 2, 1)
        assert "van-VAN-77" not in b.registry
        # the link still works
        await entry.control.send_trip(delivery("after-garbage"))
        await entry.control.wait_trip("after-garbage", within=3600)


async def test_resent_order_is_applied_once(mqtt_url: str, mqtt_prefix: str) -> None:
    """Re-sending faster than the echo comes back: the van ignores the duplicates."""
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix) as fleet,
        bridge(link_url(mqtt_url, mqtt_prefix), clock, {"resend_interval_s": 0.002}) as b,
    ):
        await eventually(lambda: "van-VAN-01" in b.registry)
        van = b.registry.get("van-VAN-01").control
        agv = fleet[0].agv
        ignored = agv.ignored_messages
        await van.send_trip(delivery("dup"))
        await van.wait_trip("dup", within=3600)
        assert b.link.stats.order_resends >= 1
        await eventually(lambda: agv.ignored_messages > ignored, timeout=5)
        assert agv.order_id == "dup"
        picks = [e for e in b.of(VehicleEventKind.PAYLOAD) if e.data["action"] == "pick"]
        assert len(picks) == 1
        assert agv.cargo == {}


async def test_fleet_wide_link_finds_every_manufacturer(mqtt_url: str, mqtt_prefix: str) -> None:
    clock = AcceleratedClock(SPEED)
    async with (
        vans(mqtt_url, clock, mqtt_prefix, 1),
        vans(mqtt_url, clock, mqtt_prefix, 1, serial_prefix="OTHER-"),
        bridge(link_url(mqtt_url, mqtt_prefix, path=""), clock) as b,
    ):
        await eventually(lambda: len(b.registry) == 2)
        assert sorted(b.link.vehicle_ids) == ["van-OTHER-01", "van-VAN-01"]
    async with (
        vans(mqtt_url, clock, mqtt_prefix, 2),
        bridge(link_url(mqtt_url, mqtt_prefix, path="acme/VAN-02"), clock) as one,
    ):
        await eventually(lambda: "van-VAN-02" in one.registry)
        # by the time VAN-02 has sent a few states, VAN-01's would have arrived as well
        await eventually(lambda: one.link.stats.states >= 5)
        assert one.link.vehicle_ids == ["van-VAN-02"]
