"""The one no-fly router (``fleet.airspace``) serves drone deliveries (``route_around``, WGS84)
and broadcast transits (``router_for``, local frame): same paths, one cached graph."""

from __future__ import annotations

import itertools

import pytest
from shapely.geometry import LineString, Point

from fleet.airspace import Router, path_length, route_around, router_for, zones_at
from fleet.errors import PlanningError
from fleet.geo import LatLon
from fleet.world import World
from tests.unit.broadcast.worlds import make_world, rect


def _world() -> World:
    # a 100 m square zone at the origin (no ceiling) and a 60 m one with a 50 m ceiling
    return make_world(
        {"C1": rect(300.0, -50.0, 100.0, 100.0)},
        no_fly={
            "Z1": (rect(-50.0, -50.0, 100.0, 100.0), None),
            "Z2": (rect(-30.0, 200.0, 60.0, 60.0), 50.0),
        },
        pad_xy=(-300.0, 0.0),
    )


def test_delivery_and_broadcast_share_one_cached_router() -> None:
    world = _world()
    r40 = router_for(world, 40.0, 20.0)
    assert router_for(world, 45.0, 20.0) is r40  # same zones apply: same graph
    assert router_for(world, 60.0, 20.0) is not r40  # above Z2's ceiling
    assert router_for(world, 40.0, 10.0) is not r40
    assert [z.id for z in zones_at(world.no_fly_zones, 60.0)] == ["Z1"]
    a, b = LatLon(*world.frame.to_latlon(-300, 0)), LatLon(*world.frame.to_latlon(300, 0))
    ll = route_around(world, a, b, alt_m=40.0, margin_m=20.0)
    xy = r40.path(world.xy(a), world.xy(b))
    assert ll[0] == a and ll[-1] == b and len(ll) == len(xy) > 2
    for p, (x, y) in zip(ll[1:-1], xy[1:-1], strict=True):
        assert world.xy(p) == pytest.approx((x, y), abs=1e-6)


def test_paths_keep_the_margin_and_ignore_zones_below_the_altitude() -> None:
    world = _world()
    zone = world.no_fly_zones[0].polygon
    low = world.no_fly_zones[1].polygon
    a, b = (-300.0, 0.0), (300.0, 0.0)
    path = router_for(world, 40.0, 20.0).path(a, b)
    assert LineString(path).distance(zone) >= 20.0 - 1e-6
    # round the near corners, not the far ones
    assert path_length(path) < 600.0 + 2 * 60.0
    # above Z2's ceiling the straight leg across it is clear; below it is not
    c, d = (0.0, 150.0), (0.0, 320.0)
    assert router_for(world, 60.0, 20.0).path(c, d) == [c, d]
    low_path = router_for(world, 40.0, 20.0).path(c, d)
    assert len(low_path) > 2 and LineString(low_path).distance(low) >= 20.0 - 1e-6
    for p, q in itertools.pairwise(
        route_around(
            world,
            LatLon(*world.frame.to_latlon(*c)),
            LatLon(*world.frame.to_latlon(*d)),
            alt_m=40.0,
            margin_m=20.0,
        )
    ):
        assert world.leg_conflicts(p, q, 40.0, margin_m=19.9) == []


def test_points_in_the_margin_are_refused_with_the_margin_named() -> None:
    world = _world()
    router = router_for(world, 40.0, 20.0)
    with pytest.raises(PlanningError, match="start point lies within 20 m"):
        router.path((55.0, 0.0), (300.0, 0.0))
    with pytest.raises(PlanningError, match="end point lies within 20 m"):
        route_around(
            world,
            LatLon(*world.frame.to_latlon(-300, 0)),
            LatLon(*world.frame.to_latlon(0, 0)),
            alt_m=0.0,
            margin_m=20.0,
        )
    wall = Router([LineString([(0, -500), (0, 500)]).buffer(5)])
    around = wall.path((-10.0, 0.0), (10.0, 0.0))
    assert len(around) > 2 and max(abs(y) for _, y in around) > 500  # round an end of the wall
    ring = Point(0, 0).buffer(100).difference(Point(0, 0).buffer(50))
    with pytest.raises(PlanningError, match="no flight path"):
        Router([ring]).path((0.0, 0.0), (300.0, 0.0))
    with pytest.raises(PlanningError, match="must not be negative"):
        Router.for_zones(world.no_fly_zones, 40.0, -1.0)
