"""Intake: signed CAD events are triaged and queue a callout in one transaction; bad input changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.alerts.worker import Worker
from services.intake.routes import MAX_BODY_BYTES
from services.intake.schemas import CLOSED_CALL, NEW_CALL
from shared.crypto import sealer
from shared.db import libpq_url
from tests.factories import PHONES, count_rows, dv_event, make_program, post_event, signed
from tests.fake_twilio import FakeTwilio

pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def test_dv_event_is_accepted_with_its_tier_and_reasons(client: httpx.AsyncClient, database_url: str) -> None:
    response = await post_event(client, dv_event())

    assert response.status_code == 202
    receipt = response.json()
    assert receipt["incident_ref"].startswith("INC-")
    assert (receipt["dv"], receipt["tier"]) == (True, "immediate")
    assert "type 10-16 maps to APCO DVA, a DV code" in receipt["reasons"]
    assert any(r.startswith("LAP-classic screened in: yes to q1") for r in receipt["reasons"])
    assert len(receipt["callout"]["code"]) == 4
    # 202 means committed: another connection sees the event, the incident and its queued callout.
    assert await count_rows(database_url) == {
        "cad_events": 1,
        "incidents": 1,
        "callouts": 1,
        "timeline_entries": 2,
        "notifications": 0,
    }


async def test_repeat_of_a_webhook_id_gets_the_first_answer_and_causes_nothing_new(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = json.dumps(dv_event()).encode()
    headers = signed(body, webhook_id="msg_repeat")
    first = await client.post("/v1/cad/metro/events", content=body, headers=headers)
    before = await count_rows(database_url)

    again = await client.post("/v1/cad/metro/events", content=body, headers=signed(body, webhook_id="msg_repeat"))

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert await count_rows(database_url) == before


async def test_concurrent_repeats_of_one_webhook_id_act_once(client: httpx.AsyncClient, database_url: str) -> None:
    body = json.dumps(dv_event()).encode()
    headers = signed(body, webhook_id="msg_race")

    responses = await asyncio.gather(
        *(client.post("/v1/cad/metro/events", content=body, headers=headers) for _ in range(5))
    )

    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["incident_ref"] for r in responses}) == 1
    assert (await count_rows(database_url))["callouts"] == 1


async def test_same_webhook_id_with_another_body_is_409_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await post_event(client, dv_event(), webhook_id="msg_reused")
    before = await count_rows(database_url)

    response = await post_event(client, dv_event(type_code="DVNA"), webhook_id="msg_reused")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert await count_rows(database_url) == before


async def test_events_for_one_incident_update_it_and_do_not_queue_a_second_callout(
    client: httpx.AsyncClient, database_url: str
) -> None:
    event = dv_event()
    first = await post_event(client, event)
    update = {**event, "status": "updated", "units": [{"unit": "A12", "status": "on_scene"}]}

    second = await post_event(client, update)

    assert second.json()["incident_ref"] == first.json()["incident_ref"]
    assert (await count_rows(database_url))["callouts"] == 1


async def test_a_call_that_is_not_dv_is_recorded_as_ignored_and_sends_nothing(
    client: httpx.AsyncClient, database_url: str, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    response = await post_event(client, dv_event(type_code="BURG"))

    assert response.status_code == 202
    assert (response.json()["dv"], response.json()["tier"], response.json()["callout"]) == (False, "none", None)
    await worker.run_once()
    assert fake_twilio.requests == 0
    assert (await count_rows(database_url))["incidents"] == 1


async def test_a_call_cancelled_before_anyone_was_alerted_alerts_nobody(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    event = dv_event()
    await post_event(client, event)

    response = await post_event(client, {**event, "status": "cancelled"})
    await worker.run_once()

    assert response.json()["status"] == "cancelled"
    assert fake_twilio.requests == 0


BAD_REQUESTS: dict[str, tuple[str, dict[str, Any] | bytes, dict[str, str] | str, int]] = {
    # name: (agency, body, headers or a recipe for them, expected status)
    "unsigned": ("metro", dv_event(), {"content-type": "application/json"}, 401),
    "wrongly signed": ("metro", dv_event(), "wrong-secret", 401),
    "signed too long ago": ("metro", dv_event(), "old", 401),
    "signed in the future": ("metro", dv_event(), "future", 401),
    "unknown agency": ("nowhere", dv_event(), "valid", 401),
    "malformed JSON": ("metro", b"{not json", "valid", 422),
    "an unknown field": ("metro", dv_event(citizenship="X"), "valid", 422),
    "a missing incident_id": ("metro", {k: v for k, v in dv_event().items() if k != "incident_id"}, "valid", 422),
    "a bad screen answer": ("metro", dv_event(screen={"instrument": "LAP", "answers": {"q1": "maybe"}}), "valid", 422),
    "a naive timestamp": ("metro", dv_event(occurred_at="2026-11-16T11:58:00"), "valid", 422),
    "an oversized body": ("metro", dv_event(type_text="x" * MAX_BODY_BYTES), "valid", 413),
    "not JSON": ("metro", b"incident_id=1", "form", 415),
    "a boolean priority": ("metro", dv_event(priority=True), "valid", 422),
    "a priority with a fraction": ("metro", dv_event(priority=1.5), "valid", 422),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
async def test_bad_requests_are_refused_and_change_nothing(
    case: str, client: httpx.AsyncClient, database_url: str, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    agency, event, recipe, expected = BAD_REQUESTS[case]
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    now = datetime.now(UTC)
    headers = (
        {
            "valid": lambda: signed(body),
            "wrong-secret": lambda: signed(body, secret="whsec_" + "A" * 43 + "="),
            "old": lambda: signed(body, at=now - timedelta(minutes=6)),
            "future": lambda: signed(body, at=now + timedelta(minutes=6)),
            "form": lambda: {**signed(body), "content-type": "application/x-www-form-urlencoded"},
        }[recipe]()
        if isinstance(recipe, str)
        else recipe
    )
    before = await count_rows(database_url)

    response = await client.post(f"/v1/cad/{agency}/events", content=body, headers=headers)
    await worker.run_once()

    assert response.status_code == expected
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == expected
    assert await count_rows(database_url) == before
    assert fake_twilio.requests == 0


async def test_unknown_agency_gets_the_same_answer_as_a_wrong_signature(client: httpx.AsyncClient) -> None:
    body = json.dumps(dv_event()).encode()
    unknown = await client.post("/v1/cad/nowhere/events", content=body, headers=signed(body))
    forged = await client.post("/v1/cad/metro/events", content=body, headers=signed(body, secret="whsec_" + "B" * 44))

    assert unknown.status_code == forged.status_code == 401
    assert unknown.json() == forged.json()


async def test_invalid_body_names_the_field_without_echoing_values(client: httpx.AsyncClient) -> None:
    event = dv_event()
    event["persons"][0]["safe_contact"]["phone"] = "+1" * 40  # too long, and personal

    response = await post_event(client, event)

    assert response.status_code == 422
    problem = response.json()
    assert "persons.0.safe_contact.phone" in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["persons.0.safe_contact.phone"]
    assert "+1+1" not in response.text


@pytest.mark.parametrize(("sent", "kept"), [(1, "1"), ("P1", "P1"), (" 2 ", "2"), (0, "0")])
async def test_a_priority_comes_as_a_string_or_an_integer_and_is_kept_as_text(
    sent: object, kept: str, client: httpx.AsyncClient, database_url: str
) -> None:
    response = await post_event(client, dv_event(priority=sent))

    assert response.status_code == 202, response.text
    assert (await stored_details(database_url))["priority"] == kept


@pytest.mark.parametrize("sent", [True, False, 1.0, 2.5, [1], {"level": 1}])
async def test_a_priority_that_is_no_string_or_integer_is_a_422_naming_it_and_changes_nothing(
    sent: object, client: httpx.AsyncClient, database_url: str
) -> None:
    """True is an int to Python: it must not be kept as "1" (or "True"). 1.0 has no one text that is the CAD's."""
    before = await count_rows(database_url)

    response = await post_event(client, dv_event(priority=sent))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "priority", "message": "Input should be a string or an integer"}]
    assert await count_rows(database_url) == before


