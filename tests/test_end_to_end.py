"""Callout as a new user runs it: `callout serve` in one process, `callout demo` and `callout cad send` in
others, the texts arriving at a fake Twilio over real HTTP — and not one line of personal data in the logs."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.factories import PHONES, SECRET, dv_event, signed
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio, Message
from tests.processes import Server, free_port, run


def priority_event() -> dict[str, Any]:
    """Screened in without a lethality sign: the priority tier, whose first step is one text."""
    return dv_event(type_code="DVA", screen={"instrument": "LAP", "answers": {"q3": "yes"}}, cautions=[])


@pytest.fixture
async def env(database_url: str, fake_twilio: FakeTwilio) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        "CALLOUT_ENVIRONMENT": "production",
        "CALLOUT_DATABASE_URL": database_url,
        "CALLOUT_PORT": str(port),
        "CALLOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "CALLOUT_DATA_KEY": "end-to-end-data-key-0123456789abcdef",
        "CALLOUT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CALLOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLOUT_TWILIO_FROM": FROM,
        "CALLOUT_TWILIO_API_BASE": fake_twilio.base_url,
        "CALLOUT_DEMO_SECRET": SECRET,
    }


@pytest.fixture
async def server(env: dict[str, str]) -> AsyncIterator[Server]:
    server = await Server.start(env)
    yield server
    await server.stop()


async def test_demo_then_a_cad_event_of_our_own_reach_the_advocates_phone(
    server: Server, env: dict[str, str], fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{env['CALLOUT_PORT']}"
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")

    code, output = await run(env, "demo")
    assert code == 0, output
    assert "notification_sent" in output

    def alerts() -> list[Message]:  # what callouts sent: each new advocate is also asked to prove their phone
        return [m for m in fake_twilio.messages if not m.body.startswith("Callout: to confirm")]

    await fake_twilio.wait_until(lambda: len(alerts()) >= 2)  # immediate: a text and a call
    assert [m.to for m in alerts()] == [PHONES["luis"]] * 2  # the demo victim speaks Spanish
    await fake_twilio.wait_until(lambda: len(fake_twilio.messages) - len(alerts()) >= 3)
    assert {m.to for m in fake_twilio.texts if m not in alerts()} >= {PHONES["luis"], PHONES["mei"]}

    event = priority_event()
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    started = time.perf_counter()
    code, output = await run(env, "cad", "send", "--agency", "demo", "--secret", SECRET, str(event_file))
    await fake_twilio.wait_until(lambda: len(alerts()) >= 3)
    messages = alerts()
    elapsed_ms = (time.perf_counter() - started) * 1000

    assert code == 0, output
    assert output.startswith("202 Accepted")
    assert (messages[2].kind, messages[2].to) == ("sms", PHONES["luis"])
    print(f"\ncad send -> SMS at the fake Twilio: {elapsed_ms:.0f} ms (including the CLI's start-up)")

    # And straight from a CAD's POST to the text leaving for Twilio, without the CLI's start-up:
    body = json.dumps(priority_event()).encode()
    async with httpx.AsyncClient(base_url=base) as http:
        started = time.perf_counter()
        response = await http.post("/v1/cad/demo/events", content=body, headers=signed(body))
        await fake_twilio.wait_until(lambda: len(alerts()) >= 4)
    print(f"POST -> SMS at the fake Twilio: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert response.status_code == 202

    # Delivery reports come back over HTTP, signed, and land in the timeline.
    async with httpx.AsyncClient() as callbacks:
        fake_twilio.callback_client = callbacks
        assert (await fake_twilio.send_status(messages[2], "delivered")).status_code == 204

    # The advocate answers by text: several callouts are open, so the code says which.
    code_ = response.json()["callout"]["code"]
    code, output = await run(env, "reply", PHONES["luis"], "1")
    assert "add the code" in output, output
    code, output = await run(env, "reply", PHONES["luis"], f"1 {code_}")
    assert code == 0 and output.startswith(f"Accepted callout {code_}"), output

    await server.stop()  # so that every line it would log is in
    personal = [
        "1234 Ziggurat Lane",
        "Ziggurat",
        "62704",
        "+12025557777",
        "7777",
        "Quetzal",
        "weekday mornings",
        "100 Example St",
        "+12025550199",
        SECRET,
        ADMIN_TOKEN,
        AUTH_TOKEN,
    ]
    # Ids (UUIDs, request ids, Twilio sids) are random hex and may hold "7777" by chance: not a phone's digits.
    without_ids = re.sub(
        r"\b(?:SM|CA)?[0-9a-f]{32}\b|\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", "<id>", server.log
    )
    leaks = [p for p in personal if p in without_ids]
    assert leaks == [], f"personal data or secrets in the logs: {leaks}"
    assert all(line.startswith("{") for line in server.lines), "production logs are JSON, one object a line"
    assert any('"event": "send.sent"' in line for line in server.lines)
