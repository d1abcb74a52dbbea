"""The program's pages over HTTP (services/directory/pages/): who may see which agency, what the board shows
now, the week of every role across a daylight-saving change, and the advocates' form — its problems shown next
to the fields with nothing changed, a change made as the API makes it, and audited."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.directory.models import Advocate
from services.directory.pages.common import FORM_LIMIT
from shared.audit import AuditRecord
from shared.auth import Role
from shared.clock import FakeClock
from shared.tables import AdvocatePhone, Agency, CoverOffer, CoverRequest, CoverStatus, Unreachable
from tests.factories import PHONES, issued_token, make_program
from tests.test_sessions import session_of, sign_in, with_session

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Dana is primary every day but Wednesday (a gap all that day), Mei backup and Ada supervisor every day; Luis
# covers the area but holds no shift.
SHIFTS = [
    *({"advocate": "dana", "role": "primary", "day": d} for d in DAYS if d != "wed"),
    *({"advocate": "mei", "role": "backup", "day": d} for d in DAYS),
    *({"advocate": "ada", "role": "supervisor", "day": d} for d in DAYS),
]


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin, timezone="America/New_York", shifts=SHIFTS)
    await make_program(client, admin, agency="other", timezone="UTC")


async def signed_in_as(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, role: Role, agency: str | None = None
) -> dict[str, str]:
    token = await issued_token(app.state.db, role=role, label=f"A {role.value}", agency=agency, now=clock.now())
    return with_session(session_of(await sign_in(client, token)))


@pytest.fixture
async def as_admin(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, program: None) -> dict[str, str]:
    return await signed_in_as(app, client, clock, Role.admin)


@pytest.fixture
async def as_supervisor(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, program: None) -> dict[str, str]:
    return await signed_in_as(app, client, clock, Role.supervisor, agency="metro")


def text_of(response: httpx.Response) -> str:
    """The page's words, tags dropped and spaces joined: what a reader sees."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text)))


async def test_a_page_without_a_session_goes_to_the_sign_in(client: httpx.AsyncClient, program: None) -> None:
    for path in ("", "/week", "/month", "/advocates"):
        path = "/dashboard/program/metro" + path
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/sign-in", path
    ended = await client.get("/dashboard/program/metro", headers=with_session("no-such-session"))
    assert ended.headers["location"] == "/dashboard/sign-in?ended=1"


async def test_a_supervisor_sees_only_their_own_agency(
    client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    assert (await client.get("/dashboard/program/metro", headers=as_supervisor)).status_code == 200
    for path in ("", "/week", "/month", "/advocates", "/advocates/dana"):
        other = await client.get(f"/dashboard/program/other{path}", headers=as_supervisor)
        assert other.status_code == 404 and "No agency 'other'" in text_of(other), path
    assert (await client.get("/dashboard/program/nowhere", headers=as_supervisor)).status_code == 404


async def test_an_admin_sees_any_agency(client: httpx.AsyncClient, as_admin: dict[str, str]) -> None:
    for slug in ("metro", "other"):
        response = await client.get(f"/dashboard/program/{slug}", headers=as_admin)
        assert response.status_code == 200 and f"On call now: {slug} 911" in text_of(response)
        assert "nonce-" in response.headers["content-security-policy"]
        assert "<script" not in response.text


async def test_the_board_shows_who_is_on_call_the_gaps_ahead_and_open_cover(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str], clock: FakeClock
) -> None:
    now = clock.now()  # Monday 16 Nov 2026, 07:00 in New York
    async with app.state.db.sessionmaker.begin() as session:
        agency = await session.scalar(select(Agency).where(Agency.slug == "metro"))
        assert agency is not None
        ids = dict(
            (await session.execute(select(Advocate.key, Advocate.id).where(Advocate.agency_id == agency.id))).all()
        )
        proven = await session.get_one(AdvocatePhone, ids["dana"])
        proven.verified_at = now
        session.add(Unreachable(agency_id=agency.id, advocate_id=ids["mei"], phone=PHONES["mei"], channel="sms",
                                code=21610, reason="opted out", at=now))  # fmt: skip
        tuesday = datetime(2026, 11, 17, 5, tzinfo=UTC)  # midnight in New York
        session.add(
            CoverRequest(
                agency_id=agency.id,
                area="1",
                role="primary",
                advocate_id=ids["dana"],
                starts_at=tuesday,
                ends_at=tuesday + timedelta(days=1),
                status=CoverStatus.open,
                asked_at=now,
                asked_via="page",
                offers=[CoverOffer(advocate_id=ids["luis"], key="luis", phone=PHONES["luis"])],
            )
        )

    response = await client.get("/dashboard/program/metro", headers=as_supervisor)

    assert response.status_code == 200
    page = text_of(response)
    assert "As of Mon 16 Nov 07:00 EST" in page
    on_call = re.findall(r'data-role="(\w+)" data-key="(\w+)"', response.text)
    assert on_call == [("primary", "dana"), ("backup", "mei"), ("supervisor", "ada")]
    assert "Dana (dana) primary on call mon 00:00 to tue 00:00" in page  # verified: no mark
    assert "Mei (mei) phone unverified sms unreachable" in page
    assert "Ada (ada) phone unverified" in page
    # Wednesday, all day in New York, and every Wednesday of the fourteen days
    assert "primary: Wed 18 Nov 00:00 to Thu 19 Nov 00:00 EST" in page
    assert "primary: Wed 25 Nov 00:00 to Thu 26 Nov 00:00 EST" in page
    assert page.count("primary: Wed") == 2 and "backup:" not in page
    assert "primary, Tue 17 Nov 00:00 to Wed 18 Nov 00:00 EST, for dana: asked of luis, nobody has taken it" in page


