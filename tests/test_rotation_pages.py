"""The rotations and calendars page over HTTP (services/directory/pages/rotations.py): each area's rotations with
who is on turn now and next in the agency's time, its calendars with the events that name nobody; rotations added,
changed and removed and calendars uploaded and removed through forms that validate as the API does, show its
problems by their fields with nothing changed, and are audited naming who made the change."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.directory.models import Advocate, Calendar, Rotation
from services.directory.pages.rotations import UPLOAD_LIMIT
from services.directory.schedules import MAX_CALENDAR_BYTES
from shared.auth import Role
from shared.clock import FakeClock
from tests.factories import make_program
from tests.test_program_pages import changes, signed_in_as, text_of

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Mei is the backup and Ada the supervisor every day; primaries take turns by rotation.
WEEKLY = [
    *({"advocate": "mei", "role": "backup", "day": d} for d in DAYS),
    *({"advocate": "ada", "role": "supervisor", "day": d} for d in DAYS),
]
METRO = "/v1/directory/agencies/metro"
PAGE = "/dashboard/program/metro/rotations"
# Dana and Luis a day each from Monday 9 November, 09:00 in New York: on Monday 16 November at 07:00 (the clock)
# it is Dana's turn, since Sunday 09:00; Luis's from 09:00.
PRIMARIES = {"role": "primary", "participants": ["dana", "luis"], "unit": "days", "handoff": "2026-11-09T09:00"}
# Luis as the backup on Thursday evening, and an event that names nobody of the area.
EVENINGS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Metro DV program//on-call//EN
BEGIN:VEVENT
UID:thursday@program.example
SUMMARY:Luis backup evening
DTSTART;TZID=America/New_York:20261119T180000
DTEND;TZID=America/New_York:20261119T230000
END:VEVENT
BEGIN:VEVENT
UID:training@program.example
SUMMARY:Volunteer training
DTSTART:20261120T230000Z
DTEND:20261121T010000Z
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin, timezone="America/New_York", shifts=WEEKLY)
    await make_program(client, admin, agency="other", timezone="UTC")
    puts: list[tuple[str, dict[str, Any]]] = [
        (f"{METRO}/areas/east side", {"name": "East Side"}),
        (f"{METRO}/areas/1/rotations/primaries", PRIMARIES),
        # Zoe covers no area; Mei takes twelve-hour nights from a first handoff later this week.
        (f"{METRO}/advocates/zoe", {"name": "Zoe", "phone": "+12025550111", "languages": ["en"], "areas": []}),
        (
            f"{METRO}/areas/1/rotations/nights",
            {"role": "backup", "participants": ["mei"], "unit": "hours", "length": 12, "handoff": "2026-11-20T20:00"},
        ),
    ]
    for path, body in puts:
        response = await client.put(path, json=body, headers=admin)
        assert response.status_code == 200, (path, response.text)


@pytest.fixture
async def as_supervisor(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, program: None) -> dict[str, str]:
    return await signed_in_as(app, client, clock, Role.supervisor, agency="metro")


@pytest.fixture
async def as_other_supervisor(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, program: None
) -> dict[str, str]:
    return await signed_in_as(app, client, clock, Role.supervisor, agency="other")


async def rotations(app: FastAPI) -> dict[str, tuple[str, str, int, datetime, str, list[str]]]:
    """Every rotation by name: role, unit, length, first handoff, time zone and the participants' keys."""
    async with app.state.db.sessionmaker() as session:
        keys = {i: k for i, k in await session.execute(select(Advocate.id, Advocate.key))}
        return {
            r.name: (r.role, r.unit, r.length, r.handoff, r.timezone, [keys[i] for i in r.participants])
            for r in await session.scalars(select(Rotation))
        }


async def calendars(app: FastAPI) -> dict[str, tuple[str, str]]:
    async with app.state.db.sessionmaker() as session:
        return {c.name: (c.role, c.ics) for c in await session.scalars(select(Calendar))}


