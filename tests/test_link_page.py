"""The handoff on the advocate's phone: whoever accepts has the link, the page shows the details to them alone and
only while the callout runs, Twilio's requests apply once however often they come, and no working link lies in
the database. The clock moves; nothing sleeps."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.db import libpq_url
from tests.conftest import PUBLIC_URL
from tests.factories import HOTLINE, PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FROM, FakeTwilio, Message

SMS_URL = f"{PUBLIC_URL}/v1/twilio/sms"
LUIS, DANA, MEI = PHONES["luis"], PHONES["dana"], PHONES["mei"]
PERSONAL = ("Ziggurat", "Apt 9", "62704", "Springfield", "7777", "Quetzal", "FIREARM")
PREVIEW_BOT = {"User-Agent": "WhatsApp/2.23.20.0"}
pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin, timezone="America/Chicago")


def link_of(text: Message) -> str:
    return text.body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)


def shows_personal(html: str) -> list[str]:
    return [value for value in PERSONAL if value in html]


async def audit_details(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT detail, client, user_agent FROM audit_log WHERE subject LIKE 'link page%' ORDER BY seq"
        )
    finally:
        await conn.close()
    return [json.loads(r["detail"]) | {"client": r["client"], "user_agent": r["user_agent"]} for r in rows]


async def test_before_anyone_accepts_the_page_shows_nothing_personal_and_a_preview_bot_is_audited_as_such(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, database_url: str
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    [text] = fake_twilio.texts

    previewed = await client.get(link_of(text), headers=PREVIEW_BOT)

    assert previewed.status_code == 200 and "IMMEDIATE" in previewed.text and "Accept" in previewed.text
    assert "area" in previewed.text.lower() and ">es<" in previewed.text  # the language, to know who can take it
    assert shows_personal(previewed.text) == []
    [seen] = await audit_details(database_url)
    assert seen["user_agent"].startswith("WhatsApp") and seen["personal_data_shown"] is False
    assert seen["client"]  # the client's address, as the server saw it


async def test_the_details_are_for_the_acceptor_alone_and_only_until_the_callout_ends(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    event = dv_event()
    await post_event(client, event)
    await worker.run_once()
    clock.advance(timedelta(minutes=2))
    await worker.run_once()  # the backup is alerted too
    primary, backup = (link_of(fake_twilio.to(phone)[0]) for phone in (LUIS, MEI))

    accepted = await client.post(backup, data={"action": "accept"})
    for_the_other = await client.get(primary)
    for_the_acceptor = await client.get(backup)
    await post_event(client, {**event, "status": "closed"})
    await worker.run_once()
    after_the_end = await client.get(backup)

    assert "You accepted this callout" in accepted.text and "1234 Ziggurat Lane" in accepted.text
    assert "1234 Ziggurat Lane" in for_the_acceptor.text and "+12025557777" in for_the_acceptor.text
    assert "Someone else accepted" in for_the_other.text and shows_personal(for_the_other.text) == []
    assert "no longer open" in after_the_end.text and shows_personal(after_the_end.text) == []
    assert "CAD closed the call" in after_the_end.text and "CST" in after_the_end.text  # the agency's own time


async def test_whoever_accepts_by_a_call_without_a_text_is_texted_their_own_link(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    policy = {"steps": [{"notify": ["primary"], "via": ["voice"], "wait_seconds": 180}], "repeat": 0}
    assert (await client.put("/v1/directory/agencies/metro/policies/immediate", json=policy, headers=admin)).is_success
    await post_event(client, dv_event())
    await worker.run_once()
    [call] = fake_twilio.calls

    pressed = await fake_twilio.press(call, "1")
    await worker.run_once()

    assert "texting you a link" in pressed.text
    [text] = fake_twilio.to(LUIS)
    assert "you accepted" in text.body
    page = await client.get(link_of(text))
    assert "You accepted this callout" in page.text and "1234 Ziggurat Lane" in page.text


async def test_whoever_accepts_holding_a_text_is_not_texted_again(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    [call] = fake_twilio.calls

    pressed = await fake_twilio.press(call, "1")
    await worker.run_once()

    assert "in your text message" in pressed.text
    assert len(fake_twilio.to(LUIS)) == 1


async def test_a_replayed_text_changes_nothing_and_gets_the_same_answer(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    first = await post_event(client, dv_event())
    await worker.run_once()
    accepted = await fake_twilio.text_in(SMS_URL, LUIS, "1")
    second = await post_event(client, dv_event())
    await worker.run_once()

    replayed = await fake_twilio.replay(accepted)

    assert replayed.status_code == 200 and replayed.text == accepted.text
    assert f"Accepted callout {first.json()['callout']['code']}" in replayed.text
    open_ = (await client.get(link_of(fake_twilio.to(LUIS)[-1]))).text
    assert "Waiting for an advocate" in open_ and second.json()["callout"]["code"] in open_  # not accepted by it


async def test_a_repeated_status_callback_is_applied_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    [text] = fake_twilio.texts

    delivered = await fake_twilio.send_status(text, "delivered")
    again = await fake_twilio.replay(delivered)

    assert (delivered.status_code, again.status_code) == (204, 204)
    entries = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    assert [e["stage"] for e in entries].count("notification_delivered") == 1


async def test_no_working_link_lies_in_the_database(
    worker: Worker, client: httpx.AsyncClient, fake_twilio: FakeTwilio, database_url: str
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    [text] = fake_twilio.texts
    token = link_of(text).removeprefix("/l/")

    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        bodies = [r["body"] for r in await conn.fetch("SELECT body FROM notifications")]
    finally:
        await conn.close()

    assert bodies and not any(token in body or "/l/" in body or "Callout" in body for body in bodies)


async def accepted_on_the_page(
    client: httpx.AsyncClient, worker: Worker, fake: FakeTwilio, **event: Any
) -> tuple[str, str]:
    """A callout accepted by the primary on the page: their link, and the incident's reference."""
    ref = (await post_event(client, dv_event(**event))).json()["incident_ref"]
    await worker.run_once()
    link = link_of(fake.to(LUIS)[0])
    assert "You accepted" in (await client.post(link, data={"action": "accept"})).text
    return link, ref


