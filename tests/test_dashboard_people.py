"""What the dashboard says of time and of people: every time in the agency's time zone, and every advocate it names
marked when their phone is unproven or a channel cannot reach it."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.alerts.worker import Worker
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.test_eido import fetch

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(autouse=True)
async def an_open_callout_in_chicago(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, database_url: str, issued_admin: str
) -> None:
    """A callout for a Spanish speaker, alerting luis first (dana primary too, mei backing up, ada supervising):
    dana has proven her phone, the others have not, and texts cannot reach luis's."""
    await make_program(client, admin, timezone="America/Chicago")
    await post_event(client, dv_event())
    await worker.run_once()
    await fetch(database_url, "UPDATE advocate_phones SET verified_at = now() WHERE phone = $1", PHONES["dana"])
    await fetch(
        database_url,
        "INSERT INTO unreachable_contacts (agency_id, advocate_id, phone, channel, code, reason, at)"
        " SELECT agency_id, id, phone, 'sms', 21610, 'recipient opted out (STOP)', now() FROM advocates"
        " WHERE phone = $1",
        PHONES["luis"],
    )
    signed_in = await client.post("/dashboard/sign-in", data={"token": issued_admin})
    assert signed_in.status_code == 303


def person(page: str, key: str) -> str:
    """What the page says beside one mention of an advocate: up to the next advocate or the cell's end."""
    found = re.search(rf'data-advocate="{key}">(.*?)(?=data-advocate=|</td>)', page)
    assert found is not None, f"{key} is not named"
    return found[1]


async def test_open_callouts_name_who_is_on_call_marking_phones_unproven_or_unreachable(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/dashboard")).text
    open_callouts = page[page.index('id="open-callouts"') :]

    assert "unverified" not in person(open_callouts, "dana") and "cannot reach" not in person(open_callouts, "dana")
    assert "phone unverified" in person(open_callouts, "mei")
    assert "texts cannot reach them" in person(open_callouts, "luis")
    assert "phone unverified" in person(open_callouts, "luis")
    assert "primary: " in open_callouts and "backup: " in open_callouts and "supervisor: " in open_callouts


async def test_times_are_the_agencys_own(client: httpx.AsyncClient, database_url: str) -> None:
    page = (await client.get("/dashboard")).text
    [due] = await fetch(database_url, "SELECT due_at FROM callouts")
    ref = re.search(r"/dashboard/incidents/(INC-\w+)", page)
    assert ref is not None
    timeline = (await client.get(f"/dashboard/incidents/{ref[1]}")).text

    # Noon UTC is 06:00 in Chicago in November (CST); the period's start, 30 days before, is still in CDT.
    assert f"<td>{due[0].astimezone(CHICAGO):%m-%d %H:%M:%S} CST</td>" in page
    assert "UTC" not in page[page.index('id="open-callouts"') :]
    assert 'value="2026-10-17T07:01-05:00"' in page and 'value="2026-11-16T06:01-06:00"' in page
    assert "<th>at (America/Chicago)</th>" in timeline
    assert "<td>2026-11-16 06:00:00 CST</td>" in timeline and "UTC" not in timeline


async def test_the_timeline_names_the_advocates_each_stage_concerns(client: httpx.AsyncClient) -> None:
    page = (await client.get("/dashboard")).text
    ref = re.search(r"/dashboard/incidents/(INC-\w+)", page)
    assert ref is not None

    timeline = (await client.get(f"/dashboard/incidents/{ref[1]}")).text

    assert "texts cannot reach them" in person(timeline, "luis")  # matched, then alerted
    assert re.search(r"<td>advocate_matched</td>.*?data-advocate=\"luis\"", timeline)
