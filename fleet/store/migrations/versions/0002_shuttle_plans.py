"""Shuttle plans (vans, communities, shift hours) and the link from van trips to their plan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 05:29:54.235598
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shuttle_plan",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("warehouse_id", sa.String(length=64), nullable=False),
        sa.Column("community_ids", sa.JSON(), nullable=False),
        sa.Column("vehicle_ids", sa.JSON(), nullable=False),
        sa.Column("shift_start", sa.String(length=5), nullable=False),
        sa.Column("shift_end", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["warehouse_id"], ["site.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shuttle_plan", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shuttle_plan_warehouse_id"), ["warehouse_id"], unique=False
        )

    op.create_table(
        "shuttle_trip",
        sa.Column("mission_id", sa.String(length=36), nullable=False),
        sa.Column("shuttle_plan_id", sa.String(length=36), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("shift_day", sa.Date(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mission_id"], ["mission.id"]),
        sa.ForeignKeyConstraint(["shuttle_plan_id"], ["shuttle_plan.id"]),
        sa.PrimaryKeyConstraint("mission_id"),
    )
    with op.batch_alter_table("shuttle_trip", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shuttle_trip_shuttle_plan_id"), ["shuttle_plan_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_shuttle_trip_vehicle_id"), ["vehicle_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("shuttle_trip", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shuttle_trip_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_shuttle_trip_shuttle_plan_id"))
    op.drop_table("shuttle_trip")
    with op.batch_alter_table("shuttle_plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shuttle_plan_warehouse_id"))
    op.drop_table("shuttle_plan")