async def on_call(client: httpx.AsyncClient, admin: dict[str, str], at: str) -> list[tuple[str, str, str]]:
    response = await client.get(f"{METRO}/on-call", params={"area": "1", "at": at}, headers=admin)
    assert response.status_code == 200, response.text
    return [(e["role"], e["key"], e["reason"]) for e in response.json()["chain"]]


def problem(response: httpx.Response, field: str) -> str:
    found = re.search(rf'<p class="problem" id="{field}-problem">([^<]+)</p>', response.text)
    assert found is not None, f"no problem shown by {field}"
    return html.unescape(found.group(1))


def upload(ics: str | bytes, **fields: str) -> dict[str, Any]:
    return {
        "files": {"file": ("evenings.ics", ics, "text/calendar")},
        "data": {"area": "1", "role": "backup", "name": "evenings", **fields},
    }


# -- what the page shows ------------------------------------------------------------------------------------------


async def test_each_area_shows_its_rotations_with_who_is_on_turn_now_and_next_in_local_time(
    client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    response = await client.get(PAGE, headers=as_supervisor)

    assert response.status_code == 200
    assert "<script" not in response.text
    page = text_of(response)
    assert "primaries : primary , each turn 1 day, from Mon 09 Nov 2026 09:00 America/New_York." in page
    turns = response.text.split('data-name="primaries"')[1].split("</ol>")[0]
    assert re.findall(r"<li>(\w+) \((\w+)\)</li>", turns) == [("Dana", "dana"), ("Luis", "luis")]  # in order
    assert "On turn now: Dana (dana) until Mon 16 Nov 09:00 EST" in page
    assert "Next: Luis (luis) , Mon 16 Nov 09:00 to Tue 17 Nov 09:00 EST" in page
    # Before its first handoff, nobody: the first turn is next.
    assert "nights : backup , each turn 12 hours, from Fri 20 Nov 2026 20:00 America/New_York." in page
    assert "On turn now: nobody yet Next: Mei (mei) , Fri 20 Nov 20:00 to Sat 21 Nov 08:00 EST" in page
    assert "Covering: ada, dana, luis, mei." in page  # zoe covers no area
    east = text_of(httpx.Response(200, text=response.text.split('data-area="east side"')[1]))
    assert east.startswith("> Area east side: East Side The week in area east side . Covering: nobody.")
    assert "Rotations No rotations. Calendars No calendars." in east
    assert 'href="/dashboard/program/metro/week?area=east%20side"' in response.text
    assert 'href="/dashboard/program/metro/rotations/1/primaries"' in response.text

    # Luis leaves the area: his turns put nobody on call, and the page says so.
    luis = {"name": "Luis", "phone": "+12025550102", "languages": ["es", "en"], "areas": []}
    assert (await client.put(f"{METRO}/advocates/luis", json=luis, headers=admin)).status_code == 200
    page = text_of(await client.get(PAGE, headers=as_supervisor))
    assert "Luis (luis) not on call: inactive or not in the area" in page
    assert "Covering: ada, dana, mei." in page


async def test_another_agency_s_supervisor_finds_nothing_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, as_other_supervisor: dict[str, str]
) -> None:
    before, kept = len(await changes(app)), await rotations(app)
    for path in ("", "/1/primaries"):
        response = await client.get(PAGE + path, headers=as_other_supervisor)
        assert response.status_code == 404 and "No agency 'metro'" in text_of(response), path
    posts: list[tuple[str, dict[str, Any]]] = [
        (PAGE, {"data": {"area": "1", "name": "mine", **PRIMARIES, "participants": "dana"}}),
        (PAGE + "/1/primaries", {"data": {**PRIMARIES, "participants": "luis, dana"}}),
        (PAGE + "/1/primaries/remove", {"data": {"confirm": "on"}}),
        ("/dashboard/program/metro/calendars", upload(EVENINGS)),
    ]
    for path, sent in posts:
        response = await client.post(path, headers=as_other_supervisor, **sent)
        assert response.status_code == 404 and "No agency 'metro'" in text_of(response), path
    assert await rotations(app) == kept and await calendars(app) == {}
    assert len(await changes(app)) == before


