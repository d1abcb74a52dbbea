"""Every advocate's phone is known to work before a DV call needs it: a supervisor can have a test text and a test
call sent and see what each came to; whoever is on call within a day with an unproven or unreachable phone is
named to their supervisor, once; an advocate who texts STOP has their supervisor told at once, and is still called.
The clock moves; nothing sleeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner, Result

from callout import advocate as advocate_command
from callout.cli import main
from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.factories import HOTLINE, PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio, Fault, Message
from tests.test_phones import codes_sent
from tests.test_timeline import supervisor_token

SMS_URL = f"{PUBLIC_URL}/v1/twilio/sms"
LUIS, ADA = PHONES["luis"], PHONES["ada"]
TESTS = "/v1/directory/agencies/metro/advocates/luis/tests"


async def prove(worker: Worker, fake: FakeTwilio, *keys: str) -> None:
    """These advocates text back their codes, as they would on the day their phone was added."""
    codes = await codes_sent(worker, fake)
    for key in keys:
        await fake.text_in(SMS_URL, PHONES[key], codes[PHONES[key]])
    fake.messages.clear()


async def latest_test(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, object]:
    tests = (await client.get(TESTS, headers=admin)).json()
    return dict(tests[0])


def sent_test(fake: FakeTwilio) -> tuple[Message, Message]:
    [text] = [m for m in fake.to(LUIS) if m.body.startswith("Callout test")]
    [call] = fake.to(LUIS, "voice")
    return text, call


# -- a phone tested on demand ---------------------------------------------------------------------------------


async def test_a_supervisor_tests_a_phone_and_sees_the_text_delivered_and_the_call_answered(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await make_program(client, admin)
    asked = await client.post(TESTS, headers=admin)
    fake_twilio.fail_next(Fault(status=503, only="sms"))  # the provider fails once: the test text is retried
    await worker.send_codes()
    await worker.run_once()
    clock.advance(timedelta(seconds=5))
    await worker.run_once()
    text, call = sent_test(fake_twilio)
    on_their_way = await latest_test(client, admin)

    await fake_twilio.send_status(text, "delivered")
    pressed = await fake_twilio.press(call, "5")
    await fake_twilio.call_status(call, "completed")  # the call ends after the key: it stays answered
    done = await latest_test(client, admin)

    assert asked.status_code == 202 and asked.json()["text_result"] is None
    assert "Callout test" in text.body and "Press any key" in call.body
    assert (on_their_way["text_result"], on_their_way["call_result"]) == ("sent", "ringing")
    assert "Callout's calls reach you" in pressed.text
    assert (done["text_result"], done["call_result"]) == ("delivered", "answered")
    assert done["requested_by"] == "admin:bootstrap" and done["text_at"] and done["call_at"]


async def test_a_test_says_what_failed_a_text_undelivered_and_a_call_that_reached_voicemail(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await make_program(client, admin)
    await client.post(TESTS, headers=admin)
    await worker.send_codes()
    await worker.run_once()
    text, call = sent_test(fake_twilio)

    await fake_twilio.send_status(text, "undelivered", error_code=30003)
    await fake_twilio.call_status(call, "completed", answered_by="machine_start")
    again = await fake_twilio.call_status(call, "completed", answered_by="machine_start")  # Twilio retrying
    result = await latest_test(client, admin)

    assert result["text_result"] == "failed: text undelivered"
    assert result["call_result"] == "failed: call reached voicemail"
    assert again.status_code == 204


async def test_another_agencys_supervisor_cannot_test_an_advocate(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    await make_program(client, admin)
    await make_program(client, admin, agency="north", advocates={"dana": ["en"]})
    token = await supervisor_token(database_url, "north")

    refused = await client.post(TESTS, headers={"Authorization": f"Bearer {token}"})
    unknown = await client.post("/v1/directory/agencies/metro/advocates/nobody/tests", headers=admin)

    assert refused.status_code == 404 and unknown.status_code == 404
    assert (await client.get(TESTS, headers=admin)).json() == []


async def test_callout_advocate_test_prints_what_the_text_and_the_call_came_to(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_program(client, admin)
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    monkeypatch.setattr(advocate_command, "POLL_SECONDS", 0.05)
    while await worker.send_codes():  # the phones' codes, out of the way
        pass
    clock.advance(datetime.now(UTC) + timedelta(minutes=1) - clock.now())  # the command asks on the wall clock
    running = asyncio.create_task(cli("advocate", "test", "luis", "--agency", "metro", "--wait", "30"))
    while not await worker.send_codes():  # the command has asked once the worker finds its test
        assert not running.done(), running.result().output
        await asyncio.sleep(0.05)
    await worker.run_once()
    text, call = sent_test(fake_twilio)
    await fake_twilio.send_status(text, "delivered")
    await fake_twilio.press(call, "1")
    result = await running

    missing = await cli("advocate", "test", "nobody", "--agency", "metro", "--wait", "0")

    assert result.exit_code == 0, result.output
    assert "text: delivered" in result.output and "call: answered" in result.output
    assert missing.exit_code == 1 and "No advocate 'nobody'" in missing.output


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


# -- the watch: phones that may fail the people on call ---------------------------------------------------------


def about_luis(fake: FakeTwilio) -> list[Message]:
    return [m for m in fake.to(ADA) if "advocate luis" in m.body]


async def test_someone_unproven_on_call_within_a_day_is_named_to_their_supervisor_once_in_local_time(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    shifts = [
        *({"advocate": "dana", "role": "primary", "day": d} for d in days),
        *({"advocate": "ada", "role": "supervisor", "day": d} for d in days),
        {"advocate": "luis", "role": "primary", "day": "wed", "start": "08:00", "end": "20:00"},
    ]
    advocates = {"dana": ["en"], "luis": ["es"], "ada": ["en"]}
    await make_program(client, admin, timezone="America/New_York", shifts=shifts, advocates=advocates)
    await prove(worker, fake_twilio, "dana", "ada")

    await worker.watch_contacts()  # Monday noon UTC: luis's Wednesday 08:00 (New York) is 49 hours away
    await worker.run_once()
    too_early = about_luis(fake_twilio)
    clock.advance(timedelta(hours=26))  # Tuesday 14:00 UTC: 23 hours away
    await worker.watch_contacts()
    await worker.run_once()
    again = await worker.watch_contacts()

    assert too_early == []
    assert again == 0
    [text] = about_luis(fake_twilio)
    assert "advocate luis is on call (primary, area 1) from 2026-11-18 08:00 EST" in text.body
    assert "has not confirmed their phone" in text.body
    assert "Luis" not in text.body and LUIS not in text.body  # texts are not secure: the key, not the person


async def test_an_advocate_who_texts_stop_has_their_supervisor_told_at_once_and_is_still_called(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await make_program(client, admin)
    await prove(worker, fake_twilio, "dana", "luis", "mei", "ada")

    answer = await fake_twilio.text_in(SMS_URL, LUIS, "STOP")
    told = await worker.watch_contacts()
    await worker.run_once()
    [stop_text] = [m for m in fake_twilio.to(ADA) if "STOP" in m.body]
    seen = (await client.get("/v1/alerts/unreachable", headers=admin)).json()
    await post_event(client, dv_event())  # immediate: a text and a call to each primary
    await worker.run_once()
    alerts_to_luis = {m.kind for m in fake_twilio.to(LUIS) + fake_twilio.to(LUIS, "voice")}

    assert "<Message" not in answer.text  # Twilio confirms the opt-out itself
    assert told >= 1 and "advocate luis texted STOP" in stop_text.body
    assert [(u["advocate_id"] is not None, u["channel"], u["code"]) for u in seen] == [(True, "sms", 21610)]
    assert alerts_to_luis == {"voice"}  # still called; not texted
    assert await worker.watch_contacts() == 0  # told once


async def test_start_restores_texts_and_a_later_stop_is_told_again(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await make_program(client, admin)
    await prove(worker, fake_twilio, "dana", "luis", "mei", "ada")
    await fake_twilio.text_in(SMS_URL, LUIS, "STOP")
    await worker.watch_contacts()

    back = await fake_twilio.text_in(SMS_URL, LUIS, "START")
    await post_event(client, dv_event())
    await worker.run_once()
    texted_again = [m for m in fake_twilio.to(LUIS) if m.body.startswith("Callout ")]
    await fake_twilio.text_in(SMS_URL, LUIS, "stop")
    told_again = await worker.watch_contacts()

    assert "back on" in back.text and texted_again
    assert (await client.get("/v1/alerts/unreachable", headers=admin)).json()[0]["code"] == 21610
    assert told_again == 1


async def test_a_stop_from_a_phone_nobody_has_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await make_program(client, admin)
    await prove(worker, fake_twilio, "dana", "luis", "mei", "ada")

    await fake_twilio.text_in(SMS_URL, "+12025559999", "STOP")

    assert (await client.get("/v1/alerts/unreachable", headers=admin)).json() == []
    assert await worker.watch_contacts() == 0


async def test_with_no_supervisor_on_call_the_hotline_is_told(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    shifts = [{"advocate": "dana", "role": "primary", "day": d} for d in days]
    await make_program(client, admin, shifts=shifts, advocates={"dana": ["en"]})

    await worker.watch_contacts()
    await worker.run_once()

    [told] = [m for m in fake_twilio.to(HOTLINE) if "advocate dana" in m.body]  # her week on call: one text
    assert "advocate dana is on call (primary, area 1) from 2026-11-16 12:00" in told.body


async def test_an_opt_out_is_seen_and_told_by_every_agency_with_an_advocate_on_that_phone_and_by_no_other(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, database_url: str
) -> None:
    await make_program(client, admin)  # luis is metro's, on PHONES["luis"]
    await make_program(client, admin, agency="north", advocates={"luis": ["es"], "ada": ["en"]})  # the same phones
    await make_program(client, admin, agency="south", advocates={"dana": ["en"], "mei": ["en"]})
    tokens = {agency: await supervisor_token(database_url, agency) for agency in ("metro", "north", "south")}
    await prove(worker, fake_twilio, "dana", "luis", "mei", "ada")

    await fake_twilio.text_in(SMS_URL, LUIS, "STOP")
    await worker.watch_contacts()
    await worker.run_once()
    seen = {
        agency: (await client.get("/v1/alerts/unreachable", headers={"Authorization": f"Bearer {token}"})).json()
        for agency, token in tokens.items()
    }

    assert [(u["channel"], u["code"]) for u in seen["metro"]] == [("sms", 21610)]
    assert [(u["channel"], u["code"]) for u in seen["north"]] == [("sms", 21610)]
    assert seen["metro"][0]["advocate_id"] != seen["north"][0]["advocate_id"]  # each agency's own advocate
    assert seen["south"] == []
    assert len([m for m in fake_twilio.to(ADA) if "texted STOP" in m.body]) == 2  # ada supervises in both
