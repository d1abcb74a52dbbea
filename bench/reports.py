"""The reports at scale: BENCH_REPORT_INCIDENTS (100,000) DV incidents over the year up to now, about ten
timeline rows each, seeded in SQL as if intake and the alerts worker had recorded them before the handoff facts
were kept, then the migration that fills those in (timed: an operator's upgrade at this size). Then, against
`callout serve`: the summary for a week, a month and the year; the year's summary by each grouping, and by all at
once; the dashboard for a month and the year; the CSV of a month and of the year (its first byte, its last); and
each process's peak memory."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from bench.common import ADMIN, DATA_KEY, Served, callout_server, fresh_database, over_limit, show_peaks
from shared.crypto import Sealer
from shared.db import alembic_config, libpq_url
from tests.fake_twilio import FakeTwilio

INCIDENTS = int(os.environ.get("BENCH_REPORT_INCIDENTS", "100000"))
GROUPS = ("advocate", "area", "hour", "tier", "language")
RUNS = 3
ZONE = "America/Chicago"  # the program's: its days, not UTC's, are the periods' and the hours'

# Draws are per incident (setseed: the same data every run).
SEED_INCIDENTS = """
INSERT INTO incidents (id, ref, agency_id, cad_incident_id, status, type_code, apco_code, tier, area, language,
                       interpreter_needed, details, created_at, updated_at)
SELECT gen_random_uuid(), 'INC-R' || lpad(n::text, 7, '0'), $1, 'REPORT-' || n, 'closed', '10-16', 'DVA',
       (ARRAY['immediate', 'priority', 'priority', 'priority', 'follow_up'])[1 + (n * 7919) % 5],
       (1 + (n * 31) % 5)::text,
       (ARRAY['en', 'es', 'es-MX', 'vi', NULL])[1 + (n * 13) % 5],
       false, $2,
       $3::timestamptz + (n * interval '1 year' / $4) + ((n * 104729) % 600) * interval '1 second',
       $3::timestamptz + (n * interval '1 year' / $4)
FROM generate_series(1, $4::bigint) AS n
"""

SEED_TIMELINE = """
WITH draws AS MATERIALIZED (
    SELECT id, created_at, random() AS accepts, random() AS declines, random() AS hotline, random() AS scene,
           random() AS contact, random() AS speed, random() AS screened, (1 + floor(random() * 3))::int AS advocate
    FROM incidents WHERE cad_incident_id LIKE 'REPORT-%'
)
INSERT INTO timeline_entries (incident_id, stage, observed_at, data)
SELECT d.id, s.stage, d.created_at + s.after, s.data
FROM draws AS d
CROSS JOIN LATERAL (VALUES
    (1, true, 'cad_received', interval '0', '{"status": "new"}'::jsonb),
    (2, true, 'triaged', interval '0',
        jsonb_build_object('screened_in', CASE WHEN d.screened < 0.1 THEN NULL ELSE d.screened < 0.6 END)),
    (3, true, 'advocate_matched', interval '1 second', jsonb_build_object('advocate_id', d.advocate)),
    (4, true, 'notification_sent', (0.05 + d.speed * 2) * interval '1 second', '{"channel": "sms"}'::jsonb),
    (5, true, 'notification_delivered', interval '3 seconds', '{}'::jsonb),
    (6, d.declines < 0.15, 'declined', interval '40 seconds', jsonb_build_object('advocate_id', d.advocate)),
    (7, d.declines < 0.25 OR d.accepts >= 0.85, 'escalated', interval '2 minutes', '{"to": ["backup"]}'::jsonb),
    (8, d.accepts >= 0.85, 'escalated', interval '6 minutes', '{"to": ["hotline"]}'::jsonb),
    (9, d.accepts < 0.85, 'acknowledged', (20 + d.speed * 900) * interval '1 second',
        CASE WHEN d.hotline < 0.05 THEN '{"role": "hotline", "advocate_id": null}'::jsonb
             ELSE jsonb_build_object('role', 'primary', 'advocate_id', d.advocate) END),
    (10, d.declines < 0.25, 'notification_sent', interval '2 minutes', '{"channel": "sms", "role": "backup"}'::jsonb),
    (11, d.accepts < 0.85, 'en_route', (200 + d.speed * 900) * interval '1 second', '{}'::jsonb),
    (12, d.accepts < 0.85 AND d.scene < 0.7, 'on_scene', (600 + d.scene * 2400) * interval '1 second', '{}'::jsonb),
    (13, d.accepts < 0.85 AND d.contact < 0.5, 'survivor_contacted', (900 + d.contact * 7200) * interval '1 second',
        '{"via": "page"}'::jsonb),
    (14, true, 'closed', interval '4 hours', '{"by": "cad"}'::jsonb)
) AS s (n, present, stage, after, data)
WHERE s.present
ORDER BY d.created_at + s.after, s.n
"""


# The program the calls are of, as the directory would have written it.
PROGRAM = """
WITH agency AS (
    INSERT INTO agencies (slug, name, webhook_secret, code_map, hotline, timezone, created_at)
    VALUES ('metro', 'Metro 911', 'whsec_bench', '{}', '+12025550100', $1, now()) RETURNING id
)
INSERT INTO advocates (agency_id, key, name, phone, languages, active, created_at)
SELECT agency.id, key, initcap(key), '+1202555010' || n, '{en}', true, now()
FROM agency, unnest(ARRAY['dana', 'luis', 'mei']) WITH ORDINALITY AS a (key, n)
RETURNING agency_id
"""


@dataclass(frozen=True)
class Seeded:
    timeline_rows: int
    seed_s: float
    migration_s: float  # filling in the handoff facts of every incident already there


def before_the_facts(config: Config) -> str:
    """The revision before the one that keeps the handoff facts, found by its file whatever its number."""
    for revision in ScriptDirectory.from_config(config).walk_revisions():
        if revision.path.endswith("_incident_handoffs.py") and isinstance(revision.down_revision, str):
            return revision.down_revision
    raise LookupError("no migration keeps the handoff facts")


async def seed(url: str) -> Seeded:
    """The incidents of the year up to now and their timelines, in the schema before the handoff facts were kept;
    then the migration that fills them in, timed: how long an operator's upgrade takes at this size."""
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, before_the_facts(config))
    started = time.perf_counter()
    conn = await asyncpg.connect(libpq_url(url))
    try:
        agency_id = await conn.fetchval(PROGRAM, ZONE)
        await conn.execute("SELECT setseed(0.42)")
        start = datetime.now(UTC) - timedelta(days=365)
        await conn.execute(SEED_INCIDENTS, agency_id, Sealer([DATA_KEY]).seal({}), start, INCIDENTS)
        await conn.execute(SEED_TIMELINE)
        await conn.execute("ANALYZE")
        rows = int(await conn.fetchval("SELECT count(*) FROM timeline_entries"))
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        await asyncio.to_thread(command.upgrade, config, "head")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return Seeded(rows, round(seeded, 1), round(time.perf_counter() - started, 1))


