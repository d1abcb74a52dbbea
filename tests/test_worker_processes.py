"""Several worker processes on one PostgreSQL; one is killed (SIGKILL) in the middle of a send. Another takes its
work up within seconds — with the lease's full 90 s still to run — every step is still sent exactly once, and
every callout still escalates on time."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from services.alerts.models import Notification, NotificationStatus
from shared.db import Database
from tests.conftest import ADMIN_TOKEN
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio, Fault, Message
from tests.processes import Server, free_port

INCIDENTS = 6
WAIT = 3  # seconds each step waits for an acceptance, in this test's policy
ON_TIME = 2.0  # how late a step may start: the poll interval and a loaded CI machine (timers run ms late)
TAKEN_OVER = 5.0  # how soon after the kill another worker has the dead worker's send


@pytest.fixture
async def workers(database_url: str, fake_twilio: FakeTwilio) -> AsyncIterator[list[Server]]:
    directory_port = free_port()
    env = {
        **os.environ,
        "CALLOUT_DATABASE_URL": database_url,
        "CALLOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "CALLOUT_PUBLIC_URL": "https://callout.example.org",
        "CALLOUT_DIRECTORY_URL": f"http://127.0.0.1:{directory_port}",
        "CALLOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLOUT_TWILIO_FROM": FROM,
        "CALLOUT_TWILIO_API_BASE": fake_twilio.base_url,
        "CALLOUT_TWILIO_TIMEOUT_SECONDS": "30",  # the hung send must be killed, not timed out
        "CALLOUT_WORKER_POLL_SECONDS": "0.2",  # the lease stays at its 90 s: only the worker's death frees it
        "CALLOUT_DATABASE_POOL_SIZE": "4",  # four processes on a server other tests share
    }
    # Started side by side (a worker needs the directory only once there is work); every one that started is
    # stopped, even when another fails to.
    started = await asyncio.gather(
        Server.start(env, "--service", "directory", "--port", str(directory_port)),
        *(Server.start(env, "--service", "worker", "--port", str(free_port())) for _ in range(3)),
        return_exceptions=True,
    )
    servers = [s for s in started if isinstance(s, Server)]
    try:
        for failed in started:
            if isinstance(failed, BaseException):
                raise failed
        yield servers[1:]
    finally:
        await asyncio.gather(*(server.stop() for server in servers))


async def notifications_settled(database_url: str, expected: int) -> None:
    """Wait (on the database, 30 s at most) until `expected` alerts exist and none is still to be sent."""
    database = Database.connect(database_url, pool_size=1)
    try:
        async with asyncio.timeout(30):
            while True:
                async with database.sessionmaker() as session:
                    counts = dict(
                        (
                            await session.execute(
                                select(Notification.status, func.count())
                                .where(Notification.kind == "alert")
                                .group_by(Notification.status)
                            )
                        ).all()
                    )
                if sum(counts.values()) >= expected and not counts.get(NotificationStatus.pending):
                    return
                await asyncio.sleep(0.1)  # polling a condition, not waiting out a timer
    finally:
        await database.close()


async def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    workers: list[Server],
    fake_twilio: FakeTwilio,
    database_url: str,
) -> None:
    await make_program(client, admin)
    policy = {
        "steps": [
            {"notify": ["primary"], "via": ["sms"], "wait_seconds": WAIT},
            {"notify": ["backup"], "via": ["sms"], "wait_seconds": WAIT},
        ],
        "repeat": 0,
    }
    assert (await client.put("/v1/directory/agencies/metro/policies/immediate", json=policy, headers=admin)).is_success
    # The first alert goes out, and its answer never comes (not a phone's code, nor a note to the supervisors).
    fake_twilio.fail_next(Fault(hang_after=True, matching=r"^Callout [A-Z0-9]{4}: "))

    refs = [(await post_event(client, dv_event())).json()["incident_ref"] for _ in range(INCIDENTS)]
    async with asyncio.timeout(15):
        await fake_twilio.hung.wait()
    [port] = fake_twilio.hanging
    [victim] = [c.pid for c in psutil.net_connections(kind="tcp") if c.laddr and c.laddr.port == port and c.pid]
    assert victim in [w.process.pid for w in workers]
    os.kill(victim, signal.SIGKILL)
    killed_at = datetime.now(UTC)

    await notifications_settled(database_url, expected=2 * INCIDENTS)

    def alerts_to(phone: str) -> list[Message]:  # each advocate is also asked to prove their phone, once
        return [m for m in fake_twilio.to(phone) if not m.body.startswith("Callout: to confirm")]

    await fake_twilio.wait_until(lambda: len(alerts_to(PHONES["luis"]) + alerts_to(PHONES["mei"])) >= 2 * INCIDENTS)

    primaries, backups = alerts_to(PHONES["luis"]), alerts_to(PHONES["mei"])
    assert (len(primaries), len(backups)) == (INCIDENTS, INCIDENTS)  # each step once: the hung one not resent
    taken_over = []
    for ref in refs:  # each backup step started when the first step's wait ran out, killed worker or not
        entries = (await client.get(f"/v1/incidents/{ref}/timeline", headers=admin)).json()["entries"]
        sent = [e for e in entries if e["stage"] == "notification_sent"]
        assert len(sent) == 2, f"{ref}: {len(sent)} of its 2 alerts recorded sent"  # the hung one's too
        taken_over += [
            datetime.fromisoformat(e["observed_at"])
            for e in sent
            if e["data"].get("reconciled") == "found at the provider"
        ]
        at = {e["stage"]: datetime.fromisoformat(e["observed_at"]) for e in entries}
        lateness = (at["escalated"] - at["advocate_matched"]).total_seconds() - WAIT
        assert 0 <= lateness <= ON_TIME, f"{ref}: the backup step started {lateness:.2f} s late"
    # What the killed worker had handed over was found at Twilio by another worker, not sent again, in seconds. The
    # hung text was (it is recorded sent, sent once, and its worker died before its answer), and so was any other
    # send whose answer the worker had yet to record when it died: it sends several at once, and on a loaded
    # machine it may be killed between Twilio's answer and its record of it.
    assert taken_over
    assert all((found_at - killed_at).total_seconds() < TAKEN_OVER for found_at in taken_over), taken_over
