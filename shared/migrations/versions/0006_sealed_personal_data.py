"""personal data sealed at rest: incidents' details, assessments' answers and overrides' words

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 03:20:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.crypto import Sealer
from shared.settings import Settings

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_COLUMNS = (("incidents", "details"), ("assessments", "answers"))
TEXT_COLUMNS = (("assessments", "override_name"), ("assessments", "override_reason"))


def upgrade() -> None:
    # Rows written before this revision hold plaintext: they are sealed here, under the environment's data key.
    sealer = Sealer(Settings().data_keys)
    connection = op.get_bind()
    for table, column in (*JSON_COLUMNS, *TEXT_COLUMNS):
        op.alter_column(table, column, type_=sa.Text(), postgresql_using=f"{column}::text")
        select = sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608 - constants
        for row_id, plain in connection.execute(select).fetchall():
            value = json.loads(plain) if (table, column) in JSON_COLUMNS else plain
            connection.execute(
                sa.text(f"UPDATE {table} SET {column} = :sealed WHERE id = :id"),  # noqa: S608 - constants
                {"sealed": sealer.seal(value), "id": row_id},
            )


def downgrade() -> None:
    raise NotImplementedError("personal data stays sealed: restore a backup to go back")
