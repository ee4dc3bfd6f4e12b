"""Clocks: accelerated time scales sleeps, the manual clock wakes sleepers in order."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from fleet.clock import AcceleratedClock, ManualClock, WallClock, make_clock


async def test_accelerated_clock_runs_faster() -> None:
    clock = AcceleratedClock(50.0)
    t0, real0 = clock.monotonic(), time.monotonic()
    await clock.sleep(5.0)  # 0.1 s of real time
    assert clock.monotonic() - t0 >= 5.0
    assert time.monotonic() - real0 < 2.0


async def test_manual_clock_wakes_in_order() -> None:
    clock = ManualClock()
    woke: list[float] = []

    async def sleeper(dt: float) -> None:
        await clock.sleep(dt)
        woke.append(clock.monotonic())

    tasks = [asyncio.create_task(sleeper(dt)) for dt in (3.0, 1.0, 2.0)]
    await asyncio.sleep(0)
    await clock.advance(1.5)
    assert woke == [1.0]
    await clock.advance(5.0)
    assert woke == [1.0, 2.0, 3.0]
    await asyncio.gather(*tasks)


async def test_manual_wait_for_times_out_in_world_time() -> None:
    clock = ManualClock()
    never = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(clock.wait_for(never, 10.0))
    await asyncio.sleep(0)
    await clock.advance(9.0)
    assert not waiter.done()
    await clock.advance(2.0)
    with pytest.raises(TimeoutError):
        await waiter


def test_make_clock_rejects_unknown_mode() -> None:
    assert isinstance(make_clock("wall"), WallClock)
    with pytest.raises(ValueError, match="unknown clock mode"):
        make_clock("sundial")


async def test_a_cancel_landing_as_the_wait_completes_is_not_lost() -> None:
    """Python 3.11's asyncio.wait_for drops a cancellation that arrives in the turn its awaited
    future completes (CPython gh-86296); Clock.wait_for must not, or loops outlive their owner."""
    clock = AcceleratedClock(1.0)
    wake = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            with contextlib.suppress(TimeoutError):
                await clock.wait_for(wake.wait(), 10.0)
            wake.clear()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # parked in wait_for
    for _ in range(3):
        wake.set()
        await asyncio.sleep(0)  # the inner wait finishes ...
        task.cancel()  # ... and the cancel lands before wait_for resumes
        await asyncio.sleep(0.01)
        if task.done():
            break
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)
    assert rounds >= 1
