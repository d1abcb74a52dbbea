"""test texts and calls to advocates' phones; supervisors told once of a phone that cannot be reached

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_tests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("advocate_id", sa.Integer(), sa.ForeignKey("advocates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=True),
        sa.Column("text_id", sa.Uuid(), nullable=True),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("text_result", sa.String(length=100), nullable=True),
        sa.Column("call_result", sa.String(length=100), nullable=True),
        sa.Column("text_at", TIMESTAMP, nullable=True),
        sa.Column("call_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_contact_tests_agency_id", "contact_tests", ["agency_id"])
    op.create_index("ix_contact_tests_advocate_id", "contact_tests", ["advocate_id"])
    op.create_table(
        "staff_notices",
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_notices")
    op.drop_table("contact_tests")
