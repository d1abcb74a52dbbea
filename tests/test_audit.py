"""The audit trail: views of personal data and admin changes recorded with who, what and when, hash-chained so
that `callout audit verify` finds a record altered or removed."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from click.testing import CliRunner

from callout.cli import main
from services.alerts.worker import Worker
from shared.audit import AUDIT_LOCK_ID
from shared.db import libpq_url
from tests.conftest import PUBLIC_URL
from tests.factories import dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio
from tests.test_eido import fetch
from tests.test_reports import PERIOD


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def trail(database_url: str) -> list[tuple[str, str, str]]:
    return [
        (r[0], r[1], r[2])
        for r in await fetch(database_url, "SELECT actor, action, subject FROM audit_log ORDER BY seq")
    ]


async def verify(database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    result = await asyncio.to_thread(CliRunner().invoke, main, ["audit", "verify"])
    return result.exit_code, result.output


async def test_views_of_personal_data_and_admin_changes_are_recorded(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, database_url: str
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    link = fake_twilio.texts[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)
    await client.get(link)
    await client.get(f"/v1/incidents/{ref}/assessments", headers=admin)
    await client.get("/v1/reports/incidents.csv", params=PERIOD, headers=admin)

    recorded = await trail(database_url)

    assert ("admin:bootstrap", "change", "PUT /v1/directory/agencies/{slug}") in recorded  # the program being set up
    assert ("advocate:2", "view", f"link page, callout {fake_twilio.texts[0].body.split()[1][:-1]}") in recorded
    assert ("admin:bootstrap", "view", f"assessments of {ref}") in recorded
    assert ("admin:bootstrap", "export", "reports/incidents.csv") in recorded
    assert not any("Ziggurat" in str(r) for r in await fetch(database_url, "SELECT * FROM audit_log"))


async def test_verify_finds_a_record_altered_or_removed(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    intact = await verify(database_url, monkeypatch)
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")
        altered = await verify(database_url, monkeypatch)
        await conn.execute("DELETE FROM audit_log WHERE seq = 4")
        removed = await verify(database_url, monkeypatch)
    finally:
        await conn.close()

    assert intact[0] == 0 and "chain intact" in intact[1]
    assert altered[0] == 1 and "record 2 was altered" in altered[1]
    assert removed[0] == 1 and "records 4 to 4 are missing" in removed[1]


async def test_changes_made_from_the_command_line_are_recorded_too(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)

    issued = await asyncio.to_thread(
        CliRunner().invoke, main, ["token", "create", "--role", "supervisor", "--agency", "metro", "--label", "J. Doe"]
    )

    assert issued.exit_code == 0, issued.output
    assert ("cli", "change", "token create supervisor for metro") in await trail(database_url)


async def test_a_change_waiting_for_a_row_holds_no_audit_lock_so_two_changes_never_deadlock(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    """A change made elsewhere (a program page) holds the agency's row and then takes the audit's lock, last, as
    every change does; an API change of the same row meanwhile waits for the row without holding the audit's lock,
    so both go through (the API once took the audit's lock first: PostgreSQL then aborted one of the two)."""
    page = await asyncpg.connect(libpq_url(database_url))
    try:
        async with page.transaction():
            await page.execute("SELECT 1 FROM agencies WHERE slug = 'metro' FOR UPDATE")
            program = {"hotline": "+12025550100", "feed_silence_minutes": 60}
            api = asyncio.create_task(client.put("/v1/directory/agencies/metro/program", json=program, headers=admin))
            for _ in range(500):  # until the API's transaction waits for the row
                if await page.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
                    break
                await asyncio.sleep(0.01)  # polling the database's own state, not a timer
            else:
                raise AssertionError("the API never waited for the agency's row")
            await page.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK_ID)
        response = await api
    finally:
        await page.close()

    assert response.status_code == 200, response.text
    assert response.json()["feed_silence_minutes"] == 60
