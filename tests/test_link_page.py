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
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio, Message

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
        rows = await conn.fetch("SELECT detail FROM audit_log WHERE subject LIKE 'link page%' ORDER BY seq")
    finally:
        await conn.close()
    return [json.loads(r["detail"]) for r in rows]


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
