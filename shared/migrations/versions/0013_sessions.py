"""dashboard sessions; tokens expire and can be revoked; the audit names the token's holder and where from

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("expires_at", TIMESTAMP, nullable=True))
    op.add_column("api_tokens", sa.Column("revoked_at", TIMESTAMP, nullable=True))
    # Tokens issued before expiry existed get a new token's life from now: none stops working at the upgrade.
    op.execute("UPDATE api_tokens SET expires_at = now() + interval '365 days'")
    op.alter_column("api_tokens", "expires_at", nullable=False)
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(length=64), primary_key=True),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("seen_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_token_id", "dashboard_sessions", ["token_id"])
    # Older records keep these empty and hash as they did (shared/audit.py digest).
    op.add_column("audit_log", sa.Column("actor_label", sa.String(length=200), nullable=True))
    op.add_column("audit_log", sa.Column("client", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("user_agent", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_log", "user_agent")
    op.drop_column("audit_log", "client")
    op.drop_column("audit_log", "actor_label")
    op.drop_table("dashboard_sessions")
    op.drop_column("api_tokens", "revoked_at")
    op.drop_column("api_tokens", "expires_at")
