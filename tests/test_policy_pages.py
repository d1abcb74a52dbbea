"""The escalation and hotline pages over HTTP (services/directory/pages/policies.py), and the API beside them: each
tier agency-wide and per area with its source and its steps in words; a policy set for one area through the form as
the API's PUT sets it, and dropped again (the API's DELETE, new: back to what applies above); the hotline and feed
watch set as PUT …/program sets them; problems shown by their fields (a step's by its row) with nothing changed;
every change audited; another agency's supervisor told "not found"."""

from __future__ import annotations

import re
from typing import Annotated, Any

import httpx
from annotated_types import Ge, Le
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.directory.models import EscalationPolicy
from services.directory.pages.policies import bound
from shared.auth import Role
from shared.clock import FakeClock
from shared.tables import Agency
from tests.factories import HOTLINE, issued_token
from tests.test_program_pages import as_admin, as_supervisor, changes, program, signed_in_as, text_of

__all__ = ["as_admin", "as_supervisor", "program"]  # fixtures: New York's program with area 1, and "other"
PAGE = "/dashboard/program/metro/policies"
HOTLINE_PAGE = "/dashboard/program/metro/hotline"
API = "/v1/directory/agencies/metro"
# Text and call the primary, wait 90 seconds; (an empty row); call the backup, wait 3 minutes; all twice more.
AREA_IMMEDIATE = {
    "tier": "immediate",
    "scope": "1",
    "steps.0.notify": "primary",
    "steps.0.via": ["sms", "voice"],
    "steps.0.wait": "1.5",
    "steps.1.wait": "",
    "steps.2.notify": "backup",
    "steps.2.via": "voice",
    "steps.2.wait": "3",
    "repeat": "2",
    "action": "save",
}
TEXT_PRIMARY = {"steps": [{"notify": ["primary"], "via": ["sms"], "wait_seconds": 600}], "repeat": 0}


async def bearer(app: FastAPI, clock: FakeClock, role: Role, agency: str | None) -> dict[str, str]:
    token = await issued_token(app.state.db, role=role, label=f"A {role.value}", agency=agency, now=clock.now())
    return {"Authorization": f"Bearer {token}"}


async def policy(client: httpx.AsyncClient, admin: dict[str, str], tier: str) -> dict[str, Any]:
    """How the tier escalates in area 1, as the alerts worker is told."""
    response = await client.get(f"{API}/on-call", params={"area": "1", "tier": tier}, headers=admin)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["policy"]
    return found


async def policies_kept(app: FastAPI) -> int:
    async with app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(EscalationPolicy)) or 0)


async def metro(app: FastAPI) -> Agency:
    async with app.state.db.sessionmaker() as session:
        agency: Agency | None = await session.scalar(select(Agency).where(Agency.slug == "metro"))
        assert agency is not None
        return agency


def card(response: httpx.Response, tier: str, scope: str) -> str:
    """One policy's card on the page, in words."""
    found = re.search(
        rf'<div class="card policy" data-tier="{tier}" data-scope="{scope}">(.*?)</div>', response.text, re.S
    )
    assert found is not None, (tier, scope)
    return text_of(httpx.Response(200, text=found.group(1))).strip()


# -- the API: back to what applies above ------------------------------------------------------------------------------


async def test_an_area_s_policy_and_the_agency_s_are_dropped_back_to_what_applies_above(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock, program: None
) -> None:
    assert (await client.put(f"{API}/policies/priority", json=TEXT_PRIMARY, headers=admin)).status_code == 200
    assert (await client.put(f"{API}/areas/1/policies/priority", json=TEXT_PRIMARY, headers=admin)).status_code == 200
    assert (await policy(client, admin, "priority"))["source"] == "area"
    other = await bearer(app, clock, Role.supervisor, "other")
    refused = await client.delete(f"{API}/areas/1/policies/priority", headers=other)
    assert refused.status_code == 404 and (await policy(client, admin, "priority"))["source"] == "area"
    own = await bearer(app, clock, Role.supervisor, "metro")
    before = len(await changes(app))

    assert (await client.delete(f"{API}/areas/1/policies/priority", headers=own)).status_code == 204
    assert (await policy(client, admin, "priority"))["source"] == "agency"
    assert (await client.delete(f"{API}/policies/priority", headers=own)).status_code == 204
    back = await policy(client, admin, "priority")
    assert back["source"] == "default" and back["steps"][0] == {
        "notify": ["primary"],
        "via": ["sms"],
        "wait_seconds": 180,
    }

    again = await client.delete(f"{API}/policies/priority", headers=own)
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"
    assert "follows the one above it already" in again.json()["detail"]
    subjects = [r.subject for r in (await changes(app))[before:]]
    assert subjects == [
        "DELETE /v1/directory/agencies/{slug}/areas/{code}/policies/{tier}",
        "DELETE /v1/directory/agencies/{slug}/policies/{tier}",
    ]


