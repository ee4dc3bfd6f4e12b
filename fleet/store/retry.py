"""Trying a write again when the database was only busy.

A write that meets a lock held by another writer (SQLite answers ``database is locked`` once
its busy timeout has passed: a writer whose transaction waits on a stalled event loop holds the
lock that long), a PostgreSQL serialization failure or deadlock, or a dropped connection was
not applied at all (:class:`~fleet.errors.StoreBusy`). What must not be lost then — a mission's
state change, its record — is tried again with jittered exponential backoff, for a bounded
time, by :func:`retrying`. The retry loop is tenacity's (well kept, the usual choice);
this module only says which errors are transient and how long to keep trying.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy.exc import OperationalError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from fleet.errors import StoreBusy

log = structlog.get_logger(__name__)

T = TypeVar("T")

SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
"""SQLite's SQLITE_BUSY / SQLITE_LOCKED messages."""

PG_TRANSIENT_CLASSES = ("40", "08")
"""SQLSTATE classes PostgreSQL uses for a transaction rolled back (serialization failure,
deadlock) and for a connection exception."""

PG_TRANSIENT_STATES = ("57P01", "57P02", "57P03")
"""admin_shutdown, crash_shutdown, cannot_connect_now (a restarting server)."""

RETRY_FOR_S = 30.0
"""How long a write is tried again before its error is raised (the mission then fails with
it, and its work goes back to the queue)."""


def is_transient(exc: OperationalError) -> bool:
    """Whether the database refused the operation only for now (see the module docstring)."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        return state[:2] in PG_TRANSIENT_CLASSES or state in PG_TRANSIENT_STATES
    text = str(orig).lower()
    return any(m in text for m in SQLITE_BUSY)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "store.busy_retry",
        attempt=state.attempt_number,
        error=str(exc),
        next_in_s=round(state.upcoming_sleep, 2),
    )


async def retrying(fn: Callable[[], Awaitable[T]], *, for_s: float = RETRY_FOR_S) -> T:
    """``await fn()``, tried again while it raises :class:`StoreBusy`, for at most ``for_s``
    seconds (then the last ``StoreBusy`` is raised). ``fn`` must build its writes afresh on
    each call: a failed attempt wrote nothing."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(StoreBusy),
        stop=stop_after_delay(for_s),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        before_sleep=_log_retry,
        reraise=True,
    ):
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
