"""The dispatch benchmark's generated street and day: valid for the service's own loader,
seeded, and shaped as documented (no timing)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.report import percentile
from bench.street import day_of_requests, deliveries, grid_side, street_geojson
from fleet.worldfile import parse_world
from missions.states import Priority


@pytest.mark.parametrize(("n", "side"), [(12, 4), (60, 8)])
def test_the_street_loads_with_every_community_reachable(n: int, side: int) -> None:
    assert grid_side(n) == side
    world = parse_world(street_geojson(n, seed=3, pads=10))
    assert len(world.communities) == n and len(world.pads_of("W1")) == 10
    net = world.road_network
    nodes = [world.dock_node("W1").id, *(world.gate_node(c.id).id for c in world.communities)]
    times = net.matrix(nodes, "time", max_speed_kmh=30)
    assert all(t < float("inf") for t in times[0])


def test_the_day_is_seeded_with_the_documented_mix() -> None:
    pops = {"A": 1000, "B": 3000}
    day = day_of_requests(pops, 2000, seed=5, backlog=0.25, arrivals_s=3600.0)
    assert day == day_of_requests(pops, 2000, seed=5, backlog=0.25, arrivals_s=3600.0)
    assert sum(1 for r in day if r.at == 0.0) == 500
    assert [r.at for r in day] == sorted(r.at for r in day) and max(r.at for r in day) <= 3600
    classes = Counter(r.priority for r in day)
    assert 0.07 < classes[Priority.URGENT_MEDICAL] / 2000 < 0.13
    assert 0.21 < classes[Priority.VULNERABLE] / 2000 < 0.29
    by_c = Counter(r.community_id for r in day)
    assert by_c["B"] > 2 * by_c["A"]  # in proportion to population
    asked: Counter[str] = Counter()
    for r in day:
        for sku, q in r.lines:
            asked[sku] += q
    tranches = deliveries(day, every_s=1200.0)
    assert [t for t, _ in tranches] == [0.0, 1200.0, 2400.0, 3600.0]
    first = tranches[0][1]
    assert first["mask"] > asked["mask"]  # plenty, all at the start
    # a scarce SKU comes in tranches, each its share of what was asked since the last one
    backlog_alcohol = sum(q for r in day if r.at == 0.0 for s, q in r.lines if s == "alcohol")
    assert first["alcohol"] == int(backlog_alcohol * 0.7)
    received = sum(units.get("alcohol", 0) for _, units in tranches)
    assert 0.69 * asked["alcohol"] < received <= 0.7 * asked["alcohol"]
    assert all("mask" not in units for _, units in tranches[1:])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
