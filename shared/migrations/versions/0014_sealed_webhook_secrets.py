"""agencies' webhook secrets sealed at rest, like personal data

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.crypto import Sealer
from shared.settings import Settings

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Secrets written before this revision are in clear: sealed here, under the environment's data key.
    sealer = Sealer(Settings().data_keys)
    connection = op.get_bind()
    op.alter_column("agencies", "webhook_secret", type_=sa.Text())
    for row_id, plain in connection.execute(sa.text("SELECT id, webhook_secret FROM agencies")).fetchall():
        connection.execute(
            sa.text("UPDATE agencies SET webhook_secret = :sealed WHERE id = :id"),
            {"sealed": sealer.seal(plain), "id": row_id},
        )


def downgrade() -> None:
    raise NotImplementedError("webhook secrets stay sealed: restore a backup to go back")
