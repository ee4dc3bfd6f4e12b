"""Strategic deconfliction: every drone flight reserves a 4D volume before it takes off.

A flight plan flown from its home becomes a list of :class:`Segment` (:func:`trajectory`): each
leg between two items is a horizontal line segment in the world's local frame, an altitude band
(the leg's lowest and highest altitude) and the time window the energy model's speeds predict
for it, relative to take-off. A reservation places those segments in absolute time and widens
each window: ``margin_s`` on both sides plus ``slack`` times the time elapsed since take-off on
both sides (estimates drift either way as a flight goes on), plus ``start_slack_s`` (the
take-off may slip that long after the reserved start: upload, arming).

Two segments **conflict** when their time windows overlap, their altitude bands are less than
``separation_v_m`` apart, and the horizontal distance between their lines is less than
``separation_h_m`` (each band and line first widened by how far a drone may stray from its
plan: ``vertical_error_m``, ``horizontal_error_m``, so that the separation holds between where
the drones actually are, not only between their plans), except in the terminal area of the
pads, laid out for simultaneous use (:func:`_pad_columns`, :func:`_terminal_exempt`): there a
take-off or landing column over one pad is kept apart from the flights of the other pads by the
pad spacing, as long as they do not come closer to it than their own pad is. A new flight is
given the earliest start at or after the time asked for, on the first altitude layer (of those
it offers, in its order of preference) at which it conflicts with no reservation; a layer that
lets it leave at once wins over a later start (:meth:`AirspaceBook.reserve`). The allowed
starts are found exactly: for each pair of conflicting segments the forbidden starts are one
interval, and the earliest start is the first point outside their union.

Reservations are released as flights progress (:meth:`AirspaceBook.progress`: the legs a drone
has passed; a drone running late shifts what it still has to fly) and when they end
(:meth:`AirspaceBook.release`). The book lives in memory, in one service process; a flight
followed again after a restart reserves what it still flies. ``docs/safety.md`` says what this
does not do (tactical avoidance, flights of other operators).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fleet import energy
from fleet.drone import FlightItem, FlightPlan, Land, ReturnToLaunch, Takeoff, Waypoint
from fleet.geo import LatLon
from fleet.world import World

XY = tuple[float, float]
"""A point in the world's local frame, metres."""


@dataclass(frozen=True, slots=True)
class Separation:
    """The separation the book keeps and how it widens time windows."""

    horizontal_m: float = 30.0
    vertical_m: float = 15.0
    margin_s: float = 10.0
    slack: float = 0.1
    start_slack_s: float = 15.0
    horizontal_error_m: float = 0.0
    """How far a drone may stray sideways from its planned line (track keeping)."""
    vertical_error_m: float = 0.0
    """How far a drone may stray from its planned altitude (altitude keeping)."""

    @property
    def horizontal_apart_m(self) -> float:
        """The distance two planned lines must keep: the separation plus both drones' errors."""
        return self.horizontal_m + 2.0 * self.horizontal_error_m

    @property
    def vertical_apart_m(self) -> float:
        """The gap two planned altitude bands must keep (also the step between layers)."""
        return self.vertical_m + 2.0 * self.vertical_error_m


@dataclass(frozen=True, slots=True)
class Segment:
    """One leg of a flight: a horizontal line, an altitude band, a time window."""

    a: XY
    b: XY
    lo_m: float
    hi_m: float
    t0: float
    """Start of the leg; relative to take-off in a trajectory, absolute in a reservation."""
    t1: float
    item: int
    """Index of the plan item the leg ends at."""
    pad: bool = False
    """Part of a take-off or landing column (a vertical leg from or to the ground)."""
    terminal: XY | None = None
    """A horizontal leg that leaves from or arrives over the column of the flight's own pad:
    that pad (the departure or the arrival of the flight, see :func:`_terminal_exempt`)."""


def item_target(
    world: World, item: FlightItem, here: XY, alt: float, home: XY
) -> tuple[XY, float, float] | None:
    """Where a plan item takes the vehicle from ``here`` at ``alt``: (position, altitude
    above home, hold seconds); None for an item that does not move it (a gripper, a speed)."""
    if isinstance(item, Takeoff):
        return here, (item.rel_alt if item.rel_alt is not None else alt), 0.0
    if isinstance(item, Waypoint):
        return world.xy(LatLon(item.lat, item.lon)), item.rel_alt, item.hold_s
    if isinstance(item, Land):
        if item.lat is not None and item.lon is not None:
            return world.xy(LatLon(item.lat, item.lon)), 0.0, 0.0
        return here, 0.0, 0.0
    if isinstance(item, ReturnToLaunch):
        return home, 0.0, 0.0
    return None


