"""The record of operators' commands to vehicles (table ``vehicle_command``).

:class:`CommandRecords` is the one place the table is read and written; it uses the
:class:`~fleet.store.repository.Store`'s transactions. A record changes only forward through its
life cycle (``missions.commands``); every change is one short transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select

from fleet.errors import NotFound
from fleet.store.repository import Store
from fleet.store.tables import AuditLog, VehicleCommand


class CommandRecords:
    """Reads and writes of ``vehicle_command`` rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, *records: VehicleCommand) -> None:
        """Store new records, each with its audit line (``vehicle.command``), in one
        transaction (``Conflict`` when an idempotency key is taken for the vehicle)."""
        async with self.store.transaction() as s:
            for rec in records:
                s.add(rec)
                s.add(
                    AuditLog(
                        at=rec.accepted_at,
                        actor=rec.requested_by,
                        action="vehicle.command",
                        object_type="vehicle",
                        object_id=rec.vehicle_id,
                        detail={
                            "command_id": rec.id,
                            "command": rec.command,
                            "reason": rec.reason,
                            "role": rec.role,
                            "batch_id": rec.batch_id,
                            "mission_id": rec.mission_id,
                        },
                        outcome="ok",
                    )
                )

    async def get(self, command_id: str) -> VehicleCommand:
        async with self.store.transaction() as s:
            rec = await s.get(VehicleCommand, command_id)
        if rec is None:
            raise NotFound("command", command_id)
        return rec

    async def update(self, command_id: str, **changes: Any) -> VehicleCommand:
        async with self.store.transaction() as s:
            rec = await s.get(VehicleCommand, command_id)
            if rec is None:
                raise NotFound("command", command_id)
            for key, value in changes.items():
                setattr(rec, key, value)
            s.add(rec)
        return rec

    async def by_key(self, key: str, vehicle_id: str | None = None) -> list[VehicleCommand]:
        """Records made under an idempotency key: one vehicle's, or (``vehicle_id`` None) those
        of a fleet-wide command."""
        async with self.store.transaction() as s:
            q = select(VehicleCommand).where(VehicleCommand.idempotency_key == key)
            if vehicle_id is not None:
                q = q.where(VehicleCommand.vehicle_id == vehicle_id)
            else:
                q = q.where(col(VehicleCommand.batch_id).is_not(None))
            return list((await s.exec(q.order_by(col(VehicleCommand.vehicle_id)))).all())

    async def of_vehicle(
        self, vehicle_id: str, *, limit: int = 100, offset: int = 0, newest_first: bool = True
    ) -> Sequence[VehicleCommand]:
        order = col(VehicleCommand.accepted_at)
        async with self.store.transaction() as s:
            q = (
                select(VehicleCommand)
                .where(VehicleCommand.vehicle_id == vehicle_id)
                .order_by(order.desc() if newest_first else order.asc(), col(VehicleCommand.id))
                .offset(offset)
                .limit(limit)
            )
            return (await s.exec(q)).all()

    async def unfinished(self, states: Sequence[str]) -> Sequence[VehicleCommand]:
        """Records in one of ``states`` (those a stopped service left behind)."""
        async with self.store.transaction() as s:
            q = select(VehicleCommand).where(col(VehicleCommand.state).in_(list(states)))
            return (await s.exec(q)).all()
