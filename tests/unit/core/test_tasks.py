"""cancel_and_wait ends tasks that swallow a cancellation, as wait_for on Python 3.11 can."""

from __future__ import annotations

import asyncio

from fleet.tasks import cancel_and_wait


async def _swallows(times: int, cancels: list[int]) -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancels.append(1)
            if len(cancels) > times:
                raise


async def test_tasks_that_swallow_cancels_end() -> None:
    seen: list[list[int]] = [[], [], []]
    tasks = [asyncio.create_task(_swallows(n, seen[n])) for n in range(3)]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(tasks, recancel_s=0.05), timeout=5)
    assert all(t.cancelled() for t in tasks)
    assert [len(s) for s in seen] == [1, 2, 3]


async def test_done_tasks_and_no_tasks() -> None:
    await cancel_and_wait([])
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await cancel_and_wait([done])
    assert done.done() and not done.cancelled()