async def test_the_program_s_hotline_and_feed_watch_are_set_through_the_api_by_its_own_people_only(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock, program: None
) -> None:
    watch = {"hotline": "+12025550111", "feed_silence_minutes": 90, "it_contact": "+12025550199"}
    by_admin = await client.put(f"{API}/program", json=watch, headers=admin)
    assert by_admin.status_code == 200 and by_admin.json() == watch
    own = await bearer(app, clock, Role.supervisor, "metro")
    by_own = await client.put(f"{API}/program", json={"hotline": "+12025550112"}, headers=own)
    assert by_own.status_code == 200
    assert by_own.json() == {"hotline": "+12025550112", "feed_silence_minutes": None, "it_contact": None}
    before = len(await changes(app))

    other = await bearer(app, clock, Role.supervisor, "other")
    by_other = await client.put(f"{API}/program", json=watch, headers=other)
    bad = await client.put(f"{API}/program", json={**watch, "hotline": "555-0111"}, headers=own)

    assert by_other.status_code == 404 and by_other.headers["content-type"] == "application/problem+json"
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["hotline"]
    agency = await metro(app)
    assert (agency.hotline, agency.feed_silence_minutes, agency.it_contact) == ("+12025550112", None, None)
    assert len(await changes(app)) == before


# -- the escalation page ------------------------------------------------------------------------------------------


def test_the_page_says_the_tightest_of_a_field_s_limits() -> None:
    class Twice(BaseModel):
        minutes: Annotated[int, Field(le=10), Le(5), Ge(1)] = Field(ge=2)

    assert (bound(Twice, "minutes", Ge), bound(Twice, "minutes", Le)) == (2, 5)


async def test_each_tier_is_listed_agency_wide_and_per_area_with_its_source_and_its_steps_in_words(
    client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    assert (await client.put(f"{API}/policies/priority", json=TEXT_PRIMARY, headers=admin)).status_code == 200
    assert (await client.put(f"{API}/areas/1/policies/follow_up", json=TEXT_PRIMARY, headers=admin)).status_code == 200

    response = await client.get(PAGE, headers=as_supervisor)

    assert response.status_code == 200
    assert re.findall(r'<section class="tier" id="tier-(\w+)">', response.text) == [
        "immediate",
        "priority",
        "follow_up",
    ]
    immediate = card(response, "immediate", "")
    assert immediate.startswith("Every area Source: default (Callout's default)")
    assert (
        "text and call the primary; wait 2 min text and call the backup; wait 2 min "
        "text and call the supervisor and the hotline; wait 5 min then all once more"
    ) in immediate
    assert "Go back" not in immediate and "Go back" not in card(response, "immediate", "1")
    assert "Source: agency" in card(response, "priority", "") and "Go back to the default" in card(
        response, "priority", ""
    )
    area_priority = card(response, "priority", "1")
    assert (
        "Area 1: Downtown Source: agency" in area_priority
        and "text the primary; wait 10 min not run again" in area_priority
    )
    assert "Go back" not in area_priority  # it has none of its own
    area_follow_up = card(response, "follow_up", "1")
    assert "Source: area (this area's own)" in area_follow_up and "Go back to the default" in area_follow_up
    assert "text the primary; wait 1 day text the supervisor; wait 1 day" in card(response, "follow_up", "")


async def test_a_supervisor_sets_an_area_s_policy_as_the_api_would_drops_it_again_and_each_is_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], as_supervisor: dict[str, str]
) -> None:
    saved = await client.post(PAGE, data=AREA_IMMEDIATE, headers=as_supervisor)

    assert saved.status_code == 303
    [record] = [r for r in await changes(app) if r.subject.startswith("POST /dashboard")]
    assert saved.headers["location"] == f"{PAGE}?tier=immediate&scope=1&done={record.seq}"
    assert await policy(client, admin, "immediate") == {
        "tier": "immediate",
        "source": "area",
        "steps": [
            {"notify": ["primary"], "via": ["sms", "voice"], "wait_seconds": 90},
            {"notify": ["backup"], "via": ["voice"], "wait_seconds": 180},
        ],
        "repeat": 2,
    }
    page = await client.get(saved.headers["location"], headers=as_supervisor)
    assert "Saved: Immediate in area 1." in text_of(page)
    assert card(page, "immediate", "1") == (
        "Area 1: Downtown Source: area (this area's own) text and call the primary; wait 90 s "
        "call the backup; wait 3 min then all twice more Change Go back to the default"
    )
    assert 'name="steps.0.wait" value="1.5"' in page.text and 'name="steps.1.wait" value="3"' in page.text
    assert card(page, "immediate", "").startswith("Every area Source: default")  # the agency's untouched
    assert record.subject == "POST /dashboard/program/{slug}/policies"
    assert record.detail == {"slug": "metro", "tier": "immediate", "area": "1", "note": "Saved: Immediate in area 1."}
    assert record.actor.startswith("supervisor:token-")

    reset = await client.post(f"{PAGE}/reset", data={"tier": "immediate", "scope": "1"}, headers=as_supervisor)

    [record] = [r for r in await changes(app) if r.subject == "POST /dashboard/program/{slug}/policies/reset"]
    assert reset.status_code == 303 and reset.headers["location"] == f"{PAGE}?tier=immediate&scope=1&done={record.seq}"
    assert (await policy(client, admin, "immediate"))["source"] == "default"
    said = "Immediate in area 1 follows what applies above it again."
    assert said in text_of(await client.get(reset.headers["location"], headers=as_supervisor))
    assert record.detail == {"slug": "metro", "tier": "immediate", "area": "1", "note": said}
    again = await client.post(f"{PAGE}/reset", data={"tier": "immediate", "scope": "1"}, headers=as_supervisor)
    assert again.status_code == 404 and await policies_kept(app) == 0


