"""cover requests: an advocate asks for cover, the eligible others are texted, the first to take it is put on call

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cover_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("advocate_id", sa.Integer(), sa.ForeignKey("advocates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("asked_at", TIMESTAMP, nullable=False),
        sa.Column("asked_via", sa.String(length=16), nullable=False),
        sa.Column("filled_by", sa.Integer(), sa.ForeignKey("advocates.id", ondelete="SET NULL"), nullable=True),
        sa.Column("filled_at", TIMESTAMP, nullable=True),
        sa.Column("override_id", sa.Integer(), sa.ForeignKey("overrides.id", ondelete="SET NULL"), nullable=True),
        sa.Column("offers", postgresql.JSONB(), nullable=False),
        sa.Column("offers_due_at", TIMESTAMP, nullable=True),
        sa.Column("outcome_due_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_cover_requests_agency_ends", "cover_requests", ["agency_id", "ends_at"])
    op.create_index(
        "ix_cover_requests_due",
        "cover_requests",
        ["offers_due_at", "outcome_due_at"],
        postgresql_where=sa.text("offers_due_at IS NOT NULL OR outcome_due_at IS NOT NULL"),
    )
    op.create_table(
        "cover_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("advocate_id", sa.Integer(), sa.ForeignKey("advocates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_as", sa.String(length=8), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("token_hash", name=op.f("uq_cover_links_token_hash")),
    )
    op.create_index("ix_cover_links_advocate_id", "cover_links", ["advocate_id"])


def downgrade() -> None:
    op.drop_table("cover_links")
    op.drop_table("cover_requests")
