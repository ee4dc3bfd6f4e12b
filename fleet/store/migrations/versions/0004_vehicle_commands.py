"""Operators' commands to vehicles and their life cycle.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vehicle_command",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("vehicle_kind", sa.String(length=16), nullable=False),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("mission_id", sa.String(length=36), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=1000), nullable=False),
        sa.Column("vehicle_result", sa.String(length=64), nullable=True),
        sa.Column("vehicle_words", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", "vehicle_id", name="uq_vehicle_command_key"),
    )
    with op.batch_alter_table("vehicle_command", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vehicle_command_accepted_at"), ["accepted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_vehicle_command_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_vehicle_command_mission_id"), ["mission_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_vehicle_command_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_vehicle_command_vehicle_id"), ["vehicle_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vehicle_command", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicle_command_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_vehicle_command_state"))
        batch_op.drop_index(batch_op.f("ix_vehicle_command_mission_id"))
        batch_op.drop_index(batch_op.f("ix_vehicle_command_batch_id"))
        batch_op.drop_index(batch_op.f("ix_vehicle_command_accepted_at"))
    op.drop_table("vehicle_command")
