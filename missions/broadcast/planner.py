"""Coverage planning of a broadcast: lanes, speed, loops, drones, and the predicted coverage.

Given the target polygon, the clip and the speaker model, :func:`plan_broadcast` produces one
:class:`fleet.drone.FlightPlan` per drone such that every point of the area hears the whole
message ``repeats`` times, and checks it on a grid *before flight*:

1. **Audible radius** ``R`` at the flight altitude and volume (:mod:`.acoustics`); lanes are
   at most ``2R`` apart, spread evenly across the polygon (:mod:`.lanes`), clipped to the
   polygon shrunk by a boundary margin and to the airspace outside no-fly zones (grown by
   ``no_fly_margin_m``) that apply at that altitude (or just above their ceilings).
2. **Speed.** A listener ``d`` metres across from a lane is in range over a chord
   ``2·sqrt(R² - d²)``; to hear ``k`` complete plays whatever the phase of the loop it must
   stay in range ``k·period + duration`` seconds. The mean lane speed is chosen so that this
   holds for every listener up to half a lane spacing across, but at most ``q·R``
   (``design_quantile``, 0.97): with lanes a full ``2R`` apart that leaves only a thin strip
   between lanes to the margin of the coverage target.
3. **Loops.** When that speed would fall below ``min_mean_speed_mps``, the pattern is flown in
   several passes (back and forth), each delivering ``ceil(repeats / loops)`` hearings.
4. **Stop and go.** A flight plan has waypoints with hold times but no speed item, so the mean
   speed is realised as stations every few metres along each lane, each held for
   ``spacing / speed`` seconds; lane ends get an extra half requirement so that listeners
   beyond the end of a lane also hear enough. Holding dominates, so the actual mean speed
   never exceeds the planned one whatever the drone's cruise speed.
5. **Drones.** Stations are cut into contiguous shares of equal broadcast time, as few as let
   every drone's flight (take-off, transits around no-fly zones, lanes, landing) fit within
   ``max_flight_s``; each share goes to the nearest free drone. When every drone has a share
   and the flights are still too long, further shares are later **sorties** (at most
   ``max_sorties`` per drone): the drone back first lands, has its battery swapped and flies
   the next share from its pad.
6. **Prediction.** The flight of every drone is simulated (:mod:`.timeline`), the payload's
   playback rules applied (:mod:`.playback`) and hear counts computed on a grid
   (:mod:`.coverage`). Below ``target_coverage`` the plan is slowed down and tried again; if it
   still falls short a :class:`fleet.errors.PlanningError` says by how much.

Why this module is longer than the project's ~600-line guide: it is one pipeline (the six
steps above) over one private station type; its pieces (lanes, timeline, playback, coverage)
already live in their own modules, and what is left are the steps that pass stations to each
other, which read best in order in one file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from fleet.airspace import Router, router_for
from fleet.drone import FlightItem, FlightPlan, ReturnToLaunch, Takeoff, Waypoint
from fleet.errors import PlanningError, ValidationError
from fleet.speaker import BroadcastArea, PlaybackRecord, PlaybackSample, PlaySpec
from fleet.world import World
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.coverage import Grid, IntArray, Play, covered_fraction, hear_counts
from missions.broadcast.lanes import (
    Segment,
    boustrophedon,
    lane_segments,
    lane_spacing,
    sweep_angle,
)
from missions.broadcast.playback import predict_plays
from missions.broadcast.request import ResolvedArea
from missions.broadcast.timeline import Kinematics, RoutePoint, Track, simulate

MIN_AUDIBLE_RADIUS_M = 5.0
"""Below this audible radius a broadcast is not worth flying."""
MAX_LEG_M = 400.0
"""Transit legs are cut into pieces no longer than this: PX4 refuses a first waypoint further
than ``MIS_DIST_1WP`` (900 m) from home, and older versions any two waypoints that far apart."""


@dataclass(frozen=True)
class BroadcastParams:
    """How a broadcast is flown and what it must achieve."""

    repeats: int = 2
    """Complete hearings every point of the area must get."""
    volume: int = 100
    altitude_m: float = 60.0
    """Flight altitude above the take-off pad (and the ground)."""
    period_s: float | None = None
    """Start-to-start period of the speaker's loop; None: clip duration + ``pause_s``."""
    pause_s: float = 2.0
    target_coverage: float = 0.95
    design_quantile: float = 0.97
    """Fraction of the half lane spacing within which the speed guarantees the hearings."""
    min_mean_speed_mps: float = 0.3
    kinematics: Kinematics = field(default_factory=Kinematics)
    max_flight_s: float = 1500.0
    """Longest flight of one drone, take-off to landing (battery with reserve)."""
    drones: int | None = None
    """Use exactly this many drones (None: as few as endurance allows)."""
    max_sorties: int = 1
    """Flights one drone may make for one broadcast, landing on its pad for a battery swap
    in between: shares beyond the drones given are flown as later sorties."""
    boundary_margin_m: float = 3.0
    """Lanes stay this far inside the polygon so the payload does not flicker at the edge."""
    no_fly_margin_m: float = 20.0
    station_spacing_m: float | None = None
    """Distance between stop-and-go stations (None: a quarter of the design chord, 3..25 m)."""
    station_acceptance_m: float = 2.0
    """Waypoint acceptance radius of stations."""
    min_alt_fraction: float = 0.8
    """The payload is silent below this fraction of the flight altitude (climb, descent)."""
    cell_m: float | None = None
    """Prediction grid cell (None: automatic)."""
    max_refinements: int = 6
    """Slow-downs tried when the prediction falls short."""

    def __post_init__(self) -> None:
        if not 1 <= self.repeats <= 20:
            raise ValidationError("repeats must be within 1..20", field="repeats")
        if not 1 <= self.volume <= 100:
            raise ValidationError("volume must be within 1..100", field="volume")
        if not 5.0 <= self.altitude_m <= 500.0:
            raise ValidationError("altitude must be within 5..500 m", field="altitude_m")
        if not 0.0 < self.target_coverage <= 1.0:
            raise ValidationError("target must be within (0, 1]", field="target_coverage")
        if not 0.0 < self.design_quantile < 1.0:
            raise ValidationError("quantile must be within (0, 1)", field="design_quantile")
        if not 1 <= self.max_sorties <= 20:
            raise ValidationError("max_sorties must be within 1..20", field="max_sorties")


