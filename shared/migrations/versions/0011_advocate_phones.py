"""advocates' phones proven by a code texted back, and their PINs; texts that belong to no callout

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "advocate_phones",
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("verified_at", TIMESTAMP, nullable=True),
        sa.Column("check_due_at", TIMESTAMP, nullable=True),
        sa.Column("code_hmac", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", TIMESTAMP, nullable=True),
        sa.Column("pin_hash", sa.String(length=200), nullable=True),
        sa.Column("pin_token_hash", sa.String(length=64), nullable=True),
        sa.Column("pin_token_expires_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["advocate_id"], ["advocates.id"], name=op.f("fk_advocate_phones_advocate_id_advocates"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_advocate_phones_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("advocate_id", name=op.f("pk_advocate_phones")),
    )
    op.create_index(op.f("ix_advocate_phones_agency_id"), "advocate_phones", ["agency_id"])
    op.create_index(op.f("ix_advocate_phones_phone"), "advocate_phones", ["phone"])
    # Advocates already in the directory are asked to prove their phones too.
    op.execute(
        "INSERT INTO advocate_phones (advocate_id, agency_id, phone, check_due_at)"
        " SELECT id, agency_id, phone, now() FROM advocates WHERE active"
    )
    # Verification texts and other texts that belong to no callout.
    op.alter_column("notifications", "callout_id", nullable=True)
    op.alter_column("notifications", "incident_id", nullable=True)
    op.add_column("notifications", sa.Column("viewer_hash", sa.String(length=64), nullable=True))
    op.add_column("notifications", sa.Column("viewer_expires_at", TIMESTAMP, nullable=True))
    op.add_column("notifications", sa.Column("pin_failures", sa.Integer(), server_default="0", nullable=False))
    op.add_column("notifications", sa.Column("link_locked_at", TIMESTAMP, nullable=True))


def downgrade() -> None:
    for column in ("link_locked_at", "pin_failures", "viewer_expires_at", "viewer_hash"):
        op.drop_column("notifications", column)
    op.execute("DELETE FROM notifications WHERE callout_id IS NULL")
    op.alter_column("notifications", "incident_id", nullable=False)
    op.alter_column("notifications", "callout_id", nullable=False)
    op.drop_table("advocate_phones")
