"""The watch on every CAD feed: silent past the agency's window (no event, no heartbeat), or far longer than its usual
gap at this hour of the week (learned from its own history: heartbeats do not hide a filter dropping every call);
its supervisors and IT contact told once, and again when it speaks; /metrics shows it, /readyz stays ready. The
clock moves; nothing sleeps."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.alerts.worker import Worker
from shared.auth import Role
from shared.clock import FakeClock
from shared.tables import Agency, ReceivedEvent
from tests.factories import PHONES, dv_event, make_program, post_event, signed
from tests.test_program_pages import signed_in_as, text_of

ADA, IT = PHONES["ada"], "+12025550199"


async def set_feed(client: httpx.AsyncClient, admin: dict[str, str], **feed: Any) -> None:
    agency = {"name": "metro 911", "hotline": "+12025550100", "timezone": "UTC", **feed}
    response = await client.put("/v1/directory/agencies/metro", json=agency, headers=admin)
    assert response.status_code == 200, response.text


async def heartbeat(client: httpx.AsyncClient) -> httpx.Response:
    body = json.dumps({}).encode()
    return await client.post("/v1/cad/metro/heartbeat", content=body, headers=signed(body))


def feed_texts(fake: Any, phone: str) -> list[str]:
    return [m.body for m in fake.to(phone) if "CAD feed" in m.body]


async def shown(client: httpx.AsyncClient, page: dict[str, str]) -> tuple[str, str]:
    """What the program's board and the supervisors' dashboard say of the feed."""
    board = await client.get("/dashboard/program/metro", headers=page)
    dashboard = await client.get("/dashboard", headers=page)
    assert board.status_code == dashboard.status_code == 200
    feed = text_of(httpx.Response(200, text=board.text.split('id="cad-feed"')[1].split("</section>")[0]))
    row = text_of(httpx.Response(200, text=dashboard.text.split('data-agency="metro"')[1].split("</tr>")[0]))
    return feed, row


async def test_a_feed_silent_past_its_window_is_told_once_and_again_when_it_speaks(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: Any, clock: FakeClock
) -> None:
    await make_program(client, admin)
    await set_feed(client, admin, feed_silence_minutes=30, it_contact=IT)
    await post_event(client, dv_event())
    await worker.run_once()

    clock.advance(timedelta(minutes=20))
    await worker.watch_contacts()
    speaking = feed_texts(fake_twilio, ADA)
    clock.advance(timedelta(minutes=11))
    await worker.watch_contacts()
    await worker.watch_contacts()  # looked at again: told once
    await worker.run_once()
    silent = feed_texts(fake_twilio, ADA)
    ready = await client.get("/readyz")
    metrics = (await client.get("/metrics")).text
    page = await signed_in_as(app, client, clock, Role.supervisor, agency="metro")
    board_silent, dashboard_silent = await shown(client, page)
    beat = await heartbeat(client)
    await worker.watch_contacts()
    await worker.run_once()
    board_speaking, dashboard_speaking = await shown(client, page)

    assert speaking == []
    assert silent == [
        "Callout: your CAD feed has been silent since 2026-11-16 12:00 UTC: no event or heartbeat for 31 min (its "
        "window: 30 min). DV calls may not be reaching Callout; check the CAD adapter and its filters."
    ]
    assert feed_texts(fake_twilio, IT)[0] == silent[0]
    assert ready.status_code == 200  # a silent CAD is not Callout's fault
    assert 'callout_cad_feed_silent{agency="metro"} 1.0' in metrics
    assert 'callout_cad_feed_seconds_since_last_sign{agency="metro"} 1860.0' in metrics
    assert beat.status_code == 204
    assert (
        feed_texts(fake_twilio, ADA)[1]
        == "Callout: your CAD feed, silent since 2026-11-16 12:00 UTC, is sending again."
    )
    assert 'callout_cad_feed_silent{agency="metro"} 0.0' in (await client.get("/metrics")).text
    told = (
        "Silent since Mon 16 Nov 12:00 UTC: no event or heartbeat for 31 min (its window: 30 min). Told Mon 16 Nov "
        "12:31 UTC"
    )
    heard = "Last event Mon 16 Nov 12:00 UTC (1 in the last hour); no heartbeat (optional)."
    assert told in board_silent and heard in board_silent
    assert dashboard_silent.startswith("> metro silent " + told) and heard in dashboard_silent
    assert "Silent" not in board_speaking and "last heartbeat Mon 16 Nov 12:31 UTC." in board_speaking
    assert dashboard_speaking.startswith("> metro speaking Last event Mon 16 Nov 12:00 UTC")


async def test_an_unsigned_heartbeat_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)
    body = b"{}"

    forged = await client.post(
        "/v1/cad/metro/heartbeat", content=body, headers=signed(body, secret="whsec_" + "QQ" * 16)
    )

    assert forged.status_code == 401


@pytest.fixture
async def history(app: Any, client: httpx.AsyncClient, admin: dict[str, str], clock: FakeClock) -> None:
    """Four weeks of Mondays 11:00 to 13:00 with an event every five minutes; none other."""
    await make_program(client, admin)
    async with app.state.db.sessionmaker.begin() as session:
        agency_id = (await session.scalars(Agency.__table__.select().where(Agency.slug == "metro"))).one()
        for week in range(1, 5):
            monday_11 = clock.now() - timedelta(weeks=week, hours=1)
            for n in range(24):
                session.add(
                    ReceivedEvent(
                        agency_id=agency_id,
                        webhook_id=f"msg_{uuid.uuid4().hex}",
                        body_sha256="0" * 64,
                        received_at=monday_11 + timedelta(minutes=5 * n),
                    )
                )


@pytest.mark.usefixtures("history")
async def test_no_event_for_far_longer_than_usual_at_this_hour_is_silence_even_with_heartbeats(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: Any, clock: FakeClock
) -> None:
    await post_event(client, dv_event())  # Monday 12:00: then nothing, though the adapter keeps beating
    await worker.run_once()

    clock.advance(timedelta(minutes=30))
    await heartbeat(client)
    await worker.watch_contacts()
    half_an_hour = feed_texts(fake_twilio, ADA)
    clock.advance(timedelta(minutes=25))
    await heartbeat(client)
    await worker.watch_contacts()
    await worker.run_once()

    assert half_an_hour == []  # quiet, but not far longer than usual yet
    [told] = feed_texts(fake_twilio, ADA)
    assert "no event for 55 min; at this hour of the week it usually has one every 5 min" in told


@pytest.mark.usefixtures("history")
async def test_a_long_quiet_at_an_hour_that_is_always_quiet_is_no_silence(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: Any, clock: FakeClock
) -> None:
    clock.advance(timedelta(hours=4))  # Monday 16:00: no history of calls at this hour
    await post_event(client, dv_event())
    clock.advance(timedelta(hours=3))

    await worker.watch_contacts()

    assert feed_texts(fake_twilio, ADA) == []