async def test_a_form_from_another_site_is_refused_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before, kept = len(await changes(app)), await rotations(app)
    elsewhere = {**as_supervisor, "Sec-Fetch-Site": "cross-site"}
    posts: list[tuple[str, dict[str, Any]]] = [
        (PAGE, {"data": {"area": "1", "name": "mine", **PRIMARIES, "participants": "dana"}}),
        (PAGE + "/1/primaries/remove", {"data": {"confirm": "on"}}),
        ("/dashboard/program/metro/calendars", upload(EVENINGS)),
    ]
    for path, sent in posts:
        response = await client.post(path, headers=elsewhere, **sent)
        assert response.status_code == 403 and "sent from another site" in response.text, path
    assert await rotations(app) == kept and await calendars(app) == {}
    assert len(await changes(app)) == before


# -- rotations ----------------------------------------------------------------------------------------------------

BACKUPS = {
    "area": "1",
    "name": "backups",
    "role": "backup",
    "participants": "mei\r\nluis",  # a line each, as a phone's keyboard types them
    "unit": "weeks",
    "length": "1",
    "handoff": "2026-11-16T09:00",
    "timezone": "",
}


async def test_a_rotation_added_and_changed_through_the_form_is_made_as_the_api_makes_it_and_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))

    added = await client.post(PAGE, data=BACKUPS, headers=as_supervisor)

    assert added.status_code == 303, added.text
    [record] = (await changes(app))[before:]
    assert added.headers["location"] == f"{PAGE}?done={record.seq}"
    # The same rotation through the API, under another name: the two are kept alike.
    spec = {"role": "backup", "participants": ["mei", "luis"], "unit": "weeks", "handoff": "2026-11-16T09:00"}
    assert (await client.put(f"{METRO}/areas/1/rotations/by-api", json=spec, headers=admin)).status_code == 200
    kept = await rotations(app)
    assert kept["backups"] == kept["by-api"]
    assert kept["backups"] == ("backup", "weeks", 1, datetime(2026, 11, 16, 9), "America/New_York", ["mei", "luis"])
    listed = text_of(await client.get(added.headers["location"], headers=as_supervisor))
    assert "Saved rotation backups in area 1." in listed
    assert "backups : backup , each turn 1 week, from Mon 16 Nov 2026 09:00 America/New_York." in listed
    forged = await client.get(f"{PAGE}?area=1&saved=your+account+is+closed", headers=as_supervisor)
    assert forged.status_code == 200 and "Saved" not in text_of(forged)
    assert record.subject == "POST /dashboard/program/{slug}/rotations"
    saved_note = "Saved rotation backups in area 1."
    assert record.detail == {"slug": "metro", "code": "1", "name": "backups", "note": saved_note}
    assert record.actor.startswith("supervisor:token-") and record.actor_label == "A supervisor"

    form = await client.get(f"{PAGE}/1/backups", headers=as_supervisor)
    assert form.status_code == 200
    assert ">mei, luis</textarea>" in form.text and 'value="2026-11-16T09:00"' in form.text
    assert 'name="name"' not in form.text and 'name="area"' not in form.text  # a rotation keeps its place
    changed = {**BACKUPS, "participants": "luis, mei", "unit": "days", "length": "2", "timezone": "America/Chicago"}
    saved = await client.post(f"{PAGE}/1/backups", data=changed, headers=as_supervisor)

    record = (await changes(app))[-1]
    assert saved.status_code == 303 and saved.headers["location"] == f"{PAGE}?done={record.seq}"
    assert (await rotations(app))["backups"] == (
        "backup",
        "days",
        2,
        datetime(2026, 11, 16, 9),
        "America/Chicago",
        ["luis", "mei"],
    )
    # From 09:00 in Chicago (10:00 in New York) on Monday, Luis for two days (on Tuesday, Dana is the primary).
    chain = await on_call(client, admin, "2026-11-17T15:00:00Z")
    assert ("backup", "luis", "backup by rotation 'backups' until Wed 18 Nov 09:00") in chain
    assert record.subject == "POST /dashboard/program/{slug}/rotations/{code}/{name}"
    assert record.detail == {"slug": "metro", "code": "1", "name": "backups", "note": saved_note}


