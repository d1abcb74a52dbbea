"""Cover requests: an advocate who cannot take a shift asks for cover from their own page (its link texted in answer
to COVER, or with an offer); only the eligible others are texted — of the area, on call there in no role then, whose
phone texts reach; the first to take it is put on call by an override and everyone else is told; still open a day
before the shift, the area's supervisors are texted once. Every step is in the audit trail. The clock moves;
nothing sleeps."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from services.alerts.worker import Worker
from shared import audit
from shared.audit import AuditRecord
from shared.clock import FakeClock
from shared.db import Database
from tests.conftest import PUBLIC_URL
from tests.factories import PHONES, make_program
from tests.fake_twilio import FakeTwilio
from tests.test_timeline import supervisor_token

SMS_URL = f"{PUBLIC_URL}/v1/twilio/sms"
# Beside make_program's four: kim and zoe cover area 1 (kim's phone refuses texts), raj covers area 2 only.
MORE_PHONES = {"kim": "+12025550105", "zoe": "+12025550106", "raj": "+12025550107"}
ALL_PHONES = {**PHONES, **MORE_PHONES}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# In New York time: dana primary by day, luis by night; mei backup and ada supervisor around the clock.
SHIFTS = [
    *({"advocate": "dana", "role": "primary", "day": d, "start": "08:00", "end": "20:00"} for d in DAYS),
    *({"advocate": "luis", "role": "primary", "day": d, "start": "20:00", "end": "08:00"} for d in DAYS),
    *({"advocate": "mei", "role": "backup", "day": d} for d in DAYS),
    *({"advocate": "ada", "role": "supervisor", "day": d} for d in DAYS),
]
TUESDAY = "Tue 17 Nov 08:00 to 20:00 EST"  # dana's shift the tests ask cover for (13:00 to 01:00 UTC)
IN_TUESDAYS_SHIFT = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)
THURSDAY = "Thu 19 Nov 08:00 to 20:00 EST"
REQUESTS = "/v1/directory/agencies/metro/cover-requests"
pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio) -> None:
    advocates = {"dana": ["en"], "luis": ["es"], "mei": ["en"], "ada": ["en"]}
    await make_program(client, admin, timezone="America/New_York", shifts=SHIFTS, advocates=advocates)
    await client.put("/v1/directory/agencies/metro/areas/2", json={"name": "Uptown"}, headers=admin)
    for key, area in (("kim", "1"), ("zoe", "1"), ("raj", "2")):
        person = {"name": key.title(), "phone": MORE_PHONES[key], "languages": ["en"], "areas": [area]}
        assert (
            await client.put(f"/v1/directory/agencies/metro/advocates/{key}", json=person, headers=admin)
        ).is_success
    while await worker.send_codes():  # the new phones' codes, out of the way
        pass
    await worker.run_once()
    await fake_twilio.text_in(SMS_URL, MORE_PHONES["kim"], "STOP")  # Callout's texts no longer reach kim
    fake_twilio.messages.clear()


async def cover_link(fake: FakeTwilio, key: str) -> str:
    """The advocate texts COVER; the answer holds the link to their own page."""
    answer = await fake.text_in(SMS_URL, ALL_PHONES[key], "COVER")
    found = re.search(r"/c/[\w-]+", answer.text)
    assert found, answer.text
    return found.group(0)


def form_value(page: str, when: str, name: str) -> str:
    """The value the page's form sends for the shift shown as `when` (the first such row with that form)."""
    for row in re.finditer(r'<div class="when">(.*?)</div>(.*?)</li>', page, re.S):
        value = re.search(rf'name="{name}" value="([^"]+)"', row.group(2))
        if html.unescape(row.group(1)) == when and value:
            return html.unescape(value.group(1))
    raise AssertionError(f"no {name} form for {when} in {page}")


async def ask(client: httpx.AsyncClient, link: str, when: str) -> httpx.Response:
    page = await client.get(link)
    return await client.post(link, data={"action": "ask", "shift": form_value(page.text, when, "shift")})


async def take(client: httpx.AsyncClient, link: str, when: str) -> httpx.Response:
    page = await client.get(link)
    return await client.post(link, data={"action": "take", "cover": form_value(page.text, when, "cover")})


async def texted(worker: Worker, fake: FakeTwilio) -> dict[str, list[str]]:
    """What the worker texts now, by advocate key."""
    await worker.send_codes()
    await worker.run_once()
    sent = {key: [m.body for m in fake.to(phone)] for key, phone in ALL_PHONES.items()}
    fake.messages.clear()
    return {key: bodies for key, bodies in sent.items() if bodies}


