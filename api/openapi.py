"""The OpenAPI document says, for every operation, who may call it and every answer it gives.

:func:`describe_security` wraps FastAPI's generator: each operation whose route declares roles
(:class:`api.auth.Allow`) gets ``x-roles`` (the roles, in the document) and its 401 and 403
problem answers; every operation gets the problem answers any route can give (400 for a body that
does not parse, 404 for an unknown id, 409 for a change the object's state refuses, 422 for a
bad body, 500, and 503 when the database is unavailable). The role matrix test and
``docs/api.md`` read the same declarations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.auth import allowed_roles

PROBLEM = {
    "application/problem+json": {
        "schema": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        }
    }
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


@dataclass(frozen=True)
class Operation:
    """One route of the app as a client sees it."""

    path: str
    """The full path template (``/v1/requests/{request_id}``)."""
    methods: frozenset[str]
    route: APIRoute


def operations(app: FastAPI) -> Iterator[Operation]:
    """Every API route of ``app``, included routers flattened, with its full path."""
    for rc in routing.iter_route_contexts(app.routes):
        original = rc.original_route
        if isinstance(original, APIRoute) and rc.path_format:
            yield Operation(rc.path_format, frozenset(rc.methods or ()), original)


def describe_security(app: FastAPI) -> None:
    """Install the generator on ``app`` (call once its routes are in)."""

    def generate() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for o in operations(app):
            if not o.route.include_in_schema:
                continue
            roles = allowed_roles(o.route)
            for method in o.methods:
                op = doc["paths"].get(o.path, {}).get(method.lower())
                if op is None:
                    continue
                answers = op.setdefault("responses", {})
                if roles is not None:
                    op["x-roles"] = sorted(str(r) for r in roles)
                    answers.setdefault("401", _problem("No valid token or API key"))
                    answers.setdefault("403", _problem("The caller's role may not do this"))
                if "requestBody" in op:
                    answers.setdefault("400", _problem("The body could not be parsed"))
                if method in {"POST", "PUT", "PATCH", "DELETE"}:
                    answers.setdefault("409", _problem("Not allowed in the object's current state"))
                answers.setdefault("503", _problem("The database is unavailable or busy"))
                if "{" in o.path:
                    answers.setdefault("404", _problem("No such object (or not the caller's)"))
                answers.setdefault("500", _problem("Internal error (the cause is in the log)"))
                if "422" in answers:
                    answers["422"] = _problem(answers["422"].get("description", "Invalid input"))
        app.openapi_schema = doc
        return doc

    app.openapi = generate  # type: ignore[method-assign]
