"""The areas and weekly schedule pages over HTTP (services/directory/pages/areas.py): the areas listed, added and
renamed; a schedule shown day by day in the agency's wall time; a shift added or removed by saving the whole new
schedule as PUT …/schedule does — its problems by their fields with nothing changed, a stale remove refused, each
change audited — and nobody changing another agency's program or posting from another site."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import Advocate, Area, Shift
from services.directory.pages.common import PAGE_LOCK
from shared.auth import Role
from shared.clock import FakeClock
from shared.tables import Agency
from tests.factories import make_program
from tests.test_program_pages import changes, signed_in_as, text_of

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Area 1 covered all week in New York: dana primary, mei backup by day and luis by night, ada supervisor.
COVERED_ALL_WEEK: list[dict[str, Any]] = [
    *({"advocate": "dana", "role": "primary", "day": d} for d in DAYS),
    *({"advocate": "mei", "role": "backup", "day": d, "start": "08:00", "end": "20:00"} for d in DAYS),
    *({"advocate": "luis", "role": "backup", "day": d, "start": "20:00", "end": "08:00"} for d in DAYS),
    *({"advocate": "ada", "role": "supervisor", "day": d} for d in DAYS),
]
TUESDAY_NIGHT = "luis:backup:2640:720"  # Tuesday 20:00 (1440 + 1200 minutes into the week) for twelve hours
SCHEDULE = "/dashboard/program/metro/areas/1/schedule"
API_SCHEDULE = "/v1/directory/agencies/metro/areas/1/schedule"
ShiftRow = tuple[str, str, int, int]


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin, timezone="America/New_York", shifts=COVERED_ALL_WEEK)
    await make_program(client, admin, agency="other", timezone="UTC")


@pytest.fixture
async def as_supervisor(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, program: None) -> dict[str, str]:
    return await signed_in_as(app, client, clock, Role.supervisor, agency="metro")


async def shifts_of(app: FastAPI, agency: str = "metro") -> list[ShiftRow]:
    """Area 1's weekly schedule as the table keeps it: who, which role, from which minute of the week, how long."""
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(
            select(Advocate.key, Shift.role, Shift.start_minute, Shift.minutes)
            .join(Advocate, Advocate.id == Shift.advocate_id)
            .join(Area, Area.id == Shift.area_id)
            .join(Agency, Agency.id == Area.agency_id)
            .where(Agency.slug == agency, Area.code == "1")
        )
        return sorted((key, role, start, minutes) for key, role, start, minutes in rows)


async def areas_of(app: FastAPI, agency: str = "metro") -> dict[str, str]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(
            select(Area.code, Area.name).join(Agency, Agency.id == Area.agency_id).where(Agency.slug == agency)
        )
        return dict(rows.all())


def days_of(response: httpx.Response) -> dict[str, str]:
    """Each day's words on the schedule page, by the day as ShiftIn names it."""
    sections = re.findall(r'<section class="day" data-day="(\w+)">(.*?)</section>', response.text, re.S)
    return {day: text_of(httpx.Response(200, text=body)).strip() for day, body in sections}