async def test_nobody_on_call_is_said_so(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, program: None
) -> None:
    clock.advance(timedelta(days=2))  # Wednesday 07:00 in New York: no primary
    as_admin = await signed_in_as(app, client, clock, Role.admin)
    page = text_of(await client.get("/dashboard/program/metro", headers=as_admin))
    assert "primary Nobody on call backup Mei (mei)" in page
    assert "primary: Wed 18 Nov 07:00 to Thu 19 Nov 00:00 EST" in page  # a gap under way: from now


async def test_the_week_holds_every_source_in_local_time_across_the_clocks_going_back(
    client: httpx.AsyncClient, admin: dict[str, str], as_admin: dict[str, str]
) -> None:
    """Sunday 1 November 2026 in New York has 25 hours: 01:00 to 02:00 comes twice. An override for Luis from
    05:00 to 06:00 UTC is 01:00 EDT to 01:00 EST: an hour that reads as none on the wall."""
    override = {
        "area": "1",
        "role": "backup",
        "advocate": "luis",
        "replaces": "mei",
        "starts_at": "2026-11-01T05:00:00Z",
        "ends_at": "2026-11-01T06:00:00Z",
    }
    created = await client.post("/v1/directory/agencies/metro/overrides", json=override, headers=admin)
    assert created.status_code == 201, created.text

    response = await client.get("/dashboard/program/metro/week?area=1&start=2026-10-29", headers=as_admin)

    assert response.status_code == 200
    days = re.split(r'<section class="day"', response.text)[1:]
    assert len(days) == 7
    labels = [re.search(r"<h3>([^<]+)</h3>", d).group(1) for d in days]  # type: ignore[union-attr]
    assert labels == ["Thu 29 Oct", "Fri 30 Oct", "Sat 31 Oct", "Sun 01 Nov", "Mon 02 Nov", "Tue 03 Nov", "Wed 04 Nov"]
    sunday = text_of(httpx.Response(200, text=days[3]))
    assert "25 hours: the clocks change" in sunday
    assert "primary 00:00 EDT to 24:00 dana primary on call sun 00:00 to mon 00:00" in sunday  # all 25 hours
    assert "backup 00:00 EDT to 01:00 EDT mei" in sunday
    assert "backup 01:00 EDT to 01:00 EST luis backup by override" in sunday
    assert "backup 01:00 EST to 24:00 mei" in sunday
    assert "stretch gap" not in days[3]
    assert "hours:" not in text_of(httpx.Response(200, text=days[0]))  # an ordinary day
    wednesday = days[6]
    assert re.search(r'class="stretch gap" data-role="primary">.*?00:00 to 24:00.*?nobody', wednesday, re.S)
    assert wednesday.count("stretch gap") == 1
    assert "start=2026-10-22" in response.text and "start=2026-11-05" in response.text  # previous, next


