"""Where a payload's host drone is, read from the drone's flight controller over MAVLink.

A real loudspeaker payload reads its position from the flight controller it rides on. PX4
gives payloads an onboard MAVLink link of their own: SITL instance *i* sends it from UDP
14280+i to 127.0.0.1:14030+i (``px4-rc.mavlink``, "Onboard link to camera"), streaming
GLOBAL_POSITION_INT among others (about 7 Hz of world time). :class:`MavlinkPositionFeed`
listens there and turns each GLOBAL_POSITION_INT into a :class:`.payload.HostFix` stamped with
the clock's time of arrival, so a :class:`.payload.SimSpeakerPayload` can fly on a real PX4
(SITL or hardware) exactly as it flies on a sim drone, whose ground truth it reads otherwise
(:func:`.payload.follow`).

Only the host's own autopilot counts (``system_id``, component 1); anything else on the port is
ignored, and a datagram that is not MAVLink is dropped.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from pymavlink.dialects.v20 import common as mavlink

from fleet.clock import Clock
from sim.speaker.payload import HostFix

PAYLOAD_PORT_BASE = 14030
"""PX4 SITL instance i sends its payload link to UDP 14030+i."""
AUTOPILOT_COMPONENT = 1
"""MAV_COMP_ID_AUTOPILOT1."""


def payload_port(instance: int) -> int:
    """Where PX4 SITL instance ``instance`` sends its payload (onboard) link."""
    return PAYLOAD_PORT_BASE + instance


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, feed: MavlinkPositionFeed) -> None:
        self.feed = feed

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.feed._datagram(data)


class MavlinkPositionFeed:
    """The latest position of one MAVLink vehicle heard on a UDP port; an async context
    manager. Call the instance (a :data:`.payload.PositionSource`) for the latest fix."""

    def __init__(self, port: int, system_id: int, clock: Clock, host: str = "127.0.0.1") -> None:
        self.address = (host, port)
        self.system_id = system_id
        self.clock = clock
        self.latest: HostFix | None = None
        self.received = 0
        """GLOBAL_POSITION_INT messages taken from the host."""
        self._mav = mavlink.MAVLink(None)
        self._mav.robust_parsing = True
        self._transport: asyncio.DatagramTransport | None = None

    def __call__(self) -> HostFix | None:
        return self.latest

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.address
        )
        self._transport = transport
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _datagram(self, data: bytes) -> None:
        try:
            messages = self._mav.parse_buffer(data) or []
        except mavlink.MAVError:
            return
        for msg in messages:
            if (
                msg.get_msgId() == mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT
                and msg.get_srcSystem() == self.system_id
                and msg.get_srcComponent() == AUTOPILOT_COMPONENT
            ):
                self.received += 1
                self.latest = HostFix(
                    msg.lat / 1e7, msg.lon / 1e7, msg.relative_alt / 1000.0, self.clock.time()
                )
