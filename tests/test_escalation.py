"""Every callout reaches a human: escalation by policy and time, answers by text, key or link, progress,
cancellation by CAD, and events back to dispatch. The clock moves; nothing sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.factories import HOTLINE, PHONES, SECRET, dv_event, make_program, post_event
from tests.fake_cad import FakeCad
from tests.fake_twilio import FakeTwilio, Fault

SMS_URL = f"{PUBLIC_URL}/v1/twilio/sms"
LUIS, DANA, MEI, ADA = PHONES["luis"], PHONES["dana"], PHONES["mei"], PHONES["ada"]


@pytest.fixture
async def cad() -> AsyncIterator[FakeCad]:
    fake = FakeCad(secret=SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str], cad: FakeCad) -> None:
    await make_program(client, admin, notify_url=cad.url)


async def stages(client: httpx.AsyncClient, admin: dict[str, str], ref: str) -> list[str]:
    response = await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)
    return [e["stage"] for e in response.json()["entries"]]


async def start(client: httpx.AsyncClient, worker: Worker, **event: object) -> dict:  # type: ignore[type-arg]
    receipt = (await post_event(client, dv_event(**event))).json()
    await worker.run_once()
    return receipt  # type: ignore[no-any-return]


def sent_to(fake: FakeTwilio, kind: str = "sms") -> list[str]:
    return [m.to for m in fake.messages if m.kind == kind]


async def test_nobody_accepting_escalates_to_the_backup_when_the_wait_is_over(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await start(client, worker)
    assert sent_to(fake_twilio) == [LUIS]

    clock.advance(timedelta(seconds=119))
    await worker.run_once()
    assert sent_to(fake_twilio) == [LUIS]  # the immediate tier waits 2 minutes for the primary

    clock.advance(timedelta(seconds=1))
    await worker.run_once()
    assert sent_to(fake_twilio) == [LUIS, MEI]
    assert sent_to(fake_twilio, "voice") == [LUIS, MEI]

    clock.advance(timedelta(minutes=2))
    await worker.run_once()
    assert sent_to(fake_twilio)[2:] == [ADA, HOTLINE]  # the supervisor and the hotline


async def test_when_every_step_and_repeat_is_spent_the_hotline_is_alerted(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    ref = (await start(client, worker, screen={"instrument": "LAP", "answers": {"q3": "yes"}}, cautions=[]))[
        "incident_ref"
    ]  # priority: primary text, primary call after 3 min, backup after 6, supervisor after 12

    for minutes in (3, 3, 6, 10):
        clock.advance(timedelta(minutes=minutes))
        await worker.run_once()

    assert sent_to(fake_twilio) == [LUIS, MEI, ADA, HOTLINE]
    assert sent_to(fake_twilio, "voice") == [LUIS, MEI, ADA, HOTLINE]
    assert (await stages(client, admin, ref)).count("escalated") == 4


async def test_reply_1_accepts_stops_escalation_and_tells_the_others(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    cad: FakeCad,
) -> None:
    receipt = await start(client, worker)
    clock.advance(timedelta(minutes=2))
    await worker.run_once()  # now the backup has been alerted too

    answer = await fake_twilio.text_in(SMS_URL, LUIS, "Yes")
    await worker.run_once()
    clock.advance(timedelta(hours=1))
    await worker.run_once()

    assert answer.status_code == 200 and f"Accepted callout {receipt['callout']['code']}" in answer.text
    assert sent_to(fake_twilio) == [LUIS, MEI, MEI]  # nothing more after the acceptance...
    assert "accepted by someone else" in fake_twilio.texts[-1].body  # ...but the backup is told it is taken
    assert "acknowledged" in await stages(client, admin, receipt["incident_ref"])
    assert cad.types == ["callout.accepted"]
    notice = cad.received[0]
    assert (notice["incident_ref"], notice["callout_code"]) == (receipt["incident_ref"], receipt["callout"]["code"])
    assert notice["incident_id"].startswith("CAD-")  # the CAD's own incident number, for the dispatcher


async def test_a_decline_moves_on_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    receipt = await start(client, worker)

    answer = await fake_twilio.text_in(SMS_URL, LUIS, "2")
    await worker.run_once()

    assert "Declined" in answer.text
    assert sent_to(fake_twilio) == [LUIS, MEI]  # the backup, without waiting out the 2 minutes
    assert "declined" in await stages(client, admin, receipt["incident_ref"])


async def test_pressing_1_on_the_call_accepts_and_2_declines(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await start(client, worker)
    [call] = fake_twilio.calls

    declined = await fake_twilio.press(call, "2")
    await worker.run_once()
    [_, backup_call] = fake_twilio.calls
    accepted = await fake_twilio.press(backup_call, "1")

    assert "Declined" in declined.text and "<Say>" in declined.text
    assert "Accepted" in accepted.text
    assert backup_call.to == MEI


@pytest.mark.parametrize("answered_by", ["machine_start", "human"], ids=["voicemail", "no key pressed"])
async def test_a_call_answered_without_a_key_is_not_an_acceptance(
    answered_by: str, client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    receipt = await start(client, worker)
    [text], [call] = fake_twilio.texts, fake_twilio.calls

    await fake_twilio.call_status(call, "completed", answered_by=answered_by)
    await worker.run_once()
    assert sent_to(fake_twilio) == [LUIS]  # the text may still be answered: the step is not over
    await fake_twilio.send_status(text, "undelivered", error_code=30003)
    await worker.run_once()

    assert sent_to(fake_twilio) == [LUIS, MEI]  # nothing left in the step: the backup at once
    assert "acknowledged" not in await stages(client, admin, receipt["incident_ref"])


async def test_busy_and_no_answer_move_to_the_next_channel_or_person_at_once(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await start(client, worker)
    [text], [call] = fake_twilio.texts, fake_twilio.calls

    await fake_twilio.call_status(call, "busy")
    await fake_twilio.send_status(text, "failed", error_code=30008)
    await worker.run_once()

    assert sent_to(fake_twilio, "voice") == [LUIS, MEI]


async def test_an_opted_out_number_is_marked_unreachable_for_texts_and_skipped(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(Fault(status=400, code=21610, only="sms"))  # Luis texted STOP
    await start(client, worker)

    unreachable = (await client.get("/v1/alerts/unreachable", headers=admin)).json()
    await start(client, worker)

    assert [(u["channel"], u["code"]) for u in unreachable] == [("sms", 21610)]
    assert sent_to(fake_twilio) == []  # his second alert goes by voice only
    assert sent_to(fake_twilio, "voice") == [LUIS, LUIS]


async def test_with_several_open_callouts_a_reply_needs_the_code(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    first = await start(client, worker)
    second = await start(client, worker)

    ambiguous = await fake_twilio.text_in(SMS_URL, LUIS, "1")
    named = await fake_twilio.text_in(SMS_URL, LUIS, f"1 {second['callout']['code']}")
    unknown = await fake_twilio.text_in(SMS_URL, LUIS, "what is this")

    assert "add the code" in ambiguous.text
    assert first["callout"]["code"] in ambiguous.text or second["callout"]["code"] in ambiguous.text
    assert f"Accepted callout {second['callout']['code']}" in named.text
    assert "reply 1 to accept" in unknown.text


async def test_progress_from_the_advocate_fills_the_timeline_and_goes_back_to_dispatch(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, cad: FakeCad
) -> None:
    receipt = await start(client, worker)
    early = await fake_twilio.text_in(SMS_URL, LUIS, "ONSCENE")
    await fake_twilio.text_in(SMS_URL, LUIS, "1")
    for word in ("en route", "onscene", "contacted", "closed"):
        answer = await fake_twilio.text_in(SMS_URL, LUIS, word)
        assert answer.status_code == 200 and "recorded" in answer.text
    await worker.run_once()

    assert "No open callout" in early.text  # progress before accepting has nothing to apply to
    assert (await stages(client, admin, receipt["incident_ref"]))[-5:] == [
        "acknowledged",
        "en_route",
        "on_scene",
        "survivor_contacted",
        "closed",
    ]
    assert cad.types == ["callout.accepted", "callout.en_route", "callout.on_scene"]


async def test_the_page_accepts_and_shows_what_texts_never_carry(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await start(client, worker)
    link = fake_twilio.texts[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)

    accepted = await client.post(link, data={"action": "accept"})
    on_scene = await client.post(link, data={"action": "on_scene"})

    assert "You accepted this callout" in accepted.text
    assert "1234 Ziggurat Lane" in accepted.text and "+12025557777" in accepted.text  # consented safe contact
    assert "FIREARM" in accepted.text
    assert "recorded on scene" in on_scene.text


async def test_cad_cancelling_the_call_stops_escalation_and_tells_the_advocate(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    event = dv_event()
    await post_event(client, event)
    await worker.run_once()

    await post_event(client, {**event, "status": "cancelled"})
    await worker.run_once()
    clock.advance(timedelta(hours=1))
    await worker.run_once()

    assert sent_to(fake_twilio) == [LUIS, LUIS]
    assert "cancelled by dispatch" in fake_twilio.texts[-1].body


async def test_a_call_reclassified_as_not_dv_is_cancelled_and_one_that_becomes_dv_starts(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    dv = dv_event()
    burglary = dv_event(type_code="BURG", screen=None, cautions=[], persons=[{"role": "victim", "language": "en"}])
    await post_event(client, dv)
    await post_event(client, burglary)
    await worker.run_once()

    stopped = await post_event(client, {**dv, "status": "updated", "type_code": "BURG"})
    started = await post_event(client, {**burglary, "status": "updated", "type_code": "DVA"})
    await worker.run_once()

    assert stopped.json()["callout"] is None and started.json()["callout"] is not None
    assert sorted(sent_to(fake_twilio)) == sorted([LUIS, LUIS, DANA])  # alert, notice, the new (English) DV call
    assert any("cancelled by dispatch" in m.body for m in fake_twilio.to(LUIS))


async def test_events_back_to_dispatch_are_retried_until_delivered_in_order(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock, cad: FakeCad
) -> None:
    await start(client, worker)
    cad.refuse_next = 2
    await fake_twilio.text_in(SMS_URL, LUIS, "1")
    await fake_twilio.text_in(SMS_URL, LUIS, "enroute")
    await worker.run_once()
    assert cad.types == []  # refused; the en-route event waits behind the acceptance

    for _ in range(3):
        clock.advance(timedelta(seconds=10))
        await worker.run_once()

    assert cad.types == ["callout.accepted", "callout.en_route"]
    assert len(set(cad.ids)) == 2


async def test_readiness_reports_the_oldest_overdue_step(
    client: httpx.AsyncClient, worker: Worker, clock: FakeClock
) -> None:
    await start(client, worker)
    clock.advance(timedelta(minutes=2, seconds=30))  # the step ended 30 s ago and no worker has run

    ready = (await client.get("/readyz")).json()
    late = await worker.audit()

    assert ready["oldest_overdue_seconds"] == 30.0
    assert late == 30.0


async def test_texting_start_makes_an_opted_out_phone_reachable_by_text_again(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(Fault(status=400, code=21610, only="sms"))
    await start(client, worker)

    answer = await fake_twilio.text_in(SMS_URL, LUIS, "START")
    await start(client, worker)

    assert "back on" in answer.text
    assert (await client.get("/v1/alerts/unreachable", headers=admin)).json() == []
    assert sent_to(fake_twilio) == [LUIS]  # the second alert goes by text again


def directory_down(worker: Worker) -> None:
    """The directory's ingress answers 503 from now on, as it does while the service is down."""
    worker.directory.http = httpx.AsyncClient(
        base_url=str(worker.directory.http.base_url), transport=httpx.MockTransport(lambda _: httpx.Response(503))
    )