@dataclass(frozen=True, slots=True)
class DroneStart:
    """A drone available for the broadcast and where it takes off."""

    vehicle_id: str
    lat: float
    lon: float


@dataclass(frozen=True)
class DroneBroadcastPlan:
    """One drone's share of a broadcast."""

    vehicle_id: str
    flight_plan: FlightPlan
    play: PlaySpec
    """What to tell its speaker (play in the area until stopped)."""
    start: tuple[float, float]
    """Take-off point, local frame."""
    route: tuple[RoutePoint, ...]
    """Waypoints after take-off, local frame."""
    track: Track
    """Predicted flight, seconds from take-off."""
    plays: tuple[Play, ...]
    """Predicted plays, seconds from take-off."""
    stations: int
    loops: int
    sortie: int = 0
    """0: flown at once; n: the drone's (n+1)-th flight of this broadcast, after it has landed
    its previous one and had its battery swapped."""

    @property
    def duration_s(self) -> float:
        return self.track.duration_s

    @property
    def broadcast_s(self) -> float:
        """Predicted seconds of sound (complete or cut plays)."""
        return float(sum(p.end - p.start for p in self.plays))


@dataclass(frozen=True)
class BroadcastPlan:
    """Flight plans for every drone of a broadcast, with the figures they rest on."""

    area: ResolvedArea
    drones: tuple[DroneBroadcastPlan, ...]
    params: BroadcastParams
    model: SpeakerModel
    clip_duration_s: float
    period_s: float
    audible_radius_m: float
    slant_range_m: float
    lane_spacing_m: float
    lane_angle_deg: float
    """Lane direction, degrees counter-clockwise from east."""
    lanes: int
    lane_length_m: float
    mean_speed_mps: float
    station_spacing_m: float
    loops: int
    hearings_per_pass: int
    grid: Grid
    predicted_counts: IntArray
    predicted_coverage: float

    @property
    def duration_s(self) -> float:
        """Longest flight among the drones."""
        return max(d.duration_s for d in self.drones)

    @property
    def vehicles(self) -> tuple[str, ...]:
        """The drones (or pads) that fly it, each once, in share order."""
        return tuple(dict.fromkeys(d.vehicle_id for d in self.drones))

    def describe_flights(self) -> str:
        """\"3 flight(s) on 2 drone(s)\", or \"2 drone(s)\" when each drone flies once."""
        n, k = len(self.drones), len(self.vehicles)
        return f"{k} drone(s)" if n == k else f"{n} flights on {k} drone(s)"

    def summary(self) -> dict[str, Any]:
        """Plain figures for the API and the mission record."""
        return {
            "area_m2": round(self.area.area_m2, 1),
            "repeats": self.params.repeats,
            "volume": self.params.volume,
            "altitude_m": self.params.altitude_m,
            "clip_duration_s": round(self.clip_duration_s, 2),
            "period_s": round(self.period_s, 2),
            "audible_radius_m": round(self.audible_radius_m, 1),
            "lane_spacing_m": round(self.lane_spacing_m, 1),
            "lane_angle_deg": round(self.lane_angle_deg, 1),
            "lanes": self.lanes,
            "lane_length_m": round(self.lane_length_m, 1),
            "mean_speed_mps": round(self.mean_speed_mps, 3),
            "station_spacing_m": round(self.station_spacing_m, 1),
            "loops": self.loops,
            "hearings_per_pass": self.hearings_per_pass,
            "drones": [
                {
                    "vehicle_id": d.vehicle_id,
                    "duration_s": round(d.duration_s, 1),
                    "broadcast_s": round(d.broadcast_s, 1),
                    "stations": d.stations,
                    "waypoints": len(d.route),
                    "sortie": d.sortie,
                }
                for d in self.drones
            ],
            "predicted_coverage": round(self.predicted_coverage, 4),
            "target_coverage": self.params.target_coverage,
            "grid_cell_m": round(self.grid.cell_m, 2),
            "speaker_model": {
                k: round(v, 2)
                for k, v in self.model.describe(self.params.altitude_m, self.params.volume).items()
            },
        }


