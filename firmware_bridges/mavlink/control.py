"""``MavlinkDrone``: the :class:`fleet.drone.DroneControl` of a PX4 vehicle on a MAVLink link.

Each method returns when the vehicle has confirmed, or raises a
:class:`fleet.errors.VehicleError` (``CommandRejected`` with the vehicle's reason,
``CommandTimeout``, ``MissionUploadError``, ``LinkLost``). What each sends:

* ``arm``/``disarm``: MAV_CMD_COMPONENT_ARM_DISARM (param1 1/0);
* ``takeoff``: MAV_CMD_NAV_TAKEOFF; PX4 takes param7 as AMSL altitude, so a relative altitude
  is added to the home altitude; ``None`` sends NaN and PX4 climbs to MIS_TAKEOFF_ALT;
* ``land``/``hold``/``return_to_launch``/``set_mode``: MAV_CMD_DO_SET_MODE with param1 =
  MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, param2 = PX4 main mode, param3 = sub mode (as QGC does);
* ``start_mission``: MAV_CMD_MISSION_START (PX4 arms a disarmed vehicle and starts);
* ``resume_mission``: MAV_CMD_DO_SET_MODE to AUTO.MISSION (PX4 goes on from the current item,
  as QGC's "Continue mission" after a Hold does; MISSION_START would restart at ``param1``);
* ``upload_mission``: mission protocol, then the vehicle's verdict (see below);
* ``upload_geofence``/``upload_rally``: mission protocol with the fence/rally type;
* ``release_payload``: MAV_CMD_DO_GRIPPER release (PX4: IN_PROGRESS, then ACCEPTED);
* ``operate_winch``: MAV_CMD_DO_WINCH sent once and awaited for ``command_timeout_s``; PX4
  SITL never acknowledges it, so silence returns False ("unconfirmed") instead of raising, and
  it is never resent (a relative length would be paid out twice);
* ``get_parameter``/``set_parameter``: parameter protocol.

PX4 acknowledges an upload with MISSION_ACK ACCEPTED before its navigator has checked the
plan, and checks it only once it has a home position, a global position and the fence just
uploaded; until then MISSION_CURRENT reports "no mission" with the new count, exactly as for a
plan it rejected. ``upload_mission`` therefore waits for the verdict (polling MISSION_CURRENT):
a valid state heard at least ``VERIFY_SETTLE_S`` after the ACK returns; a feasibility failure
the vehicle reports (an error EVENT of its mission checks, or such a STATUSTEXT, see
:mod:`.verdicts`) raises ``MissionUploadError`` INVALID with the vehicle's words; neither
within ``mission_verdict_timeout_s`` raises NO_VERDICT, naming what the vehicle still lacks.
A "no mission" state alone is never taken for a rejection.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import metadata, translate, translate_plans, verdicts
from firmware_bridges.mavlink.arming_checks import ArmingReport
from firmware_bridges.mavlink.commands import NAN, CommandClient
from firmware_bridges.mavlink.mission import MissionClient
from firmware_bridges.mavlink.params import ParamClient
from firmware_bridges.mavlink.session import LinkPort, VehicleSession
from firmware_bridges.mavlink.wire.mission_items import MissionItem, MissionType
from fleet.drone import DroneControl, FlightPlan, Geofence, Takeoff, Winch
from fleet.errors import (
    CommandRejected,
    CommandTimeout,
    LinkLost,
    MissionUploadError,
    VehicleError,
)
from fleet.events import Severity, VehicleEventKind
from fleet.geo import Position
from fleet.registry import VehicleEntry
from fleet.vehicle import FlightMode, LinkState, MissionRunState

log = structlog.get_logger(__name__)

VERIFY_SETTLE_S = 0.5
"""World seconds after the MISSION_ACK before a report of a valid plan is believed: PX4's
navigator checks a new plan on its next cycle, and a report sent before may carry the new count
with the previous plan's verdict."""
NO_VALID_MISSION = "No valid mission"
"""PX4's words when MAV_CMD_MISSION_START finds no plan (``Commander.cpp``)."""
MISSION_START_RETRY_S = 1.0
"""PX4's commander takes a plan up on its next health-check cycle, after the navigator has
reported it valid (MISSION_CURRENT, which the upload waits for): a MAV_CMD_MISSION_START in
between is denied "Mission start denied! No valid mission" (``auto_mission_missing``). Seen on
PX4 SITL once in about six first flights. After an upload the start is tried once more after
this many world seconds."""
VERDICT_POLL_S = 1.0
"""Period (world s) of the MISSION_CURRENT requests while waiting for a verdict."""
UNCHECKED_SEQ = 65535
"""MISSION_CURRENT.seq while PX4's navigator has not taken up the plan just uploaded (its
mission manager's current item is -1 from the upload until the navigator publishes a result)."""
UNCHECKED_GRACE_S = 4.0
"""World seconds after the settle time during which a valid state reported with seq 65535 is
not believed: it may still be the previous plan's verdict (a mission a failsafe paused reads
"valid"). PX4 SITL takes a new plan up 1.0 to 1.6 s after the upload. A navigator that is not
running a plan (landed and disarmed in mission mode after a flight, as after a restart of the
service) publishes no result and the seq stays 65535, with the vehicle's state reporting the
new plan: after this long that state is taken (a refusal would then come from
MAV_CMD_MISSION_START, in the vehicle's words)."""
REASON_WAIT_S = 1.0
"""Wait (world s) for the rest of the vehicle's reasons after its first rejection."""
PREARM_REPORT_WAIT_S = 5.0
"""World seconds :meth:`MavlinkDrone.run_prearm_checks` waits for the report it asked for."""
_VALID_STATES = frozenset(
    {
        MissionRunState.NOT_STARTED,
        MissionRunState.ACTIVE,
        MissionRunState.PAUSED,
        MissionRunState.COMPLETE,
    }
)


