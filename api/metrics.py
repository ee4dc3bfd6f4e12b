"""Prometheus metrics of the service (``GET /metrics``), read from its state at scrape time.

Nothing on a hot path counts for Prometheus: the vehicle registry, the links' own counters
(:class:`firmware_bridges.mavlink.codec.LinkStats`, :class:`fleet.mqtt_client.ConnectionStats`),
the dispatcher's :class:`missions.dispatcher.RoundTimings` and one ``GROUP BY`` on the missions
are read when Prometheus scrapes, by one collector on a registry of the app's own (several apps
in one process never share metrics). The names, labels and meanings are listed in
``docs/api.md`` ("Service endpoints").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from api.readiness import CHECK_TIMEOUT_S
from api.runtime import Runtime
from fleet.vehicle import LinkState, VehicleKind
from missions.states import MissionState

log = structlog.get_logger(__name__)

PREFIX = "streetfleet"
"""First word of every metric name."""


@dataclass(frozen=True, slots=True)
class _Scrape:
    """What one scrape reads: the runtime, and the mission counts fetched just before."""

    runtime: Runtime
    missions: dict[str, int] | None
    """Missions per state; None when the database did not answer."""


class ServiceMetrics:
    """The app's metrics registry and the one collector on it (this object)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._scrape: _Scrape | None = None
        self.registry.register(self)

    async def render(self, rt: Runtime) -> bytes:
        """The exposition text of one scrape (``prometheus_client.CONTENT_TYPE_LATEST``)."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                missions: dict[str, int] | None = await rt.store.mission_counts()
        except Exception as exc:  # the other metrics still go out; /readyz says what is wrong
            reason = getattr(exc, "orig", None) or exc  # the driver's words, not SQLAlchemy's
            log.warning("metrics.missions_unavailable", error=f"{type(exc).__name__}: {reason}")
            missions = None
        # no await from here on: the collector reads this scrape's snapshot only
        self._scrape = _Scrape(rt, missions)
        try:
            return generate_latest(self.registry)
        finally:
            self._scrape = None

    def collect(self) -> Iterator[Metric]:
        """Every metric family (called by the registry, inside :meth:`render`)."""
        scrape = self._scrape
        if scrape is None:
            return
        rt = scrape.runtime
        yield _vehicles(rt)
        if scrape.missions is not None:
            yield _missions(scrape.missions)
        yield _dispatch_rounds(rt)
        yield from _mavlink(rt)
        yield from _mqtt(rt)


def _vehicles(rt: Runtime) -> GaugeMetricFamily:
    counts = {(kind.value, link.value): 0 for kind in VehicleKind for link in LinkState}
    for entry in rt.registry:
        key = (str(entry.info.kind), str(entry.status.link))
        counts[key] = counts.get(key, 0) + 1
    family = GaugeMetricFamily(
        f"{PREFIX}_vehicles",
        "Vehicles in the live registry, by kind and link state (online, lost, offline, unknown).",
        labels=["kind", "link"],
    )
    for (kind, link), n in sorted(counts.items()):
        family.add_metric([kind, link], n)
    return family


def _missions(by_state: dict[str, int]) -> GaugeMetricFamily:
    counts = {state.value: 0 for state in MissionState} | by_state
    family = GaugeMetricFamily(
        f"{PREFIX}_missions", "Missions on record, by state.", labels=["state"]
    )
    for state, n in sorted(counts.items()):
        family.add_metric([state], n)
    return family


def _dispatch_rounds(rt: Runtime) -> HistogramMetricFamily:
    timings = rt.missions.dispatcher.timings
    family = HistogramMetricFamily(
        f"{PREFIX}_dispatch_round_seconds",
        "Real time each completed dispatch round took (closing, allocation and the planners).",
        labels=[],
    )
    family.add_metric(
        [],
        [(floatToGoString(bound), n) for bound, n in timings.cumulative()],
        sum_value=timings.total_s,
    )
    return family


_MAVLINK_DROPPED = {
    "unused": "skipped",
    "foreign": "foreign",
    "truncated": "truncated",
    "bad_crc": "bad_crc",
    "bad_signature": "bad_signature",
}
"""``reason`` label of ``streetfleet_mavlink_frames_dropped_total`` -> ``LinkStats`` field."""


def _mavlink(rt: Runtime) -> Iterator[Metric]:
    labels = ["link"]
    datagrams = CounterMetricFamily(
        f"{PREFIX}_mavlink_datagrams", "UDP datagrams received per MAVLink link.", labels=labels
    )
    frames = CounterMetricFamily(
        f"{PREFIX}_mavlink_frames",
        "MAVLink frames per link: complete frames received, and frames sent.",
        labels=["link", "direction"],
    )
    decoded = CounterMetricFamily(
        f"{PREFIX}_mavlink_frames_decoded",
        "Frames decoded and handled per MAVLink link.",
        labels=labels,
    )
    dropped = CounterMetricFamily(
        f"{PREFIX}_mavlink_frames_dropped",
        "Frames dropped per MAVLink link and reason: unused (no handler, not decoded), foreign "
        "(not from a vehicle's autopilot), truncated, bad_crc, bad_signature.",
        labels=["link", "reason"],
    )
    garbage = CounterMetricFamily(
        f"{PREFIX}_mavlink_garbage_bytes",
        "Received bytes that belonged to no frame, per MAVLink link.",
        labels=labels,
    )
    errors = CounterMetricFamily(
        f"{PREFIX}_mavlink_handler_errors",
        "Frames whose handling raised (logged), per MAVLink link.",
        labels=labels,
    )
    for link in rt.mavlink_links():
        s, url = link.stats, link.url
        datagrams.add_metric([url], s.datagrams)
        frames.add_metric([url, "received"], s.frames)
        frames.add_metric([url, "sent"], s.sent)
        decoded.add_metric([url], s.decoded)
        for reason, attr in _MAVLINK_DROPPED.items():
            dropped.add_metric([url, reason], getattr(s, attr))
        garbage.add_metric([url], s.garbage_bytes)
        errors.add_metric([url], s.handler_errors)
    yield from (datagrams, frames, decoded, dropped, garbage, errors)


def _mqtt(rt: Runtime) -> Iterator[Metric]:
    connected = GaugeMetricFamily(
        f"{PREFIX}_mqtt_connected",
        "1 while the link is connected to its MQTT broker, else 0.",
        labels=["link"],
    )
    messages = CounterMetricFamily(
        f"{PREFIX}_mqtt_messages",
        "MQTT messages per link: received (handed to the link) and sent (taken by the broker).",
        labels=["link", "direction"],
    )
    errors = CounterMetricFamily(
        f"{PREFIX}_mqtt_errors",
        "MQTT errors per link: unsent (a publish that did not go), handler (a message whose "
        "handling raised).",
        labels=["link", "kind"],
    )
    connects = CounterMetricFamily(
        f"{PREFIX}_mqtt_connects",
        "Successful connections to the broker per link.",
        labels=["link"],
    )
    disconnects = CounterMetricFamily(
        f"{PREFIX}_mqtt_disconnects",
        "Connections lost after they were up, per link.",
        labels=["link"],
    )
    for link in rt.mqtt_links():
        s, name = link.stats, link.address.display_url
        connected.add_metric([name], 1 if link.connected.is_set() else 0)
        messages.add_metric([name, "received"], s.received)
        messages.add_metric([name, "sent"], s.published)
        errors.add_metric([name, "unsent"], s.unsent)
        errors.add_metric([name, "handler"], s.handler_errors)
        connects.add_metric([name], s.connects)
        disconnects.add_metric([name], s.disconnects)
    yield from (connected, messages, errors, connects, disconnects)
