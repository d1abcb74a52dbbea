"""Coverage gaps, seen before they happen: every area, role and time with nobody on call in the next 14 days, from
every source at once, in the agency's time zone; the languages an area's calls needed that nobody on call speaks;
and a gap starting within two days texted to the supervisors once, and again four hours before. The clock moves;
nothing sleeps."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GAPS = "/v1/directory/agencies/metro/coverage-gaps"
ADA = PHONES["ada"]
# Tuesday 18:00 to midnight in New York (EST, UTC-5): the backup's evening nobody holds.
GAP_STARTS, GAP_ENDS = (
    datetime.fromisoformat("2026-11-17T23:00:00+00:00"),
    datetime.fromisoformat("2026-11-18T05:00:00+00:00"),
)


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """Dana primary and ada supervisor around the clock; mei backup but for Tuesday evening. Nobody speaks Spanish."""
    shifts = [
        *({"advocate": "dana", "role": "primary", "day": d} for d in DAYS),
        *({"advocate": "ada", "role": "supervisor", "day": d} for d in DAYS),
        *({"advocate": "mei", "role": "backup", "day": d} for d in DAYS if d != "tue"),
        {"advocate": "mei", "role": "backup", "day": "tue", "start": "00:00", "end": "18:00"},
    ]
    advocates = {"dana": ["en"], "mei": ["zh", "en"], "ada": ["en"]}
    await make_program(client, admin, timezone="America/New_York", shifts=shifts, advocates=advocates)


def gaps_texted(fake: FakeTwilio) -> list[str]:
    return [m.body for m in fake.to(ADA) if "nobody is on call" in m.body]


@pytest.mark.usefixtures("program")
async def test_the_gap_is_listed_with_its_area_role_and_times(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    answer = (await client.get(GAPS, headers=admin)).json()

    gaps = [(g["area"], g["role"], g["starts_at"], g["ends_at"]) for g in answer["gaps"]]
    assert gaps == [  # this Tuesday evening and next: a fortnight ahead
        ("1", "backup", "2026-11-17T23:00:00Z", "2026-11-18T05:00:00Z"),
        ("1", "backup", "2026-11-24T23:00:00Z", "2026-11-25T05:00:00Z"),
    ]
    assert answer["timezone"] == "America/New_York" and answer["language_gaps"] == []


@pytest.mark.usefixtures("program")
async def test_an_override_closes_the_gap(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    cover = {
        "area": "1",
        "role": "backup",
        "advocate": "dana",
        "starts_at": GAP_STARTS.isoformat(),
        "ends_at": GAP_ENDS.isoformat(),
        "note": "covering Tuesday evening",
    }
    added = await client.post("/v1/directory/agencies/metro/overrides", json=cover, headers=admin)

    assert added.status_code == 201, added.text
    [left] = (await client.get(GAPS, headers=admin)).json()["gaps"]
    assert left["starts_at"] == "2026-11-24T23:00:00Z"  # this week's is covered; next week's is not


@pytest.mark.usefixtures("program")
async def test_a_language_the_areas_calls_needed_that_nobody_on_call_speaks_is_listed(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker
) -> None:
    await post_event(client, dv_event())  # the victim speaks Spanish
    await worker.run_once()

    answer = (await client.get(GAPS, headers=admin)).json()

    [gap] = answer["language_gaps"]
    assert (gap["area"], gap["language"]) == ("1", "es")
    assert datetime.fromisoformat(gap["ends_at"]) == datetime.fromisoformat(answer["until"])  # all fortnight


@pytest.mark.usefixtures("program")
async def test_a_gap_within_two_days_is_texted_once_and_again_four_hours_before(
    worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await worker.watch_contacts()  # Monday noon UTC: the gap is 35 hours away
    await worker.run_once()
    first = gaps_texted(fake_twilio)
    await worker.watch_contacts()
    clock.advance(GAP_STARTS - clock.now() - timedelta(hours=3))  # three hours before
    await worker.watch_contacts()
    await worker.run_once()
    second = gaps_texted(fake_twilio)
    clock.advance(timedelta(hours=1))
    await worker.watch_contacts()
    await worker.run_once()

    assert first == [
        "Callout: nobody is on call as backup in area 1 from 2026-11-17 18:00 EST to 2026-11-18 00:00 EST. "
        "Add cover (an override, on the program's Overrides page): until then its calls skip that role."
    ]
    assert len(second) == 2 and gaps_texted(fake_twilio) == second  # told again, then no more


async def test_a_gap_first_seen_within_four_hours_is_texted_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    shifts = [
        *({"advocate": "dana", "role": "primary", "day": d} for d in DAYS),
        *({"advocate": "ada", "role": "supervisor", "day": d} for d in DAYS),
        {"advocate": "mei", "role": "backup", "day": "mon", "start": "00:00", "end": "14:00"},  # till 2 pm UTC
        *({"advocate": "mei", "role": "backup", "day": d} for d in DAYS if d != "mon"),
    ]
    await make_program(client, admin, shifts=shifts, advocates={"dana": ["en"], "mei": ["en"], "ada": ["en"]})

    await worker.watch_contacts()  # Monday noon: the gap starts in two hours
    await worker.run_once()

    [text] = gaps_texted(fake_twilio)
    assert "from 2026-11-16 14:00 UTC to 2026-11-17 00:00 UTC" in text