class MavlinkDrone(VehicleSession):
    """A PX4 multicopter (or rover) reachable through a MAVLink link."""

    def __init__(
        self, port: LinkPort, entry: VehicleEntry, system_id: int, address: tuple[str, int]
    ) -> None:
        super().__init__(port, entry, system_id, address)
        self.commands = CommandClient(self)
        self.missions = MissionClient(self)
        self.params = ParamClient(self)

    def __repr__(self) -> str:
        return f"MavlinkDrone({self.vehicle_id!r}, sysid={self.system_id}, {self.address})"

    # -- flight commands ----------------------------------------------------------------------

    async def arm(self) -> None:
        await self.commands.long(
            mavlink.MAV_CMD_COMPONENT_ARM_DISARM,
            1.0,
            mode_group=verdicts.mode_group(self.status.mode),
        )

    async def disarm(self) -> None:
        await self.commands.long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0.0)

    async def takeoff(self, rel_alt: float | None = None) -> None:
        alt = NAN
        if rel_alt is not None:
            home = self.status.home
            if home is None:
                raise CommandRejected(
                    f"{self.vehicle_id}: take-off to {rel_alt} m needs the home position, "
                    "which the vehicle has not reported",
                    vehicle_id=self.vehicle_id,
                    command="MAV_CMD_NAV_TAKEOFF",
                    result="NO_HOME",
                )
            alt = home.alt + rel_alt
        self.note_commanded_mode(FlightMode.TAKEOFF)
        await self.commands.long(
            mavlink.MAV_CMD_NAV_TAKEOFF,
            NAN,
            0.0,
            0.0,
            NAN,
            NAN,
            NAN,
            alt,
            mode_group=verdicts.mode_group(FlightMode.TAKEOFF),
        )

    async def set_mode(self, mode: FlightMode) -> None:
        """Switch to a PX4 flight mode (DO_SET_MODE with PX4's main/sub mode numbers)."""
        try:
            main, sub = translate.px4_mode(mode)
        except KeyError:
            raise CommandRejected(
                f"PX4 has no flight mode {mode}", vehicle_id=self.vehicle_id, result="NO_SUCH_MODE"
            ) from None
        self.note_commanded_mode(mode)
        await self.commands.long(
            mavlink.MAV_CMD_DO_SET_MODE,
            float(mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED),
            float(main),
            float(sub),
            mode_group=verdicts.mode_group(mode),
        )

    async def land(self) -> None:
        await self.set_mode(FlightMode.LAND)

    async def hold(self) -> None:
        await self.set_mode(FlightMode.HOLD)

    async def return_to_launch(self) -> None:
        await self.set_mode(FlightMode.RTL)

    async def resume_mission(self) -> None:
        await self.set_mode(FlightMode.MISSION)

    async def start_mission(self, first_item: int = 0) -> None:
        last = max(len(self.mission_items) - 1, first_item)
        self.note_commanded_mode(FlightMode.MISSION)
        for attempt in range(2):
            try:
                await self.commands.long(
                    mavlink.MAV_CMD_MISSION_START,
                    float(first_item),
                    float(last),
                    mode_group=verdicts.MISSION_GROUP,
                )
                return
            except CommandRejected as exc:
                lagging = NO_VALID_MISSION in str(exc.fields.get("reason") or "")
                if attempt > 0 or not lagging or not self.mission_items:
                    raise
                log.info("mavlink.mission_start_retry", vehicle_id=self.vehicle_id, error=str(exc))
                await self.clock.sleep(MISSION_START_RETRY_S)

    # -- payload ------------------------------------------------------------------------------

    async def release_payload(self, instance: int = 1) -> None:
        await self.commands.long(
            mavlink.MAV_CMD_DO_GRIPPER, float(instance), float(mavlink.GRIPPER_ACTION_RELEASE)
        )
        self.publish(VehicleEventKind.PAYLOAD, "gripper released", action="release")

    async def operate_winch(self, winch: Winch) -> bool:
        """Send MAV_CMD_DO_WINCH once; True if acknowledged, False if unconfirmed (PX4 SITL
        never acknowledges it). Refusals still raise ``CommandRejected``."""
        try:
            await self.commands.long(
                mavlink.MAV_CMD_DO_WINCH,
                float(winch.instance),
                float(translate_plans.winch_action(winch.action)),
                winch.length_m,
                winch.rate_mps,
                retries=0,
            )
        except CommandTimeout:
            self.publish(
                VehicleEventKind.PAYLOAD,
                "winch command sent, not acknowledged",
                Severity.WARNING,
                action=str(winch.action),
                confirmed=False,
            )
            return False
        self.publish(
            VehicleEventKind.PAYLOAD,
            "winch command acknowledged",
            action=str(winch.action),
            confirmed=True,
        )
        return True

    # -- parameters ---------------------------------------------------------------------------

    async def get_parameter(self, name: str) -> float:
        return await self.params.get(name)

    async def set_parameter(self, name: str, value: float) -> None:
        await self.params.set(name, value)

    # -- plans ----------------------------------------------------------------------------------

    def _origin(self) -> tuple[float, float] | None:
        for p in (self.status.home, self.status.position):
            if p is not None:
                return p.lat, p.lon
        return None

    async def upload_mission(self, plan: FlightPlan) -> None:
        default_alt: float | None = None
        if any(isinstance(i, Takeoff) and i.rel_alt is None for i in plan.items):
            default_alt = await self.get_parameter("MIS_TAKEOFF_ALT")
        items = translate_plans.plan_to_items(plan, self._origin(), default_alt)
        started = self.plan_upload_started()
        await self.missions.upload(MissionType.MISSION, items)
        self.mission_items = items
        await self._await_verdict(len(items), started, self.clock.monotonic())

    async def _await_verdict(self, count: int, started: float, acked: float) -> None:
        """Wait for the vehicle's verdict on the plan just uploaded (module docs): return when
        it reports the plan valid, raise ``MissionUploadError`` when it rejects it (with its
        reasons) or gives no verdict within ``mission_verdict_timeout_s``."""
        if count == 0:
            return
        opts = self.port.options
        deadline = acked + opts.mission_verdict_timeout_s
        settled = acked + VERIFY_SETTLE_S
        state = MissionRunState.UNKNOWN
        heard = False
        next_ask = acked
        with self.listen((mavlink.MAVLINK_MSG_ID_MISSION_CURRENT,)) as reports:
            while not self.plan_rejections:
                now = self.clock.monotonic()
                if now >= deadline:
                    if not heard:
                        raise MissionUploadError(
                            f"{self.vehicle_id} did not report the state of the uploaded mission",
                            vehicle_id=self.vehicle_id,
                            result="NO_MISSION_STATE",
                        )
                    not_ready = "; ".join(self.status.not_ready)
                    raise MissionUploadError(
                        f"{self.vehicle_id} gave no verdict on the uploaded plan within "
                        f"{opts.mission_verdict_timeout_s:g} s (mission state {state}"
                        + (f"; not ready: {not_ready}" if not_ready else "")
                        + ")",
                        vehicle_id=self.vehicle_id,
                        result="NO_VERDICT",
                        state=str(state),
                    )
                if now >= next_ask:
                    # PX4 sends MISSION_CURRENT at 1 Hz and on changes; ask to hear sooner
                    self.commands.fire(
                        mavlink.MAV_CMD_REQUEST_MESSAGE,
                        float(mavlink.MAVLINK_MSG_ID_MISSION_CURRENT),
                    )
                    next_ask = now + VERDICT_POLL_S
                try:
                    msg = await reports.get(max(0.0, min(deadline, next_ask) - now))
                except TimeoutError:
                    continue
                if msg is LinkState.LOST:
                    raise LinkLost(
                        f"{self.vehicle_id} link lost while waiting for its verdict on the plan",
                        vehicle_id=self.vehicle_id,
                    )
                if not isinstance(msg, mavlink.MAVLink_mission_current_message):
                    continue
                if msg.total != count:
                    continue  # still the previous plan
                heard = True
                state = self.status.mission.state
                if state is MissionRunState.UNKNOWN:
                    return  # a vehicle that does not report mission_state
                now = self.clock.monotonic()
                if (
                    state in _VALID_STATES
                    and now >= settled
                    and (msg.seq != UNCHECKED_SEQ or now >= settled + UNCHECKED_GRACE_S)
                ):
                    return
                # seq 65535: the navigator has not taken the new plan up yet, and the state is
                # still the previous plan's verdict (a mission paused by a failsafe is "valid")
                # UNCHECKED: PX4 has not checked the plan yet (no home or position, or the
                # fence just uploaded still loading); a valid state heard before the settle
                # time may still be the previous plan's verdict
        # the vehicle said why; its failures come one event each, give the rest a moment
        await self.clock.sleep(REASON_WAIT_S)
        reason = "; ".join(dict.fromkeys(self.plan_rejections))
        raise MissionUploadError(
            f"{self.vehicle_id} rejected the mission: {reason}",
            vehicle_id=self.vehicle_id,
            result="INVALID",
            reason=reason,
        )

    async def clear_mission(self) -> None:
        await self.missions.clear(MissionType.MISSION)
        self.mission_items = []

    async def download_mission(self) -> FlightPlan:
        """The mission stored on the vehicle."""
        return translate_plans.items_to_plan(await self.missions.download(MissionType.MISSION))

    async def upload_geofence(self, fence: Geofence) -> None:
        items = translate_plans.geofence_to_items(fence)
        if not items:
            await self.missions.clear(MissionType.FENCE)
            return
        await self.missions.upload(MissionType.FENCE, items)

    async def download_geofence(self) -> Geofence:
        return translate_plans.items_to_geofence(await self.missions.download(MissionType.FENCE))

    async def clear_geofence(self) -> None:
        await self.missions.clear(MissionType.FENCE)

    async def upload_rally(self, points: Sequence[Position]) -> None:
        """Rally (safe landing) points, altitudes relative to home."""
        items = translate_plans.rally_to_items(list(points))
        if not items:
            await self.missions.clear(MissionType.RALLY)
            return
        await self.missions.upload(MissionType.RALLY, items)

    async def download_rally(self) -> list[Position]:
        return translate_plans.items_to_rally(await self.missions.download(MissionType.RALLY))

    async def upload_items(self, mission_type: MissionType, items: list[MissionItem]) -> None:
        """Upload raw wire items (diagnostics and tests; missions use ``upload_mission``)."""
        await self.missions.upload(mission_type, items)

    async def run_prearm_checks(self, within: float = PREARM_REPORT_WAIT_S) -> ArmingReport:
        """Send MAV_CMD_RUN_PREARM_CHECKS (PX4 then reports its checks at once) and return the
        report that follows. Raises ``CommandRejected``/``CommandTimeout``/``LinkLost``."""
        since = self.clock.monotonic()
        await self.commands.long(mavlink.MAV_CMD_RUN_PREARM_CHECKS)
        report = await self.wait_arming_report(within, since=since)
        if report is None:
            raise CommandTimeout(
                f"{self.vehicle_id} accepted MAV_CMD_RUN_PREARM_CHECKS but sent no arming report",
                vehicle_id=self.vehicle_id,
                command="MAV_CMD_RUN_PREARM_CHECKS",
            )
        return report

    # -- set-up after discovery ----------------------------------------------------------------

    async def request_streams(self) -> None:
        """Ask for the messages the service relies on; failures are logged, not fatal.

        First a fresh health-and-arming-checks report (MAV_CMD_RUN_PREARM_CHECKS, as QGC asks
        on connecting): PX4 reports its checks only when they change, and readiness waits for
        one. A vehicle that refuses the command is judged by its pre-arm bit instead.
        """
        self.readiness.prearm_asked_at = self.clock.monotonic()
        self.port.spawn(self._ask_for_arming_report(), name=f"{self.vehicle_id} arming report")
        for msgid, interval_s in STREAMS:
            try:
                await self.commands.long(
                    mavlink.MAV_CMD_SET_MESSAGE_INTERVAL,
                    float(msgid),
                    interval_s * 1e6,
                    retries=1,
                )
            except VehicleError as exc:
                log.info(
                    "mavlink.stream_request_failed",
                    vehicle_id=self.vehicle_id,
                    msgid=msgid,
                    error=str(exc),
                )
        for msgid in (
            mavlink.MAVLINK_MSG_ID_HOME_POSITION,
            mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION,
        ):
            try:
                await self.commands.long(mavlink.MAV_CMD_REQUEST_MESSAGE, float(msgid), retries=1)
            except VehicleError as exc:
                log.info(
                    "mavlink.message_request_failed",
                    vehicle_id=self.vehicle_id,
                    msgid=msgid,
                    error=str(exc),
                )
        metadata.start(self, self.commands)  # event metadata over MAVLink FTP, in its own task

    async def _ask_for_arming_report(self) -> None:
        try:
            await self.commands.long(mavlink.MAV_CMD_RUN_PREARM_CHECKS, retries=1)
        except CommandRejected as exc:
            self.readiness.prearm_asked_at = float("-inf")  # it will not report its checks
            log.info("mavlink.prearm_report_refused", vehicle_id=self.vehicle_id, error=str(exc))
        except VehicleError as exc:
            log.info("mavlink.prearm_report_failed", vehicle_id=self.vehicle_id, error=str(exc))
        self.update_readiness()


STREAMS: tuple[tuple[int, float], ...] = (
    (mavlink.MAVLINK_MSG_ID_HOME_POSITION, 2.0),
    (mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE, 1.0),
    (mavlink.MAVLINK_MSG_ID_BATTERY_STATUS, 2.0),
)
"""(message id, interval s) requested with SET_MESSAGE_INTERVAL at discovery: the messages
PX4's default stream sets do not all guarantee on every link mode. MISSION_CURRENT is not asked
for: PX4 has no stream for it (its mission manager sends it at 1 Hz anyway) and answers FAILED.
HOME_POSITION is streamed, so the REQUEST_MESSAGE for it that PX4 denies until home is set is
only a shortcut."""


def _conforms(drone: MavlinkDrone) -> DroneControl:
    """Static check (mypy) that MavlinkDrone implements the whole DroneControl protocol."""
    return drone
