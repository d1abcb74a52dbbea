"""Schedules as on-call tools keep them: rotations across daylight-saving changes, overrides, empty coverage, and
programs' own iCalendar files in, advocates' shift feeds out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import icalendar
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from shared.audit import AuditRecord
from shared.auth import Role
from shared.clock import FakeClock
from tests.factories import HOTLINE, issued_token, make_program

ON_CALL = "/v1/directory/agencies/metro/on-call"
AREA = "/v1/directory/agencies/metro/areas/1"


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin, shifts=[])  # no weekly schedule: only what each test sets up


async def chain(client: httpx.AsyncClient, admin: dict[str, str], at: str, **params: str) -> list[tuple[str, str]]:
    response = await client.get(ON_CALL, params={"area": "1", "at": at, **params}, headers=admin)
    assert response.status_code == 200, response.text
    return [(e["role"], e["key"]) for e in response.json()["chain"]]


async def reasons(client: httpx.AsyncClient, admin: dict[str, str], at: str) -> list[str]:
    response = await client.get(ON_CALL, params={"area": "1", "at": at}, headers=admin)
    return [e["reason"] for e in response.json()["chain"]]


async def put_rotation(client: httpx.AsyncClient, admin: dict[str, str], name: str, **spec: Any) -> httpx.Response:
    return await client.put(f"{AREA}/rotations/{name}", json=spec, headers=admin)


async def test_a_daily_rotation_hands_off_at_the_same_wall_time_across_the_change_from_daylight_saving(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Chicago leaves daylight-saving time at 02:00 on Sunday 1 November 2026: 09:00 is 14:00 UTC before, 15:00 after.
    response = await put_rotation(
        client,
        admin,
        "primaries",
        role="primary",
        participants=["dana", "luis"],
        unit="days",
        handoff="2026-10-30T09:00",
        timezone="America/Chicago",
    )
    assert response.status_code == 200, response.text

    assert await chain(client, admin, "2026-10-30T13:59:00Z") == []  # before the first handoff: nobody
    assert await chain(client, admin, "2026-10-30T14:00:00Z") == [("primary", "dana")]
    assert await chain(client, admin, "2026-10-31T14:00:00Z") == [("primary", "luis")]
    assert await chain(client, admin, "2026-11-01T14:30:00Z") == [("primary", "luis")]  # 08:30 CST: not yet
    assert await chain(client, admin, "2026-11-01T15:00:00Z") == [("primary", "dana")]  # 09:00 CST
    assert await chain(client, admin, "2026-11-02T15:00:00Z") == [("primary", "luis")]
    assert (await reasons(client, admin, "2026-11-01T15:00:00Z"))[0] == (
        "primary by rotation 'primaries' until Mon 02 Nov 09:00"
    )


async def test_an_hourly_rotation_counts_elapsed_hours_through_the_change_to_daylight_saving(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Chicago springs forward at 02:00 on 8 March 2026: a 12-hour turn from 20:00 CST ends at 09:00 CDT.
    await put_rotation(
        client,
        admin,
        "nights",
        role="backup",
        participants=["mei", "ada"],
        unit="hours",
        length=12,
        handoff="2026-03-07T20:00",
        timezone="America/Chicago",
    )

    assert await chain(client, admin, "2026-03-08T13:59:00Z") == [("backup", "mei")]  # 08:59 CDT
    assert await chain(client, admin, "2026-03-08T14:00:00Z") == [("backup", "ada")]  # 09:00 CDT


async def test_an_override_across_midnight_covers_for_one_person_and_then_hands_back(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await put_rotation(
        client, admin, "primaries", role="primary", participants=["luis"], unit="weeks", handoff="2026-11-02T00:00"
    )
    override = {
        "area": "1",
        "role": "primary",
        "advocate": "mei",
        "replaces": "luis",
        "starts_at": "2026-11-16T22:00:00Z",
        "ends_at": "2026-11-17T02:00:00Z",
        "note": "swap",
    }
    created = await client.post("/v1/directory/agencies/metro/overrides", json=override, headers=admin)
    assert created.status_code == 201, created.text

    assert await chain(client, admin, "2026-11-16T21:59:00Z") == [("primary", "luis")]
    assert await chain(client, admin, "2026-11-16T23:30:00Z") == [("primary", "mei")]
    assert await chain(client, admin, "2026-11-17T01:59:59Z") == [("primary", "mei")]
    assert await chain(client, admin, "2026-11-17T02:00:00Z") == [("primary", "luis")]
    assert (await reasons(client, admin, "2026-11-17T00:00:00Z"))[0].endswith("covering for luis")

    listed = (await client.get("/v1/directory/agencies/metro/overrides", headers=admin)).json()
    assert [o["id"] for o in listed] == [created.json()["id"]]
    removed = await client.delete(f"/v1/directory/agencies/metro/overrides/{created.json()['id']}", headers=admin)
    assert removed.status_code == 204
    assert await chain(client, admin, "2026-11-16T23:30:00Z") == [("primary", "luis")]


async def test_an_override_without_anyone_to_replace_adds_a_person_first_in_the_role(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await put_rotation(
        client, admin, "primaries", role="primary", participants=["luis"], unit="weeks", handoff="2026-11-02T00:00"
    )
    override = {"area": "1", "role": "primary", "advocate": "dana", "starts_at": "2026-11-16T00:00:00Z"}
    override["ends_at"] = "2026-11-17T00:00:00Z"
    assert (await client.post("/v1/directory/agencies/metro/overrides", json=override, headers=admin)).is_success

    assert await chain(client, admin, "2026-11-16T12:00:00Z") == [("primary", "dana"), ("primary", "luis")]
    # a speaker of the victim's language still comes first within the role
    assert await chain(client, admin, "2026-11-16T12:00:00Z", language="es") == [
        ("primary", "luis"),
        ("primary", "dana"),
    ]


async def test_an_area_with_nobody_scheduled_answers_an_empty_chain_and_the_hotline(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(ON_CALL, params={"area": "1", "at": "2026-11-16T12:00:00Z"}, headers=admin)

    assert (response.json()["chain"], response.json()["hotline"]) == ([], HOTLINE)


async def test_bad_rotations_and_overrides_are_refused_naming_every_problem_and_change_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await client.put(
        "/v1/directory/agencies/metro/advocates/zoe",
        json={"name": "Zoe", "phone": "+12025550111", "languages": ["en"], "areas": []},
        headers=admin,
    )
    unknown = await put_rotation(
        client, admin, "r", role="primary", participants=["nobody", "zoe"], unit="days", handoff="2026-11-16T09:00"
    )
    aware = await put_rotation(
        client, admin, "r", role="primary", participants=["dana"], unit="days", handoff="2026-11-16T09:00:00Z"
    )
    backwards = await client.post(
        "/v1/directory/agencies/metro/overrides",
        json={
            "area": "1",
            "role": "primary",
            "advocate": "dana",
            "starts_at": "2026-11-17T00:00:00Z",
            "ends_at": "2026-11-16T00:00:00Z",
        },
        headers=admin,
    )

    assert unknown.status_code == 422
    assert "unknown advocate 'nobody'" in unknown.json()["detail"]
    assert "'zoe' does not cover area 1" in unknown.json()["detail"]
    assert (aware.status_code, backwards.status_code) == (422, 422)
    assert await chain(client, admin, "2026-11-16T12:00:00Z") == []


async def test_times_a_schedule_cannot_hold_are_refused_and_the_area_keeps_answering(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A handoff in the year 9999 once made every on-call answer of its area fail (a turn past datetime's end);
    a handoff the clocks skip or show twice would start every turn an hour off. Each is refused, saying why."""
    rotation = {"role": "primary", "participants": ["dana"], "unit": "weeks", "length": 1000}
    far = await put_rotation(client, admin, "far", **rotation, handoff="9999-12-31T23:00")
    skipped = await put_rotation(
        client, admin, "gap", **rotation, handoff="2027-03-14T02:30", timezone="America/New_York"
    )
    twice = await put_rotation(
        client, admin, "twice", **rotation, handoff="2026-11-01T01:30", timezone="America/New_York"
    )
    override = {"area": "1", "role": "primary", "advocate": "dana", "starts_at": "9999-12-31T00:00:00Z"}
    late = await client.post(
        "/v1/directory/agencies/metro/overrides", json={**override, "ends_at": "9999-12-31T23:00:00Z"}, headers=admin
    )

    assert far.status_code == late.status_code == 422
    assert "must be in the years 2000 to 2100" in far.text and "must be in the years 2000 to 2100" in late.text
    assert skipped.status_code == twice.status_code == 422
    assert "There is no 02:30 on Sun 14 Mar 2027" in skipped.json()["detail"]
    assert "01:30 comes twice on Sun 01 Nov 2026" in twice.json()["detail"]
    assert await chain(client, admin, "2026-11-16T12:00:00Z") == []  # the area still answers, nobody on


