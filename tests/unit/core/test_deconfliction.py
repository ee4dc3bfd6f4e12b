"""Strategic deconfliction (:mod:`fleet.deconfliction`) and the airspace and energy rules of
:mod:`fleet.safety`, pure: no clock, no sockets."""

from __future__ import annotations

import math

from fleet.deconfliction import (
    AirspaceBook,
    Option,
    Segment,
    Separation,
    _mark_terminal,
    layers,
    trajectory,
)
from fleet.drone import FlightPlan, Land, Takeoff, Waypoint
from fleet.safety import plan_violations, remaining_energy
from fleet.world import World
from fleet.worldfile import load_world
from tests.service import WORLDS

SEP = Separation(horizontal_m=30, vertical_m=15, margin_s=10, slack=0.0, start_slack_s=0)


def leg(
    a: tuple[float, float], b: tuple[float, float], alt: float, t0: float, t1: float
) -> Segment:
    return Segment(a, b, alt, alt, t0, t1, 1)


def crossing(alt: float) -> Option:
    """A 200 s leg along the y axis through the origin."""
    return Option(None, (leg((0, -500), (0, 500), alt, 0, 200),))


def test_crossing_paths_at_one_altitude_conflict_and_get_a_later_start() -> None:
    book = AirspaceBook(SEP)
    east = Option(None, (leg((-500, 0), (500, 0), 40, 0, 200),))
    first = book.reserve("east", "d1", [east], 1000.0)
    assert first is not None and first.start == 1000.0
    assert book.conflicts(crossing(40), 1000.0) == ["east"]
    slot = book.reserve("north", "d2", [crossing(40)], 1000.0)
    assert slot is not None and slot.waited_for == ("east",)
    assert slot.start >= 1000.0 + 200 + 2 * SEP.margin_s - 1e-6
    assert book.conflicts(crossing(40), slot.start, exclude="north") == []


def test_another_layer_wins_over_a_later_start() -> None:
    book = AirspaceBook(SEP)
    book.reserve("east", "d1", [Option(None, (leg((-500, 0), (500, 0), 40, 0, 200),))], 0.0)
    slot = book.reserve("north", "d2", [crossing(40), Option(55, crossing(55).segments)], 0.0)
    assert slot is not None and slot.start == 0.0 and slot.layer_m == 55 and slot.option == 1
    assert slot.waited_for == ("east",)
    # 14 m apart is not enough
    slot2 = book.reserve("n2", "d3", [crossing(40), Option(54, crossing(54).segments)], 0.0)
    assert slot2 is not None and slot2.start > 0


def test_the_drones_errors_widen_the_separation_between_their_plans() -> None:
    """A drone 15 m above another's plan may fly 14.98 m above it: with 1 m of altitude
    error and 2 m of track error each, plans keep 17 m and 34 m apart."""
    sep = Separation(
        horizontal_m=30,
        vertical_m=15,
        margin_s=10,
        slack=0.0,
        start_slack_s=0,
        horizontal_error_m=2,
        vertical_error_m=1,
    )
    assert (sep.horizontal_apart_m, sep.vertical_apart_m) == (34, 17)
    book = AirspaceBook(sep)
    book.reserve("east", "d1", [Option(None, (leg((-500, 0), (500, 0), 40, 0, 200),))], 0.0)
    assert book.conflicts(crossing(55), 0.0) == ["east"]
    assert book.conflicts(crossing(57), 0.0) == []
    near = Option(None, (leg((-500, 32), (500, 32), 40, 0, 200),))
    far = Option(None, (leg((-500, 34), (500, 34), 40, 0, 200),))
    assert book.conflicts(near, 0.0) == ["east"]
    assert book.conflicts(far, 0.0) == []


def test_parallel_paths_farther_than_the_separation_do_not_conflict() -> None:
    book = AirspaceBook(SEP)
    book.reserve("a", "d1", [Option(None, (leg((0, 0), (1000, 0), 40, 0, 200),))], 0.0)
    assert book.conflicts(Option(None, (leg((0, 31), (1000, 31), 40, 0, 200),)), 0.0) == []
    assert book.conflicts(Option(None, (leg((0, 29), (1000, 29), 40, 0, 200),)), 0.0) == ["a"]


def test_progress_releases_passed_legs_and_shifts_a_late_flight() -> None:
    book = AirspaceBook(SEP)
    segs = (
        Segment((0, 0), (0, 0), 0, 40, 0, 20, 0),
        Segment((0, 0), (500, 0), 40, 40, 20, 120, 1),
        Segment((500, 0), (500, 0), 0, 40, 120, 160, 2),
    )
    book.reserve("f", "d1", [Option(None, segs)], 0.0)
    book.progress("f", 1, 50.0)
    res = book.get("f")
    assert res is not None and [s.item for s in res.segments] == [1, 2]
    book.progress("f", 1, 200.0)  # still on leg 1, long after its window
    res = book.get("f")
    assert res is not None and res.segments[0].t1 >= 200.0
    book.release("f")
    assert len(book) == 0


def test_the_same_vehicle_never_conflicts_with_itself() -> None:
    book = AirspaceBook(SEP)
    book.reserve("old", "d1", [crossing(40)], 0.0)
    slot = book.reserve("new", "d1", [crossing(40)], 0.0)
    assert slot is not None and slot.start == 0.0


