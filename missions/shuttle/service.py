"""The shuttle service: shuttle plans for operators (create, read, replace, delete, trips) and
the wiring of the van planner, the shuttle run and stranded-load recovery into the mission
service (:meth:`ShuttleService.install`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fleet.store.repository import Store
from fleet.store.tables import AuditLog, ShuttlePlan
from fleet.vehicle import VehicleKind
from fleet.world import World
from missions.context import MissionContext
from missions.kinds import MissionHost
from missions.shuttle import records
from missions.shuttle.availability import forget, van_service_available
from missions.shuttle.planner import VanShuttlePlanner
from missions.shuttle.plans import PlanDraft, PlanSpec, Shift, validate_draft
from missions.shuttle.recovery import StrandedRecovery
from missions.shuttle.run import ShuttleRun
from missions.shuttle.trips import TripPlan


@dataclass(frozen=True, slots=True)
class LoadReport:
    """One community's consignment on a trip."""

    load_id: str
    community_id: str
    boxes: int
    delivered: bool
    eta: float | None


@dataclass(frozen=True, slots=True)
class TripReport:
    """A trip done, under way or planned."""

    mission_id: str | None
    """None for a trip that is only planned (a forecast)."""
    vehicle_id: str
    shift_day: date | None
    number: int
    purpose: str
    state: str
    """Mission state, or ``forecast``."""
    depart: float | None
    return_at: float | None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    loads: tuple[LoadReport, ...] = ()

    @property
    def boxes(self) -> int:
        return sum(ld.boxes for ld in self.loads)

    @property
    def boxes_delivered(self) -> int:
        return sum(ld.boxes for ld in self.loads if ld.delivered)

    def boxes_by_community(self, delivered_only: bool = False) -> dict[str, int]:
        out: dict[str, int] = {}
        for ld in self.loads:
            if delivered_only and not ld.delivered:
                continue
            out[ld.community_id] = out.get(ld.community_id, 0) + ld.boxes
        return out


@dataclass
class ShuttleService:
    """Shuttle plans and trips (see the module docstring)."""

    ctx: MissionContext
    planner: VanShuttlePlanner
    host: MissionHost | None = None
    recovery: StrandedRecovery | None = field(default=None)

    @classmethod
    def install(cls, host: MissionHost) -> ShuttleService:
        """Register the shuttle run and the van planner (after the planners already there, so
        the drone planner goes first) with ``host``, and answer for vans with the shuttle
        plans' hours (:func:`van_service_available`): the ``van`` carrier of the mode choice
        and a serve check for the allocation step."""
        planner = VanShuttlePlanner(host)
        recovery = StrandedRecovery(planner)
        planner.on_round.append(recovery)
        host.register_run(ShuttleRun)
        host.dispatcher.add_planner(planner)
        ctx = host.ctx

        async def vans_serve(warehouse_id: str, community_id: str, flyable: bool) -> bool:
            del flyable
            return await van_service_available(
                ctx, community_id=community_id, warehouse_id=warehouse_id
            )

        host.dispatcher.set_carrier("van", van_service_available)
        host.dispatcher.add_serve_check(vans_serve)
        return cls(host.ctx, planner, host, recovery)

    # --- plans --------------------------------------------------------------------------------

    async def known_vans(self) -> set[str]:
        """Vans the fleet has seen (live or in the vehicle table)."""
        vans = {e.info.id for e in self.ctx.registry if e.info.kind == VehicleKind.VAN}
        vans |= {v.id for v in await self.ctx.store.vehicles() if v.kind == VehicleKind.VAN}
        return vans

    async def plans(self) -> list[ShuttlePlan]:
        return await records.list_plans(self.ctx.store)

    async def get(self, plan_id: str) -> ShuttlePlan:
        return await records.get_plan(self.ctx.store, plan_id)

    async def _validate(self, draft: PlanDraft, plan_id: str) -> PlanSpec:
        return validate_draft(
            draft,
            plan_id=plan_id,
            world=self.ctx.world,
            known_vans=await self.known_vans(),
            others=await records.plan_specs(self.ctx.store),
        )

    async def create(self, draft: PlanDraft, actor: str) -> ShuttlePlan:
        row = ShuttlePlan(
            warehouse_id=draft.warehouse_id,
            shift_start=draft.shift_start,
            shift_end=draft.shift_end,
            timezone=draft.timezone,
            created_at=self.ctx.clock.now(),
            updated_at=self.ctx.clock.now(),
        )
        await self._validate(draft, row.id)
        _apply(row, draft)
        row.created_by = actor
        row = await records.insert_plan(
            self.ctx.store, row, self._audit(actor, "shuttle_plan.create", row.id, draft)
        )
        self._changed()
        return row

    async def replace(
        self, plan_id: str, draft: PlanDraft, actor: str, *, expected_version: int | None = None
    ) -> ShuttlePlan:
        await records.get_plan(self.ctx.store, plan_id)
        await self._validate(draft, plan_id)
        changes = _fields(draft)
        changes["updated_at"] = self.ctx.clock.now()
        row = await records.update_plan(
            self.ctx.store,
            plan_id,
            changes,
            self._audit(actor, "shuttle_plan.replace", plan_id, draft),
            expected_version=expected_version,
        )
        self._changed()
        return row

    async def delete(self, plan_id: str, actor: str) -> None:
        """Stop the plan (trips under way finish; no new ones). Its row stays, hidden, so its
        trips remain traceable."""
        now = self.ctx.clock.now()
        await records.update_plan(
            self.ctx.store,
            plan_id,
            {"deleted_at": now, "enabled": False, "updated_at": now},
            AuditLog(
                at=now,
                actor=actor,
                action="shuttle_plan.delete",
                object_type="shuttle_plan",
                object_id=plan_id,
                detail={},
            ),
        )
        self._changed()

    def _changed(self) -> None:
        forget(self.ctx.store)
        self.planner.invalidate()
        if self.host is not None:
            self.host.dispatcher.kick()

    def _audit(self, actor: str, action: str, plan_id: str, draft: PlanDraft) -> AuditLog:
        detail = {k: _jsonable(v) for k, v in _fields(draft).items()}
        return AuditLog(
            at=self.ctx.clock.now(),
            actor=actor,
            action=action,
            object_type="shuttle_plan",
            object_id=plan_id,
            detail=detail,
        )

    def shifts(self, row: ShuttlePlan) -> tuple[Shift | None, Shift | None]:
        """The shift under way now (if any) and the next one."""
        spec = PlanSpec.from_row(row)
        now = self.ctx.clock.now()
        current = spec.shift_at(now)
        after = current.end if current is not None else now
        nxt = spec.next_shift(after + timedelta(seconds=1))
        return current, nxt

    # --- trips --------------------------------------------------------------------------------

    async def trips(self, plan_id: str, day: date | None = None) -> list[TripReport]:
        """The plan's trips (missions) and, for the shift under way, the planner's forecast of
        the trips still to come."""
        row = await records.get_plan(self.ctx.store, plan_id)
        out: list[TripReport] = []
        for link, m, _tasks in await records.trips_of_plan(self.ctx.store, plan_id):
            if day is not None and link.shift_day != day:
                continue
            tp = TripPlan.from_json(m.plan)
            booked = set(m.result.get("booked", []))
            failed = m.result.get("failed", {})
            out.append(
                TripReport(
                    mission_id=m.id,
                    vehicle_id=link.vehicle_id,
                    shift_day=link.shift_day,
                    number=link.number,
                    purpose=tp.purpose,
                    state=m.state,
                    depart=tp.depart,
                    return_at=tp.return_at,
                    started_at=m.started_at,
                    ended_at=m.ended_at,
                    loads=tuple(
                        LoadReport(
                            ld.load_id,
                            ld.community_id,
                            ld.boxes,
                            f"drop:{ld.load_id}" in booked and ld.load_id not in failed,
                            ld.eta,
                        )
                        for ld in tp.loads
                    ),
                )
            )
        current, _ = self.shifts(row)
        forecast = self.planner.forecast.get(plan_id, [])
        if current is not None and day in (None, current.day):
            last: dict[str, int] = {}
            for r in out:
                if r.shift_day == current.day:
                    last[r.vehicle_id] = max(last.get(r.vehicle_id, 0), r.number)
            for t in sorted(forecast, key=lambda t: (t.vehicle_id, t.number)):
                loads: dict[str, LoadReport] = {}
                for v in t.visits:
                    community = v.stop.id.split(".", 1)[0]
                    prev = loads.get(community)
                    loads[community] = LoadReport(
                        "", community, (prev.boxes if prev else 0) + v.stop.boxes, False, v.finish
                    )
                last[t.vehicle_id] = last.get(t.vehicle_id, 0) + 1
                out.append(
                    TripReport(
                        mission_id=None,
                        vehicle_id=t.vehicle_id,
                        shift_day=current.day,
                        number=last[t.vehicle_id],
                        purpose="delivery",
                        state="forecast",
                        depart=t.depart,
                        return_at=t.return_at,
                        loads=tuple(loads.values()),
                    )
                )
        return out


