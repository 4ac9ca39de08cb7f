"""Major-incident messages (issue 16).

Revision ID: 0008_messages
Revises: 0005_console
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_messages"
down_revision = "0007_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "major_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("text_id", sa.Text, nullable=False),
        sa.Column("text_en", sa.Text, nullable=False),
        sa.Column("regencies", sa.String(400), nullable=False),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("radius_m", sa.Float, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired_by", sa.String(64), nullable=True),
        sa.Column("sound", sa.String(500), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_major_messages_expires_at", "major_messages", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_major_messages_expires_at", "major_messages")
    op.drop_table("major_messages")
