"""What a session follows to decide whether its vehicle can fly a mission now.

The decision itself is :func:`.verdicts.readiness`; :class:`ReadinessInputs` keeps what it is
made from besides the vehicle's status (home, pre-arm bit): when the last global position came,
which autopilot the vehicle runs, when we asked for its health-and-arming-checks report, and the
reports assembled from its events (:class:`.arming_checks.ArmingCheckTracker`), which callers
can wait for (a command refusal is explained with the next report, PX4 sends one when it
refuses to arm). :class:`.session.VehicleSession` feeds it and publishes the decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.arming_checks import ArmingCheckTracker, ArmingReport
from firmware_bridges.mavlink.verdicts import readiness
from fleet.clock import Clock
from fleet.vehicle import VehicleStatus

ARMING_REPORT_GRACE_S = 10.0
"""A PX4 vehicle that has not reported its health and arming checks this long (world s) after
we asked for them is judged by its SYS_STATUS pre-arm bit instead."""
REPORT_POLL_S = 0.5
"""While waiting for a report, look this often (world s) whether one completed by time (a
report waiting for a lost event)."""


class ReadinessInputs:
    """What a vehicle has said that bears on its readiness, besides its status."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.arming_checks = ArmingCheckTracker()
        """Health-and-arming-checks reports assembled from events; see :attr:`report`."""
        self.position_at: float | None = None
        """Clock ``monotonic()`` of the last GLOBAL_POSITION_INT."""
        self.autopilot: int | None = None
        """HEARTBEAT.autopilot (MAV_AUTOPILOT)."""
        self.prearm_asked_at: float | None = None
        """When we asked for a health-and-arming-checks report (MAV_CMD_RUN_PREARM_CHECKS);
        ``-inf`` once the vehicle refused to send one."""
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def report(self) -> ArmingReport | None:
        """The latest complete health-and-arming-checks report, or None before the first."""
        return self.arming_checks.report

    def expects_report(self, now: float) -> bool:
        """Whether readiness must wait for a health-and-arming-checks report: a PX4 autopilot
        does, until it proves it does not report its checks (it refused
        MAV_CMD_RUN_PREARM_CHECKS, or sent no report within :data:`ARMING_REPORT_GRACE_S` of
        our asking)."""
        if self.report is not None:
            return True
        if self.autopilot != mavlink.MAV_AUTOPILOT_PX4:
            return False
        asked = self.prearm_asked_at
        return asked is None or now - asked <= ARMING_REPORT_GRACE_S

    def reasons(
        self, status: VehicleStatus, now: float, position_timeout_s: float
    ) -> tuple[str, ...]:
        """Why the vehicle cannot fly a mission now (empty: it can), see
        :func:`.verdicts.readiness`."""
        position_fresh = (
            self.position_at is not None and now - self.position_at <= position_timeout_s
        )
        return readiness(
            home=status.home is not None,
            position=position_fresh,
            prearm=status.ready_to_arm,
            report=self.report,
            expect_report=self.expects_report(now),
        )

    def report_changed(self) -> None:
        """Wake whoever waits for a report (:meth:`wait_report`)."""
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait_report(
        self, within: float, since: float | None, on_completed: Callable[[], None]
    ) -> ArmingReport | None:
        """The next report to complete (or, with ``since``, the latest completed at or after
        that clock ``monotonic()``), waiting up to ``within`` world seconds; None if none.
        ``on_completed`` is called when the wait itself completes a report by time."""
        tracker = self.arming_checks
        count = tracker.reports

        def found() -> ArmingReport | None:
            report = tracker.report
            if report is None:
                return None
            if since is not None:
                return report if report.at >= since else None
            return report if tracker.reports > count else None

        deadline = self.clock.monotonic() + within
        while (report := found()) is None:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return None
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                # wake now and then: a report waiting for a lost event completes by time
                await self.clock.wait_for(fut, min(left, REPORT_POLL_S))
            if tracker.poll(self.clock.monotonic()) is not None:
                on_completed()
        return report
