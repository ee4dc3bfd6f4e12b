"""The MAVLink parameter protocol, ground-station side: read and write one parameter by name.

Read: PARAM_REQUEST_READ(name, index -1) -> PARAM_VALUE with that name. Write: PARAM_SET(name,
value, type) -> PARAM_VALUE echoing the value now in force; a vehicle that keeps another value
(out of range, read-only) echoes the old one and the write fails. The type of a parameter is
learnt from the first PARAM_VALUE for it and cached, because PARAM_SET must carry it. Integer
parameters travel with PX4's bytewise encoding unless the vehicle announced C-cast encoding
in AUTOPILOT_VERSION.capabilities. PARAM_ERROR (newer PX4: unknown name, read-only, value out
of range) fails the request at once with the vehicle's error; silence after every retry raises
``CommandTimeout`` (older PX4 answers an unknown name with nothing but a STATUSTEXT, which is
quoted as the reason).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import translate
from firmware_bridges.mavlink.session import VehicleSession
from firmware_bridges.mavlink.wire.messages import Message
from fleet.errors import CommandRejected, CommandTimeout, LinkLost
from fleet.events import Severity
from fleet.vehicle import LinkState

_VALUE = mavlink.MAVLINK_MSG_ID_PARAM_VALUE
_ERROR = mavlink.MAVLINK_MSG_ID_PARAM_ERROR


class ParamClient:
    """Reads and writes parameters of one vehicle."""

    def __init__(self, session: VehicleSession) -> None:
        self.session = session
        self.types: dict[str, int] = {}
        """Cached MAV_PARAM_TYPE of every parameter seen."""
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def bytewise(self) -> bool:
        caps = self.session.capabilities
        c_cast = caps & mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST
        bytewise = caps & mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
        return not (c_cast and not bytewise)

    async def _exchange(
        self,
        name: str,
        send: Callable[[], None],
        what: str,
        accept: Callable[[Message], bool] | None = None,
    ) -> Message:
        s = self.session
        opts = s.port.options
        if s.status.link == LinkState.LOST:
            raise LinkLost(
                f"{s.vehicle_id} link is lost; {what} {name} not sent",
                vehicle_id=s.vehicle_id,
                parameter=name,
            )
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            started = s.clock.monotonic()

            def mine(m: Message) -> bool:
                return translate.param_name(m.param_id) == name

            refused: Any = None
            with s.listen((_VALUE, _ERROR), mine) as inbox:
                for _attempt in range(opts.command_retries + 1):
                    send()
                    try:
                        msg = await inbox.get(opts.command_timeout_s)
                    except TimeoutError:
                        continue
                    while (
                        accept is not None
                        and msg is not LinkState.LOST
                        and msg.get_msgId() == _VALUE
                        and not accept(msg)
                    ):
                        refused = msg  # an older value; the echo may still come
                        try:
                            msg = await inbox.get(opts.command_timeout_s)
                        except TimeoutError:
                            msg = None
                            break
                    if msg is None:
                        continue
                    if msg is LinkState.LOST:
                        raise LinkLost(
                            f"{s.vehicle_id} link lost during {what} {name}",
                            vehicle_id=s.vehicle_id,
                            parameter=name,
                        )
                    if msg.get_msgId() == _ERROR:
                        entry = mavlink.enums["MAV_PARAM_ERROR"].get(msg.error)
                        error = (
                            entry.name.removeprefix("MAV_PARAM_ERROR_") if entry else str(msg.error)
                        )
                        raise CommandRejected(
                            f"{s.vehicle_id} refused {what} {name}: {error}",
                            vehicle_id=s.vehicle_id,
                            parameter=name,
                            result=error,
                        )
                    self.types[name] = msg.param_type
                    return msg
            if refused is not None:
                return refused
            texts = s.texts_since(started, Severity.WARNING)
            reason = "; ".join(t.text for t in texts) or None
            raise CommandTimeout(
                f"{s.vehicle_id} did not answer {what} {name}" + (f" ({reason})" if reason else ""),
                vehicle_id=s.vehicle_id,
                parameter=name,
                reason=reason,
            )

    async def get(self, name: str) -> float:
        s = self.session
        raw = translate.param_id(name)

        def send() -> None:
            s.send(mavlink.MAVLink_param_request_read_message(s.system_id, s.component_id, raw, -1))

        msg = await self._exchange(name, send, "reading")
        return translate.decode_param_value(msg.param_value, msg.param_type, self.bytewise)

    async def set(self, name: str, value: float) -> float:
        """Write ``value``; returns the value the vehicle reports in force."""
        s = self.session
        raw = translate.param_id(name)
        if name not in self.types:
            await self.get(name)
        ptype = self.types[name]
        wire = translate.encode_param_value(value, ptype, self.bytewise)

        def send() -> None:
            s.send(mavlink.MAVLink_param_set_message(s.system_id, s.component_id, raw, wire, ptype))

        def applied(m: Message) -> bool:
            got = translate.decode_param_value(m.param_value, m.param_type, self.bytewise)
            return math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-6)

        msg = await self._exchange(name, send, "setting", applied)
        now = translate.decode_param_value(msg.param_value, msg.param_type, self.bytewise)
        if not math.isclose(now, value, rel_tol=1e-6, abs_tol=1e-6):
            raise CommandRejected(
                f"{s.vehicle_id} kept {name} = {now:g} instead of {value:g}",
                vehicle_id=s.vehicle_id,
                parameter=name,
                value=now,
                result="NOT_APPLIED",
            )
        return now
