"""Sending: the worker texts and calls whoever the policy names through (fake) Twilio, retries provider faults,
reconciles unknown outcomes, and never sends one step twice."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.factories import HOTLINE, PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FROM, FakeTwilio, Fault

SMS_SHAPE = re.compile(
    r"^Callout [2-9A-HJKMNP-Z]{4}: (IMMEDIATE|PRIORITY|FOLLOW-UP) DV call, area 1\. "
    r"Reply 1 to accept, 2 to decline\. " + re.escape(PUBLIC_URL) + r"/l/[A-Za-z0-9_-]{22}$"
)
PERSONAL = ("Ziggurat", "1234", "Apt 9", "62704", "Springfield", "7777", "Quetzal", "Rosalind", "q1", "FIREARM")

pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def stages(client: httpx.AsyncClient, admin: dict[str, str], ref: str) -> list[str]:
    response = await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)
    return [e["stage"] for e in response.json()["entries"]]


async def test_an_immediate_call_texts_and_calls_the_primary_who_speaks_the_victims_language(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    await worker.run_once()

    [text], [call] = fake_twilio.texts, fake_twilio.calls
    assert text.to == call.to == PHONES["luis"]  # a primary, and the one who speaks Spanish
    assert text.from_ == call.from_ == FROM
    # Each alert's callbacks name it: its own records at Twilio can be told from every other alert's.
    assert re.fullmatch(rf"{PUBLIC_URL}/v1/twilio/sms-status\?n=[0-9a-f-]{{36}}", text.form["StatusCallback"])
    assert text.form["ValidityPeriod"] == "900"
    assert re.fullmatch(rf"{PUBLIC_URL}/v1/twilio/call-status\?n=[0-9a-f-]{{36}}", call.form["StatusCallback"])
    assert call.callback_events == ["initiated", "completed"]
    assert call.form["MachineDetection"] == "Enable"
    assert call.gather_url.startswith(f"{PUBLIC_URL}/v1/twilio/voice/gather?n=")
    assert await stages(client, admin, ref) == [
        "cad_received",
        "triaged",
        "advocate_matched",
        "notification_sent",
        "notification_sent",
    ]


async def test_texts_and_calls_carry_no_personal_data(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await post_event(client, dv_event(type_text="Caller Rosalind Featherstonehaugh says ex is outside"))

    await worker.run_once()

    [text], [call] = fake_twilio.texts, fake_twilio.calls
    assert SMS_SHAPE.match(text.body), text.body
    for personal in PERSONAL:
        assert personal not in text.body.split("/l/")[0]
        assert personal not in call.body


@pytest.mark.parametrize("fault", [Fault(status=500), Fault(status=503), Fault(status=429)], ids=["500", "503", "429"])
async def test_provider_faults_are_retried_with_backoff(
    fault: Fault, client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(fault)
    await post_event(client, dv_event())

    await worker.run_once()
    assert (fake_twilio.requests, len(fake_twilio.messages)) == (2, 1)  # the text or the call was refused
    await worker.run_once()  # the retry is a timer: not due yet
    assert fake_twilio.requests == 2

    clock.advance(timedelta(seconds=2))  # past the first backoff (1 s plus at most 1 s of jitter)
    await worker.run_once()

    assert ([m.to for m in fake_twilio.texts], [m.to for m in fake_twilio.calls]) == ([PHONES["luis"]],) * 2


async def test_a_timeout_is_reconciled_at_the_provider_before_it_is_repeated(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(hang_after=True))  # Twilio takes the first request, and never answers
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    await worker.run_once()  # the client times out (0.5 s in tests): the outcome is unknown
    clock.advance(timedelta(seconds=2))
    await worker.run_once()  # the retry finds the message at Twilio and adopts it

    assert (len(fake_twilio.texts), len(fake_twilio.calls)) == (1, 1)
    entries = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    assert [e["data"].get("reconciled") for e in entries if e["stage"] == "notification_sent"] == [
        None,
        "found at the provider",
    ]  # the call went at once; the text, whose answer was lost, was found at Twilio


async def test_several_workers_never_send_the_same_alert_twice(
    client: httpx.AsyncClient,
    app: FastAPI,
    worker: Worker,
    fake_twilio: FakeTwilio,
) -> None:
    for _ in range(15):
        await post_event(client, dv_event())
    other = Worker(
        db=app.state.db,
        clock=worker.clock,
        channel=worker.channel,
        directory=worker.directory,
        notify_http=worker.notify_http,
        settings=worker.settings,
    )

    await asyncio.gather(worker.run_once(), other.run_once(), worker.run_once())

    assert (len(fake_twilio.texts), len(fake_twilio.calls)) == (15, 15)
    assert len({m.body for m in fake_twilio.messages}) == 30


async def test_nobody_on_call_alerts_the_hotline_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await make_program(client, admin, shifts=[])
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    await worker.run_once()

    assert [m.to for m in fake_twilio.texts] == [m.to for m in fake_twilio.calls] == [HOTLINE]
    timeline = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    escalated = next(e for e in timeline if e["stage"] == "escalated")
    assert escalated["data"]["to"] == ["hotline"]
    assert escalated["data"]["reason"].startswith("nobody on call for step 1 (primary)")


async def test_a_directory_outage_is_retried_then_the_hotline_is_alerted(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    worker.directory.http._transport = httpx.MockTransport(lambda _: httpx.Response(503))  # the directory is down
    await post_event(client, dv_event())

    for _ in range(3):
        assert fake_twilio.messages == []
        await worker.run_once()
        clock.advance(timedelta(seconds=10))

    assert [m.to for m in fake_twilio.messages] == [HOTLINE, HOTLINE]


async def test_delivery_reports_land_in_the_timeline_and_repeats_or_late_ones_are_harmless(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    [text] = fake_twilio.texts

    responses = [await fake_twilio.send_status(text, s) for s in ("delivered", "sent", "delivered", "undelivered")]
    await worker.run_once()

    assert [r.status_code for r in responses] == [204] * 4
    assert (await stages(client, admin, ref)).count("notification_delivered") == 1
    assert "notification_failed" not in await stages(client, admin, ref)


async def test_a_forged_or_unsigned_callback_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    before = await stages(client, admin, ref)
    [text], [call] = fake_twilio.texts, fake_twilio.calls

    forged = await fake_twilio.send_status(text, "undelivered", forge=True)
    unsigned = await client.post("/v1/twilio/call-status", data={"CallSid": call.sid, "CallStatus": "busy"})
    forged_reply = await fake_twilio.text_in(f"{PUBLIC_URL}/v1/twilio/sms", PHONES["luis"], "1", forge=True)
    await worker.run_once()

    assert (forged.status_code, unsigned.status_code, forged_reply.status_code) == (403, 403, 403)
    assert await stages(client, admin, ref) == before
    assert len(fake_twilio.messages) == 2


async def test_the_link_shows_the_callout_until_it_expires(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    link = fake_twilio.texts[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)

    page = await client.get(link)
    clock.advance(timedelta(hours=24, seconds=1))
    expired = await client.get(link)

    assert page.status_code == 200
    assert "IMMEDIATE" in page.text and "Accept" in page.text
    assert not any(value in page.text for value in PERSONAL)  # nobody has accepted: nothing personal yet
    assert page.headers["cache-control"] == "no-store"
    assert expired.status_code == 404
    assert (await client.get("/l/not-a-real-token-at-all")).status_code == 404


async def test_the_directory_is_asked_once_for_a_burst_in_one_area_then_again_when_stale(
    client: httpx.AsyncClient, worker: Worker, clock: FakeClock
) -> None:
    asked: list[str] = []
    real = worker.directory.http._transport

    async def counting(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return await real.handle_async_request(request)

    worker.directory.http._transport = httpx.MockTransport(counting)
    worker.directory.fresh_for = timedelta(seconds=10)
    for _ in range(3):
        await post_event(client, dv_event())
    await worker.run_once()
    clock.advance(timedelta(seconds=11))
    await post_event(client, dv_event())
    await worker.run_once()

    assert len(asked) == 2


async def test_an_answer_just_gone_stale_is_used_while_a_fresh_one_is_fetched_beside_it(
    client: httpx.AsyncClient, worker: Worker, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    release = asyncio.Event()
    real = worker.directory.http._transport
    asked: list[str] = []

    async def slow_second_time(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if len(asked) > 1:
            await release.wait()  # the directory takes its time answering the refresh
        return await real.handle_async_request(request)

    worker.directory.http._transport = httpx.MockTransport(slow_second_time)
    worker.directory.fresh_for = timedelta(seconds=10)
    await post_event(client, dv_event())
    await worker.run_once()
    clock.advance(timedelta(seconds=15))  # stale, but not twice as old as fresh

    await post_event(client, dv_event())
    async with asyncio.timeout(5):  # a guard, not a wait: it fails the test if routing waits on the refresh
        await worker.run_once()

    assert len([m for m in fake_twilio.messages if m.kind == "sms"]) == 2
    assert len(asked) == 2  # the refresh is under way
    release.set()
    await asyncio.gather(*worker.directory._refreshing.values())