async def test_a_policy_s_problems_show_by_their_rows_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))
    wrong = {
        **AREA_IMMEDIATE,
        "steps.0.via": [],
        "steps.0.wait": "soon",
        "steps.2.notify": [],
        "repeat": "9",
    }

    response = await client.post(PAGE, data=wrong, headers=as_supervisor)

    assert response.status_code == 422
    problems = dict(re.findall(r'<p class="problem" id="([\w-]+)-problem">([^<]+)</p>', response.text))
    assert problems == {
        "steps-0-via": "Choose how: a text, a call, or both.",
        "steps-0-wait_seconds": "Minutes to wait for an acceptance: more than 0, up to 10080.",
        "steps-2-notify": "Choose whom to alert: one or more.",
        "repeat": "How many times to run all the steps again: 0 to 5.",
    }
    assert 'name="steps.0.wait" value="soon"' in response.text  # as typed
    assert re.search(r'name="steps.2.via" value="voice" checked', response.text)
    for minutes in ("1e307", "inf", "nan", "10081", "0", "0.001"):  # beyond what a step may wait, or no number
        refused = await client.post(PAGE, data={**AREA_IMMEDIATE, "steps.0.wait": minutes}, headers=as_supervisor)
        assert refused.status_code == 422, minutes
        assert 'id="steps-0-wait_seconds-problem">Minutes to wait for an acceptance' in refused.text, minutes

    for typed, field in (
        ({"tier": "immediate", "scope": "1", "steps.0.wait": "", "action": "save"}, "steps"),
        ({**AREA_IMMEDIATE, "scope": "9"}, "scope"),
        ({**AREA_IMMEDIATE, "tier": "none"}, "tier"),
    ):
        refused = await client.post(PAGE, data=typed, headers=as_supervisor)
        assert refused.status_code == 422 and f'id="{field}-problem"' in refused.text, field

    assert await policies_kept(app) == 0 and len(await changes(app)) == before


