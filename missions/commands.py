"""Operators' commands to vehicles, with a durable life cycle (``docs/api.md``, "Vehicle
commands").

A command (:class:`CommandKind`) goes to one vehicle, or with a confirmation to every online
vehicle it fits (:meth:`CommandService.issue_fleet`). Its record (``vehicle_command``) moves
``accepted`` (stored) -> ``sent`` (handed to the vehicle's link) -> ``acknowledged`` (the vehicle
accepted it: MAVLink COMMAND_ACK ACCEPTED, VDA 5050 instant action FINISHED) -> ``succeeded``
once the live registry shows the vehicle in the commanded state (:func:`reached`) within
``commands.state_timeout_s`` world seconds of sending; ``failed`` when the vehicle refused (its
words are kept) and ``timed_out`` when it did not answer or was not seen in the state in time.

With missions (one mechanism each, the mission service's own):

* ``hold`` (drone) and ``pause`` (van) during a mission: the run notes "held by <operator>:
  <reason>" and keeps following; its deadline does not run while held
  (:meth:`missions.run.MissionRun.hold_for`). ``resume`` notes it and the deadline runs again.
* ``return`` / ``land`` (drone) and ``cancel_order`` (van) during a mission: the mission is
  cancelled through :meth:`missions.service.MissionService.cancel_mission`, the command being
  what its run sends the vehicle to stop it (:class:`missions.run.StopCommand`: a ``return``
  is what a cancel in flight sends anyway; a ``land`` lands where the drone is; a
  ``cancel_order`` is the van run's own ``cancelOrder``), so the mission ends as a cancelled one
  does. A vehicle that refuses the command leaves the mission as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

import structlog

from fleet.drone import DroneControl
from fleet.errors import (
    CommandRejected,
    CommandTimeout,
    Conflict,
    NotFound,
    StreetfleetError,
    ValidationError,
)
from fleet.registry import VehicleEntry
from fleet.store.commands import CommandRecords
from fleet.store.tables import VehicleCommand, new_id
from fleet.van import VanControl, VanState
from fleet.vehicle import FlightMode, LandedState, LinkState, MissionRunState, VehicleKind
from missions.context import MissionContext
from missions.journal import EventKind
from missions.run import MissionRun, StopCommand
from missions.service import MissionService
from missions.states import MissionState, Phase

log = structlog.get_logger(__name__)


class CommandKind(StrEnum):
    """What an operator may command a vehicle to do."""

    RETURN = "return"
    """Drone: return to launch (PX4 Return, AUTO.RTL) and land there."""
    LAND = "land"
    """Drone: land where it is (PX4 Land, AUTO.LAND)."""
    HOLD = "hold"
    """Drone: stop and hover where it is (PX4 Hold, AUTO.LOITER)."""
    RESUME = "resume"
    """Drone: go on with its mission from the current item (PX4 Mission, AUTO.MISSION); van:
    drive on after a pause (VDA 5050 ``stopPause``)."""
    PAUSE = "pause"
    """Van: stop driving, keep the order (VDA 5050 ``startPause``)."""
    CANCEL_ORDER = "cancel_order"
    """Van: drop the current order (VDA 5050 ``cancelOrder``)."""


class CommandState(StrEnum):
    """Life cycle of a command's record."""

    ACCEPTED = "accepted"
    """Checked and stored; not sent yet."""
    SENT = "sent"
    """Handed to the vehicle's link (re-sent by the link until answered)."""
    ACKNOWLEDGED = "acknowledged"
    """The vehicle accepted it (COMMAND_ACK ACCEPTED, instant action FINISHED)."""
    SUCCEEDED = "succeeded"
    """The vehicle was seen in the commanded state."""
    FAILED = "failed"
    """The vehicle refused it (its words in ``vehicle_words``), or it could not be sent."""
    TIMED_OUT = "timed_out"
    """No answer, or the commanded state not seen within ``commands.state_timeout_s``."""


COMMAND_FINAL = frozenset({CommandState.SUCCEEDED, CommandState.FAILED, CommandState.TIMED_OUT})
"""States after which a record no longer changes."""