async def test_the_week_defaults_to_today_in_the_first_area_and_refuses_an_unknown_area(
    client: httpx.AsyncClient, as_admin: dict[str, str]
) -> None:
    response = await client.get("/dashboard/program/metro/week", headers=as_admin)
    assert response.status_code == 200
    assert "Area 1: the week from Mon 16 Nov" in text_of(response)
    assert (await client.get("/dashboard/program/metro/week?area=9", headers=as_admin)).status_code == 404


async def test_the_month_lays_out_every_day_by_weekday_with_the_gaps_red(
    client: httpx.AsyncClient, as_admin: dict[str, str]
) -> None:
    """November 2026 begins on a Sunday and has 30 days, one of them 25 hours long; nobody is primary on its four
    Wednesdays."""
    response = await client.get("/dashboard/program/metro/month?area=1&month=2026-11", headers=as_admin)

    assert response.status_code == 200
    assert "Area 1: November 2026" in text_of(response)
    assert len(re.findall(r'<div class="blank">', response.text)) == 6  # Monday to Saturday before the 1st
    days = re.findall(r'<section class="mday( has-gap)?[^"]*" data-date="([\d-]+)"', response.text)
    assert [d for _, d in days] == [f"2026-11-{n:02d}" for n in range(1, 31)]
    assert [d for gap, d in days if gap] == ["2026-11-04", "2026-11-11", "2026-11-18", "2026-11-25"]
    assert "4 days with nobody on call in some role." in text_of(response)
    first = response.text.split('data-date="2026-11-01"')[1].split("</section>")[0]
    assert "25 hours" in first and 'href="/dashboard/program/metro/week?area=1&amp;start=2026-11-01"' in first
    assert "month=2026-10" in response.text and "month=2026-12" in response.text  # previous, next

    december = await client.get("/dashboard/program/metro/month?area=1&month=2026-12", headers=as_admin)
    assert len(re.findall(r'data-date="2026-12-', december.text)) == 31
    assert len(re.findall(r'<div class="blank">', december.text)) == 1  # 1 December 2026 is a Tuesday
    today = await client.get("/dashboard/program/metro/month", headers=as_admin)
    assert "Area 1: November 2026" in text_of(today) and 'class="mday today" data-date="2026-11-16"' in today.text
    assert (await client.get("/dashboard/program/metro/month?area=9", headers=as_admin)).status_code == 404


async def test_a_week_or_a_month_no_page_can_show_is_said_so_on_a_page(
    client: httpx.AsyncClient, as_admin: dict[str, str]
) -> None:
    for query in (
        "month?month=2026-13",
        "month?month=9999-12",  # its next month is past the last date
        "month?month=0001-01",
        "month?month=0000-01",  # no such date
        "month?month=1999-12",
        "month?month=2026-1",
        "week?start=9999-12-31",
        "week?start=0001-01-01",
        "week?start=2026-02-30",
        "week?start=soon",
    ):
        response = await client.get(f"/dashboard/program/metro/{query}", headers=as_admin)
        assert response.status_code == 422 and response.headers["content-type"].startswith("text/html"), query
        assert "No such date" in text_of(response) and "from 2000-01" in text_of(response), query
    for query in ("month?month=2100-12", "week?start=2000-01-01"):  # the years' ends, shown
        assert (await client.get(f"/dashboard/program/metro/{query}", headers=as_admin)).status_code == 200


async def changes(app: FastAPI) -> list[AuditRecord]:
    async with app.state.db.sessionmaker() as session:
        return list(
            await session.scalars(select(AuditRecord).where(AuditRecord.action == "change").order_by(AuditRecord.seq))
        )


async def advocate(app: FastAPI, key: str) -> Advocate | None:
    async with app.state.db.sessionmaker() as session:
        found: Advocate | None = await session.scalar(select(Advocate).where(Advocate.key == key))
        return found


NEW = {
    "key": "rosa",
    "name": "Rosa Diaz",
    "phone": "+1 202-555-0109",
    "languages": "es, en",
    "areas": "1",
    "active": "on",
}


