"""Protocol-neutral flight plans, geofences and the port through which missions fly drones.

A :class:`FlightPlan` is what the service wants a drone to do, in domain terms; the MAVLink
bridge turns it into MISSION_ITEM_INT messages in ``firmware_bridges/mavlink/translate.py``.
Altitudes in plans are metres above the home (take-off) position, as PX4 missions use
``MAV_FRAME_GLOBAL_RELATIVE_ALT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from fleet.geo import Position


@dataclass(frozen=True, slots=True)
class Takeoff:
    """Climb vertically to ``rel_alt`` (``None``: the vehicle's default, PX4 MIS_TAKEOFF_ALT)."""

    rel_alt: float | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Waypoint:
    """Fly to a point; stay ``hold_s`` seconds once within ``acceptance_m``."""

    lat: float
    lon: float
    rel_alt: float
    hold_s: float = 0.0
    acceptance_m: float | None = None
    yaw_deg: float | None = None


@dataclass(frozen=True, slots=True)
class Land:
    """Land at a point (``None``: where the vehicle is)."""

    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class ReturnToLaunch:
    """Return to the home position and land."""


class GripperAction(StrEnum):
    """MAV_CMD_DO_GRIPPER actions."""

    RELEASE = "release"
    """Open: drop the load."""
    GRAB = "grab"
    """Close: hold a load."""


@dataclass(frozen=True, slots=True)
class Gripper:
    """Operate the payload gripper."""

    action: GripperAction = GripperAction.RELEASE
    instance: int = 1


class WinchAction(StrEnum):
    """MAV_CMD_DO_WINCH actions."""

    RELAXED = "relaxed"
    """Let the line go slack."""
    LENGTH = "length"
    """Pay out or reel in by a length."""
    RATE = "rate"
    """Pay out or reel in at a rate."""


@dataclass(frozen=True, slots=True)
class Winch:
    """Operate the payload winch."""

    action: WinchAction = WinchAction.LENGTH
    length_m: float = 0.0
    rate_mps: float = 0.0
    instance: int = 1


FlightItem = Takeoff | Waypoint | Land | ReturnToLaunch | Gripper | Winch
"""One step of a flight plan."""


@dataclass(frozen=True, slots=True)
class FlightPlan:
    """An ordered list of flight items."""

    items: tuple[FlightItem, ...]

    def index_of(self, item_type: type) -> list[int]:
        """Indices of every item of ``item_type``."""
        return [i for i, it in enumerate(self.items) if isinstance(it, item_type)]


@dataclass(frozen=True, slots=True)
class FencePolygon:
    """A polygon fence; ``inclusion`` True keeps the vehicle inside, False outside."""

    vertices: tuple[tuple[float, float], ...]
    """(lat, lon) vertices, not closed (first != last)."""
    inclusion: bool


@dataclass(frozen=True, slots=True)
class FenceCircle:
    """A circular fence around (lat, lon)."""

    lat: float
    lon: float
    radius_m: float
    inclusion: bool


@dataclass(frozen=True, slots=True)
class Geofence:
    """Fence areas uploaded to a drone (PX4 enforces them in flight)."""

    polygons: tuple[FencePolygon, ...] = ()
    circles: tuple[FenceCircle, ...] = ()


@runtime_checkable
class DroneControl(Protocol):
    """Commands a mission may give one drone. Each returns on success or raises a
    :class:`fleet.errors.VehicleError` (``CommandRejected``, ``CommandTimeout``,
    ``MissionUploadError``, ``LinkLost``)."""

    vehicle_id: str

    async def arm(self) -> None: ...

    async def disarm(self) -> None: ...

    async def takeoff(self, rel_alt: float | None = None) -> None: ...

    async def land(self) -> None: ...

    async def hold(self) -> None: ...

    async def return_to_launch(self) -> None: ...

    async def upload_mission(self, plan: FlightPlan) -> None:
        """Upload and verify: raises ``MissionUploadError`` when the vehicle rejects the
        transfer or reports the uploaded plan invalid, with the vehicle's reason."""
        ...

    async def clear_mission(self) -> None: ...

    async def start_mission(self, first_item: int = 0) -> None: ...

    async def resume_mission(self) -> None:
        """Continue the uploaded mission from its current item after a hold (PX4: Mission
        mode, which goes on from the current item)."""
        ...

    async def upload_geofence(self, fence: Geofence) -> None: ...

    async def download_geofence(self) -> Geofence:
        """The fence the vehicle holds (mission protocol download of the fence plan)."""
        ...

    async def upload_rally(self, points: Sequence[Position]) -> None:
        """Rally (safe landing) points, altitudes relative to home."""
        ...

    async def download_rally(self) -> list[Position]: ...

    async def release_payload(self) -> None:
        """Open the gripper now (MAV_CMD_DO_GRIPPER)."""
        ...

    async def get_parameter(self, name: str) -> float: ...

    async def set_parameter(self, name: str, value: float) -> None: ...


def plan_waypoints(plan: FlightPlan) -> Sequence[Waypoint]:
    """The waypoints of a plan, in order."""
    return [it for it in plan.items if isinstance(it, Waypoint)]
