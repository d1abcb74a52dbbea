"""The incident timeline: every stage in order, for an admin or a supervisor of that agency only."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from click.testing import CliRunner

from callout.cli import main
from shared.auth import Role, issue_token
from shared.db import Database
from shared.tables import Agency
from tests.factories import SECRET, dv_event, make_program, post_event


async def supervisor_token(database_url: str, agency: str) -> str:
    database = Database.connect(database_url, pool_size=1)
    try:
        async with database.sessionmaker.begin() as session:
            agency_id = (await session.scalars(Agency.__table__.select().where(Agency.slug == agency))).one()
            return await issue_token(
                session, role=Role.supervisor, label=f"{agency} supervisor", agency_id=agency_id, now=datetime.now(UTC)
            )
    finally:
        await database.close()


@pytest.fixture
async def incident_ref(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    await make_program(client, admin, agency="metro")
    await make_program(client, admin, agency="county", secret=SECRET)
    return (await post_event(client, dv_event(), agency="metro")).json()["incident_ref"]  # type: ignore[no-any-return]  # a JSON body is Any


async def test_a_supervisor_sees_their_agencys_timeline_and_not_anothers(
    client: httpx.AsyncClient, incident_ref: str, database_url: str
) -> None:
    own = {"Authorization": f"Bearer {await supervisor_token(database_url, 'metro')}"}
    other = {"Authorization": f"Bearer {await supervisor_token(database_url, 'county')}"}

    seen = await client.get(f"/v1/incidents/{incident_ref}/timeline", headers=own)
    hidden = await client.get(f"/v1/incidents/{incident_ref}/timeline", headers=other)
    missing = await client.get("/v1/incidents/INC-NOSUCHONE/timeline", headers=other)

    assert seen.status_code == 200
    assert [e["stage"] for e in seen.json()["entries"]] == ["cad_received", "triaged"]
    assert seen.json()["entries"][0]["source_at"] == "2026-11-16T16:58:00Z"
    assert (hidden.status_code, hidden.json()) == (404, missing.json())  # no hint that it exists


async def test_the_timeline_needs_a_token(client: httpx.AsyncClient, incident_ref: str) -> None:
    anonymous = await client.get(f"/v1/incidents/{incident_ref}/timeline")
    wrong = await client.get(f"/v1/incidents/{incident_ref}/timeline", headers={"Authorization": "Bearer co_forged"})

    assert (anonymous.status_code, wrong.status_code) == (401, 401)


async def test_a_supervisor_keeps_their_own_program_but_not_an_agency_or_another_s_program(
    client: httpx.AsyncClient, incident_ref: str, database_url: str
) -> None:
    own = {"Authorization": f"Bearer {await supervisor_token(database_url, 'metro')}"}
    other = {"Authorization": f"Bearer {await supervisor_token(database_url, 'county')}"}
    agency = {"name": "Metro 911", "hotline": "+12025550100", "webhook_secret": None}

    area = await client.put("/v1/directory/agencies/metro/areas/2", json={"name": "North"}, headers=own)
    elsewhere = await client.put("/v1/directory/agencies/metro/areas/3", json={"name": "East"}, headers=other)
    integration = await client.put("/v1/directory/agencies/metro", json=agency, headers=own)
    created = await client.put("/v1/directory/agencies/newtown", json=agency, headers=own)

    assert area.status_code == 200
    assert elsewhere.status_code == 404  # as for an agency that does not exist
    assert integration.status_code == created.status_code == 403  # an agency and its integration are an admin's


async def test_a_supervisor_covers_a_shift_in_their_own_agency_and_sees_no_other(
    client: httpx.AsyncClient, incident_ref: str, database_url: str
) -> None:
    own = {"Authorization": f"Bearer {await supervisor_token(database_url, 'metro')}"}
    other = {"Authorization": f"Bearer {await supervisor_token(database_url, 'county')}"}
    swap = {
        "area": "1",
        "role": "primary",
        "advocate": "mei",
        "replaces": "luis",
        "starts_at": "2026-11-16T00:00:00Z",
        "ends_at": "2026-11-17T00:00:00Z",
    }

    covered = await client.post("/v1/directory/agencies/metro/overrides", json=swap, headers=own)
    elsewhere = await client.post("/v1/directory/agencies/metro/overrides", json=swap, headers=other)
    on_call = await client.get(
        "/v1/directory/agencies/metro/on-call", params={"area": "1", "at": "2026-11-16T12:00:00Z"}, headers=own
    )

    assert (covered.status_code, elsewhere.status_code) == (201, 404)
    assert [e["key"] for e in on_call.json()["chain"] if e["role"] == "primary"] == ["mei", "dana"]


def test_token_create_prints_a_token_that_is_stored_only_hashed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)

    result = CliRunner().invoke(main, ["token", "create", "--role", "admin", "--label", "ops"])
    refused = CliRunner().invoke(main, ["token", "create", "--role", "supervisor", "--label", "x"])

    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("co_")
    assert refused.exit_code != 0 and "needs --agency" in refused.output


async def test_an_issued_admin_token_is_an_admin(
    client: httpx.AsyncClient, incident_ref: str, database_url: str
) -> None:
    database = Database.connect(database_url, pool_size=1)
    try:
        async with database.sessionmaker.begin() as session:
            token = await issue_token(session, role=Role.admin, label="ops", agency_id=None, now=datetime.now(UTC))
    finally:
        await database.close()
    issued = {"Authorization": f"Bearer {token}"}

    changed = await client.put("/v1/directory/agencies/county/areas/2", json={"name": "North"}, headers=issued)
    report = await client.get(
        "/v1/reports/summary", params={"from": "2026-11-16T00:00:00Z", "to": "2026-11-17T00:00:00Z"}, headers=issued
    )

    assert changed.status_code == 200
    assert report.json()["overall"]["calls"] == 1  # metro's call: an admin sees every agency
