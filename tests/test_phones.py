"""Every advocate's phone is proven: a new or changed one gets a code to text back, and the advocate then chooses
the PIN that guards the details of the callouts they accept. Five wrong PINs lock the link and tell the
supervisors. The clock moves; nothing sleeps."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio, Fault, Message

SMS_URL = f"{PUBLIC_URL}/v1/twilio/sms"
LUIS, ADA = PHONES["luis"], PHONES["ada"]
pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def codes_sent(worker: Worker, fake: FakeTwilio) -> dict[str, str]:
    """The codes the worker texted, by phone."""
    while await worker.send_codes():
        pass
    await worker.run_once()
    found = {m.to: re.search(r"reply (\d{6})", m.body) for m in fake.texts}
    return {phone: match.group(1) for phone, match in found.items() if match}


async def prove_with_pin(worker: Worker, fake: FakeTwilio, client: httpx.AsyncClient, pin: str = "4821") -> None:
    """Luis texts back his code and chooses his PIN, as an advocate would."""
    code = (await codes_sent(worker, fake))[LUIS]
    answer = await fake.text_in(SMS_URL, LUIS, code)
    setter = re.search(r"(/p/[\w-]+)", answer.text)
    assert setter, answer.text
    chosen = await client.post(setter.group(1), data={"pin": pin, "again": pin})
    assert "Your PIN is set" in chosen.text
    fake.messages.clear()  # what follows is about callouts


def link_of(text: Message) -> str:
    return text.body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)


async def advocate(client: httpx.AsyncClient, admin: dict[str, str], key: str) -> dict[str, object]:
    on_call = (await client.get("/v1/directory/agencies/metro/on-call?area=1", headers=admin)).json()
    return next(entry for entry in on_call["chain"] if entry["key"] == key)


async def test_a_new_phone_is_unverified_until_its_advocate_texts_back_the_code(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    before = await advocate(client, admin, "luis")
    codes = await codes_sent(worker, fake_twilio)

    wrong = await fake_twilio.text_in(SMS_URL, LUIS, "000000" if codes[LUIS] != "000000" else "111111")
    right = await fake_twilio.text_in(SMS_URL, LUIS, codes[LUIS])

    assert set(codes) == set(PHONES.values())  # every advocate of the program is asked
    assert before["phone_verified"] is False
    assert "not right" in wrong.text
    assert "confirmed" in right.text and "/p/" in right.text
    assert (await advocate(client, admin, "luis"))["phone_verified"] is True
    assert (await advocate(client, admin, "mei"))["phone_verified"] is False


async def test_a_code_expires_and_a_changed_phone_must_be_proven_again(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    codes = await codes_sent(worker, fake_twilio)
    clock.advance(timedelta(hours=24, seconds=1))
    late = await fake_twilio.text_in(SMS_URL, LUIS, codes[LUIS])

    new_phone = "+12025550142"
    body = {"name": "Luis", "phone": new_phone, "languages": ["es", "en"], "areas": ["1"]}
    changed = await client.put("/v1/directory/agencies/metro/advocates/luis", json=body, headers=admin)
    fake_twilio.messages.clear()
    again = await codes_sent(worker, fake_twilio)

    assert "expired" in late.text
    assert changed.json()["phone_verified"] is False
    assert list(again) == [new_phone]  # only the changed phone is asked again


async def test_with_a_pin_the_details_show_only_in_the_browser_that_gave_it(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await prove_with_pin(worker, fake_twilio, client)
    await post_event(client, dv_event())
    await worker.run_once()
    link = link_of(fake_twilio.to(LUIS)[0])

    accepted = await client.post(link, data={"action": "accept"})
    unlocked = await client.post(link, data={"action": "pin", "pin": "4821"})
    cookie = unlocked.cookies.get("callout_view")
    with_cookie = await client.get(link)  # the browser keeps the cookie
    client.cookies.clear()  # the same link in another browser: a preview bot, whoever it was forwarded to
    forwarded = await client.get(link)

    assert "Enter your PIN" in accepted.text and "Ziggurat" not in accepted.text
    assert "1234 Ziggurat Lane" in unlocked.text and cookie
    assert (
        "httponly" in unlocked.headers["set-cookie"].lower()
        and "samesite=strict" in unlocked.headers["set-cookie"].lower()
    )
    assert "1234 Ziggurat Lane" in with_cookie.text
    assert "Ziggurat" not in forwarded.text and "Enter your PIN" in forwarded.text
    assert "Call the survivor" not in forwarded.text  # no call before the PIN either


async def test_five_wrong_pins_lock_the_link_and_the_supervisor_is_texted(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await prove_with_pin(worker, fake_twilio, client)
    await post_event(client, dv_event())
    await worker.run_once()
    link = link_of(fake_twilio.to(LUIS)[0])
    await client.post(link, data={"action": "accept"})

    tries = [await client.post(link, data={"action": "pin", "pin": "0000"}) for _ in range(5)]
    right_too_late = await client.post(link, data={"action": "pin", "pin": "4821"})
    await worker.run_once()

    assert all("not right" in t.text for t in tries[:4])
    assert "locked" in tries[4].text and "locked" in right_too_late.text
    assert "Ziggurat" not in right_too_late.text
    [told] = [m for m in fake_twilio.to(ADA) if "locked" in m.body]  # ada supervises the area
    assert "five wrong PINs" in told.body


async def test_without_a_pin_yet_the_acceptor_sees_the_details_and_is_told_a_pin_would_guard_them(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    link = link_of(fake_twilio.to(LUIS)[0])

    accepted = await client.post(link, data={"action": "accept"})

    assert "1234 Ziggurat Lane" in accepted.text and "No PIN guards these details yet" in accepted.text


async def test_a_pin_must_be_four_to_eight_digits_typed_twice_alike(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    code = (await codes_sent(worker, fake_twilio))[LUIS]
    answer = await fake_twilio.text_in(SMS_URL, LUIS, code)
    setter = re.search(r"(/p/[\w-]+)", answer.text)
    assert setter

    short = await client.post(setter.group(1), data={"pin": "12", "again": "12"})
    differ = await client.post(setter.group(1), data={"pin": "1234", "again": "1243"})
    page = await client.get(setter.group(1))

    assert (short.status_code, differ.status_code) == (422, 422)
    assert "four to eight digits" in short.text and "differ" in differ.text
    assert page.status_code == 200 and "Set my PIN" in page.text


async def test_a_code_for_a_phone_that_opted_out_marks_it_unreachable_once_and_stops(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(*[Fault(status=400, code=21610, only="sms")] * 4)  # every advocate texted STOP once

    await codes_sent(worker, fake_twilio)
    requests = fake_twilio.requests
    clock.advance(timedelta(minutes=5))
    await worker.run_once()

    assert fake_twilio.requests == requests  # not tried again and again
    unreachable = (await client.get("/v1/alerts/unreachable", headers=admin)).json()
    assert sorted((u["channel"], u["code"]) for u in unreachable) == [("sms", 21610)] * 4


async def test_before_the_pin_a_forwarded_link_can_record_no_progress(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await prove_with_pin(worker, fake_twilio, client)
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    link = link_of(fake_twilio.to(LUIS)[0])
    accepted = await client.post(link, data={"action": "accept"})

    closed = await client.post(link, data={"action": "closed"})
    contacted = await client.post(link, data={"action": "survivor_contacted"})

    assert "En route" not in accepted.text  # no progress buttons before the PIN
    assert "Enter your PIN first" in closed.text and "Enter your PIN first" in contacted.text
    entries = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    assert not {"closed", "survivor_contacted"} & {e["stage"] for e in entries}


async def test_without_a_pin_set_wrong_pins_lock_nothing(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await codes_sent(worker, fake_twilio)  # phones asked to prove, none has a PIN
    fake_twilio.messages.clear()
    await post_event(client, dv_event())
    await worker.run_once()
    link = link_of(fake_twilio.to(LUIS)[0])
    await client.post(link, data={"action": "accept"})

    for _ in range(6):
        await client.post(link, data={"action": "pin", "pin": "0000"})
    page = await client.get(link)

    assert "locked" not in page.text and "1234 Ziggurat Lane" in page.text
