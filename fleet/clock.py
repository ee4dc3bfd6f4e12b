"""Injected time: wall, accelerated and manual clocks.

Nothing in streetfleet calls ``time.time()``, ``time.monotonic()`` or ``asyncio.sleep()`` for
timing that belongs to the fleet's world (timeouts, telemetry rates, physics, schedules). It asks
a :class:`Clock` instead, so the same code runs in production (:class:`WallClock`), in
simulation at N times real time (:class:`AcceleratedClock`, like PX4's
``PX4_SIM_SPEED_FACTOR``) and in tests that step time by hand (:class:`ManualClock`).

A clock has two readings: ``time()`` is seconds since the Unix epoch in the clock's world
(for records and schedules) and ``monotonic()`` is a never-decreasing counter in world seconds
(for timeouts and physics). ``sleep(dt)`` waits ``dt`` world seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


class Clock(ABC):
    """Source of world time for the service and the simulators."""

    speed: float = 1.0
    """World seconds per real second."""

    @abstractmethod
    def time(self) -> float:
        """World time, seconds since the Unix epoch."""

    @abstractmethod
    def monotonic(self) -> float:
        """Never-decreasing world seconds, for intervals and timeouts."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of world time."""

    def now(self) -> datetime:
        """World time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def to_real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of world time take (for socket timeouts)."""
        return seconds / self.speed

    async def wait_for(self, aw: Awaitable[T], seconds: float | None) -> T:
        """Await ``aw`` for at most ``seconds`` of world time; raise ``TimeoutError`` after.

        Built on ``asyncio.timeout``: Python 3.11's ``asyncio.wait_for`` can swallow a
        cancellation that arrives as the awaited result does (CPython gh-86296), which left
        tasks running after their owner had cancelled them.
        """
        if seconds is None:
            return await aw
        async with asyncio.timeout(self.to_real(seconds)):
            return await aw


class WallClock(Clock):
    """Real time."""

    speed = 1.0

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class AcceleratedClock(Clock):
    """World time runs ``speed`` times faster than real time, from the moment of creation.

    ``start`` sets the world's epoch time at creation (defaults to now), so a simulation can
    start at a chosen time of day, e.g. the start of an 8 h shift.
    """

    def __init__(self, speed: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = float(speed)
        self._real0 = _time.monotonic()
        self._epoch0 = _time.time() if start is None else start

    def _elapsed(self) -> float:
        return (_time.monotonic() - self._real0) * self.speed

    def time(self) -> float:
        return self._epoch0 + self._elapsed()

    def monotonic(self) -> float:
        return self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock(Clock):
    """Time moves only when a test calls :meth:`advance`; sleepers wake in order.

    ``to_real`` returns 0 for positive intervals: under a manual clock nothing should wait on
    real time, and a socket timeout derived from world time would be meaningless.
    """

    speed = float("inf")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = 0.0
        self._epoch0 = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._epoch0 + self._now

    def monotonic(self) -> float:
        return self._now

    def to_real(self, seconds: float) -> float:
        return 0.0 if seconds > 0 else seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._timer(seconds)

    async def wait_for(self, aw: Awaitable[T], seconds: float | None) -> T:
        if seconds is None:
            return await aw
        task = asyncio.ensure_future(aw)
        timer = self._timer(seconds)  # the deadline counts from now, not from when a task runs
        both: set[asyncio.Future[Any]] = {task, timer}
        try:
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise TimeoutError(f"no result within {seconds} s of world time")

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        return fut

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move time forward, waking sleepers due on the way and letting them run.

        With ``step``, time moves in increments of at most ``step`` so that periodic loops
        (physics, heartbeats) run at every step in between.
        """
        target = self._now + seconds
        while True:
            nxt = target if step is None else min(target, self._now + step)
            if self._sleepers and self._sleepers[0][0] <= nxt:
                nxt = self._sleepers[0][0]
            self._now = nxt
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
            # let woken tasks run (and re-arm their sleeps) before moving on
            for _ in range(5):
                await asyncio.sleep(0)
            if self._now >= target:
                return


def make_clock(mode: str, speed: float = 1.0, start: float | None = None) -> Clock:
    """Build a clock from settings: ``wall``, ``accelerated`` or ``manual``."""
    if mode == "wall":
        return WallClock()
    if mode == "accelerated":
        return AcceleratedClock(speed, start)
    if mode == "manual":
        return ManualClock() if start is None else ManualClock(start)
    raise ValueError(f"unknown clock mode {mode!r} (expected wall, accelerated or manual)")