@dataclass(frozen=True, slots=True)
class _Station:
    x: float
    y: float
    base_hold: float
    """Hold representing the lane length around it."""
    seg_end: bool


def plan_broadcast(
    area: ResolvedArea,
    world: World,
    starts: Sequence[DroneStart],
    clip_duration_s: float,
    params: BroadcastParams | None = None,
    model: SpeakerModel | None = None,
) -> BroadcastPlan:
    """Plan a broadcast of a ``clip_duration_s`` clip over ``area`` with the drones ``starts``
    (see the module docstring); raises :class:`PlanningError` when no plan reaches the target.

    When no-fly zones with a ceiling keep the drone out of the area at the requested altitude,
    the altitudes just above those ceilings (within the world's ceiling) are tried next.
    """
    p = params or BroadcastParams()
    m = model or SpeakerModel()
    try:
        return _plan(area, world, starts, clip_duration_s, p, m)
    except PlanningError as first:
        tried: list[str] = []
        for alt in _altitudes_above_ceilings(area, world, p):
            try:
                return _plan(area, world, starts, clip_duration_s, replace(p, altitude_m=alt), m)
            except PlanningError as exc:
                tried.append(f"at {alt:g} m: {exc.message}")
        if not tried:
            raise
        raise PlanningError(
            f"{first.message}; above the no-fly ceilings: {'; '.join(tried)}", **first.fields
        ) from first


def _altitudes_above_ceilings(area: ResolvedArea, world: World, p: BroadcastParams) -> list[float]:
    """Altitudes 5 m above the ceilings of no-fly zones near the area, above the requested one."""
    near = area.polygon.buffer(p.no_fly_margin_m + 1.0)
    alts = {
        z.ceiling_m + 5.0
        for z in world.no_fly_zones
        if z.ceiling_m is not None
        and z.ceiling_m >= p.altitude_m
        and z.ceiling_m + 5.0 <= world.max_altitude_m
        and z.polygon.intersects(near)
    }
    return sorted(alts)


