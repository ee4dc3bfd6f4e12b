"""Drone delivery runs: upload fence and plan, start, follow the phases, book the release and
the landing (see ``missions.delivery.plan`` for the plan)."""

from __future__ import annotations

from typing import Any

from fleet.deconfliction import Option, layers, trajectory
from fleet.drone import FlightPlan, Takeoff
from fleet.errors import PlanningError, VehicleError
from fleet.events import FleetEvent, Severity, Subscription, VehicleEvent, VehicleEventKind
from fleet.geo import LatLon, distance_m
from fleet.registry import VehicleEntry
from fleet.safety import CEILING_MARGIN_M, airborne_limit_s, remaining_energy
from fleet.store.repository import Session
from fleet.store.retry import retrying
from fleet.store.tables import Mission, MissionEvent
from fleet.vehicle import LandedState, MissionRunState
from missions.context import MissionContext
from missions.delivery.plan import DeliveryPlan, plan_delivery, plan_from_json, plan_to_json
from missions.follow import Follower, Notes
from missions.journal import EventKind
from missions.preflight import check_airspace
from missions.run import DroneRun
from missions.states import MissionKind, MissionState, Phase, TaskState

UPLOAD_LEAD_S = 10.0
"""World seconds before its reserved take-off a drone waiting for airspace gets its plan."""
LOST_NOTE = "link lost; the drone continues its mission"
"""Noted when the drone's link is lost (with a safety alert)."""
MAX_LAYERS = 4
"""Altitude layers a delivery may be moved to (its cruise altitude and those above)."""


def _cruise_alt(plan: FlightPlan) -> float | None:
    for item in plan.items:
        if isinstance(item, Takeoff):
            return item.rel_alt
    return None


