"""A vehicle's event metadata: asked for after discovery, downloaded over MAVLink FTP, cached.

What the vehicle says in EVENT messages is defined in its firmware's event metadata; this module
fetches it the way QGroundControl does (component-information protocol, :mod:`.wire.component_info`)
so that events render with the vehicle's own texts (:mod:`.wire.event_metadata`):

1. MAV_CMD_REQUEST_MESSAGE for COMPONENT_METADATA (397); when that is refused or not answered,
   for the deprecated COMPONENT_INFORMATION (395). The answer gives the URI and CRC of the
   general metadata file (PX4: ``mftp://etc/extras/component_general.json.xz``). No answer to
   either: the vehicle offers no metadata and keeps the built-in fallback.
2. The general file, from the cache or over MAVLink FTP (:mod:`.ftp`), names the events file
   (``metadataTypes`` entry of type 4: ``uri``, ``fileCrc``; PX4:
   ``mftp://etc/extras/all_events.json.xz``). Only ``mftp://`` URIs are reachable: an http(s)
   URI (``uri`` or ``uriFallback``) is skipped with a log line saying so.
3. The events file, from the cache or over FTP, is decompressed (``.xz``, Python's ``lzma``)
   and parsed off the event loop (a worker thread), then handed to the session
   (:meth:`.session.VehicleSession.set_event_metadata`), which renders every later event with
   it and re-renders the latest arming report.

**Cache.** Files are kept as downloaded under ``metadata_cache_dir`` (mavlink options), one
directory per firmware version (AUTOPILOT_VERSION.flight_sw_version, e.g. ``fw-1.15.0.255``),
named ``<crc as 8 hex digits>-<file name>``, and written atomically. A second vehicle with the
same firmware, or the service after a restart, finds them there and downloads nothing; vehicles
of one link also share the parsed definitions in memory, and a vehicle discovered while another
downloads the same file waits for that download instead of starting its own. Without a cache
directory only the in-memory sharing remains. The CRC is a cache key, not an integrity check
(see :mod:`.wire.component_info`).

**Never in the way.** The fetch runs as a task spawned through the link (:func:`start`),
bounded by ``metadata_timeout_s`` (world seconds); a timeout or lost link is retried
:data:`ATTEMPTS` times, :data:`RETRY_PAUSE_S` apart. Any failure is logged with its reason and
leaves the fallback in place: telemetry, commands and the arming report work without metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.commands import CommandClient
from firmware_bridges.mavlink.ftp import FtpClient, FtpStats
from firmware_bridges.mavlink.session import LinkPort, VehicleSession
from firmware_bridges.mavlink.wire import component_info
from firmware_bridges.mavlink.wire.component_info import (
    COMP_METADATA_TYPE_EVENTS,
    MSG_ID_COMPONENT_INFORMATION,
    MSG_ID_COMPONENT_METADATA,
    MftpUri,
)
from firmware_bridges.mavlink.wire.event_metadata import EventMetadata, MetadataError
from fleet.errors import CommandRejected, CommandTimeout, LinkLost, VehicleError
from fleet.vehicle import LinkState

log = structlog.get_logger(__name__)

ATTEMPTS = 3
"""Fetches of one vehicle's metadata when they time out or the link is lost."""
RETRY_PAUSE_S = 15.0
"""World seconds between two attempts."""
ANSWER_WAIT_S = 3.0
"""World seconds to wait for COMPONENT_METADATA after the request was acknowledged."""
VERSION_WAIT_S = 2.0
"""World seconds to wait for AUTOPILOT_VERSION (the cache key) before going on without it."""
_VERSION_TYPES = {0: "dev", 64: "alpha", 128: "beta", 192: "rc", 255: "release"}


