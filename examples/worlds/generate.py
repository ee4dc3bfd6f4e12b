"""Regenerates the example world files in this folder from a compact description in metres.

    .venv/bin/python examples/worlds/generate.py

Both worlds are synthetic: invented names on a plausible street layout. Each is laid out in the
world's local metric frame (x east, y north, metres from the explicit ``origin``, the same frame
the loader builds, see ``docs/world-format.md``) and written as WGS84 GeoJSON, one feature per
object, positions rounded to 1e-7 degree (about 1 cm). Edit the description here and rerun
rather than editing the GeoJSON by hand, or edit the GeoJSON in a map editor and drop this
script: the GeoJSON is the source of truth the service reads.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.geo import LocalFrame

HERE = Path(__file__).resolve().parent

XY = tuple[float, float]


@dataclass
class Builder:
    """Collects features in local metres and writes them as GeoJSON."""

    frame: LocalFrame
    rotation_deg: float = 0.0
    """Layout coordinates (u, v) are rotated by this much (counter-clockwise) into (x, y)."""

    def __post_init__(self) -> None:
        self.features: list[dict[str, Any]] = []

    def pos(self, uv: XY) -> list[float]:
        t = math.radians(self.rotation_deg)
        u, v = uv
        x, y = u * math.cos(t) - v * math.sin(t), u * math.sin(t) + v * math.cos(t)
        lat, lon = self.frame.to_latlon(x, y)
        return [round(lon, 7), round(lat, 7)]

    def add(self, fid: str | None, props: dict[str, Any], gtype: str, coords: Any) -> None:
        if gtype == "Point":
            c: Any = self.pos(coords)
        elif gtype == "LineString":
            c = [self.pos(p) for p in coords]
        else:
            ring = [self.pos(p) for p in coords]
            c = [[*ring, ring[0]]]
        feature: dict[str, Any] = {"type": "Feature"}
        if fid is not None:
            feature["id"] = fid
        feature["properties"] = props
        feature["geometry"] = {"type": gtype, "coordinates": c}
        self.features.append(feature)

    def write(self, path: Path, properties: dict[str, Any]) -> None:
        """One feature per three lines: header, properties, geometry (readable diffs)."""
        lines = ["{", '"type": "FeatureCollection",']
        props = [
            f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in properties.items()
        ]
        lines.append('"properties": {\n' + ",\n".join(props) + "\n},")
        lines.append('"features": [')
        for i, f in enumerate(self.features):
            head = '{"type": "Feature",' + (f' "id": {json.dumps(f["id"])},' if "id" in f else "")
            lines.append(head)
            lines.append(f' "properties": {json.dumps(f["properties"], ensure_ascii=False)},')
            sep = "," if i < len(self.features) - 1 else ""
            lines.append(f' "geometry": {json.dumps(f["geometry"])}}}{sep}')
        lines += ["]", "}", ""]
        path.write_text("\n".join(lines), encoding="utf-8")


def chamfered(x0: float, y0: float, x1: float, y1: float, cut: float, corner: str) -> list[XY]:
    """A rectangle with one corner cut off (compounds are rarely perfect rectangles)."""
    pts = {
        "sw": [(x0 + cut, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + cut)],
        "se": [(x0, y0), (x1 - cut, y0), (x1, y0 + cut), (x1, y1), (x0, y1)],
        "ne": [(x0, y0), (x1, y0), (x1, y1 - cut), (x1 - cut, y1), (x0, y1)],
        "nw": [(x0, y0), (x1, y0), (x1, y1), (x0 + cut, y1), (x0, y1 - cut)],
    }
    return pts[corner]


def gate_of(x0: float, y0: float, x1: float, y1: float, side: str, at: float = 0.5) -> XY:
    """A point 3 m outside the middle (or fraction ``at``) of one side of a rectangle."""
    if side == "n":
        return (x0 + (x1 - x0) * at, y1 + 3)
    if side == "s":
        return (x0 + (x1 - x0) * at, y0 - 3)
    if side == "e":
        return (x1 + 3, y0 + (y1 - y0) * at)
    return (x0 - 3, y0 + (y1 - y0) * at)


def y_on(poly: list[XY], x: float) -> float:
    """The y of polyline ``poly`` (increasing x) at ``x``."""
    for (ax, ay), (bx, by) in itertools.pairwise(poly):
        if ax <= x <= bx:
            return ay + (by - ay) * (x - ax) / (bx - ax)
    raise ValueError(x)


Community = tuple[str, str, str, int, int, tuple[float, float, float, float], str, str, XY]
"""id, name, Chinese name, population, vulnerable households, rectangle, chamfered corner,
gate side, drop point offset from the centre."""


def add_communities(b: Builder, communities: list[Community]) -> None:
    for cid, name, name_zh, pop, vul, (x0, y0, x1, y1), corner, side, (dx, dy) in communities:
        b.add(
            cid,
            {
                "kind": "community",
                "name": name,
                "name_zh": name_zh,
                "population": pop,
                "vulnerable_households": vul,
            },
            "Polygon",
            chamfered(x0, y0, x1, y1, 30, corner),
        )
        b.add(None, {"kind": "gate", "community": cid}, "Point", gate_of(x0, y0, x1, y1, side))
        centre = ((x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy)
        b.add(None, {"kind": "drop_point", "community": cid}, "Point", centre)


# --- Shatou, Futian, Shenzhen -------------------------------------------------------------------


def shatou() -> None:
    """One warehouse, 12 communities, a street grid north of the river, one substation zone."""
    origin = (22.5265, 114.0400)
    b = Builder(LocalFrame(*origin))
    b.add(
        "shatou-area",
        {"kind": "operating_area", "name": "Shatou Street", "name_zh": "沙头街道"},
        "Polygon",
        [
            (-1150, -760), (-700, -800), (-200, -790), (300, -820), (800, -800), (1150, -770),
            (1150, 850), (-1150, 850),
        ],
    )  # fmt: skip
    # warehouse, dock, pads: the depot yard sits back from Shazhou Road behind a driveway
    b.add(
        "W1",
        {
            "kind": "warehouse",
            "name": "Shatou Street Supplies Depot",
            "name_zh": "沙头街道物资仓库",
        },
        "Point",
        (-800, 20),
    )
    b.add(None, {"kind": "dock", "warehouse": "W1"}, "Point", (-792, -38))
    for k, (px, py) in enumerate([(x, y) for y in (60, 72) for x in (-880, -868, -856)], 1):
        b.add(
            f"W1-P{k}",
            {"kind": "pad", "name": f"Depot pad {k}", "warehouse": "W1", "ground_alt_m": 6.5},
            "Point",
            (px, py),
        )

    river = [(-1140, -690), (-700, -720), (-200, -710), (300, -735), (800, -720), (1140, -700)]
    add_communities(
        b,
        [
            ("C01", "Egret Bay Garden", "白鹭湾花园", 5200, 96,
             (-1030, -520, -760, -265), "sw", "n", (10, -20)),
            ("C02", "Lychee Court", "荔景苑", 6800, 131,
             (-1035, 265, -700, 520), "ne", "s", (-20, 15)),
            ("C03", "Sandspit Village West", "沙嘴村西区", 7400, 188,
             (-485, -560, -265, -265), "sw", "e", (0, 10)),
            ("C04", "Sandspit Village East", "沙嘴村东区", 6900, 171,
             (-235, -560, -15, -265), "se", "w", (5, -10)),
            ("C05", "Mangrove Garden", "红树花园", 4300, 72,
             (15, -560, 300, -265), "sw", "n", (15, 0)),
            ("C06", "Estuary View", "海湾景苑", 5600, 88,
             (520, -600, 820, -265), "se", "w", (0, 20)),
            ("C07", "Banyan Heights", "榕城阁", 8100, 152,
             (15, -180, 295, 120), "ne", "w", (10, 0)),
            ("C08", "Donghai Garden", "东海花园", 6200, 97,
             (515, -120, 800, 235), "se", "n", (-10, 0)),
            ("C09", "Fuxing Court", "福星苑", 4900, 83,
             (-485, 265, -200, 560), "nw", "s", (0, 0)),
            ("C10", "Lotus Pond Garden", "荷塘花园", 7300, 119,
             (15, 300, 320, 735), "sw", "n", (0, -30)),
            ("C11", "Seabreeze Court", "海风苑", 3100, 64,
             (515, 265, 760, 520), "nw", "s", (0, 0)),
            ("C12", "Sunrise Garden", "旭日花园", 2800, 58,
             (790, 265, 1035, 520), "ne", "e", (0, 0)),
        ],
    )  # fmt: skip
    b.add(
        "NFZ-substation",
        {
            "kind": "no_fly_zone",
            "name": "Shatou 110 kV substation",
            "name_zh": "沙头110千伏变电站",
            "reason": "High-voltage substation: critical infrastructure, no overflight",
        },
        "Polygon",
        [(-430, -170), (-90, -180), (-70, 170), (-420, 180)],
    )
    roads: list[tuple[str, str, str, float, list[XY], bool]] = [
        ("R01", "Riverbank Avenue", "河堤大道", 50, river, False),
        ("R02", "Shazhou Road", "沙洲路", 40, [(-1140, -250), (1140, -250)], False),
        ("R03", "Lizhi Road", "荔枝路", 40, [(-1140, 250), (1140, 250)], False),
        ("R04", "Fuxing Road", "福星路", 50, [(-1140, 750), (1140, 750)], False),
    ]
    for rid, name, name_zh, x in [
        ("R05", "Xiwan Road", "西湾路", -1050),
        ("R06", "Bailu Road", "白鹭路", -500),
        ("R07", "Rongshu Street", "榕树街", 0),
        ("R08", "Hongshu Road", "红树路", 500),
        ("R09", "Donghai Road", "东海路", 1050),
    ]:
        roads.append((rid, name, name_zh, 40, [(x, y_on(river, x)), (x, 750)], False))
    roads += [
        ("R10", "Depot Lane", "仓库支路", 15, [(-800, -250), (-800, -40)], False),
        # the old village lane is one-way southbound, from Shazhou Road to Riverbank Avenue
        ("R11", "Shazui Lane", "沙嘴巷", 15, [(-250, -250), (-250, y_on(river, -250))], True),
    ]
    for rid, name, name_zh, speed, pts, oneway in roads:
        props: dict[str, Any] = {
            "kind": "road",
            "name": name,
            "name_zh": name_zh,
            "speed_limit_kmh": speed,
        }
        if oneway:
            props["oneway"] = True
        b.add(rid, props, "LineString", pts)
    b.write(
        HERE / "shatou.geojson",
        {
            "name": "Shatou Street, Futian, Shenzhen (synthetic)",
            "name_zh": "深圳福田沙头街道（虚构示例）",
            "description": "Synthetic example street: invented names and layout on plausible "
            "coordinates north of the Shenzhen River.",
            "version": 1,
            "map_id": "shatou",
            "origin": [origin[1], origin[0]],
            "max_altitude_m": 120,
        },
    )


# --- Binjiang, Yangpu, Shanghai -----------------------------------------------------------------


def binjiang() -> None:
    """Two warehouses, 8 communities on a grid turned 30 degrees, a flyover, a crane zone."""
    origin = (31.2630, 121.5420)
    b = Builder(LocalFrame(*origin), rotation_deg=30.0)
    b.add(
        "binjiang-area",
        {"kind": "operating_area", "name": "Binjiang Street", "name_zh": "滨江街道"},
        "Polygon",
        [(-900, -700), (900, -700), (900, 720), (-900, 720)],
    )
    sites = [
        ("WN", "North Depot", "北仓", (-550, 500), (-550, 316), [(-660, 520), (-660, 535),
                                                                   (-645, 520), (-645, 535)]),
        ("WS", "River Depot", "江边仓", (450, -400), (686, -400), [(400, -300), (412, -300),
                                                                    (424, -300)]),
    ]  # fmt: skip
    for wid, name, name_zh, loc, dock, pads in sites:
        b.add(wid, {"kind": "warehouse", "name": name, "name_zh": name_zh}, "Point", loc)
        b.add(None, {"kind": "dock", "warehouse": wid}, "Point", dock)
        for k, p in enumerate(pads, 1):
            b.add(
                f"{wid}-P{k}",
                {"kind": "pad", "warehouse": wid, "ground_alt_m": 4.2},
                "Point",
                p,
            )
    add_communities(
        b,
        [
            ("Y01", "Riverside New Village", "滨江新村", 6100, 210,
             (-785, -585, -480, -330), "ne", "s", (0, 0)),
            ("Y02", "Cotton Mill Lane", "纱厂里", 3900, 145,
             (-785, -135, -450, 120), "se", "w", (0, 0)),
            ("Y03", "Dockyard Garden", "船坞花园", 4400, 96,
             (-285, -585, -20, -300), "nw", "s", (0, 0)),
            ("Y04", "Plane Tree Court", "梧桐苑", 5200, 118,
             (-285, 360, 40, 635), "sw", "n", (0, 0)),
            ("Y05", "Magnolia Garden", "玉兰花园", 3300, 61,
             (215, 30, 480, 285), "sw", "n", (0, 0)),
            ("Y06", "Shipwright Court", "船匠里", 2600, 77,
             (215, 315, 480, 635), "se", "n", (0, 0)),
            ("Y07", "Lighthouse Garden", "灯塔花园", 2900, 52,
             (510, 315, 685, 635), "nw", "e", (0, 0)),
            ("Y08", "Ferry Lane", "渡口里", 1800, 69,
             (-455, -585, -315, -330), "sw", "e", (0, 20)),
        ],
    )  # fmt: skip
    b.add(
        "NFZ-cranes",
        {
            "kind": "no_fly_zone",
            "name": "Binjiang construction site",
            "name_zh": "滨江在建工地",
            "ceiling_m": 80,
            "reason": "Tower cranes up to 75 m: no flight below 80 m",
        },
        "Polygon",
        [(-270, -120), (170, -120), (170, 270), (-200, 270), (-270, 200)],
    )
    avenues = [
        ("A1", "Riverside Road", "滨江路", 50, -600),
        ("A2", "Yangshupu Road", "杨树浦路", 40, -150),
        ("A3", "Pingliang Road", "平凉路", 40, 300),
        ("A4", "Changyang Road", "长阳路", 40, 650),
    ]
    for rid, name, name_zh, speed, v in avenues:
        # a vertex where the flyover lands (u = 200) so that its ramps join the avenues
        pts = [(-880.0, float(v)), (200.0, float(v)), (880.0, float(v))]
        b.add(rid, {"kind": "road", "name": name, "name_zh": name_zh,
                    "speed_limit_kmh": speed}, "LineString", pts)  # fmt: skip
    streets = [
        ("S1", "Dinghai Road", "定海路", -800, False),
        ("S2", "Ningwu Road", "宁武路", -300, True),  # one-way northbound
        ("S3", "Tongbei Road", "通北路", 200, False),
        ("S4", "Lanzhou Road", "兰州路", 700, False),
    ]
    for rid, name, name_zh, u, oneway in streets:
        props: dict[str, Any] = {"kind": "road", "name": name, "name_zh": name_zh,
                                 "speed_limit_kmh": 30}  # fmt: skip
        if oneway:
            props["oneway"] = True
        b.add(rid, props, "LineString", [(u, -600), (u, 650)])
    b.add(
        "F1",
        {"kind": "road", "name": "Tongbei Flyover", "name_zh": "通北高架",
         "speed_limit_kmh": 60, "layer": 1},
        "LineString",
        [(200, -600), (210, -150), (210, 300), (200, 650)],
    )  # fmt: skip
    b.add(
        "S5",
        {"kind": "road", "name": "North Depot Lane", "speed_limit_kmh": 15},
        "LineString",
        [(-550, 300), (-550, 470)],
    )
    b.write(
        HERE / "binjiang.geojson",
        {
            "name": "Binjiang Street, Yangpu, Shanghai (synthetic)",
            "name_zh": "上海杨浦滨江街道（虚构示例）",
            "description": "Synthetic example street: invented names and layout on plausible "
            "coordinates north of the Huangpu River; two warehouses, a flyover, a crane zone.",
            "version": 1,
            "map_id": "binjiang",
            "origin": [origin[1], origin[0]],
            "max_altitude_m": 100,
        },
    )


if __name__ == "__main__":
    shatou()
    binjiang()
    sys.stdout.write(f"wrote {HERE / 'shatou.geojson'} and {HERE / 'binjiang.geojson'}\n")
