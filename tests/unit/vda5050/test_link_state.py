"""The link's receive path without a broker: messages in, registry status and events out, the
state timeout on a manual clock, and bounded memory over a long shift."""

from __future__ import annotations

import asyncio

import aiomqtt

from firmware_bridges.vda5050 import translate, wire
from firmware_bridges.vda5050.control import KEEP_TRIPS, VanHandle, _TripBook
from firmware_bridges.vda5050.link import Vda5050Link
from firmware_bridges.vda5050.link import register as register_vda5050
from fleet.clock import ManualClock
from fleet.events import EventBus, FleetEvent, Subscription, VehicleEvent, VehicleEventKind
from fleet.link import LinkContext
from fleet.registry import VehicleRegistry
from fleet.van import Drop, Pick, VanTrip
from fleet.vehicle import LinkState
from sim.van.agv import VanAgv
from sim.van.model import Pose
from tests.unit.vda5050.harness import FRAME, MAP_ID, trip_through

register_vda5050()  # the bridge's URL schemes, as the composition root does

PREFIX = "unit"


class Msg:
    """What the link reads from aiomqtt: a topic and a payload."""

    def __init__(self, serial: str, subtopic: str, payload: bytes) -> None:
        self.topic = aiomqtt.Topic(f"{PREFIX}/uagv/v2/acme/{serial}/{subtopic}")
        self.payload = payload


def make_link(clock: ManualClock, query: str = "") -> tuple[Vda5050Link, VehicleRegistry, EventBus]:
    registry, bus = VehicleRegistry(), EventBus()
    ctx = LinkContext(registry, bus, clock, {"frame": FRAME, "map_id": MAP_ID})
    link = Vda5050Link(f"vda5050+mqtt://127.0.0.1:1/acme?prefix={PREFIX}{query}", ctx)
    return link, registry, bus


def test_states_update_the_registry_and_finished_drops_are_events() -> None:
    clock = ManualClock()
    link, registry, bus = make_link(clock)
    agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
    with bus.subscribe() as sub:
        link._handle(Msg("VAN-01", "state", agv.state_message(1, clock.time()).to_json()))
        entry = registry.get("van-VAN-01")
        assert entry.status.link is LinkState.ONLINE and entry.version == 1
        van = link.van("van-VAN-01")
        trip = trip_through(
            "t", [(0, 0), (20, 0)], {0: [Pick("L", 3, 9.0, "gloves")], 1: [Drop("L", 3, 9.0)]}
        )
        book_trip(van, trip)
        order = wire.Order.model_validate_json(order_json(van, trip))
        agv.receive_order(order.to_json())
        header = 2
        while agv.busy:
            agv.tick(1.0)
            link._handle(Msg("VAN-01", "state", agv.state_message(header, clock.time()).to_json()))
            header += 1
        events = [e for e in drain(sub) if isinstance(e, VehicleEvent)]
    kinds = [e.kind for e in events]
    assert kinds[0] is VehicleEventKind.DISCOVERED
    payload = [e for e in events if e.kind is VehicleEventKind.PAYLOAD]
    assert [(e.data["action"], e.data["boxes"], e.data["sku"]) for e in payload] == [
        ("pick", 3, "gloves"),
        ("drop", 3, ""),
    ]
    state = van.state
    assert state is not None and state.trip_id == "t" and not state.busy
    assert entry.status.position is not None
    assert entry.status.mission.reached == 1


def test_state_timeout_marks_a_silent_van_unknown_on_world_time() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        link, registry, bus = make_link(clock, "&state_timeout=5")
        agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
        watchdog = asyncio.ensure_future(link._watchdog())
        try:
            with bus.subscribe() as sub:
                link._handle(Msg("VAN-01", "state", agv.state_message(1, clock.time()).to_json()))
                entry = registry.get("van-VAN-01")
                await clock.advance(4.0, step=0.5)
                assert entry.status.link is LinkState.ONLINE
                await clock.advance(2.0, step=0.5)
                assert entry.status.link is LinkState.UNKNOWN
                link._handle(Msg("VAN-01", "state", agv.state_message(2, clock.time()).to_json()))
                assert entry.status.link is LinkState.ONLINE
                kinds = [e.kind for e in drain(sub) if isinstance(e, VehicleEvent)]
            assert kinds.count(VehicleEventKind.LINK_LOST) == 1
            assert kinds.count(VehicleEventKind.LINK_REGAINED) == 1
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    asyncio.run(scenario())


def test_connection_messages_and_factsheet() -> None:
    clock = ManualClock()
    link, registry, _ = make_link(clock)
    agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
    for state, expected in (
        (wire.ConnectionState.ONLINE, LinkState.ONLINE),
        (wire.ConnectionState.CONNECTIONBROKEN, LinkState.LOST),
        (wire.ConnectionState.OFFLINE, LinkState.OFFLINE),
    ):
        link._handle(Msg("VAN-01", "connection", agv.connection_message(1, 0.0, state).to_json()))
        assert registry.get("van-VAN-01").status.link is expected
    link._handle(Msg("VAN-01", "factsheet", agv.factsheet_message(1, 0.0, 0.5, None).to_json()))
    entry = registry.get("van-VAN-01")
    assert entry.info.max_boxes == 150 and entry.info.payload_kg == 1000.0
    assert link.van("van-VAN-01").state_timeout_s == 2.0  # 3 x 0.5 s, at least 2 s
    link._handle(Msg("VAN-01", "connection", b""))  # a cleared retained message: ignored
    assert link.stats.bad_payloads == 0


def test_the_link_remembers_only_recent_trips() -> None:
    clock = ManualClock()
    link, _, _ = make_link(clock)
    agv = VanAgv("acme", "VAN-01", MAP_ID, Pose(0, 0, 0))
    link._handle(Msg("VAN-01", "state", agv.state_message(1, 0.0).to_json()))
    van = link.van("van-VAN-01")
    for i in range(KEEP_TRIPS + 5):
        book_trip(van, trip_through(f"t{i}", [(0, 0)], {0: [Pick(f"L{i}", 1, 1.0)]}))
    trips = {tid for tid, _, _ in van._actions.values()}
    assert trips == {f"t{i}" for i in range(5, KEEP_TRIPS + 5)}
    assert set(van._picks) == {f"L{i}" for i in range(5, KEEP_TRIPS + 5)}


def book_trip(van: VanHandle, trip: VanTrip) -> None:
    """What ``send_trip`` notes before it publishes."""
    book = _TripBook(trip, 0, (trip.decision_node.node_id, 0), len(trip.nodes))
    van._remember(trip, book, 0)
    van._trip = book


def order_json(van: VanHandle, trip: VanTrip) -> bytes:
    return translate.trip_to_order(trip, van._header("order"), FRAME, MAP_ID).to_json()


def drain(sub: Subscription) -> list[FleetEvent]:
    out = []
    while (ev := sub.get_nowait()) is not None:
        out.append(ev)
    return out
