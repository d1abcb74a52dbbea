"""each incident's handoff facts, kept by the database as stages are recorded; incidents indexed by time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:00:00

The reports read one row per call (`incident_handoffs`) instead of every timeline row of the period. Triggers
keep it: a row is made with each incident, and each statement that inserts timeline rows folds them in — the
first row of a stage by timeline id (so a transaction committing after a later one still counts as first), every
escalation and decline, whether a triage screened. The timeline is append-only, so inserts are all there is.

The update only touches a row when something changes, so the thousands of CAD updates an incident may get (each
a `cad_received` and a `triaged`) take no lock on it. Existing incidents are filled in from their timelines while
both tables are locked against writes (a few seconds for a million timeline rows). Each interval is kept in whole
microseconds too, a column PostgreSQL computes as the row is written, so that a year of them sorts as integers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = postgresql.TIMESTAMP(timezone=True)
# column prefix -> the stage whose first row it keeps
FIRSTS = {
    "received": "cad_received",
    "first_alert": "notification_sent",
    "acceptance": "acknowledged",
    "on_scene": "on_scene",
    "survivor_contact": "survivor_contacted",
}
STAGES = (*FIRSTS.values(), "escalated", "declined", "triaged")


def first(expression: str, stage: str) -> str:
    """`expression` of the stage's first row, by timeline id."""
    return f"(array_agg({expression} ORDER BY t.id) FILTER (WHERE t.stage = '{stage}'))[1]"


# JSON as Python's bool() reads it (the figures' definition: `bool(data["screened_in"])`).
TRUTHY = """CASE jsonb_typeof(t.data -> 'screened_in')
    WHEN 'boolean' THEN t.data -> 'screened_in' = 'true'
    WHEN 'number' THEN t.data -> 'screened_in' <> '0'
    WHEN 'string' THEN t.data -> 'screened_in' <> '""'
    WHEN 'array' THEN t.data -> 'screened_in' <> '[]'
    WHEN 'object' THEN t.data -> 'screened_in' <> '{}'
    ELSE false END"""
# The advocate who accepted, as a directory id: a whole JSON number, else none. Never an error (a trigger that
# raised would refuse the stage itself): the cast is reached only for a number.
ADVOCATE_ID = """CASE WHEN jsonb_typeof(t.data -> 'advocate_id') = 'number' THEN
        CASE WHEN (t.data -> 'advocate_id')::numeric = trunc((t.data -> 'advocate_id')::numeric)
                AND (t.data -> 'advocate_id')::numeric BETWEEN 1 AND 2147483647
            THEN (t.data -> 'advocate_id')::numeric::integer END
    END"""
HOTLINE = """t.data -> 'role' = '"hotline"'"""  # `data.get("role") == "hotline"`
# What a set of timeline rows `t` says, per incident.
FACTS = ",\n".join(
    [
        *(f"min(t.id) FILTER (WHERE t.stage = '{stage}') AS {name}_entry" for name, stage in FIRSTS.items()),
        *(f"{first('t.observed_at', stage)} AS {name}_at" for name, stage in FIRSTS.items()),
        f"coalesce({first(HOTLINE, 'acknowledged')}, false) AS accepted_by_hotline",
        f"{first(ADVOCATE_ID, 'acknowledged')} AS accepted_advocate_id",
        "count(*) FILTER (WHERE t.stage = 'escalated') AS escalations",
        "count(*) FILTER (WHERE t.stage = 'declined') AS declines",
        "coalesce(bool_or(coalesce(jsonb_typeof(t.data -> 'screened_in'), 'null') <> 'null')"
        " FILTER (WHERE t.stage = 'triaged'), false) AS screened",
        f"coalesce(bool_or({TRUTHY}) FILTER (WHERE t.stage = 'triaged'), false) AS screened_in",
    ]
)
STAGES_SQL = ", ".join(f"'{stage}'" for stage in STAGES)


def earlier(name: str) -> str:
    """Whether the new rows hold a row of this stage before any already counted."""
    return f"(s.{name}_entry IS NOT NULL AND (h.{name}_entry IS NULL OR s.{name}_entry < h.{name}_entry))"


SETS = ",\n        ".join(
    [
        *(
            f"{name}_{part} = CASE WHEN {earlier(name)} THEN s.{name}_{part} ELSE h.{name}_{part} END"
            for name in FIRSTS
            for part in ("entry", "at")
        ),
        *(
            f"{column} = CASE WHEN {earlier('acceptance')} THEN s.{column} ELSE h.{column} END"
            for column in ("accepted_by_hotline", "accepted_advocate_id")
        ),
        "escalations = h.escalations + s.escalations",
        "declines = h.declines + s.declines",
        "screened = h.screened OR s.screened",
        "screened_in = h.screened_in OR s.screened_in",
    ]
)
CHANGED = " OR ".join(
    [
        *(earlier(name) for name in FIRSTS),
        "s.escalations > 0",
        "s.declines > 0",
        "(s.screened AND NOT h.screened)",
        "(s.screened_in AND NOT h.screened_in)",
    ]
)

