"""Helpers shared by the test suite: waiting on conditions, free ports, service probes.

Tests wait on conditions with :func:`eventually`, never on fixed sleeps. A test whose external
service or program is missing goes through :func:`require` (:func:`require_service`,
:func:`require_program`): skipped with the reason locally, failed under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""With CI=true a test whose service is missing fails instead of skipping."""


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` real
    seconds with ``message`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        last = value
        if time.monotonic() > deadline:
            pytest.fail(
                f"condition not met within {timeout} s: {message or predicate} (last: {last!r})"
            )
        await asyncio.sleep(interval)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 for TCP (default) or UDP (``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_ports(count: int) -> int:
    """The first of ``count`` consecutive UDP ports that are all free on 127.0.0.1."""
    for _ in range(200):
        first = free_port(socket.SOCK_DGRAM)
        if first + count > 65535:
            continue
        socks = []
        try:
            for p in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no run of {count} free UDP ports")


def tcp_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(available: bool, reason: str) -> None:
    """Skip a test with ``reason`` when what it needs is not ``available``; under CI=true fail it
    instead, so that CI can never pass by skipping."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


def require_service(name: str, available: bool, how: str) -> None:
    """Skip (or fail under CI=true) a test whose external service is missing."""
    require(available, f"{name} is not reachable ({how})")


def require_program(name: str, package: str | None = None) -> str:
    """The path of the program ``name``; skip (or fail under CI=true) the test when it is not
    installed, naming the Debian ``package`` that brings it (default: ``name``)."""
    path = shutil.which(name)
    require(
        path is not None,
        f"{name} is not installed; install the Debian package: apt-get install {package or name}",
    )
    assert path is not None
    return path