def _plan(
    area: ResolvedArea,
    world: World,
    starts: Sequence[DroneStart],
    clip_duration_s: float,
    p: BroadcastParams,
    m: SpeakerModel,
) -> BroadcastPlan:
    if not starts:
        raise PlanningError("no drone available for the broadcast")
    if clip_duration_s <= 0:
        raise ValidationError("the clip has no duration", field="clip_duration_s")
    period = p.period_s if p.period_s is not None else clip_duration_s + p.pause_s
    if period < clip_duration_s:
        raise ValidationError(
            f"period {period:g} s is shorter than the clip ({clip_duration_s:.1f} s)",
            field="period_s",
        )
    if p.altitude_m > world.max_altitude_m:
        raise PlanningError(
            f"altitude {p.altitude_m:g} m is above the ceiling of {world.name} "
            f"({world.max_altitude_m:g} m)",
            altitude_m=p.altitude_m,
        )
    radius = m.audible_radius_m(p.altitude_m, p.volume)
    slant = m.audible_slant_range_m(p.volume)
    if radius < MIN_AUDIBLE_RADIUS_M:
        raise PlanningError(
            f"at {p.altitude_m:g} m and volume {p.volume} % the speaker is audible only "
            f"{radius:.1f} m around (slant range {slant:.0f} m): fly lower or louder",
            audible_radius_m=radius,
        )
    polygon = area.polygon
    router = router_for(world, p.altitude_m, p.no_fly_margin_m)
    flyable = _flyable(polygon, world.area, router.blocked, p.boundary_margin_m)
    angle = sweep_angle(polygon)
    spacing = lane_spacing(polygon, 2.0 * radius, angle)
    lanes = lane_segments(polygon, flyable, 2.0 * radius, angle)
    if not lanes:
        raise PlanningError(
            "no lane of the area can be flown (no-fly zones cover it)", area=area.name
        )
    order = boustrophedon(lanes)
    lane_length = sum(s.length for s in order)

    n = p.repeats
    # listeners up to half a lane spacing across (at most q·R) must hear every pass in full
    design_offset = min(p.design_quantile * radius, spacing / 2.0)
    chord = 2.0 * math.sqrt(radius * radius - design_offset * design_offset)
    loops = 1
    while True:
        per_pass = math.ceil(n / loops)
        speed = chord / (per_pass * period + clip_duration_s)
        if speed >= p.min_mean_speed_mps or loops >= n:
            break
        loops += 1
    requirement = per_pass * period + clip_duration_s
    station_spacing = p.station_spacing_m or min(25.0, max(3.0, chord / 4.0))

    frame_start = [world.frame.to_xy(s.lat, s.lon) for s in starts]
    grid = Grid.build(polygon, p.cell_m)
    play_area = BroadcastArea(
        vertices=area.vertices, min_rel_alt_m=p.min_alt_fraction * p.altitude_m
    )
    play_spec = PlaySpec(area=play_area, repeats=0, period_s=period)

    slow = 1.0
    patches: list[tuple[float, float]] = []
    endurance_bound = False
    best: tuple[float, BroadcastPlan] | None = None
    for _ in range(max(1, p.max_refinements)):
        v = speed * slow
        stations = _stations(order, station_spacing, v, requirement / slow)
        stations = _insert(stations, patches, requirement / slow)
        drones = _assign(stations, frame_start, starts, router, p, v, requirement / slow, loops)
        plays_all: list[Play] = []
        drone_plans: list[DroneBroadcastPlan] = []
        for vehicle_id, start_xy, route, n_stations, sortie in drones:
            track = simulate(start_xy, p.altitude_m, route, p.kinematics)
            plays = predict_plays(
                track,
                polygon,
                clip_duration_s,
                period,
                slant,
                min_rel_alt_m=play_area.min_rel_alt_m,
            )
            plays_all.extend(plays)
            drone_plans.append(
                DroneBroadcastPlan(
                    vehicle_id=vehicle_id,
                    flight_plan=_flight_plan(world, route, p),
                    play=play_spec,
                    start=start_xy,
                    route=tuple(route),
                    track=track,
                    plays=tuple(plays),
                    stations=n_stations,
                    loops=loops,
                    sortie=sortie,
                )
            )
        counts = hear_counts(grid, plays_all)
        coverage = covered_fraction(counts, n)
        plan = BroadcastPlan(
            area=area,
            drones=tuple(drone_plans),
            params=p,
            model=m,
            clip_duration_s=clip_duration_s,
            period_s=period,
            audible_radius_m=radius,
            slant_range_m=slant,
            lane_spacing_m=spacing,
            lane_angle_deg=math.degrees(angle) % 180.0,
            lanes=len(lanes),
            lane_length_m=lane_length,
            mean_speed_mps=v,
            station_spacing_m=station_spacing,
            loops=loops,
            hearings_per_pass=per_pass,
            grid=grid,
            predicted_counts=counts,
            predicted_coverage=coverage,
        )
        longest = max(d.duration_s for d in drone_plans)
        if longest > p.max_flight_s:
            if best is not None:
                endurance_bound = True
                break
            raise PlanningError(
                f"the broadcast needs {longest:.0f} s of flight per sortie with "
                f"{len(drone_plans)} sortie(s) ({len(starts)} drone(s), at most "
                f"{p.max_sorties} each), more than the {p.max_flight_s:.0f} s a drone can fly: "
                "make more drones available, lower the repeats or split the area",
                needed_s=round(longest),
                drones=len(drone_plans),
            )
        if coverage >= p.target_coverage:
            return plan
        if best is None or coverage > best[0]:
            best = (coverage, plan)
        new = _patch_points(grid, counts, n, flyable, radius, patches)
        if new:
            patches.extend(new)
        else:
            slow *= 0.8
    assert best is not None
    coverage, plan = best
    blocked_share = float(polygon.intersection(router.blocked).area / polygon.area)
    hint = (
        f"; {blocked_share:.0%} of the area lies in no-fly zones or their margin"
        if blocked_share > 0.005
        else ""
    )
    if endurance_bound:
        hint += (
            f"; doing better needs more flight time than {len(starts)} drone(s) of "
            f"{p.max_flight_s:.0f} s in at most {p.max_sorties} sortie(s) each have"
        )
    raise PlanningError(
        f"predicted coverage {coverage:.1%} is below the target {p.target_coverage:.0%}{hint}",
        predicted_coverage=round(coverage, 4),
        target_coverage=p.target_coverage,
    )


