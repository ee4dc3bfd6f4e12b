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
* ``upload_mission``: mission protocol, then the vehicle's verdict (see below);
* ``upload_geofence``/``upload_rally``: mission protocol with the fence/rally type;
* ``release_payload``: MAV_CMD_DO_GRIPPER release (PX4: IN_PROGRESS, then ACCEPTED);
* ``operate_winch``: MAV_CMD_DO_WINCH sent once and awaited for ``command_timeout_s``; PX4
  SITL never acknowledges it, so silence returns False ("unconfirmed") instead of raising, and
  it is never resent (a relative length would be paid out twice);
* ``get_parameter``/``set_parameter``: parameter protocol.

PX4 acknowledges an infeasible mission with MISSION_ACK ACCEPTED and only then reports it
invalid through MISSION_CURRENT.mission_state (NO_MISSION with a non-zero total), giving the
reason as STATUSTEXT and/or EVENT. ``upload_mission`` therefore waits for a MISSION_CURRENT
that reflects the new plan (requested ``VERIFY_SETTLE_S`` after the ACK, since PX4's navigator
checks the plan after acknowledging it) and raises ``MissionUploadError`` with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import px4, translate
from firmware_bridges.mavlink.commands import NAN, CommandClient
from firmware_bridges.mavlink.mission import MissionClient
from firmware_bridges.mavlink.params import ParamClient
from firmware_bridges.mavlink.session import LinkPort, VehicleSession
from firmware_bridges.mavlink.translate import MissionItem, MissionType
from fleet.drone import DroneControl, FlightPlan, Geofence, Takeoff, Winch
from fleet.errors import CommandRejected, CommandTimeout, MissionUploadError, VehicleError
from fleet.events import Severity, VehicleEventKind
from fleet.geo import Position
from fleet.registry import VehicleEntry
from fleet.vehicle import FlightMode, MissionRunState

log = structlog.get_logger(__name__)

VERIFY_MIN_S = 3.0
"""Shortest wait (world s) for the MISSION_CURRENT that judges an uploaded mission."""
VERIFY_SETTLE_S = 0.5
"""World seconds between the MISSION_ACK and the MISSION_CURRENT that judges the plan."""
REASON_WAIT_S = 1.0
"""Wait (world s) for the vehicle's reason after it reported a mission invalid."""
_REJECTION_HINTS = ("mission", "waypoint", "geofence", "takeoff", "landing")


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
        await self.commands.long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0)

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
        await self.commands.long(mavlink.MAV_CMD_NAV_TAKEOFF, NAN, 0.0, 0.0, NAN, NAN, NAN, alt)

    async def set_mode(self, mode: FlightMode) -> None:
        """Switch to a PX4 flight mode (DO_SET_MODE with PX4's main/sub mode numbers)."""
        try:
            main, sub = px4.px4_mode(mode)
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
        )

    async def land(self) -> None:
        await self.set_mode(FlightMode.LAND)

    async def hold(self) -> None:
        await self.set_mode(FlightMode.HOLD)

    async def return_to_launch(self) -> None:
        await self.set_mode(FlightMode.RTL)

    async def start_mission(self, first_item: int = 0) -> None:
        last = max(len(self.mission_items) - 1, first_item)
        self.note_commanded_mode(FlightMode.MISSION)
        await self.commands.long(mavlink.MAV_CMD_MISSION_START, float(first_item), float(last))

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
                float(translate.winch_action(winch.action)),
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
        items = translate.plan_to_items(plan, self._origin(), default_alt)
        started = self.clock.monotonic()
        await self.missions.upload(MissionType.MISSION, items)
        self.mission_items = items
        # PX4 acknowledges the transfer before its navigator has checked the plan: a report
        # sent right after the ACK may carry the new count with the old verdict
        await self.clock.sleep(VERIFY_SETTLE_S)
        with self.listen((mavlink.MAVLINK_MSG_ID_MISSION_CURRENT,)) as reports:
            asked = self.clock.monotonic()
            self.commands.fire(
                mavlink.MAV_CMD_REQUEST_MESSAGE, float(mavlink.MAVLINK_MSG_ID_MISSION_CURRENT)
            )
            await self._verify(reports, len(items), started, asked)

    async def _verify(self, reports: Any, count: int, started: float, acked: float) -> None:
        within = max(VERIFY_MIN_S, 2 * self.port.options.mission_timeout_s)
        deadline = acked + within
        state = MissionRunState.UNKNOWN
        rechecked = False
        while True:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise MissionUploadError(
                    f"{self.vehicle_id} did not report the state of the uploaded mission",
                    vehicle_id=self.vehicle_id,
                    result="NO_MISSION_STATE",
                )
            try:
                msg = await reports.get(remaining)
            except TimeoutError:
                continue
            if not isinstance(msg, mavlink.MAVLink_mission_current_message):
                continue
            if msg.total != count and msg.total != translate.UINT16_MAX:
                continue  # still describes the previous plan
            state = translate.mission_run_state(msg.mission_state, msg.total)
            if count == 0 or state == MissionRunState.UNKNOWN:
                return  # nothing to judge, or a vehicle that does not report mission_state
            if state == MissionRunState.INVALID:
                break
            # valid; but PX4 may report before re-checking: if it complained, look once more
            if not rechecked and self._rejection_texts(started):
                rechecked = True
                continue
            return
        texts = await self.wait_text(started, REASON_WAIT_S, Severity.WARNING)
        reason = "; ".join(dict.fromkeys(t.text for t in texts)) or "no reason given"
        raise MissionUploadError(
            f"{self.vehicle_id} rejected the mission: {reason}",
            vehicle_id=self.vehicle_id,
            result="INVALID",
            reason=reason,
        )

    def _rejection_texts(self, since: float) -> list[str]:
        return [
            t.text
            for t in self.texts_since(since, Severity.ERROR)
            if any(h in t.text.lower() for h in _REJECTION_HINTS)
        ]

    async def clear_mission(self) -> None:
        await self.missions.clear(MissionType.MISSION)
        self.mission_items = []

    async def download_mission(self) -> FlightPlan:
        """The mission stored on the vehicle."""
        return translate.items_to_plan(await self.missions.download(MissionType.MISSION))

    async def upload_geofence(self, fence: Geofence) -> None:
        items = translate.geofence_to_items(fence)
        if not items:
            await self.missions.clear(MissionType.FENCE)
            return
        await self.missions.upload(MissionType.FENCE, items)

    async def download_geofence(self) -> Geofence:
        return translate.items_to_geofence(await self.missions.download(MissionType.FENCE))

    async def clear_geofence(self) -> None:
        await self.missions.clear(MissionType.FENCE)

    async def upload_rally(self, points: Sequence[Position]) -> None:
        """Rally (safe landing) points, altitudes relative to home."""
        items = translate.rally_to_items(list(points))
        if not items:
            await self.missions.clear(MissionType.RALLY)
            return
        await self.missions.upload(MissionType.RALLY, items)

    async def download_rally(self) -> list[Position]:
        return translate.items_to_rally(await self.missions.download(MissionType.RALLY))

    async def upload_items(self, mission_type: MissionType, items: list[MissionItem]) -> None:
        """Upload raw wire items (diagnostics and tests; missions use ``upload_mission``)."""
        await self.missions.upload(mission_type, items)

    # -- set-up after discovery ----------------------------------------------------------------

    async def request_streams(self) -> None:
        """Ask for the messages the service relies on; failures are logged, not fatal."""
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
