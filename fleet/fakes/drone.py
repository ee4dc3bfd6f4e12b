"""``FakeDrone``: an in-memory multicopter behind :class:`fleet.drone.DroneControl`.

It emulates what the MAVLink bridge and a PX4 vehicle do together, as missions see it:

* commands return on success or raise what the bridge raises: ``MissionUploadError`` with the
  vehicle's words in ``fields["reason"]`` (``result`` ``INVALID``) for a plan it rejects,
  ``CommandRejected`` (``command``, ``result`` ``DENIED``, ``reason``) for a refused command,
  ``CommandTimeout`` (``MissionUploadError`` ``TIMEOUT`` for transfers) when it stays silent,
  ``LinkLost`` while its link is lost;
* an uploaded plan is reported ``not_started``; ``start_mission`` arms it and makes it
  ``active`` from item 0, as PX4's MISSION_START does;
* :meth:`FakeDrone.step` flies one stage of what it is doing (an item of the mission, the way
  home after ``return_to_launch``, a landing), writing the live :class:`VehicleStatus` as the
  bridge does (mission progress, landed state, armed, mode, position, battery) and touching the
  registry; a gripper item releases the payload where the drone is (:attr:`releases`);
* with its link lost it flies on (PX4 with NAV_DLL_ACT=0) but the registry hears nothing: the
  status shows the link ``lost`` and the last telemetry; when the link is regained the status
  catches up with where the drone is.

Everything it was told is recorded: :attr:`commands` (method names, in order), :attr:`plans`,
:attr:`fences`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields

from fleet.clock import Clock
from fleet.drone import (
    FlightPlan,
    Geofence,
    Gripper,
    Land,
    ReturnToLaunch,
    Takeoff,
    Waypoint,
    Winch,
)
from fleet.errors import CommandRejected, CommandTimeout, LinkLost, MissionUploadError
from fleet.fakes.faults import Fault, FaultControls, FaultKind, Faults
from fleet.geo import LatLon, Position
from fleet.registry import VehicleRegistry
from fleet.vehicle import (
    Capability,
    FlightMode,
    LandedState,
    LinkState,
    MissionProgress,
    MissionRunState,
    VehicleInfo,
    VehicleKind,
    VehicleStatus,
)

Settle = Callable[[], Awaitable[None]]
"""Awaited after every change a test makes the fake do (:meth:`FakeDrone.step`, link changes),
so that whoever follows the vehicle sees each change (a real vehicle's changes are seconds
apart)."""

DEFAULT_TAKEOFF_ALT_M = 2.5
"""PX4's MIS_TAKEOFF_ALT default: the height of a take-off item without one."""
MAV_COMMANDS = {
    "arm": "MAV_CMD_COMPONENT_ARM_DISARM",
    "disarm": "MAV_CMD_COMPONENT_ARM_DISARM",
    "takeoff": "MAV_CMD_NAV_TAKEOFF",
    "land": "MAV_CMD_DO_SET_MODE",
    "hold": "MAV_CMD_DO_SET_MODE",
    "return_to_launch": "MAV_CMD_DO_SET_MODE",
    "start_mission": "MAV_CMD_MISSION_START",
    "resume_mission": "MAV_CMD_DO_SET_MODE",
    "release_payload": "MAV_CMD_DO_GRIPPER",
}
"""The MAVLink command each port method sends (named in ``CommandRejected.fields``)."""


async def _yield() -> None:
    await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class Release:
    """Where and when the gripper opened."""

    position: Position
    at: float
    """Clock ``time()`` (0 without a clock)."""