class DroneDeliveryRun(DroneRun):
    """Executes one drone delivery mission."""

    kind = MissionKind.DRONE_DELIVERY
    resumable = True

    def __init__(self, ctx: MissionContext, mission: Mission, on_done: Any) -> None:
        super().__init__(ctx, mission, on_done)
        self.dp: DeliveryPlan = plan_from_json(mission.plan)
        self.cfg = ctx.settings.drone_missions
        self._recalled: str | None = None
        """Why the service recalled the drone in flight (energy), if it did."""
        self._vehicle_words: list[str] = []
        """The vehicle's warning and error texts during the flight (its words)."""
        self._vehicle_states: list[str] = []
        """The failsafes the bridge saw it take (mode switches, critical state)."""
        self._airborne_first: tuple[float, float] | None = None
        self._airborne_last: tuple[float, float] | None = None
        """(world time, battery) of the first and the latest report in the air: what the
        vehicle's battery said over the flight, under like load at both ends (PX4's estimate
        reads higher under throttle: its load-drop compensation), against the energy model."""

    async def _run(self) -> None:
        if MissionState(self.mission.state) == MissionState.PLANNED and not await self._start():
            return
        await self._follow()

    async def _start(self) -> bool:
        """Secure the drone, reserve the airspace, upload, authorize, load and start. False if
        the mission ended instead."""
        safety = self.ctx.settings.safety
        try:
            entry, ctl = self._drone()
            await self.set_phase(
                Phase.PREFLIGHT, "securing the drone: failsafe policy, geofence, rally points"
            )
            await self._secure(entry, ctl, self.cfg.cruise_alt_m, self._highest_alt())
        except VehicleError as exc:
            self.refused = exc.message
            await self._fail(f"not dispatched, the drone is not secured: {exc.message}")
            return False
        try:
            slot = await self._reserve_airspace(self._options(), UPLOAD_LEAD_S)
        except PlanningError as exc:
            await self._fail(f"not flown: {exc.message}")
            return False
        if self._cancel_requested:
            await self.cancel_unstarted(self._cancel_requested)
            return False
        if slot is not None and slot.option > 0:
            await self._replan(slot.layer_m)
        try:
            check_airspace(self.ctx.world, self.dp.plan, self._pad_location())
        except PlanningError as exc:
            await self._fail(f"the plan breaks an airspace rule: {exc.message}")
            return False
        try:
            await ctl.upload_mission(self.dp.plan)
            if self._cancel_requested:
                await self.cancel_unstarted(self._cancel_requested)
                return False

            async def load(s: Session) -> list[MissionEvent]:
                return await self._stock_for_tasks(s, "load", "loaded onto the drone")

            battery = entry.status.battery_fraction
            await self.transition(
                MissionState.AUTHORIZED,
                f"plan of {len(self.dp.plan.items)} items accepted by {self.vehicle_id}; "
                "legs clear of no-fly zones, under the ceiling and inside the operating area"
                + (f"; battery {battery:.0%}" if battery is not None else ""),
                result={"battery_at_takeoff": battery},
                extra=load,
            )
            if slot is not None and safety.deconfliction:
                await self._keep_slot(slot, self._base_option())
            await ctl.start_mission()
        except VehicleError as exc:
            self.refused = exc.message
            await self._fail(f"vehicle refused the mission: {exc.message}")
            return False

        async def started(s: Session) -> list[MissionEvent]:
            return await self._settle_requests(s, f"mission {self.mission.id} underway")

        await self.transition(
            MissionState.UNDERWAY,
            "mission started on the vehicle",
            phase=Phase.TAKEOFF,
            extra=started,
        )
        return True

    def _pad_location(self) -> LatLon:
        return self.ctx.world.pad(self.dp.pad_id).location

    def _altitudes(self) -> list[float]:
        """The altitudes this flight may take: its own, then the deconfliction layers above it
        (only its own once a layer is fixed, or without deconfliction)."""
        safety = self.ctx.settings.safety
        cruise = _cruise_alt(self.dp.plan) or self.cfg.cruise_alt_m
        if self.mission.result.get("layer_fixed") or not safety.deconfliction:
            return [cruise]
        return layers(
            cruise,
            self.ctx.world.max_altitude_m - CEILING_MARGIN_M,
            max(self.ctx.airspace.separation.vertical_apart_m, 1.0),
            MAX_LAYERS,
        )

    def _highest_alt(self) -> float:
        """The highest altitude this flight may take (the fence keeps out of every zone below
        that: :func:`fleet.airspace.world_geofence`)."""
        return self._altitudes()[-1]

    def _base_option(self) -> Option:
        """The flight as planned, at its own altitude."""
        return Option(None, tuple(trajectory(self.ctx.world, self.dp.plan, self._pad_location())))

    def _options(self) -> list[Option]:
        """The flight at its planned altitude, then on the layers above (deconfliction)."""
        home = self._pad_location()
        out = [self._base_option()]
        for alt in self._altitudes()[1:]:
            try:
                dp = self._plan_at(alt)
            except PlanningError:
                continue
            out.append(Option(alt, tuple(trajectory(self.ctx.world, dp.plan, home))))
        return out

    def _plan_at(self, alt: float) -> DeliveryPlan:
        world = self.ctx.world
        cfg = self.cfg.model_copy(update={"cruise_alt_m": alt})
        return plan_delivery(
            world, world.pad(self.dp.pad_id), world.community(self.dp.community_id), cfg
        )

    async def _replan(self, alt: float | None) -> None:
        """Fly at altitude layer ``alt`` (deconfliction): the plan is made again there and
        stored with the mission."""
        if alt is None:
            return
        self.dp = self._plan_at(alt)
        self.mission = await retrying(
            lambda: self.ctx.store.update_mission(
                self.mission.id,
                plan=plan_to_json(self.dp),
                result={**self.mission.result, "layer_m": alt, "layer_fixed": True},
            )
        )

    def _phase_of(self, seq: int) -> Phase:
        dp = self.dp
        if seq <= 0:
            return Phase.TAKEOFF
        if seq < dp.drop_index:
            return Phase.GO_TO
        if seq < dp.return_index:
            return Phase.DROP_OFF
        if seq < dp.land_index:
            return Phase.RETURN
        return Phase.LANDING

    async def _follow(self) -> None:
        """Follow the vehicle until it is back on the ground and disarmed
        (:class:`missions.follow.Follower`), watching its energy and its link.

        Also used after a restart: the vehicle may not be discovered yet, and what happened
        while nobody watched (a release, a landing) is read from its mission progress.

        * **Energy**: while it flies its plan, a battery below what the rest of the plan needs
          plus ``drone_missions.reserve_fraction`` recalls it; the mission then ends ``failed``
          once it has landed, and its work goes back to the queue for another sortie.
        * **Link**: a lost link is an alert; its own failsafe (NAV_DLL_ACT, set before take-off)
          brings the drone home. The mission is given up, and its work re-dispatched, only once
          the drone is heard again on the ground, or after it has been unheard longer than its
          last reported battery could keep it in the air (``safety.lost_link_timeout_s``).
        * **Vehicle failsafes** (fence breach, battery, GPS) are recorded in the vehicle's words.
        * The airspace reservation is released leg by leg as the drone flies.
        """
        clock = self.ctx.clock
        safety = self.ctx.settings.safety
        started = self.mission.started_at.timestamp() if self.mission.started_at else clock.time()
        released = bool(self.mission.result.get("released"))
        took_off = bool(self.mission.result.get("took_off"))
        resumed = self.mission.started_at is not None and self._resuming
        fresh = resumed  # after a restart the registry holds nothing stale
        if resumed and safety.deconfliction:
            self.ctx.airspace.reserve(
                self.mission.id,
                self.vehicle_id,
                [
                    Option(
                        None, tuple(trajectory(self.ctx.world, self.dp.plan, self._pad_location()))
                    )
                ],
                started,
                force=True,
            )
        last_battery: list[float | None] = [None]

        def lost_grace() -> float:
            if safety.lost_link_timeout_s is not None:
                return safety.lost_link_timeout_s
            return airborne_limit_s(last_battery[0]) + safety.lost_link_margin_s

        follower = Follower(
            self.ctx.registry,
            clock,
            self.vehicle_id,
            deadline=started + self.cfg.max_flight_s,
            tick_when_quiet=True,
            lost_grace_s=lost_grace,
            skip_while_lost=True,
            hold_deadline_while_lost=True,
            notes=Notes(lost=LOST_NOTE),
        )
        self.follower = follower

        def vehicle_event(ev: FleetEvent) -> bool:
            return (
                isinstance(ev, VehicleEvent)
                and ev.vehicle_id == self.vehicle_id
                and (
                    ev.kind == VehicleEventKind.FAILSAFE
                    or (
                        ev.kind == VehicleEventKind.STATUS_TEXT
                        and ev.severity in (Severity.WARNING, Severity.ERROR)
                    )
                )
            )

        heard: dict[str, None] = {}

        async def update(entry: VehicleEntry) -> bool:
            nonlocal released, took_off, resumed, fresh
            st = entry.status
            if st.battery_fraction is not None:
                last_battery[0] = st.battery_fraction
                if st.landed == LandedState.IN_AIR:
                    self._airborne_last = (clock.time(), st.battery_fraction)
                    self._airborne_first = self._airborne_first or self._airborne_last
            await self._vehicle_said(said, heard, took_off)
            progress = st.mission
            if progress.state == MissionRunState.UNKNOWN:
                return False  # wait for its first mission report before judging anything
            recalled = follower.stop_sent or self._recalled is not None
            if not took_off and st.landed == LandedState.IN_AIR:
                took_off = True
                await self.save_result(took_off=True)
            if progress.state == MissionRunState.ACTIVE:
                fresh = True
            # until this mission runs, progress describes the vehicle's previous mission (PX4
            # keeps reporting it, and repeats MISSION_ITEM_REACHED for a while)
            if fresh:
                seq = progress.current
                if progress.state == MissionRunState.COMPLETE:
                    seq = len(self.dp.plan.items)
                if took_off and not recalled:
                    await self.set_phase(Phase.WAIT if self.held_by else self._phase_of(seq))
                    self.ctx.airspace.progress(self.mission.id, seq, clock.time())
                if not released and took_off and seq > self.dp.gripper_index and not recalled:
                    released = True
                    # after a restart the release may have happened unobserved: no position
                    await self._released(entry, observed=not resumed)
                resumed = False
                if (
                    took_off
                    and not recalled
                    and progress.state == MissionRunState.ACTIVE
                    and st.landed == LandedState.IN_AIR
                ):
                    await self._check_energy(entry, seq, released)
            if took_off and st.landed == LandedState.ON_GROUND and not st.armed:
                await self._landed(entry, released)
                return True
            return False

        async def overdue() -> None:
            await self._recall(f"not back after {self.cfg.max_flight_s:.0f} s")

        with self.ctx.bus.subscribe(vehicle_event, maxsize=200) as said:
            await follower.follow(
                update,
                overdue=overdue,
                note=self._link_note,
                stop_requested=self._wants_stop,
                stop=self._recall_for_cancel,
                gone=self._gone,
            )

    async def _link_note(self, text: str) -> None:
        await self._vehicle_note(text)
        if text == LOST_NOTE:
            await self.note(
                EventKind.SAFETY,
                f"ALERT: {self.vehicle_id} link lost; its own failsafe (NAV_DLL_ACT, set before "
                "take-off) brings it home; its work goes to another vehicle only once it is "
                "known to be down",
                alert=True,
            )

    async def _vehicle_said(
        self, said: Subscription, heard: dict[str, None], took_off: bool
    ) -> None:
        """Record the vehicle's failsafes and warnings (a fence breach, low battery, GPS loss)
        in its own words, once each."""
        while (ev := said.get_nowait()) is not None:
            assert isinstance(ev, VehicleEvent)
            if not took_off and ev.kind != VehicleEventKind.FAILSAFE:
                continue
            text = ev.message.strip()
            if not text or text in heard:
                continue
            heard[text] = None
            if ev.kind == VehicleEventKind.STATUS_TEXT:
                self._vehicle_words.append(text)  # its own words first
            else:
                self._vehicle_states.append(text)
            await self.note(
                EventKind.SAFETY,
                f"vehicle: {text}",
                failsafe=ev.kind == VehicleEventKind.FAILSAFE,
                severity=str(ev.severity),
            )

    async def _check_energy(self, entry: VehicleEntry, seq: int, released: bool) -> None:
        """Recall the drone when its battery is below what the rest of the plan needs plus the
        reserve (``docs/safety.md``)."""
        if not self.ctx.settings.safety.energy_check:
            return
        st = entry.status
        pos = st.position
        battery = st.battery_fraction
        if pos is None or battery is None or seq < 1:
            return
        payload = 0.0 if released else float(entry.info.payload_kg or self.cfg.payload_kg)
        need = remaining_energy(
            self.ctx.world,
            self.dp.plan,
            seq,
            LatLon(pos.lat, pos.lon),
            pos.rel_alt,
            self._pad_location(),
            loaded_until=self.dp.gripper_index,
            payload_kg=payload,
        )
        reserve = self.cfg.reserve_fraction
        if battery >= need + reserve:
            return
        why = (
            f"battery {battery:.0%} is below the {need + reserve:.0%} the rest of the sortie "
            f"needs ({need:.0%} + {reserve:.0%} reserve)"
        )
        self._recalled = why
        await self.note(
            EventKind.SAFETY,
            f"ALERT recall: {why}; the drone returns and its work goes to another sortie",
            alert=True,
            battery=battery,
            needed=round(need + reserve, 4),
        )
        await self._send_home(why)
        await self.set_phase(Phase.RETURN, f"returning: {why}")

    async def _gone(self, why: str) -> None:
        """Unheard longer than it could fly: it is down somewhere; its work goes elsewhere."""
        await self.note(
            EventKind.SAFETY,
            f"ALERT: {self.vehicle_id} {why}: it cannot still be in the air; its work is "
            "dispatched again",
            alert=True,
        )
        await self._fail(f"drone lost: {why}; presumed down, not flying its route")

    async def _released(self, entry: VehicleEntry, observed: bool = True) -> None:
        pos = entry.status.position if observed else None
        at = LatLon(pos.lat, pos.lon) if pos else None
        dist = distance_m(at, self.dp.drop) if at else None
        result: dict[str, Any] = {
            "released": True,
            "release_at": self.ctx.clock.now().isoformat(),
            "release_position": [pos.lat, pos.lon, pos.rel_alt] if pos else None,
            "release_distance_m": round(dist, 2) if dist is not None else None,
        }
        if not observed:
            reason = "payload released while the service was restarting (position not observed)"
        elif dist is None:
            reason = "payload released (position not reported)"
        else:
            reason = f"payload released {dist:.1f} m from the drop point of {self.dp.community_id}"

        async def book(s: Session) -> list[MissionEvent]:
            tasks = [t for t in await self._tasks(s) if t.state == TaskState.ASSIGNED]
            return await self._book_delivery(
                s, tasks, f"released at {self.dp.community_id}", reason
            )

        async def attempt() -> tuple[Mission, MissionEvent, list[MissionEvent]]:
            ev = self.ctx.journal.event(
                EventKind.PAYLOAD,
                reason,
                mission_id=self.mission.id,
                vehicle_id=self.vehicle_id,
                **result,
            )
            async with self.ctx.store.transaction() as s:
                updated = await self.ctx.store.update_mission(
                    self.mission.id,
                    events=[ev],
                    session=s,
                    result={**self.mission.result, **result},
                )
                events = await book(s)
            return updated, ev, events

        # the delivery is booked whatever the database's load: a busy one wrote nothing
        updated, ev, events = await retrying(attempt)
        self.mission = updated  # once committed (see MissionRun.transition)
        self.ctx.journal.published(ev, *events)

    async def _landed(self, entry: VehicleEntry, released: bool) -> None:
        pos = entry.status.position
        pad = self.ctx.world.pad(self.dp.pad_id)
        dist = distance_m(LatLon(pos.lat, pos.lon), pad.location) if pos else None
        result: dict[str, Any] = {
            "landed_at": self.ctx.clock.now().isoformat(),
            "landing_position": [pos.lat, pos.lon] if pos else None,
            "landing_distance_m": round(dist, 2) if dist is not None else None,
            # what the vehicle's battery said at landing, against the model's prediction
            # (plan.energy_fraction) and its level at take-off (battery_at_takeoff)
            "battery_at_landing": entry.status.battery_fraction,
            "battery_airborne": self._battery_airborne(),
        }
        where = f"{dist:.1f} m from pad {pad.id}" if dist is not None else "at an unknown position"
        if self._cancel_requested:
            await self._end_with_load_back(
                MissionState.CANCELLED,
                f"cancelled ({self._cancel_requested}); landed {where}",
                result,
                released,
            )
        elif released:
            await self.transition(
                MissionState.COMPLETED,
                f"delivered and landed {where}",
                phase=Phase.DONE,
                result=result,
            )
        else:
            because = ""
            if self._recalled is not None:
                because = f"; recalled: {self._recalled}"
            elif said := [*self._vehicle_words, *self._vehicle_states][:3]:
                because = f"; the vehicle said: {'; '.join(said)}"
            await self._end_with_load_back(
                MissionState.FAILED,
                f"landed {where} without releasing the payload (mode {entry.status.mode})"
                + because,
                result,
                released,
            )

    def _battery_airborne(self) -> dict[str, float] | None:
        """What the battery said from the first to the latest report in the air, and what the
        energy model predicts for that time (the plan's energy spread over its duration)."""
        if self._airborne_first is None or self._airborne_last is None:
            return None
        (t0, b0), (t1, b1) = self._airborne_first, self._airborne_last
        seconds = t1 - t0
        rate = self.dp.energy_fraction / max(self.dp.duration_s, 1.0)
        return {
            "first": round(b0, 4),
            "last": round(b1, 4),
            "seconds": round(seconds, 1),
            "used": round(b0 - b1, 4),
            "predicted": round(rate * seconds, 4),
        }

    async def _end_with_load_back(
        self, dst: MissionState, reason: str, result: dict[str, Any], released: bool
    ) -> None:
        """End a mission whose load did not reach its community: the goods come back to
        stock; a cancelled mission's requests are cancelled, a failed one's requeued."""
        del released  # delivered work is booked already; only the rest is unwound

        cancelled = dst == MissionState.CANCELLED

        async def back(s: Session) -> list[MissionEvent]:
            return await self._unwind(
                s,
                f"{dst}: {reason}",
                task_state=TaskState.CANCELLED if cancelled else TaskState.FAILED,
                cancel_requests=cancelled and not self._cancel_requeue,
            )

        await self.transition(dst, reason, phase=Phase.DONE, result=result, extra=back)

    async def _recall(self, why: str) -> None:
        await self._send_home(why)
        await self._fail(why)
