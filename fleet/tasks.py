"""Stopping asyncio tasks for sure.

On Python 3.11 ``asyncio.wait_for`` (used inside aiomqtt, among others) can swallow a
cancellation that arrives just as the operation it waits for completes (CPython gh-86296): the
task that was cancelled runs on, and whatever waits for it to end (a ``TaskGroup`` leaving)
waits for ever. :func:`cancel_and_wait` cancels again until the tasks have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_S = 0.5
"""How long to wait for cancelled tasks before cancelling the ones still running again."""


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], recancel_s: float = RECANCEL_S
) -> None:
    """Cancel ``tasks`` and return once every one of them has ended (real time)."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_s)
