"""The speaker payload's playback rules applied to a predicted track: which plays will sound.

These are the rules a payload follows (``docs/protocols/speaker.md``, "Playback rules"), so
that the planner predicts what the payload will do:

1. While a broadcast is active the payload sounds only when its drone is inside the area
   polygon and at least ``min_rel_alt_m`` above its take-off point, now and ``lookahead_s``
   (1 s) later if it keeps its velocity.
2. Entering (or re-entering) the area starts a play at once.
3. A play that sounds its whole clip (``duration_s``) is *completed*; the next one starts
   ``period_s`` after the start of the previous one (at once when the period equals the
   duration) if the drone is still inside.
4. About to leave the area (or to drop below ``min_rel_alt_m``) cuts the current play: the
   payload looks ahead and falls silent before the boundary. The play is not completed.
5. With ``repeats`` > 0 the broadcast ends after that many completed plays.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

from missions.broadcast.coverage import Play
from missions.broadcast.timeline import Track


def predict_plays(
    track: Track,
    area: Polygon,
    duration_s: float,
    period_s: float,
    slant_range_m: float,
    *,
    min_rel_alt_m: float = 0.0,
    repeats: int = 0,
    lookahead_s: float = 1.0,
) -> list[Play]:
    """Plays the payload makes along ``track`` (rules in the module docstring)."""
    if period_s < duration_s:
        raise ValueError("the period is shorter than the clip")
    ahead_t = np.minimum(track.t + lookahead_s, track.t[-1])
    ax = np.interp(ahead_t, track.t, track.x)
    ay = np.interp(ahead_t, track.t, track.y)
    az = np.interp(ahead_t, track.t, track.z)
    inside = (
        shapely.contains_xy(area, track.x, track.y)
        & (track.z >= min_rel_alt_m)
        & shapely.contains_xy(area, ax, ay)
        & (az >= min_rel_alt_m)
    )
    t = track.t
    plays: list[Play] = []
    completed = 0
    playing = False
    start_t = 0.0
    next_start = -np.inf
    i = 0
    n = len(t)

    def make(end_t: float, done: bool) -> Play:
        lo = int(np.searchsorted(t, start_t, side="right"))
        hi = int(np.searchsorted(t, end_t, side="left"))
        ts = np.concatenate(([start_t], t[lo:hi], [end_t]))
        xs = np.interp(ts, t, track.x)
        ys = np.interp(ts, t, track.y)
        zs = np.interp(ts, t, track.z)
        return Play(start_t, end_t, done, ts, xs, ys, zs, slant_range_m)

    while i < n:
        if not playing:
            if inside[i] and t[i] >= next_start:
                playing = True
                # a play due between two samples while inside starts when it is due
                chained = i > 0 and inside[i - 1] and next_start > t[i - 1]
                start_t = float(next_start) if chained else float(t[i])
            i += 1
            continue
        end_t = start_t + duration_s
        if not inside[i] and t[i] <= end_t:
            # the payload looks ahead and falls silent at its last position inside
            end_t = max(start_t, float(t[i - 1]))
            if end_t > start_t:  # nothing sounded otherwise
                plays.append(make(end_t, False))
            playing, next_start = False, -np.inf
            continue  # re-examine this sample: a play starts only once back inside
        if t[i] >= end_t:
            plays.append(make(end_t, True))
            completed += 1
            playing = False
            next_start = start_t + period_s
            if repeats and completed >= repeats:
                break
            continue  # this sample may start the next play
        i += 1
    return plays
