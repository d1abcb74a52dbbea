"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:54:30.013835
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("webhook_secret", sa.String(length=200), nullable=False),
        sa.Column("code_map", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("hotline", sa.String(length=20), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("notify_url", sa.String(length=500), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
        sa.UniqueConstraint("slug", name=op.f("uq_agencies_slug")),
    )
    op.create_table(
        "advocates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.String(length=35)), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_advocates_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advocates")),
        sa.UniqueConstraint("agency_id", "key", name=op.f("uq_advocates_agency_id_key")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_api_tokens_agency_id_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_areas_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_areas")),
        sa.UniqueConstraint("agency_id", "code", name=op.f("uq_areas_agency_id_code")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(length=16), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("cad_incident_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type_code", sa.String(length=64), nullable=False),
        sa.Column("apco_code", sa.String(length=16), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("interpreter_needed", sa.Boolean(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_incidents_agency_id_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("agency_id", "cad_incident_id", name=op.f("uq_incidents_agency_id_cad_incident_id")),
        sa.UniqueConstraint("ref", name=op.f("uq_incidents_ref")),
    )
    op.create_table(
        "unreachable_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_unreachable_contacts_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unreachable_contacts")),
        sa.UniqueConstraint("phone", "channel", name=op.f("uq_unreachable_contacts_phone_channel")),
    )
    op.create_index(op.f("ix_unreachable_contacts_agency_id"), "unreachable_contacts", ["agency_id"], unique=False)
    op.create_table(
        "advocate_areas",
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["advocate_id"], ["advocates.id"], name=op.f("fk_advocate_areas_advocate_id_advocates"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_advocate_areas_area_id_areas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("advocate_id", "area_id", name=op.f("pk_advocate_areas")),
    )
    op.create_table(
        "cad_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.String(length=128), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("event_status", sa.String(length=16), nullable=True),
        sa.Column("occurred_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("received_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_cad_events_agency_id_agencies")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_cad_events_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cad_events")),
        sa.UniqueConstraint("agency_id", "webhook_id", name=op.f("uq_cad_events_agency_id_webhook_id")),
    )
    op.create_index(op.f("ix_cad_events_incident_id"), "cad_events", ["incident_id"], unique=False)
    op.create_table(
        "cad_notices",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("delivered_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_cad_notices_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_cad_notices_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cad_notices")),
    )
    op.create_index(
        "ix_cad_notices_due", "cad_notices", ["due_at"], unique=False, postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index(op.f("ix_cad_notices_incident_id"), "cad_notices", ["incident_id"], unique=False)
    op.create_table(
        "callouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("roster", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("policy", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step_seq", sa.Integer(), nullable=False),
        sa.Column("declined", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("accepted_by", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("accepted_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_callouts_agency_id_agencies")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_callouts_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callouts")),
    )
    op.create_index(
        "ix_callouts_due",
        "callouts",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'alerting', 'cancelling')"),
    )
    op.create_index(op.f("ix_callouts_incident_id"), "callouts", ["incident_id"], unique=False)
    op.create_table(
        "escalation_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_escalation_policies_agency_id_agencies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_escalation_policies_area_id_areas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policies")),
        sa.UniqueConstraint(
            "agency_id",
            "area_id",
            "tier",
            name=op.f("uq_escalation_policies_agency_id_area_id_tier"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint("role IN ('primary', 'backup', 'supervisor')", name=op.f("ck_shifts_role")),
        sa.CheckConstraint("minutes > 0 AND minutes <= 10080", name=op.f("ck_shifts_length_in_week")),
        sa.CheckConstraint("start_minute >= 0 AND start_minute < 10080", name=op.f("ck_shifts_start_in_week")),
        sa.ForeignKeyConstraint(
            ["advocate_id"], ["advocates.id"], name=op.f("fk_shifts_advocate_id_advocates"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name=op.f("fk_shifts_area_id_areas"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shifts")),
    )
    op.create_index(op.f("ix_shifts_area_id"), "shifts", ["area_id"], unique=False)
    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("observed_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_timeline_entries_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_entries")),
    )
    op.create_index(op.f("ix_timeline_entries_incident_id"), "timeline_entries", ["incident_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("callout_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("step_seq", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("to", sa.String(length=20), nullable=False),
        sa.Column("body", sa.String(length=1600), nullable=False),
        sa.Column("link_hash", sa.String(length=64), nullable=True),
        sa.Column("link_expires_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("sent_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["callout_id"], ["callouts.id"], name=op.f("fk_notifications_callout_id_callouts")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_notifications_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_notifications_link_hash")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_notifications_provider_id")),
    )
    op.create_index(op.f("ix_notifications_callout_id"), "notifications", ["callout_id"], unique=False)
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_notifications_to", "notifications", ["to", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notifications_to", table_name="notifications")
    op.drop_index("ix_notifications_due", table_name="notifications", postgresql_where=sa.text("status = 'pending'"))
    op.drop_index(op.f("ix_notifications_callout_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_timeline_entries_incident_id"), table_name="timeline_entries")
    op.drop_table("timeline_entries")
    op.drop_index(op.f("ix_shifts_area_id"), table_name="shifts")
    op.drop_table("shifts")
    op.drop_table("escalation_policies")
    op.drop_index(op.f("ix_callouts_incident_id"), table_name="callouts")
    op.drop_index(
        "ix_callouts_due",
        table_name="callouts",
        postgresql_where=sa.text("status IN ('pending', 'alerting', 'cancelling')"),
    )
    op.drop_table("callouts")
    op.drop_index(op.f("ix_cad_notices_incident_id"), table_name="cad_notices")
    op.drop_index("ix_cad_notices_due", table_name="cad_notices", postgresql_where=sa.text("status = 'pending'"))
    op.drop_table("cad_notices")
    op.drop_index(op.f("ix_cad_events_incident_id"), table_name="cad_events")
    op.drop_table("cad_events")
    op.drop_table("advocate_areas")
    op.drop_index(op.f("ix_unreachable_contacts_agency_id"), table_name="unreachable_contacts")
    op.drop_table("unreachable_contacts")
    op.drop_table("incidents")
    op.drop_table("areas")
    op.drop_table("api_tokens")
    op.drop_table("advocates")
    op.drop_table("agencies")
