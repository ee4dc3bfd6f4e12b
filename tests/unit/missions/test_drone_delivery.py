"""Drone delivery planning on the example worlds: legs clear of no-fly zones, phases indexed."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from fleet.airspace import check_legs, route_around, world_geofence
from fleet.drone import Gripper, Land, Takeoff, Waypoint
from fleet.errors import PlanningError
from fleet.settings import DroneMissionSettings
from fleet.world import World
from fleet.worldfile import load_world
from missions.catalogue import default_skus
from missions.delivery.plan import (
    check_energy,
    drone_can_carry,
    plan_delivery,
    plan_from_json,
    plan_to_json,
)
from tests.unit.broadcast.worlds import make_world, rect

WORLDS = Path(__file__).resolve().parents[3] / "examples" / "worlds"


@pytest.fixture(scope="module", params=["shatou.geojson", "binjiang.geojson"])
def world(request: pytest.FixtureRequest) -> World:
    return load_world(WORLDS / request.param)


def test_every_community_gets_a_plan_clear_of_no_fly_zones(world: World) -> None:
    cfg = DroneMissionSettings()
    for pad in world.pads:
        for c in world.communities:
            dp = plan_delivery(world, pad, c, cfg)
            items = dp.plan.items
            assert isinstance(items[0], Takeoff)
            assert isinstance(items[-1], Land)
            assert isinstance(items[dp.gripper_index], Gripper)
            drop_wp = items[dp.drop_index]
            assert isinstance(drop_wp, Waypoint)
            assert drop_wp.rel_alt == cfg.drop_alt_m
            hold = items[dp.gripper_index + 1]
            assert isinstance(hold, Waypoint)
            assert hold.hold_s == cfg.drop_hold_s
            track = [pad.location] + [
                type(pad.location)(it.lat, it.lon) for it in items if isinstance(it, Waypoint)
            ]
            assert check_legs(world, track, alt_m=cfg.cruise_alt_m) == [], (pad.id, c.id)


def test_shatou_routes_around_the_substation() -> None:
    world = load_world(WORLDS / "shatou.geojson")
    pad = world.pads[0]
    crossing = [
        c for c in world.communities if world.leg_conflicts(pad.location, c.drop_point, 40.0)
    ]
    assert crossing, "the example world must have a leg crossing its no-fly zone"
    for c in crossing:
        path = route_around(world, pad.location, c.drop_point, alt_m=40.0, margin_m=20.0)
        assert len(path) > 2
        assert check_legs(world, path, alt_m=40.0) == []
        for p, q in itertools.pairwise(path):
            assert world.leg_conflicts(p, q, 40.0, margin_m=19.0) == []


def test_plan_survives_the_record() -> None:
    world = load_world(WORLDS / "shatou.geojson")
    dp = plan_delivery(world, world.pads[1], world.communities[5], DroneMissionSettings())
    again = plan_from_json(plan_to_json(dp))
    assert again.plan == dp.plan
    assert again.gripper_index == dp.gripper_index


def test_what_fits_a_drone() -> None:
    skus = {s.id: s for s in default_skus()}
    ok, why = drone_can_carry([(skus["medicine"], 10)], 2.5)
    assert ok, why
    ok, why = drone_can_carry([(skus["mask"], 1000)], 2.5)
    assert not ok
    assert "exceeds" in why
    ok, why = drone_can_carry([(skus["alcohol"], 1)], 2.5)
    assert not ok
    assert "alcohol" in why


def test_energy_check_names_the_shortfall() -> None:
    world = load_world(WORLDS / "shatou.geojson")
    dp = plan_delivery(world, world.pads[0], world.communities[0], DroneMissionSettings())
    check_energy(dp, 0.9, 0.25)
    with pytest.raises(PlanningError, match="below"):
        check_energy(dp, dp.energy_fraction + 0.1, 0.25)


def test_geofence_has_the_area_and_the_zones(world: World) -> None:
    fence = world_geofence(world)
    assert fence.polygons[0].inclusion
    assert sum(not p.inclusion for p in fence.polygons) == sum(
        z.ceiling_m is None for z in world.no_fly_zones
    )


def test_zones_with_a_ceiling_are_fenced_for_flights_that_stay_below_it() -> None:
    world = make_world(
        {"C": rect(300, 300, 200, 150)},
        no_fly={
            "LOW": (rect(100, 100, 50, 50), 50.0),
            "HIGH": (rect(600, 100, 50, 50), 90.0),
            "ALL": (rect(100, 600, 50, 50), None),
        },
    )

    def fenced(alt: float | None) -> int:
        return sum(not p.inclusion for p in world_geofence(world, alt).polygons)

    assert fenced(None) == 1  # unlimited zones only
    assert fenced(40.0) == 3  # below both ceilings: kept out of all three by the vehicle too
    assert fenced(50.0) == 3  # at the ceiling the zone still applies (World.leg_conflicts)
    assert fenced(70.0) == 2  # LOW may be overflown at 70 m: the planner alone keeps it
    assert fenced(100.0) == 1