def trajectory(world: World, plan: FlightPlan, home: LatLon) -> list[Segment]:
    """The legs of ``plan`` flown from ``home`` with the energy model's speeds (take-off at
    0 s): climbs at :data:`fleet.energy.CLIMB_SPEED_MPS`, descents at ``DESCENT_SPEED_MPS``,
    cruise at ``CRUISE_SPEED_MPS``, holds as planned, take-off overhead first."""
    here = world.xy(home)
    home_xy = here
    alt = 0.0
    t = energy.TAKEOFF_OVERHEAD_S / 2
    out: list[Segment] = []
    for i, item in enumerate(plan.items):
        target = item_target(world, item, here, alt, home_xy)
        if target is None:
            continue
        to, to_alt, hold = target
        dz = to_alt - alt
        vertical = dz / energy.CLIMB_SPEED_MPS if dz > 0 else -dz / energy.DESCENT_SPEED_MPS
        horizontal = math.dist(here, to) / energy.CRUISE_SPEED_MPS
        if isinstance(item, Land | ReturnToLaunch) and here != to:
            # fly over at the current altitude, then descend
            out.append(Segment(here, to, alt, alt, t, t + horizontal, i))
            t += horizontal
            out += _column(to, alt, 0.0, t, vertical, i)
            t += vertical
        elif here == to and dz != 0:
            out += _column(to, alt, to_alt, t, vertical, i)
            t += vertical
            if hold:
                out.append(Segment(to, to, to_alt, to_alt, t, t + hold, i))
                t += hold
        else:
            dt = horizontal + vertical + hold
            # a long leg in pieces, each reserved for the time the drone spends along it
            n = max(1, math.ceil(math.dist(here, to) / PIECE_M))
            lo, hi = min(alt, to_alt), max(alt, to_alt)
            for k in range(n):
                a = _lerp(here, to, k / n)
                b = _lerp(here, to, (k + 1) / n)
                out.append(Segment(a, b, lo, hi, t + dt * k / n, t + dt * (k + 1) / n, i))
            t += dt
        here, alt = to, to_alt
    return _mark_terminal(out)


def _mark_terminal(segments: list[Segment]) -> list[Segment]:
    """Mark the horizontal legs that start or end over one of the flight's own take-off or
    landing columns with that column's pad (:attr:`Segment.terminal`)."""
    pads = list(dict.fromkeys(seg.a for seg in segments if seg.pad))
    out = []
    for seg in segments:
        if not seg.pad and seg.a != seg.b:
            end = next(
                (p for p in pads if min(math.dist(p, seg.a), math.dist(p, seg.b)) <= OVER_PAD_M),
                None,
            )
            if end is not None:
                seg = replace(seg, terminal=end)
        out.append(seg)
    return out


OVER_PAD_M = 1.0
"""A leg ending this close to a pad's column ends over it (the plan's approach waypoint over the
pad and the landing item are the same place up to the degE7 rounding)."""


PIECE_M = 60.0
"""A horizontal leg is reserved in pieces this long, each for the time the drone spends along
it (a leg that passes a pad is in the way of that pad's column only while it passes)."""
SLICE_M = 5.0
"""A vertical leg (a climb or a descent in place) is reserved in slices this tall, each for the
time the drone spends in it: a drone climbing from its pad is not in the way of one passing
15 m above until it gets there."""


def _lerp(a: XY, b: XY, u: float) -> XY:
    return (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)


def _column(at: XY, from_m: float, to_m: float, t: float, dt: float, item: int) -> list[Segment]:
    """A vertical leg from ``from_m`` to ``to_m`` taking ``dt`` s from ``t``, as slices."""
    span = abs(to_m - from_m)
    n = max(1, math.ceil(span / SLICE_M))
    pad = min(from_m, to_m) <= 0.0
    out = []
    for k in range(n):
        a = from_m + (to_m - from_m) * k / n
        b = from_m + (to_m - from_m) * (k + 1) / n
        t0, t1 = t + dt * k / n, t + dt * (k + 1) / n
        out.append(Segment(at, at, min(a, b), max(a, b), t0, t1, item, pad))
    return out


