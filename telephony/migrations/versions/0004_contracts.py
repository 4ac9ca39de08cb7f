"""Length contracts on the projection columns that take caller-supplied text, and the flag
of a call that carried injected text.

Revision ID: 0004_contracts
Revises: 0003_operators
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_contracts"
down_revision = "0003_operators"
branch_labels = None
depends_on = None

# The lengths telephony.audit.models declares; the writer truncates to them (with a marker).
LENGTHS = {
    "calls": {"caller": 80, "location_source": 32, "cell_id": 64, "regency_code": 16,
              "emergency_type": 32, "ivr_language": 16, "queue": 80,
              "answering_operator": 150},
    "call_legs": {"channel": 150, "endpoint": 150, "hangup_cause_text": 64, "dial_status": 32},
}  # fmt: skip


def upgrade() -> None:
    op.add_column(
        "calls", sa.Column("injected", sa.Boolean, nullable=False, server_default=sa.false())
    )
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps any length; the contract is the writer's
    for table, columns in LENGTHS.items():
        for name, length in columns.items():
            # Rows written before the contract are cut the same way the writer cuts.
            op.execute(
                f"UPDATE {table} SET {name} = left({name}, {length - 1}) || '\u2026' "
                f"WHERE length({name}) > {length}"
            )
            op.alter_column(table, name, type_=sa.String(length), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in LENGTHS.items():
            for name in columns:
                op.alter_column(table, name, type_=sa.String(), existing_nullable=True)
    op.drop_column("calls", "injected")
