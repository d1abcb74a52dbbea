"""Personal data sealed at rest: after a whole flow no address, safe contact, note, answer or override's words is
in any table in plaintext; and the key rotates."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from cryptography.fernet import InvalidToken

from callout.cli import main
from services.alerts.worker import Worker
from shared.crypto import Sealer, SealError
from shared.db import Base, libpq_url
from shared.settings import DEVELOPMENT_DATA_KEY
from tests.conftest import PUBLIC_URL
from tests.factories import dv_event, make_program, post_event
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


async def test_the_data_key_rotates_and_rekey_seals_everything_under_the_new_one(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await post_event(client, dv_event())
    new_key = "a-new-data-key-for-the-next-year-0123456789"
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    monkeypatch.setenv("CALLOUT_DATA_KEY", new_key)
    monkeypatch.setenv("CALLOUT_DATA_KEYS_PREVIOUS", DEVELOPMENT_DATA_KEY)

    result = await asyncio.to_thread(CliRunner().invoke, main, ["data", "rekey"])

    assert result.exit_code == 0, result.output
    assert "resealed 2 values" in result.output  # the incident's details and the assessment's answers
    tokens = await sealed_values(database_url)
    opened = [Sealer([new_key]).open(token) for token in tokens]
    assert opened[0]["location"]["address"] == "1234 Ziggurat Lane"
    with pytest.raises(SealError):
        Sealer([DEVELOPMENT_DATA_KEY]).open(tokens[0])


async def sealed_values(database_url: str) -> list[Any]:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        return [
            await conn.fetchval("SELECT details FROM incidents"),
            await conn.fetchval("SELECT answers FROM assessments"),
        ]
    finally:
        await conn.close()


def test_a_token_altered_by_one_character_does_not_open() -> None:
    sealer = Sealer(["k" * 32])
    token = sealer.seal({"address": "1234 Ziggurat Lane"})
    altered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]

    with pytest.raises((SealError, InvalidToken)):
        sealer.open(altered)
