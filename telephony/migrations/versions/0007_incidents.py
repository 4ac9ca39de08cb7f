"""Incidents, their calls, shares between regencies, timeline, agency hand-offs, the webhook
outbox and agency users (issue 16).

Revision ID: 0007_incidents
Revises: 0005_console (the integrator re-chains it after 0006_aml)
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007_incidents"
down_revision = "0006_aml"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("regency_code", sa.String(16), nullable=False, index=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("subtype", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("number", sa.String(80), nullable=False),
        sa.Column("caller_lat", sa.Float),
        sa.Column("caller_lon", sa.Float),
        sa.Column("caller_radius_m", sa.Float),
        sa.Column("caller_source", sa.String(32), nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("narrative", sa.Text, nullable=False),
        sa.Column("people", sa.Text, nullable=False),
        _time("created_at", False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _time("updated_at", False),
        _time("closed_at"),
    )
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"])
    op.create_table(
        "incident_calls",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("linkedid", sa.String(150), primary_key=True, index=True),
        _time("linked_at", False),
        sa.Column("linked_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "incident_shares",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("regency_code", sa.String(16), primary_key=True, index=True),
        _time("shared_at", False),
        sa.Column("shared_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False,
                  index=True),
        _time("at", False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("regency_code", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
    )
    op.create_table(
        "incident_handoffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False,
                  index=True),
        sa.Column("agency_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        _time("dispatched_at", False),
        sa.Column("dispatched_by", sa.String(64), nullable=False),
        _time("delivered_at"),
        _time("acknowledged_at"),
        _time("en_route_at"),
        _time("on_scene_at"),
        _time("closed_at"),
        _time("escalated_at"),
        sa.UniqueConstraint("incident_id", "agency_id"),
    )
    op.create_table(
        "incident_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("handoff_id", sa.Integer, sa.ForeignKey("incident_handoffs.id"),
                  nullable=False, index=True),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("body", sa.Text, nullable=False),
        _time("created_at", False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _time("next_attempt_at", False),
        _time("delivered_at"),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_outbox_next_attempt_at", "incident_outbox", ["next_attempt_at"])
    op.create_index("ix_incident_outbox_delivered_at", "incident_outbox", ["delivered_at"])
    op.create_table(
        "agency_users",
        sa.Column("name", sa.String(64),
                  sa.ForeignKey("console_users.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("agency_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("agency_users", "incident_outbox", "incident_handoffs", "incident_events",
                  "incident_shares", "incident_calls", "incidents"):
        op.drop_table(table)
