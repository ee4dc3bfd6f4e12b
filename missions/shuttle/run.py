"""Shuttle runs: drive one van through one trip (a ``van_shuttle`` mission) and book what it does.

A delivery trip goes ``planned`` -> ``authorized`` (checks passed, the trip is being sent) ->
``underway`` (the van accepted the order and holds it) -> ``completed`` when every load was
dropped at its gate and the van is back at the dock. While underway the run follows the van's
state reports: every pick and drop that ends is booked once (its action id is remembered in
``Mission.result["booked"]`` in the same transaction), so a run resumed after a restart books
what happened meanwhile and nothing twice.

What ends a trip early, and what happens to its work (``docs/shuttles.md``):

* a drop that fails: the load stays on the van; at the dock the run unloads it (a return
  trip: ``drop`` actions at the dock) and books the goods back into stock; the work is
  requeued;
* a pick that fails (explained by the van's error that names it): its work is requeued, and
  the van is not driven on as if the load were aboard: once every pick has ended the order is
  cancelled and the trip driven on to the gates of the loads that are aboard only
  (``plan.order``, ``plan.skip``; nothing aboard: the trip ends there);
* an operator cancel: the van is told to ``cancelOrder`` (running loads finish first), drives
  back to the dock from where it stopped (the next trip starts at its pose with an allowed
  deviation), unloads what it carries; unloaded work is requeued; ``cancelled`` only once the
  van confirmed the cancel (the action FINISHED and its order cleared). A cancel the van
  rejects or ignores is noted as an operator alert and the mission goes on as the van drives
  it, to whatever end it really has;
* the van taken out of service: ``cancelOrder``; its loads stay on board (nobody should drive
  it) and are *stranded*; its work is requeued at once; ``interrupted``;
* the link lost for longer than ``shuttle.link_lost_grace_s`` (a broker restart marks every
  van LOST while they keep driving, so the grace is generous), or the trip not done within
  ``shuttle.trip_timeout_s``: its undelivered work is requeued and its loads are stranded;
  ``interrupted``. When the van is heard again, the planner reconciles what it reports and
  sends it home with a return trip (:mod:`missions.shuttle.recovery`).

A *return* mission (``plan.purpose == "return"``) drives a van to its dock and unloads loads
that other missions stranded, booking them back into stock against those missions.

Why this module is longer than the project's ~600-line guide: a van trip has more endings than a
flight (done, refused, cancelled on the road with a way home, van lost with stranded loads, taken
out of service, return trips that book stranded loads back), and they share the run's state;
following is :mod:`missions.follow`, booking :mod:`.booking`, recovery :mod:`.recovery`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import structlog

from fleet.errors import (
    CommandRejected,
    NotFound,
    PlanningError,
    StreetfleetError,
    ValidationError,
    VehicleError,
)
from fleet.registry import VehicleEntry
from fleet.store.repository import Session
from fleet.store.tables import Mission, MissionEvent
from fleet.van import ActionStatus, EStop, OperatingMode, VanControl, VanState, new_action_id
from missions.context import MissionContext
from missions.follow import Follower, Notes
from missions.journal import EventKind
from missions.run import MissionRun
from missions.shuttle import booking
from missions.shuttle.timing import world_floor
from missions.shuttle.trips import DELIVERY, RETURN, LoadPlan, TripPlan, build_trip, replace_plan
from missions.states import MissionKind, MissionState, Phase

log = structlog.get_logger(__name__)

LINK_LOST_REAL_FLOOR_S = 10.0
"""The link-loss grace is never shorter than this in real seconds (a broker restart takes
seconds of real time, however fast the world clock runs)."""
POLL_S = 30.0
"""World seconds between checks of a van whose state does not change (link, service flag)."""
POLL_REAL_FLOOR_S = 0.25
"""...and never more often than this in real seconds."""
DEVIATION_MARGIN_M = 2.0
"""Added to a stopped van's distance from its last node when a trip starts there."""


