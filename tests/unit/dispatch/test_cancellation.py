"""A cancellation that Python 3.11's ``asyncio.wait_for`` swallows (CPython gh-86296) is not
lost by the dispatcher's and the runs' waiting loops."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from fleet.clock import WallClock
from missions.cancellation import check_cancelled


async def test_a_cancel_landing_as_the_wait_completes_still_stops_the_loop() -> None:
    clock = WallClock()
    wake = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            with contextlib.suppress(TimeoutError):
                await clock.wait_for(wake.wait(), 10.0)
            check_cancelled()
            wake.clear()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # parked in wait_for
    # the awaited event completes and the owner cancels in the same turn: the race of gh-86296
    for _ in range(3):
        wake.set()
        await asyncio.sleep(0)  # the inner wait finishes ...
        task.cancel()  # ... and the cancel lands before wait_for resumes
        if task.done():
            break
        await asyncio.sleep(0.01)
        if task.done():
            break
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)
    assert rounds >= 1


def test_outside_a_cancelled_task_nothing_happens() -> None:
    async def main() -> None:
        check_cancelled()

    asyncio.run(main())
