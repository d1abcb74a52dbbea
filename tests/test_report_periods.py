"""A report's period as people write it: dates in the agency's time zone (a date `to` includes that day), times
with or without offsets, a `+` that a URL turned into a space, nothing at all (the last 30 days); and what cannot
be read is a 422 problem that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.clock import FakeClock
from tests.factories import dv_event, make_program, post_event
from tests.test_audit import trail

# 23:30 and 00:30 in Chicago (CST, UTC-6) on either side of the 16th's midnight.
LATE_ON_THE_16TH = datetime(2026, 11, 17, 5, 30, tzinfo=UTC)
EARLY_ON_THE_17TH = datetime(2026, 11, 17, 6, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def two_calls_either_side_of_midnight(client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock) -> None:
    await make_program(client, admin, timezone="America/Chicago")
    for at in (LATE_ON_THE_16TH, EARLY_ON_THE_17TH):
        clock.set(at)
        assert (await post_event(client, dv_event())).status_code == 202
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))


async def calls(client: httpx.AsyncClient, admin: dict[str, str], query: str) -> int:
    """The calls counted for a query string as typed into a URL (not encoded by a client)."""
    response = await client.get(f"/v1/reports/summary?{query}", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["overall"]["calls"]  # type: ignore[no-any-return]


async def test_dates_are_the_agencys_days_and_a_date_to_includes_that_whole_day(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert await calls(client, admin, "from=2026-11-16&to=2026-11-16") == 1  # 23:30 on the 16th, Chicago time
    assert await calls(client, admin, "from=2026-11-17&to=2026-11-17") == 1
    assert await calls(client, admin, "from=2026-11-16&to=2026-11-17") == 2
    assert await calls(client, admin, "from=2026-11-01&to=2026-11-15") == 0
    response = await client.get("/v1/reports/summary?from=2026-11-16&to=2026-11-16", headers=admin)
    assert (response.json()["from"], response.json()["to"]) == ("2026-11-16", "2026-11-16")


async def test_times_with_offsets_are_instants_and_without_are_the_agencys_clock(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert await calls(client, admin, "from=2026-11-17T06:00:00Z&to=2026-11-17T07:00:00Z") == 1
    assert await calls(client, admin, "from=2026-11-17T00:00:00-06:00&to=2026-11-18") == 1
    assert await calls(client, admin, "from=2026-11-16T23:00&to=2026-11-17T00:00") == 1  # Chicago's 23:00 to 00:00


async def test_a_plus_that_a_url_turned_into_a_space_is_still_an_offset(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # "+01:00" typed into a URL arrives as " 01:00": 06:30 UTC is 07:30+01:00.
    assert await calls(client, admin, "from=2026-11-17T07:00:00+01:00&to=2026-11-17T08:00:00+01:00") == 1
    assert await calls(client, admin, "from=2026-11-17T07:00+0100&to=2026-11-17T08:00+0100") == 1


async def test_with_no_period_the_report_covers_the_last_30_days(
    client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock
) -> None:
    within = await client.get("/v1/reports/summary", headers=admin)
    clock.advance(timedelta(days=30))
    after = await client.get("/v1/reports/summary", headers=admin)

    assert within.json()["overall"]["calls"] == 2
    assert within.json()["to"] == "2026-11-20T09:01:00Z"  # this minute's calls too
    assert within.json()["from"] == "2026-10-21T09:01:00Z"
    assert after.json()["overall"]["calls"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-11-01&to=2026-13-01", "query.to"),
        ("from=2026-02-30", "query.from"),
        ("from=yesterday", "query.from"),
        ("from=2026-11-17T25:00:00Z", "query.from"),
        ("from=2026-11-17&to=2026-11-10", "query.to"),
        ("from=2026-11-17T10:00:00Z&to=2026-11-17T09:00:00Z", "query.to"),
    ],
)
async def test_a_period_that_cannot_be_read_is_a_422_problem_naming_it_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str, query: str, field: str
) -> None:
    before = await trail(database_url)

    summary = await client.get(f"/v1/reports/summary?{query}", headers=admin)
    export = await client.get(f"/v1/reports/incidents.csv?{query}", headers=admin)

    for response in (summary, export):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await trail(database_url) == before  # no export recorded: none happened


async def test_the_dashboard_takes_dates_and_says_what_it_cannot_read(
    client: httpx.AsyncClient, issued_admin: str
) -> None:
    signed_in = await client.post("/dashboard/sign-in", data={"token": issued_admin})
    assert signed_in.status_code == 303

    one_day = await client.get("/dashboard?from=2026-11-16&to=2026-11-16")
    since = await client.get("/dashboard?from=2026-11-16")  # a date, and now
    unreadable = await client.get("/dashboard?from=2026-11-16&to=someday")

    assert one_day.status_code == 200
    assert "<span>Calls</span><strong>1</strong>" in one_day.text
    assert 'value="2026-11-16"' in one_day.text  # the form keeps the dates as written
    assert "<span>Calls</span><strong>2</strong>" in since.text
    assert unreadable.status_code == 422
    assert "`to` must be a date" in unreadable.text and 'id="figures"' not in unreadable.text