class FakeDrone(FaultControls):
    """A drone that does what PX4 would, one :meth:`step` at a time (see module docs)."""

    def __init__(
        self,
        vehicle_id: str,
        home: LatLon | Position,
        *,
        registry: VehicleRegistry | None = None,
        clock: Clock | None = None,
        battery: float = 0.95,
        capabilities: frozenset[Capability] = frozenset({Capability.DELIVERY}),
        payload_kg: float = 2.5,
        drain_per_step: float = 0.0,
        settle: Settle | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.clock = clock
        self.settle: Settle = settle or _yield
        self.drain_per_step = drain_per_step
        self.info = VehicleInfo(
            id=vehicle_id,
            kind=VehicleKind.DRONE,
            link_url="fake+drone://",
            address=vehicle_id,
            capabilities=capabilities,
            payload_kg=payload_kg,
            name=vehicle_id,
        )
        base = Position(home.lat, home.lon, getattr(home, "alt", 0.0), 0.0)
        self.truth = VehicleStatus(
            link=LinkState.ONLINE,
            position=base,
            home=base,
            battery_fraction=battery,
            mode=FlightMode.HOLD,
            landed=LandedState.ON_GROUND,
            ready_to_arm=True,
            ready_for_mission=True,
            mission=MissionProgress(state=MissionRunState.NO_MISSION),
        )
        """Where the drone really is and what it does (the registry shows what its link
        heard: the same while the link is up, the last report while it is lost)."""
        self.faults = Faults()
        self.commands: list[str] = []
        """Port methods called, in order."""
        self.plans: list[FlightPlan] = []
        """Every plan uploaded (accepted or not)."""
        self.fences: list[Geofence] = []
        self.rally: list[Position] = []
        """The rally points on the vehicle."""
        self.parameters: dict[str, float] = {"MIS_TAKEOFF_ALT": DEFAULT_TAKEOFF_ALT_M}
        self.releases: list[Release] = []
        """Gripper openings (the drone's ground truth)."""
        self.plan: FlightPlan | None = None
        """The plan on the vehicle."""
        self.on_step: list[Callable[[FakeDrone], None]] = []
        """Called after every change of :attr:`truth` (a payload riding on the drone)."""
        self._returning: str | None = None
        """While flying home or landing outside the mission: ``home``, ``landing``."""
        self.registry: VehicleRegistry | None = None
        if registry is not None:
            self.attach(registry)

    # --- the registry -------------------------------------------------------------------------

    def attach(self, registry: VehicleRegistry) -> None:
        """Appear in ``registry`` (as its link does on discovery; again after a restart)."""
        self.registry = registry
        status = VehicleStatus()
        registry.add(self.info, self, status)
        self._publish(force=True)

    @property
    def status(self) -> VehicleStatus:
        """The status the registry shows."""
        assert self.registry is not None, "attach the fake to a registry first"
        return self.registry.get(self.vehicle_id).status

    @property
    def link(self) -> LinkState:
        return self.truth.link

    def _publish(self, force: bool = False) -> None:
        """Write what the link hears into the registry and touch it."""
        for hook in self.on_step:
            hook(self)
        if self.registry is None or self.vehicle_id not in self.registry:
            return
        if self.truth.link is not LinkState.ONLINE and not force:
            return
        status = self.status
        for f in fields(VehicleStatus):
            setattr(status, f.name, copy.deepcopy(getattr(self.truth, f.name)))
        if self.clock is not None:
            status.last_seen = self.clock.monotonic()
        self.registry.touch(self.vehicle_id)

    # --- what a test makes it do --------------------------------------------------------------

    async def lose_link(self) -> None:
        """Nothing more is heard from the drone (it flies on)."""
        self.truth.link = LinkState.LOST
        if self.registry is not None and self.vehicle_id in self.registry:
            self.status.link = LinkState.LOST
            self.registry.touch(self.vehicle_id)
        await self.settle()

    async def regain_link(self) -> None:
        """The drone is heard again: the status catches up with it."""
        self.truth.link = LinkState.ONLINE
        self._publish(force=True)
        await self.settle()

    def set_battery(self, fraction: float) -> None:
        self.truth.battery_fraction = fraction
        self._publish()

    @property
    def flying(self) -> bool:
        """Armed or off the ground."""
        return self.truth.armed or self.truth.landed is not LandedState.ON_GROUND

    async def step(self) -> str | None:
        """Fly one stage of what the drone is doing; returns what happened (None: nothing to
        do, e.g. on the ground disarmed, or holding)."""
        what = self._advance()
        if what is None:
            return None
        if self.drain_per_step and self.truth.battery_fraction is not None:
            self.truth.battery_fraction = max(
                0.0, self.truth.battery_fraction - self.drain_per_step
            )
        self._publish()
        await self.settle()
        return what

    async def fly(
        self, until: Callable[[FakeDrone], bool] | None = None, *, max_steps: int = 500
    ) -> list[str]:
        """:meth:`step` until ``until(self)`` holds (default: back on the ground, disarmed);
        returns what happened at each step."""
        done = until or (lambda d: not d.flying)
        out: list[str] = []
        for _ in range(max_steps):
            if done(self):
                return out
            what = await self.step()
            if what is None:
                if done(self):
                    return out
                raise RuntimeError(f"{self.vehicle_id} has nothing to do: {self.describe()}")
            out.append(what)
        raise RuntimeError(f"{self.vehicle_id} still flying after {max_steps} steps")

    async def fly_to_item(self, index: int) -> list[str]:
        """:meth:`step` until the mission's current item is ``index`` (or beyond)."""
        return await self.fly(lambda d: d.truth.mission.current >= index)

    def describe(self) -> str:
        t = self.truth
        return (
            f"mode {t.mode}, {t.landed}, armed {t.armed}, mission {t.mission.state} "
            f"item {t.mission.current}/{t.mission.total}"
        )

    # --- flight -------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.time() if self.clock is not None else 0.0

    def _home(self) -> Position:
        assert self.truth.home is not None
        return self.truth.home

    def _move(self, lat: float, lon: float, rel_alt: float) -> None:
        home = self._home()
        self.truth.position = Position(lat, lon, home.alt + rel_alt, rel_alt)

    def _touch_down(self) -> str:
        t = self.truth
        pos = t.position or self._home()
        self._move(pos.lat, pos.lon, 0.0)
        t.landed = LandedState.ON_GROUND
        t.armed = False
        self._returning = None
        if t.mission.state is MissionRunState.ACTIVE:
            t.mission.state = MissionRunState.COMPLETE
        return "landed and disarmed"

    def _advance(self) -> str | None:
        t = self.truth
        if not t.armed and t.landed is LandedState.ON_GROUND:
            return None
        if t.landed is LandedState.LANDING:
            return self._touch_down()
        if t.mode is FlightMode.HOLD:
            return None
        if t.mode is FlightMode.LAND:
            t.landed = LandedState.LANDING
            return "landing"
        if t.mode is FlightMode.RTL:
            home = self._home()
            pos = t.position or home
            if (pos.lat, pos.lon) != (home.lat, home.lon):
                self._move(home.lat, home.lon, max(pos.rel_alt, 1.0))
                return "back over home"
            t.landed = LandedState.LANDING
            return "landing at home"
        if t.mode is FlightMode.TAKEOFF:
            if t.landed is not LandedState.IN_AIR:
                t.landed = LandedState.IN_AIR
                pos = t.position or self._home()
                self._move(pos.lat, pos.lon, self.parameters["MIS_TAKEOFF_ALT"])
                return "took off"
            t.mode = FlightMode.HOLD
            return "holding after take-off"
        if t.mode is FlightMode.MISSION and self.plan is not None:
            return self._mission_item()
        return None

    def _mission_item(self) -> str:
        """Do the current item and move on to the next."""
        assert self.plan is not None
        t, items = self.truth, self.plan.items
        i = t.mission.current
        if i >= len(items):
            t.mode = FlightMode.HOLD
            t.mission.state = MissionRunState.COMPLETE
            return "mission complete, holding"
        item = items[i]
        pos = t.position or self._home()
        what = f"item {i} ({type(item).__name__})"
        if isinstance(item, Takeoff):
            alt = item.rel_alt if item.rel_alt is not None else self.parameters["MIS_TAKEOFF_ALT"]
            t.landed = LandedState.IN_AIR
            self._move(
                item.lat if item.lat is not None else pos.lat,
                item.lon if item.lon is not None else pos.lon,
                alt,
            )
            what += ": took off"
        elif isinstance(item, Waypoint):
            self._move(item.lat, item.lon, item.rel_alt)
        elif isinstance(item, Gripper):
            self.releases.append(Release(pos, self._now()))
            what += ": payload released"
        elif isinstance(item, Land | ReturnToLaunch):
            if isinstance(item, Land):
                lat = item.lat if item.lat is not None else pos.lat
                lon = item.lon if item.lon is not None else pos.lon
            else:
                lat, lon = self._home().lat, self._home().lon
            self._move(lat, lon, min(pos.rel_alt, 1.0))
            t.landed = LandedState.LANDING
            t.mission.reached = i
            return what + ": landing"
        t.mission.reached = i
        t.mission.current = i + 1
        if t.mission.current >= len(items):
            t.mission.state = MissionRunState.COMPLETE
            t.mode = FlightMode.HOLD
        return what

    # --- DroneControl ---------------------------------------------------------------------------

    async def _check(self, command: str) -> Fault | None:
        """Record ``command``, wait while it is held; raise ``LinkLost`` while the link is
        lost; return its fault."""
        self.commands.append(command)
        await self.faults.gate(command)
        if self.truth.link is not LinkState.ONLINE:
            raise LinkLost(
                f"{self.vehicle_id} link is {self.truth.link}; {command} not sent",
                vehicle_id=self.vehicle_id,
            )
        return self.faults.take(command)

    async def _command(self, command: str) -> None:
        """A COMMAND_LONG: raise ``CommandRejected`` or ``CommandTimeout`` as planned."""
        fault = await self._check(command)
        if fault is None:
            return
        name = MAV_COMMANDS.get(command, command)
        if fault.kind is FaultKind.TIMEOUT:
            raise CommandTimeout(
                f"{self.vehicle_id} did not answer {name}",
                vehicle_id=self.vehicle_id,
                command=name,
                attempts=4,
            )
        raise CommandRejected(
            f"{self.vehicle_id} refused {name}: DENIED ({fault.reason})",
            vehicle_id=self.vehicle_id,
            command=name,
            result="DENIED",
            reason=fault.reason,
        )

    async def _transfer(self, command: str, what: str) -> None:
        """A mission-protocol transfer: raise ``MissionUploadError`` as planned."""
        fault = await self._check(command)
        if fault is None:
            return
        if fault.kind is FaultKind.TIMEOUT:
            raise MissionUploadError(
                f"{self.vehicle_id}: {what} upload timed out after the count (4 attempts)",
                vehicle_id=self.vehicle_id,
                mission_type=what,
                result="TIMEOUT",
            )
        raise MissionUploadError(
            f"{self.vehicle_id} rejected the {what}: {fault.reason}",
            vehicle_id=self.vehicle_id,
            mission_type=what,
            result="INVALID",
            reason=fault.reason,
        )

    async def arm(self) -> None:
        await self._command("arm")
        self.truth.armed = True
        self._publish()

    async def disarm(self) -> None:
        await self._command("disarm")
        if self.truth.landed is not LandedState.ON_GROUND:
            raise CommandRejected(
                f"{self.vehicle_id} refused {MAV_COMMANDS['disarm']}: DENIED (not landed)",
                vehicle_id=self.vehicle_id,
                command=MAV_COMMANDS["disarm"],
                result="DENIED",
                reason="not landed",
            )
        self.truth.armed = False
        self._publish()

    async def takeoff(self, rel_alt: float | None = None) -> None:
        await self._command("takeoff")
        if rel_alt is not None:
            self.parameters["MIS_TAKEOFF_ALT"] = rel_alt
        self.truth.armed = True
        self.truth.mode = FlightMode.TAKEOFF
        self._publish()

    async def _set_mode(self, command: str, mode: FlightMode) -> None:
        await self._command(command)
        t = self.truth
        if not self.flying:
            return  # PX4 accepts the mode on the ground; nothing moves
        t.mode = mode
        if t.mission.state is MissionRunState.ACTIVE:
            t.mission.state = MissionRunState.PAUSED
        self._publish()

    async def land(self) -> None:
        await self._set_mode("land", FlightMode.LAND)

    async def hold(self) -> None:
        await self._set_mode("hold", FlightMode.HOLD)

    async def return_to_launch(self) -> None:
        await self._set_mode("return_to_launch", FlightMode.RTL)

    async def upload_mission(self, plan: FlightPlan) -> None:
        self.plans.append(plan)
        try:
            await self._transfer("upload_mission", "mission")
        except MissionUploadError as exc:
            if exc.fields.get("result") == "INVALID":
                self.plan = plan
                self.truth.mission = MissionProgress(
                    current=0, total=len(plan.items), state=MissionRunState.INVALID
                )
                self._publish()
            raise
        self.plan = plan
        self.truth.mission = MissionProgress(
            current=0, total=len(plan.items), state=MissionRunState.NOT_STARTED
        )
        self._publish()

    async def clear_mission(self) -> None:
        await self._transfer("clear_mission", "mission")
        self.plan = None
        self.truth.mission = MissionProgress(state=MissionRunState.NO_MISSION)
        self._publish()

    async def start_mission(self, first_item: int = 0) -> None:
        await self._command("start_mission")
        t = self.truth
        if self.plan is None or t.mission.state in (
            MissionRunState.NO_MISSION,
            MissionRunState.INVALID,
        ):
            name = MAV_COMMANDS["start_mission"]
            raise CommandRejected(
                f"{self.vehicle_id} refused {name}: DENIED (no valid mission)",
                vehicle_id=self.vehicle_id,
                command=name,
                result="DENIED",
                reason="no valid mission",
            )
        t.armed = True
        t.mode = FlightMode.MISSION
        t.mission.current = first_item
        t.mission.state = MissionRunState.ACTIVE
        self._publish()

    async def resume_mission(self) -> None:
        await self._command("resume_mission")
        t = self.truth
        if self.plan is None or t.mission.state not in (
            MissionRunState.PAUSED,
            MissionRunState.ACTIVE,
            MissionRunState.NOT_STARTED,
        ):
            name = MAV_COMMANDS["resume_mission"]
            raise CommandRejected(
                f"{self.vehicle_id} refused {name}: TEMPORARILY_REJECTED (no valid mission)",
                vehicle_id=self.vehicle_id,
                command=name,
                result="TEMPORARILY_REJECTED",
                reason="Switching to Mission is currently not possible: no valid mission",
            )
        if not self.flying:
            return
        t.mode = FlightMode.MISSION
        t.mission.state = MissionRunState.ACTIVE
        self._publish()

    async def upload_geofence(self, fence: Geofence) -> None:
        await self._transfer("upload_geofence", "fence")
        self.fences.append(fence)

    async def download_geofence(self) -> Geofence:
        await self._transfer("download_geofence", "fence")
        return self.fences[-1] if self.fences else Geofence()

    async def upload_rally(self, points: Sequence[Position]) -> None:
        await self._transfer("upload_rally", "rally")
        self.rally = list(points)

    async def download_rally(self) -> list[Position]:
        await self._transfer("download_rally", "rally")
        return list(self.rally)

    async def release_payload(self) -> None:
        await self._command("release_payload")
        self.releases.append(Release(self.truth.position or self._home(), self._now()))

    async def operate_winch(self, winch: Winch) -> bool:
        """Not part of the port; acknowledged like PX4 SITL never does (False)."""
        self.commands.append("operate_winch")
        del winch
        return False

    async def get_parameter(self, name: str) -> float:
        await self._command("get_parameter")
        try:
            return self.parameters[name]
        except KeyError:
            raise CommandRejected(
                f"{self.vehicle_id} has no parameter {name}",
                vehicle_id=self.vehicle_id,
                command="PARAM_REQUEST_READ",
                result="UNKNOWN_PARAMETER",
                reason=None,
            ) from None

    async def set_parameter(self, name: str, value: float) -> None:
        await self._command("set_parameter")
        self.parameters[name] = float(value)

    def __repr__(self) -> str:
        return f"FakeDrone({self.vehicle_id!r}, {self.describe()})"


__all__ = ["MAV_COMMANDS", "FakeDrone", "Release", "Settle"]