async def test_the_areas_list_counts_who_covers_each_and_links_its_schedule(
    client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    await client.put("/v1/directory/agencies/metro/areas/North 2", json={"name": "Uptown"}, headers=admin)

    response = await client.get("/dashboard/program/metro/areas", headers=as_supervisor)

    assert response.status_code == 200
    page = text_of(response)
    assert "Area 1: Downtown 4 advocates cover it. Weekly schedule · The week" in page
    assert "Area North 2: Uptown 0 advocates cover it." in page
    assert 'href="/dashboard/program/metro/areas/1/schedule"' in response.text
    assert 'href="/dashboard/program/metro/areas/North%202/schedule"' in response.text
    assert 'href="/dashboard/program/metro/week?area=North%202"' in response.text
    assert "<script" not in response.text
    uptown = await client.get("/dashboard/program/metro/areas/North%202/schedule", headers=as_supervisor)
    assert uptown.status_code == 200 and "Nobody covers area North 2 yet" in text_of(uptown)


async def test_the_schedule_shows_each_shift_day_by_day_in_the_agency_s_wall_time(
    client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    response = await client.get(SCHEDULE, headers=as_supervisor)

    assert response.status_code == 200
    days = days_of(response)
    assert list(days) == list(DAYS)
    assert days["tue"] == (
        "Tuesday primary 00:00 to 24:00 dana Remove supervisor 00:00 to 24:00 ada Remove "
        "backup 08:00 to 20:00 mei Remove backup 20:00 to Wed 08:00 luis Remove"
    )
    assert "backup 20:00 to Mon 08:00 luis" in days["sun"]  # past the week's end, into the next
    assert "wall-clock time in America/New_York" in text_of(response)
    assert f'name="shift" value="{TUESDAY_NIGHT}"' in response.text
    assert 'aria-label="Remove luis as backup, Tue 20:00 to Wed 08:00"' in response.text
    chosen = re.findall(r'<option value="(\w+)"[^>]*>\w+ \(\w+\)', response.text)
    assert chosen == ["ada", "dana", "luis", "mei"]  # those who cover the area


async def test_a_shift_added_is_saved_as_the_api_saves_that_schedule_and_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))
    new = {"advocate": "luis", "role": "primary", "day": "wed", "start": "20:00", "end": "02:00"}  # the next day

    added = await client.post(SCHEDULE + "/add", data=new, headers=as_supervisor)

    assert added.status_code == 303
    [record] = (await changes(app))[before:]
    assert added.headers["location"] == f"{SCHEDULE}?done={record.seq}"
    shown = await client.get(added.headers["location"], headers=as_supervisor)
    assert "Added luis as primary, Wed 20:00 to Thu 02:00. See the week in area 1" in text_of(shown)
    assert 'href="/dashboard/program/metro/week?area=1"' in shown.text
    assert "primary 20:00 to Thu 02:00 luis" in days_of(shown)["wed"]
    by_page = await shifts_of(app)
    assert ("luis", "primary", 4080, 360) in by_page and len(by_page) == len(COVERED_ALL_WEEK) + 1
    assert record.subject == "POST /dashboard/program/{slug}/areas/{code}/schedule/add"
    assert record.detail == {
        "slug": "metro",
        "code": "1",
        "change": "added",
        "shift": "luis as primary, Wed 20:00 to Thu 02:00",
        "note": "Added luis as primary, Wed 20:00 to Thu 02:00.",
    }
    assert record.actor.startswith("supervisor:token-") and record.actor_label == "A supervisor"

    put = await client.put(API_SCHEDULE, json={"shifts": [*COVERED_ALL_WEEK, new]}, headers=admin)
    assert put.status_code == 204 and await shifts_of(app) == by_page  # the very schedule the API keeps


async def test_a_shift_s_problems_show_by_their_fields_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    await client.put("/v1/directory/agencies/metro/areas/2", json={"name": "Uptown"}, headers=admin)
    rosa = {"name": "Rosa", "phone": "+12025550109", "areas": ["2"]}
    assert (await client.put("/v1/directory/agencies/metro/advocates/rosa", json=rosa, headers=admin)).is_success
    before, kept = len(await changes(app)), await shifts_of(app)

    bad_times = {"advocate": "mei", "role": "backup", "day": "tue", "start": "25:00", "end": "7pm"}
    response = await client.post(SCHEDULE + "/add", data=bad_times, headers=as_supervisor)
    assert response.status_code == 422
    for name in ("start", "end"):
        assert re.search(rf'<p class="problem" id="{name}-problem">[^<]+</p>\s*<input[^>]+id="{name}"', response.text)
    assert 'id="advocate-problem"' not in response.text and 'value="25:00"' in response.text  # as typed
    assert "A time of day from 00:00 to 23:59" in text_of(response)

    elsewhere = {"advocate": "rosa", "role": "backup", "day": "tue", "start": "20:00", "end": "08:00"}
    response = await client.post(SCHEDULE + "/add", data=elsewhere, headers=as_supervisor)
    assert response.status_code == 422
    assert '<p class="problem" id="advocate-problem">\'rosa\' does not cover area 1.</p>' in html.unescape(
        response.text
    )
    api = await client.put(API_SCHEDULE, json={"shifts": [*COVERED_ALL_WEEK, elsewhere]}, headers=admin)
    assert api.status_code == 422 and "'rosa' does not cover area 1" in api.text  # the API's own refusal

    unknown_role = {**elsewhere, "advocate": "mei", "role": "chief"}
    response = await client.post(SCHEDULE + "/add", data=unknown_role, headers=as_supervisor)
    assert response.status_code == 422 and 'id="role-problem"' in response.text

    assert await shifts_of(app) == kept and len(await changes(app)) == before


