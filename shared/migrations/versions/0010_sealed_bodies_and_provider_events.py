"""texts' bodies sealed (no working link at rest), and Twilio's requests applied once

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.crypto import Sealer
from shared.settings import Settings

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Bodies written before this revision hold their link in clear: sealed here, under the environment's data key.
    sealer = Sealer(Settings().data_keys)
    connection = op.get_bind()
    op.alter_column("notifications", "body", type_=sa.Text())
    for row_id, plain in connection.execute(sa.text("SELECT id, body FROM notifications")).fetchall():
        connection.execute(
            sa.text("UPDATE notifications SET body = :sealed WHERE id = :id"),
            {"sealed": sealer.seal(plain), "id": row_id},
        )
    op.create_table(
        "provider_events",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("received_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("media_type", sa.String(length=64), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_provider_events")),
    )


def downgrade() -> None:
    raise NotImplementedError("texts stay sealed: restore a backup to go back")
