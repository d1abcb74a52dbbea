"""Personal data sealed at rest: after a whole flow no address, safe contact, note, answer or override's words is
in any table in plaintext, nor an agency's webhook secret; and the key rotates."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command as alembic_command
from click.testing import CliRunner
from cryptography.fernet import InvalidToken
from fastapi import FastAPI
from sqlalchemy import make_url

from callout.cli import main
from services.alerts.worker import Worker
from services.intake.routes import AgencyCache
from shared import crypto
from shared.crypto import Sealer, SealError
from shared.db import Base, alembic_config, libpq_url, migrate
from shared.settings import DEVELOPMENT_DATA_KEY
from tests.conftest import PUBLIC_URL, admin_sql
from tests.factories import SECRET, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio

PLAINTEXT = ("Ziggurat", "62704", "+12025557777", "Quetzal", "weekday mornings", "bruises on her neck", "Ofc. Reyes")


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def every_table(database_url: str) -> str:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        return " ".join(
            [
                await conn.fetchval(f"SELECT coalesce(string_agg(row_to_json(t)::text, ' '), '') FROM {table.name} t")  # noqa: S608
                for table in Base.metadata.sorted_tables
            ]
        )
    finally:
        await conn.close()


async def test_after_a_whole_flow_no_personal_data_is_stored_in_plaintext(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, database_url: str
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    link = fake_twilio.texts[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)
    page = await client.post(link, data={"action": "accept"})
    [assessment] = (await client.get(f"/v1/incidents/{ref}/assessments", headers=admin)).json()
    override = {"screened_in": True, "by": "officer", "name": "Ofc. Reyes", "reason": "bruises on her neck"}
    await client.post(f"/v1/incidents/{ref}/assessments/{assessment['id']}/override", json=override, headers=admin)

    stored = await every_table(database_url)

    assert "1234 Ziggurat Lane" in page.text  # the advocate reads it...
    assert ref in stored and "gAAAAA" in stored  # ...the tables hold the incident, sealed
    for plain in PLAINTEXT:
        assert plain not in stored, plain
    assert SECRET.removeprefix("whsec_") not in stored  # the agency's webhook secret, which signed the event


async def test_the_data_key_rotates_and_rekey_seals_everything_under_the_new_one(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await post_event(client, dv_event())
    new_key = "a-new-data-key-for-the-next-year-0123456789"
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    monkeypatch.setenv("CALLOUT_DATA_KEY", new_key)
    monkeypatch.setenv("CALLOUT_DATA_KEYS_PREVIOUS", DEVELOPMENT_DATA_KEY)

    result = await asyncio.to_thread(CliRunner().invoke, main, ["data", "rekey"])

    assert result.exit_code == 0, result.output
    assert "resealed 3 values" in result.output  # the incident's details, the assessment's answers, the secret
    tokens = await sealed_values(database_url)
    opened = [Sealer([new_key]).open(token) for token in tokens]
    assert opened[0]["location"]["address"] == "1234 Ziggurat Lane"
    assert opened[2] == SECRET
    for token in tokens:
        with pytest.raises(SealError):
            Sealer([DEVELOPMENT_DATA_KEY]).open(token)
    # Intake, holding the new key alone and reading the agency afresh, still checks its signatures.
    crypto.configure([new_key])
    app.state.agencies = AgencyCache()
    assert (await post_event(client, dv_event())).status_code == 202


async def sealed_values(database_url: str) -> list[Any]:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        return [
            await conn.fetchval("SELECT details FROM incidents"),
            await conn.fetchval("SELECT answers FROM assessments"),
            await conn.fetchval("SELECT webhook_secret FROM agencies"),
        ]
    finally:
        await conn.close()


def test_a_token_altered_by_one_character_does_not_open() -> None:
    sealer = Sealer(["k" * 32])
    token = sealer.seal({"address": "1234 Ziggurat Lane"})
    altered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]

    with pytest.raises((SealError, InvalidToken)):
        sealer.open(altered)


def test_the_migration_seals_the_webhook_secrets_written_before_it(server_url: str) -> None:
    name = f"callout_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin_sql(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        alembic_command.upgrade(alembic_config(url), "0012")
        insert = (
            "INSERT INTO agencies (slug, name, webhook_secret, code_map, hotline, timezone, created_at) "
            "VALUES ('old', 'Old 911', $1, '{}', '+12025550100', 'UTC', now())"
        )
        asyncio.run(fetch_value(url, insert, SECRET))

        migrate(url)

        stored = asyncio.run(fetch_value(url, "SELECT webhook_secret FROM agencies WHERE slug = 'old'"))
        assert SECRET.removeprefix("whsec_") not in stored
        assert Sealer([DEVELOPMENT_DATA_KEY]).open(stored) == SECRET
    finally:
        asyncio.run(admin_sql(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def fetch_value(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()
