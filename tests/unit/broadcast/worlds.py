"""Small synthetic worlds for broadcast tests, built in the local frame of a Shenzhen origin."""

from __future__ import annotations

from collections.abc import Sequence

from shapely.geometry import Polygon

from fleet.geo import LatLon, LocalFrame
from fleet.world import Community, NoFlyZone, Pad, Warehouse, World

ORIGIN = (22.5400, 114.0600)
"""Reference point of the synthetic worlds (Futian, Shenzhen)."""

XYRing = Sequence[tuple[float, float]]


def make_world(
    communities: dict[str, XYRing],
    no_fly: dict[str, tuple[XYRing, float | None]] | None = None,
    pad_xy: tuple[float, float] = (0.0, 0.0),
    extent: float = 3000.0,
) -> World:
    """A world whose communities and no-fly zones are given as local (x, y) rings."""
    frame = LocalFrame(*ORIGIN)

    def ring(xy: XYRing) -> tuple[tuple[float, float], ...]:
        return tuple(frame.to_latlon(x, y) for x, y in xy)

    def ll(x: float, y: float) -> LatLon:
        return LatLon(*frame.to_latlon(x, y))

    area_xy = [(-extent, -extent), (extent, -extent), (extent, extent), (-extent, extent)]
    comms = []
    for cid, xy in communities.items():
        poly = Polygon(xy)
        c = poly.representative_point()
        comms.append(
            Community(
                id=cid,
                name=cid,
                boundary=ring(xy),
                polygon=poly,
                population=1000,
                vulnerable_households=10,
                gate=ll(c.x, c.y),
                drop_point=ll(c.x, c.y),
            )
        )
    zones = [
        NoFlyZone(id=zid, name=zid, boundary=ring(xy), polygon=Polygon(xy), ceiling_m=ceiling)
        for zid, (xy, ceiling) in (no_fly or {}).items()
    ]
    pad = Pad(id="pad-1", name="pad", location=ll(*pad_xy), warehouse_id="wh-1", ground_alt_m=5.0)
    wh = Warehouse(id="wh-1", name="wh", location=ll(*pad_xy), dock=ll(*pad_xy), pad_ids=("pad-1",))
    return World(
        name="synthetic",
        frame=frame,
        map_id="synthetic",
        boundary=ring(area_xy),
        area=Polygon(area_xy),
        warehouses=(wh,),
        pads=(pad,),
        communities=tuple(comms),
        no_fly_zones=tuple(zones),
    )


def rect(x0: float, y0: float, w: float, h: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
