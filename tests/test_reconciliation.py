"""When a send's answer is lost, the truth is found at the provider: every page of its window is read, only what
that one alert carries is matched, and another alert's text or call is never adopted. When nothing can be known,
the timeline says so. Leases die with their worker; a live worker keeps its work. The clock moves; nothing sleeps."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update

from services.alerts import escalation, leases
from services.alerts.models import Notification
from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.db import libpq_url
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FROM, FakeTwilio, Fault, Message

LUIS = PHONES["luis"]
pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)
    # One text to the primary, waiting two minutes; a call to the primary next: one alert a step, easy to follow.
    policy = {
        "steps": [
            {"notify": ["primary"], "via": ["sms"], "wait_seconds": 120},
            {"notify": ["primary"], "via": ["voice"], "wait_seconds": 120},
        ],
        "repeat": 0,
    }
    for tier in ("immediate", "priority"):
        response = await client.put(f"/v1/directory/agencies/metro/policies/{tier}", json=policy, headers=admin)
        assert response.is_success


async def timeline(client: httpx.AsyncClient, admin: dict[str, str], ref: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
    return entries


def sent_entries(entries: list[dict[str, Any]], channel: str = "sms") -> list[dict[str, Any]]:
    return [e["data"] for e in entries if e["stage"] == "notification_sent" and e["data"]["channel"] == channel]


async def alerts(app: Any, channel: str) -> list[Notification]:
    async with app.state.db.sessionmaker() as session:
        query = select(Notification).where(Notification.kind == "alert", Notification.channel == channel)
        return list(await session.scalars(query.order_by(Notification.created_at)))


def other_texts(fake: FakeTwilio, count: int) -> None:
    """Texts to the same phone that other alerts (another program on the account, say) sent after ours."""
    sids = itertools.count(10**6)
    for _ in range(count):
        fake.messages.append(Message(f"SM{next(sids):032x}", LUIS, FROM, "Callout ZZZZ: another alert", {}, "sms"))


async def test_a_lost_text_is_found_past_the_first_page_and_not_sent_again(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(hang_after=True, only="sms"))  # Twilio takes the text; its answer never comes
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()  # the client times out: the outcome is unknown
    other_texts(fake_twilio, 2_100)  # newest first, ours is now on the third page of a thousand

    clock.advance(timedelta(seconds=3))
    await worker.run_once()

    assert len([m for m in fake_twilio.texts if m.body.startswith("Callout ZZZZ")]) == 2_100
    assert len(fake_twilio.texts) == 2_101  # not sent again
    [text] = [m for m in fake_twilio.texts if not m.body.startswith("Callout ZZZZ")]
    [entry] = sent_entries(await timeline(client, admin, ref))
    assert (entry["provider_id"], entry["reconciled"]) == (text.sid, "found at the provider")


async def test_a_text_that_never_reached_the_provider_is_sent_again_and_the_timeline_says_why(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(hang=True, only="sms"))  # no answer, and nothing sent
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    other_texts(fake_twilio, 5)

    clock.advance(timedelta(seconds=3))
    await worker.run_once()

    [ours] = [m for m in fake_twilio.texts if not m.body.startswith("Callout ZZZZ")]
    [entry] = sent_entries(await timeline(client, admin, ref))
    assert entry["provider_id"] == ours.sid and entry["reconciled"] is None
    assert entry["earlier_attempt"] == "not found at the provider; sent again"


async def test_when_the_provider_cannot_say_the_lookup_is_retried_and_only_then_the_text_sent_again(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(hang=True, only="sms"))
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    fake_twilio.fail_next(*[Fault(status=503, only="list")] * 40)  # its lookups fail, for a long while

    for _ in range(12):
        clock.advance(timedelta(seconds=3))
        await worker.run_once()
        if fake_twilio.texts:
            break

    [entry] = sent_entries(await timeline(client, admin, ref))
    assert entry["earlier_attempt"] == "outcome unknown; sent again"  # after 30 s of asking, not at the first 503
    assert len(fake_twilio.texts) == 1


async def test_a_lost_text_is_still_looked_up_after_lookups_that_failed_and_is_not_sent_twice(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(hang_after=True, only="sms"))
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    fake_twilio.fail_next(*[Fault(status=503, only="list")] * 3)  # Twilio answers the first lookups with a 503

    for _ in range(8):  # three backoffs take 15 s at the most, jitter included: well within the 30 s of patience
        clock.advance(timedelta(seconds=3))
        await worker.run_once()

    assert len(fake_twilio.texts) == 1
    [entry] = sent_entries(await timeline(client, admin, ref))
    assert entry["reconciled"] == "found at the provider"


async def test_two_calls_to_one_phone_whose_answers_were_both_lost_are_each_found_as_their_own(
    client: httpx.AsyncClient, app: Any, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    for _ in range(2):
        await post_event(client, dv_event())
    await worker.run_once()
    clock.advance(timedelta(minutes=2))  # the second step of both: a call each to the same primary, at once
    fake_twilio.fail_next(Fault(hang_after=True, only="voice"), Fault(hang_after=True, only="voice"))
    await worker.run_once()

    clock.advance(timedelta(seconds=3))
    await worker.run_once()

    calls = {m.sid: m for m in fake_twilio.calls}
    assert len(calls) == 2  # neither called again
    for notification in await alerts(app, "voice"):
        assert notification.provider_id in calls
        assert calls[notification.provider_id].form["StatusCallback"].endswith(f"?n={notification.id}")


async def test_a_call_that_was_never_placed_does_not_adopt_the_other_callouts_call_to_that_phone(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: Any,
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:
    refs = [(await post_event(client, dv_event())).json()["incident_ref"] for _ in range(2)]
    await worker.run_once()
    clock.advance(timedelta(minutes=2))
    # One call's answer is lost after Twilio placed it; the other never reached Twilio at all.
    fake_twilio.fail_next(Fault(hang_after=True, only="voice"), Fault(hang=True, only="voice"))
    await worker.run_once()

    clock.advance(timedelta(seconds=3))
    await worker.run_once()

    assert len(fake_twilio.calls) == 2  # the one never placed is placed now; the placed one is not placed again
    owners = {n.provider_id: n.id for n in await alerts(app, "voice")}
    assert set(owners) == {m.sid for m in fake_twilio.calls}
    for call in fake_twilio.calls:
        assert call.form["StatusCallback"].endswith(f"?n={owners[call.sid]}")
    earlier = [
        d.get("earlier_attempt") for ref in refs for d in sent_entries(await timeline(client, admin, ref), "voice")
    ]
    assert sorted(earlier, key=str) == [None, "not found at the provider; sent again"]


async def test_a_callback_for_an_alert_whose_answer_was_lost_records_it_sent_exactly(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(Fault(hang_after=True, only="sms"))
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    [text] = fake_twilio.texts

    delivered = await fake_twilio.send_status(text, "delivered")  # names its alert: ?n=...

    assert delivered.status_code == 204
    stages = [(e["stage"], e["data"].get("reconciled")) for e in await timeline(client, admin, ref)]
    assert ("notification_sent", "by its status callback") in stages
    assert ("notification_delivered", None) in stages


async def test_provider_faults_are_retried_for_as_long_as_the_step_waits_then_it_moves_on(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(*[Fault(status=503, only="sms")] * 1000)  # Twilio refuses texts all along
    ref = (await post_event(client, dv_event())).json()["incident_ref"]

    for _ in range(23):  # 115 s of the step's 120
        await worker.run_once()
        clock.advance(timedelta(seconds=5))
    refused = fake_twilio.requests
    failed_early = [e for e in await timeline(client, admin, ref) if e["stage"] == "notification_failed"]
    for _ in range(3):
        await worker.run_once()
        clock.advance(timedelta(seconds=5))

    assert refused >= 10 and failed_early == []  # retried every few seconds, never given up while the step ran
    entries = await timeline(client, admin, ref)
    [failed] = [e["data"] for e in entries if e["stage"] == "notification_failed"]
    assert failed["error"] == "Twilio answered 503 (20500); its step ended first"
    assert [e["stage"] for e in entries].count("escalated") == 1  # the next step (a call) went out
    assert len(fake_twilio.calls) == 1


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    fake_twilio.fail_next(Fault(status=429, retry_after=20, only="sms"))
    await post_event(client, dv_event())
    await worker.run_once()

    clock.advance(timedelta(seconds=19))
    await worker.run_once()
    early = len(fake_twilio.texts)
    clock.advance(timedelta(seconds=1))
    await worker.run_once()

    assert (early, len(fake_twilio.texts)) == (0, 1)


async def test_work_held_by_a_worker_that_died_is_taken_up_at_once_and_a_live_workers_is_kept(
    client: httpx.AsyncClient, app: Any, worker: Worker, fake_twilio: FakeTwilio, clock: FakeClock
) -> None:
    await post_event(client, dv_event())
    await worker.run_once()
    dsn = libpq_url(app.state.db.url)
    holder, sweeper = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    worker.number = await leases.hold(sweeper)
    worker.alive.set()
    dead = await leases.hold(holder)
    # The text is in flight at a worker that holds its number: leased to it for the lease's 90 s.
    async with app.state.db.sessionmaker.begin() as session:
        await session.execute(
            update(Notification)
            .where(Notification.channel == "sms")
            .values(status="pending", leased_by=dead, leased_at=clock.now(), due_at=clock.now() + timedelta(seconds=90))
        )
    try:
        kept = await worker.sweep()
        ready_alive = (await client.get("/readyz")).json()
        await holder.close()  # the holder dies: the server ends its session and its lock
        ready_dead = (await client.get("/readyz")).json()
        taken = await worker.sweep()
        [text] = await alerts(app, "sms")
    finally:
        await sweeper.close()

    assert (kept, ready_alive["work_held_by_no_worker"]) == (0, 0)
    assert (ready_dead["work_held_by_no_worker"], taken) == (1, 1)
    assert (text.due_at, text.leased_by) == (clock.now(), None)  # due now: any worker takes it up


async def test_a_bug_in_one_send_fails_it_alone_and_gives_its_row_back(
    client: httpx.AsyncClient,
    app: Any,
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_send = worker.channel.send_sms
    struck: list[str] = []

    async def broken_for_one(*, to: str, body: str, status_callback: str | None) -> str:
        if not struck:
            struck.append(body)
            raise RuntimeError("a bug that strikes one text")
        return await real_send(to=to, body=body, status_callback=status_callback)

    monkeypatch.setattr(worker.channel, "send_sms", broken_for_one)
    await post_event(client, dv_event())
    await post_event(client, dv_event())
    await worker.run_once()

    texts = await alerts(app, "sms")
    [failed] = [n for n in texts if n.status == "pending"]
    assert len(fake_twilio.texts) == 1  # the other went out
    assert failed.leased_by is None and failed.due_at <= clock.now() + timedelta(seconds=2)  # not held 90 s
    clock.advance(timedelta(seconds=2))
    await worker.run_once()
    assert len(fake_twilio.texts) == 2


async def test_a_bug_in_one_callouts_timer_fails_it_alone(
    client: httpx.AsyncClient,
    app: Any,
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refs = [(await post_event(client, dv_event())).json()["incident_ref"] for _ in range(2)]
    await worker.run_once()
    real_apply = escalation.apply
    struck: list[Any] = []

    async def broken_for_one(session: Any, callout: Any, event: Any, **kwargs: Any) -> Any:
        if not struck:
            struck.append(callout.id)
            raise RuntimeError("a bug that strikes one callout's timer")
        return await real_apply(session, callout, event, **kwargs)

    monkeypatch.setattr(escalation, "apply", broken_for_one)
    clock.advance(timedelta(minutes=2))  # both first steps end: each callout's call step is due
    await worker.run_once()

    assert len(fake_twilio.calls) == 1  # the other callout's step went on
    clock.advance(timedelta(seconds=5))
    await worker.run_once()
    assert len(fake_twilio.calls) == 2 and len(refs) == 2  # and the struck one's, once it was due again


async def in_flight_at_a_lost_worker(app: Any, clock: FakeClock) -> asyncpg.Connection:
    """Our text, as a worker left it that lost its connection mid-send: taken, handed to the provider, never
    recorded, its number gone. Returns the sweeping worker's own connection (which holds its number)."""
    dsn = libpq_url(app.state.db.url)
    holder, sweeper = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    lost = await leases.hold(holder)
    async with app.state.db.sessionmaker.begin() as session:
        await session.execute(
            update(Notification)
            .where(Notification.channel == "sms", Notification.kind == "alert")
            .values(
                status="pending",
                provider_id=None,
                sent_at=None,
                started_at=clock.now(),
                leased_by=lost,
                leased_at=clock.now(),
                due_at=clock.now() + timedelta(seconds=90),
            )
        )
    await holder.close()  # the connection is cut: its number is free, its send perhaps still on its way
    return sweeper


