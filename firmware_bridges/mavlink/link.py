"""``MavlinkLink``: one asyncio UDP endpoint serving any number of MAVLink vehicles.

URL schemes (registered in :mod:`fleet.link` by :func:`register`, which the composition root
calls):

* ``mavlink+udpin://HOST:PORT`` binds HOST:PORT and waits; vehicles send to it (PX4 SITL
  instance i sends its API link to 14540+i). Each system id is answered at the address it was
  last heard from.
* ``mavlink+udpout://HOST:PORT`` binds an ephemeral port and sends to the vehicle at HOST:PORT
  first (our heartbeat opens the link), for vehicles that wait for the ground station. HOST is
  resolved once when the link opens (IPv4 preferred).

Receive path: every datagram is split into frames (:func:`.codec.iter_frames`); a frame from a
known vehicle's autopilot is decoded only if :data:`.session.HANDLERS` has a handler for its
message id. An unknown system id becomes a vehicle on its first autopilot HEARTBEAT
(component 1, not a GCS, a type the fleet operates): it is added to the registry with a
:class:`.control.MavlinkDrone` as its control handle, a DISCOVERED event is published and the
streams the service needs are requested. Frames from other components are ignored except
STATUSTEXT (recorded with the component id). Garbage, truncated, CRC-failing and unsigned frames
are counted in :attr:`MavlinkLink.stats` and dropped.

Tasks (owned by the link's TaskGroup): the ground-station HEARTBEAT every
``heartbeat_interval_s`` to every known vehicle address (PX4 refuses to arm without one and
sends STATUSTEXT only to links that have a GCS), the link watchdog (LINK_LOST after
``link_timeout_s`` of heartbeat silence, in world time while the service runs on time: the
time its own rounds run late, the process stalled or overloaded, is not counted, since the
heartbeats of that time are waiting unread) and each new vehicle's stream set-up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self
from urllib.parse import SplitResult

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import translate
from firmware_bridges.mavlink.codec import (
    Codec,
    DecodeError,
    LinkStats,
    iter_frames,
    parse_signing_key,
)
from firmware_bridges.mavlink.control import MavlinkDrone
from firmware_bridges.mavlink.options import MavlinkOptions
from firmware_bridges.mavlink.session import AUTOPILOT_COMPONENT, HANDLERS
from firmware_bridges.mavlink.wire.messages import Message
from fleet.errors import ConfigError, LinkError
from fleet.events import VehicleEvent, VehicleEventKind
from fleet.link import LinkContext, VehicleLink, register_scheme
from fleet.vehicle import Capability, LinkState, VehicleInfo

log = structlog.get_logger(__name__)

SCHEME_UDPIN = "mavlink+udpin"
"""Listen for vehicles on HOST:PORT."""
SCHEME_UDPOUT = "mavlink+udpout"
"""Send to a vehicle at HOST:PORT."""
_HEARTBEAT = mavlink.MAVLINK_MSG_ID_HEARTBEAT
_STATUSTEXT = mavlink.MAVLINK_MSG_ID_STATUSTEXT
_LOGGED_ERRORS = 20
"""Handler failures logged in full; after that one in a thousand."""
_WATCHDOG_MAX_S = 0.5
"""Longest period of the link watchdog (world seconds)."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, link: MavlinkLink) -> None:
        self.link = link

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.link._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a vehicle that went away: not fatal for UDP
        log.debug("mavlink.socket_error", url=self.link.url, error=str(exc))