def firmware_label(flight_sw_version: int | None) -> str:
    """Cache directory name of a firmware version: ``fw-1.15.0.255``, ``fw-unknown``."""
    if flight_sw_version is None:
        return "fw-unknown"
    v = flight_sw_version
    return f"fw-{v >> 24 & 0xFF}.{v >> 16 & 0xFF}.{v >> 8 & 0xFF}.{v & 0xFF}"


@dataclass(slots=True)
class FetchResult:
    """What one fetch did (logged; returned for tests and diagnostics)."""

    metadata: EventMetadata | None = None
    source: str = ""
    """``vehicle`` (downloaded), ``cache`` (disk), ``memory`` (another vehicle's), or ``""``."""
    general_uri: str = ""
    events_uri: str = ""
    downloaded_bytes: int = 0
    files: list[tuple[str, int, str]] = field(default_factory=list)
    """(path, bytes, where from) of each file used."""
    ftp: FtpStats = field(default_factory=FtpStats)
    seconds: float = 0.0
    """Real seconds the fetch took."""


@dataclass(slots=True)
class MetadataCache:
    """Metadata files of one link's vehicles: on disk (optional) and in memory."""

    directory: Path | None
    files: dict[tuple[str, int, str], bytes] = field(default_factory=dict)
    parsed: dict[tuple[str, int, str], EventMetadata] = field(default_factory=dict)
    downloads: dict[tuple[str, int, str], asyncio.Future[None]] = field(default_factory=dict)
    """Downloads under way, so that other vehicles wait for them."""
    parsing: dict[tuple[str, int, str], asyncio.Future[EventMetadata]] = field(default_factory=dict)
    """Parses under way, so that other vehicles wait for them."""

    def path(self, fw: str, crc: int, name: str) -> Path | None:
        if self.directory is None:
            return None
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "file"
        return self.directory / fw / f"{crc:08x}-{safe}"

    def load(self, fw: str, crc: int, name: str) -> bytes | None:
        """A file from memory or disk; None when not cached."""
        key = (fw, crc, name)
        data = self.files.get(key)
        if data is not None:
            return data
        path = self.path(fw, crc, name)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        self.files[key] = data
        return data

    def store(self, fw: str, crc: int, name: str, data: bytes) -> None:
        self.files[(fw, crc, name)] = data
        path = self.path(fw, crc, name)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("mavlink.metadata_cache_write_failed", path=str(path), error=str(exc))


_CACHES: weakref.WeakKeyDictionary[LinkPort, MetadataCache] = weakref.WeakKeyDictionary()


def cache_for(port: LinkPort) -> MetadataCache:
    """The cache shared by the vehicles of one link."""
    cache = _CACHES.get(port)
    if cache is None:
        directory = port.options.metadata_cache_dir
        cache = MetadataCache(Path(directory) if directory else None)
        _CACHES[port] = cache
    return cache


def start(session: VehicleSession, commands: CommandClient) -> None:
    """Spawn the metadata fetch of a newly discovered vehicle (never raises)."""
    session.port.spawn(fetch_with_retries(session, commands), name=f"{session.vehicle_id} metadata")


async def fetch_with_retries(session: VehicleSession, commands: CommandClient) -> None:
    """:func:`fetch` with the retries and bounds described in the module docs; logs only."""
    opts = session.port.options
    for attempt in range(1, ATTEMPTS + 1):
        started = time.monotonic()
        session.metadata_state = "fetching"
        try:
            result = await session.clock.wait_for(
                fetch(session, commands, cache_for(session.port)), opts.metadata_timeout_s
            )
        except (TimeoutError, CommandTimeout, LinkLost) as exc:
            reason = str(exc) or f"not done within {opts.metadata_timeout_s:g} s"
            session.metadata_state = f"failed: {reason}"
            log.warning(
                "mavlink.metadata_failed",
                vehicle_id=session.vehicle_id,
                attempt=attempt,
                reason=reason,
                fallback="built-in event table",
            )
            if attempt < ATTEMPTS:
                await session.clock.sleep(RETRY_PAUSE_S)
            continue
        except (VehicleError, MetadataError, ValueError, OSError) as exc:
            session.metadata_state = f"failed: {exc}"
            log.warning(
                "mavlink.metadata_failed",
                vehicle_id=session.vehicle_id,
                attempt=attempt,
                reason=str(exc),
                fallback="built-in event table",
            )
            return
        result.seconds = time.monotonic() - started
        if result.metadata is not None:
            session.metadata_state = f"loaded from {result.source}"
            log.info(
                "mavlink.metadata_loaded",
                vehicle_id=session.vehicle_id,
                source=result.source,
                events=len(result.metadata),
                uri=result.events_uri,
                downloaded_bytes=result.downloaded_bytes,
                files=[f"{path} {size} B from {where}" for path, size, where in result.files],
                ftp=result.ftp.as_dict(),
                seconds=round(result.seconds, 3),
            )
        return


