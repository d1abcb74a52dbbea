"""rotations, calendars and overrides: the schedule as on-call tools keep it; advocates' calendar feeds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:28:38.967883
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("ics", sa.Text(), nullable=False),
        sa.Column("imported_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('primary', 'backup', 'supervisor')", name=op.f("ck_calendars_role")),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name=op.f("fk_calendars_area_id_areas"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint("area_id", "name", name=op.f("uq_calendars_area_id_name")),
    )
    op.create_index(op.f("ix_calendars_area_id"), "calendars", ["area_id"], unique=False)
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("ends_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('primary', 'backup', 'supervisor')", name=op.f("ck_overrides_role")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_overrides_range")),
        sa.ForeignKeyConstraint(
            ["advocate_id"], ["advocates.id"], name=op.f("fk_overrides_advocate_id_advocates"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name=op.f("fk_overrides_area_id_areas"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["advocates.id"], name=op.f("fk_overrides_replaces_id_advocates"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overrides")),
    )
    op.create_index(op.f("ix_overrides_area_id"), "overrides", ["area_id"], unique=False)
    op.create_table(
        "rotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("handoff", sa.DateTime(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("participants", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.CheckConstraint("role IN ('primary', 'backup', 'supervisor')", name=op.f("ck_rotations_role")),
        sa.CheckConstraint("unit IN ('hours', 'days', 'weeks')", name=op.f("ck_rotations_unit")),
        sa.CheckConstraint("length > 0", name=op.f("ck_rotations_length")),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name=op.f("fk_rotations_area_id_areas"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rotations")),
        sa.UniqueConstraint("area_id", "name", name=op.f("uq_rotations_area_id_name")),
    )
    op.create_index(op.f("ix_rotations_area_id"), "rotations", ["area_id"], unique=False)
    op.add_column("advocates", sa.Column("feed_token_sha256", sa.String(length=64), nullable=True))
    op.create_unique_constraint(op.f("uq_advocates_feed_token_sha256"), "advocates", ["feed_token_sha256"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_advocates_feed_token_sha256"), "advocates", type_="unique")
    op.drop_column("advocates", "feed_token_sha256")
    op.drop_index(op.f("ix_rotations_area_id"), table_name="rotations")
    op.drop_table("rotations")
    op.drop_index(op.f("ix_overrides_area_id"), table_name="overrides")
    op.drop_table("overrides")
    op.drop_index(op.f("ix_calendars_area_id"), table_name="calendars")
    op.drop_table("calendars")