async def test_shifts_of_an_advocate_who_stopped_covering_the_area_can_still_be_taken_out(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    """Luis no longer covers the area but still holds its shifts (he is not on call in them): the schedule stays
    open to change — another's shift added, his taken out — and only a new shift of his is refused."""
    luis = {"name": "Luis", "phone": "+12025550102", "areas": []}
    assert (await client.put("/v1/directory/agencies/metro/advocates/luis", json=luis, headers=admin)).is_success
    before, kept = len(await changes(app)), await shifts_of(app)
    his = {"advocate": "luis", "role": "primary", "day": "wed", "start": "20:00", "end": "02:00"}

    refused = await client.post(SCHEDULE + "/add", data=his, headers=as_supervisor)
    assert refused.status_code == 422 and "'luis' does not cover area 1." in text_of(refused)
    assert await shifts_of(app) == kept and len(await changes(app)) == before

    added = await client.post(SCHEDULE + "/add", data={**his, "advocate": "mei"}, headers=as_supervisor)
    removed = await client.post(SCHEDULE + "/remove", data={"shift": TUESDAY_NIGHT}, headers=as_supervisor)

    assert added.status_code == removed.status_code == 303
    assert sorted(await shifts_of(app)) == sorted(
        [*(s for s in kept if s != ("luis", "backup", 2640, 720)), ("mei", "primary", 4080, 360)]
    )
    assert len(await changes(app)) == before + 2


async def test_a_shift_removed_is_the_one_named_and_a_stale_remove_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    before, kept = len(await changes(app)), await shifts_of(app)

    removed = await client.post(SCHEDULE + "/remove", data={"shift": TUESDAY_NIGHT}, headers=as_supervisor)

    [record] = (await changes(app))[before:]
    assert removed.status_code == 303 and removed.headers["location"] == f"{SCHEDULE}?done={record.seq}"
    shown = await client.get(removed.headers["location"], headers=as_supervisor)
    assert "Removed luis as backup, Tue 20:00 to Wed 08:00. See the week in area 1" in text_of(shown)
    assert "luis" not in days_of(shown)["tue"] and "luis" in days_of(shown)["wed"]
    assert await shifts_of(app) == [s for s in kept if s != ("luis", "backup", 2640, 720)]
    assert record.subject == "POST /dashboard/program/{slug}/areas/{code}/schedule/remove"
    assert record.detail == {
        "slug": "metro",
        "code": "1",
        "change": "removed",
        "shift": "luis as backup, Tue 20:00 to Wed 08:00",
        "note": "Removed luis as backup, Tue 20:00 to Wed 08:00.",
    }

    again = await client.post(SCHEDULE + "/remove", data={"shift": TUESDAY_NIGHT}, headers=as_supervisor)
    assert again.status_code == 409 and "no longer in the schedule" in text_of(again)
    assert len(await changes(app)) == before + 1
    # The API moves luis's Wednesday night to 21:00 while the page still shows it at 20:00: the page's Remove
    # names the 20:00 shift, which is gone, and the 21:00 one stays.
    later = [
        {**s, "start": "21:00"} if (s["advocate"], s.get("day")) == ("luis", "wed") else s
        for s in COVERED_ALL_WEEK
        if (s["advocate"], s.get("day")) != ("luis", "tue")
    ]
    assert (await client.put(API_SCHEDULE, json={"shifts": later}, headers=admin)).status_code == 204
    changed, before = await shifts_of(app), len(await changes(app))
    stale = await client.post(SCHEDULE + "/remove", data={"shift": "luis:backup:4080:720"}, headers=as_supervisor)
    assert stale.status_code == 409 and "nothing was removed" in text_of(stale)
    assert ("luis", "backup", 4140, 660) in changed and await shifts_of(app) == changed
    for name in ("the first one", "luis:backup:" + "9" * 5000 + ":60", "luis:backup:\uff12:60"):
        not_a_shift = await client.post(SCHEDULE + "/remove", data={"shift": name}, headers=as_supervisor)
        assert not_a_shift.status_code == 409 and await shifts_of(app) == changed
    assert len(await changes(app)) == before


async def test_a_link_cannot_make_the_schedule_say_what_did_not_happen(
    client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    for query in (
        f"added={TUESDAY_NIGHT}",  # there, but nobody added it
        "removed=luis:primary:4080:360",  # a shift luis, who covers the area, could have had: never there
        "added=luis:primary:4080:360",
        "removed=your-account-is-closed:backup:2640:720",
        "done=1",  # the first record of all: the API's, made by the admin
    ):
        page = text_of(await client.get(f"{SCHEDULE}?{query}", headers=as_supervisor))
        assert "Added" not in page and "Removed" not in page, query


async def test_an_area_added_and_renamed_through_the_form_as_the_api_keeps_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))

    added = await client.post(
        "/dashboard/program/metro/areas", data={"code": " 2 ", "name": "Uptown"}, headers=as_supervisor
    )

    assert added.status_code == 303
    assert added.headers["location"] == f"/dashboard/program/metro/areas?done={(await changes(app))[before].seq}"
    assert "Saved area 2: Uptown." in text_of(await client.get(added.headers["location"], headers=as_supervisor))
    renamed = await client.post(
        "/dashboard/program/metro/areas", data={"rename": "1", "name": "Old Town"}, headers=as_supervisor
    )
    assert renamed.status_code == 303
    assert await areas_of(app) == {"1": "Old Town", "2": "Uptown"}  # the code stripped, as the API's path is
    records = (await changes(app))[before:]
    assert [r.detail for r in records] == [
        {"slug": "metro", "change": "added", "code": "2", "name": "Uptown", "note": "Saved area 2: Uptown."},
        {"slug": "metro", "change": "renamed", "code": "1", "name": "Old Town", "note": "Saved area 1: Old Town."},
    ]
    assert {r.subject for r in records} == {"POST /dashboard/program/{slug}/areas"}
    assert all(r.actor.startswith("supervisor:token-") for r in records)
    forged = text_of(
        await client.get("/dashboard/program/metro/areas?saved=your+account+is+closed", headers=as_supervisor)
    )
    assert "Saved" not in forged


