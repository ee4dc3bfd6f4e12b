"""The coverage planner: at least 95 % predicted coverage on real and awkward areas, drones
sharing large areas, no-fly zones avoided, flight plans a PX4 drone can fly."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from fleet.drone import ReturnToLaunch, Takeoff, Waypoint
from fleet.errors import PlanningError
from fleet.world import World
from fleet.worldfile import load_world
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.coverage import covered_fraction, hear_counts
from missions.broadcast.planner import BroadcastParams, BroadcastPlan, DroneStart, plan_broadcast
from missions.broadcast.playback import predict_plays
from missions.broadcast.request import CommunityArea, DrawnArea, resolve_area
from missions.broadcast.timeline import Kinematics, simulate
from tests.unit.broadcast.worlds import make_world, rect

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "worlds"


def starts_of(world: World, n: int | None = None) -> list[DroneStart]:
    pads = world.pads if n is None else [world.pads[0]] * n
    return [
        DroneStart(f"drone-{i + 1}", p.location.lat, p.location.lon) for i, p in enumerate(pads)
    ]


def check_plan(plan: BroadcastPlan, world: World, params: BroadcastParams) -> None:
    """What every plan must satisfy."""
    assert plan.predicted_coverage >= params.target_coverage
    assert covered_fraction(plan.predicted_counts, params.repeats) == plan.predicted_coverage
    assert plan.lane_spacing_m <= 2 * plan.audible_radius_m + 1e-9
    for d in plan.drones:
        items = d.flight_plan.items
        assert isinstance(items[0], Takeoff) and items[0].rel_alt == params.altitude_m
        assert isinstance(items[-1], ReturnToLaunch)
        wps = [it for it in items if isinstance(it, Waypoint)]
        assert len(wps) == len(d.route) == len(items) - 2
        assert all(w.rel_alt == params.altitude_m and w.hold_s >= 0 for w in wps)
        assert all(world.inside_area(world.latlon(p.x, p.y)) for p in d.route)
        assert d.duration_s <= params.max_flight_s
        # every leg, from the pad and back, keeps clear of no-fly zones at this altitude
        pts = [d.start, *((p.x, p.y) for p in d.route)]
        for z in world.no_fly_zones:
            if z.ceiling_m is not None and params.altitude_m > z.ceiling_m:
                continue
            for a, b in itertools.pairwise(pts):
                assert LineString([a, b]).distance(z.polygon) >= params.no_fly_margin_m - 1e-6
    json.dumps(plan.summary())


@pytest.mark.parametrize("name", ["shatou", "binjiang"])
def test_every_community_of_the_example_worlds(name: str) -> None:
    world = load_world(EXAMPLES / f"{name}.geojson")
    params = BroadcastParams(repeats=2)
    for community in world.communities:
        area = resolve_area(CommunityArea(community.id), world)
        plan = plan_broadcast(area, world, starts_of(world), 12.0, params)
        check_plan(plan, world, params)


AWKWARD = {
    "U": [(0, 0), (400, 0), (400, 350), (300, 350), (300, 100), (100, 100), (100, 350), (0, 350)],
    "L": [(0, 0), (500, 0), (500, 80), (80, 80), (80, 400), (0, 400)],
    "sliver": [(0, 0), (600, 300), (596, 308), (-4, 8)],
    "star": [
        (200 + r * math.cos(a), 200 + r * math.sin(a))
        for k in range(10)
        for a, r in [(k * math.pi / 5, 200.0 if k % 2 == 0 else 70.0)]
    ],
    "comb": [
        (0, 0),
        (500, 0),
        (500, 300),
        (440, 300),
        (440, 60),
        (360, 60),
        (360, 300),
        (280, 300),
        (280, 60),
        (200, 60),
        (200, 300),
        (120, 300),
        (120, 60),
        (60, 60),
        (60, 300),
        (0, 300),
    ],
}


@pytest.mark.parametrize("shape", sorted(AWKWARD))
def test_awkward_polygons(shape: str) -> None:
    world = make_world({"X": [(x + 300, y + 300) for x, y in AWKWARD[shape]]})
    params = BroadcastParams(repeats=2)
    plan = plan_broadcast(
        resolve_area(CommunityArea("X"), world), world, starts_of(world, 4), 8.0, params
    )
    check_plan(plan, world, params)


def test_the_plan_holds_when_the_drone_flies_faster_than_predicted() -> None:
    """Stop-and-go holds carry the timing: a drone cruising at 15 m/s instead of 5 still gives
    every listener enough time (coverage recomputed from the faster track)."""
    world = make_world({"C": rect(300, 200, 350, 260)})
    params = BroadcastParams(repeats=3)
    plan = plan_broadcast(
        resolve_area(CommunityArea("C"), world), world, starts_of(world, 1), 10.0, params
    )
    fast = Kinematics(cruise_mps=15.0, accel_mps2=8.0)
    plays = []
    for d in plan.drones:
        track = simulate(d.start, params.altitude_m, d.route, fast)
        plays += predict_plays(
            track,
            plan.area.polygon,
            plan.clip_duration_s,
            plan.period_s,
            plan.slant_range_m,
            min_rel_alt_m=d.play.area.min_rel_alt_m,
        )
    counts = hear_counts(plan.grid, plays)
    assert covered_fraction(counts, params.repeats) >= params.target_coverage


def test_more_repeats_mean_slower_flight_and_more_hearings() -> None:
    world = make_world({"C": rect(300, 200, 300, 200)})
    area = resolve_area(CommunityArea("C"), world)
    one = plan_broadcast(area, world, starts_of(world, 1), 10.0, BroadcastParams(repeats=1))
    three = plan_broadcast(area, world, starts_of(world, 1), 10.0, BroadcastParams(repeats=3))
    assert three.mean_speed_mps < one.mean_speed_mps
    assert three.duration_s > one.duration_s
    assert np.quantile(three.predicted_counts, 0.05) >= 3
    assert np.quantile(one.predicted_counts, 0.05) >= 1


def test_large_area_is_shared_by_several_drones() -> None:
    world = make_world({"BIG": rect(-600, 400, 900, 700)})
    area = resolve_area(CommunityArea("BIG"), world)
    params = BroadcastParams(repeats=1, max_flight_s=1200.0)
    plan = plan_broadcast(area, world, starts_of(world, 6), 10.0, params)
    assert len(plan.drones) > 1
    assert len({d.vehicle_id for d in plan.drones}) == len(plan.drones)
    check_plan(plan, world, params)
    # shares are disjoint: no station flown by two drones
    stations = [(round(p.x, 3), round(p.y, 3)) for d in plan.drones for p in d.route if p.station]
    assert len(stations) == len(set(stations))
    # each drone alone covers less than the target: the coverage comes from sharing
    for d in plan.drones:
        alone = covered_fraction(hear_counts(plan.grid, list(d.plays)), params.repeats)
        assert alone < params.target_coverage
    relaxed = replace(params, max_flight_s=8000.0)
    assert len(plan_broadcast(area, world, starts_of(world, 6), 10.0, relaxed).drones) == 1
    forced = plan_broadcast(area, world, starts_of(world, 6), 10.0, replace(relaxed, drones=3))
    assert len(forced.drones) == 3
    check_plan(forced, world, relaxed)
    with pytest.raises(PlanningError, match="more than"):
        plan_broadcast(area, world, starts_of(world, 1), 10.0, params)


def test_an_area_longer_than_the_drones_batteries_is_flown_in_sorties() -> None:
    # the area one drone covers in one 1,200 s flight with six drones needs several flights:
    # with two drones and up to four sorties each, the later shares are later sorties
    world = make_world({"BIG": rect(-600, 400, 900, 700)})
    area = resolve_area(CommunityArea("BIG"), world)
    params = BroadcastParams(repeats=1, max_flight_s=1200.0)
    with pytest.raises(PlanningError, match="at most 1 each"):
        plan_broadcast(area, world, starts_of(world, 2), 10.0, params)
    sorties = replace(params, max_sorties=4)
    plan = plan_broadcast(area, world, starts_of(world, 2), 10.0, sorties)
    check_plan(plan, world, sorties)
    assert len(plan.drones) > 2
    assert set(plan.vehicles) == {"drone-1", "drone-2"}
    for vid in plan.vehicles:
        mine = [d.sortie for d in plan.drones if d.vehicle_id == vid]
        assert mine == list(range(len(mine)))  # 0, 1, ... in share order
        assert len(mine) <= 4
    assert all(d.duration_s <= params.max_flight_s for d in plan.drones)
    assert plan.describe_flights() == f"{len(plan.drones)} flights on 2 drone(s)"
    # the same area as many single flights on six drones: sorties only once every drone has one
    six = plan_broadcast(area, world, starts_of(world, 6), 10.0, sorties)
    assert all(d.sortie == 0 for d in six.drones)
    # and an area too large even so is refused with what it would need
    with pytest.raises(PlanningError, match="at most 2 each"):
        plan_broadcast(area, world, starts_of(world, 1), 10.0, replace(params, max_sorties=2))


def test_no_fly_zone_inside_the_area_is_avoided() -> None:
    world = make_world(
        {"C": rect(200, 200, 500, 400)}, no_fly={"Z": (rect(400, 350, 100, 100), None)}
    )
    params = BroadcastParams(repeats=1)
    plan = plan_broadcast(
        resolve_area(CommunityArea("C"), world), world, starts_of(world, 4), 8.0, params
    )
    check_plan(plan, world, params)
    zone = world.no_fly_zones[0].polygon
    for d in plan.drones:
        # the predicted track too stays out of the zone and its margin (it flies the legs)
        xy = np.column_stack([d.track.x, d.track.y])
        assert min(zone.distance(Point(p)) for p in xy[::5]) >= params.no_fly_margin_m - 1e-6


def test_zone_with_a_ceiling_is_overflown_when_needed() -> None:
    # the community lies under a zone that ends at 70 m: flying at 60 m is impossible
    world = make_world(
        {"C": rect(300, 300, 200, 150)}, no_fly={"Z": (rect(250, 250, 300, 250), 70.0)}
    )
    params = BroadcastParams(repeats=1, altitude_m=60.0)
    plan = plan_broadcast(
        resolve_area(CommunityArea("C"), world), world, starts_of(world, 2), 6.0, params
    )
    assert plan.params.altitude_m == 75.0
    check_plan(plan, world, plan.params)
    # below the ceiling the same zone would block everything
    blocked = make_world(
        {"C": rect(300, 300, 200, 150)}, no_fly={"Z": (rect(250, 250, 300, 250), None)}
    )
    with pytest.raises(PlanningError, match="no lane"):
        plan_broadcast(
            resolve_area(CommunityArea("C"), blocked), blocked, starts_of(blocked, 2), 6.0, params
        )


def test_loops_when_one_pass_would_be_too_slow() -> None:
    world = make_world({"C": rect(300, 200, 200, 120)})
    area = resolve_area(CommunityArea("C"), world)
    params = BroadcastParams(repeats=4, min_mean_speed_mps=1.5)
    plan = plan_broadcast(area, world, starts_of(world, 2), 15.0, params)
    assert plan.loops > 1
    assert plan.hearings_per_pass == math.ceil(4 / plan.loops)
    check_plan(plan, world, params)


def test_drawn_area_and_unreachable_targets() -> None:
    world = make_world({"C": rect(300, 200, 200, 120)})
    verts = tuple(world.frame.to_latlon(x, y) for x, y in rect(100, -300, 150, 90))
    area = resolve_area(DrawnArea(verts), world)
    params = BroadcastParams(repeats=1)
    check_plan(plan_broadcast(area, world, starts_of(world, 1), 5.0, params), world, params)
    with pytest.raises(PlanningError, match="audible only"):
        plan_broadcast(area, world, starts_of(world, 1), 5.0, replace(params, altitude_m=100.0))
    quiet = SpeakerModel(source_level_db=90.0)
    with pytest.raises(PlanningError, match="audible only"):
        plan_broadcast(area, world, starts_of(world, 1), 5.0, params, quiet)
    with pytest.raises(PlanningError, match="no drone"):
        plan_broadcast(area, world, [], 5.0, params)
    with pytest.raises(PlanningError, match="ceiling"):
        plan_broadcast(area, world, starts_of(world, 1), 5.0, replace(params, altitude_m=150.0))


def test_stations_realise_the_planned_mean_speed() -> None:
    world = make_world({"C": rect(300, 200, 400, 100)})
    params = BroadcastParams(repeats=2)
    plan = plan_broadcast(
        resolve_area(CommunityArea("C"), world), world, starts_of(world, 1), 10.0, params
    )
    (d,) = plan.drones
    stations = [p for p in d.route if p.station]
    inner = stations[1:-1]
    gaps = [math.dist((a.x, a.y), (b.x, b.y)) for a, b in itertools.pairwise(inner)]
    gap = float(np.median(gaps))
    assert gap <= plan.station_spacing_m + 1e-6
    hold = float(np.median([p.hold_s for p in inner]))
    # even with instant legs the drone advances no faster than the planned mean speed
    assert gap / hold == pytest.approx(plan.mean_speed_mps, rel=0.01)
