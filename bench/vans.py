"""Van telemetry at fleet scale: N sim vans, each on its own MQTT connection, publishing VDA 5050
state at 1 Hz; how fast the bridge gets them into the registry, against a bare subscriber.

The vans run in ``--procs`` child processes (real :class:`sim.van.client.SimVan` objects, one
aiomqtt connection each, visualization off, start phases spread over ``--stagger`` seconds so
the 1 Hz states are not synchronised). After a warm-up, for ``--seconds``, two receivers on the
same broker take the same messages at the same time:

1. **baseline**: a bare aiomqtt subscriber on ``.../+/+/state`` (in its own process) that only
   reads each message's header (``json.loads``) - the least any master control must do;
2. **bridge**: the :class:`~firmware_bridges.vda5050.link.Vda5050Link` with a registry (in the
   main process): full validation, translation into ``VehicleStatus`` and ``registry.touch``.

``--sequential`` measures them one after the other instead (each alone on the machine, but on
different seconds of the publishers). Latency is publish-to-registry: the van's process records
the wall time just before each state ``publish`` (by header id), the receiver the time of
``registry.touch`` (or of receipt for the baseline); publisher-side and broker delays are in
both, so the difference between the two rows is what the bridge adds. Printed: p50/p99/max
latency, states per second, the throughput ratio bridge/baseline, and CPU per state in each
receiving process. Targets: 2,000 vans, p99 < 100 ms, ratio >= 0.9.

    python -m bench.vans [--vans 2000] [--seconds 20] [--procs 2] [--broker mqtt://127.0.0.1:1883]
    python -m bench.vans --own-broker      # start a private mosquitto (max open files raised)
    python -m bench.vans --sweep 500,1000,2000   # the curve, in var/bench/vans.*

The shared Mosquitto at 127.0.0.1:1883 is used by default; the bench first checks that it
accepted every van's connection (``connection: ONLINE`` seen for all) and stops with the count
if not. Bounded in time: connect phase at most ``--connect-timeout`` s, then 2 x (warm-up +
``--seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import csv
import io
import json
import multiprocessing as mp
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiomqtt

from bench import report
from bench.report import percentile
from bench.sampling import Sampler
from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.control import VanHandle
from firmware_bridges.vda5050.link import Vda5050Link
from fleet.clock import WallClock
from fleet.events import EventBus
from fleet.geo import LocalFrame
from fleet.link import LinkContext
from fleet.mqtt import BrokerAddress
from fleet.registry import VehicleRegistry
from sim.van.agv import VanAgv
from sim.van.client import SimVan
from sim.van.model import Pose

MANUFACTURER = "bench"
WARMUP_S = 3.0
"""Seconds ignored at the start of each phase."""
TARGET_VANS = 2000
TARGET_P99_MS = 100.0
TARGET_RATIO = 0.9


# --- publishers (child processes) ------------------------------------------------------------


class TimedSimVan(SimVan):
    """A sim van that notes the wall time just before it publishes each state."""

    sent: dict[int, float]

    async def _publish(self, subtopic: str, msg: wire.Wire) -> bool:
        if subtopic == "state":
            assert isinstance(msg, wire.State)
            self.sent[msg.header_id] = time.time()
        return await super()._publish(subtopic, msg)


def publisher(
    broker_url: str, prefix: str, first: int, count: int, stagger_s: float, conn: Connection
) -> None:
    """Child process: run ``count`` vans until told to stop, then send back publish times."""
    quiet()
    asyncio.run(_publisher(broker_url, prefix, first, count, stagger_s, conn))


async def _publisher(
    broker_url: str, prefix: str, first: int, count: int, stagger_s: float, conn: Connection
) -> None:
    clock = WallClock()
    vans = []
    for i in range(first, first + count):
        agv = VanAgv(MANUFACTURER, f"B{i:05d}", "bench", Pose(float(i), 0.0, 0.0))
        van = TimedSimVan(
            agv, broker_url, clock, topic_prefix=prefix, visualization_interval_s=None
        )
        van.sent = {}
        vans.append(van)
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for van in vans:
            await stack.enter_async_context(van)
            await asyncio.sleep(stagger_s / max(1, count))
        conn.send(("started", count))
        cpu0, wall0 = time.process_time(), time.monotonic()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        cpu = (time.process_time() - cpu0) / max(1e-9, time.monotonic() - wall0)
        states = sum(v.published["state"] for v in vans)
    conn.send(("sent", {v.serial_number: v.sent for v in vans}, states, cpu))


# --- receivers (main process) ----------------------------------------------------------------


class TimingRegistry(VehicleRegistry):
    """A registry that notes when each new state of a van lands in it."""

    def __init__(self) -> None:
        super().__init__()
        self.recording = False
        self.records: list[tuple[str, int, float]] = []
        self._last: dict[str, int] = {}

    def touch(self, vehicle_id: str) -> None:
        super().touch(vehicle_id)
        if not self.recording:
            return
        entry = self.find(vehicle_id)
        if entry is None or not isinstance(entry.control, VanHandle):
            return
        state = entry.control.last_state
        if state is None or self._last.get(vehicle_id) == state.header_id:
            return
        self._last[vehicle_id] = state.header_id
        self.records.append((state.serial_number, state.header_id, time.time()))


@dataclass
class Phase:
    name: str
    records: list[tuple[str, int, float]]
    seconds: float
    cpu_s: float
    broker_cpu_s: float = float("nan")
    """The broker's CPU over the same window (the bridge phase)."""

    @property
    def rate(self) -> float:
        return len(self.records) / self.seconds