async def fetch(
    session: VehicleSession, commands: CommandClient, cache: MetadataCache
) -> FetchResult:
    """Fetch and install one vehicle's event metadata (steps in the module docs)."""
    result = FetchResult()
    ref = await request_general(session, commands)
    if ref is None:
        session.metadata_state = "not offered"
        log.info(
            "mavlink.metadata_not_offered",
            vehicle_id=session.vehicle_id,
            reason="no answer to COMPONENT_METADATA or COMPONENT_INFORMATION",
        )
        return result
    general_uri, general_crc = ref
    result.general_uri = general_uri
    fw = firmware_label(await _firmware_version(session))
    ftp = FtpClient(session)
    result.ftp = ftp.stats
    general_mftp = _reachable(session, general_uri, "general")
    if general_mftp is None:
        return result
    general = await _file(session, ftp, cache, fw, general_crc, general_mftp, result)
    entries = component_info.parse_general(general)
    events = entries.get(COMP_METADATA_TYPE_EVENTS)
    if events is None:
        session.metadata_state = "not offered: no events file in the general metadata"
        log.info(
            "mavlink.metadata_no_events",
            vehicle_id=session.vehicle_id,
            reason="the general metadata file lists no events file (type 4)",
            types=sorted(entries),
        )
        return result
    events_mftp = _reachable(session, events.uri, "events")
    uri = events.uri
    if events_mftp is None and events.uri_fallback:
        events_mftp = _reachable(session, events.uri_fallback, "events")
        uri = events.uri_fallback
    if events_mftp is None:
        return result
    result.events_uri = uri
    crc = events.file_crc if events.file_crc is not None else 0
    key = (fw, crc, events_mftp.name)
    metadata = cache.parsed.get(key)
    if metadata is not None:
        result.source = result.source or "memory"
    else:
        data = await _file(session, ftp, cache, fw, crc, events_mftp, result)
        metadata = await _parse(cache, key, data, uri)
    result.metadata = metadata
    session.set_event_metadata(metadata)
    return result


async def request_general(
    session: VehicleSession, commands: CommandClient
) -> tuple[str, int] | None:
    """(uri, crc) of the general metadata file: COMPONENT_METADATA, else COMPONENT_INFORMATION."""
    for msg_id in (MSG_ID_COMPONENT_METADATA, MSG_ID_COMPONENT_INFORMATION):
        with session.listen((msg_id,)) as inbox:
            try:
                await commands.long(mavlink.MAV_CMD_REQUEST_MESSAGE, float(msg_id), retries=1)
            except CommandRejected as exc:
                log.debug(
                    "mavlink.metadata_request_refused",
                    vehicle_id=session.vehicle_id,
                    msgid=msg_id,
                    result=exc.fields.get("result"),
                )
                continue
            except CommandTimeout:
                continue
            try:
                msg = await inbox.get(ANSWER_WAIT_S)
            except TimeoutError:
                continue
            if msg is LinkState.LOST:
                raise LinkLost(
                    f"{session.vehicle_id} link lost while asking for its metadata",
                    vehicle_id=session.vehicle_id,
                )
            uri, crc = component_info.general_reference(msg)
            if uri:
                return uri, crc
    return None