def _pad_columns(r: Segment, c: Segment) -> bool:
    """Two take-off or landing columns (vertical, from the ground) on distinct pads: pads are
    the terminal area, laid out for simultaneous use (the world file keeps them apart); the
    separation applies once a drone has left its column."""
    return r.pad and c.pad and r.a != c.a


def _terminal_exempt(r: Segment, c: Segment) -> bool:
    """The terminal area of the pads: a take-off or landing column on one pad against a leg of
    another flight departing from, or arriving over, another pad, when the leg never comes
    closer to that column than the two pads are apart. The pads are laid out for simultaneous
    use (the world file keeps them that far apart); a departure that turns away from its
    pad, or an arrival that comes in from away from the others, is never closer to a
    neighbouring column than it was on the ground. A leg that passes closer (over the other
    pad, or between the pads) is separated as any other, and so are two legs."""
    column, leg = (r, c) if r.pad else (c, r)
    if not column.pad or leg.pad or leg.terminal is None or leg.terminal == column.a:
        return False
    apart = math.dist(leg.terminal, column.a)
    return _point_seg(column.a, leg.a, leg.b) >= apart - 1e-6


def _seg_distance(p1: XY, p2: XY, q1: XY, q2: XY) -> float:
    """Shortest distance between segments p1p2 and q1q2."""
    if _intersect(p1, p2, q1, q2):
        return 0.0
    return min(
        _point_seg(p1, q1, q2),
        _point_seg(p2, q1, q2),
        _point_seg(q1, p1, p2),
        _point_seg(q2, p1, p2),
    )


def _point_seg(p: XY, a: XY, b: XY) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    n = dx * dx + dy * dy
    if n == 0.0:
        return math.dist(p, a)
    u = max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / n))
    return math.dist(p, (ax + u * dx, ay + u * dy))


def _orient(a: XY, b: XY, c: XY) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _intersect(p1: XY, p2: XY, q1: XY, q2: XY) -> bool:
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    return ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4))