def way_home(
    world: Any,
    state: VanState | None,
    dock_node_id: str,
    path: Sequence[str] = (),
) -> tuple[tuple[str, ...], float | None]:
    """The stops of a trip that takes a stopped van back to its dock, and the allowed
    deviation of the first one.

    The trip starts at the van's last node (VDA 5050 6.6.3.1: a new order starts where the van
    is); when the van stands off that node, on the way to the next node of ``path`` (the order
    it was driving), it goes on to that node first (no U-turn in the street) and the first
    node's allowed deviation covers its distance from it.
    """
    net = world.road_network
    node_id = state.last_node_id if state is not None and state.last_node_id else ""
    pose = state.map_pose if state is not None else None
    if not node_id:
        if pose is None:
            return (dock_node_id,), None
        node_id = net.nearest_node((pose[0], pose[1])).id
    off = math.dist((pose[0], pose[1]), net.node(node_id).xy) if pose is not None else 0.0
    if off <= 0.5:
        stops: tuple[str, ...] = (node_id,) if node_id == dock_node_id else (node_id, dock_node_id)
        return stops, None
    ahead = ""
    if node_id in path:
        i = list(path).index(node_id)
        ahead = path[i + 1] if i + 1 < len(path) else ""
    stops = (node_id, ahead) if ahead else (node_id,)
    if stops[-1] != dock_node_id or len(stops) == 1:
        stops = (*stops, dock_node_id)
    return stops, round(off + DEVIATION_MARGIN_M, 2)


def drivable(state: VanState) -> bool:
    """The van takes orders: automatic mode, no emergency stop."""
    return state.operating_mode is OperatingMode.AUTOMATIC and state.e_stop is EStop.NONE