def offer_link(bodies: list[str]) -> str:
    [offer] = [body for body in bodies if "cover is asked" in body]
    return offer.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)


async def primaries_at(client: httpx.AsyncClient, admin: dict[str, str], at: datetime) -> list[str]:
    answer = await client.get(
        "/v1/directory/agencies/metro/on-call", params={"area": "1", "at": at.isoformat()}, headers=admin
    )
    return [entry["key"] for entry in answer.json()["chain"] if entry["role"] == "primary"]


async def audit_trail(database_url: str) -> tuple[list[AuditRecord], list[str]]:
    database = Database.connect(database_url, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            records = list(await session.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
            _, problems = await audit.verify(session)
            return records, problems
    finally:
        await database.close()


# -- asking ---------------------------------------------------------------------------------------------------


async def test_an_advocate_who_texts_cover_asks_from_their_page_and_only_the_eligible_are_texted(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    link = await cover_link(fake_twilio, "dana")
    page = await client.get(link)
    asked = await ask(client, link, TUESDAY)
    sent = await texted(worker, fake_twilio)
    [request] = (await client.get(REQUESTS, headers=admin)).json()

    assert page.status_code == 200 and "Ask for cover" in page.text and TUESDAY in page.text
    assert "texting 2 advocates" in asked.text and "Withdraw" in asked.text
    # Not dana (who asks), mei (backup then) nor ada (supervisor then), kim (texts fail her), raj (area 2).
    assert sorted(sent) == ["luis", "zoe"]
    for key in ("luis", "zoe"):
        [offer] = sent[key]
        assert f"cover is asked for as primary, area 1, {TUESDAY}" in offer and "/c/" in offer
        assert not any(word in offer for word in ("Dana", "Luis", "Zoe", PHONES["dana"]))  # keys, never names
    assert offer_link(sent["luis"]) != offer_link(sent["zoe"])  # each their own page
    assert (request["status"], request["advocate"], request["role"], request["area"]) == (
        "open",
        "dana",
        "primary",
        "1",
    )
    assert request["offered"] == ["luis", "zoe"] and request["asked_via"] == "COVER text"
    assert request["starts_at"] == "2026-11-17T13:00:00Z" and request["filled_by"] is None


async def test_a_shift_asked_twice_is_one_request_and_a_get_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], fake_twilio: FakeTwilio
) -> None:
    link = await cover_link(fake_twilio, "dana")
    await client.get(link)
    await client.get(link)
    nothing_yet = (await client.get(REQUESTS, headers=admin)).json()
    page = await client.get(link)
    shift = form_value(page.text, TUESDAY, "shift")
    first = await client.post(link, data={"action": "ask", "shift": shift})
    again = await client.post(link, data={"action": "ask", "shift": shift})  # a second tap, a reload

    assert nothing_yet == []
    assert "Cover asked" in first.text and "asked for cover for this shift already" in again.text
    assert len((await client.get(REQUESTS, headers=admin)).json()) == 1


async def test_cover_from_a_phone_nobody_has_is_told_so_and_a_guessed_link_finds_nothing(
    client: httpx.AsyncClient, fake_twilio: FakeTwilio
) -> None:
    answer = await fake_twilio.text_in(SMS_URL, "+12025559999", "cover")
    guessed = await client.get("/c/a-guess-at-a-token-of-length")
    posted = await client.post("/c/a-guess-at-a-token-of-length", data={"action": "take", "cover": "1"})

    assert "not an advocate's" in answer.text and "/c/" not in answer.text
    assert guessed.status_code == 404 and posted.status_code == 404


async def test_the_page_is_held_to_a_strict_csp_by_its_own_nonce_and_guessed_links_are_limited(
    client: httpx.AsyncClient, fake_twilio: FakeTwilio
) -> None:
    link = await cover_link(fake_twilio, "dana")
    page = await client.get(link)
    guesses = [await client.get(f"/c/guess-{n:04d}-of-a-token") for n in range(30)]
    limited = await client.get("/c/guess-9999-of-a-token")

    [nonce] = re.findall(r'<style nonce="([^"]+)">', page.text)
    csp = page.headers["content-security-policy"]
    assert f"style-src 'self' 'nonce-{nonce}'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script" not in page.text and page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"  # its address is its secret
    assert {g.status_code for g in guesses} == {404}
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


# -- taking -----------------------------------------------------------------------------------------------------


async def test_two_who_take_at_once_one_is_put_on_call_and_everyone_else_is_told(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await ask(client, await cover_link(fake_twilio, "dana"), TUESDAY)
    offers = {key: offer_link(bodies) for key, bodies in (await texted(worker, fake_twilio)).items()}
    pages = {key: await client.get(link) for key, link in offers.items()}
    before = await primaries_at(client, admin, IN_TUESDAYS_SHIFT)

    answers = await asyncio.gather(
        *(
            client.post(offers[key], data={"action": "take", "cover": form_value(pages[key].text, TUESDAY, "cover")})
            for key in ("luis", "zoe")
        )
    )
    [taker] = [key for key, answer in zip(("luis", "zoe"), answers, strict=True) if "you are on call" in answer.text]
    [other] = {"luis", "zoe"} - {taker}
    told = await texted(worker, fake_twilio)
    overrides = (await client.get("/v1/directory/agencies/metro/overrides", headers=admin)).json()
    [request] = (await client.get(REQUESTS, headers=admin)).json()
    late = await client.get(offers[other])

    assert before == ["dana"]
    assert "Someone else took this shift first" in answers[("luis", "zoe").index(other)].text
    assert [(o["advocate"], o["replaces"], o["role"], o["area"]) for o in overrides] == [
        (taker, "dana", "primary", "1")
    ]
    assert await primaries_at(client, admin, IN_TUESDAYS_SHIFT) == [taker]  # the on-call answer: the taker
    assert (request["status"], request["filled_by"]) == ("filled", taker)
    assert told["dana"] == [f"Callout: {taker} covers your primary shift, area 1, {TUESDAY}. You are not on call then."]
    assert told[taker] == [f"Callout: thank you. You are on call as primary, area 1, {TUESDAY}."]
    assert told[other] == [
        f"Callout: the primary shift, area 1, {TUESDAY}, you were asked to cover is taken. Thank you."
    ]
    assert "Taken by someone else" in late.text and "Take this shift" not in late.text


async def test_who_took_a_shift_can_ask_cover_for_it_in_turn_and_the_last_taker_is_on_call(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await ask(client, await cover_link(fake_twilio, "dana"), TUESDAY)
    luis_page = offer_link((await texted(worker, fake_twilio))["luis"])
    await take(client, luis_page, TUESDAY)
    await texted(worker, fake_twilio)

    asked = await ask(client, luis_page, TUESDAY)  # from his offer's page: now his own shift
    offered = await texted(worker, fake_twilio)
    took = await take(client, offer_link(offered["zoe"]), TUESDAY)
    [first, again] = (await client.get(REQUESTS, headers=admin)).json()  # none open: by time, then as asked

    assert "Cover asked" in asked.text
    assert sorted(k for k, bodies in offered.items() if any("cover is asked" in b for b in bodies)) == ["dana", "zoe"]
    assert "you are on call" in took.text
    assert await primaries_at(client, admin, IN_TUESDAYS_SHIFT) == ["zoe"]
    assert (first["advocate"], first["filled_by"], first["asked_via"]) == ("dana", "luis", "COVER text")
    assert (again["advocate"], again["filled_by"], again["asked_via"]) == ("luis", "zoe", "page")


async def test_who_took_one_shift_cannot_take_another_in_the_area_at_the_same_time(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await ask(client, await cover_link(fake_twilio, "dana"), TUESDAY)
    await ask(client, await cover_link(fake_twilio, "mei"), "Tue 17 Nov 00:00 to Wed 18 Nov 00:00 EST")  # backup
    zoe = offer_link([b for b in (await texted(worker, fake_twilio))["zoe"] if "as primary" in b])
    took = await take(client, zoe, TUESDAY)

    refused = await take(client, zoe, "Tue 17 Nov 00:00 to Wed 18 Nov 00:00 EST")
    requests = {r["role"]: r for r in (await client.get(REQUESTS, headers=admin)).json()}

    assert "you are on call" in took.text
    assert "not yours to take" in refused.text
    assert (requests["primary"]["status"], requests["backup"]["status"]) == ("filled", "open")
    assert requests["backup"]["offered"] == ["zoe"]  # the only one free all that day, when it was asked


async def test_an_ask_withdrawn_tells_those_texted_it_is_no_longer_needed(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    link = await cover_link(fake_twilio, "dana")
    asked = await ask(client, link, TUESDAY)
    offers = {key: offer_link(bodies) for key, bodies in (await texted(worker, fake_twilio)).items()}
    withdrawn = await client.post(link, data={"action": "withdraw", "cover": form_value(asked.text, TUESDAY, "cover")})
    told = await texted(worker, fake_twilio)
    late = await client.get(offers["luis"])

    assert "the shift is yours again" in withdrawn.text and "Ask for cover" in withdrawn.text
    assert sorted(told) == ["luis", "zoe"] and all(
        "no longer needs it" in b for bodies in told.values() for b in bodies
    )
    assert "No longer needed" in late.text and "Take this shift" not in late.text
    assert await primaries_at(client, admin, IN_TUESDAYS_SHIFT) == ["dana"]
    assert (await client.get(REQUESTS, headers=admin)).json()[0]["status"] == "withdrawn"


# -- unfilled, and who may see them -----------------------------------------------------------------------------


async def test_cover_still_open_a_day_before_the_shift_is_texted_to_the_supervisor_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await ask(client, await cover_link(fake_twilio, "dana"), THURSDAY)
    await texted(worker, fake_twilio)  # the offers

    await worker.watch_contacts()  # Monday noon UTC: the shift is 73 hours away
    too_early = await texted(worker, fake_twilio)
    clock.set(datetime(2026, 11, 18, 14, 0, tzinfo=UTC))  # Wednesday: 23 hours away
    await worker.watch_contacts()
    told = await texted(worker, fake_twilio)
    clock.advance(timedelta(hours=1))
    await worker.watch_contacts()
    again = await texted(worker, fake_twilio)

    def about_cover(sent: dict[str, list[str]]) -> list[tuple[str, str]]:
        return [(key, body) for key, bodies in sent.items() for body in bodies if "asked for cover" in body]

    assert about_cover(too_early) == [] and about_cover(again) == []
    assert about_cover(told) == [
        (
            "ada",
            f"Callout: advocate dana asked for cover as primary, area 1, {THURSDAY}, and nobody has taken it. They "
            "stay on call then unless you arrange cover (an override, on the program's Overrides page).",
        )
    ]


async def test_the_list_is_for_admins_and_the_agencys_own_supervisors_only(
    client: httpx.AsyncClient, admin: dict[str, str], fake_twilio: FakeTwilio, database_url: str
) -> None:
    await make_program(client, admin, agency="north", advocates={"dana": ["en"]})
    await ask(client, await cover_link(fake_twilio, "mei"), "Tue 17 Nov 00:00 to Wed 18 Nov 00:00 EST")
    own = {"Authorization": f"Bearer {await supervisor_token(database_url, 'metro')}"}
    north = {"Authorization": f"Bearer {await supervisor_token(database_url, 'north')}"}

    seen = await client.get(REQUESTS, headers=own)
    refused = await client.get(REQUESTS, headers=north)
    anonymous = await client.get(REQUESTS)
    theirs = await client.get("/v1/directory/agencies/north/cover-requests", headers=north)

    assert seen.status_code == 200 and [(r["advocate"], r["role"]) for r in seen.json()] == [("mei", "backup")]
    assert refused.status_code == 404 and anonymous.status_code == 401
    assert theirs.json() == []


async def test_every_step_is_in_the_audit_trail(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, database_url: str
) -> None:
    await ask(client, await cover_link(fake_twilio, "dana"), TUESDAY)
    luis_page = offer_link((await texted(worker, fake_twilio))["luis"])
    await take(client, luis_page, TUESDAY)
    await texted(worker, fake_twilio)

    records, problems = await audit_trail(database_url)
    steps = [(r.actor.split(":")[0], r.action, r.subject.split(" ")[0], r.detail.get("did")) for r in records]

    assert problems == []
    assert ("advocate", "change", "cover", "texted COVER") in steps
    assert ("advocate", "view", "cover", "opened") in steps  # each view of a page
    assert ("advocate", "change", "cover", "ask") in steps and ("advocate", "change", "cover", "take") in steps
    assert ("alerts", "change", "cover", "offers texted") in steps and (
        "alerts",
        "change",
        "cover",
        "filled texted",
    ) in steps
    [asked] = [r for r in records if r.detail.get("did") == "ask"]
    [took] = [r for r in records if r.detail.get("did") == "take"]
    assert asked.actor != took.actor and asked.subject == took.subject  # dana asked, luis took, the same request
    assert took.detail["outcome"] == "took" and took.detail["client"]