async def test_a_rotation_s_problems_show_by_their_fields_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before, kept = len(await changes(app)), await rotations(app)
    wrong = {**BACKUPS, "name": "Back ups", "length": "0", "handoff": "2026-11-16T09:00Z", "timezone": "Mars/Base"}

    response = await client.post(PAGE, data=wrong, headers=as_supervisor)

    assert response.status_code == 422
    assert "Lower-case letters" in problem(response, "rotation-name")
    assert "from 1 to 1000" in problem(response, "rotation-length")
    assert "without an offset" in problem(response, "rotation-handoff")
    assert "IANA time zone" in problem(response, "rotation-timezone")
    assert 'id="rotation-participants-problem"' not in response.text
    assert 'value="Back ups"' in response.text and ">mei\r\nluis</textarea>" in response.text  # as typed

    # The model takes them; the directory knows no 'nobody', and Zoe does not cover the area: as the API says.
    strangers = await client.post(PAGE, data={**BACKUPS, "participants": "mei, nobody, zoe"}, headers=as_supervisor)
    assert strangers.status_code == 422
    assert problem(strangers, "rotation-participants") == "unknown advocate 'nobody'; 'zoe' does not cover area 1."
    assert ">mei, nobody, zoe</textarea>" in strangers.text
    taken = await client.post(PAGE, data={**BACKUPS, "name": "primaries"}, headers=as_supervisor)
    assert taken.status_code == 422 and "Area 1 has a rotation 'primaries' already" in text_of(taken)
    nowhere = await client.post(PAGE, data={**BACKUPS, "area": "9"}, headers=as_supervisor)
    assert nowhere.status_code == 422 and "Choose one of the agency's areas." in problem(nowhere, "rotation-area")

    edited = await client.post(f"{PAGE}/1/primaries", data={**BACKUPS, "participants": ""}, headers=as_supervisor)
    assert edited.status_code == 422 and "in turn order" in problem(edited, "rotation-participants")
    assert "Rotation primaries in area 1" in text_of(edited)
    unknown = await client.post(f"{PAGE}/1/primaries", data={**BACKUPS, "participants": "zoe"}, headers=as_supervisor)
    assert unknown.status_code == 422 and "does not cover area 1" in problem(unknown, "rotation-participants")
    missing = await client.post(f"{PAGE}/1/nobody", data=BACKUPS, headers=as_supervisor)
    assert missing.status_code == 404 and "No rotation 'nobody' in area '1'" in text_of(missing)

    # A first handoff is one instant: not one the clocks skip or show twice, on the rotation's own clock.
    for handoff, timezone, said in (
        ("2027-03-14T02:30", "", "There is no 02:30 on Sun 14 Mar 2027 in America/New_York"),
        ("2027-11-07T01:30", "America/Chicago", "01:30 comes twice on Sun 07 Nov 2027 in America/Chicago"),
        ("9999-12-31T23:00", "", "A date in the years 2000 to 2100."),  # past the last instant in New York
    ):
        sent = {**BACKUPS, "handoff": handoff, "timezone": timezone}
        refused = await client.post(PAGE, data=sent, headers=as_supervisor)
        assert refused.status_code == 422 and said in problem(refused, "rotation-handoff"), handoff
        assert f'value="{handoff}"' in refused.text

    assert await rotations(app) == kept
    assert len(await changes(app)) == before


