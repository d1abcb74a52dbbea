"""Retention: an incident's personal data goes once it has been over for the configured period; its timings stay,
so what the timeline says of that period does not change."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from click.testing import CliRunner

from callout.cli import main
from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.crypto import sealer
from tests.factories import dv_event, make_program, post_event
from tests.test_eido import fetch


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def test_personal_data_goes_a_retention_period_after_the_call_ended_and_the_timings_stay(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    clock: FakeClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.advance(-timedelta(days=400))  # the clock the app runs on; `callout purge` reads the real one
    old = dv_event()
    old_ref = (await post_event(client, old)).json()["incident_ref"]
    await worker.run_once()
    await post_event(client, {**old, "status": "closed"})
    still_open = (await post_event(client, dv_event())).json()["incident_ref"]
    clock.advance(timedelta(days=400))
    recent = dv_event()
    recent_ref = (await post_event(client, recent)).json()["incident_ref"]
    await post_event(client, {**recent, "status": "closed"})
    timeline = (await client.get(f"/v1/incidents/{old_ref}/timeline", headers=admin)).json()
    period = {"from": "2025-10-01T00:00:00Z", "to": "2025-11-01T00:00:00Z", "by": ["area", "language", "hour"]}
    report = (await client.get("/v1/reports/summary", params=period, headers=admin)).json()
    assert report["overall"]["calls"] == 2  # the old call, and the one still open
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    monkeypatch.setenv("CALLOUT_RETENTION_DAYS", "365")

    result = await asyncio.to_thread(CliRunner().invoke, main, ["purge"])

    assert result.exit_code == 0, result.output
    assert "purged the personal data of 1 incident(s)" in result.output
    rows = dict(await fetch(database_url, "SELECT ref, details FROM incidents"))
    assert sealer().open(rows[old_ref]) == {}
    assert sealer().open(rows[still_open])["location"]["address"] == "1234 Ziggurat Lane"  # not over yet
    assert sealer().open(rows[recent_ref])["location"]["address"] == "1234 Ziggurat Lane"  # over, not for long
    [(answers, reasons, result_kept)] = await fetch(
        database_url,
        "SELECT a.answers, a.reasons, a.screened_in FROM assessments a JOIN incidents i ON i.id = a.incident_id"
        " WHERE i.ref = $1",
        old_ref,
    )
    assert (sealer().open(answers), reasons, result_kept) == ({}, "[]", True)
    assert (await client.get(f"/v1/incidents/{old_ref}/timeline", headers=admin)).json() == timeline
    assert (await client.get("/v1/reports/summary", params=period, headers=admin)).json() == report
    again = await asyncio.to_thread(CliRunner().invoke, main, ["purge"])
    assert "purged the personal data of 0 incident(s)" in again.output
