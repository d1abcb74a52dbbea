"""The overrides page over HTTP (services/directory/pages/overrides.py): overrides listed as a person says them, in
the agency's time; one added through the form as the API's POST adds it, its from and to typed on the agency's
clock — across daylight-saving changes, and refused when the clocks skip or repeat the time typed — audited; one
removed; problems shown by their fields with nothing changed; another agency's supervisor told "not found"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.directory.models import Advocate, Override
from shared.auth import Role
from shared.clock import FakeClock
from shared.localtime import NotOnTheClock, instant
from shared.tables import Agency, CoverRequest, CoverStatus
from tests.test_program_pages import as_admin, as_supervisor, changes, program, signed_in_as, text_of

__all__ = ["as_admin", "as_supervisor", "program"]  # fixtures: New York's program, Luis holds no shift
PAGE = "/dashboard/program/metro/overrides"
API = "/v1/directory/agencies/metro/overrides"
NEW_YORK = "America/New_York"
# Tonight (the clock is Monday 16 Nov 2026, 07:00 in New York): Luis covers Dana's primary night.
TONIGHT = {
    "area": "1",
    "role": "primary",
    "advocate": "luis",
    "replaces": "dana",
    "starts_date": "2026-11-16",
    "starts_time": "20:00",
    "ends_date": "2026-11-17",
    "ends_time": "08:00",
    "note": "Dana at a training",
}


async def overrides_kept(app: FastAPI) -> int:
    async with app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Override)) or 0)


async def listed(client: httpx.AsyncClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(API, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]  # a JSON body is Any


def test_a_wall_time_is_read_on_the_agency_s_clock_and_one_the_clocks_skip_or_repeat_is_refused() -> None:
    # 14 March 2027 in New York: 02:00 EST becomes 03:00 EDT. 7 November 2027: 02:00 EDT becomes 01:00 EST.
    assert instant(datetime(2027, 3, 14, 1, 59), NEW_YORK) == datetime(2027, 3, 14, 6, 59, tzinfo=UTC)
    assert instant(datetime(2027, 3, 14, 3, 0), NEW_YORK) == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)
    assert instant(datetime(2027, 11, 7, 0, 59), NEW_YORK) == datetime(2027, 11, 7, 4, 59, tzinfo=UTC)
    assert instant(datetime(2027, 11, 7, 2, 0), NEW_YORK) == datetime(2027, 11, 7, 7, 0, tzinfo=UTC)
    with pytest.raises(NotOnTheClock, match=r"There is no 02:30 on Sun 14 Mar 2027 in America/New_York"):
        instant(datetime(2027, 3, 14, 2, 30), NEW_YORK)
    with pytest.raises(NotOnTheClock, match=r"01:30 comes twice on Sun 07 Nov 2027 .*\(EDT, then EST\)"):
        instant(datetime(2027, 11, 7, 1, 30), NEW_YORK)
    assert instant(datetime(2027, 11, 7, 1, 30), "UTC") == datetime(2027, 11, 7, 1, 30, tzinfo=UTC)


async def test_a_supervisor_puts_someone_on_call_tonight_as_the_api_would_and_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    added = await client.post(PAGE, data=TONIGHT, headers=as_supervisor)

    assert added.status_code == 303
    [override] = await listed(client, admin)
    [record] = [r for r in await changes(app) if r.subject.startswith("POST /dashboard")]
    assert added.headers["location"] == f"{PAGE}?done={record.seq}"
    assert override == {
        "id": override["id"],
        "area": "1",
        "role": "primary",
        "advocate": "luis",
        "replaces": "dana",
        "starts_at": "2026-11-17T01:00:00Z",  # 20:00 EST
        "ends_at": "2026-11-17T13:00:00Z",
        "note": "Dana at a training",
    }
    page = text_of(await client.get(added.headers["location"], headers=as_supervisor))
    when = "as primary in area 1 from Mon 16 Nov 20:00 to Tue 17 Nov 08:00 EST"
    assert f"Saved: luis covers dana {when}." in page and f"Luis covers Dana {when} Note: Dana at a training" in page
    on_call = await client.get(
        "/v1/directory/agencies/metro/on-call", params={"area": "1", "at": "2026-11-17T02:00:00Z"}, headers=admin
    )
    first = on_call.json()["chain"][0]
    assert (first["key"], first["role"]) == ("luis", "primary")
    week = text_of(await client.get("/dashboard/program/metro/week?area=1&start=2026-11-16", headers=as_supervisor))
    assert "primary 20:00 to 24:00 luis primary by override until Tue 17 Nov 08:00, covering for dana" in week
    assert record.subject == "POST /dashboard/program/{slug}/overrides"
    assert record.detail == {
        "slug": "metro",
        "override": str(override["id"]),
        "note": f"Saved: luis covers dana {when}.",
    }
    assert record.actor.startswith("supervisor:token-") and record.actor_label == "A supervisor"


async def test_local_times_across_the_clocks_going_forward_are_read_as_the_wall_says(
    client: httpx.AsyncClient, admin: dict[str, str], as_admin: dict[str, str]
) -> None:
    """01:00 EST to 04:00 EDT on 14 March 2027 is two hours, not three."""
    night = {**TONIGHT, "starts_date": "2027-03-14", "starts_time": "01:00", "ends_date": "2027-03-14"}
    added = await client.post(PAGE, data={**night, "ends_time": "04:00", "replaces": ""}, headers=as_admin)

    assert added.status_code == 303
    [override] = await listed(client, admin)
    assert (override["starts_at"], override["ends_at"]) == ("2027-03-14T06:00:00Z", "2027-03-14T08:00:00Z")
    assert override["replaces"] is None
    page = text_of(await client.get(PAGE, headers=as_admin))
    assert "Luis is added as primary in area 1 from Sun 14 Mar 01:00 EST to 04:00 EDT" in page


async def test_an_override_s_problems_show_by_their_fields_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))
    unfinished = {**TONIGHT, "advocate": "", "ends_time": ""}

    response = await client.post(PAGE, data=unfinished, headers=as_supervisor)

    assert response.status_code == 422
    chosen = r'<p class="problem" id="advocate-problem">Choose who takes the role.</p>\s*<select id="advocate"'
    assert re.search(chosen, response.text)
    assert 'id="ends_at-problem">A date and a time, like 2026-11-24 and 20:00.</p>' in response.text
    assert 'id="starts_at-problem"' not in response.text
    assert 'value="Dana at a training"' in response.text and 'value="20:00"' in response.text  # as typed
    assert re.search(r'<option value="dana" selected>', response.text)  # the one covered for, kept

    backwards = await client.post(PAGE, data={**TONIGHT, "ends_date": "2026-11-16"}, headers=as_supervisor)
    assert backwards.status_code == 422
    assert 'id="ends_at-problem">The end must be after the start</p>' in backwards.text

    twice = {**TONIGHT, "starts_date": "2027-11-07", "starts_time": "01:30", "ends_date": "2027-11-07"}
    skipped = {**TONIGHT, "starts_date": "2027-03-14", "starts_time": "02:30", "ends_date": "2027-03-14"}
    for typed, said in ((twice, "01:30 comes twice on Sun 07 Nov 2027"), (skipped, "There is no 02:30")):
        refused = await client.post(PAGE, data=typed, headers=as_supervisor)
        assert refused.status_code == 422 and said in refused.text
        assert re.search(r'id="starts_at-problem">[^<]*' + said, refused.text)
        assert 'id="ends_at-problem"' not in refused.text

    stranger = await client.post(PAGE, data={**TONIGHT, "advocate": "rosa"}, headers=as_supervisor)
    assert stranger.status_code == 422
    assert re.search(r'id="advocate-problem">unknown advocate &#39;rosa&#39;', stranger.text)
    assert "Overrides: metro 911" in text_of(stranger)  # the page as it was, after the session rolled back
    for_a_stranger = await client.post(PAGE, data={**TONIGHT, "replaces": "rosa"}, headers=as_supervisor)
    assert for_a_stranger.status_code == 422 and 'id="advocate-problem"' not in for_a_stranger.text
    assert re.search(r'id="replaces-problem">unknown advocate &#39;rosa&#39;', for_a_stranger.text)
    both = await client.post(PAGE, data={**TONIGHT, "advocate": "rosa", "replaces": "zoe"}, headers=as_supervisor)
    assert both.status_code == 422
    assert re.search(r'id="form-problem">unknown advocate &#39;rosa&#39;; unknown advocate &#39;zoe&#39;', both.text)

    # Years the API takes none in; 23:59 in New York on the last day a date holds is past the last instant.
    for day in ("9999-12-31", "0001-01-01"):
        far = await client.post(
            PAGE, data={**TONIGHT, "starts_date": day, "starts_time": "23:59"}, headers=as_supervisor
        )
        assert far.status_code == 422, day
        assert 'id="starts_at-problem">A date in the years 2000 to 2100.</p>' in far.text, day

    assert await overrides_kept(app) == 0 and len(await changes(app)) == before


async def test_removing_an_override_puts_the_schedule_back_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock, as_supervisor: dict[str, str]
) -> None:
    spec = {"area": "1", "role": "supervisor", "advocate": "mei", "starts_at": "2026-11-16T23:00:00Z"}
    created = await client.post(API, json={**spec, "ends_at": "2026-11-17T11:00:00Z"}, headers=admin)
    assert created.status_code == 201
    override_id = created.json()["id"]
    page = text_of(await client.get(PAGE, headers=as_supervisor))
    assert "Mei is added as supervisor in area 1 from Mon 16 Nov 18:00 to Tue 17 Nov 06:00 EST" in page
    other = await signed_in_as(app, client, clock, Role.supervisor, agency="other")
    before = len(await changes(app))

    confirmed = {"confirm": "on"}
    theirs = await client.post(
        f"/dashboard/program/other/overrides/{override_id}/remove", data=confirmed, headers=other
    )
    not_theirs = await client.post(f"{PAGE}/{override_id}/remove", data=confirmed, headers=other)
    elsewhere = {**as_supervisor, "Sec-Fetch-Site": "cross-site"}
    cross = await client.post(f"{PAGE}/{override_id}/remove", data=confirmed, headers=elsewhere)
    unconfirmed = await client.post(f"{PAGE}/{override_id}/remove", data={}, headers=as_supervisor)

    assert theirs.status_code == 404 and f"No override {override_id}" in text_of(theirs)  # not in their agency
    assert not_theirs.status_code == 404 and "No agency 'metro'" in text_of(not_theirs)
    assert cross.status_code == 403
    assert unconfirmed.status_code == 422
    problem = rf'data-override="{override_id}">.*?<p class="problem" id="remove-{override_id}-problem">Tick the box'
    assert re.search(problem, unconfirmed.text, re.S)
    for no_such in ("99999999999", "2147483648", "0", "-1", "1e3", "one"):  # none an override's id could be
        missing = await client.post(f"{PAGE}/{no_such}/remove", data=confirmed, headers=as_supervisor)
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"], no_such
    assert len(await listed(client, admin)) == 1 and len(await changes(app)) == before

    removed = await client.post(f"{PAGE}/{override_id}/remove", data=confirmed, headers=as_supervisor)

    [record] = (await changes(app))[before:]
    assert removed.status_code == 303 and removed.headers["location"] == f"{PAGE}?done={record.seq}"
    assert await listed(client, admin) == []
    page = text_of(await client.get(removed.headers["location"], headers=as_supervisor))
    said = f"Removed override {override_id}: the schedule applies again for its time."
    assert said in page and "No overrides ahead." in page
    assert record.subject == "POST /dashboard/program/{slug}/overrides/{override_id}/remove"
    assert record.detail == {"slug": "metro", "override_id": str(override_id), "note": said}
    again = await client.post(f"{PAGE}/{override_id}/remove", data=confirmed, headers=as_supervisor)
    assert again.status_code == 404 and len(await changes(app)) == before + 1


async def test_another_agency_s_supervisor_sees_nothing_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, as_supervisor: dict[str, str]
) -> None:
    other = await signed_in_as(app, client, clock, Role.supervisor, agency="other")
    before = len(await changes(app))

    seen = await client.get(PAGE, headers=other)
    sent = await client.post(PAGE, data=TONIGHT, headers=other)
    cross = await client.post(PAGE, data=TONIGHT, headers={**as_supervisor, "Sec-Fetch-Site": "cross-site"})

    assert seen.status_code == 404 and sent.status_code == 404 and "No agency 'metro'" in text_of(sent)
    assert cross.status_code == 403 and "sent from another site" in cross.text
    assert await overrides_kept(app) == 0 and len(await changes(app)) == before


async def test_an_override_a_cover_request_made_says_so(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock, as_supervisor: dict[str, str]
) -> None:
    night = {"area": "1", "role": "primary", "advocate": "luis", "replaces": "dana", "note": "cover request 1"}
    created = await client.post(
        API, json={**night, "starts_at": "2026-11-18T01:00:00Z", "ends_at": "2026-11-18T13:00:00Z"}, headers=admin
    )
    async with app.state.db.sessionmaker.begin() as session:
        agency = await session.scalar(select(Agency).where(Agency.slug == "metro"))
        assert agency is not None
        ids = dict(
            (await session.execute(select(Advocate.key, Advocate.id).where(Advocate.agency_id == agency.id))).all()
        )
        session.add(
            CoverRequest(
                agency_id=agency.id,
                area="1",
                role="primary",
                advocate_id=ids["dana"],
                starts_at=datetime(2026, 11, 18, 1, tzinfo=UTC),
                ends_at=datetime(2026, 11, 18, 13, tzinfo=UTC),
                status=CoverStatus.filled,
                asked_at=clock.now(),
                asked_via="page",
                filled_by=ids["luis"],
                filled_at=clock.now() + timedelta(minutes=5),
                override_id=created.json()["id"],
                offers=[],
            )
        )

    page = text_of(await client.get(PAGE, headers=as_supervisor))

    assert "Luis covers Dana as primary in area 1 from Tue 17 Nov 20:00 to Wed 18 Nov 08:00 EST" in page
    assert "From a cover request: Dana asked, Luis took it." in page