async def _firmware_version(session: VehicleSession) -> int | None:
    deadline = session.clock.monotonic() + VERSION_WAIT_S
    while session.flight_sw_version is None and session.clock.monotonic() < deadline:
        await session.clock.sleep(0.1)
    return session.flight_sw_version


def _reachable(session: VehicleSession, uri: str, what: str) -> MftpUri | None:
    parsed = component_info.parse_mftp(uri)
    if parsed is None:
        session.metadata_state = f"skipped: {what} file at {uri} (only mftp:// is reachable)"
        log.info(
            "mavlink.metadata_uri_skipped",
            vehicle_id=session.vehicle_id,
            file=what,
            uri=uri,
            reason="only mftp:// URIs are fetched (from the vehicle); http(s) is not reachable",
        )
        return None
    if parsed.component not in (None, session.component_id):
        session.metadata_state = f"skipped: {what} file served by component {parsed.component}"
        log.info(
            "mavlink.metadata_uri_skipped",
            vehicle_id=session.vehicle_id,
            file=what,
            uri=uri,
            reason=f"served by component {parsed.component}; only the autopilot is asked",
        )
        return None
    return parsed


async def _file(
    session: VehicleSession,
    ftp: FtpClient,
    cache: MetadataCache,
    fw: str,
    crc: int,
    uri: MftpUri,
    result: FetchResult,
) -> bytes:
    """A file from the cache, from a download under way for another vehicle, or over FTP."""
    key = (fw, crc, uri.name)
    while True:
        data = cache.load(fw, crc, uri.name)
        if data is not None:
            result.source = result.source or "cache"
            result.files.append((uri.path, len(data), "cache"))
            return data
        pending = cache.downloads.get(key)
        if pending is None:
            break
        with contextlib.suppress(Exception):  # when the other vehicle failed: try ourselves
            await asyncio.shield(pending)
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cache.downloads[key] = future
    try:
        data = await ftp.download(uri.path)
        actual = component_info.crc32(await asyncio.to_thread(component_info.decompress, data))
        if crc and actual != crc:
            log.info(
                "mavlink.metadata_crc_differs",
                vehicle_id=session.vehicle_id,
                path=uri.path,
                announced=crc,
                actual=actual,
                note="kept: PX4 builds can announce stale CRCs; the CRC is only a cache key",
            )
        cache.store(fw, crc, uri.name, data)
        result.source = "vehicle"
        result.downloaded_bytes += len(data)
        result.files.append((uri.path, len(data), "vehicle"))
        future.set_result(None)
        return data
    except BaseException as exc:
        if isinstance(exc, Exception):
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody else needs to
        else:
            future.cancel()
        raise
    finally:
        cache.downloads.pop(key, None)


async def _parse(
    cache: MetadataCache, key: tuple[str, int, str], data: bytes, source: str
) -> EventMetadata:
    """Parse in a worker thread, once per file for all the link's vehicles."""
    metadata = cache.parsed.get(key)
    if metadata is not None:
        return metadata
    pending = cache.parsing.get(key)
    if pending is not None:
        with contextlib.suppress(Exception):  # when it failed: parse ourselves
            return await asyncio.shield(pending)
    future: asyncio.Future[EventMetadata] = asyncio.get_running_loop().create_future()
    cache.parsing[key] = future
    try:
        metadata = await asyncio.to_thread(EventMetadata.from_bytes, data, source)
    except BaseException as exc:
        if isinstance(exc, Exception):
            future.set_exception(exc)
            future.exception()
        else:
            future.cancel()
        raise
    finally:
        cache.parsing.pop(key, None)
    cache.parsed[key] = metadata
    future.set_result(metadata)
    return metadata
