"""Telemetry ingest benchmark: N drones at PX4's "normal" stream rates into one service process.

Run: ``python -m bench.telemetry [--drones 1000] [--duration 20] [--source auto|sim|replay]``;
``--sweep 250,500,1000`` runs each size and writes the curve (``var/bench/telemetry.*``).

Two phases, both measured in this run:

1. **Live**, the senders in another process, this process running the bridge's
   ``mavlink+udpin`` links (one per 254 system ids, as behind mavlink-router):

   * ``--source sim``: a child process runs the sim fleet (``sim.runner.SimFleet``) on the wall
     clock. The sim costs about 2 ms of CPU per drone per second, so on a 2-core machine it
     cannot keep up beyond ~400 drones while the service needs the other core;
   * ``--source replay`` (the default above 254 drones): first as many sim drones as the
     largest link carries (up to 254) run for a while and their datagrams are recorded with
     their times;
     then a child process replays that recording to every link port, each port starting at
     its own offset into it, paced by the recorded times. Every link sees system ids 1..254
     sending PX4's normal message mix at the recorded rates; the vehicles are distinct
     (``drone-<link>-<sysid>``). The sender is a plain ``sendto`` loop, so one core carries
     1,000 drones.

   Reported: vehicles discovered, messages/s, loss (frames sent vs frames the links received),
   this process's CPU as a share of one core, and the senders' rate per drone.
2. **Replay of the same bytes** (what the links received, up to :data:`REPLAY_FRAMES` frames),
   as fast as possible, three ways: (a) pymavlink ``parse_buffer``, which decodes **every**
   frame; (b) a bare **selective** decode: framing plus pymavlink decode of only the frames the
   bridge uses (the autopilot's messages in its handler table, status texts); (c) the bridge's
   receive path (framing, selective decode, translation into ``VehicleStatus``, registry
   touch). The ratio (c)/(b) is **like for like** (the same frames decoded; what remains is
   the bridge's own work) and carries the target; (c)/(a) is printed too. The profile of (c)
   shows where the time goes.

Targets: at least 1,000 drones with no loss; bridge / selective decode >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import io
import logging
import multiprocessing as mp
import pstats
import random
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import report

TARGET_DRONES = 1000
"""Issue target: vehicles served by one process, at PX4's normal stream rates, no loss."""
TARGET_RATIO = 0.5
"""Issue target: bridge ingest rate / a bare decode of the same frames."""
MAX_PER_LINK = 254
"""System ids 1..254 per link (255 is the ground station)."""
REPLAY_PASSES = 3
"""Replay passes per contender (the best is kept)."""
REPLAY_FRAMES = 200_000
"""Datagrams replayed per pass at most, over all links (a sample of what was received)."""
RECORD_WARMUP_S = 3.0
"""Seconds of a recording dropped at its start (vehicles booting)."""


@dataclass
class SenderReport:
    """What the sending process measured."""

    sent_frames: int
    sent_datagrams: int
    cpu_s: float
    wall_s: float
    vehicles: int


def _silence_logs() -> None:
    import structlog

    logging.basicConfig(level=logging.ERROR)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        cache_logger_on_first_use=False,
    )


