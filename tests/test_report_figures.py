"""The figures as PostgreSQL computes them (services/reports/figures.py, over the handoff facts the database keeps
from each timeline) are exactly those of the reports' original definition: the pure Python below, which read
every timeline row of the period. Checked on seeded random programs whose timelines have every oddity the
definitions speak to — stages out of order, repeated, missing, before the CAD's event; timeline ids committed out
of order; data of every JSON type; agencies in three time zones — through the API and the dashboard's charts,
and once more for facts filled in by the migration from timelines that were there before it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import make_url

from services.reports import routes
from services.reports.figures import BINS, GROUPINGS, Scope, calls, charts, summarise
from services.reports.filters import Filters as ReportFilters
from services.reports.filters import period_of
from shared.db import Database, alembic_config, libpq_url
from tests.conftest import admin_sql

# -- the original definition, as it was: every timeline row of every call, read in Python -----------------------

INTERVALS = {
    "first_alert": "notification_sent",
    "acceptance": "acknowledged",
    "on_scene": "on_scene",
    "survivor_contact": "survivor_contacted",
}
TARGETS = {
    "immediate": (("acceptance", 5 * 60), ("on_scene", 30 * 60)),
    "priority": (("acceptance", 10 * 60), ("survivor_contact", 60 * 60)),
    "follow_up": (("survivor_contact", 48 * 3600),),
}


@dataclass
class Call:
    agency: str
    hour: int
    area: str | None
    tier: str
    language: str | None
    received_at: datetime
    day: date  # in the agency's time zone
    seconds: dict[str, float] = field(default_factory=dict)
    advocate: str | None = None
    accepted_by_hotline: bool = False
    accepted: bool = False
    escalations: int = 0
    declines: int = 0
    screened: bool = False
    screened_in: bool = False

    @property
    def within_target(self) -> bool:
        return all(self.seconds.get(interval, float("inf")) <= limit for interval, limit in TARGETS[self.tier])


def call_from(incident: Incident, timezone: str, entries: Sequence[Entry], advocate_keys: dict[int, str]) -> Call:
    received = next((e.observed_at for e in entries if e.stage == "cad_received"), incident.created_at)
    local = received.astimezone(ZoneInfo(timezone))
    call = Call(incident.agency, local.hour, incident.area, incident.tier, incident.language, received, local.date())
    for entry in entries:
        for interval, stage in INTERVALS.items():
            if entry.stage == stage and interval not in call.seconds:
                call.seconds[interval] = (entry.observed_at - received).total_seconds()
        if entry.stage == "acknowledged" and not call.accepted:
            call.accepted = True
            call.accepted_by_hotline = entry.data.get("role") == "hotline"
            call.advocate = advocate_keys.get(entry.data.get("advocate_id") or -1)
        elif entry.stage == "escalated":
            call.escalations += 1
        elif entry.stage == "declined":
            call.declines += 1
        elif entry.stage == "triaged" and entry.data.get("screened_in") is not None:
            call.screened = True
            call.screened_in = call.screened_in or bool(entry.data["screened_in"])
    return call


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def summary(calls: Iterable[Call]) -> dict[str, Any]:
    calls = list(calls)
    by_tier: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_tier[call.tier].append(call)
    return {
        "calls": len(calls),
        "intervals": {
            interval: {
                "count": len(values := sorted(c.seconds[interval] for c in calls if interval in c.seconds)),
                "median_seconds": round(statistics.median(values), 1) if values else None,
                "p90_seconds": percentile(values, 90),
            }
            for interval in INTERVALS
        },
        "within_target": {
            tier: round(sum(c.within_target for c in tier_calls) / len(tier_calls), 3)
            for tier, tier_calls in sorted(by_tier.items())
        },
        "escalations": sum(c.escalations for c in calls),
        "declines": sum(c.declines for c in calls),
        "hotline_only": sum(c.accepted_by_hotline for c in calls),
        "never_accepted": sum(not c.accepted for c in calls),
        "lap": {
            "calls_screened": sum(c.screened for c in calls),
            "screened_in": sum(c.screened_in for c in calls),
            "advocate_reached": sum(c.accepted and not c.accepted_by_hotline for c in calls),
            "survivor_spoke_with_advocate": sum("survivor_contact" in c.seconds for c in calls),
        },
    }


def grouped(calls: Sequence[Call], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        value = getattr(call, key)
        groups[str(value) if value is not None else "none"].append(call)
    return {name: summary(group) for name, group in sorted(groups.items())}


def csv_row(c: Call) -> list[str]:
    row = [
        c.agency,
        c.day.isoformat(),
        c.area or "",
        c.tier,
        c.language or "",
        c.screened,
        c.screened_in,
        c.accepted and not c.accepted_by_hotline,
        "survivor_contact" in c.seconds,
        *(round(c.seconds[i]) if i in c.seconds else "" for i in INTERVALS),
        c.escalations,
        c.declines,
        c.within_target,
    ]
    return [str(v) for v in row]


def histogram(calls: list[Call]) -> list[int]:
    counts = [0] * (len(BINS) + 1)
    for call in calls:
        if (seconds := call.seconds.get("acceptance")) is not None:
            counts[next((i for i, edge in enumerate(BINS) if seconds <= edge), len(BINS))] += 1
    return counts


def coverage(calls: list[Call]) -> list[tuple[str, int]]:
    groups: dict[str, int] = defaultdict(int)
    for call in calls:
        groups[f"{call.area or '?'} · {(call.language or '?').split('-')[0]}"] += 1
    return sorted(groups.items())


# -- random programs ---------------------------------------------------------------------------------------------

ZONES = {"metro": "UTC", "lakes": "America/Chicago", "coast": "Asia/Kolkata"}
ADVOCATE_KEYS = {1: "dana", 2: "luis", 3: "mei"}
AROUND = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)  # calls fall within three days of it, across local midnights
STAGES = [
    *["cad_received"] * 3,
    *["triaged"] * 3,
    *["notification_sent"] * 3,
    *["acknowledged"] * 3,
    *["escalated"] * 2,
    *["declined"] * 2,
    *["on_scene"] * 2,
    *["survivor_contacted"] * 2,
    "advocate_matched",
    "notification_delivered",
    "en_route",
    "closed",
]
SCREENED: list[Any] = [True, False, None, 0, 1, "yes", "", [], {}, 2.5]
# Not a JSON true: that Python's True == 1 once made it advocate 1 was an accident, never a definition.
ADVOCATE_IDS = [1, 2, 3, 2.0, 999, "2", None, 0, -1, 2.5]


@dataclass
class Incident:
    id: uuid.UUID
    agency: str
    tier: str
    area: str | None
    language: str | None
    created_at: datetime


@dataclass
class Entry:
    id: int
    incident_id: uuid.UUID
    stage: str
    observed_at: datetime
    data: dict[str, Any]


def data_for(stage: str, rng: random.Random) -> dict[str, Any]:
    if stage == "triaged":
        return {} if rng.random() < 0.2 else {"screened_in": rng.choice(SCREENED)}
    if stage in ("acknowledged", "declined"):
        found: dict[str, Any] = {"via": "sms"}
        if rng.random() < 0.9:
            found["advocate_id"] = rng.choice(ADVOCATE_IDS)
        if rng.random() < 0.85:
            found["role"] = rng.choice(["primary", "backup", "hotline", "hotline"])
        return found
    return {"n": rng.randrange(10)}


def seconds_after(rng: random.Random) -> timedelta:
    """Often on a twentieth of a second (so medians and percentiles land on halves that rounding must get right),
    sometimes anywhere to the microsecond, sometimes before the call."""
    if rng.random() < 0.6:
        return timedelta(seconds=rng.randrange(-40, 20 * 60 * 20) / 20)
    return timedelta(microseconds=rng.randrange(-5_000_000, 4 * 3600 * 1_000_000))


def random_program(rng: random.Random, incidents: int) -> tuple[list[Incident], list[Entry]]:
    made, entries = [], []
    for _ in range(incidents):
        incident = Incident(
            uuid.uuid4(),
            rng.choice(list(ZONES)),
            rng.choice(["immediate", "priority", "follow_up", "follow_up", "none"]),
            rng.choice(["1", "2", None, "none", ""]),
            rng.choice([None, "es", "es-MX", "EN", "vi", ""]),
            AROUND + timedelta(seconds=rng.randrange(-3 * 86400, 3 * 86400), microseconds=rng.randrange(10**6)),
        )
        made.append(incident)
        for _ in range(rng.choice([0, 1, 3, 6, 9, 12, 15])):
            stage = rng.choice(STAGES)
            at = incident.created_at + seconds_after(rng)
            entries.append(Entry(0, incident.id, stage, at, data_for(stage, rng)))
    # Ids are the timeline's order; the rows are inserted in shuffled batches, as transactions that took their ids
    # in one order may commit in another.
    for number, entry in enumerate(rng.sample(entries, len(entries)), start=1):
        entry.id = number
    return made, entries


async def insert(database_url: str, incidents: list[Incident], entries: list[Entry], rng: random.Random) -> None:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        agencies = {}
        for slug, zone in ZONES.items():
            agencies[slug] = await conn.fetchval(
                "INSERT INTO agencies (slug, name, webhook_secret, code_map, hotline, timezone, created_at)"
                " VALUES ($1, $1, 'whsec_x', '{}', '+12025550100', $2, now()) RETURNING id",
                slug,
                zone,
            )
        for advocate_id, key in ADVOCATE_KEYS.items():
            await conn.execute(
                "INSERT INTO advocates (id, agency_id, key, name, phone, languages, active, created_at)"
                " VALUES ($1::int, $2, $3, $3, '+1202555000' || $1::int, '{en}', true, now())",
                advocate_id,
                agencies["metro"],
                key,
            )
        await conn.executemany(
            "INSERT INTO incidents (id, ref, agency_id, cad_incident_id, status, type_code, tier, area, language,"
            " interpreter_needed, details, created_at, updated_at)"
            " VALUES ($1, $2, $3, $2, 'open', 'DVA', $4, $5, $6, false, 'sealed', $7, $7)",
            [
                (i.id, f"INC-{n:08d}", agencies[i.agency], i.tier, i.area, i.language, i.created_at)
                for n, i in enumerate(incidents)
            ],
        )
        remaining = rng.sample(entries, len(entries))
        while remaining:
            size = rng.choice([1, 1, 2, 5, 20])
            batch, remaining = remaining[:size], remaining[size:]
            await conn.execute(
                "INSERT INTO timeline_entries (id, incident_id, stage, observed_at, data)"
                " SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::timestamptz[], $5::jsonb[])",
                [e.id for e in batch],
                [e.incident_id for e in batch],
                [e.stage for e in batch],
                [e.observed_at for e in batch],
                [json.dumps(e.data) for e in batch],
            )
    finally:
        await conn.close()


def reference(incidents: list[Incident], entries: list[Entry]) -> list[Call]:
    """The calls as the original definition read them, in the order the reports list them."""
    timelines: dict[uuid.UUID, list[Entry]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.id):
        timelines[entry.incident_id].append(entry)
    dv = sorted((i for i in incidents if i.tier != "none"), key=lambda i: (i.created_at, i.id))
    return [call_from(i, ZONES[i.agency], timelines[i.id], ADVOCATE_KEYS) for i in dv]


def by_incident(incidents: list[Incident], calls: list[Call]) -> dict[uuid.UUID, Call]:
    dv = sorted((i for i in incidents if i.tier != "none"), key=lambda i: (i.created_at, i.id))
    return {i.id: c for i, c in zip(dv, calls, strict=True)}


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


EVERY_AGENCY = Scope(None, {})  # the period below is of instants: no zone is needed
EVERYTHING = {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}


@dataclass
class Program:
    incidents: list[Incident]
    calls: list[Call]

    def where(self, keep: Any) -> list[Call]:
        index = by_incident(self.incidents, self.calls)
        return [
            index[i.id]
            for i in sorted(self.incidents, key=lambda i: (i.created_at, i.id))
            if i.id in index and keep(i, index[i.id])
        ]


@pytest.fixture(params=[7, 11, 19, 23])
async def program(request: pytest.FixtureRequest, database_url: str) -> Program:
    rng = random.Random(request.param)
    incidents, entries = random_program(rng, 90)
    await insert(database_url, incidents, entries, rng)
    return Program(incidents, reference(incidents, entries))


def ilike_language(asked: str) -> Any:
    primary = asked.split("-")[0].lower()
    return lambda i, _: (
        i.language is not None and (i.language.lower() == primary or i.language.lower().startswith(primary + "-"))
    )


FILTERED = [
    ({}, lambda i, c: True),
    ({"area": "1"}, lambda i, c: i.area == "1"),
    ({"tier": "priority"}, lambda i, c: i.tier == "priority"),
    ({"language": "es"}, ilike_language("es")),
    ({"advocate": "luis"}, lambda i, c: c.advocate == "luis"),
    ({"agency": "lakes"}, lambda i, c: i.agency == "lakes"),
    # Dates are each agency's own days; a date `to` includes that day.
    (
        {"from": "2026-11-10", "to": "2026-11-11"},
        lambda i, c: (
            date(2026, 11, 10) <= i.created_at.astimezone(ZoneInfo(ZONES[i.agency])).date() <= date(2026, 11, 11)
        ),
    ),
]


@pytest.mark.parametrize(("params", "keep"), FILTERED, ids=[str(p) or "all" for p, _ in FILTERED])
async def test_the_summary_and_every_grouping_are_the_original_definitions(
    program: Program, client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, str], keep: Any
) -> None:
    expected = program.where(keep)

    response = await client.get("/v1/reports/summary", params={**EVERYTHING, **params, "by": GROUPINGS}, headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["overall"] == as_json(summary(expected))
    assert response.json()["by"] == as_json({key: grouped(expected, key) for key in GROUPINGS})


async def test_the_csv_is_the_original_definition_row_by_row_streamed_in_batches(
    program: Program, client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "CSV_BATCH", 7)  # a dozen batches of this program's calls

    response = await client.get("/v1/reports/incidents.csv", params=EVERYTHING, headers=admin)

    assert "content-length" not in response.headers  # streamed: its length is not known when it starts
    rows = list(csv.reader(io.StringIO(response.text)))
    assert len(program.calls) > 7 * 5
    assert rows[1:] == [csv_row(c) for c in program.calls]


async def test_the_dashboards_charts_are_the_original_definitions(program: Program, database_url: str) -> None:
    filters = ReportFilters(period_of(EVERYTHING["from"], EVERYTHING["to"], AROUND))
    database = Database.connect(database_url, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            drawn = await charts(session, calls(filters, EVERY_AGENCY))
    finally:
        await database.close()

    days: dict[date, list[Call]] = defaultdict(list)
    for call in program.calls:
        days[call.day].append(call)
    assert drawn.acceptance_bins == histogram(program.calls)
    assert drawn.days == [(day, len(group), sum(c.within_target for c in group)) for day, group in sorted(days.items())]
    assert drawn.coverage == coverage(program.calls)


async def test_timelines_there_before_the_facts_were_kept_are_filled_in_by_the_migration(server_url: str) -> None:
    name = f"callout_test_{uuid.uuid4().hex[:12]}"
    await admin_sql(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        config = alembic_config(url)
        before = next(
            r.down_revision
            for r in ScriptDirectory.from_config(config).walk_revisions()
            if r.path.endswith("_incident_handoffs.py")
        )
        assert isinstance(before, str)
        await asyncio.to_thread(command.upgrade, config, before)
        rng = random.Random(5)
        incidents, entries = random_program(rng, 120)
        await insert(url, incidents, entries, rng)
        await asyncio.to_thread(command.upgrade, config, "head")
        filters = ReportFilters(period_of(EVERYTHING["from"], EVERYTHING["to"], AROUND))
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker() as session:
                figures = await summarise(session, calls(filters, EVERY_AGENCY), GROUPINGS)
        finally:
            await database.close()
    finally:
        await admin_sql(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')

    expected = reference(incidents, entries)
    assert figures.overall == summary(expected)
    assert figures.by == {key: grouped(expected, key) for key in GROUPINGS}
