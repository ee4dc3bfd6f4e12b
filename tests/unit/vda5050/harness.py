"""Test harness for the van bridge: a bridge with its registry and bus, sim vans, trips on a
small road grid, and a Mosquitto of the test's own (config, password file, ACL, stop/start)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firmware_bridges.vda5050.link import Vda5050Link
from firmware_bridges.vda5050.link import register as register_vda5050
from fleet.clock import Clock
from fleet.events import EventBus, FleetEvent, Subscription, VehicleEvent
from fleet.geo import LatLon, LocalFrame
from fleet.link import LinkContext, create_link
from fleet.registry import VehicleRegistry
from fleet.van import Drop, Pick, StopAction, TripEdge, TripNode, VanTrip
from sim.van.fleet import SimVanFleet, VanStart
from tests.support import free_port, require_service, tcp_reachable

register_vda5050()  # the bridge's URL schemes, as the composition root does

FRAME = LocalFrame(22.5265, 114.04)
"""Map frame of the test area."""
MAP_ID = "local"
"""Map id the sim vans use without a world."""
MANUFACTURER = "acme"


def grid_node(x: float, y: float, *actions: StopAction, name: str = "") -> TripNode:
    lat, lon = FRAME.to_latlon(x, y)
    return TripNode(f"N{int(x)}_{int(y)}", LatLon(lat, lon), tuple(actions), name=name)


def trip_through(
    trip_id: str,
    points: Sequence[tuple[float, float]],
    actions: dict[int, Sequence[StopAction]] | None = None,
    base: int | None = None,
    max_speed: float | None = None,
) -> VanTrip:
    """A trip through grid points; node ids ``N<x>_<y>``."""
    actions = actions or {}
    nodes = tuple(grid_node(x, y, *actions.get(i, ())) for i, (x, y) in enumerate(points))
    edges = tuple(
        TripEdge(f"E{a.node_id}-{b.node_id}", a.node_id, b.node_id, max_speed_mps=max_speed)
        for a, b in itertools.pairwise(nodes)
    )
    return VanTrip(trip_id, nodes, edges, base_nodes=base)


def delivery(trip_id: str, boxes: int = 10, kg: float = 60.0) -> VanTrip:
    """Load at the origin, drive 150 m, unload, come back."""
    return trip_through(
        trip_id,
        [(0, 0), (100, 0), (100, 50), (100, 0), (0, 0)],
        {
            0: [Pick(f"{trip_id}-L", boxes, kg, "masks")],
            2: [Drop(f"{trip_id}-L", boxes, kg, "masks")],
        },
    )


@dataclass
class Bridge:
    """A link with its registry, bus and an event subscription."""

    link: Vda5050Link
    registry: VehicleRegistry
    bus: EventBus
    events: Subscription
    seen: list[VehicleEvent] = field(default_factory=list)

    def drain(self) -> list[VehicleEvent]:
        while (ev := self.events.get_nowait()) is not None:
            if isinstance(ev, VehicleEvent):
                self.seen.append(ev)
        return self.seen

    def of(self, kind: str, vehicle_id: str | None = None) -> list[VehicleEvent]:
        return [
            e
            for e in self.drain()
            if e.kind == kind and (vehicle_id is None or e.vehicle_id == vehicle_id)
        ]


@contextlib.asynccontextmanager
async def bridge(
    url: str, clock: Clock, options: dict[str, Any] | None = None
) -> AsyncIterator[Bridge]:
    registry, bus = VehicleRegistry(), EventBus()
    opts = dict(options or {})
    if "world" not in opts:
        opts = {"frame": FRAME, "map_id": MAP_ID, **opts}
    ctx = LinkContext(registry, bus, clock, opts)
    with bus.subscribe(maxsize=100_000) as events:
        link = create_link(url, ctx)
        assert isinstance(link, Vda5050Link)
        async with link:
            yield Bridge(link, registry, bus, events)


def vans(broker_url: str, clock: Clock, prefix: str, count: int = 1, **kwargs: Any) -> SimVanFleet:
    kwargs.setdefault("starts", [VanStart(0.0, 0.0, 0.0, "N0_0")] * count)
    return SimVanFleet(
        broker_url, clock, count, manufacturer=MANUFACTURER, topic_prefix=prefix, **kwargs
    )


def event_kinds(events: Sequence[FleetEvent]) -> list[str]:
    return [e.kind for e in events if isinstance(e, VehicleEvent)]


class Mosquitto:
    """A Mosquitto broker of the test's own on a free loopback port; stop and start it at will.

    ``users`` (name -> password) turns on a password file (no anonymous access); ``acl`` is the
    ACL file's text.
    """

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        extra: str = "",
    ) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        require_service("mosquitto executable", Path(exe).exists(), "apt-get install mosquitto")
        self.exe = exe
        self.port = free_port()
        self.workdir = workdir
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")  # keep access to the test's private files
        if users:
            pwfile = workdir / "passwd"
            pwfile.write_text("")
            for name, pw in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(pwfile), name, pw],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            aclfile = workdir / "acl"
            aclfile.write_text(acl)
            lines.append(f"acl_file {aclfile}")
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join([*lines, extra]) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while not tcp_reachable("127.0.0.1", self.port, timeout=0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"own mosquitto did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
