"""Location lookup data: the OpenCelliD cell database and the operator's cell routing table.

Revision ID: 0002_location
Revises: 0001_audit
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_location"
down_revision = "0001_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "location_cells",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("radio", sa.String(8), nullable=False),
        sa.Column("mcc", sa.Integer, nullable=False),
        sa.Column("mnc", sa.Integer, nullable=False),
        sa.Column("area", sa.BigInteger, nullable=False),
        sa.Column("cell", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.Integer, nullable=True),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("range_m", sa.Integer, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("changeable", sa.Boolean, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("average_signal", sa.Integer, nullable=True),
    )
    op.create_index("ix_location_cells_key", "location_cells", ["mcc", "mnc", "area", "cell"])
    op.create_table(
        "location_cell_routes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mcc", sa.Integer, nullable=False),
        sa.Column("mnc", sa.Integer, nullable=False),
        sa.Column("area", sa.BigInteger, nullable=False),
        sa.Column("cell", sa.BigInteger, nullable=True),
        sa.Column("regency_code", sa.String(5), nullable=False),
    )
    op.create_index(
        "ix_location_cell_routes_key", "location_cell_routes", ["mcc", "mnc", "area", "cell"]
    )


def downgrade() -> None:
    op.drop_table("location_cell_routes")
    op.drop_table("location_cells")