async def test_the_advocates_list_marks_unverified_phones(
    client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    response = await client.get("/dashboard/program/metro/advocates", headers=as_supervisor)
    assert response.status_code == 200
    assert re.findall(r'<tr data-key="(\w+)"', response.text) == ["ada", "dana", "luis", "mei"]
    assert "Luis (luis) +12025550102 unverified es, en 1 active" in text_of(response)
    assert "Add an advocate" in response.text  # a supervisor keeps their own agency's advocates


async def test_an_advocate_s_problems_show_by_their_fields_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_admin: dict[str, str]
) -> None:
    before = len(await changes(app))
    wrong = {**NEW, "key": "Rosa!", "phone": "555-0109", "languages": "es, not a language!"}

    response = await client.post("/dashboard/program/metro/advocates", data=wrong, headers=as_admin)

    assert response.status_code == 422
    for name in ("key", "phone", "languages"):
        assert re.search(rf'<p class="problem" id="{name}-problem">[^<]+</p>\s*<input[^>]+id="{name}"', response.text)
    assert 'id="name-problem"' not in response.text
    assert 'value="Rosa Diaz"' in response.text  # what was typed, kept
    assert await advocate(app, "rosa") is None and await advocate(app, "Rosa!") is None
    assert len(await changes(app)) == before

    unknown_area = await client.post("/dashboard/program/metro/advocates", data={**NEW, "areas": "9"}, headers=as_admin)
    assert unknown_area.status_code == 422 and "Unknown area(s): 9." in text_of(unknown_area)
    assert await advocate(app, "rosa") is None and len(await changes(app)) == before

    taken = await client.post("/dashboard/program/metro/advocates", data={**NEW, "key": "dana"}, headers=as_admin)
    assert taken.status_code == 422 and "There is an advocate 'dana' already" in text_of(taken)
    dana = await advocate(app, "dana")
    assert dana is not None and dana.name == "Dana"


async def test_an_advocate_added_and_changed_through_the_form_is_audited(
    app: FastAPI, client: httpx.AsyncClient, as_admin: dict[str, str]
) -> None:
    added = await client.post("/dashboard/program/metro/advocates", data=NEW, headers=as_admin)

    [record] = [r for r in await changes(app) if r.subject.startswith("POST /dashboard")]
    assert added.status_code == 303
    assert added.headers["location"] == f"/dashboard/program/metro/advocates?done={record.seq}"
    rosa = await advocate(app, "rosa")
    assert rosa is not None and (rosa.name, rosa.phone, rosa.languages) == ("Rosa Diaz", "+12025550109", ["es", "en"])
    listed = text_of(await client.get(added.headers["location"], headers=as_admin))
    forged = text_of(
        await client.get("/dashboard/program/metro/advocates?saved=your+account+is+closed", headers=as_admin)
    )
    assert "Saved" not in forged
    assert "Saved rosa." in listed and "Rosa Diaz (rosa) +12025550109 unverified es, en 1 active" in listed
    assert record.subject == "POST /dashboard/program/{slug}/advocates"
    assert record.detail == {"slug": "metro", "key": "rosa", "note": "Saved rosa."} and record.actor_label == "A admin"
    assert record.actor.startswith("admin:token-")

    form = await client.get("/dashboard/program/metro/advocates/rosa", headers=as_admin)
    assert 'value="Rosa Diaz"' in form.text and 'name="key"' not in form.text
    edited = {"name": "Rosa Díaz", "phone": "+12025550110", "languages": "es"}  # no areas, not active
    changed = await client.post("/dashboard/program/metro/advocates/rosa", data=edited, headers=as_admin)
    assert changed.status_code == 303
    rosa = await advocate(app, "rosa")
    assert rosa is not None and (rosa.name, rosa.phone, rosa.active) == ("Rosa Díaz", "+12025550110", False)
    listed = text_of(await client.get("/dashboard/program/metro/advocates", headers=as_admin))
    assert "Rosa Díaz (rosa) +12025550110 unverified es none inactive" in listed
    assert len([r for r in await changes(app) if r.subject.startswith("POST /dashboard")]) == 2

    bad = await client.post("/dashboard/program/metro/advocates/rosa", data={**edited, "name": " "}, headers=as_admin)
    assert bad.status_code == 422 and 'id="name-problem"' in bad.text
    missing = await client.post("/dashboard/program/metro/advocates/nobody", data=edited, headers=as_admin)
    assert missing.status_code == 404 and await advocate(app, "nobody") is None


