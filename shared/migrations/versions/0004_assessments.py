"""assessments: danger screens as records, with rule versions and overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 02:38:01.837028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("instrument", sa.String(length=64), nullable=False),
        sa.Column("instrument_version", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("rule_version", sa.String(length=16), nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("officer_belief", sa.Boolean(), nullable=True),
        sa.Column("level", sa.String(length=64), nullable=True),
        sa.Column("screened_in", sa.Boolean(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("override_screened_in", sa.Boolean(), nullable=True),
        sa.Column("override_by", sa.String(length=16), nullable=True),
        sa.Column("override_name", sa.String(length=200), nullable=True),
        sa.Column("override_reason", sa.String(length=1000), nullable=True),
        sa.Column("overridden_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_assessments_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("incident_id", "fingerprint", name=op.f("uq_assessments_incident_id_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("assessments")