async def wait_online(broker: BrokerAddress, prefix: str, vans: int, timeout: float) -> int:
    """Count vans whose ``connection: ONLINE`` is on the broker (retained), within ``timeout``."""
    online: set[str] = set()
    async with aiomqtt.Client(**broker.client_kwargs()) as client:
        # QoS 0: a broker queues at most max_queued_messages (Mosquitto: 1,000) QoS 1 messages
        # per client beyond those in flight, so 2,000 retained QoS 1 messages would arrive as
        # about 1,020
        await client.subscribe(wire.topic(prefix, "uagv", MANUFACTURER, "+", "connection"), qos=0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for m in client.messages:
                    payload = m.payload if isinstance(m.payload, bytes) else b""
                    if b'"ONLINE"' in payload:
                        online.add(m.topic.value)
                    if len(online) >= vans:
                        break
    return len(online)


def bare_subscriber(broker_url: str, prefix: str, conn: Connection) -> None:
    """Child process: the bare subscriber, recording between "start" and "stop" from ``conn``."""
    quiet()
    asyncio.run(_bare_subscriber(BrokerAddress.parse(broker_url), prefix, conn))


async def _bare_subscriber(broker: BrokerAddress, prefix: str, conn: Connection) -> None:
    records: list[tuple[str, int, float]] = []
    recording = asyncio.Event()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def control() -> None:
        conn.recv()  # "start"
        loop.call_soon_threadsafe(recording.set)
        conn.recv()  # "stop"
        loop.call_soon_threadsafe(stopped.set)

    async with aiomqtt.Client(**broker.client_kwargs()) as client:
        await client.subscribe(wire.topic(prefix, "uagv", MANUFACTURER, "+", "state"))
        conn.send("ready")
        waiter = loop.run_in_executor(None, control)
        cpu0 = 0.0

        async def receive() -> None:
            nonlocal cpu0
            async for m in client.messages:
                now = time.time()
                if recording.is_set():
                    if not records:
                        cpu0 = time.process_time()
                    raw = m.payload
                    head = json.loads(raw if isinstance(raw, bytes | str) else b"{}")
                    records.append((head["serialNumber"], head["headerId"], now))

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(receive())
            await stopped.wait()
            task.cancel()
        cpu = time.process_time() - cpu0
        await waiter
    conn.send((records, cpu))


async def bare_phase(broker: BrokerAddress, prefix: str, seconds: float) -> Phase:
    records: list[tuple[str, int, float]] = []
    start = time.monotonic()
    async with aiomqtt.Client(**broker.client_kwargs(), max_queued_incoming_messages=0) as client:
        await client.subscribe(wire.topic(prefix, "uagv", MANUFACTURER, "+", "state"))
        cpu0 = 0.0
        recording = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WARMUP_S + seconds):
                async for m in client.messages:
                    now = time.time()
                    if not recording and time.monotonic() - start >= WARMUP_S:
                        recording, cpu0 = True, time.process_time()
                    if recording:
                        raw = m.payload
                        head = json.loads(raw if isinstance(raw, bytes | str) else b"{}")
                        records.append((head["serialNumber"], head["headerId"], now))
        cpu = time.process_time() - cpu0
    return Phase("bare aiomqtt subscriber", records, seconds, cpu)


