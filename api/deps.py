"""Route dependencies: the runtime and the acting user, as ``Annotated`` types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_actor(x_actor: Annotated[str | None, Header(max_length=100)] = None) -> str:
    """Who acts: the ``X-Actor`` header until accounts arrive (recorded in the audit log)."""
    return x_actor or "api"


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ActorDep = Annotated[str, Depends(get_actor)]
