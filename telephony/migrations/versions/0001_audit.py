"""Audit trail: calls, call_legs, append-only audit_events.

Revision ID: 0001_audit
Revises:
Create Date: 2025-01-01

Values are spelled out rather than imported so this revision keeps meaning what it meant when
the models move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_audit"
down_revision = None
branch_labels = None
depends_on = None

OUTCOMES = (
    "answered",
    "abandoned-in-ivr",
    "abandoned-in-queue",
    "overflowed-then-answered",
    "failed",
)
ROLES = ("caller", "operator", "callback", "transfer-target", "other")

_PG_GUARD = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
END
$$
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
)
_SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
    f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE")
)


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("linkedid", sa.String(150), primary_key=True),
        sa.Column("caller", sa.String()),
        sa.Column("location_source", sa.String()),
        sa.Column("location_lat", sa.Float()),
        sa.Column("location_lon", sa.Float()),
        sa.Column("location_radius_m", sa.Float()),
        sa.Column("cell_id", sa.String()),
        sa.Column("regency_code", sa.String()),
        sa.Column("emergency_type", sa.String()),
        sa.Column("ivr_language", sa.String()),
        sa.Column("arrived_at", _when(), nullable=False),
        sa.Column("ivr_done_at", _when()),
        sa.Column("queued_at", _when()),
        sa.Column("first_ring_at", _when()),
        sa.Column("answered_at", _when()),
        sa.Column("ended_at", _when()),
        sa.Column("recording_started_at", _when()),
        sa.Column("queue", sa.String()),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("overflowed", sa.Boolean(), nullable=False),
        sa.Column("transferred", sa.Boolean(), nullable=False),
        sa.Column("is_callback", sa.Boolean(), nullable=False),
        sa.Column("outcome", _enum(OUTCOMES, "call_outcome")),
        sa.Column("answering_operator", sa.String()),
        sa.Column("answer_seconds", sa.Float()),
    )
    op.create_index("ix_calls_arrived_at", "calls", ["arrived_at"])
    op.create_index("ix_calls_regency_code", "calls", ["regency_code"])
    op.create_table(
        "call_legs",
        sa.Column("uniqueid", sa.String(150), primary_key=True),
        sa.Column("linkedid", sa.String(150), nullable=False),
        sa.Column("channel", sa.String()),
        sa.Column("role", _enum(ROLES, "leg_role"), nullable=False),
        sa.Column("endpoint", sa.String()),
        sa.Column("started_at", _when()),
        sa.Column("answered_at", _when()),
        sa.Column("ended_at", _when()),
        sa.Column("hangup_cause", sa.Integer()),
        sa.Column("hangup_cause_text", sa.String()),
        sa.Column("dial_status", sa.String()),
        sa.Column("backfilled", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_call_legs_linkedid", "call_legs", ["linkedid"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("time", _when(), nullable=False),
        sa.Column("linkedid", sa.String(150), nullable=False),
        sa.Column("uniqueid", sa.String(150), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_key", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("uniqueid", "event_key", name="uq_audit_events_idempotency"),
    )
    op.create_index("ix_audit_events_linkedid", "audit_events", ["linkedid"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_GUARD)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    elif dialect == "sqlite":
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("call_legs")
    op.drop_table("calls")
