"""RFC 9457 problem responses: every error the API returns has one shape.

``StreetfleetError`` subclasses map to their ``http_status`` with ``type`` ``/problems/<code>``;
request-body validation errors become 422 problems listing each field and reason.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fleet.errors import StreetfleetError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
"""Media type of problem responses."""


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(StreetfleetError)
    async def _domain(request: Request, exc: StreetfleetError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("api.error", path=request.url.path, error=exc.to_dict())
        fields = {k: v for k, v in exc.fields.items() if _jsonable(v)}
        return problem(exc.http_status, exc.code, type(exc).__name__, exc.message, **fields)

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


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict | type(None))