async def test_another_step_row_is_added_by_showing_the_form_again_and_nothing_is_saved(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    opened = await client.get(f"{PAGE}?tier=priority&scope=1", headers=as_supervisor)
    rows = re.findall(r'<fieldset class="step" data-step="(\d+)">', opened.text)
    assert rows == ["0", "1", "2", "3", "4"]  # the default's four steps, one empty row
    assert 'name="steps.3.wait" value="10"' in opened.text

    more = await client.post(PAGE, data={**AREA_IMMEDIATE, "action": "add-row"}, headers=as_supervisor)

    assert more.status_code == 200
    assert re.findall(r'<fieldset class="step" data-step="(\d+)">', more.text) == ["0", "1", "2", "3"]
    assert 'name="steps.2.wait" value="3"' in more.text and 'name="steps.3.wait" value=""' in more.text
    assert await policies_kept(app) == 0 and not [r for r in await changes(app) if "dashboard" in r.subject]


async def test_another_agency_s_supervisor_sees_nothing_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, as_supervisor: dict[str, str]
) -> None:
    other = await signed_in_as(app, client, clock, Role.supervisor, agency="other")
    before = len(await changes(app))
    hotline = {"hotline": "+12025550111"}
    reset = {"tier": "immediate", "scope": ""}

    for path, form in ((PAGE, AREA_IMMEDIATE), (f"{PAGE}/reset", reset), (HOTLINE_PAGE, hotline)):
        seen = await client.get(path, headers=other) if "reset" not in path else None
        sent = await client.post(path, data=form, headers=other)
        cross = await client.post(path, data=form, headers={**as_supervisor, "Sec-Fetch-Site": "cross-site"})
        assert seen is None or seen.status_code == 404, path
        assert sent.status_code == 404 and "No agency 'metro'" in text_of(sent), path
        assert cross.status_code == 403 and "sent from another site" in cross.text, path

    assert await policies_kept(app) == 0 and (await metro(app)).hotline == HOTLINE
    assert len(await changes(app)) == before


# -- the hotline page ---------------------------------------------------------------------------------------------


async def test_a_supervisor_sets_the_hotline_and_feed_watch_as_the_api_would_and_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    opened = await client.get(HOTLINE_PAGE, headers=as_supervisor)
    assert opened.status_code == 200 and f'value="{HOTLINE}"' in opened.text

    sent = {"hotline": "+1 202 555 0111", "feed_silence_minutes": "90", "it_contact": "+1-202-555-0199"}
    saved = await client.post(HOTLINE_PAGE, data=sent, headers=as_supervisor)

    [record] = [r for r in await changes(app) if r.subject.startswith("POST /dashboard")]
    assert saved.status_code == 303 and saved.headers["location"] == f"{HOTLINE_PAGE}?done={record.seq}"
    agency = await metro(app)
    assert (agency.hotline, agency.feed_silence_minutes, agency.it_contact) == ("+12025550111", 90, "+12025550199")
    page = await client.get(saved.headers["location"], headers=as_supervisor)
    said = "Saved the hotline and the feed watch."
    assert said in text_of(page) and 'value="+12025550111"' in page.text and 'value="90"' in page.text
    assert record.subject == "POST /dashboard/program/{slug}/hotline"
    assert record.detail == {"slug": "metro", "note": said}
    assert record.actor.startswith("supervisor:token-")

    cleared = await client.post(
        HOTLINE_PAGE, data={**sent, "feed_silence_minutes": "", "it_contact": ""}, headers=as_supervisor
    )
    assert cleared.status_code == 303
    agency = await metro(app)
    assert (agency.hotline, agency.feed_silence_minutes, agency.it_contact) == ("+12025550111", None, None)


async def test_the_hotline_s_problems_show_by_their_fields_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, as_supervisor: dict[str, str]
) -> None:
    before = len(await changes(app))
    wrong = {"hotline": "555-0111", "feed_silence_minutes": "2", "it_contact": "IT desk"}

    response = await client.post(HOTLINE_PAGE, data=wrong, headers=as_supervisor)

    assert response.status_code == 422
    for name in ("hotline", "feed_silence_minutes", "it_contact"):
        assert re.search(rf'<p class="problem" id="{name}-problem">[^<]+</p>\s*<input[^>]+id="{name}"', response.text)
    assert "Minutes, from 5 to 10080, or nothing." in response.text
    assert 'value="555-0111"' in response.text and 'value="2"' in response.text and 'value="IT desk"' in response.text
    agency = await metro(app)
    assert (agency.hotline, agency.feed_silence_minutes, agency.it_contact) == (HOTLINE, None, None)
    assert len(await changes(app)) == before
