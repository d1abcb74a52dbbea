"""the watch on every CAD feed: heartbeats, each agency's silence window and IT contact, silences told

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column("agencies", sa.Column("feed_silence_minutes", sa.Integer(), nullable=True))
    op.add_column("agencies", sa.Column("it_contact", sa.String(length=20), nullable=True))
    op.create_index("ix_cad_events_agency_received", "cad_events", ["agency_id", "received_at"])
    op.create_table(
        "cad_heartbeats",
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "feed_silences",
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("since", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("told_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_silences")
    op.drop_table("cad_heartbeats")
    op.drop_index("ix_cad_events_agency_received", "cad_events")
    op.drop_column("agencies", "it_contact")
    op.drop_column("agencies", "feed_silence_minutes")
