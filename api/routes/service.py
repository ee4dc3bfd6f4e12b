"""Service endpoints for operators and orchestrators: ``/healthz`` (liveness), ``/readyz``
(readiness: database, MQTT links, vehicle links) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import RuntimeDep
from api.metrics import ServiceMetrics
from api.problems import problem
from api.readiness import run_checks
from api.schemas import ReadinessOut

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={
        503: {"description": "Not ready: the problem lists every check, and why one failed"}
    },
)
async def readyz(rt: RuntimeDep) -> Any:
    """Readiness: the database answers, every MQTT link is connected to its broker and every
    MAVLink endpoint is open. A check that takes longer than 2 s has failed."""
    checks = await run_checks(rt)
    report = {c.name: c.as_dict() for c in checks}
    failed = [c for c in checks if c.failed]
    if failed:
        return problem(
            503,
            "not-ready",
            "NotReady",
            "; ".join(f"{c.name}: {c.detail}" for c in failed),
            failed=[c.name for c in failed],
            checks=report,
        )
    return ReadinessOut.model_validate({"status": "ready", "checks": report})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {}},
            "description": "Prometheus text exposition (names and labels: docs/api.md)",
        }
    },
)
async def metrics(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus metrics: vehicles, missions, dispatch round times, MAVLink and MQTT link
    counters, read from the service's state when scraped."""
    service_metrics: ServiceMetrics = request.app.state.metrics
    return Response(await service_metrics.render(rt), media_type=CONTENT_TYPE_LATEST)
