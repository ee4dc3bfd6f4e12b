"""The MAVLink command protocol, ground-station side.

A command goes out as COMMAND_LONG (or COMMAND_INT for positional commands) and is answered
by a COMMAND_ACK for the same command id addressed to us. Without an answer within
``command_timeout_s`` it is sent again, up to ``command_retries`` times; COMMAND_LONG's
``confirmation`` field counts the resends so the vehicle can tell them from new commands. Only
one command of a given id is in flight per vehicle at a time (the protocol cannot tell two
apart), commands of different ids may overlap.

Answers:

* ``ACCEPTED`` -> return;
* ``IN_PROGRESS`` -> the vehicle is working on it: stop resending and wait for the final ACK
  (PX4 answers DO_GRIPPER this way and ACCEPTED about a second later); every further
  IN_PROGRESS restarts the wait of ``in_progress_timeout_s``;
* ``DENIED``, ``TEMPORARILY_REJECTED``, ``UNSUPPORTED``, ``FAILED``, ``CANCELLED`` ... ->
  :class:`fleet.errors.CommandRejected` with the result name and the reason the vehicle gave
  in STATUSTEXT/EVENT around the refusal;
* silence after every resend -> :class:`fleet.errors.CommandTimeout`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import translate
from firmware_bridges.mavlink.session import VehicleSession
from firmware_bridges.mavlink.wire.messages import Message
from fleet.errors import CommandRejected, CommandTimeout, LinkLost
from fleet.events import Severity
from fleet.vehicle import LinkState

NAN = math.nan
"""'Not set' for float command parameters."""
IN_PROGRESS_TIMEOUT_S = 10.0
"""World seconds to wait for the final ACK after an IN_PROGRESS."""
REASON_GRACE_S = 0.5
"""After a refusal, wait this long for the vehicle's explanation if none came before."""


@dataclass(frozen=True, slots=True)
class Ack:
    """A final COMMAND_ACK."""

    command: int
    result: int
    progress: int
    result_param2: int


class CommandClient:
    """Sends commands to one vehicle and waits for their acknowledgement."""

    def __init__(self, session: VehicleSession) -> None:
        self.session = session
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self, command: int) -> asyncio.Lock:
        lock = self._locks.get(command)
        if lock is None:
            lock = self._locks[command] = asyncio.Lock()
        return lock

    async def long(
        self,
        command: int,
        p1: float = 0.0,
        p2: float = 0.0,
        p3: float = 0.0,
        p4: float = 0.0,
        p5: float = 0.0,
        p6: float = 0.0,
        p7: float = 0.0,
        *,
        retries: int | None = None,
        ack_timeout: float | None = None,
        in_progress_timeout: float = IN_PROGRESS_TIMEOUT_S,
        mode_group: str | None = None,
    ) -> Ack:
        """Send a COMMAND_LONG and wait for its final ACK (see module docs). ``mode_group``:
        the PX4 mode group the command arms or enters (``mission``, ``takeoff``...), whose
        arming-check problems explain a refusal."""
        s = self.session

        def build(attempt: int) -> Message:
            return mavlink.MAVLink_command_long_message(
                s.system_id, s.component_id, command, min(attempt, 255), p1, p2, p3, p4, p5, p6, p7
            )

        return await self._run(
            command, build, retries, ack_timeout, in_progress_timeout, mode_group
        )

    async def int_(
        self,
        command: int,
        frame: int,
        p1: float = 0.0,
        p2: float = 0.0,
        p3: float = 0.0,
        p4: float = 0.0,
        x: int = 0,
        y: int = 0,
        z: float = 0.0,
        *,
        retries: int | None = None,
        ack_timeout: float | None = None,
    ) -> Ack:
        """Send a COMMAND_INT (positions in degE7) and wait for its final ACK."""
        s = self.session

        def build(attempt: int) -> Message:
            return mavlink.MAVLink_command_int_message(
                s.system_id, s.component_id, frame, command, 0, 0, p1, p2, p3, p4, x, y, z
            )

        return await self._run(command, build, retries, ack_timeout, IN_PROGRESS_TIMEOUT_S)

    async def _run(
        self,
        command: int,
        build: Callable[[int], Message],
        retries: int | None,
        ack_timeout: float | None,
        in_progress_timeout: float,
        mode_group: str | None = None,
    ) -> Ack:
        s = self.session
        opts = s.port.options
        retries = opts.command_retries if retries is None else retries
        timeout = opts.command_timeout_s if ack_timeout is None else ack_timeout
        name = translate.command_name(command)
        if s.status.link == LinkState.LOST:
            raise LinkLost(
                f"{s.vehicle_id} link is lost; {name} not sent",
                vehicle_id=s.vehicle_id,
                command=name,
            )
        async with self._lock(command):
            started = s.clock.monotonic()
            with s.listen(
                (mavlink.MAVLINK_MSG_ID_COMMAND_ACK,), lambda m: m.command == command
            ) as acks:
                in_progress = False
                attempt = 0
                while attempt <= retries:
                    s.send(build(attempt))
                    attempt += 1
                    wait = timeout
                    while True:
                        try:
                            ack = await acks.get(wait)
                        except TimeoutError:
                            break
                        if ack is LinkState.LOST:
                            raise LinkLost(
                                f"{s.vehicle_id} link lost while waiting for {name}",
                                vehicle_id=s.vehicle_id,
                                command=name,
                            )
                        if ack.result == mavlink.MAV_RESULT_IN_PROGRESS:
                            in_progress = True
                            wait = in_progress_timeout
                            continue
                        if ack.result == mavlink.MAV_RESULT_ACCEPTED:
                            return Ack(command, ack.result, ack.progress, ack.result_param2)
                        await self._reject(name, ack.result, started, mode_group)
                    if in_progress:
                        raise CommandTimeout(
                            f"{s.vehicle_id} reported {name} in progress but never finished it",
                            vehicle_id=s.vehicle_id,
                            command=name,
                        )
            raise CommandTimeout(
                f"{s.vehicle_id} did not acknowledge {name} after {retries + 1} attempts",
                vehicle_id=s.vehicle_id,
                command=name,
                attempts=retries + 1,
            )

    async def _reject(self, name: str, result: int, started: float, mode_group: str | None) -> None:
        """Raise ``CommandRejected`` with what the vehicle said about this refusal: its
        warnings and errors since the command went out and, for a command that arms or enters
        a mode, the problems of that mode group in the arming report PX4 sends when it refuses
        to arm (``Commander::arm``). Arming-check events never count as texts."""
        s = self.session
        texts = await s.wait_text(started, REASON_GRACE_S, Severity.WARNING)
        words = [t.text for t in texts]
        if mode_group is not None and s.speaks_events:
            report = await s.wait_arming_report(REASON_GRACE_S, since=started)
            if report is not None:
                words.extend(p.message for p in report.problems_for(mode_group))
        reason = "; ".join(dict.fromkeys(words)) or None
        result_text = translate.result_name(result)
        message = f"{s.vehicle_id} refused {name}: {result_text}"
        if reason:
            message += f" ({reason})"
        raise CommandRejected(
            message, vehicle_id=s.vehicle_id, command=name, result=result_text, reason=reason
        )

    def fire(self, command: int, *params: float) -> None:
        """Send a COMMAND_LONG once without waiting (requests whose answer is the data)."""
        s = self.session
        p = [*params, *([0.0] * (7 - len(params)))]
        s.send(mavlink.MAVLink_command_long_message(s.system_id, s.component_id, command, 0, *p))