@dataclass(frozen=True, slots=True)
class Reservation:
    """A flight's reserved volume: its segments in absolute time, windows widened."""

    flight_id: str
    vehicle_id: str
    segments: tuple[Segment, ...]
    start: float
    """The reserved take-off time."""
    layer_m: float | None
    """The altitude layer it was given (None: the plan's own altitudes)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """What :meth:`AirspaceBook.reserve` gave a flight."""

    start: float
    option: int
    """Index of the chosen option (altitude layer) among those offered."""
    layer_m: float | None
    waited_for: tuple[str, ...]
    """Flights whose reservations made it start later or change layer."""


@dataclass(frozen=True, slots=True)
class Option:
    """One way to fly: an altitude layer and the trajectory at it (relative times)."""

    layer_m: float | None
    segments: tuple[Segment, ...]


class AirspaceBook:
    """The reservations of every drone flight of one service (thread-safe)."""

    def __init__(self, separation: Separation | None = None) -> None:
        self.separation = separation or Separation()
        self._flights: dict[str, Reservation] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._flights)

    def get(self, flight_id: str) -> Reservation | None:
        return self._flights.get(flight_id)

    def reservations(self) -> list[Reservation]:
        with self._lock:
            return list(self._flights.values())

    def _widen(self, seg: Segment, start: float) -> Segment:
        s = self.separation
        return replace(
            seg,
            t0=start + seg.t0 * (1.0 - s.slack) - s.margin_s,
            t1=start + s.start_slack_s + seg.t1 * (1.0 + s.slack) + s.margin_s,
        )

    def _forbidden(
        self, option: Option, exclude: str, vehicle_id: str = ""
    ) -> list[tuple[float, float, str]]:
        """Start times at which ``option`` would conflict: (from, to, flight id) intervals
        (the flight's own reservation, and those of the same vehicle, do not count)."""
        s = self.separation
        out: list[tuple[float, float, str]] = []
        for res in self._flights.values():
            if res.flight_id == exclude or (vehicle_id and res.vehicle_id == vehicle_id):
                continue
            for r in res.segments:
                for c in option.segments:
                    if max(r.lo_m - c.hi_m, c.lo_m - r.hi_m) >= s.vertical_apart_m:
                        continue
                    if _pad_columns(r, c) or _terminal_exempt(r, c):
                        continue
                    if _seg_distance(r.a, r.b, c.a, c.b) >= s.horizontal_apart_m:
                        continue
                    # candidate window [S + c.t0*(1-k) - m, S + slack_s + c.t1*(1+k) + m]
                    # overlaps [r.t0, r.t1] for S in (lo, hi)
                    lo = r.t0 - (s.start_slack_s + c.t1 * (1.0 + s.slack) + s.margin_s)
                    hi = r.t1 - (c.t0 * (1.0 - s.slack) - s.margin_s)
                    out.append((lo, hi, res.flight_id))
        return out

    def conflicts(self, option: Option, start: float, exclude: str = "") -> list[str]:
        """Flights ``option`` flown from ``start`` would conflict with."""
        with self._lock:
            return sorted(
                {fid for lo, hi, fid in self._forbidden(option, exclude) if lo < start < hi}
            )

    def reserve(
        self,
        flight_id: str,
        vehicle_id: str,
        options: Sequence[Option],
        earliest: float,
        *,
        latest: float | None = None,
        force: bool = False,
    ) -> Slot | None:
        """Reserve the earliest conflict-free start at or after ``earliest`` (a start now on
        any layer first, then the earliest start on any layer; ties go to the first option).
        None when no start before ``latest`` is free (nothing is reserved then). With
        ``force`` the first option is reserved from ``earliest`` whatever it crosses (a flight
        already in the air)."""
        if not options:
            raise ValueError("no option to reserve")
        with self._lock:
            if force:
                return self._book(flight_id, vehicle_id, options, 0, earliest, ())
            best: tuple[float, int, tuple[str, ...]] | None = None
            for i, option in enumerate(options):
                intervals = sorted(self._forbidden(option, flight_id, vehicle_id))
                start = earliest
                crossed: list[str] = []
                for lo, hi, fid in intervals:
                    if hi <= start:
                        continue
                    if lo >= start:
                        break
                    start = hi
                    crossed.append(fid)
                if best is None or start < best[0] - 1e-9:
                    best = (start, i, tuple(dict.fromkeys(crossed)))
                if start <= earliest + 1e-9:
                    break  # leaves at once on this layer
            assert best is not None
            start, i, blockers = best
            if latest is not None and start > latest:
                return None
            if i > 0:
                # the layers below were taken: name who holds them
                held = {fid for _, _, fid in self._forbidden(options[0], flight_id, vehicle_id)}
                blockers = tuple(dict.fromkeys([*sorted(held), *blockers]))
            return self._book(flight_id, vehicle_id, options, i, start, blockers)

    def _book(
        self,
        flight_id: str,
        vehicle_id: str,
        options: Sequence[Option],
        index: int,
        start: float,
        blockers: tuple[str, ...],
    ) -> Slot:
        option = options[index]
        segments = tuple(self._widen(seg, start) for seg in option.segments)
        self._flights[flight_id] = Reservation(
            flight_id, vehicle_id, segments, start, option.layer_m
        )
        return Slot(start, index, option.layer_m, blockers)

    def progress(self, flight_id: str, item: int, now: float) -> None:
        """The flight now flies the leg to ``item`` at world time ``now``: the legs before it
        are released; if it is on this leg later than its window, what it still has to fly
        moves later by the lag."""
        with self._lock:
            res = self._flights.get(flight_id)
            if res is None:
                return
            left = [seg for seg in res.segments if seg.item >= item]
            if left and now > left[0].t1:
                lag = now - left[0].t1 + self.separation.margin_s
                left = [replace(seg, t0=seg.t0, t1=seg.t1 + lag) for seg in left]
            self._flights[flight_id] = replace(res, segments=tuple(left))

    def release(self, flight_id: str) -> None:
        """The flight is over (landed, or never took off)."""
        with self._lock:
            self._flights.pop(flight_id, None)


def layers(base_m: float, ceiling_m: float, step_m: float, count: int) -> list[float]:
    """Altitude layers for a flight cruising at ``base_m``: the base first, then ``step_m``
    above each other up to ``ceiling_m`` (at most ``count`` in all)."""
    out = [base_m]
    alt = base_m + step_m
    while len(out) < count and alt <= ceiling_m + 1e-9:
        out.append(alt)
        alt += step_m
    return out
