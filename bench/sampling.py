"""A low-overhead sampling profiler for benchmarks: where a measured window's time goes, without
the several-fold slowdown of ``cProfile`` (which would change the figures it explains).

A wall-clock timer (``setitimer(ITIMER_REAL)``, so it must be switched on from the main
thread) interrupts the process every :data:`INTERVAL_S` while sampling is on; the handler runs
in the main thread at its next bytecode, or at once when it waits in the event loop's
``select``, and reads the Python stack of the main thread (always: its time is the window's
time, waiting included) and of every other thread that is busy, not blocked on its queue or
lock (PyVRP in ``asyncio.to_thread``, the aiosqlite connection thread running SQL). Each
sample counts once for every function on a stack (cumulative) and once for the innermost one
(own). Shares are of the main thread's samples, so a busy worker thread adds its own share on
top. (A sampling *thread* would not do: it gets the GIL when the main thread lets it go, which
is mostly when the main thread enters ``select``, so it would see the loop waiting.)

    sampler = Sampler()
    sampler.on()             # around each window, in the main thread
    ...
    sampler.off()
    print("\\n".join(sampler.lines(20)))
"""

from __future__ import annotations

import linecache
import os
import signal
import site
import sys
import sysconfig
import threading
from collections import Counter
from types import FrameType
from typing import Any

INTERVAL_S = 0.005
"""Seconds between samples."""
_BLOCKING = (".get(", ".wait(", ".acquire(", ".select(", ".poll(", ".recv(", "sleep(")
"""A thread other than the main one whose innermost line calls one of these is idle."""

SKIP = ("asyncio/", "contextlib.py", "multiprocessing/", "concurrent/", "threading.py")
"""Files left out of the cumulative list: machinery on every stack."""

Key = tuple[str, int, str]
"""(file, first line, function name)."""


class Sampler:
    """Samples stacks while on (see the module docstring)."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.samples = 0
        """Samples of the main thread."""
        self.busy_other = 0
        """Samples in which another thread was busy."""
        self.lost = 0
        """Samples that failed (counted, never raised into the sampled code)."""
        self.cumulative: Counter[Key] = Counter()
        self.own: Counter[Key] = Counter()
        self._previous: Any = None

    def on(self) -> None:
        """Start sampling (main thread only: a timer signal drives it)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("the sampler runs from the main thread")
        self._previous = signal.signal(signal.SIGALRM, self._sample)
        signal.setitimer(signal.ITIMER_REAL, self.interval_s, self.interval_s)

    def off(self) -> None:
        """Stop sampling until :meth:`on`."""
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        if self._previous is not None:
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        # runs between two bytecodes of whatever the main thread does: it must never raise
        try:
            self.samples += 1
            self._count(frame)
            main = threading.main_thread().ident
            busy = False
            for ident, f in sys._current_frames().items():
                if ident != main and not _idle(f):
                    busy = True
                    self._count(f)
            self.busy_other += busy
        except Exception:  # a lost sample is better than a failed window
            self.lost += 1

    def _count(self, frame: FrameType | None) -> None:
        seen: set[Key] = set()
        leaf = True
        while frame is not None:
            code = frame.f_code
            key = (code.co_filename, code.co_firstlineno, code.co_name)
            if leaf:
                self.own[key] += 1
                leaf = False
            if key not in seen:
                seen.add(key)
                self.cumulative[key] += 1
            frame = frame.f_back

    def lines(
        self,
        top: int,
        *,
        skip: tuple[str, ...] = SKIP,
    ) -> list[str]:
        """The ``top`` functions by cumulative share, then by own share (files under ``skip``
        left out of the cumulative list: the event loop is on every stack)."""
        n = max(1, self.samples)
        out = [
            f"{self.samples:,} samples every {1000 * self.interval_s:g} ms "
            f"(another thread busy in {100 * self.busy_other / n:.0f} % of them)",
            f"{'cum %':>6} {'own %':>6}  function",
        ]
        shown = 0
        for key, count in self.cumulative.most_common():
            if any(s in key[0] for s in skip) or key[2] == "<module>":
                continue
            out.append(f"{100 * count / n:6.1f} {100 * self.own[key] / n:6.1f}  {_name(key)}")
            shown += 1
            if shown >= top:
                break
        out.append(f"{'own %':>6}  function (innermost frame)")
        for key, count in self.own.most_common(max(5, top // 2)):
            out.append(f"{100 * count / n:6.1f}  {_name(key)}")
        return out


def _idle(frame: FrameType) -> bool:
    if frame.f_lineno is None:
        return True
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    return any(b in line for b in _BLOCKING)


_PREFIXES = sorted(
    {
        p.rstrip("/") + "/"
        for p in [*site.getsitepackages(), sysconfig.get_paths()["stdlib"], os.getcwd()]
    },
    key=len,
    reverse=True,
)


def _name(key: Key) -> str:
    path, line, name = key
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return f"{path}:{line}({name})"
