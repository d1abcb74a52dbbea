"""Premises: flags kept by an address's key (never the address), a derived signal from Callout's own incidents,
the tier raised by the documented rule, and the flags shown on the advocate's page — never in a text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.db import libpq_url
from shared.premises import premise_key
from tests.conftest import PUBLIC_URL
from tests.factories import dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio

HOME = {"address": "1234 Ziggurat Lane", "unit": "Apt 9", "city": "Springfield", "state": "IL", "postal_code": "62704"}
FLAGS = "/v1/directory/agencies/metro/premise-flags"


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


def unscreened(**overrides: Any) -> dict[str, Any]:
    """A DV call that came without a screen: follow_up, unless the premise says more."""
    return dv_event(screen=None, cautions=[], **overrides)


async def flag(client: httpx.AsyncClient, admin: dict[str, str], **spec: Any) -> httpx.Response:
    body = {"address": HOME, "kind": "firearm", "source": "court order 2026-114", **spec}
    return await client.post(FLAGS, json=body, headers=admin)


def test_one_address_written_many_ways_is_one_key_and_the_key_is_not_the_address() -> None:
    ways = [
        HOME,
        {"address": "1234 ziggurat ln", "unit": "#9", "city": "springfield", "state": "il"},
        {
            "address": "1234 Ziggurat Lane",
            "unit": "Unit 9",
            "postal_code": "62704",
            "city": "Springfield",
            "state": "IL",
        },
    ]
    keys = {premise_key(way, "k" * 32) for way in ways}

    assert len(keys) == 1
    assert premise_key({**HOME, "unit": "Apt 10"}, "k" * 32) not in keys
    assert premise_key(HOME, "another key, another key, another") not in keys  # keyed: not a plain hash
    assert premise_key({"address": "somewhere over the rainbow"}, "k" * 32) is None
    [key] = keys
    assert key is not None and "ZIGGURAT" not in key.upper()


async def test_a_flag_raises_the_tier_one_step_and_an_expired_one_does_not(
    client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock
) -> None:
    assert (await flag(client, admin, expires_at=(clock.now() - timedelta(days=1)).isoformat())).status_code == 201
    before = (await post_event(client, unscreened(location=HOME))).json()
    assert (before["tier"], any("premise" in r for r in before["reasons"])) == ("follow_up", False)

    assert (await flag(client, admin)).status_code == 201
    flagged = (await post_event(client, unscreened(location={**HOME, "address": "1234 ZIGGURAT LN"}))).json()
    elsewhere = (await post_event(client, unscreened(location={**HOME, "address": "77 Other St"}))).json()

    assert flagged["tier"] == "priority"
    assert "premise: firearm flag; tier raised from follow_up" in flagged["reasons"]
    assert elsewhere["tier"] == "follow_up"


async def test_a_third_dv_call_at_an_address_within_a_year_is_raised(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.advance(-timedelta(days=410))
    await post_event(client, unscreened(location=HOME))
    clock.advance(timedelta(days=310))
    await post_event(client, unscreened(location=HOME))
    clock.advance(timedelta(days=100))
    second_within_a_year = (await post_event(client, unscreened(location=HOME))).json()  # the first is 410 days back
    clock.advance(timedelta(days=1))

    third = (await post_event(client, unscreened(location=HOME))).json()

    assert second_within_a_year["tier"] == "follow_up"
    assert third["tier"] == "priority"
    assert "premise: 3 DV calls at this address in 12 months; tier raised from follow_up" in third["reasons"]


async def test_updates_to_a_call_keep_what_was_known_at_its_address(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await flag(client, admin, kind="protection_order")
    event = unscreened(location=HOME)
    first = (await post_event(client, event)).json()

    update = (await post_event(client, {**event, "status": "updated"})).json()

    assert (first["tier"], update["tier"]) == ("priority", "priority")


async def test_flags_show_on_the_advocates_page_and_never_in_a_text(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    await flag(client, admin)
    await post_event(client, dv_event(location=HOME))
    await worker.run_once()
    link = fake_twilio.texts[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)

    page = await client.post(link, data={"action": "accept"})

    assert "Flags at this address" in page.text and "firearm (court order 2026-114)" in page.text
    for message in fake_twilio.messages:
        assert "court order" not in message.body and "firearm" not in message.body.lower()


async def test_flags_are_found_by_address_and_the_address_is_never_stored(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    created = (await flag(client, admin)).json()
    found = await client.post(
        f"{FLAGS}/search",
        json={"address": "1234 ziggurat ln", "unit": "apt 9", "city": "Springfield", "state": "IL"},
        headers=admin,
    )
    unreadable = await flag(client, admin, address={"address": "somewhere over the rainbow"})

    assert found.status_code == 200, found.text
    assert [f["id"] for f in found.json()] == [created["id"]]
    assert unreadable.status_code == 422
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        stored = await conn.fetchval("SELECT string_agg(row_to_json(f)::text, ' ') FROM premise_flags f")
    finally:
        await conn.close()
    assert "iggurat" not in stored.lower() and "springfield" not in stored.lower()

    assert (await client.delete(f"{FLAGS}/{created['id']}", headers=admin)).status_code == 204
    assert (await client.post(f"{FLAGS}/search", json=HOME, headers=admin)).json() == []