async def test_a_rotation_is_removed_only_once_confirmed_and_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))
    unconfirmed = await client.post(f"{PAGE}/1/primaries/remove", data={}, headers=as_supervisor)
    assert unconfirmed.status_code == 422 and "Tick the box" in problem(unconfirmed, "confirm")
    assert "primaries" in await rotations(app) and len(await changes(app)) == before

    removed = await client.post(f"{PAGE}/1/primaries/remove", data={"confirm": "on"}, headers=as_supervisor)

    [record] = (await changes(app))[before:]
    assert removed.status_code == 303 and removed.headers["location"] == f"{PAGE}?done={record.seq}"
    assert "primaries" not in await rotations(app)
    assert [role for role, _, _ in await on_call(client, admin, "2026-11-16T12:00:00Z")] == ["backup", "supervisor"]
    listed = text_of(await client.get(removed.headers["location"], headers=as_supervisor))
    said = "Removed rotation primaries from area 1."
    assert said in listed and "primaries :" not in listed
    assert record.subject == "POST /dashboard/program/{slug}/rotations/{code}/{name}/remove"
    assert record.detail == {"slug": "metro", "code": "1", "name": "primaries", "note": said}
    again = await client.post(f"{PAGE}/1/primaries/remove", data={"confirm": "on"}, headers=as_supervisor)
    assert again.status_code == 404


# -- calendars ----------------------------------------------------------------------------------------------------


async def test_a_calendar_uploaded_through_the_form_is_imported_as_the_api_imports_it_and_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))

    imported = await client.post("/dashboard/program/metro/calendars", headers=as_supervisor, **upload(EVENINGS))

    assert imported.status_code == 303, imported.text
    [record] = (await changes(app))[before:]
    assert imported.headers["location"] == f"{PAGE}?done={record.seq}"
    assert await calendars(app) == {"evenings": ("backup", EVENINGS)}
    listed = text_of(await client.get(imported.headers["location"], headers=as_supervisor))
    said = (
        "Imported calendar evenings into area 1: 2 events, 1 of them naming nobody who covers the area: nobody is on "
        "call by those, listed under the calendar."
    )
    assert said in listed
    assert "evenings : backup , 2 events, imported 2026-11-16 07:00 EST." in listed
    assert "Naming nobody who covers the area (nobody on call by them): Volunteer training" in listed
    chain = await on_call(client, admin, "2026-11-19T23:30:00Z")  # Thursday 18:30 in New York
    assert ("backup", "luis", "backup by calendar 'evenings': Luis backup evening") in chain
    assert record.subject == "POST /dashboard/program/{slug}/calendars"
    assert record.detail == {"slug": "metro", "code": "1", "name": "evenings", "role": "backup", "note": said}
    assert record.actor.startswith("supervisor:token-")

    # The API says the same of it, and importing again under the name replaces it, as the API's PUT does.
    by_api = await client.put(
        f"{METRO}/areas/1/calendars/evenings",
        params={"role": "backup"},
        content=EVENINGS,
        headers={**admin, "Content-Type": "text/calendar"},
    )
    assert by_api.json() == {"name": "evenings", "role": "backup", "events": 2, "unmatched": ["Volunteer training"]}
    one_event = EVENINGS.split("BEGIN:VEVENT\nUID:training")[0] + "END:VCALENDAR\n"
    again = await client.post(
        "/dashboard/program/metro/calendars", headers=as_supervisor, **upload(one_event, role="supervisor")
    )
    assert again.status_code == 303 and await calendars(app) == {"evenings": ("supervisor", one_event)}
    assert "1 events, each naming someone who covers the area." in text_of(
        await client.get(again.headers["location"], headers=as_supervisor)
    )


