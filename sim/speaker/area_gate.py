"""Whether the simulated speaker payload may sound: its drone's positions against the area.

The playback rules of ``docs/protocols/speaker.md`` ("Playback rules") in geometry: the payload
sounds only while its drone is inside the session's area polygon and at least ``min_rel_alt_m``
above its take-off point, now and ``lookahead_s`` later if the drone keeps its velocity.
:class:`AreaGate` keeps the positions the payload read at its last ticks (the velocity comes
from them), answers that question (:meth:`AreaGate.check`), replays the checks a late tick
missed (:meth:`AreaGate.missed_stop`) and interpolates positions between two ticks for the
playback records. It does no I/O and reads no clock: the payload (:mod:`sim.speaker.payload`)
passes the times in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import shapely
from shapely.geometry import Polygon

from firmware_bridges.speaker import wire
from fleet.geo import LocalFrame

Sample = tuple[float, float, float, float]
"""``(t, lat, lon, rel_alt)``: one position of a playback record."""
HISTORY_S = 1.5
"""Positions kept for the velocity (world seconds), plus one before them."""
MIN_BASELINE_S = 0.3
"""Shortest time between the two positions the velocity is estimated from."""


@dataclass(frozen=True, slots=True)
class HostFix:
    """Where the drone carrying the payload is (its flight controller's estimate)."""

    lat: float
    lon: float
    rel_alt: float
    """Metres above its take-off point."""
    t: float | None = None
    """World time (``clock.time()``) at which the drone was there; None: now."""


PositionSource = Callable[[], HostFix | None]
"""Reads the host drone's position; None when it has none."""


def follow(vehicle: object) -> PositionSource:
    """A position source reading a :class:`sim.drone.vehicle.SimVehicle` in this process."""
    # a sim.drone SimVehicle, taken as object so that this module does not import sim.drone
    ap = vehicle.ap  # type: ignore[attr-defined]

    def fix() -> HostFix | None:
        lat, lon = ap.latlon()
        return HostFix(lat, lon, float(ap.rel_alt()), ap.kin_time)

    return fix


@dataclass
class PlaySession:
    """A broadcast session (``play_area``): its area and what it has played so far."""

    session_id: str
    polygon: Polygon
    """The area in ``frame`` (metres)."""
    frame: LocalFrame
    repeats: int
    period_s: float | None
    min_rel_alt_m: float
    plays_started: int = 0
    plays_completed: int = 0
    first_seq: int = -1
    last_seq: int = -1
    next_start: float = float("-inf")


def play_session(
    session_id: str, data: wire.PlayAreaData, period_s: float | None
) -> PlaySession | None:
    """The session a ``play_area`` command asks for; None when its area is not a simple polygon.

    The area is projected on a local frame at its first vertex.
    """
    first_lat, first_lon = data.area[0]
    frame = LocalFrame(first_lat, first_lon)
    polygon = Polygon([frame.to_xy(lat, lon) for lat, lon in data.area])
    if not polygon.is_valid or polygon.area <= 0:
        return None
    return PlaySession(
        session_id=session_id,
        polygon=polygon,
        frame=frame,
        repeats=data.repeats,
        period_s=period_s,
        min_rel_alt_m=data.min_rel_alt_m,
    )


def where(session: PlaySession, f: HostFix) -> tuple[bool, str]:
    """Whether the position ``f`` may sound (inside the area and high enough), and why not."""
    if f.rel_alt < session.min_rel_alt_m:
        return False, wire.EndReason.TOO_LOW.value
    x, y = session.frame.to_xy(f.lat, f.lon)
    if not shapely.contains_xy(session.polygon, x, y):
        return False, wire.EndReason.LEFT_AREA.value
    return True, ""


class AreaGate:
    """The payload's view of its drone between ticks (see the module docstring)."""

    def __init__(self, tick_s: float, lookahead_s: float) -> None:
        self.tick_s = tick_s
        """World seconds between two ticks of the payload."""
        self.lookahead_s = lookahead_s
        """Silent when the drone, keeping its velocity, would be outside this much later."""
        self.prev_fix: HostFix | None = None
        """The position read at the previous tick."""
        self.prev_t = float("-inf")
        """World time of the previous tick."""
        self._history: deque[tuple[float, HostFix]] = deque()

    def check(self, session: PlaySession, fix: HostFix | None, now: float) -> tuple[bool, str]:
        """Whether the payload may sound now, and if not why (``left_area``/``too_low``).

        It looks ahead: the drone must be inside now and still be inside ``lookahead_s`` later
        if it keeps its velocity (estimated over the last second of positions), so that the
        payload falls silent before the drone crosses the boundary, whatever the jitter of its
        own loop or of the flight controller's position updates. A position older than now
        (``HostFix.t``) is projected from when it held, ``lookahead_s`` past now.
        """
        if fix is None:
            return False, wire.EndReason.LEFT_AREA.value
        # a position can be older than now (the simulator steps its drones less often than the
        # payload checks, and later under load): look ahead from when it held
        t_fix = now if fix.t is None else min(now, fix.t)
        ahead = fix
        old = [(t, f) for t, f in self._history if t_fix - t >= MIN_BASELINE_S]
        if old:
            t0, f0 = old[-1]
            k = (self.lookahead_s + now - t_fix) / max(1e-6, t_fix - t0)
            ahead = HostFix(
                fix.lat + k * (fix.lat - f0.lat),
                fix.lon + k * (fix.lon - f0.lon),
                fix.rel_alt + k * (fix.rel_alt - f0.rel_alt),
            )
        for f in (fix, ahead):
            ok, why = where(session, f)
            if not ok:
                return ok, why
        return True, ""

    def missed_stop(
        self, session: PlaySession, now: float, fix: HostFix | None
    ) -> tuple[float, str] | None:
        """The first check the payload missed since its last tick that would have silenced it.

        The simulated payload shares an event loop with the simulator (and, in tests, with the
        service); when that loop runs late, its own 10 Hz checks (``tick_s``) come late too,
        which the device it models, on its own processor, would not suffer. So a late tick
        replays the checks it missed along the path flown since the previous tick (interpolated,
        as :meth:`interpolate`): at each, the drone must be inside and high enough, and still be
        ``lookahead_s`` later (or now, whichever comes first). Returns (time, reason) of the
        first that fails, or None.
        """
        prev = self.prev_fix
        t_prev = self.prev_t
        if fix is None or prev is None or now - t_prev <= 1.5 * self.tick_s:
            return None
        t = t_prev + self.tick_s
        while t < now:
            for at in (t, min(now, t + self.lookahead_s)):
                _, lat, lon, alt = self.interpolate(at, now, fix)
                ok, why = where(session, HostFix(lat, lon, alt))
                if not ok:
                    return t, why
            t += self.tick_s
        return None

    def advance(self, now: float, fix: HostFix | None) -> None:
        """End of a tick at ``now``: ``fix`` becomes the previous position."""
        self.prev_fix, self.prev_t = fix, now
        if fix is None:
            return
        t = now if fix.t is None else min(now, fix.t)
        if self._history and self._history[-1][0] >= t:
            return  # the same position as at the last tick
        self._history.append((t, fix))
        # keep the last second and a half, and one position before it (positions may come
        # that seldom), for the velocity
        while len(self._history) > 1 and t - self._history[1][0] > HISTORY_S:
            self._history.popleft()

    def sample(self, t: float, fix: HostFix | None) -> Sample:
        """``fix`` (or the previous position) as a record sample at ``t``."""
        f = fix or self.prev_fix
        if f is None:
            raise RuntimeError("no position")
        return (t, f.lat, f.lon, f.rel_alt)

    def interpolate(self, t: float, now: float, fix: HostFix | None) -> Sample:
        """The position at ``t`` (between the previous tick and ``now``)."""
        prev = self.prev_fix
        if fix is None or prev is None or now <= 0:
            return self.sample(t, fix)
        t_prev = self.prev_t
        w = 1.0 if now <= t_prev else min(1.0, max(0.0, (t - t_prev) / (now - t_prev)))
        return (
            t,
            prev.lat + w * (fix.lat - prev.lat),
            prev.lon + w * (fix.lon - prev.lon),
            prev.rel_alt + w * (fix.rel_alt - prev.rel_alt),
        )