RECORD_FUNCTION = f"""
CREATE FUNCTION incident_handoffs_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incident_handoffs AS h SET
        {SETS}
    FROM (
        SELECT t.incident_id, {FACTS}
        FROM new_entries AS t
        WHERE t.stage IN ({STAGES_SQL})
        GROUP BY t.incident_id
    ) AS s
    WHERE h.incident_id = s.incident_id AND ({CHANGED});
    RETURN NULL;
END
$$
"""  # noqa: S608 - names and stages from the constants above

START_FUNCTION = """
CREATE FUNCTION incident_handoffs_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_handoffs (incident_id, received_at) VALUES (NEW.id, NEW.created_at);
    RETURN NULL;
END
$$
"""

COLUMNS = [
    *(f"{name}_{part}" for name in FIRSTS for part in ("entry", "at")),
    "accepted_by_hotline",
    "accepted_advocate_id",
    "escalations",
    "declines",
    "screened",
    "screened_in",
]
BACKFILL = f"""
INSERT INTO incident_handoffs (incident_id, {", ".join(COLUMNS)})
SELECT i.id, {", ".join("coalesce(s.received_at, i.created_at)" if c == "received_at" else f"s.{c}" for c in COLUMNS)}
FROM incidents AS i
CROSS JOIN LATERAL (
    SELECT {FACTS}
    FROM timeline_entries AS t
    WHERE t.incident_id = i.id AND t.stage IN ({STAGES_SQL})
) AS s
"""  # noqa: S608 - names and stages from the constants above


def microseconds_after(column: str) -> sa.Computed:
    """An interval from the call's receipt, in whole microseconds (exact: EXTRACT gives a numeric)."""
    return sa.Computed(f"((EXTRACT(epoch FROM ({column} - received_at)) * (1000000)::numeric))::bigint", persisted=True)


def upgrade() -> None:
    # Writers lock an incident before its timeline: the same order, so that none of them waits on us in a circle.
    op.execute("LOCK TABLE incidents, timeline_entries IN SHARE ROW EXCLUSIVE MODE")
    op.create_index(op.f("ix_incidents_created_at"), "incidents", ["created_at"])
    op.create_table(
        "incident_handoffs",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("received_entry", sa.Integer(), nullable=True),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("first_alert_entry", sa.Integer(), nullable=True),
        sa.Column("first_alert_at", TIMESTAMP, nullable=True),
        sa.Column("first_alert_us", sa.BigInteger(), microseconds_after("first_alert_at"), nullable=True),
        sa.Column("acceptance_entry", sa.Integer(), nullable=True),
        sa.Column("acceptance_at", TIMESTAMP, nullable=True),
        sa.Column("acceptance_us", sa.BigInteger(), microseconds_after("acceptance_at"), nullable=True),
        sa.Column("accepted_by_hotline", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("accepted_advocate_id", sa.Integer(), nullable=True),
        sa.Column("on_scene_entry", sa.Integer(), nullable=True),
        sa.Column("on_scene_at", TIMESTAMP, nullable=True),
        sa.Column("on_scene_us", sa.BigInteger(), microseconds_after("on_scene_at"), nullable=True),
        sa.Column("survivor_contact_entry", sa.Integer(), nullable=True),
        sa.Column("survivor_contact_at", TIMESTAMP, nullable=True),
        sa.Column("survivor_contact_us", sa.BigInteger(), microseconds_after("survivor_contact_at"), nullable=True),
        sa.Column("escalations", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("declines", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("screened", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("screened_in", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_handoffs_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_handoffs")),
    )
    op.execute(BACKFILL)
    op.execute(START_FUNCTION)
    op.execute(RECORD_FUNCTION)
    op.execute(
        "CREATE TRIGGER incident_handoffs_start AFTER INSERT ON incidents"
        " FOR EACH ROW EXECUTE FUNCTION incident_handoffs_start()"
    )
    op.execute(
        "CREATE TRIGGER incident_handoffs_record AFTER INSERT ON timeline_entries"
        " REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION incident_handoffs_record()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER incident_handoffs_record ON timeline_entries")
    op.execute("DROP TRIGGER incident_handoffs_start ON incidents")
    op.execute("DROP FUNCTION incident_handoffs_record()")
    op.execute("DROP FUNCTION incident_handoffs_start()")
    op.drop_table("incident_handoffs")
    op.drop_index(op.f("ix_incidents_created_at"), table_name="incidents")
