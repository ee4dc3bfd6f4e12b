"""Van loads and trips without I/O: lines in whole boxes and kilograms, stops cut within a van's
capacity by class and deadline, the VDA 5050 trip rebuilt from the record, the way home of a van
stopped on the road."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.store.repository import RequestRecord
from fleet.store.tables import Request, RequestItem
from fleet.van import Drop, Pick, VanState
from fleet.worldfile import load_world
from missions.catalogue import default_skus
from missions.shuttle.loads import cut_stops, lines_of
from missions.shuttle.run import way_home
from missions.shuttle.trips import (
    DELIVERY,
    RETURN,
    LoadLine,
    LoadPlan,
    TripPlan,
    build_trip,
    load_id_for,
)
from missions.states import Priority

WORLD = load_world(Path(__file__).resolve().parents[3] / "examples" / "worlds" / "shatou.geojson")
SKUS = {s.id: s for s in default_skus()}
T0 = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)


def record(rid: str, community: str, priority: str = "standard", **allocated: int) -> RequestRecord:
    req = Request(
        id=rid,
        kind="delivery",
        community_id=community,
        state="approved",
        priority=priority,
        created_at=T0,
        approved_at=T0,
        deadline=T0.replace(hour=6),
    )
    items = [
        RequestItem(request_id=rid, sku_id=k, quantity=v, allocated=v) for k, v in allocated.items()
    ]
    return RequestRecord(req, items)


def test_lines_are_whole_boxes_and_kilograms() -> None:
    rec = record("r1", "C01", mask=1200, alcohol=48)
    lines = lines_of(rec, {"mask": 1200, "alcohol": 48}, SKUS)
    by_sku = {ln.sku_id: ln for ln in lines}
    # 1200 masks: two full boxes of 500 and a part box of 200 masks
    assert by_sku["mask"].boxes == 3
    assert by_sku["mask"].kg == pytest.approx(2 * 2.5 + 200 * 0.005)
    assert by_sku["alcohol"].boxes == 2 and by_sku["alcohol"].kg == pytest.approx(25.0)
    assert by_sku["mask"].deadline == T0.replace(hour=6).timestamp()
    assert by_sku["mask"].priority is Priority.STANDARD


def test_stops_stay_within_boxes_and_kilograms() -> None:
    # 200 boxes of alcohol (2,500 kg) for one community: cut by mass (80 boxes = 1,000 kg)
    lines = lines_of(record("r1", "C01", alcohol=4800), {"alcohol": 4800}, SKUS)
    stops = cut_stops(lines, SKUS, max_boxes=150, max_kg=1000.0)
    assert [st.boxes for st in stops] == [80, 80, 40]
    assert all(st.kg <= 1000.0 + 1e-9 for st in stops)
    assert sum(ln.units for st in stops for ln in st.lines) == 4800
    # masks are light: cut by boxes
    lines = lines_of(record("r2", "C02", mask=100_000), {"mask": 100_000}, SKUS)
    stops = cut_stops(lines, SKUS, max_boxes=150, max_kg=1000.0)
    assert [st.boxes for st in stops] == [150, 50]
    assert [st.id for st in stops] == ["C02.1", "C02.2"]


def test_stops_keep_classes_apart_and_urgent_first() -> None:
    std = lines_of(record("s", "C03", mask=500), {"mask": 500}, SKUS)
    vul = lines_of(record("v", "C03", "vulnerable", food_box=5), {"food_box": 5}, SKUS)
    stops = cut_stops([*std, *vul], SKUS, max_boxes=150, max_kg=1000.0)
    assert [(st.priority, st.request_ids) for st in stops] == [
        (Priority.VULNERABLE, ("v",)),
        (Priority.STANDARD, ("s",)),
    ]


def test_trip_is_rebuilt_with_the_same_ids() -> None:
    dock = WORLD.dock_node("W1").id
    gates = [WORLD.gate_node(c).id for c in ("C01", "C05")]
    loads = tuple(
        LoadPlan(
            load_id_for("trip-1", c),
            c,
            g,
            (LoadLine(f"r-{c}", "mask", 1000, 2, f"t-{c}"),),
            5.0,
        )
        for c, g in zip(("C01", "C05"), gates, strict=True)
    )
    tp = TripPlan("trip-1", DELIVERY, "W1", dock, (dock, *gates, dock), loads, number=3)
    again = TripPlan.from_json(tp.to_json())
    assert again == tp
    trip = build_trip(WORLD, again, 30)
    assert trip == build_trip(WORLD, tp, 30)
    assert trip.nodes[0].node_id == dock and trip.nodes[-1].node_id == dock
    picks = [a for a in trip.nodes[0].actions if isinstance(a, Pick)]
    assert [p.load_id for p in picks] == ["trip-1.C01", "trip-1.C05"]
    drops = [(n.node_id, a.load_id) for n, a in trip.actions() if isinstance(a, Drop)]
    assert drops == [(gates[0], "trip-1.C01"), (gates[1], "trip-1.C05")]
    assert trip.boxes == 4
    assert all(
        e.max_speed_mps is not None and e.max_speed_mps <= 30 / 3.6 + 1e-9 for e in trip.edges
    )


def _stopped(last: str, x: float, y: float) -> VanState:
    from fleet.van import OperatingMode

    return VanState(
        trip_id="trip-1",
        trip_update=0,
        last_node_id=last,
        remaining_nodes=(),
        released_remaining=0,
        actions=(),
        driving=False,
        paused=False,
        charging=False,
        battery_fraction=0.9,
        operating_mode=OperatingMode.AUTOMATIC,
        map_pose=(x, y, 0.0),
    )


def test_way_home_of_a_van_stopped_on_the_road() -> None:
    dock = WORLD.dock_node("W1")
    gate = WORLD.gate_node("C12").id
    path = [
        n.node_id
        for n in build_trip(
            WORLD,
            TripPlan("t", DELIVERY, "W1", dock.id, (dock.id, gate, dock.id), ()),
            30,
        ).nodes
    ]
    nxt = WORLD.road_network.node(path[1])
    # 40 % of the way from the dock to the next node: go on to it, then home
    x = dock.x + 0.4 * (nxt.x - dock.x)
    y = dock.y + 0.4 * (nxt.y - dock.y)
    stops, deviation = way_home(WORLD, _stopped(dock.id, x, y), dock.id, path)
    assert stops == (dock.id, nxt.id, dock.id)
    off = ((x - dock.x) ** 2 + (y - dock.y) ** 2) ** 0.5
    assert deviation == pytest.approx(off + 2.0, abs=0.01)
    plan = TripPlan("t.u1", RETURN, "W1", dock.id, stops, (), start_deviation_m=deviation)
    trip = build_trip(WORLD, plan, 30)
    assert trip.nodes[0].allowed_deviation_m == deviation
    # standing on the dock: a one-node trip there
    stops, deviation = way_home(WORLD, _stopped(dock.id, dock.x, dock.y), dock.id, path)
    assert stops == (dock.id,) and deviation is None
    # standing on another node: straight home
    stops, deviation = way_home(WORLD, _stopped(nxt.id, nxt.x, nxt.y), dock.id, path)
    assert stops == (nxt.id, dock.id) and deviation is None


def test_one_node_unload_trip_keeps_the_allowed_deviation() -> None:
    dock = WORLD.dock_node("W1").id
    ld = LoadPlan("t.C01", "C01", dock, (LoadLine("r", "mask", 10, 1, "t1"),), 0.5, "")
    plan = TripPlan("t.u1", RETURN, "W1", dock, (dock,), (ld,), start_deviation_m=12.5)
    trip = build_trip(WORLD, plan, 30)
    assert len(trip.nodes) == 1 and trip.edges == ()
    assert trip.nodes[0].allowed_deviation_m == 12.5
    [(node, drop)] = list(trip.actions())
    assert isinstance(drop, Drop) and drop.load_id == "t.C01" and node.node_id == dock
