"""``van_service_available``: the dispatcher's question "can a van take this work now?", read
from the shuttle plans in a real store and the live registry, on a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from fleet.clock import ManualClock
from fleet.events import EventBus
from fleet.registry import VehicleRegistry
from fleet.settings import Settings
from fleet.store.repository import Store
from fleet.store.tables import AuditLog, ShuttlePlan, Vehicle
from fleet.vehicle import Capability, LinkState, VehicleInfo, VehicleKind
from fleet.worldfile import load_world
from missions.context import MissionContext
from missions.journal import Journal
from missions.shuttle import van_service_available
from missions.shuttle.availability import forget
from missions.shuttle.records import insert_plan
from tests.service import WORLDS

NINE = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
"""09:00 in Shanghai."""


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[MissionContext]:
    world = load_world(WORLDS / "shatou.geojson")
    clock = ManualClock(start=NINE.timestamp())
    async with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        await store.sync_world(world)
        registry = VehicleRegistry()
        bus = EventBus()
        c = MissionContext(
            store=store,
            world=world,
            registry=registry,
            bus=bus,
            clock=clock,
            journal=Journal(clock, bus),
            settings=Settings.load(),
        )
        entry = registry.add(
            VehicleInfo(
                id="van-VAN-01",
                kind=VehicleKind.VAN,
                link_url="vda5050+mqtt:///",
                address="streetfleet/VAN-01",
                capabilities=frozenset({Capability.SHUTTLE}),
            ),
            control=None,
        )
        entry.status.link = LinkState.ONLINE
        await store.upsert_vehicle(
            Vehicle(
                id="van-VAN-01",
                kind="van",
                link_url="vda5050+mqtt:///",
                address="streetfleet/VAN-01",
                first_seen=NINE,
                last_seen=NINE,
            )
        )
        await insert_plan(
            store,
            ShuttlePlan(
                warehouse_id="W1",
                community_ids=["C01", "C02"],
                vehicle_ids=["van-VAN-01"],
                shift_start="08:00",
                shift_end="16:00",
                timezone="Asia/Shanghai",
                created_at=NINE,
                updated_at=NINE,
            ),
            AuditLog(at=NINE, actor="t", action="x", object_type="shuttle_plan", object_id=""),
        )
        yield c


async def test_within_the_shift_for_a_served_community(ctx: MissionContext) -> None:
    assert await van_service_available(ctx)
    assert await van_service_available(ctx, community_id="C01", warehouse_id="W1")
    assert not await van_service_available(ctx, community_id="C07")
    assert not await van_service_available(ctx, warehouse_id="W2")


async def test_not_outside_the_shift(ctx: MissionContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    await ctx.clock.advance(7.5 * 3600)  # 16:30
    assert not await van_service_available(ctx)
    await ctx.clock.advance(16 * 3600)  # 08:30 the next day
    assert await van_service_available(ctx)


async def test_not_without_an_online_van_in_service(ctx: MissionContext) -> None:
    entry = ctx.registry.get("van-VAN-01")
    entry.status.link = LinkState.LOST
    assert not await van_service_available(ctx)
    entry.status.link = LinkState.ONLINE
    await ctx.store.set_vehicle_in_service("van-VAN-01", False)
    forget(ctx.store)
    assert not await van_service_available(ctx)
    await ctx.store.set_vehicle_in_service("van-VAN-01", True)
    forget(ctx.store)
    assert await van_service_available(ctx)


async def test_plans_are_read_again_after_a_while(ctx: MissionContext) -> None:
    assert await van_service_available(ctx)
    async with ctx.store.transaction() as s:
        for plan in (await s.exec(select(ShuttlePlan))).all():
            plan.enabled = False
    assert await van_service_available(ctx)  # the snapshot is still fresh
    assert isinstance(ctx.clock, ManualClock)
    await ctx.clock.advance(3.0)
    assert not await van_service_available(ctx)