def _flyable(
    polygon: Polygon, operating_area: Polygon, blocked: BaseGeometry, margin: float
) -> BaseGeometry:
    """The polygon shrunk by ``margin`` (less for thin polygons), minus blocked airspace."""
    for mg in (margin, margin / 2, margin / 4, 0.0):
        inner = polygon.buffer(-mg) if mg > 0 else polygon
        if not inner.is_empty and inner.area > 0:
            break
    fly = inner.intersection(operating_area)
    if not blocked.is_empty:
        # one metre more, so that stations never touch the grown zones (legs may not graze them)
        fly = fly.difference(blocked.buffer(1.0))
    return fly


def _stations(
    order: Sequence[Segment], spacing: float, speed: float, requirement: float
) -> list[_Station]:
    """Stop-and-go stations along the ordered segments (see module docstring, step 4)."""
    out: list[_Station] = []
    end_hold = requirement / 2.0
    for seg in order:
        if seg.length < 1e-6:
            out.append(_Station(seg.start[0], seg.start[1], requirement, True))
            continue
        k = max(1, math.ceil(seg.length / spacing))
        step = seg.length / k
        for i in range(k + 1):
            f = i / k
            x = seg.start[0] + f * (seg.end[0] - seg.start[0])
            y = seg.start[1] + f * (seg.end[1] - seg.start[1])
            end = i in (0, k)
            hold = (step / 2 if end else step) / speed + (end_hold if end else 0.0)
            out.append(_Station(x, y, hold, end))
    return out


def _patch_points(
    grid: Grid,
    counts: IntArray,
    required: int,
    flyable: BaseGeometry,
    radius: float,
    existing: Sequence[tuple[float, float]],
    limit: int = 40,
) -> list[tuple[float, float]]:
    """Hover stations for cells that fell short and that sound can reach from the flyable
    airspace: at the flyable point nearest each, greedily, one station per cluster."""
    short = np.flatnonzero(counts < required)
    if len(short) == 0 or flyable.is_empty:
        return []
    reach = 0.9 * radius
    handled = np.zeros(len(grid), dtype=bool)
    out: list[tuple[float, float]] = []
    for k in short:
        if handled[k]:
            continue
        cell = Point(float(grid.x[k]), float(grid.y[k]))
        near = nearest_points(flyable, cell)[0]
        if near.distance(cell) > reach:
            handled[k] = True
            continue
        p = (float(near.x), float(near.y))
        if any(math.dist(p, q) < 1.0 for q in (*existing, *out)):
            handled[k] = True
            continue
        out.append(p)
        d2 = (grid.x - p[0]) ** 2 + (grid.y - p[1]) ** 2
        handled |= d2 <= (0.6 * radius) ** 2
        if len(out) >= limit:
            break
    return out