async def bridge_phase(
    broker: BrokerAddress,
    prefix: str,
    vans: int,
    seconds: float,
    bare: Connection | None = None,
    profiler: Any = None,
    sampler: Sampler | None = None,
    broker_proc: Any = None,
) -> tuple[Phase, Vda5050Link]:
    """The bridge alone, or with the bare subscriber process recording the same window
    (``profiler``: a ``cProfile.Profile`` to run over the window; ``sampler``: the cheap
    sampled profile; ``broker_proc``: the broker's ``psutil.Process``, whose CPU over the
    window goes into the phase)."""
    registry = TimingRegistry()
    ctx = LinkContext(
        registry, EventBus(), WallClock(), {"frame": LocalFrame(22.5, 114.0), "map_id": "bench"}
    )
    url = f"vda5050+mqtt://{broker.host}:{broker.port}/{MANUFACTURER}?prefix={prefix}"
    link = Vda5050Link(url, ctx)
    async with link:
        await registry.wait_added(vans, 60.0, WallClock())
        await asyncio.sleep(WARMUP_S)
        if bare is not None:
            bare.send("start")
        registry.recording = True
        cpu0 = time.process_time()
        broker0 = _cpu_of(broker_proc)
        if profiler is not None:
            profiler.enable()
        if sampler is not None:
            sampler.on()
        await asyncio.sleep(seconds)
        if sampler is not None:
            sampler.off()
        if profiler is not None:
            profiler.disable()
        registry.recording = False
        if bare is not None:
            bare.send("stop")
        cpu = time.process_time() - cpu0
        broker_cpu = _cpu_of(broker_proc) - broker0
    phase = Phase("bridge -> registry", registry.records, seconds, cpu)
    phase.broker_cpu_s = broker_cpu if broker_proc is not None else float("nan")
    return phase, link


def _cpu_of(proc: Any) -> float:
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except Exception:  # gone, or not ours to read
        return float("nan")


def broker_process(port: int, pid: int | None = None) -> Any:
    """The broker's ``psutil.Process`` (the one listening on ``port``), or None."""
    try:
        import psutil
    except ImportError:
        return None
    if pid is not None:
        return psutil.Process(pid)
    for p in psutil.process_iter(["name"]):
        if "mosquitto" not in (p.info["name"] or ""):
            continue
        try:
            if any(c.laddr and c.laddr.port == port for c in p.net_connections(kind="tcp")):
                return p
        except Exception:
            continue
    return None


def latencies_ms(phase: Phase, sent: dict[str, dict[int, float]]) -> list[float]:
    out = []
    for serial, header_id, t in phase.records:
        t0 = sent.get(serial, {}).get(header_id)
        if t0 is not None:
            out.append((t - t0) * 1000.0)
    return sorted(out)


# --- own broker ------------------------------------------------------------------------------


