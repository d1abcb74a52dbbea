"""Alerts: the worker texts whoever is on call through (fake) Twilio, retries faults, and moves on at once."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from services.alerts.models import Notification
from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.db import Database
from tests.conftest import PUBLIC_URL
from tests.factories import HOTLINE, PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FROM, FakeTwilio, Fault

SMS_SHAPE = re.compile(
    r"^Callout [2-9A-HJKMNP-Z]{4}: (IMMEDIATE|PRIORITY|FOLLOW-UP) DV call, area 1\. "
    r"Reply 1 to accept, 2 to decline\. " + re.escape(PUBLIC_URL) + r"/l/[A-Za-z0-9_-]{22}$"
)


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def timeline(client: httpx.AsyncClient, admin: dict[str, str], ref: str) -> list[dict]:  # type: ignore[type-arg]
    response = await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)
    assert response.status_code == 200
    return response.json()["entries"]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("program")
async def test_dv_call_texts_the_primary_who_speaks_the_victims_language(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    await worker.run_once()

    [message] = fake_twilio.messages
    assert message.to == PHONES["luis"]  # a primary, and the one who speaks Spanish
    assert message.from_ == FROM
    assert message.form["StatusCallback"] == f"{PUBLIC_URL}/v1/twilio/sms-status"
    assert message.form["ValidityPeriod"] == "900"
    stages = [e["stage"] for e in await timeline(client, admin, ref)]
    assert stages == ["cad_received", "triaged", "advocate_matched", "notification_sent"]
    matched = (await timeline(client, admin, ref))[2]["data"]
    assert (matched["role"], matched["language_match"]) == ("primary", True)


@pytest.mark.usefixtures("program")
async def test_the_text_carries_no_personal_data(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    event = dv_event(type_text="Caller Rosalind Featherstonehaugh says ex is outside")
    await post_event(client, event)

    await worker.run_once()

    [message] = fake_twilio.messages
    assert SMS_SHAPE.match(message.body), message.body
    for personal in ("Ziggurat", "1234", "Apt 9", "62704", "Springfield", "7777", "Quetzal", "Rosalind", "es", "q1"):
        assert personal not in message.body.split("/l/")[0]


@pytest.mark.usefixtures("program")
@pytest.mark.parametrize("fault", [Fault(status=500), Fault(status=503), Fault(status=429)], ids=["500", "503", "429"])
async def test_provider_faults_are_retried_with_backoff(
    fault: Fault, client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(fault)
    await post_event(client, dv_event())

    await worker.run_once()
    assert (fake_twilio.requests, len(fake_twilio.messages)) == (1, 0)
    await worker.run_once()  # the retry is a timer: not due yet
    assert fake_twilio.requests == 1

    clock.advance(timedelta(seconds=2))  # past the first backoff (1 s plus at most 1 s of jitter)
    await worker.run_once()

    assert [m.to for m in fake_twilio.messages] == [PHONES["luis"]]


@pytest.mark.usefixtures("program")
async def test_a_provider_that_does_not_answer_times_out_and_is_retried(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(hang=True))
    await post_event(client, dv_event())

    await worker.run_once()  # gives up after the client's timeout (0.5 s in tests)
    clock.advance(timedelta(seconds=2))
    await worker.run_once()

    assert [m.to for m in fake_twilio.messages] == [PHONES["luis"]]


@pytest.mark.usefixtures("program")
async def test_an_invalid_number_moves_to_the_next_person_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(Fault(status=400, code=21211))
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    await worker.run_once()

    assert [m.to for m in fake_twilio.messages] == [PHONES["dana"]]  # the other primary, without waiting
    entries = await timeline(client, admin, ref)
    assert [e["stage"] for e in entries][3:] == ["notification_failed", "escalated", "notification_sent"]
    assert entries[3]["data"]["code"] == 21211


@pytest.mark.usefixtures("program")
async def test_retries_that_never_succeed_move_on_to_the_next_person(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(*[Fault(status=500)] * 4)
    await post_event(client, dv_event())

    for _ in range(5):
        await worker.run_once()
        clock.advance(timedelta(seconds=61))

    assert [m.to for m in fake_twilio.messages] == [PHONES["dana"]]


async def test_nobody_on_call_alerts_the_hotline_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await make_program(client, admin, shifts=[])
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    await worker.run_once()

    [message] = fake_twilio.messages
    assert message.to == HOTLINE
    assert "no advocate reached" in message.body
    escalated = (await timeline(client, admin, ref))[2]
    assert (escalated["stage"], escalated["data"]["reason"]) == ("escalated", "nobody on call")


async def test_when_every_recipient_fails_the_callout_is_marked_unheard(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, database_url: str
) -> None:
    await make_program(client, admin, shifts=[])
    fake_twilio.fail_next(Fault(status=400, code=21614))
    await post_event(client, dv_event())

    await worker.run_once()

    assert fake_twilio.messages == []
    database = Database.connect(database_url, pool_size=1)
    async with database.sessionmaker() as session:
        assert await session.scalar(select(Notification.status)) == "failed"
    await database.close()


@pytest.mark.usefixtures("program")
async def test_a_directory_outage_is_retried_then_the_hotline_is_alerted(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    worker.directory.http._transport = httpx.MockTransport(lambda _: httpx.Response(503))  # the directory is down
    await post_event(client, dv_event())

    for _ in range(3):
        await worker.run_once()
        assert fake_twilio.messages == [] or fake_twilio.messages[0].to == HOTLINE
        clock.advance(timedelta(seconds=10))

    assert [m.to for m in fake_twilio.messages] == [HOTLINE]


@pytest.mark.usefixtures("program")
async def test_several_workers_never_send_the_same_text_twice(
    client: httpx.AsyncClient,
    app,
    worker: Worker,
    fake_twilio: FakeTwilio,  # type: ignore[no-untyped-def]
) -> None:
    for _ in range(20):
        await post_event(client, dv_event())
    other = Worker(
        db=app.state.db,
        clock=worker.clock,
        channel=worker.channel,
        directory=worker.directory,
        settings=worker.settings,
    )

    await asyncio.gather(worker.run_once(), other.run_once(), worker.run_once())

    assert len(fake_twilio.messages) == 20
    assert len({m.body for m in fake_twilio.messages}) == 20


@pytest.mark.usefixtures("program")
async def test_delivery_callbacks_land_in_the_timeline_and_repeats_are_harmless(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    [message] = fake_twilio.messages

    responses = [await fake_twilio.send_status(message, s) for s in ("delivered", "sent", "delivered")]

    assert [r.status_code for r in responses] == [204, 204, 204]
    stages = [e["stage"] for e in await timeline(client, admin, ref)]
    assert stages.count("notification_delivered") == 1


@pytest.mark.usefixtures("program")
async def test_an_undelivered_text_moves_to_the_next_person_at_once(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()

    await fake_twilio.send_status(fake_twilio.messages[0], "undelivered", error_code=30006)
    await worker.run_once()

    assert [m.to for m in fake_twilio.messages] == [PHONES["luis"], PHONES["dana"]]


@pytest.mark.usefixtures("program")
async def test_a_forged_callback_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    before = await timeline(client, admin, ref)

    forged = await fake_twilio.send_status(fake_twilio.messages[0], "undelivered", forge=True)
    unsigned = await client.post(
        "/v1/twilio/sms-status", data={"MessageSid": fake_twilio.messages[0].sid, "MessageStatus": "failed"}
    )
    await worker.run_once()

    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert await timeline(client, admin, ref) == before
    assert len(fake_twilio.messages) == 1


@pytest.mark.usefixtures("program")
async def test_the_link_opens_the_callout_until_it_expires(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    link = fake_twilio.messages[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)

    page = await client.get(link)
    clock.advance(timedelta(hours=24, seconds=1))
    expired = await client.get(link)

    assert page.status_code == 200
    assert "IMMEDIATE" in page.text and "Ziggurat" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert expired.status_code == 404
    assert (await client.get("/l/not-a-real-token-at-all")).status_code == 404