def _split(drones: int, links: int) -> list[int]:
    return [drones // links + (1 if k < drones % links else 0) for k in range(links)]


# --- senders (child processes) ---------------------------------------------------------------


def _sim_main(
    drones: list[int], ports: list[int], duration: float, scale: float, conn: Any
) -> None:
    """Child: one sim fleet per link port (``drones[k]`` vehicles, system ids from 1, all
    sending to ``ports[k]``) for ``duration`` s, then a report through ``conn``."""
    _silence_logs()

    async def run() -> SenderReport:
        from contextlib import AsyncExitStack

        from fleet.clock import WallClock
        from sim.runner import PortMode, SimFleet

        clock = WallClock()
        async with AsyncExitStack() as stack:
            fleets = [
                await stack.enter_async_context(
                    SimFleet(
                        n,
                        clock=clock,
                        first_port=port,
                        port_mode=PortMode.SHARED,
                        ready_delay=1.0,
                        stream_rate_scale=scale,
                    )
                )
                for n, port in zip(drones, ports, strict=True)
            ]
            vehicles = [v for f in fleets for v in f.vehicles]
            conn.send("started")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            sent0 = sum(v.sent_messages for v in vehicles)
            await asyncio.sleep(duration)
            sent = sum(v.sent_messages for v in vehicles) - sent0
            return SenderReport(
                sent_frames=sent,
                sent_datagrams=sent,
                cpu_s=time.process_time() - cpu0,
                wall_s=time.perf_counter() - wall0,
                vehicles=len(vehicles),
            )

    conn.send(asyncio.run(run()))
    conn.close()


def _frames_in(data: bytes) -> int:
    """Frames in a datagram (bare MAVLink 1/2 framing)."""
    n, i, count = len(data), 0, 0
    while i < n:
        if data[i] == 0xFD and i + 10 <= n:
            i += 12 + data[i + 1] + (13 if data[i + 2] & 1 else 0)
        elif data[i] == 0xFE and i + 6 <= n:
            i += 8 + data[i + 1]
        else:
            i += 1
            continue
        count += 1
    return count


def _replay_main(
    recording: list[tuple[float, bytes]],
    per_port: list[int],
    ports: list[int],
    duration: float,
    seed: int,
    conn: Any,
) -> None:
    """Child: send ``recording`` (times relative to its start, datagrams of system ids
    1..254) to every port, each from its own offset into the recording and looping, keeping
    only the first ``per_port[k]`` system ids on port ``k``; paced by the recorded times."""
    period = recording[-1][0] + 0.02 if recording else 1.0
    rng = random.Random(seed)
    sysid_of = [d[5] if d[0] == 0xFD else d[3] for _, d in recording]
    frames = [_frames_in(d) for _, d in recording]
    schedule: list[tuple[float, int, bytes, int]] = []
    for k, (n, _port) in enumerate(zip(per_port, ports, strict=True)):
        offset = rng.uniform(0, period)
        for (t, d), sysid, f in zip(recording, sysid_of, frames, strict=True):
            if sysid > n:
                continue
            schedule.append(((t - offset) % period, k, d, f))
    schedule.sort(key=lambda e: e[0])
    vehicles = sum(per_port)
    socks = []
    for _ in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.setblocking(False)
        socks.append(s)
    dests = [("127.0.0.1", p) for p in ports]
    conn.send("started")
    cpu0, t0 = time.process_time(), time.perf_counter()
    sent_f = sent_d = 0
    i, base = 0, t0
    end = t0 + duration
    n = len(schedule)
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = now - base
        while i < n and schedule[i][0] <= due:
            _, k, d, f = schedule[i]
            try:
                socks[k].sendto(d, dests[k])
                sent_f += f
                sent_d += 1
            except BlockingIOError:
                time.sleep(0.0005)
                continue  # the kernel buffer is full: retry this one
            i += 1
        if i >= n:
            i, base = 0, base + period
            continue
        wait = schedule[i][0] - (time.perf_counter() - base)
        if wait > 0.0005:
            time.sleep(min(wait, 0.002))
    for s in socks:
        s.close()
    conn.send(
        SenderReport(sent_f, sent_d, time.process_time() - cpu0, time.perf_counter() - t0, vehicles)
    )
    conn.close()


async def _record(drones: int, seconds: float, scale: float) -> list[tuple[float, bytes]]:
    """Run ``drones`` sim drones on one port for ``seconds`` (after a warm-up) and keep what
    they send with the time it arrived (relative to the first datagram kept)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    got: list[tuple[float, bytes]] = []

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append((time.perf_counter(), data))

    transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_sim_main,
        args=([drones], [port], RECORD_WARMUP_S + seconds, scale, child),
        daemon=True,
    )
    proc.start()
    try:
        assert await asyncio.to_thread(parent.recv) == "started"
        t_start = time.perf_counter()
        await asyncio.to_thread(parent.recv)
        await asyncio.sleep(0.3)
    finally:
        transport.close()
        proc.join(10)
    kept = [(t, d) for t, d in got if t >= t_start + RECORD_WARMUP_S]
    if not kept:
        return []
    t0 = kept[0][0]
    return [(t - t0, d) for t, d in kept]


# --- the service side ------------------------------------------------------------------------


async def _live(
    drones: int, links: int, duration: float, scale: float, source: str, record: int
) -> tuple[dict[str, Any], list[list[bytes]]]:
    from contextlib import AsyncExitStack

    from firmware_bridges.mavlink.link import MavlinkLink, register
    from fleet.clock import WallClock
    from fleet.events import EventBus
    from fleet.link import LinkContext, create_link
    from fleet.registry import VehicleRegistry

    register()
    recording: list[tuple[float, bytes]] = []
    record_rate = 0.0
    if source == "replay":
        recording = await _record(record, 12.0, scale)
        if not recording:
            raise RuntimeError("the sim sent nothing to record")
        frames = sum(_frames_in(d) for _, d in recording)
        record_rate = frames / max(1e-9, recording[-1][0]) / record
    registry, bus, clock = VehicleRegistry(), EventBus(), WallClock()
    split = _split(drones, links)
    captured: list[list[bytes]] = [[] for _ in range(links)]
    opened: list[MavlinkLink] = []
    for k, n in enumerate(split):
        # system ids restart at 1 on every link: name the vehicles apart
        names = {sysid: f"drone-{k}-{sysid}" for sysid in range(1, n + 1)}
        link = create_link(
            "mavlink+udpin://127.0.0.1:0",
            LinkContext(registry, bus, clock, {"vehicle_names": names}),
        )
        assert isinstance(link, MavlinkLink)
        original = link._datagram
        sink = captured[k]
        cap = REPLAY_FRAMES // len(split)

        def capture(
            data: bytes, addr: tuple[str, int], _s: Any = sink, _o: Any = original, _c: int = cap
        ) -> None:
            if len(_s) < _c:
                _s.append(data)
            _o(data, addr)

        link._datagram = capture  # type: ignore[method-assign]
        opened.append(link)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    async with AsyncExitStack() as stack:
        for link in opened:
            await stack.enter_async_context(link)
        ports = [link.local_address[1] for link in opened if link.local_address]
        if source == "replay":
            proc = ctx.Process(
                target=_replay_main,
                args=(recording, split, ports, duration, 1, child),
                daemon=True,
            )
        else:
            proc = ctx.Process(
                target=_sim_main, args=(split, ports, duration, scale, child), daemon=True
            )
        proc.start()
        started = await asyncio.to_thread(parent.recv)
        assert started == "started"
        frames0 = sum(link.stats.frames for link in opened)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        rep: SenderReport = await asyncio.to_thread(parent.recv)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        await asyncio.sleep(0.5)  # let the last datagrams in
        received = sum(link.stats.frames for link in opened) - frames0
        proc.join(10)
        vehicles = len(registry)
    live = {
        "vehicles": vehicles,
        "sent": rep.sent_frames,
        "received": received,
        "wall_s": wall,
        "cpu_s": cpu,
        "sender": rep,
        "rcvbuf": opened[0].rcvbuf_granted,
        "record_rate": record_rate,
    }
    return live, captured


# --- replay of the same bytes ----------------------------------------------------------------


def selective_decode(mav: Any, data: bytes, used: frozenset[tuple[int, int]]) -> tuple[int, int]:
    """Bare selective decode of one datagram: MAVLink 1/2 framing by hand, pymavlink decodes
    only the frames whose ``(msgid, compid)`` is in ``used``. Returns (frames seen, frames
    decoded)."""
    n, i, frames, decoded = len(data), 0, 0, 0
    while i < n:
        magic = data[i]
        if magic == 0xFD and i + 10 <= n:
            end = i + 12 + data[i + 1] + (13 if data[i + 2] & 1 else 0)
            msgid = data[i + 7] | data[i + 8] << 8 | data[i + 9] << 16
            compid = data[i + 6]
        elif magic == 0xFE and i + 6 <= n:
            end = i + 8 + data[i + 1]
            msgid, compid = data[i + 5], data[i + 4]
        else:
            i += 1
            continue
        if end > n:
            break
        frames += 1
        if (msgid, compid) in used:
            mav.decode(bytearray(data[i:end]))
            decoded += 1
        i = end
    return frames, decoded


def _replay(per_link: list[list[bytes]], profile_top: int) -> dict[str, Any]:
    from pymavlink.dialects.v20 import common as mavlink

    from firmware_bridges.mavlink.link import MavlinkLink, register
    from firmware_bridges.mavlink.session import AUTOPILOT_COMPONENT, HANDLERS
    from fleet.clock import WallClock
    from fleet.events import EventBus
    from fleet.link import LinkContext, create_link
    from fleet.registry import VehicleRegistry

    register()
    addr = ("127.0.0.1", 1)

    def best_rate(run: Any) -> tuple[float, int]:
        best, count = 0.0, 0
        for _ in range(REPLAY_PASSES):
            t0 = time.perf_counter()
            count = run()
            best = max(best, count / (time.perf_counter() - t0))
        return best, count

    def full() -> int:
        count = 0
        for captured in per_link:
            parser = mavlink.MAVLink(None)
            parser.robust_parsing = True
            for d in captured:
                msgs = parser.parse_buffer(d)
                if msgs:
                    count += len(msgs)
        return count

    used = frozenset([(m, AUTOPILOT_COMPONENT) for m in HANDLERS] + [(253, c) for c in range(256)])

    sel_decoded = 0

    def selective() -> int:
        nonlocal sel_decoded
        count = sel_decoded = 0
        for captured in per_link:
            mav = mavlink.MAVLink(None)
            mav.robust_parsing = True
            for d in captured:
                f, dec = selective_decode(mav, d, used)
                count += f
                sel_decoded += dec
        return count

    full_rate, full_msgs = best_rate(full)
    sel_rate, _ = best_rate(selective)

    links = []
    for k, captured in enumerate(per_link):
        names = {sysid: f"drone-{k}-{sysid}" for sysid in range(1, 255)}
        link = create_link(
            "mavlink+udpin://127.0.0.1:0",
            LinkContext(VehicleRegistry(), EventBus(), WallClock(), {"vehicle_names": names}),
        )
        assert isinstance(link, MavlinkLink)
        for d in captured:  # warm-up: discovers the vehicles
            link._datagram(d, addr)
        links.append(link)

    def bridge() -> int:
        before = sum(link.stats.frames for link in links)
        for link, captured in zip(links, per_link, strict=True):
            for d in captured:
                link._datagram(d, addr)
        return sum(link.stats.frames for link in links) - before

    decoded0 = sum(link.stats.decoded for link in links)
    bridge_rate, frames = best_rate(bridge)
    bridge_decoded = (sum(link.stats.decoded for link in links) - decoded0) // REPLAY_PASSES
    prof = cProfile.Profile()
    prof.enable()
    bridge()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(profile_top)
    decoded = sum(link.stats.decoded for link in links)
    seen = sum(link.stats.frames for link in links)
    return {
        "datagrams": sum(len(c) for c in per_link),
        "frames": frames,
        "full_msgs": full_msgs,
        "full_rate": full_rate,
        "selective_rate": sel_rate,
        "bridge_rate": bridge_rate,
        "decoded_share": decoded / max(1, seen),
        "selective_decoded": sel_decoded,
        "bridge_decoded": bridge_decoded,
        "profile": _profile_lines(out.getvalue(), profile_top),
    }


def _profile_lines(text: str, top: int) -> list[str]:
    import os
    import site

    for prefix in [*site.getsitepackages(), os.getcwd()]:
        text = text.replace(prefix.rstrip("/") + "/", "")
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.strip().startswith("ncalls"):
            return [ln for ln in lines[k : k + top + 1] if ln.strip()]
    return []


# --- main ------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, drones: int) -> dict[str, Any]:
    links = args.links or -(-drones // MAX_PER_LINK)
    source = args.source
    if source == "auto":
        source = "sim" if drones <= MAX_PER_LINK else "replay"
    record = max(_split(drones, links))  # every link replays system ids 1..its count
    live, captured = asyncio.run(
        _live(drones, links, args.duration, args.rate_scale, source, record)
    )
    rep = _replay(captured, args.profile)
    sender: SenderReport = live["sender"]
    sent, received = live["sent"], live["received"]
    loss = max(0, sent - received)
    out = {
        "drones": drones,
        "links": links,
        "source": source,
        "record": record,
        "vehicles": live["vehicles"],
        "sent": sent,
        "received": received,
        "loss": loss,
        "loss_pct": 100.0 * loss / sent if sent else 0.0,
        "msg_s": received / live["wall_s"],
        "per_drone_s": sent / sender.wall_s / max(1, drones),
        "record_rate": live["record_rate"],
        "cpu_pct": 100.0 * live["cpu_s"] / live["wall_s"],
        "sender_cpu_pct": 100.0 * sender.cpu_s / sender.wall_s,
        "wall_s": live["wall_s"],
        "rcvbuf": live["rcvbuf"],
        **rep,
    }
    out["ratio_full"] = rep["bridge_rate"] / rep["full_rate"] if rep["full_rate"] else 0.0
    out["ratio_like"] = rep["bridge_rate"] / rep["selective_rate"] if rep["selective_rate"] else 0.0
    return out


def show(m: dict[str, Any]) -> None:
    print(
        f"  source                     {m['source']}"
        + (
            f" (recording of {m['record']} sim drones at {m['record_rate']:.1f} msg/s each, "
            f"replayed to {m['links']} link port(s))"
            if m["source"] == "replay"
            else f" ({m['links']} link port(s))"
        )
    )
    print(f"  vehicles discovered        {m['vehicles']} / {m['drones']}")
    print(f"  live duration              {m['wall_s']:.1f} s")
    print(f"  frames sent                {m['sent']:,}  ({m['per_drone_s']:.1f}/s per drone)")
    print(f"  frames received            {m['received']:,}  ({m['msg_s']:,.0f}/s)")
    print(f"  loss                       {m['loss']:,} ({m['loss_pct']:.3f} %)")
    print(f"  service process CPU        {m['cpu_pct']:.1f} % of one core")
    print(f"  sender process CPU         {m['sender_cpu_pct']:.1f} % of one core")
    print(f"  SO_RCVBUF granted          {m['rcvbuf']} bytes")
    print(f"  replay sample              {m['datagrams']:,} datagrams, {m['frames']:,} frames")
    print(f"  (a) pymavlink parse_buffer {m['full_rate']:,.0f} frames/s (decodes every frame)")
    print(
        f"  (b) bare selective decode  {m['selective_rate']:,.0f} frames/s "
        f"(decodes {m['selective_decoded']:,} frames a pass)"
    )
    same = m["selective_decoded"] == m["bridge_decoded"]
    print(
        f"  (c) bridge receive path    {m['bridge_rate']:,.0f} frames/s "
        f"(decodes {m['bridge_decoded']:,} frames a pass, "
        f"{100 * m['decoded_share']:.0f} % of frames: "
        + ("the same frames as b)" if same else "NOT the frames b decodes: not like for like)")
    )
    print(
        f"  bridge / selective (like for like)  {m['ratio_like']:.2f}  (target >= {TARGET_RATIO})"
    )
    print(f"  bridge / full decode                {m['ratio_full']:.2f}")
    print("  profile of (c), one pass, by own time:")
    for line in m["profile"]:
        print(f"    {line}")


def _write_sweep(results: list[dict[str, Any]], merge: bool) -> str:
    """The curve (var/bench/telemetry.*); returns where the service's process would fill a
    core."""
    cols = ["drones", "frames/s", "loss %", "service CPU %", "like-for-like ratio",
            "ratio to full decode"]  # fmt: skip
    rows: list[list[float | int | str]] = [
        [m["drones"], round(m["msg_s"]), round(m["loss_pct"], 3), round(m["cpu_pct"], 1),
         round(m["ratio_like"], 3), round(m["ratio_full"], 3)]
        for m in results
    ]  # fmt: skip
    paths = report.write_curve(
        "telemetry",
        "MAVLink ingest: service CPU and loss against drones",
        cols,
        rows,
        x="drones",
        ys=["service CPU %"],
        ylabel="% of one core",
        y2=["loss %"],
        y2label="loss %",
        merge=merge,
    )
    with paths[1].open() as f:
        table = list(csv.reader(f))[1:]
    where = report.knee(
        [(float(r[0]), float(r[3])) for r in table], 100.0, "the service's CPU", "% of a core"
    )
    with paths[0].open("a") as md:
        md.write(f"\n{where}.\n")
    return where


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.telemetry", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--drones", type=int, default=TARGET_DRONES)
    ap.add_argument("--duration", type=float, default=20.0, help="live phase, real seconds")
    ap.add_argument(
        "--source",
        choices=["auto", "sim", "replay"],
        default="auto",
        help="live senders: the sim itself, or a replay of recorded sim traffic (default: sim "
        f"up to {MAX_PER_LINK} drones, replay above)",
    )
    ap.add_argument(
        "--links",
        type=int,
        default=0,
        help="UDP links (ports) to spread the drones over; default: as few as system ids allow",
    )
    ap.add_argument("--rate-scale", type=float, default=1.0, help="multiply the sim's rates")
    ap.add_argument("--profile", type=int, default=8, help="profile lines shown")
    ap.add_argument("--sweep", default="", help="sizes to sweep, e.g. 250,500,1000")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="--sweep: keep the sizes of var/bench/telemetry.csv this run does not measure",
    )
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sweep.split(",") if x.strip()] or [args.drones]
    if any(not 1 <= n <= 4 * MAX_PER_LINK for n in sizes) or not 1 <= args.duration <= 300:
        return report.failed("telemetry", f"drones 1..{4 * MAX_PER_LINK}, duration 1..300")
    for n in sizes:
        links = args.links or -(-n // MAX_PER_LINK)
        if not 1 <= links <= n or -(-n // links) > MAX_PER_LINK:
            return report.failed("telemetry", "--links must give each link 1..254 drones")
    _silence_logs()
    print(f"telemetry benchmark on {report.machine()}")
    results = []
    for n in sizes:
        print(f"\n{n} drones, {args.duration:g} s live")
        m = measure(args, n)
        show(m)
        results.append(m)
        if args.sweep:  # after each size, so that a long sweep keeps what it measured
            print(f"growth: {_write_sweep(results, args.merge)}")
    top = max(results, key=lambda m: m["drones"])
    targets = report.Targets("telemetry")
    targets.check(
        f"{TARGET_DRONES} drones at PX4 normal rates, all discovered, no loss",
        top["drones"] >= TARGET_DRONES and top["vehicles"] >= top["drones"] and top["loss"] == 0,
        f"{top['vehicles']}/{top['drones']} discovered, loss {top['loss']} "
        f"({top['loss_pct']:.3f} %), {top['cpu_pct']:.0f} % of a core",
    )
    same = top["selective_decoded"] == top["bridge_decoded"]
    targets.check(
        f"bridge / selective decode of the same frames >= {TARGET_RATIO}",
        same and top["ratio_like"] >= TARGET_RATIO,
        f"{top['ratio_like']:.2f} (against a full decode of every frame: {top['ratio_full']:.2f})"
        + ("" if same else "; the baseline did not decode the bridge's frames"),
    )
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
