"""``FakeVan`` honours the ``VanControl`` contract as the VDA 5050 bridge and the sim van do
(``tests/integration/test_vda5050_link.py``): trips accepted or rejected with the van's error
type, picks and drops, cancelOrder, ``wait_trip``, and the live status a mission follows."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from fleet.clock import ManualClock
from fleet.errors import CommandRejected, CommandTimeout, Conflict, LinkLost
from fleet.fakes import FakeVan
from fleet.geo import LatLon
from fleet.registry import VehicleRegistry
from fleet.van import (
    ActionStatus,
    Drop,
    Pick,
    TripEdge,
    TripNode,
    VanControl,
    VanTrip,
)
from fleet.vehicle import LinkState, MissionRunState

DOCK = TripNode("dock", LatLon(22.52, 114.03))


def node(i: int, *actions: Pick | Drop) -> TripNode:
    return TripNode(f"n{i}", LatLon(22.52 + i * 0.001, 114.03), actions)


def trip(trip_id: str = "t1", start: TripNode = DOCK) -> VanTrip:
    pick = Pick("t1.C1", boxes=10, mass_kg=50.0, sku="mask")
    first = TripNode(start.node_id, start.position, (pick,))
    nodes = (first, node(1), node(2, Drop("t1.C1", 10, 50.0, "mask")), node(3), DOCK)
    edges = tuple(
        TripEdge(f"e{i}", a.node_id, b.node_id)
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    )
    return VanTrip(trip_id, nodes, edges)


@pytest.fixture
def van() -> FakeVan:
    return FakeVan("van-1", DOCK, registry=VehicleRegistry(), clock=ManualClock())


async def test_a_trip_is_accepted_and_driven_as_the_status_reports(van: FakeVan) -> None:
    assert isinstance(van, VanControl)
    t = trip()
    await van.send_trip(t)
    state = van.state
    assert state is not None and state.trip_id == "t1" and state.busy
    assert state.last_node_id == "dock" and state.remaining_nodes == ("n1", "n2", "n3", "dock")
    assert [a.status for a in state.actions] == [ActionStatus.WAITING, ActionStatus.WAITING]
    st = van.status
    assert st.extra["van"] is state and st.mission.state == MissionRunState.ACTIVE
    steps = await van.drive()
    assert steps[:2] == [steps[0], "picked t1.C1"] and "dropped t1.C1" in steps
    state = van.state
    assert state is not None and not state.busy and state.last_node_id == "dock"
    assert {a.status for a in state.actions} == {ActionStatus.FINISHED}
    assert state.loads == () and st.mission.state == MissionRunState.COMPLETE
    result = await van.wait_trip("t1", within=10)
    assert result.ok and len(result.actions) == 2


async def test_trips_it_cannot_take_are_rejected_with_the_vans_error_type(van: FakeVan) -> None:
    elsewhere = TripNode("far", LatLon(22.6, 114.1))
    with pytest.raises(CommandRejected) as info:
        await van.send_trip(trip("t0", start=elsewhere))
    assert info.value.fields["error_type"] == "noRouteError"
    await van.send_trip(trip())
    with pytest.raises(CommandRejected) as busy:
        await van.send_trip(trip("t2"))
    assert busy.value.fields["error_type"] == "orderUpdateError"
    van.refuse("send_trip", "orderError", times=1)
    with pytest.raises(CommandRejected) as told:
        await van.send_trip(trip("t3"))
    assert told.value.fields["error_type"] == "orderError"


async def test_a_drop_of_a_load_not_on_board_fails(van: FakeVan) -> None:
    await van.send_trip(trip())
    await van.drive(lambda v: v.load_ids == ["t1.C1"])
    await van.lose_load("t1.C1")
    await van.drive()
    state = van.state
    assert state is not None
    drop = state.actions[1]
    assert drop.status is ActionStatus.FAILED and drop.result == "load is not on board"


async def test_cancel_order_finishes_the_running_load_and_drops_the_rest(van: FakeVan) -> None:
    with pytest.raises(CommandRejected) as none:
        await van.cancel_trip()
    assert none.value.fields["error_type"] == "noOrderToCancel"
    await van.send_trip(trip())
    await van.step()  # the pick starts
    await van.cancel_trip()
    state = van.state
    assert state is not None and not state.busy and state.trip_id == "t1"
    assert [a.status for a in state.actions] == [ActionStatus.FINISHED, ActionStatus.FAILED]
    assert van.load_ids == ["t1.C1"]  # the pick finished: the load is on board


async def test_link_states_and_waiting_for_a_trip(van: FakeVan) -> None:
    await van.send_trip(trip())
    waiting = asyncio.create_task(van.wait_trip("t1", within=5))
    await asyncio.sleep(0)
    assert isinstance(van.clock, ManualClock)
    await van.clock.advance(6)
    with pytest.raises(CommandTimeout):
        await waiting
    await van.lose_link()
    assert van.status.link == LinkState.LOST
    await van.drive()  # it drives on unheard
    state = van.state
    assert state is not None and state.busy  # the last report
    with pytest.raises(CommandTimeout):
        await van.pause()  # commands keep trying until their timeout
    await van.come_back()
    assert van.state is not None and not van.state.busy
    await van.go_offline()
    with pytest.raises(LinkLost):
        await van.send_trip(trip("t2", start=DOCK))
    with pytest.raises(LinkLost):
        await van.wait_trip("t1", within=5)


async def test_waiting_for_another_trip_is_a_conflict(van: FakeVan) -> None:
    await van.send_trip(trip())
    with pytest.raises(Conflict):
        await van.wait_trip("other", within=5)
