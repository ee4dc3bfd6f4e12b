"""Proof of coverage: what a broadcast actually achieved, computed from what the payload recorded.

:func:`build_report` takes the :class:`fleet.speaker.PlaybackRecord` objects the speaker payload
reported (every play, completed or cut, with the positions of its drone sampled while it
sounded) and computes, on a grid over the target polygon (:mod:`.coverage`):

* how many complete plays each cell heard, and the fraction of the area that heard the
  message at least ``repeats`` times;
* when the broadcast sounded first and last, how many plays there were and how many were cut;
* whether anything sounded **outside the polygon**: recorded positions outside it, and the
  seconds and the greatest distance outside along the recorded path (positions interpolated
  between samples). Nothing is assumed: a payload that played outside shows here;
* gaps in the records' sequence numbers (records the service never received).

:func:`render_png` draws the covered cells, the polygon outline and the flight track.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry import Polygon

from fleet.geo import LocalFrame
from fleet.speaker import PlaybackRecord, records_in_order
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.coverage import Grid, IntArray, Play, covered_fraction, hear_counts

OUTSIDE_STEP_S = 0.1
"""Interpolation step when measuring playback outside the polygon."""

TrackRow = tuple[float, float, float, float]
"""(epoch seconds, lat, lon, height above take-off) of the flight track."""


@dataclass(frozen=True)
class CoverageReport:
    """What a broadcast achieved (see module docstring)."""

    area_vertices: tuple[tuple[float, float], ...]
    area_m2: float
    repeats_required: int
    grid: Grid
    counts: IntArray
    """Complete plays heard, per grid cell."""
    covered_fraction: float
    """Share of cells that heard at least ``repeats_required`` complete plays."""
    heard_once_fraction: float
    """Share of cells that heard at least one complete play."""
    started_at: float | None
    ended_at: float | None
    plays_total: int
    plays_completed: int
    plays_cut: int
    sounding_s: float
    samples_total: int
    samples_outside: int
    playback_outside_s: float
    max_outside_m: float
    missing_seqs: tuple[int, ...]
    payload_ids: tuple[str, ...]
    track: tuple[TrackRow, ...]
    playback_path: tuple[tuple[float, float], ...]
    """Recorded positions while sounding, local frame (for the map)."""
    frame: LocalFrame

    @property
    def no_playback_outside(self) -> bool:
        """True when no recorded position and no interpolated moment of sound lies outside."""
        return self.samples_outside == 0 and self.playback_outside_s == 0.0

    def histogram(self) -> dict[int, int]:
        values, freq = np.unique(self.counts, return_counts=True)
        return {int(v): int(f) for v, f in zip(values, freq, strict=True)}

    def to_dict(self, cells: bool = True) -> dict[str, Any]:
        """Plain data for the API (``cells`` lists [ix, iy, count] per grid cell)."""

        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat()

        olat, olon = self.frame.to_latlon(*self.grid.origin)
        out: dict[str, Any] = {
            "area_m2": round(self.area_m2, 1),
            "repeats_required": self.repeats_required,
            "covered_fraction": round(self.covered_fraction, 4),
            "heard_once_fraction": round(self.heard_once_fraction, 4),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "plays": {
                "total": self.plays_total,
                "completed": self.plays_completed,
                "cut": self.plays_cut,
                "sounding_s": round(self.sounding_s, 1),
            },
            "outside": {
                "no_playback_outside": self.no_playback_outside,
                "samples_total": self.samples_total,
                "samples_outside": self.samples_outside,
                "playback_outside_s": round(self.playback_outside_s, 2),
                "max_outside_m": round(self.max_outside_m, 2),
            },
            "missing_records": list(self.missing_seqs),
            "payload_ids": list(self.payload_ids),
            "hear_count_histogram": {str(k): v for k, v in self.histogram().items()},
            "grid": {
                "cell_m": round(self.grid.cell_m, 3),
                "cells_total": len(self.grid),
                "origin": {"lat": olat, "lon": olon},
            },
        }
        if cells:
            out["grid"]["cells"] = [
                [int(i), int(j), int(c)]
                for i, j, c in zip(self.grid.ix, self.grid.iy, self.counts, strict=True)
            ]
        return out


def record_to_play(record: PlaybackRecord, frame: LocalFrame, model: SpeakerModel) -> Play:
    """A recorded play in the local frame, with the audible range at its volume."""
    ts = np.array([s.t for s in record.samples], dtype=np.float64)
    xy = [frame.to_xy(s.lat, s.lon) for s in record.samples]
    xs = np.array([p[0] for p in xy], dtype=np.float64)
    ys = np.array([p[1] for p in xy], dtype=np.float64)
    zs = np.array([s.rel_alt for s in record.samples], dtype=np.float64)
    slant = model.audible_slant_range_m(record.volume) if record.volume > 0 else 0.0
    return Play(record.started_at, record.ended_at, record.completed, ts, xs, ys, zs, slant)


def _outside(play: Play, polygon: Polygon) -> tuple[int, float, float]:
    """(samples outside, seconds outside, greatest distance outside) of one play."""
    if len(play.t) == 0:
        return 0, 0.0, 0.0
    inside = shapely.contains_xy(polygon, play.x, play.y) | shapely.intersects_xy(
        polygon.boundary, play.x, play.y
    )
    n_out = int(np.count_nonzero(~inside))
    seconds = 0.0
    worst = 0.0
    if len(play.t) >= 2:
        span = float(play.t[-1] - play.t[0])
        n = max(2, math.ceil(span / OUTSIDE_STEP_S) + 1)
        tt = np.linspace(play.t[0], play.t[-1], n)
        xx = np.interp(tt, play.t, play.x)
        yy = np.interp(tt, play.t, play.y)
        ins = shapely.contains_xy(polygon, xx, yy) | shapely.intersects_xy(polygon.boundary, xx, yy)
        # each step counts as outside when its middle is
        mx, my = (xx[1:] + xx[:-1]) / 2, (yy[1:] + yy[:-1]) / 2
        mid_in = shapely.contains_xy(polygon, mx, my) | shapely.intersects_xy(
            polygon.boundary, mx, my
        )
        seconds = float(np.count_nonzero(~mid_in)) * (span / (n - 1))
        if not ins.all():
            pts = shapely.points(xx[~ins], yy[~ins])
            worst = float(np.max(shapely.distance(polygon, pts)))
    elif n_out:
        worst = float(np.max(shapely.distance(polygon, shapely.points(play.x, play.y))))
    return n_out, seconds, worst


def build_report(
    vertices: Sequence[tuple[float, float]],
    frame: LocalFrame,
    records: Sequence[PlaybackRecord],
    repeats: int,
    model: SpeakerModel | None = None,
    track: Sequence[TrackRow] = (),
    cell_m: float | None = None,
) -> CoverageReport:
    """The coverage report of a broadcast over the (lat, lon) polygon ``vertices``."""
    m = model or SpeakerModel()
    verts = tuple(vertices)
    if len(verts) > 1 and verts[0] == verts[-1]:
        verts = verts[:-1]
    polygon = Polygon([frame.to_xy(lat, lon) for lat, lon in verts])
    grid = Grid.build(polygon, cell_m)
    ordered = records_in_order(records)
    plays = [record_to_play(r, frame, m) for r in ordered]
    counts = hear_counts(grid, plays)
    samples_outside = 0
    outside_s = 0.0
    worst = 0.0
    path: list[tuple[float, float]] = []
    for play in plays:
        n_out, secs, far = _outside(play, polygon)
        samples_outside += n_out
        outside_s += secs
        worst = max(worst, far)
        path.extend(zip(play.x.tolist(), play.y.tolist(), strict=True))
    missing: list[int] = []
    for pid in sorted({r.payload_id for r in ordered}):
        seqs = sorted(r.seq for r in ordered if r.payload_id == pid)
        have = set(seqs)
        missing.extend(s for s in range(seqs[0], seqs[-1] + 1) if s not in have)
    return CoverageReport(
        area_vertices=verts,
        area_m2=float(polygon.area),
        repeats_required=repeats,
        grid=grid,
        counts=counts,
        covered_fraction=covered_fraction(counts, repeats),
        heard_once_fraction=covered_fraction(counts, 1),
        started_at=min((r.started_at for r in ordered), default=None),
        ended_at=max((r.ended_at for r in ordered), default=None),
        plays_total=len(ordered),
        plays_completed=sum(1 for r in ordered if r.completed),
        plays_cut=sum(1 for r in ordered if not r.completed),
        sounding_s=float(sum(r.duration_s for r in ordered)),
        samples_total=sum(len(r.samples) for r in ordered),
        samples_outside=samples_outside,
        playback_outside_s=outside_s,
        max_outside_m=worst,
        missing_seqs=tuple(missing),
        payload_ids=tuple(sorted({r.payload_id for r in ordered})),
        track=tuple(track),
        playback_path=tuple(path),
        frame=frame,
    )


# --- the map ------------------------------------------------------------------------------

_COLOURS = {
    "none": (215, 48, 39),
    "some": (253, 174, 97),
    "enough": (102, 189, 99),
    "double": (26, 120, 66),
}
"""Cell colours: heard nothing, fewer than required, required, twice required."""


def _track_pieces(
    rows: Sequence[TrackRow], xy: Sequence[tuple[float, float]]
) -> list[list[tuple[float, float]]]:
    """The track cut where time goes back: the tracks of several drones, one after another."""
    pieces: list[list[tuple[float, float]]] = []
    last_t = math.inf
    for (t, _, _, _), p in zip(rows, xy, strict=True):
        if t < last_t:
            pieces.append([])
        pieces[-1].append(p)
        last_t = t
    return pieces


def render_png(report: CoverageReport, size: int = 900) -> bytes:
    """A PNG map: cells coloured by hear count, the polygon outline, the flight track (blue;
    one line per drone when the track holds several, one after the other) and the positions
    where the speaker sounded (dark), with a legend and a scale bar."""
    g = report.grid
    track_xy = [report.frame.to_xy(lat, lon) for _, lat, lon, _ in report.track]
    pts = [*(tuple(p) for p in report.grid.polygon.exterior.coords), *track_xy]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    minx, maxx, miny, maxy = min(xs), max(xs), min(ys), max(ys)
    span = max(maxx - minx, maxy - miny, 1.0)
    margin, legend_h = 20, 70
    scale = (size - 2 * margin) / span
    width = int((maxx - minx) * scale) + 2 * margin
    height = int((maxy - miny) * scale) + 2 * margin + legend_h
    img = Image.new("RGB", (max(width, 360), height), (255, 255, 255))
    draw = ImageDraw.Draw(img)

    def px(x: float, y: float) -> tuple[float, float]:
        return margin + (x - minx) * scale, margin + (maxy - y) * scale

    need = report.repeats_required
    for cx, cy, c in zip(g.x, g.y, report.counts, strict=True):
        key = "none" if c == 0 else "some" if c < need else "enough" if c < 2 * need else "double"
        h = g.cell_m / 2
        x0, y0 = px(cx - h, cy + h)
        x1, y1 = px(cx + h, cy - h)
        draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], fill=_COLOURS[key])
    outline = [px(x, y) for x, y in report.grid.polygon.exterior.coords]
    draw.line(outline, fill=(0, 0, 0), width=2)
    for piece in _track_pieces(report.track, track_xy):
        if len(piece) >= 2:
            draw.line([px(x, y) for x, y in piece], fill=(33, 102, 172), width=1)
    for x, y in report.playback_path[:: max(1, len(report.playback_path) // 5000)]:
        u, v = px(x, y)
        draw.ellipse([u - 1, v - 1, u + 1, v + 1], fill=(20, 20, 60))
    font = ImageFont.load_default()
    base = height - legend_h + 8
    draw.text(
        (margin, base),
        f"covered {report.covered_fraction:.1%} of {report.area_m2:,.0f} m2 "
        f"(>= {need} complete hearings); plays {report.plays_completed}/{report.plays_total}; "
        f"outside: {report.samples_outside} samples",
        fill=(0, 0, 0),
        font=font,
    )
    x = margin
    for key, label in (
        ("none", "0"),
        ("some", f"1..{need - 1}" if need > 1 else "-"),
        ("enough", f">={need}"),
        ("double", f">={2 * need}"),
    ):
        draw.rectangle([x, base + 22, x + 14, base + 36], fill=_COLOURS[key])
        draw.text((x + 18, base + 23), label, fill=(0, 0, 0), font=font)
        x += 80
    draw.line([x, base + 29, x + 20, base + 29], fill=(33, 102, 172), width=2)
    draw.text((x + 24, base + 23), "track", fill=(0, 0, 0), font=font)
    # scale bar: a round number of metres near a fifth of the map
    target = span / 5
    bar = 10 ** math.floor(math.log10(target))
    for mult in (5, 2, 1):
        if mult * bar <= target:
            bar *= mult
            break
    bx = img.width - margin - bar * scale
    draw.line([bx, base + 29, bx + bar * scale, base + 29], fill=(0, 0, 0), width=3)
    draw.text((bx, base + 34), f"{bar:g} m", fill=(0, 0, 0), font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