def shatou() -> World:
    return load_world(WORLDS / "shatou.geojson")


def test_trajectory_times_follow_the_energy_model() -> None:
    world = shatou()
    pad = world.pads[0].location
    drop = world.community("C05").drop_point
    plan = FlightPlan(
        (
            Takeoff(30, pad.lat, pad.lon),
            Waypoint(drop.lat, drop.lon, 30),
            Land(pad.lat, pad.lon),
        )
    )
    segs = trajectory(world, plan, pad)
    climb = [seg for seg in segs if seg.item == 0]
    assert len(climb) == 6  # 30 m in 5 m slices, each for its own time
    assert climb[0].lo_m == 0 and climb[-1].hi_m == 30
    assert math.isclose(climb[-1].t1 - climb[0].t0, 30 / 1.5)
    cruise = [seg for seg in segs if seg.item == 1]  # in pieces of at most 60 m
    d = math.dist(world.xy(pad), world.xy(drop))
    assert len(cruise) == math.ceil(d / 60.0)
    assert math.isclose(cruise[-1].t1 - cruise[0].t0, d / 5.0)
    assert segs[-1].lo_m == 0 and segs[-1].hi_m == 5  # the last slice onto the pad


def test_layers_stay_under_the_ceiling() -> None:
    assert layers(40, 115, 15, 4) == [40, 55, 70, 85]
    assert layers(100, 115, 15, 4) == [100, 115]


def test_plan_violations_name_the_leg_and_the_zone() -> None:
    world = shatou()
    zone = world.no_fly_zones[0]
    pad = world.pads[0].location
    c = zone.polygon.centroid
    inside = world.latlon(c.x, c.y)
    plan = FlightPlan(
        (
            Takeoff(40, pad.lat, pad.lon),
            Waypoint(inside.lat, inside.lon, 130),
            Land(pad.lat, pad.lon),
        )
    )
    found = plan_violations(world, plan, pad)
    rules = {v.rule for v in found}
    assert {"ceiling", "no_fly_zone"} <= rules
    assert any(zone.id in v.message and v.message.startswith("leg 1") for v in found)


def test_remaining_energy_shrinks_as_the_flight_goes_on() -> None:
    world = shatou()
    pad = world.pads[0].location
    drop = world.community("C05").drop_point
    plan = FlightPlan(
        (Takeoff(40, pad.lat, pad.lon), Waypoint(drop.lat, drop.lon, 40), Land(pad.lat, pad.lon))
    )
    at_start = remaining_energy(world, plan, 1, pad, 40, pad, loaded_until=2, payload_kg=2.5)
    at_drop = remaining_energy(world, plan, 2, drop, 40, pad)
    assert 0 < at_drop < at_start
    d = math.dist(world.xy(pad), world.xy(drop)) / 1000
    assert math.isclose(at_drop, d * 0.10 + 40 / 1.0 / 60 * 0.03)


def test_a_departure_turning_away_from_a_neighbouring_pad_does_not_wait_for_its_climb() -> None:
    """Pads 12 m apart (the terminal area): a drone climbing over pad B and one leaving pad A
    at the top of its climb, heading away from B (or coming back the same way), are never
    closer than the pads are; a leg that passes over B is separated from B's column as any
    other."""
    pad_a, pad_b = (0.0, 0.0), (12.0, 0.0)

    def sortie(pad: tuple[float, float], to: tuple[float, float]) -> Option:
        return Option(
            None,
            tuple(
                _mark_terminal(
                    [
                        Segment(pad, pad, 0, 40, 0, 20, 0, pad=True),
                        Segment(pad, to, 40, 40, 20, 120, 1),
                        Segment(to, pad, 40, 40, 120, 220, 2),
                        Segment(pad, pad, 0, 40, 220, 240, 3, pad=True),
                    ]
                )
            ),
        )

    book = AirspaceBook(SEP)
    # a drone climbing over B for the first 40 s (what it flies after is another matter)
    climb = Segment(pad_b, pad_b, 0, 40, 0, 40, 0, pad=True)
    book.reserve("b", "d2", [Option(None, (climb,))], 0.0)
    away = sortie(pad_a, (-500.0, 0.0))
    assert book.conflicts(away, 0.0) == []
    over_b = sortie(pad_a, (500.0, 0.0))
    assert book.conflicts(over_b, 0.0) == ["b"]


def test_legs_over_the_pads_are_marked_as_the_terminal_area() -> None:
    world = shatou()
    pad = world.pads[0].location
    drop = world.communities[0].drop_point
    plan = FlightPlan(
        (
            Takeoff(40, pad.lat, pad.lon),
            Waypoint(drop.lat, drop.lon, 40),
            Waypoint(pad.lat, pad.lon, 40),
            Land(pad.lat, pad.lon),
        )
    )
    segs = trajectory(world, plan, pad)
    legs = [s for s in segs if not s.pad and s.a != s.b]
    here = world.xy(pad)
    assert legs[0].terminal == here and legs[-1].terminal == here
    assert all(s.terminal is None for s in legs[1:-1])