class ShuttleRun(MissionRun):
    """Executes one van trip (delivery or return)."""

    kind = MissionKind.VAN_SHUTTLE
    resumable = True

    def __init__(self, ctx: MissionContext, mission: Mission, on_done: Any) -> None:
        super().__init__(ctx, mission, on_done)
        self.trip = TripPlan.from_json(mission.plan)
        self.cfg = ctx.settings.shuttle
        self._stop_requested: str | None = None
        """Set when the van was taken out of service."""
        self._cancel_confirmed = False
        """The van confirmed a cancel: ``cancelOrder`` FINISHED and its order cleared."""
        self._cancel_refused = ""
        """What the van did with a cancel it did not confirm (for the record)."""
        self._drove_on = False
        """The run has stopped the van after a failed pick (once per run)."""

    # --- helpers ------------------------------------------------------------------------------

    def _control(self) -> VanControl:
        ctl = self.ctx.registry.get(self.vehicle_id).control
        if not isinstance(ctl, VanControl):
            raise ValidationError(f"{self.vehicle_id} is not a van", field="vehicle_id")
        return ctl

    @property
    def _booked(self) -> set[str]:
        return set(self.mission.result.get("booked", []))

    def _speed(self) -> float:
        return self.ctx.clock.speed

    async def _commit(
        self, events_fn: Any, *, booked: set[str] | None = None, **result: Any
    ) -> list[MissionEvent]:
        """Run ``events_fn(session)`` and record ``booked`` and ``result`` in one transaction."""
        async with self.ctx.store.transaction() as s:
            events = list(await events_fn(s)) if events_fn is not None else []
            # after events_fn: it may add to ``booked`` and to the values in ``result``
            new_result = dict(self.mission.result)
            if booked is not None:
                new_result["booked"] = sorted(booked)
            new_result.update(result)
            updated = await self.ctx.store.update_mission(
                self.mission.id, session=s, result=new_result
            )
        self.mission = updated  # once committed (see MissionRun.transition)
        self.ctx.journal.published(*events)
        return events

    # --- the run ------------------------------------------------------------------------------

    async def _run(self) -> None:
        if MissionState(self.mission.state) == MissionState.PLANNED and not await self._start():
            return
        await self._follow()

    async def _start(self) -> bool:
        """Send the trip. False if the mission ended instead."""
        if self._cancel_requested:
            await self.cancel_unstarted(self._cancel_requested)
            return False
        tp = self.trip
        try:
            ctl = self._control()
            vs = ctl.state
            trip = build_trip(self.ctx.world, tp, self.cfg.max_speed_kmh)
            if vs is not None and vs.charging:
                await self.note(
                    EventKind.VEHICLE,
                    f"stops charging at {vs.battery_fraction:.0%} for trip {tp.number}",
                )
                await ctl.stop_charging()
            what = (
                "; ".join(ld.describe() for ld in tp.loads)
                if tp.purpose == DELIVERY
                else f"bring back {', '.join(ld.load_id for ld in tp.loads)}"
            )
            await self.transition(
                MissionState.AUTHORIZED,
                f"trip {tp.number or ''} checked: {tp.boxes} boxes, {tp.kg:.0f} kg, "
                f"{tp.distance_m / 1000:.1f} km on the roads; {what}",
                phase=Phase.PREFLIGHT,
            )
            await ctl.send_trip(trip)
        except (VehicleError, NotFound, ValidationError, PlanningError) as exc:
            await self._fail_unstarted(f"the van did not take the trip: {exc}")
            return False

        async def started(s: Session) -> list[MissionEvent]:
            ids = [rid for ld in tp.loads for rid in ld.request_ids]
            return await booking.settle(
                self.ctx, s, self.mission, ids, f"on its way on {self.vehicle_id}"
            )

        await self.transition(
            MissionState.UNDERWAY,
            f"{self.vehicle_id} accepted the trip (order {tp.trip_id})",
            phase=Phase.PICK_UP if tp.purpose == DELIVERY else Phase.RETURN,
            extra=started if tp.purpose == DELIVERY else None,
        )
        return True

    async def _fail_unstarted(self, reason: str) -> None:
        """The van never had the trip: its work goes back to the queue (base rule); a return
        trip keeps its loads stranded, to be tried again."""
        if self.trip.purpose == RETURN:
            await self._end(MissionState.FAILED, reason, stranded=list(self.trip.loads))
            return
        await MissionRun._fail(self, reason)

    async def _fail(self, reason: str) -> None:
        state = MissionState(self.mission.state)
        if state in (MissionState.PLANNED, MissionState.AUTHORIZED):
            await self._fail_unstarted(reason)
        else:
            await self._strand(MissionState.FAILED, reason)

    # --- following the van --------------------------------------------------------------------

    async def _follow(self) -> None:
        """Follow the van through its trip (:class:`missions.follow.Follower`): book every pick
        and drop as the van reports it; a van unheard (or its link down) longer than the grace
        strands the trip, to be planned again."""
        clock = self.ctx.clock
        started = self.mission.started_at.timestamp() if self.mission.started_at else clock.time()
        grace = world_floor(self._speed(), self.cfg.link_lost_grace_s, LINK_LOST_REAL_FLOOR_S)
        poll = world_floor(self._speed(), POLL_S, POLL_REAL_FLOOR_S)
        next_service_check = clock.monotonic()
        follower = Follower(
            self.ctx.registry,
            clock,
            self.vehicle_id,
            deadline=started + self.cfg.trip_timeout_s,
            poll_s=poll,
            absent_poll_s=poll,
            tick_when_quiet=True,
            lost_grace_s=grace,
            absent_grace_s=grace,
            skip_while_lost=True,
            notes=Notes(lost="link {link}; the van keeps driving its trip"),
        )
        self.follower = follower

        async def wants_stop() -> bool:
            nonlocal next_service_check
            if clock.monotonic() >= next_service_check:
                next_service_check = clock.monotonic() + poll
                v = await self.ctx.store.vehicle(self.vehicle_id)
                if v is not None and not v.in_service and self._stop_requested is None:
                    self._stop_requested = "taken out of service"
            return bool(self._cancel_requested or self._stop_requested)

        async def stop() -> None:
            await self._cancel_and_confirm()

        async def update(entry: VehicleEntry) -> bool:
            vs = self._control().state
            if vs is None:
                return False
            tp = self.trip
            if vs.trip_id != tp.order_id:
                if vs.trip_id.startswith(tp.trip_id):
                    return False  # our own unload trip (after a restart)
                await self._strand(
                    MissionState.INTERRUPTED,
                    f"the van now runs order {vs.trip_id or '(none)'}, not this trip",
                )
                return True
            await self._sync(vs)
            if vs.busy and not self._drove_on and not follower.stop_sent and self._picks_failed(vs):
                return await self._drive_on_without_failed(vs)
            if not vs.busy:
                await self._trip_over(vs, cancelled=self._cancel_confirmed)
                return True
            return False

        async def overdue() -> None:
            await self._strand(
                MissionState.INTERRUPTED,
                f"trip not done {self.cfg.trip_timeout_s / 3600:.1f} h after it started",
            )

        async def gone(why: str) -> None:
            if why.startswith("not heard"):
                why = f"van {why}; its undelivered work is planned again"
            await self._strand(MissionState.INTERRUPTED, why)

        await follower.follow(
            update,
            overdue=overdue,
            note=self._vehicle_note,
            stop_requested=wants_stop,
            stop=stop,
            gone=gone,
        )

    async def _sync(self, vs: VanState) -> None:
        """Book every pick and drop of this trip that ended since the last look."""
        tp = self.trip
        booked = self._booked
        todo: list[tuple[str, LoadPlan, ActionStatus, str]] = []
        for ld in tp.loads:
            if tp.purpose == DELIVERY:
                key = f"pick:{ld.load_id}"
                p = vs.action(ld.pick_action_id)
                if key not in booked and p is not None and p.status.ended:
                    todo.append((key, ld, p.status, p.why))
            key = f"drop:{ld.load_id}"
            d = vs.action(ld.drop_action_id)
            if key not in booked and d is not None and d.status.ended:
                todo.append((key, ld, d.status, d.why))
        if todo:
            await self._book(todo, booked)
        await self._phase(vs)

    async def _book(
        self, todo: list[tuple[str, LoadPlan, ActionStatus, str]], booked: set[str]
    ) -> None:
        tp = self.trip
        failed: dict[str, str] = dict(self.mission.result.get("failed", {}))

        async def book(s: Session) -> list[MissionEvent]:
            events: list[MissionEvent] = []
            for key, ld, status, result in todo:
                booked.add(key)
                action = key.split(":", 1)[0]
                ok = status is ActionStatus.FINISHED
                if action == "pick" and ok:
                    events += await booking.book_pick(
                        self.ctx, s, self.mission, tp.warehouse_id, ld
                    )
                elif action == "pick":
                    failed[ld.load_id] = f"pick failed: {result or 'no reason given'}"
                    booked.add(f"drop:{ld.load_id}")  # nothing to drop
                    events += await booking.requeue(
                        self.ctx, s, self.mission, [ld], loaded=False, reason=failed[ld.load_id]
                    )
                elif ok and tp.purpose == DELIVERY:
                    events += await booking.book_drop(
                        self.ctx, s, self.mission, tp.warehouse_id, ld, node_id=ld.node_id
                    )
                elif ok and not ld.booked:
                    ev = self.ctx.journal.event(
                        EventKind.PAYLOAD,
                        f"unloaded {ld.describe()} at the dock: goods the van picked while "
                        "unobserved, never booked out of the warehouse (no stock movement)",
                        mission_id=self.mission.id,
                        vehicle_id=self.vehicle_id,
                        action="return",
                        load_id=ld.load_id,
                    )
                    s.add(ev)
                    events.append(ev)
                elif ok:  # a return trip unloaded it at the dock
                    for carried_by in sorted({ln.mission_id or self.mission.id for ln in ld.lines}):
                        part = _lines_of(ld, carried_by)
                        events += await booking.book_return(
                            self.ctx,
                            s,
                            self.mission,
                            tp.warehouse_id,
                            part,
                            carried_by,
                            "unloaded at the dock",
                        )
                else:
                    failed[ld.load_id] = f"drop failed: {result or 'no reason given'}"
                    ev = self.ctx.journal.event(
                        EventKind.PAYLOAD,
                        f"drop of {ld.describe()} failed: {result or 'no reason given'}",
                        mission_id=self.mission.id,
                        vehicle_id=self.vehicle_id,
                        action="drop",
                        status="failed",
                        load_id=ld.load_id,
                    )
                    s.add(ev)
                    events.append(ev)
            return events

        await self._commit(book, booked=booked, failed=failed)

    async def _phase(self, vs: VanState) -> None:
        tp = self.trip
        if tp.purpose == RETURN:
            running = [vs.action(ld.drop_action_id) for ld in tp.loads]
            phase = (
                Phase.DROP_OFF
                if any(a is not None and a.status is ActionStatus.RUNNING for a in running)
                else Phase.RETURN
            )
        else:
            loads = [ld for ld in tp.loads if ld.load_id not in tp.skip]
            picks = [] if tp.loaded else [vs.action(ld.pick_action_id) for ld in loads]
            drops = [vs.action(ld.drop_action_id) for ld in loads]
            if any(p is None or not p.status.ended for p in picks):
                phase = Phase.PICK_UP
            elif any(d is not None and d.status is ActionStatus.RUNNING for d in drops):
                phase = Phase.DROP_OFF
            elif all(d is not None and d.status.ended for d in drops):
                phase = Phase.RETURN
            else:
                phase = Phase.GO_TO
        await self.set_phase(phase)

    # --- ending -------------------------------------------------------------------------------

    def _on_board(self, booked: set[str]) -> list[LoadPlan]:
        """Loads this trip put on the van and did not drop (delivery trips), or loads it was
        to unload and did not (return trips)."""
        tp = self.trip
        out = []
        for ld in tp.loads:
            dropped = f"drop:{ld.load_id}" in booked and ld.load_id not in self.mission.result.get(
                "failed", {}
            )
            if tp.purpose == DELIVERY:
                picked = f"pick:{ld.load_id}" in booked and not self.mission.result.get(
                    "failed", {}
                ).get(ld.load_id, "").startswith("pick")
                if picked and not dropped:
                    out.append(ld)
            elif not dropped:
                out.append(ld)
        return out

    def _never_picked(self, booked: set[str]) -> list[LoadPlan]:
        if self.trip.purpose != DELIVERY:
            return []
        return [ld for ld in self.trip.loads if f"pick:{ld.load_id}" not in booked]

    async def _trip_over(self, vs: VanState, *, cancelled: bool) -> None:
        """The van ended the order: at the dock (done) or where a cancel stopped it."""
        tp = self.trip
        booked = self._booked
        # actions the van never reports ended (e.g. dropped from a cancelled order) count as
        # not done; the goods of loads picked but not dropped are on board
        on_board = self._on_board(booked)
        never = self._never_picked(booked)
        why = self._cancel_requested or self._stop_requested
        if never or (on_board and tp.purpose == DELIVERY):
            reason = f"trip ended without these loads delivered ({why or 'see the van report'})"
            # an operator's cancel stops the deliveries (as for drones), unless asked to requeue
            stop = bool(cancelled and self._cancel_requested and not self._cancel_requeue)
            if stop:
                reason = str(self._cancel_requested)

            async def requeue(s: Session) -> list[MissionEvent]:
                events = []
                if never:
                    events += await booking.requeue(
                        self.ctx,
                        s,
                        self.mission,
                        never,
                        loaded=False,
                        reason=reason,
                        cancel_requests=stop,
                    )
                if on_board:
                    events += await booking.requeue(
                        self.ctx,
                        s,
                        self.mission,
                        on_board,
                        loaded=True,
                        reason=reason,
                        cancel_requests=stop,
                    )
                return events

            booked |= {f"pick:{ld.load_id}" for ld in never}
            booked |= {f"drop:{ld.load_id}" for ld in never}
            await self._commit(
                requeue, booked=booked, requeued=sorted(ld.load_id for ld in [*never, *on_board])
            )
        if self._stop_requested:
            await self._end(
                MissionState.INTERRUPTED,
                f"{self.vehicle_id} {self._stop_requested}; loads stay on board until it is back "
                "in service",
                stranded=on_board,
            )
            return
        left = on_board
        if on_board:
            left = await self._unload_at_dock(on_board)
        delivered = [
            ld
            for ld in tp.loads
            if f"drop:{ld.load_id}" in self._booked
            and ld.load_id not in self.mission.result.get("failed", {})
        ]
        if cancelled and self._cancel_requested:
            await self._end(
                MissionState.CANCELLED,
                f"cancelled ({self._cancel_requested}); {len(delivered)} of {len(tp.loads)} loads "
                "delivered"
                + (f"; {len(on_board) - len(left)} unloaded back at the dock" if on_board else ""),
                stranded=left,
            )
        elif len(delivered) == len(tp.loads):
            await self._end(
                MissionState.COMPLETED,
                f"{'delivered' if tp.purpose == DELIVERY else 'unloaded'} {tp.boxes} boxes "
                f"({len(tp.loads)} loads); back at the dock" + self._cancel_note(),
            )
        else:
            failed = self.mission.result.get("failed", {})
            detail = "; ".join(f"{k}: {v}" for k, v in failed.items()) or self._unexplained(vs)
            await self._end(
                MissionState.FAILED,
                f"{len(delivered)} of {len(tp.loads)} loads done ({detail})" + self._cancel_note(),
                stranded=left,
            )

    def _cancel_note(self) -> str:
        if self._cancel_requested and not self._cancel_confirmed:
            return (
                f"; the cancel asked for ({self._cancel_requested}) was not confirmed by the van"
                f" ({self._cancel_refused or 'no answer'})"
            )
        return ""

    def _unexplained(self, vs: VanState) -> str:
        """Why actions of the trip did not end, in the van's words: the errors that name the
        loads' actions or their gate nodes (``actions not done`` when none does)."""
        words: list[str] = []
        for ld in self.trip.loads:
            for key, value in (
                ("actionId", ld.drop_action_id),
                ("actionId", ld.pick_action_id),
                ("nodeId", ld.node_id),
            ):
                for f in vs.faults_about(key, value) if value else ():
                    if str(f) not in words:
                        words.append(str(f))
        return "; ".join(words) or "actions not done"

    async def _cancel_and_confirm(self) -> bool:
        """Cancel the van's order (the follower's ``stop``); True once the van confirmed it. A
        rejected or unanswered cancel is an operator alert; the mission goes on."""
        stop = self._take_stop_command()
        try:
            await (stop.send if stop is not None else self._control().cancel_trip)()
        except StreetfleetError as exc:
            what = "rejected" if isinstance(exc, CommandRejected) else "did not confirm"
            self._cancel_refused = f"it {what} cancelOrder: {exc.message}"
            await self.note(
                EventKind.VEHICLE,
                f"ALERT: the cancel is not confirmed ({self._cancel_refused}); the mission "
                "goes on as the van drives it",
                alert="cancel_not_confirmed",
                error_type=exc.fields.get("error_type"),
            )
            log.warning("shuttle.cancel_not_confirmed", mission_id=self.mission.id, reason=str(exc))
            return False
        self._cancel_confirmed = True
        await self.note(
            EventKind.VEHICLE, "the van confirmed the cancel: cancelOrder finished, order cleared"
        )
        return True

    def _picks_failed(self, vs: VanState) -> bool:
        """Every pick has ended and one failed that the current order still drives for."""
        tp = self.trip
        if tp.purpose != DELIVERY or tp.loaded:
            return False
        for ld in tp.loads:
            p = vs.action(ld.pick_action_id)
            if p is None or not p.status.ended:
                return False
        failed = self.mission.result.get("failed", {})
        return any(
            str(failed.get(ld.load_id, "")).startswith("pick") and ld.load_id not in tp.skip
            for ld in tp.loads
        )

    async def _drive_on_without_failed(self, vs: VanState) -> bool:
        """A pick failed: cancel the order, then drive on to the gates of the loads aboard only
        (a new order of this trip). True when the trip ended instead."""
        self._drove_on = True
        tp = self.trip
        failed = self.mission.result.get("failed", {})
        skip = tuple(
            ld.load_id for ld in tp.loads if str(failed.get(ld.load_id, "")).startswith("pick")
        )
        aboard = [ld for ld in tp.loads if ld.load_id not in skip]
        await self.note(
            EventKind.DECISION,
            f"picks failed for {', '.join(skip)}: the van is stopped so that it does not drive "
            "to their gates"
            + (
                f"; it goes on with {', '.join(ld.load_id for ld in aboard)}"
                if aboard
                else "; nothing is aboard, the trip ends"
            ),
        )
        if not await self._cancel_and_confirm():
            return False  # the van drives on; its drops of the missing loads will fail
        self._cancel_confirmed = False  # the run's own cancel, not an operator's
        ctl = self._control()
        vs = ctl.state or vs
        if not aboard:
            await self._trip_over(vs, cancelled=False)
            return True
        net = self.ctx.world.road_network
        start = vs.last_node_id or tp.dock_node_id
        pose = vs.map_pose
        off = math.dist((pose[0], pose[1]), net.node(start).xy) if pose is not None else 0.0
        gates = [ld.node_id for ld in aboard]
        stops = [start]
        for node in [*dict.fromkeys(gates), tp.dock_node_id]:
            if node != stops[-1]:
                stops.append(node)
        n = int(tp.order.rsplit(".r", 1)[1]) + 1 if tp.order else 1
        new = replace_plan(
            tp,
            order=f"{tp.trip_id}.r{n}",
            loaded=True,
            skip=skip,
            stops=tuple(stops),
            start_deviation_m=round(off + DEVIATION_MARGIN_M, 2) if off > 0.5 else None,
            loads=tuple(
                ld if ld.load_id in skip else replace_plan(ld, drop_action_id=new_action_id())
                for ld in tp.loads
            ),
        )
        try:
            await ctl.send_trip(build_trip(self.ctx.world, new, self.cfg.max_speed_kmh))
        except StreetfleetError as exc:
            await self.note(EventKind.VEHICLE, f"the van did not take the trip on: {exc}")
            await self._trip_over(vs, cancelled=False)
            return True
        self.trip = new
        self.mission = await self.ctx.store.update_mission(self.mission.id, plan=new.to_json())
        await self.note(
            EventKind.DECISION,
            f"{self.vehicle_id} drives on as order {new.order_id}: {' -> '.join(stops)}",
            stops=stops,
        )
        return False

    async def _unload_at_dock(self, loads: list[LoadPlan]) -> list[LoadPlan]:
        """Drive back to the dock if needed and unload ``loads`` there (a return order inside
        this mission). Returns the loads that could not be unloaded."""
        tp = self.trip
        ctl = self._control()
        vs = ctl.state
        carried = None
        if vs is not None and vs.loads is not None:
            carried = {x.load_id for x in vs.loads}
            missing = [ld for ld in loads if ld.load_id not in carried]
            if missing:
                await self.note(
                    EventKind.PAYLOAD,
                    "the van does not report "
                    + ", ".join(ld.load_id for ld in missing)
                    + " on board; their goods' location is unknown (book an adjust after a count)",
                )
            loads = [ld for ld in loads if ld.load_id in carried]
        if not loads:
            return []
        n = int(self.mission.result.get("unload_orders", 0)) + 1
        path = [n.node_id for n in build_trip(self.ctx.world, tp, self.cfg.max_speed_kmh).nodes]
        stops, deviation = way_home(self.ctx.world, vs, tp.dock_node_id, path)
        back = TripPlan(
            trip_id=f"{tp.trip_id}.u{n}",
            purpose=RETURN,
            warehouse_id=tp.warehouse_id,
            dock_node_id=tp.dock_node_id,
            stops=stops,
            loads=tuple(
                LoadPlan(
                    ld.load_id,
                    ld.community_id,
                    tp.dock_node_id,
                    ld.lines,
                    ld.kg,
                    pick_action_id="",
                )
                for ld in loads
            ),
            start_deviation_m=deviation,
        )
        await self._commit(None, unload_orders=n)
        await self.note(
            EventKind.DECISION,
            f"bringing {len(loads)} loads back to the dock to unload them (order "
            f"{back.trip_id}, from {stops[0]}"
            + (f", {deviation:.0f} m off it" if deviation else "")
            + ")",
            stops=list(stops),
        )
        await self.set_phase(Phase.RETURN)
        try:
            await ctl.send_trip(build_trip(self.ctx.world, back, self.cfg.max_speed_kmh))
            result = await ctl.wait_trip(back.trip_id, within=self.cfg.trip_timeout_s)
        except StreetfleetError as exc:
            await self.note(EventKind.VEHICLE, f"return order failed: {exc}")
            return loads
        done = {a.action_id for a in result.actions if a.status is ActionStatus.FINISHED}
        ok = [ld for ld in back.loads if ld.drop_action_id in done]
        left = [ld for ld in loads if ld.load_id not in {x.load_id for x in ok}]

        async def book(s: Session) -> list[MissionEvent]:
            events: list[MissionEvent] = []
            for ld in ok:
                events += await booking.book_return(
                    self.ctx,
                    s,
                    self.mission,
                    tp.warehouse_id,
                    ld,
                    self.mission.id,
                    "undelivered, unloaded back at the dock",
                )
            return events

        await self._commit(book, returned=sorted(ld.load_id for ld in ok))
        return left

    async def _strand(self, dst: MissionState, reason: str) -> None:
        """End the trip without the van: undelivered work back to the queue; loads on board
        are stranded until the van is heard again (``missions.shuttle.recovery``)."""
        tp = self.trip
        booked = self._booked
        on_board = self._on_board(booked)
        never = self._never_picked(booked)

        async def requeue(s: Session) -> list[MissionEvent]:
            if tp.purpose != DELIVERY:
                return []
            events = []
            if never:
                events += await booking.requeue(
                    self.ctx, s, self.mission, never, loaded=False, reason=reason
                )
            if on_board:
                events += await booking.requeue(
                    self.ctx, s, self.mission, on_board, loaded=True, reason=reason
                )
            return events

        await self._end(
            dst,
            reason,
            stranded=on_board,
            unknown_picks=never,
            extra=requeue,
        )

    async def _end(
        self,
        dst: MissionState,
        reason: str,
        *,
        stranded: list[LoadPlan] | None = None,
        unknown_picks: list[LoadPlan] | None = None,
        extra: Any = None,
    ) -> None:
        tp = self.trip
        result: dict[str, Any] = {}
        if stranded or unknown_picks:
            result["stranded"] = [
                {"load_id": ld.load_id, "loaded": ld.booked} for ld in stranded or []
            ] + [
                {"load_id": ld.load_id, "loaded": False}
                for ld in unknown_picks or []
                if tp.purpose == DELIVERY
            ]
        if stranded:
            reason += "; on board: " + ", ".join(ld.describe() for ld in stranded)
        await self.transition(dst, reason, phase=Phase.DONE, result=result, extra=extra)
        log.info("shuttle.trip_end", mission_id=self.mission.id, state=str(dst), reason=reason)


def _lines_of(ld: LoadPlan, mission_id: str) -> LoadPlan:
    lines = tuple(ln for ln in ld.lines if (ln.mission_id or mission_id) == mission_id)
    return LoadPlan(
        ld.load_id,
        ld.community_id,
        ld.node_id,
        lines,
        ld.kg,
        ld.pick_action_id,
        ld.drop_action_id,
        booked=ld.booked,
    )


__all__ = ["ShuttleRun", "way_home", "world_floor"]
