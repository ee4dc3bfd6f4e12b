"""Before every drone flight: the fleet's failsafe policy set on the vehicle and read back, its
geofence and rally points uploaded and downloaded again, and the plan checked against the
airspace rules (``docs/safety.md``).

:func:`secure_drone` raises :class:`fleet.errors.SafetyCheckFailed` (or the vehicle error that
stopped it) when the vehicle does not end up holding exactly what the service set; the run then
fails the mission before anything is loaded and the vehicle is rested, so no flight is
dispatched to a drone whose own failsafes are not the fleet's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleet.airspace import world_geofence
from fleet.drone import DroneControl, FencePolygon, FlightPlan, Geofence
from fleet.errors import PlanningError, SafetyCheckFailed, VehicleError
from fleet.geo import LatLon, Position, distance_m
from fleet.safety import FAILSAFE_PARAMETERS, failsafe_policy, plan_violations, same_value
from fleet.world import World
from missions.context import MissionContext

COORD_TOLERANCE_M = 0.05
"""A downloaded fence vertex or rally point within this of the uploaded one is the same (degE7
rounding is about 1 cm)."""
RALLY_ALT_TOLERANCE_M = 0.05
MAX_RALLY_POINTS = 30
HOME_PAD_M = 15.0
"""A drone whose home is this close to a pad stands on it (``missions.delivery.fleet``)."""
"""PX4 stores at most 32 rally points (``DM_KEY_SAFE_POINTS_MAX``, one slot for its stats)."""


@dataclass(frozen=True, slots=True)
class Secured:
    """What the vehicle was found to hold."""

    parameters: dict[str, float]
    fence_polygons: int
    rally_points: int

    def describe(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.parameters.items())
        return (
            f"failsafe policy set and read back ({params}); geofence of "
            f"{self.fence_polygons} polygon(s) and {self.rally_points} rally point(s) "
            "downloaded and identical to the upload"
        )


def rally_points(world: World, home: Position | None) -> list[Position]:
    """Safe landing places for the drone's own failsafe returns (PX4 RTL_TYPE 0 flies to the
    closest of home and the rally points), altitudes relative to home: the pads of the other
    warehouses and the stand-alone pads, the :data:`MAX_RALLY_POINTS` nearest first. Not the
    other pads of the drone's own warehouse: they may hold parked drones, and home is as
    near."""
    base = home.alt if home is not None else None
    pads = list(world.pads)
    own: str | None = None
    if home is not None and pads:
        nearest = min(pads, key=lambda p: distance_m(p.location, home.latlon))
        if distance_m(nearest.location, home.latlon) <= HOME_PAD_M:
            own = nearest.warehouse_id
        pads.sort(key=lambda p: distance_m(p.location, home.latlon))
    out = []
    for pad in pads:
        if own is not None and pad.warehouse_id == own:
            continue
        if home is not None and distance_m(pad.location, home.latlon) <= HOME_PAD_M:
            continue
        rel = pad.ground_alt_m - base if base is not None else 0.0
        out.append(Position(pad.location.lat, pad.location.lon, pad.ground_alt_m, rel))
    return out[:MAX_RALLY_POINTS]


async def secure_drone(
    ctx: MissionContext,
    drone: DroneControl,
    home: Position | None,
    cruise_alt_m: float,
    highest_alt_m: float | None = None,
) -> Secured:
    """Set the failsafe policy, read it back, upload and verify the fence and rally points.
    The fence holds every no-fly zone the flight must keep out of at any altitude up to
    ``highest_alt_m`` (default ``cruise_alt_m``: :func:`fleet.airspace.world_geofence`)."""
    vid = drone.vehicle_id
    policy = failsafe_policy(ctx.settings.safety, ctx.world, cruise_alt_m)
    for name in FAILSAFE_PARAMETERS:
        try:
            await drone.set_parameter(name, policy[name])
        except VehicleError as exc:
            raise SafetyCheckFailed(
                f"{vid}: failsafe parameter {name} cannot be set to {policy[name]:g}: "
                f"{exc.message}",
                vehicle_id=vid,
                parameter=name,
                expected=policy[name],
            ) from exc
    got: dict[str, float] = {}
    for name in FAILSAFE_PARAMETERS:
        value = await drone.get_parameter(name)
        if not same_value(value, policy[name]):
            raise SafetyCheckFailed(
                f"{vid}: failsafe parameter {name} reads {value:g} after being set to "
                f"{policy[name]:g}",
                vehicle_id=vid,
                parameter=name,
                expected=policy[name],
                actual=value,
            )
        got[name] = value
    top = cruise_alt_m if highest_alt_m is None else max(cruise_alt_m, highest_alt_m)
    fence = world_geofence(ctx.world, top)
    await drone.upload_geofence(fence)
    held = await drone.download_geofence()
    diff = fence_difference(fence, held)
    if diff:
        raise SafetyCheckFailed(
            f"{vid}: the geofence on the vehicle is not the one uploaded: {diff}",
            vehicle_id=vid,
            what="geofence",
        )
    points: list[Position] = []
    if ctx.settings.safety.rally_points:
        points = rally_points(ctx.world, home)
        await drone.upload_rally(points)
        back = await drone.download_rally()
        rdiff = rally_difference(points, back)
        if rdiff:
            raise SafetyCheckFailed(
                f"{vid}: the rally points on the vehicle are not the ones uploaded: {rdiff}",
                vehicle_id=vid,
                what="rally",
            )
    return Secured(got, len(fence.polygons), len(points))


def fence_difference(sent: Geofence, held: Geofence) -> str | None:
    """How ``held`` differs from ``sent`` (None: the same areas)."""
    if len(sent.polygons) != len(held.polygons) or len(sent.circles) != len(held.circles):
        return (
            f"{len(held.polygons)} polygon(s) and {len(held.circles)} circle(s) held, "
            f"{len(sent.polygons)} and {len(sent.circles)} uploaded"
        )
    for i, (a, b) in enumerate(zip(sent.polygons, held.polygons, strict=True)):
        if why := _polygon_difference(a, b):
            return f"polygon {i}: {why}"
    for i, (c, d) in enumerate(zip(sent.circles, held.circles, strict=True)):
        if (
            c.inclusion != d.inclusion
            or distance_m(LatLon(c.lat, c.lon), LatLon(d.lat, d.lon)) > COORD_TOLERANCE_M
            or not math.isclose(c.radius_m, d.radius_m, abs_tol=0.01)
        ):
            return f"circle {i} differs"
    return None


def _polygon_difference(a: FencePolygon, b: FencePolygon) -> str | None:
    if a.inclusion != b.inclusion:
        return "inclusion differs"
    if len(a.vertices) != len(b.vertices):
        return f"{len(b.vertices)} vertices held, {len(a.vertices)} uploaded"
    for j, (p, q) in enumerate(zip(a.vertices, b.vertices, strict=True)):
        if distance_m(LatLon(*p), LatLon(*q)) > COORD_TOLERANCE_M:
            return f"vertex {j} held at {q}, uploaded {p}"
    return None


def rally_difference(sent: list[Position], held: list[Position]) -> str | None:
    """How the held rally points differ from those sent (None: the same)."""
    if len(sent) != len(held):
        return f"{len(held)} held, {len(sent)} uploaded"
    for i, (p, q) in enumerate(zip(sent, held, strict=True)):
        if distance_m(p.latlon, q.latlon) > COORD_TOLERANCE_M or not math.isclose(
            p.rel_alt, q.rel_alt, abs_tol=RALLY_ALT_TOLERANCE_M
        ):
            return (
                f"point {i} held at ({q.lat}, {q.lon}, {q.rel_alt:g} m), uploaded ({p.lat}, "
                f"{p.lon}, {p.rel_alt:g} m)"
            )
    return None


def check_airspace(world: World, plan: FlightPlan, home: LatLon) -> None:
    """Raise ``PlanningError`` naming the first leg or item that breaks an airspace rule."""
    bad = plan_violations(world, plan, home)
    if bad:
        raise PlanningError(
            "; ".join(v.message for v in bad[:3]),
            item=bad[0].item,
            rule=bad[0].rule,
        )
