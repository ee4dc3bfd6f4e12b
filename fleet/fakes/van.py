"""``FakeVan``: an in-memory VDA 5050 van behind :class:`fleet.van.VanControl`.

It emulates what the VDA 5050 bridge and a van controller do together, as missions see them:

* ``send_trip`` returns once the van holds the trip, or raises what the bridge raises:
  ``CommandRejected`` with the VDA 5050 ``error_type`` (``noRouteError`` for a trip that does not
  start where the van stands, ``orderUpdateError`` while it runs another order, or whatever a
  test told it), ``CommandTimeout`` while its link is lost or when told to stay silent,
  ``LinkLost`` once it said goodbye (``offline``);
* the van stands on the trip's first node once it accepts it (its actions run there first);
  :meth:`FakeVan.step` does the next thing a van does: start the waiting actions of the node it
  stands on, finish the running ones (a pick puts the load on board, a drop takes it off; a drop
  of a load not on board fails with ``load is not on board``, as the sim van's does), or drive
  to the next released node. Each change is written into the live status as the bridge does
  (``VehicleStatus.extra["van"]``, mission progress, battery) and the registry is touched;
* ``cancel_trip`` stops the van where it is: running actions finish, waiting ones fail, the
  order keeps its id (VDA 5050 ``cancelOrder``);
* with its link lost the van drives on (it holds a released base) but the registry hears
  nothing; when the link comes back the status catches up.

Everything it was told is recorded in :attr:`FakeVan.commands` and :attr:`FakeVan.trips`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from fleet.clock import Clock
from fleet.errors import CommandRejected, CommandTimeout, Conflict, LinkLost
from fleet.fakes.faults import Fault, FaultControls, FaultKind, Faults
from fleet.geo import Position
from fleet.registry import VehicleEntry, VehicleRegistry
from fleet.van import (
    ActionProgress,
    ActionStatus,
    Charge,
    Drop,
    EStop,
    OperatingMode,
    Pick,
    StopAction,
    TripNode,
    TripResult,
    VanCapabilities,
    VanLoad,
    VanState,
    VanTrip,
    apply_trip_progress,
)
from fleet.vehicle import (
    Capability,
    FlightMode,
    LandedState,
    LinkState,
    VehicleInfo,
    VehicleKind,
    VehicleStatus,
)

Settle = Callable[[], Awaitable[None]]
"""Awaited after every change a test makes the fake do (see :mod:`fleet.fakes`)."""


async def _yield() -> None:
    await asyncio.sleep(0)


def _action_type(action: StopAction) -> str:
    if isinstance(action, Pick):
        return "pick"
    if isinstance(action, Drop):
        return "drop"
    return "startCharging"


class FakeVan(FaultControls):
    """A van that does what a VDA 5050 van would, one :meth:`step` at a time."""

    def __init__(
        self,
        vehicle_id: str,
        node: TripNode,
        *,
        registry: VehicleRegistry | None = None,
        clock: Clock,
        battery: float = 0.9,
        max_boxes: int = 150,
        max_load_kg: float = 1000.0,
        senses_loads: bool = True,
        settle: Settle | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.clock = clock
        self.settle: Settle = settle or _yield
        self.info = VehicleInfo(
            id=vehicle_id,
            kind=VehicleKind.VAN,
            link_url="fake+van://",
            address=vehicle_id,
            capabilities=frozenset({Capability.SHUTTLE}),
            payload_kg=max_load_kg,
            max_boxes=max_boxes,
            name=vehicle_id,
        )
        self.capabilities = VanCapabilities(
            series_name="fake van",
            max_load_kg=max_load_kg,
            max_boxes=max_boxes,
            speed_max_mps=8.0,
            node_actions=frozenset({"pick", "drop", "startCharging"}),
            instant_actions=frozenset(
                {"cancelOrder", "startPause", "stopPause", "startCharging", "stopCharging"}
            ),
        )
        self.senses_loads = senses_loads
        self.link_state = LinkState.ONLINE
        self.position = node.position
        self.truth = VanState(
            trip_id="",
            trip_update=0,
            last_node_id=node.node_id,
            remaining_nodes=(),
            released_remaining=0,
            actions=(),
            driving=False,
            paused=False,
            charging=False,
            battery_fraction=battery,
            operating_mode=OperatingMode.AUTOMATIC,
            loads=() if senses_loads else None,
            reported_at=clock.time(),
        )
        """What the van really does (the registry shows what its link heard)."""
        self._heard: VanState | None = None
        self.faults = Faults()
        self.commands: list[str] = []
        """Port methods called, in order."""
        self.trips: list[VanTrip] = []
        """Every trip sent (accepted or not)."""
        self._trip: VanTrip | None = None
        self._nodes: dict[str, TripNode] = {node.node_id: node}
        self._actions: dict[str, tuple[str, StopAction]] = {}
        """action id -> (node id, action) of the current trip."""
        self._trip_actions: dict[str, list[str]] = {}
        """trip id -> its action ids (for ``wait_trip``)."""
        self.registry: VehicleRegistry | None = None
        if registry is not None:
            self.attach(registry)

    # --- the registry -------------------------------------------------------------------------

    def attach(self, registry: VehicleRegistry) -> None:
        """Appear in ``registry`` (as the link does on discovery; again after a restart)."""
        self.registry = registry
        entry = registry.add(self.info, self, VehicleStatus())
        entry.status.extra["van_capabilities"] = self.capabilities
        self._publish(force=True)

    @property
    def entry(self) -> VehicleEntry:
        assert self.registry is not None, "attach the fake to a registry first"
        return self.registry.get(self.vehicle_id)

    @property
    def status(self) -> VehicleStatus:
        return self.entry.status

    def _publish(self, force: bool = False) -> None:
        """Write what the link hears into the registry (as ``translate.apply_state``) and
        touch it."""
        self.truth = replace(self.truth, reported_at=self.clock.time())
        if self.registry is None or self.vehicle_id not in self.registry:
            return
        if self.link_state is not LinkState.ONLINE and not force:
            return
        state = self.truth
        self._heard = state
        st = self.status
        st.link = self.link_state
        st.position = Position(self.position.lat, self.position.lon)
        st.battery_fraction = state.battery_fraction
        st.landed = LandedState.ON_GROUND
        ready = state.operating_mode is OperatingMode.AUTOMATIC and state.e_stop is EStop.NONE
        st.ready_to_arm = st.armed = st.ready_for_mission = ready
        st.not_ready = () if ready else (f"{state.operating_mode}, e-stop {state.e_stop}",)
        st.mode = (
            FlightMode.HOLD
            if state.paused
            else FlightMode.MISSION
            if state.driving
            else FlightMode.READY
        )
        total = len(self._trip.nodes) if self._trip is not None else 0
        apply_trip_progress(st.mission, state, total)
        st.extra["van"] = state
        st.last_seen = self.clock.monotonic()
        self.registry.touch(self.vehicle_id)

    # --- what a test makes it do --------------------------------------------------------------

    async def lose_link(self) -> None:
        """The van is not heard any more (a broker outage): it keeps driving."""
        self.link_state = LinkState.LOST
        if self.registry is not None and self.vehicle_id in self.registry:
            self.status.link = LinkState.LOST
            self.registry.touch(self.vehicle_id)
        await self.settle()

    async def go_offline(self) -> None:
        """The van said goodbye (VDA 5050 connection OFFLINE)."""
        self.link_state = LinkState.OFFLINE
        if self.registry is not None and self.vehicle_id in self.registry:
            self.status.link = LinkState.OFFLINE
            self.registry.touch(self.vehicle_id)
        await self.settle()

    async def come_back(self) -> None:
        """The van is heard again: the status catches up with it."""
        self.link_state = LinkState.ONLINE
        self._publish()
        await self.settle()

    async def break_down(self, e_stop: EStop = EStop.MANUAL) -> None:
        """An emergency stop: the van stops and takes no orders until :meth:`repair`."""
        self.truth = replace(self.truth, e_stop=e_stop, driving=False)
        self._publish()
        await self.settle()

    async def repair(self) -> None:
        self.truth = replace(self.truth, e_stop=EStop.NONE)
        self._publish()
        await self.settle()

    async def lose_load(self, load_id: str) -> None:
        """A consignment goes missing from the van."""
        loads = self.truth.loads
        if loads is not None:
            self.truth = replace(self.truth, loads=tuple(x for x in loads if x.load_id != load_id))
        self._publish()
        await self.settle()

    async def set_battery(self, fraction: float) -> None:
        self.truth = replace(self.truth, battery_fraction=fraction)
        self._publish()
        await self.settle()

    @property
    def busy(self) -> bool:
        return self.truth.busy

    @property
    def load_ids(self) -> list[str]:
        return [x.load_id for x in self.truth.loads or ()]

    async def step(self) -> str | None:
        """Do the next thing (see module docs); None when the van has nothing to do."""
        what = self._advance()
        if what is None:
            return None
        self._publish()
        await self.settle()
        return what

    async def drive(
        self, until: Callable[[FakeVan], bool] | None = None, *, max_steps: int = 2000
    ) -> list[str]:
        """:meth:`step` until ``until(self)`` holds (default: the trip is done)."""
        done = until or (lambda v: not v.busy)
        out: list[str] = []
        for _ in range(max_steps):
            if done(self):
                return out
            what = await self.step()
            if what is None:
                if done(self):
                    return out
                raise RuntimeError(f"{self.vehicle_id} has nothing to do: {self.truth}")
            out.append(what)
        raise RuntimeError(f"{self.vehicle_id} still busy after {max_steps} steps")

    async def drive_to(self, node_id: str) -> list[str]:
        """:meth:`step` until the van stands at ``node_id`` with nothing left to do there."""

        def there(v: FakeVan) -> bool:
            t = v.truth
            here = [a for a in t.actions if self._actions.get(a.action_id, ("",))[0] == node_id]
            return t.last_node_id == node_id and all(a.status.ended for a in here)

        return await self.drive(there)

    # --- what the van does --------------------------------------------------------------------

    def _set_action(self, action_id: str, status: ActionStatus, result: str = "") -> None:
        self.truth = replace(
            self.truth,
            actions=tuple(
                replace(a, status=status, result=result) if a.action_id == action_id else a
                for a in self.truth.actions
            ),
        )

    def _advance(self) -> str | None:
        t = self.truth
        if t.e_stop is not EStop.NONE or t.operating_mode is not OperatingMode.AUTOMATIC:
            return None
        here = [
            a
            for a in t.actions
            if self._actions.get(a.action_id, ("",))[0] == t.last_node_id and not a.status.ended
        ]
        running = [a for a in here if a.status is ActionStatus.RUNNING]
        if running:
            return self._finish(running[0])
        if here:
            self._set_action(here[0].action_id, ActionStatus.RUNNING)
            return f"{here[0].action_type} {here[0].action_id} running at {t.last_node_id}"
        if t.paused or not t.released_remaining:
            if t.driving:
                self.truth = replace(t, driving=False)
                return "stopped"
            return None
        node_id = t.remaining_nodes[0]
        node = self._nodes[node_id]
        self.position = node.position
        self.truth = replace(
            t,
            last_node_id=node_id,
            remaining_nodes=t.remaining_nodes[1:],
            released_remaining=t.released_remaining - 1,
            driving=t.released_remaining > 1,
            battery_fraction=max(0.0, t.battery_fraction - 0.001),
        )
        return f"reached {node_id}"

    def _finish(self, progress: ActionProgress) -> str:
        _, action = self._actions[progress.action_id]
        loads = self.truth.loads
        if isinstance(action, Pick):
            if loads is not None:
                load = VanLoad(action.load_id, action.mass_kg, action.boxes, action.sku or None)
                self.truth = replace(self.truth, loads=(*loads, load))
            self._set_action(progress.action_id, ActionStatus.FINISHED)
            return f"picked {action.load_id}"
        if isinstance(action, Drop):
            if loads is not None and action.load_id not in {x.load_id for x in loads}:
                self._set_action(progress.action_id, ActionStatus.FAILED, "load is not on board")
                return f"drop of {action.load_id} failed: load is not on board"
            if loads is not None:
                self.truth = replace(
                    self.truth, loads=tuple(x for x in loads if x.load_id != action.load_id)
                )
            self._set_action(progress.action_id, ActionStatus.FINISHED)
            return f"dropped {action.load_id}"
        self.truth = replace(self.truth, charging=True)
        self._set_action(progress.action_id, ActionStatus.FINISHED)
        return "charging"

    async def fail_next(self, load_id: str, reason: str) -> str:
        """The waiting or running action of ``load_id`` at the current node fails with
        ``reason`` (e.g. the gate is closed)."""
        for a in self.truth.actions:
            node_id, action = self._actions.get(a.action_id, ("", Charge()))
            if isinstance(action, Pick | Drop) and action.load_id == load_id and not a.status.ended:
                self._set_action(a.action_id, ActionStatus.FAILED, reason)
                self._publish()
                await self.settle()
                return f"{a.action_type} of {load_id} at {node_id} failed: {reason}"
        raise ValueError(f"no pending action for load {load_id}")

    # --- VanControl -----------------------------------------------------------------------------

    @property
    def state(self) -> VanState | None:
        return self._heard

    async def _check(self, command: str) -> Fault | None:
        self.commands.append(command)
        await self.faults.gate(command)
        if self.link_state is LinkState.OFFLINE:
            raise LinkLost(f"van {self.vehicle_id} is offline", vehicle_id=self.vehicle_id)
        fault = self.faults.take(command)
        if self.link_state is not LinkState.ONLINE or (
            fault is not None and fault.kind is FaultKind.TIMEOUT
        ):
            raise CommandTimeout(
                f"van {self.vehicle_id} did not confirm {command}",
                vehicle_id=self.vehicle_id,
                action=command,
            )
        return fault

    def _rejected(self, what: str, error_type: str, description: str) -> CommandRejected:
        return CommandRejected(
            f"van {self.vehicle_id} rejected {what}: {error_type}: {description}",
            vehicle_id=self.vehicle_id,
            error_type=error_type,
        )

    async def send_trip(self, trip: VanTrip) -> None:
        self.trips.append(trip)
        fault = await self._check("send_trip")
        t = self.truth
        if fault is not None:
            raise self._rejected(f"trip {trip.trip_id}", fault.reason, "refused by the van")
        if t.busy:
            raise self._rejected(
                f"trip {trip.trip_id}", "orderUpdateError", f"still running order {t.trip_id}"
            )
        if t.e_stop is not EStop.NONE or t.operating_mode is not OperatingMode.AUTOMATIC:
            raise self._rejected(
                f"trip {trip.trip_id}", "orderError", f"{t.operating_mode}, e-stop {t.e_stop}"
            )
        first = trip.nodes[0]
        if first.node_id != t.last_node_id and first.allowed_deviation_m is None:
            raise self._rejected(
                f"trip {trip.trip_id}",
                "noRouteError",
                f"first node {first.node_id} is not where the van stands ({t.last_node_id})",
            )
        self._trip = trip
        self._actions = {}
        for node in trip.nodes:
            self._nodes[node.node_id] = node
            for action in node.actions:
                self._actions[action.action_id] = (node.node_id, action)
        self._trip_actions[trip.trip_id] = list(self._actions)
        released = trip.released
        self.position = first.position
        self.truth = replace(
            t,
            trip_id=trip.trip_id,
            trip_update=0,
            last_node_id=first.node_id,
            remaining_nodes=tuple(n.node_id for n in trip.nodes[1:]),
            released_remaining=released - 1,
            actions=tuple(
                ActionProgress(a.action_id, _action_type(a), ActionStatus.WAITING)
                for _, a in trip.actions()
            ),
            driving=released > 1,
            faults=(),
        )
        self._publish()

    async def update_trip(self, extension: VanTrip) -> None:
        await self._check("update_trip")
        t = self.truth
        if self._trip is None or t.trip_id != extension.trip_id:
            raise Conflict(
                f"van {self.vehicle_id} has no trip {extension.trip_id} to update",
                vehicle_id=self.vehicle_id,
                trip_id=extension.trip_id,
            )
        for node in extension.nodes:
            self._nodes[node.node_id] = node
            for action in node.actions:
                self._actions[action.action_id] = (node.node_id, action)
                self._trip_actions[t.trip_id].append(action.action_id)
        new = tuple(n.node_id for n in extension.nodes[1:])
        self.truth = replace(
            t,
            trip_update=t.trip_update + 1,
            remaining_nodes=t.remaining_nodes[: t.released_remaining] + new,
            released_remaining=t.released_remaining + extension.released - 1,
            actions=t.actions
            + tuple(
                ActionProgress(a.action_id, _action_type(a), ActionStatus.WAITING)
                for _, a in extension.actions()
            ),
            driving=True,
        )
        self._publish()

    async def cancel_trip(self) -> None:
        fault = await self._check("cancel_trip")
        if fault is not None:
            raise self._rejected("cancelOrder", "cancelOrderError", fault.reason)
        t = self.truth
        if not t.trip_id or not t.busy:
            raise self._rejected("cancelOrder", "noOrderToCancel", "there is no order to cancel")
        # a running load or unload finishes; the rest of the order is dropped
        for a in t.actions:
            if a.status is ActionStatus.RUNNING:
                self._finish(a)
        self.truth = replace(
            self.truth,
            remaining_nodes=(),
            released_remaining=0,
            driving=False,
            actions=tuple(
                replace(a, status=ActionStatus.FAILED) if not a.status.ended else a
                for a in self.truth.actions
            ),
        )
        self._publish()

    async def pause(self) -> None:
        await self._instant("pause")
        self.truth = replace(self.truth, paused=True, driving=False)
        self._publish()

    async def resume(self) -> None:
        await self._instant("resume")
        self.truth = replace(self.truth, paused=False, driving=bool(self.truth.released_remaining))
        self._publish()

    async def start_charging(self) -> None:
        await self._instant("start_charging")
        if self.truth.busy:
            raise self._rejected("startCharging", "chargingError", "the van is busy")
        self.truth = replace(self.truth, charging=True)
        self._publish()

    async def stop_charging(self) -> None:
        await self._instant("stop_charging")
        self.truth = replace(self.truth, charging=False)
        self._publish()

    async def _instant(self, command: str) -> None:
        fault = await self._check(command)
        if fault is not None:
            raise self._rejected(command, "actionError", fault.reason)

    async def request_state(self) -> VanState:
        await self._instant("request_state")
        self._publish()
        assert self._heard is not None
        return self._heard

    async def request_factsheet(self) -> VanCapabilities:
        await self._instant("request_factsheet")
        return self.capabilities

    async def wait_trip(self, trip_id: str, within: float | None) -> TripResult:
        self.commands.append("wait_trip")
        assert self.registry is not None
        seen = False

        def done(_: VehicleEntry) -> bool:
            nonlocal seen
            if self.status.link is LinkState.OFFLINE:
                raise LinkLost(f"van {self.vehicle_id} is offline", vehicle_id=self.vehicle_id)
            state = self._heard
            if state is None:
                return False
            if state.trip_id == trip_id:
                seen = True
                return not state.busy
            if seen or (self._trip is not None and self._trip.trip_id != trip_id):
                raise Conflict(
                    f"van {self.vehicle_id} now runs trip {state.trip_id}, not {trip_id}",
                    vehicle_id=self.vehicle_id,
                    trip_id=trip_id,
                )
            return False

        try:
            await self.registry.wait_for(self.vehicle_id, done, within, self.clock)
        except TimeoutError:
            raise CommandTimeout(
                f"trip {trip_id} not done within {within} s",
                vehicle_id=self.vehicle_id,
                trip_id=trip_id,
            ) from None
        state = self._heard
        assert state is not None
        ids = self._trip_actions.get(trip_id, [])
        return TripResult(
            trip_id=trip_id,
            actions=tuple(
                state.action(aid) or ActionProgress(aid, "", ActionStatus.FAILED) for aid in ids
            ),
        )

    def __repr__(self) -> str:
        t = self.truth
        return (
            f"FakeVan({self.vehicle_id!r}, trip {t.trip_id or '-'} at {t.last_node_id}, "
            f"{len(t.remaining_nodes)} nodes left, loads {self.load_ids})"
        )


__all__ = ["FakeVan", "Settle"]
