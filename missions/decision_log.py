"""Decision records as mission events: how every dispatcher decision is stored.

A :class:`~missions.routing.decisions.Decision` becomes a ``mission_event`` of kind
``decision`` whose ``reason`` is the decision's sentence and whose ``data`` is
``Decision.as_event()`` (kind, subject, quantity, vehicle, alternatives and the figures behind
the reason). ``GET /v1/decisions`` and the request and mission reads show them.
"""

from __future__ import annotations

from typing import Any

from fleet.store.tables import MissionEvent
from missions.context import MissionContext
from missions.journal import EventKind
from missions.routing.decisions import Decision


def decision_event(
    ctx: MissionContext,
    decision: Decision,
    *,
    request_id: str | None = None,
    mission_id: str | None = None,
    vehicle_id: str | None = None,
    row: bool = False,
) -> MissionEvent:
    """A ``decision`` mission event recording ``decision``, not yet stored (``row``: built by
    :meth:`~missions.journal.Journal.row`, for ``Store.insert_events`` only)."""
    fields: dict[str, Any] = {
        "at": ctx.clock.now(),
        "kind": EventKind.DECISION,
        "reason": decision.reason,
        "mission_id": mission_id,
        "request_id": request_id,
        "vehicle_id": vehicle_id or decision.vehicle_id,
        "data": decision.as_event(),
    }
    if row:
        return MissionEvent.model_construct(from_state=None, to_state=None, **fields)
    return MissionEvent(**fields)