async def test_a_send_abandoned_by_a_worker_that_lost_its_connection_is_not_sent_twice_when_it_lands_late(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: Any,
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    [text] = fake_twilio.texts
    fake_twilio.messages.clear()  # what the provider holds: nothing yet
    sweeper = await in_flight_at_a_lost_worker(app, clock)
    worker.number = await leases.hold(sweeper)
    worker.alive.set()
    try:
        await worker.sweep()
        await worker.run_once()  # taken up at once: not at the provider yet, but it may still land
        nothing_yet = list(fake_twilio.texts)
        fake_twilio.messages.append(text)  # the cut-off worker's create lands
        clock.advance(worker.in_flight_for)
        await worker.run_once()
    finally:
        await sweeper.close()

    assert nothing_yet == [] and fake_twilio.texts == [text]  # not sent again
    entry = sent_entries(await timeline(client, admin, ref))[-1]  # (the first: the setting up's own send)
    assert (entry["provider_id"], entry["reconciled"]) == (text.sid, "found at the provider")


async def test_a_send_abandoned_by_a_lost_worker_that_never_landed_is_sent_again_once_it_would_have_timed_out(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: Any,
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:
    ref = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    fake_twilio.messages.clear()
    sweeper = await in_flight_at_a_lost_worker(app, clock)
    worker.number = await leases.hold(sweeper)
    worker.alive.set()
    try:
        await worker.sweep()
        await worker.run_once()
        clock.advance(worker.in_flight_for / 2)
        await worker.run_once()
        still_waiting = len(fake_twilio.texts)
        clock.advance(worker.in_flight_for / 2)  # past the provider client's timeout, and a second
        await worker.run_once()
    finally:
        await sweeper.close()

    assert still_waiting == 0 and len(fake_twilio.texts) == 1
    entry = sent_entries(await timeline(client, admin, ref))[-1]  # (the first: the setting up's own send)
    assert entry["earlier_attempt"] == "not found at the provider; sent again"