def _insert(
    stations: list[_Station], points: Sequence[tuple[float, float]], hold: float
) -> list[_Station]:
    """Hover stations added where they lengthen the route least (cheapest insertion)."""
    out = list(stations)
    for x, y in points:
        new = _Station(x, y, hold, True)
        if not out:
            out.append(new)
            continue
        best_i, best_cost = len(out), math.dist((out[-1].x, out[-1].y), (x, y))
        for i in range(len(out) - 1):
            a, b = out[i], out[i + 1]
            cost = (
                math.dist((a.x, a.y), (x, y))
                + math.dist((x, y), (b.x, b.y))
                - math.dist((a.x, a.y), (b.x, b.y))
            )
            if cost < best_cost:
                best_i, best_cost = i + 1, cost
        out.insert(best_i, new)
    return out


def _split(stations: list[_Station], k: int) -> list[list[_Station]]:
    """Contiguous shares of about equal hold time, cut at a lane end when one is near (two
    speakers sounding out of step side by side are hard to understand)."""
    if k <= 1 or len(stations) <= 1:
        return [stations]
    holds = np.array([s.base_hold for s in stations])
    cum = np.cumsum(holds)
    total = float(cum[-1])
    # a cut "after i" may go after a lane's last station (seg_end and next one seg_end too)
    ends = [i for i in range(len(stations) - 1) if stations[i].seg_end and stations[i + 1].seg_end]
    cuts: list[int] = []
    for n in range(1, k):
        ideal = int(np.searchsorted(cum, total * n / k))
        window = 0.25 * total / k
        near = [i for i in ends if abs(float(cum[i]) - total * n / k) <= window]
        cut = min(near, key=lambda i: abs(float(cum[i]) - total * n / k)) if near else ideal
        cut = max(cut, cuts[-1] + 1 if cuts else 0)
        if cut >= len(stations) - 1:
            break
        cuts.append(cut)
    shares, lo = [], 0
    for c in cuts:
        shares.append(stations[lo : c + 1])
        lo = c + 1
    shares.append(stations[lo:])
    return [sh for sh in shares if sh]


def _assign(
    stations: list[_Station],
    starts_xy: list[tuple[float, float]],
    starts: Sequence[DroneStart],
    router: Router,
    p: BroadcastParams,
    speed: float,
    requirement: float,
    loops: int,
) -> list[tuple[str, tuple[float, float], list[RoutePoint], int, int]]:
    """Routes per share (vehicle, start, route, stations, sortie): as few shares as fit the
    endurance (or exactly ``p.drones``). The first ``len(starts)`` shares go one to a drone,
    each to the nearest free one; later shares are later sorties, each given to the drone that
    is back first (least flight so far), flown from its start after a battery swap."""
    if p.drones is not None:
        if not 1 <= p.drones <= len(starts):
            raise PlanningError(
                f"{p.drones} drones asked for, {len(starts)} available", drones=p.drones
            )
        counts = [p.drones]
    else:
        counts = list(range(1, len(starts) * p.max_sorties + 1))
    result: list[tuple[str, tuple[float, float], list[RoutePoint], int, int]] = []
    for k in counts:
        shares = _split(stations, min(k, len(stations)))
        free = list(range(len(starts)))
        flown = [0.0] * len(starts)
        sorties = [0] * len(starts)
        result = []
        longest = 0.0
        for share in shares:
            # the first wave: the nearest free drone to either end of the share; later
            # sorties: the drone back first, then the nearest
            pool = free or [min(range(len(starts)), key=lambda i: flown[i])]
            best_i, best_rev, best_d = pool[0], False, math.inf
            for i in pool:
                sx, sy = starts_xy[i]
                for rev, st in ((False, share[0]), (True, share[-1])):
                    d = math.hypot(st.x - sx, st.y - sy)
                    if d < best_d:
                        best_i, best_rev, best_d = i, rev, d
            if free:
                free.remove(best_i)
            seq = share[::-1] if best_rev else share
            route = _route(starts_xy[best_i], seq, router, requirement, loops)
            est = _estimate(starts_xy[best_i], route, p)
            longest = max(longest, est)
            result.append(
                (starts[best_i].vehicle_id, starts_xy[best_i], route, len(seq), sorties[best_i])
            )
            flown[best_i] += est
            sorties[best_i] += 1
        if longest <= p.max_flight_s:
            break
    return result