async def test_the_examples_in_the_api_schema_are_a_call_intake_takes_and_its_close(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio
) -> None:
    new = await post_event(client, NEW_CALL)
    await worker.run_once()
    closed = await post_event(client, CLOSED_CALL)

    assert new.status_code == 202, new.text
    assert (new.json()["dv"], new.json()["tier"]) == (True, "immediate")
    assert [m.to for m in fake_twilio.messages if m.kind == "sms"] == [PHONES["luis"]]  # he speaks Spanish
    assert closed.status_code == 202, closed.text
    assert (closed.json()["incident_ref"], closed.json()["status"]) == (new.json()["incident_ref"], "closed")


async def stored_details(database_url: str) -> dict[str, Any]:
    """The one incident's details, opened."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        [sealed] = await conn.fetch("SELECT details FROM incidents")
    finally:
        await conn.close()
    details: dict[str, Any] = sealer().open(sealed["details"])
    return details


async def test_events_keep_landing_after_the_database_closes_every_connection(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """A restart or failover closes the pool's connections: the next event must not be the one that finds out."""
    assert (await post_event(client, dv_event())).status_code == 202
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        pids = [
            row["pid"]
            for row in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        assert pids
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        # They exit at once; each query also lets the app's loop see their sockets close.
        while await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = any($1)", pids):
            pass
    finally:
        await conn.close()

    response = await post_event(client, dv_event())

    assert response.status_code == 202, response.text
    assert (await count_rows(database_url))["incidents"] == 2
