"""Lanes, routing around no-fly zones, the predicted timeline, the payload's playback rules and
hear counts: the parts the planner is made of, each checked on known geometry."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from shapely.geometry import LineString, Point, Polygon

from fleet.airspace import Router, path_length
from fleet.errors import PlanningError
from missions.broadcast.coverage import Grid, Play, covered_fraction, hear_counts, hears
from missions.broadcast.lanes import (
    boustrophedon,
    lane_offsets,
    lane_segments,
    lane_spacing,
    sweep_angle,
)
from missions.broadcast.playback import predict_plays
from missions.broadcast.timeline import Kinematics, RoutePoint, Track, leg_time, simulate


def test_lane_offsets_spread_lanes_evenly() -> None:
    assert lane_offsets(100.0, 140.0) == [50.0]
    assert lane_offsets(140.0, 136.0) == [35.0, 105.0]
    offs = lane_offsets(400.0, 136.0)
    assert len(offs) == 3
    assert np.allclose(np.diff(offs), 400 / 3)
    assert offs[0] == pytest.approx(400 / 6)


def test_lanes_run_along_the_long_side() -> None:
    tall = Polygon([(0, 0), (100, 0), (100, 500), (0, 500)])
    assert math.degrees(sweep_angle(tall)) % 180 == pytest.approx(90, abs=1e-6)
    lanes = lane_segments(tall, tall, 2 * 60.0)
    assert len(lanes) == 1  # 100 m wide, 120 m max spacing
    (seg,) = lanes[0]
    assert seg.start[0] == pytest.approx(50) and seg.end[0] == pytest.approx(50)
    assert seg.length == pytest.approx(500)
    assert lane_spacing(tall, 120.0, sweep_angle(tall)) == pytest.approx(100.0)
    diagonal = Polygon([(0, 0), (10, -10), (410, 390), (400, 400)])
    assert math.degrees(sweep_angle(diagonal)) % 180 == pytest.approx(45, abs=1e-6)


def test_concave_polygon_cuts_lanes_and_the_route_alternates() -> None:
    u = Polygon(
        [(0, 0), (300, 0), (300, 300), (200, 300), (200, 100), (100, 100), (100, 300), (0, 300)]
    )
    lanes = lane_segments(u, u, 2 * 40.0, angle=0.0)
    assert len(lanes) == 4
    # lanes at y = 37.5, 112.5, 187.5, 262.5: all but the first cross the notch
    assert [len(lane) for lane in lanes] == [1, 2, 2, 2]
    route = boustrophedon(lanes)
    assert len(route) == 7
    # lane 0 east; lane 1 west, east piece first; lane 2 east, west piece first
    assert route[0].end[0] > route[0].start[0]
    assert route[1].end[0] < route[1].start[0] and route[1].start[0] > route[2].start[0]
    assert route[3].end[0] > route[3].start[0] and route[3].start[0] < route[4].start[0]
    for seg in route:
        assert u.buffer(1e-6).covers(LineString([seg.start, seg.end]))


def test_router_goes_around_a_zone_with_its_margin() -> None:
    zone = Polygon([(-50, -50), (50, -50), (50, 50), (-50, 50)])
    router = Router([zone.buffer(20.0)])
    a, b = (-200.0, 0.0), (200.0, 0.0)
    assert not router.clear(a, b)
    path = router.path(a, b)
    assert path[0] == a and path[-1] == b and len(path) > 2
    line = LineString(path)
    assert line.distance(zone) >= 20.0 - 1e-6
    assert path_length(path) < 400 + 2 * 80  # shorter than going round the far corners
    assert router.path((-200.0, 100.0), (200.0, 100.0)) == [(-200.0, 100.0), (200.0, 100.0)]
    with pytest.raises(PlanningError):
        router.path((0.0, 0.0), b)


def test_timeline_follows_px4_speed_limits() -> None:
    k = Kinematics(cruise_mps=5.0, accel_mps2=3.0, climb_mps=1.5, land_mps=1.0)
    route = [RoutePoint(100.0, 0.0, hold_s=10.0), RoutePoint(100.0, 1.0)]
    track = simulate((0.0, 0.0), 30.0, route, k, dt=0.1)
    climb = 30 / 1.5
    leg = leg_time(100.0, k)
    assert leg == pytest.approx(100 / 5 + 5 / 3)  # accelerate, cruise, brake
    short = leg_time(1.0, k)
    assert short == pytest.approx(2 * math.sqrt(1 / 3))
    assert track.duration_s == pytest.approx(climb + leg + 10 + short + 30, abs=1e-6)
    speeds = np.hypot(np.diff(track.x), np.diff(track.y)) / np.diff(track.t)
    assert speeds.max() <= 5.0 + 1e-6
    assert track.z.max() == pytest.approx(30.0)
    assert track.z[-1] == pytest.approx(0.0)
    i = int(np.searchsorted(track.t, climb + leg + 5))
    assert (track.x[i], track.y[i]) == pytest.approx((100.0, 0.0))


def line_track(speed: float, y: float = 0.0, x0: float = -300.0, x1: float = 300.0) -> Track:
    t = np.arange(0.0, (x1 - x0) / speed + 1e-9, 0.5)
    return Track(t, x0 + speed * t, np.full_like(t, y), np.full_like(t, 50.0))


SQUARE = Polygon([(-100, -100), (100, -100), (100, 100), (-100, 100)])


def test_payload_plays_back_to_back_only_inside_the_area() -> None:
    track = line_track(4.0)  # inside the 200 m square from t = 50 s to t = 100 s
    plays = predict_plays(
        track, SQUARE, duration_s=8.0, period_s=8.0, slant_range_m=90.0, lookahead_s=0.0
    )
    completed = [p for p in plays if p.completed]
    # the first sample strictly inside is t = 50.5 s, the last 99.5 s: six complete plays,
    # and a seventh cut when the drone is about to leave
    assert len(completed) == 6
    assert len(plays) == 7 and not plays[-1].completed
    assert plays[0].start == pytest.approx(50.5)
    assert plays[-1].end == pytest.approx(99.5)
    # looking 1 s ahead the payload falls silent a second before the boundary
    ahead = predict_plays(track, SQUARE, duration_s=8.0, period_s=8.0, slant_range_m=90.0)
    assert ahead[-1].end <= 99.0
    assert len([p for p in ahead if p.completed]) == 6
    for a, b in itertools.pairwise(completed):
        assert b.start == pytest.approx(a.end)  # chained exactly
    for p in plays:
        assert SQUARE.buffer(1e-6).covers(Point(p.x[-1], p.y[-1]))
        assert np.all(np.abs(p.x) <= 100.0 + 1e-6)


def test_period_leaves_gaps_and_repeats_end_the_broadcast() -> None:
    track = line_track(2.0)
    plays = predict_plays(track, SQUARE, duration_s=5.0, period_s=12.0, slant_range_m=90.0)
    starts = [p.start for p in plays]
    assert np.allclose(np.diff(starts[:-1]), 12.0)
    limited = predict_plays(
        track, SQUARE, duration_s=5.0, period_s=12.0, slant_range_m=90.0, repeats=3
    )
    assert len(limited) == 3 and all(p.completed for p in limited)


def test_leaving_cuts_the_play_and_reentering_restarts_it() -> None:
    # in for 10 s, out for 10 s, in again: the 8 s clip is cut once at most
    t = np.arange(0.0, 60.0, 0.5)
    x = np.where((t // 10) % 2 == 0, 0.0, 500.0)
    track = Track(t, x, np.zeros_like(t), np.full_like(t, 50.0))
    plays = predict_plays(track, SQUARE, duration_s=8.0, period_s=8.0, slant_range_m=90.0)
    assert [p.completed for p in plays] == [True, False, True, False, True, False]
    assert plays[2].start == pytest.approx(20.0)
    low = Track(t, np.zeros_like(t), np.zeros_like(t), np.where(t < 30, 5.0, 50.0))
    gated = predict_plays(
        low, SQUARE, duration_s=8.0, period_s=8.0, slant_range_m=90.0, min_rel_alt_m=40.0
    )
    assert gated[0].start == pytest.approx(30.0)


def still_play(x: float, y: float, z: float, completed: bool = True, slant: float = 50.0) -> Play:
    t = np.array([0.0, 10.0])
    return Play(
        0.0, 10.0, completed, t, np.array([x, x]), np.array([y, y]), np.array([z, z]), slant
    )


def test_a_hovering_play_is_heard_within_the_audible_radius() -> None:
    grid = Grid.build(SQUARE, 2.0)
    assert len(grid) == 100 * 100
    heard = hears(grid, still_play(0, 0, 30.0))  # radius sqrt(50² - 30²) = 40 m
    r = np.hypot(grid.x, grid.y)
    assert np.all(heard[r < 39.0]) and not np.any(heard[r > 41.0])
    assert heard.sum() * 4.0 == pytest.approx(math.pi * 40**2, rel=0.02)
    assert not hears(grid, still_play(0, 0, 30.0, completed=False)).any()
    assert not hears(grid, still_play(0, 0, 60.0)).any()  # higher than the slant range


def test_a_moving_play_is_heard_where_it_stays_in_range_throughout() -> None:
    grid = Grid.build(SQUARE, 2.0)
    t = np.array([0.0, 10.0])
    play = Play(0.0, 10.0, True, t, np.array([-30.0, 30.0]), np.zeros(2), np.zeros(2), 40.0)
    heard = hears(grid, play)
    # in range of both ends: the lens |p - (-30,0)| <= 40 and |p - (30,0)| <= 40
    lens = (np.hypot(grid.x + 30, grid.y) <= 40) & (np.hypot(grid.x - 30, grid.y) <= 40)
    assert np.array_equal(heard, lens)
    counts = hear_counts(grid, [play, play, still_play(80, 80, 0.0, slant=10.0)])
    assert counts.max() == 2
    assert covered_fraction(counts, 2) == pytest.approx(lens.mean())


def test_grid_coarsens_for_large_areas_and_keeps_thin_polygons() -> None:
    big = Polygon([(0, 0), (5000, 0), (5000, 5000), (0, 5000)])
    assert len(Grid.build(big)) <= 20_000 * 1.3
    sliver = Polygon([(0, 0), (300, 0), (300, 0.5), (0, 0.5)])
    assert len(Grid.build(sliver)) >= 1