async def test_while_the_directory_is_down_the_last_known_roster_routes_at_once(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock, admin: dict[str, str]
) -> None:
    await start(client, worker)  # the directory answers: its roster for area 1 is kept
    directory_down(worker)
    clock.advance(timedelta(seconds=90))

    receipt = await start(client, worker)

    assert sent_to(fake_twilio) == [LUIS, LUIS]  # the second callout went out at once, to the same primary
    entries = (await client.get(f"/v1/incidents/{receipt['incident_ref']}/timeline", headers=admin)).json()
    matched = next(e for e in entries["entries"] if e["stage"] == "advocate_matched")
    assert matched["data"]["roster"]["kind"] == "last known"
    assert matched["data"]["roster"]["age_seconds"] == 90


async def test_with_the_directory_down_and_nothing_known_the_hotline_is_alerted_within_seconds(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock, admin: dict[str, str]
) -> None:
    directory_down(worker)

    receipt = await start(client, worker)
    for _ in range(4):  # two retries, 1 s and 2 s apart (jitter at most doubles them)
        clock.advance(timedelta(seconds=4))
        await worker.run_once()

    assert sent_to(fake_twilio) == [HOTLINE]
    assert sent_to(fake_twilio, "voice") == [HOTLINE]
    assert "escalated" in await stages(client, admin, receipt["incident_ref"])


@pytest.mark.parametrize(("language", "match"), [("es-MX", True), ("vi", False)])
async def test_the_timeline_says_whether_an_advocate_speaks_the_victims_language(
    client: httpx.AsyncClient, worker: Worker, admin: dict[str, str], language: str, match: bool
) -> None:
    victim = {"role": "victim", "language": language, "interpreter_needed": True}
    receipt = await start(client, worker, persons=[victim, {"role": "suspect"}])

    entries = (await client.get(f"/v1/incidents/{receipt['incident_ref']}/timeline", headers=admin)).json()
    data = {e["stage"]: e["data"] for e in entries["entries"]}
    assert (data["triaged"]["language"], data["triaged"]["interpreter_needed"]) == (language, True)
    assert data["advocate_matched"]["language_match"] is match
    # a Spanish speaker is preferred among the primaries; with nobody to match, the usual order stands
    assert data["advocate_matched"]["advocate_id"] == (2 if match else 1)
