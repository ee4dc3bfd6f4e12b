"""Who heard the message: hear counts on a grid of cells over the target polygon.

The polygon is covered by square cells (local frame); a cell belongs to the area when its
centre lies inside the polygon, and stands for the listeners in it. A cell **hears** a play of
the clip when, for the whole play, its centre stays within the audible range of the speaker:
``horizontal distance² + height² <= S²`` with ``S`` the audible slant range of the speaker
model at the play's volume (:mod:`missions.broadcast.acoustics`). A play cut short (the drone
left the area) is heard by nobody in full, so it counts for no cell.

The same computation serves the prediction before flight (plays derived from the predicted
track) and the proof after it (plays recorded by the payload, with the positions it sampled);
positions between samples are interpolated linearly at most ``max_gap_s`` apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_CELLS = 20_000
"""A grid is coarsened until it has at most this many cells."""


@dataclass(frozen=True)
class Play:
    """One play of the clip with the speaker positions during it (local frame)."""

    start: float
    end: float
    completed: bool
    t: FloatArray
    x: FloatArray
    y: FloatArray
    z: FloatArray
    """Height above the ground of the listeners (the take-off point)."""
    slant_range_m: float
    """Audible slant range at the play's volume."""

    def densified(self, max_gap_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Positions at the samples and at most ``max_gap_s`` apart in between."""
        if len(self.t) < 2:
            return self.x, self.y, self.z
        n = max(2, math.ceil((self.t[-1] - self.t[0]) / max_gap_s) + 1)
        tt = np.union1d(self.t, np.linspace(self.t[0], self.t[-1], n))
        return (
            np.interp(tt, self.t, self.x),
            np.interp(tt, self.t, self.y),
            np.interp(tt, self.t, self.z),
        )


@dataclass(frozen=True)
class Grid:
    """Cells over a polygon: centres ``x``/``y`` and integer indices ``ix``/``iy`` from
    ``origin`` (lower-left corner of cell (0, 0))."""

    polygon: Polygon
    cell_m: float
    origin: tuple[float, float]
    ix: IntArray
    iy: IntArray
    x: FloatArray
    y: FloatArray

    @classmethod
    def build(cls, polygon: Polygon, cell_m: float | None = None) -> Grid:
        """Cells of ``cell_m`` metres (default: about 4000 cells, 2..25 m) inside ``polygon``."""
        area = float(polygon.area)
        if area <= 0:
            raise ValueError("the polygon has no area")
        cell = cell_m if cell_m is not None else min(25.0, max(2.0, math.sqrt(area / 4000.0)))
        while area / (cell * cell) > MAX_CELLS * 1.3:
            cell *= 1.25
        minx, miny, maxx, maxy = polygon.bounds
        nx = max(1, math.ceil((maxx - minx) / cell))
        ny = max(1, math.ceil((maxy - miny) / cell))
        gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
        cx = minx + (gx.ravel() + 0.5) * cell
        cy = miny + (gy.ravel() + 0.5) * cell
        inside = shapely.contains_xy(polygon, cx, cy)
        if not inside.any():
            # a polygon thinner than a cell: take the cell nearest its centroid
            c = polygon.representative_point()
            k = int(np.argmin((cx - c.x) ** 2 + (cy - c.y) ** 2))
            inside = np.zeros_like(inside)
            inside[k] = True
        return cls(
            polygon=polygon,
            cell_m=cell,
            origin=(minx, miny),
            ix=gx.ravel()[inside].astype(np.int64),
            iy=gy.ravel()[inside].astype(np.int64),
            x=cx[inside],
            y=cy[inside],
        )

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, int]:
        """(columns, rows) of the bounding grid."""
        return int(self.ix.max()) + 1, int(self.iy.max()) + 1


def hears(grid: Grid, play: Play, max_gap_s: float = 1.0) -> npt.NDArray[np.bool_]:
    """Which cells heard ``play`` in full (all False for a play cut short)."""
    out = np.zeros(len(grid), dtype=bool)
    if not play.completed or len(play.t) == 0:
        return out
    px, py, pz = play.densified(max_gap_s)
    r2 = play.slant_range_m**2 - pz**2  # horizontal reach squared at each sample
    if np.any(r2 <= 0):
        return out
    # chunk the cells so that cells × samples stays small
    step = max(1, 4_000_000 // max(1, len(px)))
    for lo in range(0, len(grid), step):
        hi = min(len(grid), lo + step)
        dx = grid.x[lo:hi, None] - px[None, :]
        dy = grid.y[lo:hi, None] - py[None, :]
        out[lo:hi] = np.all(dx * dx + dy * dy <= r2[None, :], axis=1)
    return out


def hear_counts(grid: Grid, plays: Sequence[Play], max_gap_s: float = 1.0) -> IntArray:
    """How many complete plays each cell heard."""
    counts = np.zeros(len(grid), dtype=np.int64)
    for play in plays:
        counts += hears(grid, play, max_gap_s)
    return counts


def covered_fraction(counts: IntArray, required: int) -> float:
    """Share of cells that heard at least ``required`` complete plays."""
    if len(counts) == 0:
        return 0.0
    return float(np.count_nonzero(counts >= required)) / len(counts)
