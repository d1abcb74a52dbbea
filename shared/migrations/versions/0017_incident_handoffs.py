"""each incident's handoff facts, kept by the database as stages are recorded; incidents indexed by time

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 12:00:00

The reports read one row per call (`incident_handoffs`) instead of every timeline row of the period. Triggers
keep it: a row is made with each incident, and each timeline row of a stage the figures read folds itself in —
the first row of a stage by timeline id (so a transaction committing after a later one still counts as first),
every escalation and decline, whether a triage screened. The timeline is append-only, so inserts are all there is.

A row trigger, run only for those stages (its WHEN is checked before any function is called), each update only
touching the row when something changes: the thousands of CAD updates an incident may get (each a `cad_received`
and a `triaged`) cost an index lookup each and take no lock. Existing incidents are filled in from their timelines
while both tables are locked against writes (a few seconds for a million timeline rows). Each interval is kept in
whole microseconds too, a column PostgreSQL computes as the row is written, so that a year of them sorts as
integers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
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
STAGES_SQL = ", ".join(f"'{stage}'" for stage in STAGES)


def truthy(row: str) -> str:
    """`data.screened_in` as Python's bool() reads JSON (the figures' definition: `bool(data["screened_in"])`)."""
    value = f"{row}.data -> 'screened_in'"
    return f"""CASE jsonb_typeof({value})
        WHEN 'boolean' THEN {value} = 'true'
        WHEN 'number' THEN {value} <> '0'
        WHEN 'string' THEN {value} <> '""'
        WHEN 'array' THEN {value} <> '[]'
        WHEN 'object' THEN {value} <> '{{}}'
        ELSE false END"""


def screened(row: str) -> str:
    """Whether the triage said anything of the screen (`data.get("screened_in") is not None`)."""
    return f"coalesce(jsonb_typeof({row}.data -> 'screened_in'), 'null') <> 'null'"


def advocate_id(row: str) -> str:
    """The advocate who accepted, as a directory id: a whole JSON number, else none. Never an error (a trigger
    that raised would refuse the stage itself): the cast is reached only for a number."""
    value = f"({row}.data -> 'advocate_id')"
    return f"""CASE WHEN jsonb_typeof({value}) = 'number' THEN
        CASE WHEN {value}::numeric = trunc({value}::numeric) AND {value}::numeric BETWEEN 1 AND 2147483647
            THEN {value}::numeric::integer END
        END"""


def hotline(row: str) -> str:
    """`data.get("role") == "hotline"`"""
    return f"""coalesce({row}.data -> 'role' = '"hotline"', false)"""


def first(expression: str, stage: str) -> str:
    """`expression` of the stage's first row among `t`, by timeline id."""
    return f"(array_agg({expression} ORDER BY t.id) FILTER (WHERE t.stage = '{stage}'))[1]"


def earlier(name: str) -> str:
    """The new row comes before any of its stage already counted."""
    return f"({name}_entry IS NULL OR NEW.id < {name}_entry)"


def firsts() -> str:
    whens = []
    for name, stage in FIRSTS.items():
        extra = (
            f", accepted_by_hotline = {hotline('NEW')}, accepted_advocate_id = {advocate_id('NEW')}"
            if name == "acceptance"
            else ""
        )
        whens.append(
            f"""WHEN '{stage}' THEN
            UPDATE incident_handoffs SET {name}_entry = NEW.id, {name}_at = NEW.observed_at{extra}
            WHERE incident_id = NEW.incident_id AND {earlier(name)};"""  # noqa: S608 - names from the constants
        )
    return "\n        ".join(whens)


RECORD_FUNCTION = f"""
CREATE FUNCTION incident_handoffs_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE NEW.stage
        {firsts()}
        WHEN 'escalated' THEN
            UPDATE incident_handoffs SET escalations = escalations + 1 WHERE incident_id = NEW.incident_id;
        WHEN 'declined' THEN
            UPDATE incident_handoffs SET declines = declines + 1 WHERE incident_id = NEW.incident_id;
        WHEN 'triaged' THEN
            IF {screened("NEW")} THEN
                UPDATE incident_handoffs SET screened = true, screened_in = screened_in OR {truthy("NEW")}
                WHERE incident_id = NEW.incident_id AND (NOT screened OR (NOT screened_in AND {truthy("NEW")}));
            END IF;
        ELSE
            NULL;
    END CASE;
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

# What an incident's timeline rows `t` say: the same facts, all at once.
FACTS = ",\n    ".join(
    [
        *(f"min(t.id) FILTER (WHERE t.stage = '{stage}') AS {name}_entry" for name, stage in FIRSTS.items()),
        *(f"{first('t.observed_at', stage)} AS {name}_at" for name, stage in FIRSTS.items()),
        f"coalesce({first(hotline('t'), 'acknowledged')}, false) AS accepted_by_hotline",
        f"{first(advocate_id('t'), 'acknowledged')} AS accepted_advocate_id",
        "count(*) FILTER (WHERE t.stage = 'escalated') AS escalations",
        "count(*) FILTER (WHERE t.stage = 'declined') AS declines",
        f"coalesce(bool_or({screened('t')}) FILTER (WHERE t.stage = 'triaged'), false) AS screened",
        f"coalesce(bool_or({truthy('t')}) FILTER (WHERE t.stage = 'triaged'), false) AS screened_in",
    ]
)
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
        "CREATE TRIGGER incident_handoffs_record AFTER INSERT ON timeline_entries FOR EACH ROW"
        f" WHEN (NEW.stage IN ({STAGES_SQL})) EXECUTE FUNCTION incident_handoffs_record()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER incident_handoffs_record ON timeline_entries")
    op.execute("DROP TRIGGER incident_handoffs_start ON incidents")
    op.execute("DROP FUNCTION incident_handoffs_record()")
    op.execute("DROP FUNCTION incident_handoffs_start()")
    op.drop_table("incident_handoffs")
    op.drop_index(op.f("ix_incidents_created_at"), table_name="incidents")