async def test_an_area_s_problems_show_by_their_fields_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))

    response = await client.post(
        "/dashboard/program/metro/areas", data={"code": "=1+1", "name": " "}, headers=as_supervisor
    )

    assert response.status_code == 422
    for name in ("code", "name"):
        assert re.search(rf'<p class="problem" id="{name}-problem">[^<]+</p>\s*<input[^>]+id="{name}"', response.text)
    assert "starting with a letter or digit" in text_of(response) and 'value="=1+1"' in response.text
    taken = await client.post("/dashboard/program/metro/areas", data={"code": "1", "name": "X"}, headers=as_supervisor)
    assert taken.status_code == 422 and "There is an area '1' already: rename it in the list." in text_of(taken)
    blank = await client.post("/dashboard/program/metro/areas", data={"rename": "1", "name": ""}, headers=as_supervisor)
    assert blank.status_code == 422
    assert re.search(r'id="name-1-problem">[^<]+</p>\s*<input[^>]+id="name-1" name="name" value=""', blank.text)
    unknown = await client.post(
        "/dashboard/program/metro/areas", data={"rename": "9", "name": "Y"}, headers=as_supervisor
    )
    assert unknown.status_code == 404 and "No area '9'" in text_of(unknown)
    assert await areas_of(app) == {"1": "Downtown"} and len(await changes(app)) == before


