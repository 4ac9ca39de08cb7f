"""Operator presence (current state and its history) and callback items.

Revision ID: 0003_operators
Revises: 0002_location
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_operators"
down_revision = "0002_location"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operator_presence",
        sa.Column("operator_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pause_reason", sa.String(32), nullable=True),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_table(
        "operator_presence_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("operator_id", sa.String(64), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pause_reason", sa.String(32), nullable=True),
        sa.Column("at", _WHEN, nullable=False),
    )
    op.create_table(
        "callback_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("caller", sa.String(32), nullable=False, index=True),
        sa.Column("status", sa.String(8), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("emergency_type", sa.String(16)),
        sa.Column("regency_code", sa.String(5)),
        sa.Column("location_source", sa.String(32)),
        sa.Column("location_lat", sa.Float),
        sa.Column("location_lon", sa.Float),
        sa.Column("location_radius_m", sa.Float),
        sa.Column("cell_id", sa.String(64)),
        sa.Column("waited_s", sa.Float, nullable=False),
        sa.Column("first_linkedid", sa.String(150), nullable=False),
        sa.Column("last_linkedid", sa.String(150), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("taken_by", sa.String(64)),
        sa.Column("taken_at", _WHEN),
        sa.Column("done_at", _WHEN),
    )
    op.create_table(
        "callback_attempts",
        sa.Column("linkedid", sa.String(150), primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("callback_items.id"), index=True),
        sa.Column("abandoned_at", _WHEN, nullable=False),
        sa.Column("waited_s", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("callback_attempts")
    op.drop_table("callback_items")
    op.drop_table("operator_presence_changes")
    op.drop_table("operator_presence")
