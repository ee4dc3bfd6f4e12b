"""``/v1/missions``: what vehicles execute, with plan, result and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import AnyoneDep, OperatorDep
from api.deps import RuntimeDep
from api.schemas import MAX_OFFSET, CancelIn, MissionOut
from api.scope import communities, mission_visible
from api.views import mission_out
from missions.states import MissionState

router = APIRouter(prefix="/v1/missions", tags=["missions"])


@router.get("", response_model=list[MissionOut])
async def list_missions(
    rt: RuntimeDep,
    who: AnyoneDep,
    state: Annotated[list[MissionState] | None, Query()] = None,
    vehicle_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[MissionOut]:
    missions = await rt.store.list_missions(
        states=[str(s) for s in state] if state else None,
        vehicle_id=vehicle_id,
        limit=limit,
        offset=offset,
        communities=communities(who),
    )
    return [mission_out(m, await rt.store.mission_tasks(m.id)) for m in missions]


@router.get("/{mission_id}", response_model=MissionOut)
async def get_mission(mission_id: str, rt: RuntimeDep, who: AnyoneDep) -> MissionOut:
    """A mission with its plan, its outcome and every event with its reason (community staff:
    the missions that carry their communities' work)."""
    m = await rt.store.get_mission(mission_id)
    tasks = await rt.store.mission_tasks(mission_id)
    mission_visible(who, mission_id, tasks)
    return mission_out(m, tasks, await rt.store.events(mission_id=mission_id))


@router.post("/{mission_id}/cancel", response_model=MissionOut)
async def cancel_mission(
    mission_id: str, body: CancelIn, rt: RuntimeDep, who: OperatorDep
) -> MissionOut:
    """Cancel a mission: before take-off it stops; in flight the vehicle returns home and the
    mission ends ``cancelled`` once it has landed."""
    m = await rt.missions.cancel_mission(mission_id, who.username, body.reason)
    return mission_out(m, await rt.store.mission_tasks(mission_id))