async def test_a_calendar_that_cannot_be_kept_is_refused_by_its_field_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    path, before = "/dashboard/program/metro/calendars", len(await changes(app))

    garbage = await client.post(path, headers=as_supervisor, **upload("BEGIN:VCALENDAR\nthis is not a calendar"))
    nul = await client.post(path, headers=as_supervisor, **upload(EVENINGS.replace("evening", "even\x00ing")))
    empty = await client.post(path, headers=as_supervisor, **upload(b""))
    fields = await client.post(path, headers=as_supervisor, **upload(EVENINGS, area="9", role="chief", name="Eve"))
    too_large = await client.post(path, headers=as_supervisor, **upload(b"x" * (MAX_CALENDAR_BYTES + 1)))
    not_multipart = await client.post(path, headers=as_supervisor, data={"area": "1", "role": "backup"})

    assert garbage.status_code == 422 and "Not an iCalendar file" in problem(garbage, "calendar-file")
    assert 'value="evenings"' in garbage.text and "Choose the file again" not in garbage.text
    assert nul.status_code == 422 and "NUL character" in problem(nul, "calendar-file")
    assert empty.status_code == 422 and "Choose an iCalendar file" in problem(empty, "calendar-file")
    assert fields.status_code == 422
    assert "Choose one of the agency's areas." in problem(fields, "calendar-area")
    assert "Primary, backup or supervisor." in problem(fields, "calendar-role")
    assert "Lower-case letters" in problem(fields, "calendar-name")
    assert 'value="Eve"' in fields.text and "Choose the file again" in fields.text
    assert too_large.status_code == 413 and "at most 256 KiB" in problem(too_large, "calendar-file")
    assert not_multipart.status_code == 400 and "could not be read" in problem(not_multipart, "calendar-file")
    assert await calendars(app) == {}
    assert len(await changes(app)) == before


async def test_an_upload_larger_than_allowed_is_refused_before_it_is_read_whole(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    """A body with no length declared (chunked), far larger than a calendar: reading stops at the bound."""
    sent = 0
    chunk = b"BEGIN:VCALENDAR\n" + b"X" * (64 * 1024)

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.ics"\r\n\r\n'
        for _ in range(1000):  # 64 MiB, if it were all read
            sent += len(chunk)
            yield chunk

    headers = {**as_supervisor, "Content-Type": "multipart/form-data; boundary=b"}
    response = await client.post("/dashboard/program/metro/calendars", content=endless(), headers=headers)

    assert response.status_code == 413 and "at most 256 KiB" in problem(response, "calendar-file")
    assert sent <= UPLOAD_LIMIT + len(chunk)
    declared = await client.post(
        "/dashboard/program/metro/calendars",
        content=b"--b--\r\n",
        headers={**headers, "Content-Length": str(UPLOAD_LIMIT + 1)},
    )
    assert declared.status_code == 413
    assert await calendars(app) == {}


async def test_a_calendar_is_removed_only_once_confirmed_and_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    imported = await client.post("/dashboard/program/metro/calendars", headers=as_supervisor, **upload(EVENINGS))
    assert imported.status_code == 303
    before = len(await changes(app))
    path = "/dashboard/program/metro/calendars/1/evenings/remove"

    unconfirmed = await client.post(path, data={}, headers=as_supervisor)
    assert unconfirmed.status_code == 422
    assert re.search(r'data-name="evenings">.*?<p class="problem">Tick the box', unconfirmed.text, re.S)
    assert "evenings" in await calendars(app) and len(await changes(app)) == before

    removed = await client.post(path, data={"confirm": "on"}, headers=as_supervisor)

    [record] = (await changes(app))[before:]
    assert removed.status_code == 303 and removed.headers["location"] == f"{PAGE}?done={record.seq}"
    assert await calendars(app) == {}
    assert not any(key == "luis" for _, key, _ in await on_call(client, admin, "2026-11-19T23:30:00Z"))
    said = "Removed calendar evenings from area 1."
    assert said in text_of(await client.get(removed.headers["location"], headers=as_supervisor))
    assert record.subject == "POST /dashboard/program/{slug}/calendars/{code}/{name}/remove"
    assert record.detail == {"slug": "metro", "code": "1", "name": "evenings", "note": said}
    assert (await client.post(path, data={"confirm": "on"}, headers=as_supervisor)).status_code == 404