PROGRAM_CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//A DV program//on-call//EN
BEGIN:VEVENT
UID:weekday-days@program.example
SUMMARY:Dana on call
DTSTART;TZID=America/Chicago:20261102T080000
DTEND;TZID=America/Chicago:20261102T200000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE
EXDATE;TZID=America/Chicago:20261111T080000
END:VEVENT
BEGIN:VEVENT
UID:weekday-days@program.example
RECURRENCE-ID;TZID=America/Chicago:20261116T080000
SUMMARY:Dana on call (late start)
DTSTART;TZID=America/Chicago:20261116T120000
DTEND;TZID=America/Chicago:20261116T200000
END:VEVENT
BEGIN:VEVENT
UID:weekend@program.example
SUMMARY:Weekend
DTSTART;VALUE=DATE:20261121
DTEND;VALUE=DATE:20261123
ATTENDEE;CN=Luis:mailto:oncall@program.example
END:VEVENT
BEGIN:VEVENT
UID:volunteer@program.example
SUMMARY:Volunteer meeting
DTSTART:20261118T180000Z
DTEND:20261118T190000Z
END:VEVENT
END:VCALENDAR
"""


async def put_calendar(
    client: httpx.AsyncClient, admin: dict[str, str], ics: str | bytes, **headers: str
) -> httpx.Response:
    return await client.put(
        f"{AREA}/calendars/program",
        params={"role": "primary"},
        content=ics,
        headers={**admin, "Content-Type": "text/calendar", **headers},
    )


async def test_a_programs_calendar_puts_who_it_names_on_call_with_its_recurrences_and_exceptions(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await put_calendar(client, admin, PROGRAM_CALENDAR)

    assert response.status_code == 200, response.text
    assert response.json() == {"name": "program", "role": "primary", "events": 4, "unmatched": ["Volunteer meeting"]}
    assert await chain(client, admin, "2026-11-04T15:00:00Z") == [("primary", "dana")]  # Wed 09:00 CST
    assert await chain(client, admin, "2026-11-11T15:00:00Z") == []  # that Wednesday is excepted
    assert await chain(client, admin, "2026-11-16T15:00:00Z") == []  # moved to start at noon that Monday
    assert await chain(client, admin, "2026-11-16T18:30:00Z") == [("primary", "dana")]
    assert await chain(client, admin, "2026-11-22T03:00:00Z") == [("primary", "luis")]  # all weekend, by attendee
    assert (await reasons(client, admin, "2026-11-16T18:30:00Z"))[0] == (
        "primary by calendar 'program': Dana on call (late start)"
    )


async def test_a_calendar_that_cannot_be_read_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    garbage = await put_calendar(client, admin, "BEGIN:VCALENDAR\nthis is not a calendar")
    not_utf8 = await put_calendar(client, admin, b"\xff\xfe")
    wrong_type = await put_calendar(client, admin, PROGRAM_CALENDAR, **{"Content-Type": "text/plain"})

    forever = PROGRAM_CALENDAR.replace("DTEND:20261118T190000Z", "DTEND:99991231T235959Z")
    ancient = PROGRAM_CALENDAR.replace("DTSTART:20261118T180000Z", "DTSTART:00010101T000000Z")
    too_late, too_early = await put_calendar(client, admin, forever), await put_calendar(client, admin, ancient)

    assert (garbage.status_code, not_utf8.status_code, wrong_type.status_code) == (422, 422, 415)
    assert garbage.headers["content-type"] == "application/problem+json"
    assert too_late.status_code == too_early.status_code == 422  # once a 500: a date past datetime's end
    assert "has no DTEND in the years 2000 to 2100" in too_late.json()["detail"]
    assert await chain(client, admin, "2026-11-04T15:00:00Z") == []


async def test_a_programs_calendar_is_removed_by_its_own_agency_and_the_removal_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock
) -> None:
    await make_program(client, admin, agency="other")
    await put_calendar(client, admin, PROGRAM_CALENDAR)
    other = await issued_token(app.state.db, role=Role.supervisor, label="Other", agency="other", now=clock.now())
    own = await issued_token(app.state.db, role=Role.supervisor, label="Metro", agency="metro", now=clock.now())

    elsewhere = await client.delete(f"{AREA}/calendars/program", headers={"Authorization": f"Bearer {other}"})
    assert elsewhere.status_code == 404
    assert await chain(client, admin, "2026-11-04T15:00:00Z") == [("primary", "dana")]

    removed = await client.delete(f"{AREA}/calendars/program", headers={"Authorization": f"Bearer {own}"})

    assert removed.status_code == 204
    assert await chain(client, admin, "2026-11-04T15:00:00Z") == []
    again = await client.delete(f"{AREA}/calendars/program", headers=admin)
    assert again.status_code == 404 and again.json()["detail"] == "No calendar 'program' in area 1."
    async with app.state.db.sessionmaker() as session:
        record = await session.scalar(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1))
    assert record is not None and record.subject == "DELETE /v1/directory/agencies/{slug}/areas/{code}/calendars/{name}"
    assert record.detail == {"slug": "metro", "code": "1", "name": "program"} and record.actor_label == "Metro"


async def test_an_advocates_feed_carries_their_own_shifts_as_imported(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await put_calendar(client, admin, PROGRAM_CALENDAR)
    issued = await client.post("/v1/directory/agencies/metro/advocates/dana/feed", headers=admin)
    assert issued.status_code == 200
    path = issued.json()["url"].removeprefix("https://callout.example.org")

    response = await client.get(path)  # no bearer token: calendar apps cannot send one; the address is the secret

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    feed = icalendar.Calendar.from_ical(response.content)
    shifts = sorted((e.decoded("DTSTART"), e.decoded("DTEND")) for e in feed.walk("VEVENT"))
    # the clock reads Monday 16 November, noon: a week back and eight ahead
    assert shifts[:3] == [
        (datetime(2026, 11, 9, 14, 0, tzinfo=UTC), datetime(2026, 11, 10, 2, 0, tzinfo=UTC)),
        # Wednesday the 11th is excepted; Monday the 16th starts at noon
        (datetime(2026, 11, 16, 18, 0, tzinfo=UTC), datetime(2026, 11, 17, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 18, 14, 0, tzinfo=UTC), datetime(2026, 11, 19, 2, 0, tzinfo=UTC)),
    ]
    assert all(str(e["SUMMARY"]) == "On call: primary, Downtown" for e in feed.walk("VEVENT"))
    assert b"luis" not in response.content.lower()

    reissued = await client.post("/v1/directory/agencies/metro/advocates/dana/feed", headers=admin)
    assert reissued.json()["url"] != issued.json()["url"]
    assert (await client.get(path)).status_code == 404  # the old address stops working


async def test_a_feed_read_back_as_a_programs_calendar_puts_the_same_person_on_call_at_the_same_times(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await put_rotation(
        client, admin, "days", role="primary", participants=["dana", "luis"], unit="days", handoff="2026-11-16T09:00"
    )
    path = (await client.post("/v1/directory/agencies/metro/advocates/dana/feed", headers=admin)).json()["url"]
    feed = (await client.get(path.removeprefix("https://callout.example.org"))).content
    assert (await client.delete(f"{AREA}/rotations/days", headers=admin)).status_code == 204

    imported = await client.put(
        f"{AREA}/calendars/from-feed",
        params={"role": "backup"},
        content=feed,
        headers={**admin, "Content-Type": "text/calendar"},
    )

    assert imported.status_code == 200 and imported.json()["unmatched"] == []
    for day in ("16", "18", "20"):  # dana's turns, every other day from the first handoff
        assert await chain(client, admin, f"2026-11-{day}T12:00:00Z") == [("backup", "dana")]
    for day in ("17", "19"):
        assert await chain(client, admin, f"2026-11-{day}T12:00:00Z") == []
