"""Properties of the loader: any input gives a World or a WorldFileError, anywhere on Earth."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.errors import WorldFileError
from fleet.geo import LocalFrame
from fleet.worldfile import parse_world, problems_of
from tests.unit.world.builders import FRAME, minimal

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

BASE = minimal()
PLACES = [
    ("collection", None),
    *((i, "properties") for i in range(len(BASE["features"]))),
    *((i, "geometry") for i in range(len(BASE["features"]))),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PLACES), st.text(min_size=1, max_size=12), json_values)
def test_any_damage_gives_a_world_or_a_world_file_error(
    place: tuple[Any, str | None], key: str, value: Any
) -> None:
    data = copy.deepcopy(BASE)
    where, part = place
    if where == "collection":
        target = data["properties"]
    elif part == "properties":
        props = data["features"][where]["properties"]
        key = sorted(props)[len(key) % len(props)] if len(key) % 2 else key
        target = props
    else:
        data["features"][where]["geometry"] = value
        target = None
    if target is not None:
        target[key] = value
    error: WorldFileError | None = None
    try:
        parse_world(data)
    except WorldFileError as e:
        error = e
    if error is not None:
        problems = problems_of(error)
        assert problems, error
        assert all(p.reason and p.label for p in problems)


@settings(max_examples=30, deadline=None)
@given(st.floats(-60, 60), st.floats(-179, 179), st.booleans())
def test_the_same_street_anywhere_has_the_same_local_geometry(
    lat: float, lon: float, explicit_origin: bool
) -> None:
    frame = LocalFrame(lat, lon)
    data = minimal()
    for f in data["features"]:
        f["geometry"]["coordinates"] = _move(f["geometry"]["coordinates"], frame)
    if explicit_origin:
        data["properties"]["origin"] = [lon, lat]
    else:
        del data["properties"]["origin"]
    world = parse_world(data)
    c1 = world.community("C1")
    assert c1.area_m2 == pytest.approx(200 * 160, rel=1e-3)
    gx, gy = world.xy(c1.gate)
    cx, cy = world.xy(c1.drop_point)
    assert (cx - gx, cy - gy) == pytest.approx((0, 92), abs=0.05)
    route = world.road_network.shortest_path(world.dock_node("W1"), world.gate_node("C1"))
    assert route.length_m == pytest.approx(350, abs=0.1)


def _move(c: Any, frame: LocalFrame) -> Any:
    if isinstance(c[0], float | int):
        x, y = FRAME.to_xy(c[1], c[0])
        la, lo = frame.to_latlon(x, y)
        return [lo, la]
    return [_move(x, frame) for x in c]