def _estimate(start: tuple[float, float], route: list[RoutePoint], p: BroadcastParams) -> float:
    return simulate(start, p.altitude_m, route, p.kinematics, dt=5.0).duration_s


def _route(
    start: tuple[float, float],
    share: list[_Station],
    router: Router,
    requirement: float,
    loops: int,
) -> list[RoutePoint]:
    """Pad → stations (``loops`` passes, back and forth) → above the pad, around no-fly zones."""
    end_hold = requirement / 2.0
    route: list[RoutePoint] = []
    pos = start
    for n in range(loops):
        seq = share if n % 2 == 0 else share[::-1]
        for i, st in enumerate(seq):
            hold = st.base_hold
            # the ends of a share are lane ends for listeners, whatever the lane
            if (i == 0 or i == len(seq) - 1) and not st.seg_end:
                hold += end_hold
            if n > 0 and i == 0:
                # the turn-around station of a back-and-forth pass was just held
                continue
            path = _subdivide(router.path(pos, (st.x, st.y)))
            route.extend(RoutePoint(q[0], q[1]) for q in path[1:-1])
            route.append(RoutePoint(st.x, st.y, hold_s=hold, station=True))
            pos = (st.x, st.y)
    route.extend(RoutePoint(q[0], q[1]) for q in _subdivide(router.path(pos, start))[1:])
    if not route or (route[-1].x, route[-1].y) != start:
        route.append(RoutePoint(start[0], start[1]))
    return route


def _subdivide(path: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The polyline with legs longer than :data:`MAX_LEG_M` cut into equal pieces."""
    out = [path[0]]
    for a, b in itertools.pairwise(path):
        n = max(1, math.ceil(math.dist(a, b) / MAX_LEG_M))
        out.extend(
            (a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(1, n)
        )
        out.append(b)
    return out


def _flight_plan(world: World, route: Sequence[RoutePoint], p: BroadcastParams) -> FlightPlan:
    items: list[FlightItem] = [Takeoff(rel_alt=p.altitude_m)]
    for rp in route:
        lat, lon = world.frame.to_latlon(rp.x, rp.y)
        items.append(
            Waypoint(
                lat=lat,
                lon=lon,
                rel_alt=p.altitude_m,
                hold_s=round(rp.hold_s, 2),
                acceptance_m=p.station_acceptance_m if rp.station else None,
            )
        )
    items.append(ReturnToLaunch())
    return FlightPlan(tuple(items))


def track_to_world(
    track: Track, world: World, t0: float
) -> list[tuple[float, float, float, float]]:
    """A predicted track as (epoch time, lat, lon, height) rows, starting at ``t0``."""
    rows = []
    for t, x, y, z in zip(track.t, track.x, track.y, track.z, strict=True):
        lat, lon = world.frame.to_latlon(float(x), float(y))
        rows.append((t0 + float(t), lat, lon, float(z)))
    return rows


def counts_histogram(counts: IntArray) -> dict[int, int]:
    """Number of cells per hear count."""
    values, freq = np.unique(counts, return_counts=True)
    return {int(v): int(f) for v, f in zip(values, freq, strict=True)}


def predicted_records(
    plan: BroadcastPlan, world: World, t0: float, sample_s: float = 1.0
) -> list[PlaybackRecord]:
    """The plays the plan predicts, as the payloads would record them (epoch times from
    take-off at ``t0``): to preview a plan with :func:`missions.broadcast.report.build_report`."""
    out: list[PlaybackRecord] = []
    for d in plan.drones:
        for seq, play in enumerate(d.plays):
            n = max(2, math.ceil((play.end - play.start) / sample_s) + 1)
            ts = np.linspace(play.start, play.end, n)
            samples = []
            for t in ts:
                x = float(np.interp(t, play.t, play.x))
                y = float(np.interp(t, play.t, play.y))
                z = float(np.interp(t, play.t, play.z))
                lat, lon = world.frame.to_latlon(x, y)
                samples.append(PlaybackSample(t0 + float(t), lat, lon, z))
            out.append(
                PlaybackRecord(
                    payload_id=f"predicted-{d.vehicle_id}",
                    session_id="predicted",
                    seq=seq,
                    clip_sha256="0" * 64,
                    started_at=t0 + play.start,
                    ended_at=t0 + play.end,
                    completed=play.completed,
                    volume=plan.params.volume,
                    samples=tuple(samples),
                    end_reason="completed" if play.completed else "left_area",
                )
            )
    return out
