"""Every rule of the world file loader: a small bad file, and the feature and reason reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.errors import WorldFileError
from fleet.geo import LocalFrame
from fleet.worldfile import WorldProblem, load_world, parse_world, parse_world_text, problems_of
from tests.unit.world.builders import (
    attached,
    feature,
    index_of,
    line,
    minimal,
    point,
    polygon,
    pos,
    rect,
)


def rejected(data: Any) -> tuple[WorldFileError, list[WorldProblem]]:
    with pytest.raises(WorldFileError) as exc:
        parse_world(data, "bad.geojson")
    return exc.value, problems_of(exc.value)


def only_problem(data: Any) -> WorldProblem:
    """The one problem the loader reports: one mistake must give one problem, not a cascade."""
    _, problems = rejected(data)
    assert len(problems) == 1, [p.label + ": " + p.reason for p in problems]
    return problems[0]


def props(data: dict[str, Any], i: int) -> dict[str, Any]:
    return data["features"][i]["properties"]


# --- the document ------------------------------------------------------------------------------


def test_not_json_names_line_and_column() -> None:
    with pytest.raises(WorldFileError) as exc:
        parse_world_text('{"type": "FeatureCollection",\n "features": [}', "bad.geojson")
    assert "not JSON" in exc.value.message
    assert "line 2" in exc.value.message
    assert exc.value.fields["path"] == "bad.geojson"


def test_nan_is_not_json() -> None:
    text = '{"type": "FeatureCollection", "properties": {"name": "x", "max_altitude_m": NaN}}'
    with pytest.raises(WorldFileError, match="NaN is not a JSON number"):
        parse_world_text(text)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "not a GeoJSON FeatureCollection"),
        ({"type": "Feature"}, 'not a GeoJSON FeatureCollection (type is "Feature")'),
        ({"type": "FeatureCollection", "properties": {}}, "'features' must be an array"),
        ({"type": "FeatureCollection", "features": []}, "top-level 'properties' object"),
    ],
)
def test_not_a_feature_collection(data: Any, fragment: str) -> None:
    with pytest.raises(WorldFileError) as exc:
        parse_world(data, "bad.geojson")
    assert fragment in exc.value.message
    assert exc.value.fields["feature"] is None


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"name": None}, "missing property 'name'"),
        ({"map_id": None}, "missing property 'map_id'"),
        ({"map_id": "has space"}, "'map_id' must be letters"),
        ({"version": 2}, "version 2 is not supported"),
        ({"max_altitude_m": 0}, "'max_altitude_m' must be in (0, 500]"),
        ({"max_altitude_m": "120"}, "property 'max_altitude_m' must be a number"),
        ({"origin": [114.0]}, "'origin' must be a position: a position must be [lon, lat]"),
        ({"origin": [115.0, 22.5]}, "'origin' [115.000000, 22.500000] is more than 20 km"),
        ({"nmae": "x"}, "unknown property 'nmae' (did you mean 'name'?)"),
    ],
)
def test_top_level_properties(change: dict[str, Any], fragment: str) -> None:
    data = minimal()
    for k, v in change.items():
        if v is None:
            del data["properties"][k]
        else:
            data["properties"][k] = v
    p = only_problem(data)
    assert p.index is None
    assert p.label == "collection"
    assert fragment in p.reason


# --- one feature -------------------------------------------------------------------------------

Case = tuple[str, Callable[[dict[str, Any]], int], str | None, str]
"""name, mutation returning the index of the feature to blame, its id, reason fragment."""


def _set(fid: str, **kv: Any) -> Callable[[dict[str, Any]], int]:
    def mutate(d: dict[str, Any]) -> int:
        i = index_of(d, fid)
        for k, v in kv.items():
            if v is None:
                del d["features"][i]["properties"][k]
            else:
                d["features"][i]["properties"][k] = v
        return i

    return mutate


def _geometry(fid: str, geometry: Any) -> Callable[[dict[str, Any]], int]:
    def mutate(d: dict[str, Any]) -> int:
        i = index_of(d, fid)
        d["features"][i]["geometry"] = geometry
        return i

    return mutate


def _append(f: dict[str, Any]) -> Callable[[dict[str, Any]], int]:
    def mutate(d: dict[str, Any]) -> int:
        d["features"].append(f)
        return len(d["features"]) - 1

    return mutate


def _move(kind: str, owner: str, x: float, y: float) -> Callable[[dict[str, Any]], int]:
    def mutate(d: dict[str, Any]) -> int:
        i = attached(d, kind, owner)
        d["features"][i]["geometry"] = point(x, y)
        return i

    return mutate


def _not_a_feature(d: dict[str, Any]) -> int:
    d["features"].append({"type": "Point", "coordinates": [114.0, 22.5]})
    return len(d["features"]) - 1


def _id_mismatch(d: dict[str, Any]) -> int:
    i = index_of(d, "C1")
    props(d, i)["id"] = "C9"
    return i


def _numeric_id(d: dict[str, Any]) -> int:
    d["features"].append(feature("road", line((-290, 100), (0, 100)), 7))  # type: ignore[arg-type]
    return len(d["features"]) - 1


FEATURE_CASES: list[Case] = [
    ("not a feature", _not_a_feature, None, "not a GeoJSON Feature object"),
    ("unknown kind", _set("C1", kind="comunity"), "C1", "unknown kind \"comunity\" (did you mean "
     "'community'?)"),
    ("missing kind", _set("C1", kind=None), "C1", "missing property 'kind'"),
    ("missing id", _append(feature("road", line((-290, 100), (0, 100)))), None,
     "a road needs an 'id'"),
    ("id not a string", _numeric_id, None, "id 7 must be a string"),
    ("id with a space", _append(feature("road", line((-290, 100), (0, 100)), "R 3")), None,
     "id \"R 3\" must be a string of letters"),
    ("ids differ", _id_mismatch, "C1", "the feature id \"C1\" and properties.id \"C9\" differ"),
    ("missing property", _set("C1", population=None), "C1", "missing property 'population'"),
    ("population as text", _set("C1", population="3000"), "C1",
     "property 'population' must be an integer, got \"3000\""),
    ("population fractional", _set("C1", population=3000.5), "C1",
     "property 'population' must be an integer, got 3000.5"),
    ("population boolean", _set("C1", population=True), "C1",
     "property 'population' must be an integer, got true"),
    ("empty name", _set("W1", name="  "), "W1", "property 'name' must be a non-empty string"),
    ("oneway as text", _set("R1", oneway="yes"), "R1",
     "property 'oneway' must be true or false, got \"yes\""),
    ("pad altitude as text", _set("P1", ground_alt_m="5"), "P1",
     "property 'ground_alt_m' must be a number"),
    ("typo in property", _set("C1", populaton=5), "C1",
     "unknown property 'populaton' (did you mean 'population'?)"),
    ("reference not a string", _set("P1", warehouse=1), "P1",
     "property 'warehouse' must be the id (a string) of another feature"),
    ("no geometry", _geometry("W1", None), "W1", "has no geometry (a Point is required)"),
    ("wrong geometry type", _geometry("C1", point(100, 100)), "C1",
     "geometry must be a Polygon, got \"Point\""),
    ("position too short", _geometry("W1", {"type": "Point", "coordinates": [114.0]}), "W1",
     "a position must be [lon, lat] or [lon, lat, alt]"),
    ("position not numbers", _geometry("W1", {"type": "Point", "coordinates": ["114", "22"]}),
     "W1", "a position holds numbers"),
    ("lat, lon order", _geometry("W1", {"type": "Point", "coordinates": [22.5, 114.0]}), "W1",
     "is not [lon, lat] in degrees (longitude -180..180 first, then latitude -90..90); it looks "
     "like [lat, lon]"),
    ("ring not closed", _geometry("C1", {"type": "Polygon", "coordinates": [
        [pos(50, 20), pos(250, 20), pos(250, 180), pos(50, 180)]]}), "C1",
     "the exterior ring is not closed"),
    ("ring too short", _geometry("C1", {"type": "Polygon", "coordinates": [
        [pos(50, 20), pos(250, 20), pos(50, 20)]]}), "C1",
     "the exterior ring needs at least 4 positions"),
    ("line too short", _geometry("R2", {"type": "LineString", "coordinates": [pos(0, 0)]}),
     "R2", "a LineString needs at least 2 positions"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "fid", "fragment"),
    [c[1:] for c in FEATURE_CASES],
    ids=[c[0] for c in FEATURE_CASES],
)
def test_feature_rules(
    mutate: Callable[[dict[str, Any]], int], fid: str | None, fragment: str
) -> None:
    data = minimal()
    index = mutate(data)
    p = only_problem(data)
    assert p.index == index
    assert p.feature_id == fid
    assert fragment in p.reason
    assert p.label.startswith(f"features[{index}]")


def test_annotations_and_map_styles_are_allowed() -> None:
    data = minimal()
    i = index_of(data, "C1")
    props(data, i).update({"x-source": "survey 2022", "fill": "#f00", "stroke-width": 2})
    data["properties"]["x-editor"] = "geojson.io"
    world = parse_world(data)
    assert world.community("C1").name == "North Garden"


def test_properties_id_is_accepted_when_the_feature_has_none() -> None:
    data = minimal()
    i = index_of(data, "C1")
    del data["features"][i]["id"]
    props(data, i)["id"] = "C1"
    assert parse_world(data).community("C1").population == 3000


# --- geometry in the local frame ---------------------------------------------------------------

GEOMETRY_CASES: list[Case] = [
    ("self-intersecting community", _geometry("C1", polygon((50, 20), (250, 180), (250, 20),
                                                           (50, 180))), "C1",
     "invalid polygon: self-intersection at [114."),
    ("self-intersecting no-fly zone", _geometry("NFZ1", polygon((-250, 50), (-150, 150),
                                                                (-150, 50), (-250, 150))),
     "NFZ1", "invalid polygon: self-intersection"),
    ("degenerate polygon", _geometry("C1", polygon((50, 20), (250, 20), (150, 20.001))), "C1",
     "polygon encloses"),
    ("road crossing itself", _geometry("R2", line((0, -190), (0, 190), (20, 170), (-20, 170))),
     "R2", "road crosses itself"),
    ("road too short", _geometry("R2", line((0, -190), (0, -189.5))), "R2",
     "a road must be longer than 1 m"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "fid", "fragment"),
    [c[1:] for c in GEOMETRY_CASES],
    ids=[c[0] for c in GEOMETRY_CASES],
)
def test_geometry_rules(
    mutate: Callable[[dict[str, Any]], int], fid: str | None, fragment: str
) -> None:
    data = minimal()
    index = mutate(data)
    p = only_problem(data)
    assert (p.index, p.feature_id) == (index, fid)
    assert fragment in p.reason


# --- the world as a whole ----------------------------------------------------------------------


def _dup_id(d: dict[str, Any]) -> int:
    d["features"].append(feature("road", line((-290, 150), (-100, 150)), "C1"))
    return len(d["features"]) - 1


def _second_gate(d: dict[str, Any]) -> int:
    d["features"].append(feature("gate", point(100, 8), community="C1"))
    return len(d["features"]) - 1


def _no_gate(d: dict[str, Any]) -> int:
    del d["features"][attached(d, "gate", "C2")]
    return index_of(d, "C2")


def _no_drop(d: dict[str, Any]) -> int:
    del d["features"][attached(d, "drop_point", "C1")]
    return index_of(d, "C1")


def _no_dock(d: dict[str, Any]) -> int:
    del d["features"][attached(d, "dock", "W1")]
    return index_of(d, "W1")


def _unknown_ref(d: dict[str, Any]) -> int:
    d["features"].append(feature("gate", point(100, 8), community="C7"))
    return len(d["features"]) - 1


def _wrong_kind_ref(d: dict[str, Any]) -> int:
    d["features"].append(feature("dock", point(-190, -8), warehouse="C1"))
    return len(d["features"]) - 1


def _island(d: dict[str, Any]) -> int:
    # C2's gate moves next to a road that touches no other road
    d["features"].append(feature("road", line((100, -32), (200, -32)), "R9", name="Island"))
    i = attached(d, "gate", "C2")
    d["features"][i]["geometry"] = point(150, -24)
    return i


def _one_way_dead_end(d: dict[str, Any]) -> int:
    # a one-way spur leaving Main Road, with C2's gate on it: vans get in, never out
    d["features"].append(
        feature("road", line((270, 0), (270, -150)), "R9", name="Spur", oneway=True)
    )
    i = attached(d, "gate", "C2")
    d["features"][i]["geometry"] = point(258, -120)
    return i


def _overlapping_road(d: dict[str, Any]) -> int:
    d["features"].append(feature("road", line((100, 0), (200, 0)), "R9"))
    return len(d["features"]) - 1


def _outside_road(d: dict[str, Any]) -> int:
    d["features"].append(feature("road", line((280, 150), (280, 260)), "R9"))
    return len(d["features"]) - 1


def _overlapping_community(d: dict[str, Any]) -> int:
    d["features"] += [
        feature("community", rect(200, 100, 290, 190), "C3", name="C3", population=900,
                vulnerable_households=3),
        feature("gate", point(240, 8), community="C3"),
        feature("drop_point", point(270, 185), community="C3"),
    ]  # fmt: skip
    return len(d["features"]) - 3


def _second_area(d: dict[str, Any]) -> int:
    d["features"].append(feature("operating_area", rect(-10, -10, 10, 10), "area2"))
    return len(d["features"]) - 1


WORLD_CASES: list[Case] = [
    ("duplicate id", _dup_id, "C1", "duplicate id 'C1' (also features[5], a community)"),
    ("warehouse outside area", _geometry("W1", point(-200, -250)), "W1",
     "is outside the operating area, 50 m from it"),
    ("pad outside area", _geometry("P2", point(-310, -120)), "P2",
     "is outside the operating area"),
    ("drop point outside its community", _move("drop_point", "C1", 150, -100), None,
     "drop point is outside its community C1"),
    ("pad in a no-fly zone", _geometry("P1", point(-200, 100)), "P1",
     "pad is inside no-fly zone NFZ1"),
    ("pads too close", _geometry("P2", point(-218, -120)), "P2",
     "pad is 2.0 m from pad P1; pads must be at least 3 m apart"),
    ("pad far from its warehouse", _geometry("P2", point(250, 190)), "P2",
     "from warehouse W1; at most 300 m allowed"),
    ("dock far from its warehouse", _move("dock", "W1", 200, 8), None,
     "dock is 414 m from warehouse W1; at most 300 m allowed"),
    ("pad altitude impossible", _set("P1", ground_alt_m=12000), "P1",
     "ground_alt_m 12000 is not a ground altitude"),
    ("unknown reference", _unknown_ref, None, "community 'C7' does not exist"),
    ("reference to the wrong kind", _wrong_kind_ref, None,
     "warehouse 'C1' is a community, not a warehouse"),
    ("two gates", _second_gate, None, "community C1 already has a gate (features[6])"),
    ("no gate", _no_gate, "C2", "community C2 has no gate"),
    ("no drop point", _no_drop, "C1", "community C1 has no drop_point"),
    ("no dock", _no_dock, "W1", "warehouse W1 has no dock"),
    ("population zero", _set("C1", population=0), "C1",
     "population must be a positive integer, got 0"),
    ("population negative", _set("C1", population=-5, vulnerable_households=0), "C1",
     "population must be a positive integer, got -5"),
    ("vulnerable households negative", _set("C2", vulnerable_households=-1), "C2",
     "vulnerable_households must be between 0 and the population, got -1"),
    ("vulnerable households above population", _set("C2", vulnerable_households=2501), "C2",
     "vulnerable_households must be between 0 and the population, got 2501"),
    ("community outside area", _geometry("C1", rect(50, 20, 250, 260)), "C1",
     "community polygon reaches 12000 m² outside the operating area"),
    ("communities overlap", _overlapping_community, "C3",
     "community overlaps community C1 by 4000 m²"),
    ("gate far from its community", _move("gate", "C1", -100, 8), None,
     "gate is 150 m from community C1; at most 50 m allowed"),
    ("gate far from any road", _move("gate", "C1", 150, 45), None,
     "gate is 45 m from the nearest road (R1); at most 30 m allowed"),
    ("dock far from any road", _move("dock", "W1", -200, -60), None,
     "dock is 60 m from the nearest road (R1); at most 30 m allowed"),
    ("gate on a road island", _island, None,
     "gate of community C2 cannot be reached by road from the dock of warehouse W1"),
    ("gate on a one-way dead end", _one_way_dead_end, None,
     "no road leads back from the gate of community C2 to the dock of warehouse W1 (check "
     "one-way roads)"),
    ("no-fly ceiling zero", _set("NFZ1", ceiling_m=0), "NFZ1", "ceiling_m must be positive"),
    ("road speed zero", _set("R2", speed_limit_kmh=0), "R2",
     "speed_limit_kmh must be in (0, 130], got 0"),
    ("road layer", _set("R2", layer=9), "R2", "layer must be between -5 and 5, got 9"),
    ("road drawn twice", _overlapping_road, "R9", "road runs along road R1 for 100 m"),
    ("road outside area", _outside_road, "R9", "road runs 60 m outside the operating area"),
    ("two operating areas", _second_area, "area2", "a world has one operating_area; the first "
     "is features[0]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "fid", "fragment"),
    [c[1:] for c in WORLD_CASES],
    ids=[c[0] for c in WORLD_CASES],
)
def test_world_rules(
    mutate: Callable[[dict[str, Any]], int], fid: str | None, fragment: str
) -> None:
    data = minimal()
    index = mutate(data)
    p = only_problem(data)
    assert (p.index, p.feature_id) == (index, fid), p
    assert fragment in p.reason


def test_drop_point_in_no_fly_zone() -> None:
    data = minimal()
    # C1 grows west so that its drop point can sit in NFZ1, which stays outside C1's gate reach
    i = index_of(data, "C1")
    data["features"][i]["geometry"] = rect(-280, 20, 250, 180)
    d = attached(data, "drop_point", "C1")
    data["features"][d]["geometry"] = point(-200, 100)
    p = only_problem(data)
    assert p.index == d
    assert p.reason == "drop point is inside no-fly zone NFZ1 (features[11])"


def test_no_operating_area() -> None:
    data = minimal()
    del data["features"][index_of(data, "area")]
    p = only_problem(data)
    assert p.index is None
    assert "no feature of kind 'operating_area'" in p.reason


def test_no_warehouse() -> None:
    data = minimal()
    data["features"] = [
        f for f in data["features"] if f["properties"]["kind"] not in {"warehouse", "dock", "pad"}
    ]
    p = only_problem(data)
    assert p.index is None
    assert "no feature of kind 'warehouse'" in p.reason


def test_no_roads_at_all() -> None:
    data = minimal()
    data["features"] = [f for f in data["features"] if f["properties"]["kind"] != "road"]
    _, problems = rejected(data)
    assert len(problems) == 3  # the dock and both gates
    assert all("cannot be attached to a road: the world has no roads" in p.reason
               for p in problems)  # fmt: skip


def test_operating_area_too_large() -> None:
    data = minimal()
    data["features"][0]["geometry"] = rect(-20_000, -200, 20_000, 200)
    p = only_problem(data)
    assert p.index == 0
    assert "the operating area spans 40.0 km" in p.reason


def test_swapped_coordinates_hint_inside_the_area() -> None:
    # near 45 N 45 E both orders are valid degrees: the loader says the point looks swapped
    frame = LocalFrame(45.0, 45.0)
    data = minimal()
    for f in data["features"]:
        g = f["geometry"]
        g["coordinates"] = _reproject(g["coordinates"], frame)
    data["properties"]["origin"] = [45.0, 45.0]
    i = index_of(data, "W1")
    lat, lon = frame.to_latlon(250, -150)
    data["features"][i]["geometry"] = {"type": "Point", "coordinates": [lat, lon]}
    p = only_problem(data)
    assert p.index == i
    assert "its coordinates look swapped: GeoJSON positions are [lon, lat]" in p.reason


def _reproject(c: Any, frame: LocalFrame) -> Any:
    from tests.unit.world.builders import FRAME

    if isinstance(c[0], float | int):
        x, y = FRAME.to_xy(c[1], c[0])
        lat, lon = frame.to_latlon(x, y)
        return [lon, lat]
    return [_reproject(x, frame) for x in c]


# --- all problems at once ----------------------------------------------------------------------


def test_every_problem_is_reported_in_file_order() -> None:
    data = minimal()
    props(data, index_of(data, "C2"))["population"] = 0
    props(data, index_of(data, "R2"))["speed_limit_kmh"] = "fast"
    props(data, index_of(data, "P1"))["ground_alt_m"] = None
    data["properties"]["map_id"] = ""
    err, problems = rejected(data)
    assert [(p.index, p.feature_id) for p in problems] == [
        (None, None),
        (index_of(data, "P1"), "P1"),
        (index_of(data, "C2"), "C2"),
        (index_of(data, "R2"), "R2"),
    ]
    assert err.fields["feature"] is None  # the first problem is the collection's
    assert "and 3 more" in err.message
    assert "features[3] (pad P1): property 'ground_alt_m' must be a number" in err.message
    assert err.to_dict()["problems"][2] == {
        "feature": "features[8] (community C2)",
        "index": 8,
        "id": "C2",
        "kind": "community",
        "reason": "population must be a positive integer, got 0",
    }


def test_single_problem_message_names_the_feature() -> None:
    data = minimal()
    props(data, index_of(data, "C2"))["population"] = 0
    err, _ = rejected(data)
    assert err.fields["feature"] == "features[8] (community C2)"
    assert err.message == (
        "feature features[8] (community C2): population must be a positive integer, got 0"
    )
    assert err.http_status == 422


# --- files -------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorldFileError, match="cannot read the file"):
        load_world(tmp_path / "nope.geojson")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.geojson"
    path.write_bytes('{"name": "Sh\xe2tou"}'.encode("latin-1"))
    with pytest.raises(WorldFileError, match="not UTF-8"):
        load_world(path)


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    import json

    path = tmp_path / "bom.geojson"
    path.write_text(json.dumps(minimal()), encoding="utf-8-sig")
    assert load_world(path).source == str(path)
