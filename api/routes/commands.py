"""Operators' commands to vehicles: ``/v1/vehicles/{vehicle_id}/commands`` (one vehicle) and
``/v1/commands`` (fleet-wide, confirmed), with their records (``missions.commands``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import OperatorDep, ReaderDep
from api.deps import RuntimeDep
from fleet.errors import NotFound
from fleet.store.tables import VehicleCommand
from missions.commands import COMMAND_FINAL, CommandKind, CommandState

router = APIRouter(tags=["commands"])


class CommandIn(BaseModel):
    """A command to one vehicle."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    command: CommandKind = Field(
        description="drones: return, land, hold, resume; vans: pause, resume, cancel_order"
    )
    reason: str = Field(min_length=1, max_length=1000, description="why (required, recorded)")


class FleetCommandIn(CommandIn):
    """A command to every online vehicle it fits, confirmed."""

    confirm: str | None = Field(
        None,
        max_length=100,
        description='"ALL <n> VEHICLES", n the number of vehicles the command reaches now '
        "(a 422 without it says n)",
    )


class CommandOut(BaseModel):
    """A command's record and where it stands."""

    id: str
    vehicle_id: str
    vehicle_kind: str
    command: CommandKind
    state: CommandState
    final: bool = Field(description="succeeded, failed or timed_out: the record is complete")
    reason: str
    requested_by: str
    role: str
    mission_id: str | None
    batch_id: str | None = Field(description="the fleet-wide command it is part of")
    idempotency_key: str | None
    accepted_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    ended_at: datetime | None
    outcome: str = Field(description="what was observed, the refusal, or what was missing")
    vehicle_result: str | None = Field(
        description="the vehicle's answer when it refused (COMMAND_ACK result, VDA 5050 error type)"
    )
    vehicle_words: str | None = Field(description="what the vehicle said when it refused")


class FleetCommandOut(BaseModel):
    """A fleet-wide command: one record per vehicle reached."""

    batch_id: str
    command: CommandKind
    count: int
    commands: list[CommandOut]


def command_out(rec: VehicleCommand) -> CommandOut:
    state = CommandState(rec.state)
    return CommandOut(
        id=rec.id,
        vehicle_id=rec.vehicle_id,
        vehicle_kind=rec.vehicle_kind,
        command=CommandKind(rec.command),
        state=state,
        final=state in COMMAND_FINAL,
        reason=rec.reason,
        requested_by=rec.requested_by,
        role=rec.role,
        mission_id=rec.mission_id,
        batch_id=rec.batch_id,
        idempotency_key=rec.idempotency_key,
        accepted_at=rec.accepted_at,
        sent_at=rec.sent_at,
        acknowledged_at=rec.acknowledged_at,
        ended_at=rec.ended_at,
        outcome=rec.outcome,
        vehicle_result=rec.vehicle_result,
        vehicle_words=rec.vehicle_words,
    )


IdempotencyKey = Annotated[str | None, Header(max_length=100)]


@router.post(
    "/v1/vehicles/{vehicle_id}/commands",
    status_code=status.HTTP_201_CREATED,
    response_model=CommandOut,
    responses={
        200: {"description": "Replay of an earlier command with the same Idempotency-Key"},
        409: {"description": "The vehicle cannot take it now (link down, no mission to resume)"},
        422: {"description": "Invalid body, or a command the vehicle's kind does not take"},
    },
)
async def command_vehicle(
    vehicle_id: str,
    body: CommandIn,
    rt: RuntimeDep,
    who: OperatorDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> CommandOut:
    """Command one vehicle. The record is stored (``accepted``) before the answer and the
    command goes out at once; follow it with ``GET /v1/commands/{id}`` (``Location``). With an
    ``Idempotency-Key`` a retried POST returns the first record (200) instead of commanding
    again."""
    rec, created = await rt.commands.issue(
        vehicle_id,
        body.command,
        body.reason,
        actor=who.username,
        role=str(who.role),
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/commands/{rec.id}"
    return command_out(rec)


@router.get("/v1/vehicles/{vehicle_id}/commands", response_model=list[CommandOut])
async def vehicle_commands(
    vehicle_id: str,
    rt: RuntimeDep,
    who: ReaderDep,
    order: Literal["newest", "oldest"] = "newest",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CommandOut]:
    """The vehicle's commands, newest first (``order=oldest``: oldest first); page with
    ``limit`` and ``offset``. A vehicle neither live nor on record is a 404 problem."""
    if rt.registry.find(vehicle_id) is None and await rt.store.vehicle(vehicle_id) is None:
        raise NotFound("vehicle", vehicle_id)
    rows = await rt.commands.of_vehicle(
        vehicle_id, limit=limit, offset=offset, newest_first=order == "newest"
    )
    return [command_out(r) for r in rows]


@router.post(
    "/v1/commands",
    status_code=status.HTTP_201_CREATED,
    response_model=FleetCommandOut,
    responses={
        200: {"description": "Replay of an earlier command with the same Idempotency-Key"},
        409: {"description": "No online vehicle can take the command"},
        422: {"description": "No or a wrong confirmation (the problem's `expected` says it)"},
    },
)
async def command_fleet(
    body: FleetCommandIn,
    rt: RuntimeDep,
    who: OperatorDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> FleetCommandOut:
    """Command every online vehicle the command fits (drones in the air for ``return``,
    ``land`` and ``hold``; drones with a mission under way for ``resume``). ``confirm`` must
    read ``ALL <n> VEHICLES``, ``n`` being how many it reaches now: without it, or with another
    number, a 422 problem on ``confirm`` says what to send (``expected``)."""
    records, created = await rt.commands.issue_fleet(
        body.command,
        body.reason,
        body.confirm,
        actor=who.username,
        role=str(who.role),
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return FleetCommandOut(
        batch_id=records[0].batch_id or "",
        command=body.command,
        count=len(records),
        commands=[command_out(r) for r in records],
    )


@router.get("/v1/commands/{command_id}", response_model=CommandOut)
async def get_command(command_id: str, rt: RuntimeDep, who: ReaderDep) -> CommandOut:
    """One command's record."""
    return command_out(await rt.commands.get(command_id))
