"""Travel matrices: distance and driving time between numbered places.

Routing never measures the world itself: callers pass a :class:`TravelMatrix` built from road
distances (the road graph of the world file) or, when no road graph is at hand, from straight
lines in the local frame with a detour factor (:meth:`TravelMatrix.from_points`). Place 0 is
usually the warehouse dock; the others are community gates. Entries may be asymmetric (one-way
streets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fleet.errors import ValidationError

DEFAULT_DETOUR = 1.3
"""Road distance over straight-line distance in a dense city grid (typical 1.2 to 1.4)."""


@dataclass(frozen=True, eq=False)
class TravelMatrix:
    """Distances (metres) and durations (seconds) between places ``0 .. size - 1``."""

    distance_m: NDArray[np.float64]
    duration_s: NDArray[np.float64]
    labels: tuple[str, ...] = ()
    """Optional names of the places, for reasons and reports."""

    def __post_init__(self) -> None:
        d = np.asarray(self.distance_m, dtype=np.float64)
        t = np.asarray(self.duration_s, dtype=np.float64)
        if d.ndim != 2 or d.shape[0] != d.shape[1]:
            raise ValidationError("distance matrix must be square", field="distance_m")
        if t.shape != d.shape:
            raise ValidationError(
                "duration matrix must have the distance matrix's shape", field="duration_s"
            )
        if np.isnan(d).any() or np.isnan(t).any():
            raise ValidationError("travel matrix entries must be numbers", field="distance_m")
        if (np.isinf(d) != np.isinf(t)).any():
            raise ValidationError(
                "a pair is unreachable in one matrix and not in the other", field="duration_s"
            )
        if (d < 0).any() or (t < 0).any():
            raise ValidationError("travel matrix entries must be >= 0", field="distance_m")
        if self.labels and len(self.labels) != d.shape[0]:
            raise ValidationError("one label per place", field="labels")
        d = d.copy()
        t = t.copy()
        np.fill_diagonal(d, 0.0)
        np.fill_diagonal(t, 0.0)
        d.setflags(write=False)
        t.setflags(write=False)
        object.__setattr__(self, "distance_m", d)
        object.__setattr__(self, "duration_s", t)

    @property
    def size(self) -> int:
        return int(self.distance_m.shape[0])

    def label(self, place: int) -> str:
        return self.labels[place] if self.labels else f"place {place}"

    def reachable(self, a: int, b: int) -> bool:
        return bool(math.isfinite(self.duration_s[a, b]))

    def seconds(self, a: int, b: int) -> float:
        return float(self.duration_s[a, b])

    def metres(self, a: int, b: int) -> float:
        return float(self.distance_m[a, b])

    @classmethod
    def from_points(
        cls,
        points: Sequence[tuple[float, float]],
        *,
        speed_mps: float,
        detour: float = DEFAULT_DETOUR,
        labels: Sequence[str] = (),
    ) -> TravelMatrix:
        """Straight-line distances between local-frame points times ``detour``, driven at
        ``speed_mps`` (use road-graph distances when available)."""
        if speed_mps <= 0 or not math.isfinite(speed_mps):
            raise ValidationError("speed must be positive", field="speed_mps")
        if detour < 1:
            raise ValidationError("detour factor must be at least 1", field="detour")
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        diff = xy[:, None, :] - xy[None, :, :]
        d = np.sqrt((diff**2).sum(axis=2)) * detour
        return cls(d, d / speed_mps, tuple(labels))

    def submatrix(self, places: Sequence[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Distances and durations between ``places`` only, in that order."""
        idx = np.asarray(places, dtype=np.intp)
        return self.distance_m[np.ix_(idx, idx)], self.duration_s[np.ix_(idx, idx)]