DRONE_COMMANDS = (CommandKind.RETURN, CommandKind.LAND, CommandKind.HOLD, CommandKind.RESUME)
"""Commands for MAVLink vehicles (PX4 drones and rovers)."""
VAN_COMMANDS = (CommandKind.PAUSE, CommandKind.RESUME, CommandKind.CANCEL_ORDER)
"""Commands for VDA 5050 vans."""
COMMANDS_BY_KIND: dict[VehicleKind, tuple[CommandKind, ...]] = {
    VehicleKind.DRONE: DRONE_COMMANDS,
    VehicleKind.ROVER: DRONE_COMMANDS,
    VehicleKind.VAN: VAN_COMMANDS,
}
"""Which commands each kind of vehicle takes."""
AIRBORNE = frozenset({LandedState.IN_AIR, LandedState.TAKING_OFF, LandedState.LANDING})
NOTHING_TO_RESUME = frozenset(
    {MissionRunState.NO_MISSION, MissionRunState.INVALID, MissionRunState.COMPLETE}
)
WAIT_FOR_STOP_S = 0.2
"""Real seconds between looks at a run that was asked to stop its vehicle with a command."""


def fits(kind: VehicleKind, command: CommandKind) -> bool:
    """Whether a vehicle of ``kind`` takes ``command``."""
    return command in COMMANDS_BY_KIND.get(kind, ())


def confirmation(count: int) -> str:
    """The text that confirms a fleet-wide command reaching ``count`` vehicles."""
    return f"ALL {count} VEHICLES"


@dataclass(frozen=True, slots=True)
class Before:
    """What the vehicle was doing when the command went out (to judge a change against)."""

    trip_id: str = ""
    """The van's order."""


def _van_state(entry: VehicleEntry) -> VanState | None:
    control = entry.control
    return control.state if isinstance(control, VanControl) else None


def reached(command: CommandKind, entry: VehicleEntry, before: Before) -> str | None:
    """What shows that the vehicle is in the commanded state (None: not yet), from its live
    status: a drone's mode (Hold, Return, Land, Mission) or, after ``land``, its landed state; a
    van's ``paused`` flag, or for ``cancel_order`` the order it drove gone (no node left, or
    another order since)."""
    st = entry.status
    if entry.info.kind is VehicleKind.VAN:
        vs = _van_state(entry)
        if vs is None:
            return None
        if command is CommandKind.PAUSE:
            return "the van reports itself paused" if vs.paused else None
        if command is CommandKind.RESUME:
            return "the van reports itself no longer paused" if not vs.paused else None
        if command is CommandKind.CANCEL_ORDER:
            if vs.trip_id != before.trip_id:
                return f"the van no longer drives order {before.trip_id or '(none)'}"
            return "the van holds no node of its order" if not vs.remaining_nodes else None
        return None
    mode = {
        CommandKind.RETURN: FlightMode.RTL,
        CommandKind.LAND: FlightMode.LAND,
        CommandKind.HOLD: FlightMode.HOLD,
        CommandKind.RESUME: FlightMode.MISSION,
    }.get(command)
    if mode is not None and st.mode is mode:
        return f"mode {mode} reported"
    if command is CommandKind.LAND and st.landed is LandedState.ON_GROUND:
        return "landed"
    return None


def _describe(entry: VehicleEntry) -> str:
    st = entry.status
    if entry.info.kind is VehicleKind.VAN:
        vs = _van_state(entry)
        if vs is None:
            return "no state reported"
        return (
            f"paused {vs.paused}, driving {vs.driving}, order {vs.trip_id or '(none)'} with "
            f"{len(vs.remaining_nodes)} node(s) left"
        )
    return f"mode {st.mode}, {st.landed}, mission {st.mission.state}"


Send = Callable[[], Awaitable[None]]