@contextlib.contextmanager
def own_mosquitto(max_files: int = 20000) -> Any:
    """A private mosquitto on a free port with the open-files limit raised: yields its URL
    and process id."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_connections -1",
            "max_queued_messages 10000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

        proc = subprocess.Popen(
            [exe, "-c", str(conf)],
            preexec_fn=limits,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("private mosquitto did not start")
                time.sleep(0.05)
            yield f"mqtt://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


# --- main ------------------------------------------------------------------------------------


def quiet() -> None:
    """Warnings only: per-van connection logs would cost more than the states."""
    import logging

    import structlog

    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class NotRun(Exception):
    """The measurement could not be made (publishers, broker or subscriber failed)."""


async def run(
    args: argparse.Namespace,
    broker_url: str,
    log: Callable[[str], None],
    broker_pid: int | None = None,
) -> dict[str, Any]:
    broker = BrokerAddress.parse(broker_url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    profiler = cProfile.Profile() if args.profile else None
    sampler = Sampler() if profiler is None else None
    broker_proc = broker_process(broker.port, broker_pid)
    ctx = mp.get_context("spawn")
    per = [
        args.vans // args.procs + (1 if i < args.vans % args.procs else 0)
        for i in range(args.procs)
    ]
    procs, pipes = [], []
    first = 0
    for count in per:
        parent, child = ctx.Pipe()
        p = ctx.Process(
            target=publisher,
            args=(broker_url, prefix, first, count, args.stagger, child),
            daemon=True,
        )
        p.start()
        procs.append(p)
        pipes.append(parent)
        first += count
    try:
        log(f"starting {args.vans} vans in {args.procs} processes on {broker.url} ...")
        t0 = time.monotonic()
        for pipe in pipes:
            if not await asyncio.to_thread(pipe.poll, args.connect_timeout):
                raise NotRun("publishers did not start in time")
            pipe.recv()
        online = await wait_online(broker, prefix, args.vans, args.connect_timeout)
        log(f"{online}/{args.vans} vans ONLINE after {time.monotonic() - t0:.1f} s")
        if online < args.vans:
            raise NotRun(
                f"the broker accepted {online} of {args.vans} vans; try --own-broker "
                "(raises the file limit)"
            )
        if args.sequential:
            bare = await bare_phase(broker, prefix, args.seconds)
            bridged, link = await bridge_phase(
                broker, prefix, args.vans, args.seconds, None, profiler, sampler, broker_proc
            )
        else:
            parent, child = ctx.Pipe()
            sub = ctx.Process(target=bare_subscriber, args=(broker_url, prefix, child), daemon=True)
            sub.start()
            procs.append(sub)
            if not await asyncio.to_thread(parent.poll, 30):
                raise NotRun("bare subscriber did not start")
            parent.recv()
            bridged, link = await bridge_phase(
                broker, prefix, args.vans, args.seconds, parent, profiler, sampler, broker_proc
            )
            if not await asyncio.to_thread(parent.poll, 60):
                raise NotRun("bare subscriber did not report")
            records, cpu = parent.recv()
            bare = Phase("bare aiomqtt subscriber", records, args.seconds, cpu)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
    sent: dict[str, dict[int, float]] = {}
    published = 0
    publisher_cpu = 0.0
    for pipe in pipes:
        if await asyncio.to_thread(pipe.poll, 60):
            _, maps, states, cpu_share = pipe.recv()
            sent.update(maps)
            published += states
            publisher_cpu += cpu_share
    for p in procs:
        p.join(30)

    lat_bare = latencies_ms(bare, sent)
    lat_bridge = latencies_ms(bridged, sent)
    ratio = bridged.rate / bare.rate if bare.rate else float("nan")
    offered = args.vans  # 1 Hz per van
    log("")
    log(
        f"vans {args.vans}, state interval 1 s, offered ~{offered} states/s, "
        f"{args.seconds:.0f} s per phase, broker {broker.url}"
    )
    log(f"{'phase':<26}{'states/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'CPU us/state':>14}")
    for ph, lat in ((bare, lat_bare), (bridged, lat_bridge)):
        cpu_us = ph.cpu_s / max(1, len(ph.records)) * 1e6
        log(
            f"{ph.name:<26}{ph.rate:>10.0f}"
            f"{percentile(lat, 0.5):>9.1f}{percentile(lat, 0.99):>9.1f}"
            f"{(lat[-1] if lat else float('nan')):>9.1f}{cpu_us:>14.0f}"
        )
    p99 = percentile(lat_bridge, 0.99)
    log(f"throughput ratio bridge/bare: {ratio:.3f} (target >= {TARGET_RATIO})")
    log(f"bridge p99 latency: {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms at {TARGET_VANS} vans)")
    log(
        f"bridge bad payloads: {link.stats.bad_payloads}, states handled: {link.stats.states}, "
        f"vans published {published} states in total"
    )
    bridge_pct = 100.0 * bridged.cpu_s / bridged.seconds
    bare_pct = 100.0 * bare.cpu_s / bare.seconds
    broker_pct = 100.0 * bridged.broker_cpu_s / bridged.seconds
    pub_pct = 100.0 * publisher_cpu
    total = bridge_pct + bare_pct + pub_pct + (0.0 if broker_pct != broker_pct else broker_pct)
    log(
        f"CPU over the window, % of one core: bridge process {bridge_pct:.0f}, bare subscriber "
        f"{bare_pct:.0f}, publishers {pub_pct:.0f} ({args.procs} processes), broker "
        + ("not measured" if broker_pct != broker_pct else f"{broker_pct:.0f}")
        + f"; together {total:.0f} of the machine's {100 * (os.cpu_count() or 1)}"
    )
    if sampler is not None and (p99 >= TARGET_P99_MS or ratio < TARGET_RATIO):
        log("sampled profile of the bridge process over the window (main thread):")
        for line in sampler.lines(20):
            log(f"  {line}")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        log("profile of the bridge process over the window (by own time; the profiler slows it):")
        for line in out.getvalue().splitlines():
            if line.strip():
                log(f"  {line}")
    return {
        "vans": args.vans,
        "offered": offered,
        "bare_rate": bare.rate,
        "bridge_rate": bridged.rate,
        "ratio": ratio,
        "bare_p50": percentile(lat_bare, 0.5),
        "bare_p99": percentile(lat_bare, 0.99),
        "p50": percentile(lat_bridge, 0.5),
        "p99": p99,
        "max": lat_bridge[-1] if lat_bridge else float("nan"),
        "bridge_cpu_pct": bridge_pct,
        "bare_cpu_pct": bare_pct,
        "publisher_cpu_pct": pub_pct,
        "broker_cpu_pct": broker_pct,
        "machine_cpu_pct": total,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.vans", description=__doc__.split("\n")[0])
    ap.add_argument("--vans", type=int, default=TARGET_VANS)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--procs", type=int, default=2, help="publisher processes")
    ap.add_argument(
        "--stagger", type=float, default=5.0, help="seconds over which van start times are spread"
    )
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--own-broker", action="store_true")
    ap.add_argument("--connect-timeout", type=float, default=60.0)
    ap.add_argument(
        "--sequential",
        action="store_true",
        help="measure the bare subscriber first, then the bridge (default: both at once, the "
        "bare one in its own process, on the same messages)",
    )
    ap.add_argument(
        "--uvloop", action="store_true", help="run the receiving side on uvloop (as uvicorn does)"
    )
    ap.add_argument("--sweep", default="", help="sizes to sweep, e.g. 500,1000,2000")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="--sweep: keep the sizes of var/bench/vans.csv this run does not measure",
    )
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        help="profile the bridge process over the window and print this many lines (slows it)",
    )
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sweep.split(",") if x.strip()] or [args.vans]
    raise_nofile(4 * max(sizes) + 256)

    def log(line: str) -> None:
        print(line, flush=True)

    quiet()
    runner: Callable[[Any], dict[str, Any]] = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    print(f"van telemetry benchmark on {report.machine()}")
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        url, pid = args.broker, None
        if args.own_broker:
            if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
                return report.skipped("vans", "--own-broker: mosquitto is not installed")
            url, pid = stack.enter_context(own_mosquitto(max(20000, 4 * max(sizes))))
        else:
            b = BrokerAddress.parse(url)
            if not _reachable(b.host, b.port):
                return report.skipped(
                    "vans", f"no MQTT broker at {b.host}:{b.port} (start mosquitto or --own-broker)"
                )
        for n in sizes:
            args.vans = n
            log(f"\n{n} vans")
            try:
                results.append(runner(run(args, url, log, pid)))
            except NotRun as exc:
                return report.failed("vans", f"{n} vans: {exc}")
            if args.sweep:  # after each size, so that a long sweep keeps what it measured
                where = _write_sweep(results, args.merge)
                log(f"growth: {where}")
    top = max(results, key=lambda m: m["vans"])
    targets = report.Targets("vans")
    targets.check(
        f"{TARGET_VANS} vans at 1 Hz, state-to-registry p99 < {TARGET_P99_MS:.0f} ms",
        top["vans"] >= TARGET_VANS and top["p99"] < TARGET_P99_MS,
        f"{top['vans']} vans, p99 {top['p99']:.1f} ms (bare subscriber {top['bare_p99']:.1f} ms)",
    )
    targets.check(
        f"bridge / bare subscriber >= {TARGET_RATIO}",
        top["ratio"] >= TARGET_RATIO,
        f"{top['ratio']:.3f} ({top['bridge_rate']:.0f} vs {top['bare_rate']:.0f} states/s)",
    )
    return targets.finish()


def _write_sweep(results: list[dict[str, Any]], merge: bool) -> str:
    """The curve (var/bench/vans.*); returns where the bridge's p99 crosses the target."""
    cols = ["vans", "states/s", "bridge p50 ms", "bridge p99 ms", "bare p99 ms",
            "ratio bridge/bare", "bridge CPU %", "machine CPU %"]  # fmt: skip
    rows: list[list[float | int | str]] = [
        [m["vans"], round(m["bridge_rate"]), round(m["p50"], 1), round(m["p99"], 1),
         round(m["bare_p99"], 1), round(m["ratio"], 3), round(m["bridge_cpu_pct"], 1),
         round(m["machine_cpu_pct"], 1)]
        for m in results
    ]  # fmt: skip
    paths = report.write_curve(
        "vans",
        "VDA 5050 state ingest: latency against vans (1 Hz each)",
        cols,
        rows,
        x="vans",
        ys=["bridge p50 ms", "bridge p99 ms", "bare p99 ms"],
        ylabel="publish to registry, ms",
        y2=["bridge CPU %", "machine CPU %"],
        y2label="% of one core",
        target=(TARGET_P99_MS, f"target p99 < {TARGET_P99_MS:g} ms"),
        merge=merge,
    )
    with paths[1].open() as f:
        table = list(csv.reader(f))[1:]
    where = report.knee(
        [(float(r[0]), float(r[3])) for r in table], TARGET_P99_MS, "bridge p99", "ms"
    )
    with paths[0].open("a") as md:
        md.write(f"\n{where}.\n")
    return where


def _reachable(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
