"""Reports from the timeline: response times, targets, outcomes and LAP-style counts for a period; grouped; a
de-identified CSV; each supervisor sees their own agency only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.db import libpq_url
from tests.conftest import PUBLIC_URL
from tests.factories import PHONES, SECRET, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio
from tests.test_timeline import supervisor_token

PERIOD = {"from": "2026-11-16T00:00:00Z", "to": "2026-11-17T00:00:00Z"}


@pytest.fixture(autouse=True)
async def two_calls(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    """Two immediate calls at noon: luis accepts the first after a minute and is on scene twenty minutes later;
    nobody accepts the second."""
    await make_program(client, admin)
    await make_program(client, admin, agency="county", secret=SECRET)
    await post_event(client, dv_event())
    await worker.run_once()
    clock.advance(timedelta(seconds=60))
    await fake_twilio.text_in(f"{PUBLIC_URL}/v1/twilio/sms", PHONES["luis"], "1")
    clock.advance(timedelta(minutes=20))
    await fake_twilio.text_in(f"{PUBLIC_URL}/v1/twilio/sms", PHONES["luis"], "on scene")
    await post_event(client, dv_event(area="1"))
    await worker.run_once()


async def test_the_summary_gives_intervals_targets_outcomes_and_lap_counts(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/v1/reports/summary", params={**PERIOD, "by": ["advocate", "hour"]}, headers=admin)

    assert response.status_code == 200, response.text
    overall = response.json()["overall"]
    assert overall["calls"] == 2
    assert overall["intervals"]["first_alert"] == {"count": 2, "median_seconds": 0.0, "p90_seconds": 0.0}
    assert overall["intervals"]["acceptance"] == {"count": 1, "median_seconds": 60.0, "p90_seconds": 60.0}
    assert overall["intervals"]["on_scene"]["median_seconds"] == 1260.0
    assert overall["within_target"] == {"immediate": 0.5}
    assert (overall["never_accepted"], overall["hotline_only"]) == (1, 0)
    assert overall["lap"] == {
        "calls_screened": 2,
        "screened_in": 2,
        "advocate_reached": 1,
        "survivor_spoke_with_advocate": 0,
    }
    by = response.json()["by"]
    assert {k: v["calls"] for k, v in by["advocate"].items()} == {"luis": 1, "none": 1}
    assert {k: v["calls"] for k, v in by["hour"].items()} == {"12": 2}  # noon and 12:21, in the agency's UTC


async def test_filters_narrow_the_figures(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    async def calls(**params: str) -> int:
        response = await client.get("/v1/reports/summary", params={**PERIOD, **params}, headers=admin)
        return response.json()["overall"]["calls"]  # type: ignore[no-any-return]

    assert await calls(advocate="luis") == 1
    assert await calls(language="es") == 2
    assert await calls(language="vi") == 0
    assert await calls(tier="priority") == 0
    assert await calls(area="2") == 0
    assert await calls(**{"to": "2026-11-16T12:00:00Z"}) == 0


async def test_the_csv_is_de_identified_per_call_timings(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/v1/reports/incidents.csv", params=PERIOD, headers=admin)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    assert rows[0]["seconds_to_acceptance"] == "60" and rows[1]["seconds_to_acceptance"] == ""
    assert rows[0]["advocate_reached"] == "True" and rows[0]["within_target"] == "True"
    for forbidden in ("INC-", "CAD-", "Ziggurat", "+1202"):
        assert forbidden not in response.text


async def test_a_supervisor_sees_their_own_agency_only(client: httpx.AsyncClient, database_url: str) -> None:
    own = {"Authorization": f"Bearer {await supervisor_token(database_url, 'metro')}"}
    other = {"Authorization": f"Bearer {await supervisor_token(database_url, 'county')}"}

    mine = await client.get("/v1/reports/summary", params=PERIOD, headers=own)
    theirs = await client.get("/v1/reports/summary", params=PERIOD, headers=other)
    asked_for_metro = await client.get("/v1/reports/summary", params={**PERIOD, "agency": "metro"}, headers=other)
    anonymous = await client.get("/v1/reports/summary", params=PERIOD)

    assert mine.json()["overall"]["calls"] == 2
    assert theirs.json()["overall"]["calls"] == 0
    assert (asked_for_metro.status_code, anonymous.status_code) == (404, 401)


async def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    # Areas are refused in this shape now; a row kept from before may still hold one.
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute("""UPDATE incidents SET area = '=HYPERLINK("http://evil.example/x","open")'""")
        await conn.execute("UPDATE callouts SET area = '@SUM(A1)'")
    finally:
        await conn.close()

    response = await client.get("/v1/reports/incidents.csv", params=PERIOD, headers=admin)

    areas = {row["area"] for row in csv.DictReader(io.StringIO(response.text))}
    assert areas and all(area.startswith("'") for area in areas), areas