class CommandService:
    """Accepts, sends and follows operators' commands; one task per command in flight, owned
    by the service's TaskGroup (an async context manager)."""

    def __init__(self, ctx: MissionContext, missions: MissionService) -> None:
        self.ctx = ctx
        self.missions = missions
        self.records = CommandRecords(ctx.store)
        self.timeout_s = ctx.settings.commands.state_timeout_s
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sending: dict[str, asyncio.Lock] = {}
        """Per vehicle: its commands go out one at a time, in the order they were accepted."""

    async def __aenter__(self) -> Self:
        await self._close_orphans()
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        for task in list(self._tasks.values()):
            task.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)

    async def _close_orphans(self) -> None:
        """Commands a stopped service left unfinished: nobody saw how they ended."""
        open_states = [s for s in CommandState if s not in COMMAND_FINAL]
        for rec in await self.records.unfinished(open_states):
            await self.records.update(
                rec.id,
                state=CommandState.TIMED_OUT,
                ended_at=self.ctx.clock.now(),
                outcome=f"the service stopped while the command was {rec.state}; "
                "its outcome was not observed",
            )

    # --- accepting ---------------------------------------------------------------------------

    def check(self, entry: VehicleEntry, command: CommandKind) -> None:
        """Raise why ``command`` cannot go to the vehicle now: ``ValidationError`` (field
        ``command``) when it does not fit the vehicle's kind, ``Conflict`` when the link is not
        up or, for a drone's ``resume``, when there is no mission to go on with."""
        info, st = entry.info, entry.status
        if not fits(info.kind, command):
            takes = ", ".join(COMMANDS_BY_KIND.get(info.kind, ())) or "none"
            raise ValidationError(
                f"{command} does not apply to {info.kind} {info.id} (it takes: {takes})",
                field="command",
                vehicle_id=info.id,
                vehicle_kind=str(info.kind),
            )
        if st.link is not LinkState.ONLINE:
            raise Conflict(
                f"{info.id} cannot be commanded now: its link is {st.link}",
                vehicle_id=info.id,
                link=str(st.link),
            )
        if info.kind is VehicleKind.VAN:
            if not isinstance(entry.control, VanControl):
                raise Conflict(f"{info.id} takes no commands", vehicle_id=info.id)
            return
        if not isinstance(entry.control, DroneControl):
            raise Conflict(f"{info.id} takes no commands", vehicle_id=info.id)
        if command is CommandKind.RESUME:
            run = self.missions.run_of(info.id)
            if run is None or MissionState(run.mission.state) is not MissionState.UNDERWAY:
                raise Conflict(
                    f"{info.id} has no mission to resume: no mission of this service is under "
                    "way on it",
                    vehicle_id=info.id,
                )
            if st.mission.state in NOTHING_TO_RESUME:
                raise Conflict(
                    f"{info.id} has no mission to resume: it reports its mission "
                    f"{st.mission.state}",
                    vehicle_id=info.id,
                    mission_id=run.mission.id,
                    mission_state=str(st.mission.state),
                )

    async def issue(
        self,
        vehicle_id: str,
        command: CommandKind,
        reason: str,
        *,
        actor: str,
        role: str = "",
        idempotency_key: str | None = None,
    ) -> tuple[VehicleCommand, bool]:
        """Accept a command for one vehicle and start it; returns the record and whether it
        was created (False: the record made earlier under ``idempotency_key``)."""
        reason = _required_reason(reason)
        if idempotency_key:
            earlier = await self.records.by_key(idempotency_key, vehicle_id)
            if earlier:
                return _same(earlier[0], command), False
        entry = self.ctx.registry.find(vehicle_id)
        if entry is None:
            raise NotFound("vehicle", vehicle_id)
        self.check(entry, command)
        rec = self._record(entry, command, reason, actor, role, idempotency_key, None)
        try:
            await self.records.add(rec)
        except Conflict:
            if idempotency_key:  # lost a race with an identical retry
                earlier = await self.records.by_key(idempotency_key, vehicle_id)
                if earlier:
                    return _same(earlier[0], command), False
            raise
        await self._start(rec)
        return rec, True

    def reach(self, command: CommandKind) -> list[VehicleEntry]:
        """The vehicles a fleet-wide ``command`` reaches now: online vehicles of the kinds it
        fits that can take it (a drone in the air for ``return``, ``land`` and ``hold``; a drone
        with a mission under way for ``resume``), by id."""
        out = []
        for entry in sorted(self.ctx.registry, key=lambda e: e.info.id):
            try:
                self.check(entry, command)
            except StreetfleetError:
                continue
            st = entry.status
            drone = entry.info.kind is not VehicleKind.VAN
            grounded = st.landed not in AIRBORNE and not st.armed
            if drone and command is not CommandKind.RESUME and grounded:
                continue
            out.append(entry)
        return out

    async def issue_fleet(
        self,
        command: CommandKind,
        reason: str,
        confirm: str | None,
        *,
        actor: str,
        role: str = "",
        idempotency_key: str | None = None,
    ) -> tuple[list[VehicleCommand], bool]:
        """Send ``command`` to every vehicle :meth:`reach` gives, one record each. ``confirm``
        must read ``ALL <n> VEHICLES`` with ``n`` the number of vehicles it reaches now
        (``ValidationError`` on field ``confirm`` otherwise, with the expected text)."""
        reason = _required_reason(reason)
        if idempotency_key:
            earlier = await self.records.by_key(idempotency_key)
            if earlier:
                return [_same(r, command) for r in earlier], False
        targets = self.reach(command)
        expected = confirmation(len(targets))
        if confirm is None or not confirm.strip():
            raise ValidationError(
                f"a fleet-wide {command} must be confirmed: it reaches {len(targets)} "
                f'vehicle(s) now; send "confirm": "{expected}"',
                field="confirm",
                expected=expected,
                count=len(targets),
            )
        if not targets:
            raise Conflict(f"no online vehicle can take {command} now", count=0)
        if " ".join(confirm.split()).upper() != expected:
            raise ValidationError(
                f"the confirmation {confirm!r} does not match: {command} reaches "
                f'{len(targets)} vehicle(s) now; send "confirm": "{expected}"',
                field="confirm",
                expected=expected,
                count=len(targets),
            )
        batch = new_id()
        records = [
            self._record(e, command, reason, actor, role, idempotency_key, batch) for e in targets
        ]
        try:
            await self.records.add(*records)
        except Conflict:
            if idempotency_key:
                earlier = await self.records.by_key(idempotency_key)
                if earlier:
                    return [_same(r, command) for r in earlier], False
            raise
        for rec in records:
            await self._start(rec)
        return records, True

    def _record(
        self,
        entry: VehicleEntry,
        command: CommandKind,
        reason: str,
        actor: str,
        role: str,
        key: str | None,
        batch: str | None,
    ) -> VehicleCommand:
        run = self.missions.run_of(entry.info.id)
        return VehicleCommand(
            vehicle_id=entry.info.id,
            vehicle_kind=str(entry.info.kind),
            command=str(command),
            state=CommandState.ACCEPTED,
            reason=reason,
            requested_by=actor,
            role=role,
            idempotency_key=key,
            batch_id=batch,
            mission_id=run.mission.id if run is not None else None,
            accepted_at=self.ctx.clock.now(),
        )

    async def _start(self, rec: VehicleCommand) -> None:
        run = self.missions.run_of(rec.vehicle_id)
        if run is not None and run.mission.id == rec.mission_id:
            await run.note(
                EventKind.DECISION,
                f"{rec.command} commanded by {rec.requested_by}: {rec.reason}",
                command_id=rec.id,
                command=rec.command,
                actor=rec.requested_by,
            )
        assert self._tg is not None, "the command service is not running"
        self._tasks[rec.id] = self._tg.create_task(self._follow(rec), name=f"command-{rec.id}")

    # --- following one command ---------------------------------------------------------------

    async def _set(self, rec: VehicleCommand, state: CommandState, **changes: Any) -> None:
        now = self.ctx.clock.now()
        stamp = {
            CommandState.SENT: "sent_at",
            CommandState.ACKNOWLEDGED: "acknowledged_at",
        }.get(state, "ended_at")
        updated = await self.records.update(rec.id, state=state, **{stamp: now}, **changes)
        rec.state, rec.outcome = updated.state, updated.outcome
        log.info(
            "command.state",
            command_id=rec.id,
            vehicle_id=rec.vehicle_id,
            command=rec.command,
            state=str(state),
            outcome=updated.outcome,
        )

    async def _follow(self, rec: VehicleCommand) -> None:
        try:
            await self._drive(rec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave a record without an end
            log.exception("command.crashed", command_id=rec.id)
            try:
                await self._set(rec, CommandState.FAILED, outcome=f"internal error: {exc}")
            except StreetfleetError:
                log.exception("command.record_failed", command_id=rec.id)
        finally:
            self._tasks.pop(rec.id, None)

    async def _drive(self, rec: VehicleCommand) -> None:
        """Send the command, then watch the vehicle until it is in the commanded state or the
        time is up."""
        clock = self.ctx.clock
        command = CommandKind(rec.command)
        entry = self.ctx.registry.find(rec.vehicle_id)
        if entry is None:
            await self._set(rec, CommandState.FAILED, outcome="the vehicle is no longer known")
            return
        run = self.missions.run_of(rec.vehicle_id)
        if run is not None and run.mission.id != rec.mission_id:
            run = None
        vs = _van_state(entry)
        before = Before(trip_id=vs.trip_id if vs is not None else "")
        deadline = clock.time() + self.timeout_s
        try:
            async with self._sending.setdefault(rec.vehicle_id, asyncio.Lock()):
                deadline = clock.time() + self.timeout_s  # from sending
                await self._set(rec, CommandState.SENT)
                await self._send(rec, command, entry, run)
        except CommandRejected as exc:
            words = str(exc.fields.get("reason") or "") or exc.message
            result = exc.fields.get("error_type") or exc.fields.get("result")
            await self._set(
                rec,
                CommandState.FAILED,
                outcome=f"refused by the vehicle: {exc.message}",
                vehicle_result=str(result)[:64] if result else None,
                vehicle_words=words[:1000],
            )
            await self._note(run, f"{rec.command} refused by {rec.vehicle_id}: {words}", rec)
            return
        except CommandTimeout as exc:
            await self._set(rec, CommandState.TIMED_OUT, outcome=f"no answer: {exc.message}")
            return
        except StreetfleetError as exc:
            await self._set(rec, CommandState.FAILED, outcome=f"not sent: {exc.message}")
            return
        await self._set(rec, CommandState.ACKNOWLEDGED)
        await self._after_ack(rec, command, run)
        try:
            seen = await self.ctx.registry.wait_for(
                rec.vehicle_id,
                lambda e: reached(command, e, before) is not None,
                max(0.0, deadline - clock.time()),
                clock,
            )
        except (TimeoutError, NotFound):
            now = self.ctx.registry.find(rec.vehicle_id)
            state = _describe(now) if now is not None else "the vehicle is gone"
            await self._set(
                rec,
                CommandState.TIMED_OUT,
                outcome=f"accepted, but not seen {command} within {self.timeout_s:g} s ({state})",
            )
            return
        await self._set(
            rec, CommandState.SUCCEEDED, outcome=reached(command, seen, before) or "reached"
        )

    async def _note(self, run: MissionRun | None, text: str, rec: VehicleCommand) -> None:
        if run is None or MissionState(run.mission.state) not in (
            MissionState.PLANNED,
            MissionState.AUTHORIZED,
            MissionState.UNDERWAY,
        ):
            return
        await run.note(EventKind.DECISION, text, command_id=rec.id, command=rec.command)

    async def _after_ack(
        self, rec: VehicleCommand, command: CommandKind, run: MissionRun | None
    ) -> None:
        """The mission follows what the operator did: a hold or pause holds its deadline, a
        resume lets it run again."""
        if run is None:
            return
        who = f"{rec.requested_by}: {rec.reason}"
        if command is CommandKind.HOLD:
            await run.hold_for(f"held by {who}", command_id=rec.id)
        elif command is CommandKind.PAUSE:
            await run.hold_for(f"paused by {who}", command_id=rec.id)
        elif command is CommandKind.RESUME:
            await run.end_hold(f"resumed by {who}", command_id=rec.id)

    async def _send(
        self,
        rec: VehicleCommand,
        command: CommandKind,
        entry: VehicleEntry,
        run: MissionRun | None,
    ) -> None:
        """Send the command: through the mission's cancel when it ends the mission, else
        straight to the vehicle. Raises the vehicle's ``VehicleError``."""
        send = _sender(command, entry)
        ends_mission = command in (CommandKind.RETURN, CommandKind.LAND, CommandKind.CANCEL_ORDER)
        if run is None or not ends_mission:
            await send()
            return
        stop = {
            CommandKind.RETURN: (Phase.RETURN, "returning to launch"),
            CommandKind.LAND: (Phase.LANDING, "landing where it is"),
        }.get(command, (None, ""))
        await self._through_cancel(rec, run, send, stop[0], stop[1])

    async def _through_cancel(
        self, rec: VehicleCommand, run: MissionRun, send: Send, phase: Phase | None, doing: str
    ) -> None:
        """Cancel the run's mission with the command as the way its vehicle is stopped
        (:class:`missions.run.StopCommand`), and wait until the run has sent it. A run that
        stops without sending it (the mission had not started) leaves it to be sent here. A
        refusal withdraws the cancel: the mission goes on as before."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def stop() -> None:
            try:
                await send()
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
                raise
            except BaseException:
                done.cancel()
                raise
            if not done.done():
                done.set_result(None)

        try:
            await self.missions.cancel_mission(
                run.mission.id,
                rec.requested_by,
                f"{rec.command} commanded: {rec.reason}",
                stop=StopCommand(stop, phase, doing),
            )
        except (Conflict, NotFound):  # ended meanwhile
            await send()
            return
        while not done.done() and self.missions.runs.get(run.mission.id) is run:
            await asyncio.wait([done], timeout=WAIT_FOR_STOP_S)
        if not done.done():
            await send()  # stopped before its vehicle started: nothing sent it
            return
        if done.cancelled():
            raise asyncio.CancelledError
        exc = done.exception()
        if exc is None:
            return
        if isinstance(exc, CommandRejected):
            run.withdraw_cancel()
            await run.note(
                EventKind.DECISION,
                f"{rec.vehicle_id} refused the {rec.command}; the mission goes on",
                command_id=rec.id,
            )
        raise exc

    # --- reading -----------------------------------------------------------------------------

    async def get(self, command_id: str) -> VehicleCommand:
        return await self.records.get(command_id)

    async def of_vehicle(
        self, vehicle_id: str, *, limit: int, offset: int, newest_first: bool = True
    ) -> list[VehicleCommand]:
        return list(
            await self.records.of_vehicle(
                vehicle_id, limit=limit, offset=offset, newest_first=newest_first
            )
        )


def _sender(command: CommandKind, entry: VehicleEntry) -> Send:
    """The control-port call that sends ``command`` to the vehicle."""
    control = entry.control
    if isinstance(control, VanControl):
        van = {
            CommandKind.PAUSE: control.pause,
            CommandKind.RESUME: control.resume,
            CommandKind.CANCEL_ORDER: control.cancel_trip,
        }
        return van[command]
    if isinstance(control, DroneControl):
        drone = {
            CommandKind.RETURN: control.return_to_launch,
            CommandKind.LAND: control.land,
            CommandKind.HOLD: control.hold,
            CommandKind.RESUME: control.resume_mission,
        }
        return drone[command]
    raise Conflict(f"{entry.info.id} takes no commands", vehicle_id=entry.info.id)


def _required_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise ValidationError("say why the vehicle is commanded", field="reason")
    return text


def _same(rec: VehicleCommand, command: CommandKind) -> VehicleCommand:
    """The record made earlier under the same idempotency key, if it is the same command."""
    if rec.command != command:
        raise Conflict(
            f"the Idempotency-Key was used for a {rec.command} command ({rec.id}), not {command}",
            command_id=rec.id,
        )
    return rec