async def stages_of(client: httpx.AsyncClient, admin: dict[str, str], ref: str) -> list[tuple[str, dict[str, Any]]]:
    entries = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    return [(e["stage"], e["data"]) for e in entries]


async def test_call_the_survivor_bridges_through_the_programs_number_and_a_real_conversation_is_contact(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    link, ref = await accepted_on_the_page(client, worker, fake_twilio)

    calling = await client.post(link, data={"action": "call_survivor"})
    await worker.run_once()
    bridge = fake_twilio.calls[-1]
    ended = await fake_twilio.bridge(bridge, "completed", seconds=95)

    assert "Calling you now" in calling.text
    _, caller_id, number = bridge.dial
    assert (bridge.to, caller_id, number) == (LUIS, FROM, "+12025557777")  # the safe contact, never the 911 caller
    assert ended.status_code == 200
    contact = [d for stage, d in await stages_of(client, admin, ref) if stage == "survivor_contacted"]
    assert contact == [{"role": "primary", "advocate_id": 2, "via": "call", "seconds": 95}]


@pytest.mark.parametrize(
    ("status", "seconds", "outcome"),
    [("busy", 0, "busy"), ("no-answer", 0, "no-answer"), ("completed", 8, "answered, too short to count")],
)
async def test_a_masked_call_that_did_not_reach_the_survivor_is_an_attempt_with_its_outcome(
    status: str,
    seconds: int,
    outcome: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
) -> None:
    link, ref = await accepted_on_the_page(client, worker, fake_twilio)
    await client.post(link, data={"action": "call_survivor"})
    await worker.run_once()

    await fake_twilio.bridge(fake_twilio.calls[-1], status, seconds=seconds)

    stages = await stages_of(client, admin, ref)
    assert "survivor_contacted" not in [stage for stage, _ in stages]
    [attempt] = [d for stage, d in stages if stage == "contact_attempted"]
    assert (attempt["party"], attempt["outcome"]) == ("survivor", outcome)


async def test_without_consent_there_is_no_call_to_the_survivor_but_the_hotline_can_be_called(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    victim = {
        "role": "victim",
        "language": "es",
        "consents_to_contact": False,
        "safe_contact": {"phone": "+12025557777"},
    }
    link, _ = await accepted_on_the_page(client, worker, fake_twilio, persons=[victim])
    calls_before = len(fake_twilio.calls)

    page = (await client.get(link)).text
    refused = await client.post(link, data={"action": "call_survivor"})
    hotline = await client.post(link, data={"action": "call_hotline"})
    await worker.run_once()

    assert "Call the survivor" not in page and "Call the hotline" in page
    assert "cannot be made" in refused.text and "Calling you now" in hotline.text
    [bridge] = fake_twilio.calls[calls_before:]
    assert bridge.dial[2] == HOTLINE


async def test_only_the_acceptor_can_call_and_only_while_the_callout_runs(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    event = dv_event()
    await post_event(client, event)
    await worker.run_once()
    clock.advance(timedelta(minutes=2))
    await worker.run_once()
    primary, backup = (link_of(fake_twilio.to(phone)[0]) for phone in (LUIS, MEI))
    await client.post(primary, data={"action": "accept"})
    calls_before = len(fake_twilio.calls)

    other = await client.post(backup, data={"action": "call_survivor"})
    await post_event(client, {**event, "status": "closed"})
    await worker.run_once()
    late = await client.post(primary, data={"action": "call_survivor"})
    await worker.run_once()

    assert "cannot be made" in other.text and "cannot be made" in late.text
    assert len(fake_twilio.calls) == calls_before
