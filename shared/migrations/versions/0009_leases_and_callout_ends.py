"""leases held by live workers, retries bounded by the step, and callouts ended by request

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)
DUE_CALLOUTS = (
    "status IN ('pending', 'alerting') OR (end_requested_at IS NOT NULL AND status IN ('exhausted', 'accepted'))"
)


def upgrade() -> None:
    for table in ("callouts", "notifications", "cad_notices"):
        op.add_column(table, sa.Column("leased_by", sa.Integer(), nullable=True))
        op.add_column(table, sa.Column("leased_at", TIMESTAMP, nullable=True))
        # Each worker looks for dead workers' leases every second: only rows in flight are indexed.
        op.create_index(
            f"ix_{table}_leased_by", table, ["leased_by"], postgresql_where=sa.text("leased_by IS NOT NULL")
        )
    op.add_column("callouts", sa.Column("end_requested_at", TIMESTAMP, nullable=True))
    op.add_column("notifications", sa.Column("first_attempt_at", TIMESTAMP, nullable=True))
    op.add_column("notifications", sa.Column("retry_until", TIMESTAMP, nullable=True))
    # Intake no longer writes a callout's status: an end it asked for is a request the worker carries out.
    op.execute(
        "UPDATE callouts SET end_requested_at = updated_at, status = 'alerting', due_at = updated_at"
        " WHERE status = 'cancelling'"
    )
    op.execute("UPDATE notifications SET first_attempt_at = coalesce(sent_at, started_at) WHERE attempts > 0")
    op.drop_index("ix_callouts_due", table_name="callouts")
    op.create_index("ix_callouts_due", "callouts", ["due_at"], postgresql_where=sa.text(DUE_CALLOUTS))
    # Each worker's number, held as a session lock while it lives (services/alerts/leases.py).
    op.execute("CREATE SEQUENCE worker_numbers AS integer MAXVALUE 2147483647 CYCLE")


def downgrade() -> None:
    op.execute("DROP SEQUENCE worker_numbers")
    op.drop_index("ix_callouts_due", table_name="callouts")
    op.create_index(
        "ix_callouts_due",
        "callouts",
        ["due_at"],
        postgresql_where=sa.text("status IN ('pending', 'alerting', 'cancelling')"),
    )
    op.execute(
        "UPDATE callouts SET status = 'cancelling' WHERE end_requested_at IS NOT NULL"
        " AND status IN ('pending', 'alerting', 'exhausted', 'accepted')"
    )
    op.drop_column("notifications", "retry_until")
    op.drop_column("notifications", "first_attempt_at")
    op.drop_column("callouts", "end_requested_at")
    for table in ("callouts", "notifications", "cad_notices"):
        op.drop_index(f"ix_{table}_leased_by", table_name=table)
        op.drop_column(table, "leased_at")
        op.drop_column(table, "leased_by")