async def slowest(http: httpx.AsyncClient, path: str, params: dict[str, Any], runs: int = RUNS) -> float:
    """The slowest of `runs` answers, in seconds (the first is a cold one: a supervisor's first look is too)."""
    taken = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await http.get(path, params=params)
        taken.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return round(max(taken), 3)


async def csv_export(http: httpx.AsyncClient, params: dict[str, Any]) -> dict[str, float]:
    """The CSV as a grant writer downloads it: seconds to its first byte and to its last, and its rows."""
    started = time.perf_counter()
    first, lines = None, 0
    async with http.stream("GET", "/v1/reports/incidents.csv", params=params) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_bytes():
            first = first or time.perf_counter() - started
            lines += chunk.count(b"\n")
    return {
        "first_byte_s": round(first or 0.0, 3),
        "total_s": round(time.perf_counter() - started, 2),
        "rows": lines - 1,
    }


async def figures() -> dict[str, Any]:
    """Seed, measure, print and return the reports' figures."""
    print(f"reports: {INCIDENTS:,} incidents over a year, about ten timeline rows each", flush=True)
    twilio = FakeTwilio()
    await twilio.start()
    log = Path(".callout/bench-reports-server.log")
    log.parent.mkdir(exist_ok=True)
    try:
        async with fresh_database() as url:
            seeded = await seed(url)
            print(
                f"  seeded {seeded.timeline_rows:,} timeline rows in {seeded.seed_s:g} s; the migration filled in"
                f" their handoff facts in {seeded.migration_s:g} s",
                flush=True,
            )
            async with callout_server(url, twilio, log) as served:
                return {"incidents": INCIDENTS, **asdict(seeded), **await measure(served)}
    finally:
        await twilio.stop()


async def measure(served: Served) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=served.base, timeout=300, headers=admin) as http:
        today = datetime.now(ZoneInfo(ZONE)).date()
        periods = {
            name: {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
            for name, days in (("week", 7), ("month", 30), ("year", 365))
        }
        summaries = {name: await slowest(http, "/v1/reports/summary", p) for name, p in periods.items()}
        print(f"  summary, slowest of {RUNS}: " + ", ".join(f"{k} {v} s" for k, v in summaries.items()))
        year = periods["year"]
        grouped = {key: await slowest(http, "/v1/reports/summary", {**year, "by": key}) for key in GROUPS}
        print("  the year's summary grouped by: " + ", ".join(f"{k} {v} s" for k, v in grouped.items()))
        every = await slowest(http, "/v1/reports/summary", {**year, "by": list(GROUPS)})
        print(f"  the year's summary with all five groupings at once: {every} s")
        http.cookies = (await http.post("/dashboard/sign-in", data={"token": ADMIN})).cookies
        dashboard = {name: await slowest(http, "/dashboard", periods[name]) for name in ("month", "year")}
        print(f"  dashboard: month {dashboard['month']} s, year {dashboard['year']} s", flush=True)
        before = served.peaks()
        exports = {name: await csv_export(http, periods[name]) for name in ("month", "year")}
    for name, export in exports.items():
        print(f"  CSV, {name}: first byte {export['first_byte_s']} s, {export['rows']:,} rows in {export['total_s']} s")
    peaks = served.peaks()
    grew = {name: round((peak or 0) - (before.get(name) or 0), 1) for name, peak in peaks.items()}
    print(f"  peak memory grew by {', '.join(f'{k} {v:g}' for k, v in grew.items())} MiB over the two CSVs")
    show_peaks(peaks)
    return {
        "summary_s": summaries,
        "year_by_s": grouped,
        "year_all_groupings_s": every,
        "dashboard_s": dashboard,
        "csv": exports,
        "peak_memory_mb": peaks,
        "peak_memory_over_limit": over_limit(peaks),
    }
