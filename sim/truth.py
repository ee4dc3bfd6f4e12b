"""Ground truth: what really happened to a sim vehicle, for tests to assert on.

Each sim vehicle appends to its :class:`GroundTruth` as things happen in the simulated world,
independently of what it reports over its link: payload releases (time and position), landings,
arming, mode changes, failsafes, reached mission items. An end-to-end test can then check, say,
that a release happened within 5 m of the drop point from the record, not from telemetry.
Times are world seconds of the injected clock (``Clock.monotonic()``) and epoch seconds
(``Clock.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from fleet.geo import LatLon, distance_m


class TruthKind(StrEnum):
    """Kinds of ground-truth events."""

    ARMED = "armed"
    """Motors armed."""
    DISARMED = "disarmed"
    """Motors disarmed (``detail`` says why)."""
    MODE = "mode"
    """Flight mode changed (``detail`` is the new mode)."""
    TAKEOFF = "takeoff"
    """Left the ground."""
    LANDING = "landing"
    """Touched down."""
    RELEASE = "release"
    """Gripper opened: the payload dropped."""
    GRAB = "grab"
    """Gripper closed."""
    WINCH = "winch"
    """Winch action (``detail`` is the action and length)."""
    FAILSAFE = "failsafe"
    """A failsafe triggered (``detail``: cause and action)."""
    ITEM_REACHED = "item_reached"
    """A mission item was completed (``seq``)."""
    MISSION_FINISHED = "mission_finished"
    """The last mission item was completed."""
    FAULT = "fault"
    """A fault was injected (``detail``)."""
    BATTERY_SWAP = "battery_swap"
    """The ground crew put a full battery in (``detail``: charge before)."""


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """One thing that happened, where and when."""

    kind: TruthKind
    t: float
    """World seconds (``Clock.monotonic()``)."""
    epoch: float
    """World epoch seconds (``Clock.time()``)."""
    lat: float
    lon: float
    rel_alt: float
    """Height above home, m."""
    detail: str = ""
    seq: int | None = None

    @property
    def latlon(self) -> LatLon:
        return LatLon(self.lat, self.lon)

    def distance_to(self, p: LatLon) -> float:
        """Horizontal distance from this event's position to ``p``, m."""
        return distance_m(p, self.latlon)


@dataclass
class GroundTruth:
    """The record of one vehicle."""

    vehicle_id: str
    events: list[TruthEvent] = field(default_factory=list)

    def add(self, event: TruthEvent) -> None:
        self.events.append(event)

    def of(self, kind: TruthKind) -> list[TruthEvent]:
        """Every event of ``kind``, oldest first."""
        return [e for e in self.events if e.kind is kind]

    @property
    def releases(self) -> list[TruthEvent]:
        return self.of(TruthKind.RELEASE)

    @property
    def landings(self) -> list[TruthEvent]:
        return self.of(TruthKind.LANDING)

    @property
    def failsafes(self) -> list[TruthEvent]:
        return self.of(TruthKind.FAILSAFE)

    @property
    def modes(self) -> list[str]:
        """Flight modes in the order they were entered."""
        return [e.detail for e in self.of(TruthKind.MODE)]