class MavlinkLink(VehicleLink):
    """A MAVLink 2 UDP endpoint and the vehicles behind it."""

    def __init__(self, url: str, parts: SplitResult, ctx: LinkContext) -> None:
        super().__init__(url, ctx)
        if parts.scheme not in (SCHEME_UDPIN, SCHEME_UDPOUT):
            raise ConfigError(f"not a MAVLink UDP URL: {url}", url=url)
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad port in {url}: {exc}", url=url) from exc
        if not parts.hostname or port is None:
            raise ConfigError(f"{url} needs a host and a port", url=url)
        self.mode = "in" if parts.scheme == SCHEME_UDPIN else "out"
        self.host: str = parts.hostname
        self.port_number: int = port
        self.options = MavlinkOptions.from_mapping(ctx.options)
        self.clock = ctx.clock
        self.registry = ctx.registry
        self.bus = ctx.bus
        self.codec = Codec(
            self.options.system_id,
            self.options.component_id,
            ctx.clock,
            parse_signing_key(self.options.signing_key),
        )
        self.stats = LinkStats()
        self.stalled_s = 0.0
        """World seconds the link watchdog ran late (the service not running on time), in all;
        not counted as any vehicle's silence (:meth:`VehicleSession.check_link`)."""
        self.local_address: tuple[str, int] | None = None
        """Address the endpoint is bound to (known once open)."""
        self.rcvbuf_granted: int | None = None
        """SO_RCVBUF the kernel granted."""
        self._sessions: dict[int, MavlinkDrone] = {}
        self._ignored_sysids: set[int] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._remote: tuple[str, int] | None = None
        self._family: int | None = None

    # -- VehicleLink ----------------------------------------------------------------------------

    @property
    def vehicle_ids(self) -> list[str]:
        return [s.vehicle_id for s in self._sessions.values()]

    @property
    def is_open(self) -> bool:
        """Whether the UDP endpoint is open (entered and not closing)."""
        return self._transport is not None and not self._transport.is_closing()

    def vehicle(self, system_id: int) -> MavlinkDrone | None:
        """The session of a system id, if discovered."""
        return self._sessions.get(system_id)

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        if self.mode == "out":
            try:
                infos = await loop.getaddrinfo(self.host, self.port_number, type=socket.SOCK_DGRAM)
            except OSError as exc:
                raise LinkError(f"cannot resolve {self.url}: {exc}", url=self.url) from exc
            # UDP cannot probe which address answers: prefer IPv4, as vehicles and routers do
            infos.sort(key=lambda info: info[0] != socket.AF_INET)
            family, *_, sockaddr = infos[0]
            self._remote = (str(sockaddr[0]), int(sockaddr[1]))
            self._family = family
        sock = self._open_socket()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport
        self.local_address = sock.getsockname()[:2]
        log.info(
            "mavlink.link_open",
            url=self.url,
            local=f"{self.local_address[0]}:{self.local_address[1]}",
            rcvbuf_requested=self.options.rcvbuf_bytes,
            rcvbuf_granted=self.rcvbuf_granted,
            signing=self.codec.signing,
        )
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks.append(
            self._tg.create_task(self._heartbeat_loop(), name=f"{self.url} heartbeat")
        )
        self._tasks.append(self._tg.create_task(self._watchdog_loop(), name=f"{self.url} watchdog"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        try:
            if self._tg is not None:
                await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tasks.clear()
            if self._transport is not None:
                self._transport.close()
                self._transport = None
            for session in self._sessions.values():
                session.status.link = LinkState.UNKNOWN
                self.registry.touch(session.vehicle_id)
            log.info("mavlink.link_closed", url=self.url, **self.stats.as_dict())
        return None

    def _open_socket(self) -> socket.socket:
        family = self._family or (socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.options.rcvbuf_bytes)
            self.rcvbuf_granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if self.mode == "in":
                sock.bind((self.host, self.port_number))
            else:
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise LinkError(f"cannot open {self.url}: {exc}", url=self.url) from exc
        if self.rcvbuf_granted is not None and self.rcvbuf_granted < self.options.rcvbuf_bytes:
            log.warning(
                "mavlink.rcvbuf_limited",
                url=self.url,
                requested=self.options.rcvbuf_bytes,
                granted=self.rcvbuf_granted,
                hint="raise net.core.rmem_max to allow the requested size",
            )
        return sock

    # -- LinkPort (used by sessions) --------------------------------------------------------------

    def send_bytes(self, data: bytes, address: tuple[str, int]) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.sendto(data, address)
        self.stats.sent += 1

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._tg is None or self._closing:
            coro.close()
            return
        task = self._tg.create_task(self._guard(coro, name), name=name)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mavlink.task_failed", task=name)

    # -- receive path -------------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        stats = self.stats
        stats.datagrams += 1
        sessions = self._sessions
        handlers = HANDLERS
        for start, end, msgid, sysid, compid in iter_frames(data, stats):
            stats.frames += 1
            session = sessions.get(sysid)
            if session is None:
                if msgid == _HEARTBEAT and compid == AUTOPILOT_COMPONENT:
                    self._maybe_discover(data[start:end], sysid, addr)
                else:
                    stats.foreign += 1
                continue
            if compid != AUTOPILOT_COMPONENT:
                if msgid == _STATUSTEXT:
                    msg = self._decode(data[start:end])
                    if msg is not None:
                        session.on_statustext(msg, component=compid)
                else:
                    stats.foreign += 1
                continue
            handler = handlers.get(msgid)
            if handler is None:
                stats.skipped += 1
                continue
            msg = self._decode(data[start:end])
            if msg is None:
                continue
            if session.address != addr:
                session.address = addr
            try:
                handler(session, msg)
            except Exception:
                stats.handler_errors += 1
                # a vehicle sending something that trips a handler may do it 60 times a second
                if stats.handler_errors <= _LOGGED_ERRORS or stats.handler_errors % 1000 == 0:
                    log.exception(
                        "mavlink.handler_failed",
                        vehicle_id=session.vehicle_id,
                        msgid=msgid,
                        count=stats.handler_errors,
                    )

    def _decode(self, frame: bytes) -> Message | None:
        try:
            msg = self.codec.decode(frame)
        except DecodeError as exc:
            if exc.signature:
                self.stats.bad_signature += 1
            else:
                self.stats.bad_crc += 1
            return None
        self.stats.decoded += 1
        return msg

    def _maybe_discover(self, frame: bytes, sysid: int, addr: tuple[str, int]) -> None:
        if sysid in self._ignored_sysids:
            self.stats.foreign += 1
            return
        msg = self._decode(frame)
        if msg is None:
            return
        if not translate.is_autopilot_heartbeat(msg.type, msg.autopilot):
            self.stats.foreign += 1
            return
        kind = translate.vehicle_kind(msg.type)
        if kind is None:
            self._ignored_sysids.add(sysid)
            log.warning(
                "mavlink.vehicle_type_ignored", url=self.url, sysid=sysid, mav_type=msg.type
            )
            return
        vehicle_id = self.options.vehicle_names.get(sysid) or f"{kind.value}-{sysid}"
        info = VehicleInfo(
            id=vehicle_id,
            kind=kind,
            link_url=self.url,
            address=str(sysid),
            capabilities=frozenset({Capability.DELIVERY}),
            payload_kg=float(self.options.payload_kg),
            name=vehicle_id,
        )
        try:
            entry = self.registry.add(info, control=None)
        except Exception as exc:  # e.g. the id is served by another link
            self._ignored_sysids.add(sysid)
            log.error("mavlink.vehicle_rejected", url=self.url, sysid=sysid, error=str(exc))
            return
        session = MavlinkDrone(self, entry, sysid, addr)
        entry.control = session
        self._sessions[sysid] = session
        log.info(
            "mavlink.vehicle_discovered",
            url=self.url,
            vehicle_id=vehicle_id,
            sysid=sysid,
            kind=str(kind),
            address=f"{addr[0]}:{addr[1]}",
        )
        self.bus.publish(
            VehicleEvent(
                at=self.clock.time(),
                vehicle_id=vehicle_id,
                kind=VehicleEventKind.DISCOVERED,
                message=f"{kind.value} system {sysid} on {self.url}",
                data={"system_id": sysid, "link_url": self.url, "mav_type": msg.type},
            )
        )
        session.on_heartbeat(msg)
        self._send_heartbeat_to([addr])
        self.spawn(session.request_streams(), name=f"{vehicle_id} streams")

    # -- periodic tasks -------------------------------------------------------------------------

    def _heartbeat_bytes(self) -> bytes:
        return self.codec.pack(
            mavlink.MAVLink_heartbeat_message(
                mavlink.MAV_TYPE_GCS,
                mavlink.MAV_AUTOPILOT_INVALID,
                0,
                0,
                mavlink.MAV_STATE_ACTIVE,
                3,
            )
        )

    def _send_heartbeat_to(self, addresses: list[tuple[str, int]]) -> None:
        data = self._heartbeat_bytes()
        for addr in addresses:
            self.send_bytes(data, addr)

    async def _heartbeat_loop(self) -> None:
        while True:
            addresses = {s.address for s in self._sessions.values()}
            if self._remote is not None:
                addresses.add(self._remote)
            if addresses:
                try:
                    self._send_heartbeat_to(sorted(addresses))
                except OSError as exc:
                    log.warning("mavlink.heartbeat_send_failed", url=self.url, error=str(exc))
            await self.clock.sleep(self.options.heartbeat_interval_s)

    async def _watchdog_loop(self) -> None:
        period = min(_WATCHDOG_MAX_S, self.options.link_timeout_s / 4)
        last = self.clock.monotonic()
        while True:
            await self.clock.sleep(period)
            now = self.clock.monotonic()
            late = now - last - period
            last = now
            if late > period:
                # the service itself did not run on time (a stalled or overloaded event loop):
                # that time is not the links' silence (their heartbeats are waiting unread)
                self.stalled_s += late
                log.info("mavlink.watchdog_late", url=self.url, late_s=round(late, 3))
            for session in tuple(self._sessions.values()):
                session.check_link(now)


def _factory(url: str, parts: SplitResult, ctx: LinkContext) -> VehicleLink:
    return MavlinkLink(url, parts, ctx)


def register() -> None:
    """Register the ``mavlink+udpin`` and ``mavlink+udpout`` link schemes (idempotent).

    Called by the composition root (``api.runtime``) and by test fixtures that create links;
    importing the bridge registers nothing."""
    register_scheme(SCHEME_UDPIN, _factory)
    register_scheme(SCHEME_UDPOUT, _factory)
