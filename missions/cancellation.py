"""Cancellation that Python 3.11's ``asyncio.wait_for`` may swallow.

On Python 3.10 and 3.11, ``asyncio.wait_for`` returns normally when the task awaiting it is
cancelled in the same event-loop turn as the awaited future completes (CPython gh-86296, fixed
by the 3.12 rewrite). A loop that waits with ``Clock.wait_for`` (vehicle updates, dispatcher
wake-ups) would then run on after its owner cancelled it and hold up shutdown. The cancel
request is still counted on the task (``Task.cancelling()``), so long-running loops call
:func:`check_cancelled` after each wait.
"""

from __future__ import annotations

import asyncio


def check_cancelled() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop and the request got
    lost on the way (see the module docstring)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