async def test_a_supervisor_keeps_their_own_agency_s_advocates_and_no_other_s(
    app: FastAPI, client: httpx.AsyncClient, as_admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))
    other = await client.post("/dashboard/program/other/advocates", data={**NEW, "areas": []}, headers=as_supervisor)
    assert other.status_code == 404 and "No agency 'other'" in text_of(other)
    elsewhere = {**as_admin, "Sec-Fetch-Site": "cross-site"}
    cross = await client.post("/dashboard/program/metro/advocates", data=NEW, headers=elsewhere)
    assert cross.status_code == 403 and "sent from another site" in cross.text
    assert await advocate(app, "rosa") is None and len(await changes(app)) == before

    own = await client.post("/dashboard/program/metro/advocates", data=NEW, headers=as_supervisor)
    assert own.status_code == 303 and await advocate(app, "rosa") is not None
    [record] = (await changes(app))[before:]
    assert record.actor.startswith("supervisor:token-")
    assert record.detail == {"slug": "metro", "key": "rosa", "note": "Saved rosa."}


async def test_a_crafted_link_cannot_make_a_page_say_a_change_was_made(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, as_admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    """The page a change leads to says what it did (?done= names its audit record) to whoever made it, on its own
    agency's page, and nobody else: a link sent round can only show someone what they did themselves."""
    page = "/dashboard/program/metro/advocates"
    mine = await client.post(page, data=NEW, headers=as_supervisor)
    assert mine.status_code == 303 and "Saved rosa." in text_of(
        await client.get(mine.headers["location"], headers=as_supervisor)
    )
    theirs = await client.post("/dashboard/program/other/advocates", data={**NEW, "areas": "1"}, headers=as_admin)
    assert theirs.status_code == 303
    [supervisor_s, admin_s] = [r.seq for r in await changes(app) if r.subject.startswith("POST /dashboard")]
    colleague = await signed_in_as(app, client, clock, Role.supervisor, agency="metro")

    for headers, done in (
        (colleague, str(supervisor_s)),  # another person's change, to this agency
        (as_admin, str(supervisor_s)),
        (as_admin, str(admin_s)),  # the admin's own, to another agency
        (as_supervisor, "1"),  # the API's first change: no page's
        (as_supervisor, str(admin_s + 1000)),  # none
        (as_supervisor, "rosa"),
        (as_supervisor, "-1"),
        (as_supervisor, "9" * 40),
        (as_supervisor, "\u00b2"),  # a digit to str.isdigit, no number to int()
    ):
        shown = await client.get(page, params={"done": done}, headers=headers)
        assert shown.status_code == 200 and "Saved" not in text_of(shown), done
    own = await client.get("/dashboard/program/other/advocates", params={"done": admin_s}, headers=as_admin)
    assert "Saved rosa." in text_of(own)
    clock.advance(timedelta(minutes=11))  # an old link of one's own: not what was just done
    later = await client.get("/dashboard/program/other/advocates", params={"done": admin_s}, headers=as_admin)
    assert later.status_code == 200 and "Saved" not in text_of(later)


async def test_a_form_not_sent_as_a_page_sends_it_is_refused_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    """A page's form is URL-encoded and small: a multipart body (its files spooled to disk) or a large one is
    refused before it is parsed, on every form but the calendar's upload (test_rotation_pages.py)."""
    before = len(await changes(app))
    forms = (
        "/advocates",
        "/advocates/dana",
        "/areas",
        "/areas/1/schedule/add",
        "/areas/1/schedule/remove",
        "/rotations",
        "/overrides",
        "/policies",
        "/policies/reset",
        "/hotline",
    )
    for path in forms:
        path = "/dashboard/program/metro" + path
        multipart = await client.post(path, data=NEW, files={"file": ("a.txt", b"x" * 1000)}, headers=as_supervisor)
        assert multipart.status_code == 415 and "not sent as a page's form is" in text_of(multipart), path
        as_json = await client.post(path, json=NEW, headers=as_supervisor)
        assert as_json.status_code == 415, path
        large = await client.post(path, data={**NEW, "name": "x" * FORM_LIMIT}, headers=as_supervisor)
        assert large.status_code == 413 and "at most 64 KiB" in text_of(large), path
    assert await advocate(app, "rosa") is None and len(await changes(app)) == before
