"""RFC 9457 problem responses: every error the API returns has one shape.

``StreetfleetError`` subclasses map to their ``http_status`` with ``type`` ``/problems/<code>``;
request-body validation errors become 422 problems listing each field and reason. What the
framework itself refuses (Starlette's ``HTTPException``: an unknown path is a 404
``/problems/not-found``, a method the path does not take a 405 ``/problems/method-not-allowed``
that keeps the ``Allow`` header) is a problem too, and so is any exception nobody expected: a 500
``/problems/internal`` that says nothing of the exception (it is logged, with its traceback).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.errors import StreetfleetError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
"""Media type of problem responses."""


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app`` (and the catch-all for unexpected exceptions)."""

    @app.exception_handler(StreetfleetError)
    async def _domain(request: Request, exc: StreetfleetError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("api.error", path=request.url.path, error=exc.to_dict())
        fields = {k: v for k, v in exc.fields.items() if _jsonable(v)}
        # RFC 6750 §3: a 401 names the scheme to authenticate with
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return problem(
            exc.http_status, exc.code, type(exc).__name__, exc.message, headers=headers, **fields
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_path(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        return problem(
            422,
            "validation",
            "ValidationError",
            f"{first['field']}: {first['reason']}",
            field=first["field"],
            reason=first["reason"],
            errors=errors,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return http_problem(request, exc)

    app.add_middleware(CatchAll)


def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
    """The problem for what the framework refused: unknown path, wrong method, and the rest."""
    status = exc.status_code
    path, method = request.url.path, request.method
    headers = dict(exc.headers) if exc.headers else None
    if status == 404:
        return problem(
            404, "not-found", "NotFound", f"nothing at {path}", headers=headers, path=path
        )
    if status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return problem(
            405,
            "method-not-allowed",
            "MethodNotAllowed",
            f"{method} is not allowed on {path}" + (f" (allowed: {allowed})" if allowed else ""),
            headers=headers,
            path=path,
            method=method,
            allowed=[m.strip() for m in allowed.split(",") if m.strip()] or None,
        )
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    words = re.findall(r"[A-Za-z0-9]+", phrase)
    return problem(
        status,
        "-".join(w.lower() for w in words),
        "".join(w[:1].upper() + w[1:] for w in words),
        detail or f"{method} {path}: {phrase.lower()}",
        headers=headers,
        path=path,
    )


class CatchAll:
    """ASGI middleware: an exception nobody handled becomes a 500 problem that says nothing of
    the exception; the exception is logged with its traceback (``api.internal_error``).

    It sits inside Starlette's ``ServerErrorMiddleware``, which would answer in plain text and
    re-raise to the server (a second traceback in the log). When the response has already
    started (a stream broke off), nothing can be answered: the exception goes on to the server,
    which logs it and closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception:
            if started:
                raise
            request = Request(scope)
            log.exception("api.internal_error", method=request.method, path=request.url.path)
            response = problem(
                500,
                "internal",
                "InternalError",
                "internal error: the service could not answer this request; "
                "the cause is in its log",
            )
            await response(scope, receive, send)


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict | type(None))
