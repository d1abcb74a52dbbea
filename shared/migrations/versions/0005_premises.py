"""premises: flags kept by an address's key, incidents' premise keys and what was known there

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:41:38.865150
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "premise_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("premise_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("expires_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_premise_flags_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_premise_flags")),
    )
    op.create_index("ix_premise_flags_key", "premise_flags", ["agency_id", "premise_key"], unique=False)
    op.add_column("incidents", sa.Column("premise_key", sa.String(length=64), nullable=True))
    op.add_column("incidents", sa.Column("premise", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index("ix_incidents_premise", "incidents", ["agency_id", "premise_key", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incidents_premise", table_name="incidents")
    op.drop_column("incidents", "premise")
    op.drop_column("incidents", "premise_key")
    op.drop_index("ix_premise_flags_key", table_name="premise_flags")
    op.drop_table("premise_flags")
