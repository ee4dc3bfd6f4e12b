"""Readiness: whether the service can do its work now (``GET /readyz``).

Three checks, run together, each bounded by :data:`CHECK_TIMEOUT_S`:

- ``database``: the store answers a trivial query (``SELECT 1`` on a pooled connection);
- ``mqtt``: every link that reaches its vehicles through an MQTT broker (VDA 5050 vans, speaker
  payloads) is connected to it; skipped when no such link is configured;
- ``vehicle_links``: every MAVLink UDP endpoint is open; skipped when none is configured.

Liveness (``/healthz``) is not readiness: a live process whose database is gone answers
``/healthz`` and fails ``/readyz``, so a load balancer stops sending it work without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

from api.runtime import Runtime
from fleet.errors import StreetfleetError

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_S = 2.0
"""Longest time one check may take; a check that takes longer has failed."""


class CheckStatus(StrEnum):
    """Outcome of one readiness check."""

    OK = "ok"
    """The dependency answers."""
    FAILED = "failed"
    """It does not (the detail says why)."""
    SKIPPED = "skipped"
    """Nothing of this kind is configured."""


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome."""

    name: str
    status: CheckStatus
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == CheckStatus.FAILED

    def as_dict(self) -> dict[str, str]:
        return {"status": str(self.status), "detail": self.detail}


async def check_database(rt: Runtime) -> Check:
    started = time.perf_counter()
    await rt.store.ping()
    ms = (time.perf_counter() - started) * 1000
    return Check("database", CheckStatus.OK, f"{rt.store.db.backend} answered in {ms:.0f} ms")


async def check_mqtt(rt: Runtime) -> Check:
    links = rt.mqtt_links()
    if not links:
        return Check("mqtt", CheckStatus.SKIPPED, "no MQTT link configured")
    down = [link for link in links if not link.connected.is_set()]
    if down:
        names = ", ".join(f"{link.address.display_url} ({link.broker.url})" for link in down)
        return Check("mqtt", CheckStatus.FAILED, f"not connected to the broker: {names}")
    brokers = ", ".join(sorted({link.broker.url for link in links}))
    return Check("mqtt", CheckStatus.OK, f"{len(links)} link(s) connected to {brokers}")


async def check_vehicle_links(rt: Runtime) -> Check:
    links = rt.mavlink_links()
    if not links:
        return Check("vehicle_links", CheckStatus.SKIPPED, "no MAVLink link configured")
    closed = [link.url for link in links if not link.is_open]
    if closed:
        return Check("vehicle_links", CheckStatus.FAILED, f"not open: {', '.join(closed)}")
    return Check("vehicle_links", CheckStatus.OK, f"{len(links)} MAVLink link(s) open")


CHECKS: dict[str, Callable[[Runtime], Awaitable[Check]]] = {
    "database": check_database,
    "mqtt": check_mqtt,
    "vehicle_links": check_vehicle_links,
}
"""Every readiness check, by name."""


async def run_checks(rt: Runtime, timeout_s: float = CHECK_TIMEOUT_S) -> list[Check]:
    """Run every check at once; a check that raises or outlasts ``timeout_s`` has failed."""
    return list(
        await asyncio.gather(
            *(_bounded(name, check, rt, timeout_s) for name, check in CHECKS.items())
        )
    )


async def _bounded(
    name: str, check: Callable[[Runtime], Awaitable[Check]], rt: Runtime, timeout_s: float
) -> Check:
    try:
        async with asyncio.timeout(timeout_s):
            return await check(rt)
    except TimeoutError:
        return Check(name, CheckStatus.FAILED, f"no answer within {timeout_s:g} s")
    except StreetfleetError as exc:
        return Check(name, CheckStatus.FAILED, str(exc.fields.get("reason") or exc.message))
    except Exception as exc:
        log.exception("readiness.check_failed", check=name)
        return Check(name, CheckStatus.FAILED, f"the check failed ({type(exc).__name__})")