def _fields(draft: PlanDraft) -> dict[str, Any]:
    return {
        "name": draft.name,
        "warehouse_id": draft.warehouse_id,
        "community_ids": list(draft.community_ids),
        "vehicle_ids": list(draft.vehicle_ids),
        "shift_start": draft.shift_start,
        "shift_end": draft.shift_end,
        "timezone": draft.timezone,
        "valid_from": draft.valid_from,
        "valid_until": draft.valid_until,
        "enabled": draft.enabled,
    }


def _apply(row: ShuttlePlan, draft: PlanDraft) -> None:
    for k, v in _fields(draft).items():
        setattr(row, k, v)


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v


async def seed_default_plan(
    store: Store,
    world: World,
    *,
    vehicle_ids: list[str],
    timezone: str,
    now: datetime,
    hours: float = 8.0,
    actor: str = "demo",
) -> ShuttlePlan | None:
    """Create a plan serving every community of the first warehouse from ``now`` for
    ``hours``, unless a plan exists already (the demo's start-up). Returns the plan created."""
    if await records.list_plans(store) or not vehicle_ids or not world.warehouses:
        return None
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone)
    local = now.astimezone(tz).replace(second=0, microsecond=0)
    end = local + timedelta(hours=hours)
    draft = PlanDraft(
        name="demo shift",
        warehouse_id=world.warehouses[0].id,
        community_ids=[c.id for c in world.communities],
        vehicle_ids=vehicle_ids,
        shift_start=f"{local:%H:%M}",
        shift_end=f"{end:%H:%M}",
        timezone=timezone,
        valid_from=local.date(),
        valid_until=local.date(),
    )
    row = ShuttlePlan(
        warehouse_id=draft.warehouse_id,
        shift_start=draft.shift_start,
        shift_end=draft.shift_end,
        timezone=timezone,
        created_at=now,
        updated_at=now,
        created_by=actor,
    )
    validate_draft(draft, plan_id=row.id, world=world, known_vans=vehicle_ids, others=[])
    _apply(row, draft)
    audit = AuditLog(
        at=now,
        actor=actor,
        action="shuttle_plan.create",
        object_type="shuttle_plan",
        object_id=row.id,
        detail={k: _jsonable(v) for k, v in _fields(draft).items()},
    )
    return await records.insert_plan(store, row, audit)
