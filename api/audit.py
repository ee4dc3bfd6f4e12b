"""The audit log of the API: one line for every mutating call (who, what, when, outcome).

:class:`AuditTrail` is ASGI middleware around the routes: for ``POST``, ``PUT``, ``PATCH`` and
``DELETE`` under ``/v1`` it holds the last part of the response back until the line is stored,
so a client that saw the answer can find the line (refusals too: a 401, a 403 or a 409 is
recorded with its problem type). The actor is the signed-in account (``anonymous`` when
authentication failed); the action is the method and the route's path template; the object is
the first path parameter (``request``/``R-12``). Sign-ins are recorded by the token endpoint
itself (:mod:`api.auth`), which knows the username tried. Domain operations keep writing
their own, more detailed lines (``sku.update``, ``request.submit``...).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.store.tables import AuditLog

log = structlog.get_logger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNAUDITED = frozenset({"/v1/auth/token"})
"""Paths that record themselves."""


class AuditTrail:
    """ASGI middleware: an audit line per mutating ``/v1`` call, stored before the answer
    ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") not in MUTATING
            or not path.startswith("/v1/")
            or path in UNAUDITED
        ):
            await self.app(scope, receive, send)
            return
        status = 0
        problem = b""

        async def _send(message: Message) -> None:
            nonlocal status, problem
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                if status >= 400 and len(problem) < 4096:
                    problem += message.get("body", b"")
                if not message.get("more_body", False):
                    await self._record(scope, status, problem)
            await send(message)

        await self.app(scope, receive, _send)

    async def _record(self, scope: Scope, status: int, body: bytes) -> None:
        app = scope.get("app")
        rt = getattr(getattr(app, "state", None), "runtime", None)
        if rt is None:
            return
        principal = (scope.get("state") or {}).get("principal")
        route = scope.get("route")
        template = getattr(route, "path", None) or scope.get("path", "")
        params: dict[str, Any] = scope.get("path_params") or {}
        parts = [p for p in template.split("/") if p and not p.startswith("{")]
        object_type = parts[1] if len(parts) > 1 else "api"
        object_id = str(next(iter(params.values()), ""))[:64]
        try:
            rt_time = rt.clock.now()
            await rt.store.audit(
                AuditLog(
                    at=rt_time,
                    actor=principal.username if principal is not None else "anonymous",
                    action=f"{scope['method']} {template}"[:64],
                    object_type=object_type[:32],
                    object_id=object_id,
                    detail={
                        "path": scope.get("path", ""),
                        "role": str(principal.role) if principal is not None else None,
                        "via": principal.via if principal is not None else None,
                        "status": status,
                    },
                    outcome=_outcome(status, body),
                )
            )
        except Exception:  # the call is done; its own records stand
            log.exception("audit.write_failed", path=scope.get("path"), status=status)


def _outcome(status: int, body: bytes) -> str:
    if status < 400:
        return "ok"
    try:
        doc = json.loads(body)
        kind = str(doc.get("type", "")).rsplit("/", 1)[-1]
        detail = str(doc.get("detail", ""))
    except (ValueError, AttributeError):
        kind, detail = "", ""
    return f"{status} {kind}: {detail}"[:200] if kind else str(status)