async def test_another_agency_s_supervisor_changes_nothing_and_a_form_from_another_site_is_refused(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before, kept, theirs = len(await changes(app)), await shifts_of(app), await shifts_of(app, "other")
    shift = {"advocate": "mei", "role": "backup", "day": "tue", "start": "20:00", "end": "08:00"}
    posts = [
        ("/areas", {"code": "2", "name": "Uptown"}),
        ("/areas", {"rename": "1", "name": "Old Town"}),
        ("/areas/1/schedule/add", shift),
        ("/areas/1/schedule/remove", {"shift": "luis:backup:2640:1440"}),
    ]
    for path in ("/areas", "/areas/1/schedule"):
        other = await client.get(f"/dashboard/program/other{path}", headers=as_supervisor)
        assert other.status_code == 404 and "No agency 'other'" in text_of(other), path
    for path, data in posts:
        other = await client.post(f"/dashboard/program/other{path}", data=data, headers=as_supervisor)
        assert other.status_code == 404 and "No agency 'other'" in text_of(other), path
        cross = await client.post(
            f"/dashboard/program/metro{path}", data=data, headers={**as_supervisor, "Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 403 and "sent from another site" in cross.text, path
    assert (await client.get("/dashboard/program/metro/areas/9/schedule", headers=as_supervisor)).status_code == 404
    missing = await client.post("/dashboard/program/metro/areas/9/schedule/add", data=shift, headers=as_supervisor)
    assert missing.status_code == 404 and "No area '9'" in text_of(missing)
    assert await areas_of(app, "other") == {"1": "Downtown"} and await areas_of(app) == {"1": "Downtown"}
    assert await shifts_of(app) == kept and await shifts_of(app, "other") == theirs
    assert len(await changes(app)) == before


async def metro_id(app: FastAPI) -> int:
    async with app.state.db.sessionmaker() as session:
        found: int | None = await session.scalar(select(Agency.id).where(Agency.slug == "metro"))
        assert found is not None
        return found


async def waiting(session: AsyncSession, count: int) -> None:
    """Until `count` transactions wait for a lock: the requests running beside the test have come that far."""
    for _ in range(500):
        if await session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")) == count:
            return
        await asyncio.sleep(0.01)  # polling a condition: the requests' transactions, in the database
    raise AssertionError(f"{count} transactions never waited for a lock")


async def test_two_people_adding_one_area_at_once_add_it_once(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, as_supervisor: dict[str, str]
) -> None:
    """Each checks that there is no area 2 yet, then adds it: one at a time, the second finds the first's."""
    as_admin = await signed_in_as(app, client, clock, Role.admin)
    before, uptown = len(await changes(app)), {"code": "2", "name": "Uptown"}

    async with app.state.db.sessionmaker.begin() as holding:  # the agency's page changes wait for this one
        lock = {"space": PAGE_LOCK, "agency": await metro_id(app)}
        await holding.execute(text("SELECT pg_advisory_xact_lock(:space, :agency)"), lock)
        sent = [
            asyncio.create_task(client.post("/dashboard/program/metro/areas", data=uptown, headers=headers))
            for headers in (as_supervisor, as_admin)
        ]
        await waiting(holding, 2)
    answers = await asyncio.gather(*sent)

    assert sorted(a.status_code for a in answers) == [303, 422]
    [second] = [a for a in answers if a.status_code == 422]
    assert '<p class="problem" id="code-problem">There is an area &#39;2&#39; already' in second.text
    assert await areas_of(app) == {"1": "Downtown", "2": "Uptown"} and len(await changes(app)) == before + 1


async def test_an_area_the_api_adds_while_the_page_adds_it_is_refused_by_its_field(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    """The API's PUT takes no page's lock: an area 2 it is adding (not yet committed) when the page adds one too
    makes the page's wait, then fail on the area's uniqueness, and the page says so by the code."""
    before = len(await changes(app))

    async with app.state.db.sessionmaker.begin() as api:
        api.add(Area(agency_id=await metro_id(app), code="2", name="Midtown"))
        await api.flush()
        sent = asyncio.create_task(
            client.post("/dashboard/program/metro/areas", data={"code": "2", "name": "Uptown"}, headers=as_supervisor)
        )
        await waiting(api, 1)
    refused = await sent

    assert refused.status_code == 422
    assert '<p class="problem" id="code-problem">There is an area &#39;2&#39; already' in refused.text
    assert await areas_of(app) == {"1": "Downtown", "2": "Midtown"} and len(await changes(app)) == before
