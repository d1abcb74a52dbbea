"""`callout advocate test KEY`: a test text and a test call to an advocate's phone, and what each came to."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import click

from callout.config import load_settings
from callout.server import database_url, migrate_when_reachable, stderr_log
from services.directory import service
from shared import audit
from shared.db import Database
from shared.problems import NotFound
from shared.tables import ContactTest

POLL_SECONDS = 2.0


@click.group()
def advocate() -> None:
    """Advocates' phones: test that alerts reach them."""


@advocate.command("test")
@click.argument("key")
@click.option("--agency", required=True, help="The advocate's agency (slug).")
@click.option("--wait", "wait_seconds", default=120, show_default=True, help="Seconds to wait for the outcome.")
def test_command(key: str, agency: str, wait_seconds: int) -> None:
    """Send a test text and a test call to KEY's phone (the running alerts worker sends them), then print what
    each came to: the text delivered or not, the call answered with a key press or not."""
    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())
    test_id = asyncio.run(request(url, agency, key))
    click.echo(f"test {test_id} asked for {agency}/{key}: a text and a call go out now")
    deadline = time.monotonic() + wait_seconds
    while True:
        test = asyncio.run(read(url, test_id))
        done = finished(test.text_result, "sent") and finished(test.call_result, "ringing")
        if done or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)  # a person is answering a phone: polled, not pushed
    click.echo(f"text: {test.text_result or 'not sent yet'}")
    click.echo(f"call: {test.call_result or 'not placed yet'}")
    if not done:
        click.echo("outcome not known yet: `GET /v1/directory/agencies/.../advocates/.../tests` shows it later")
    if not (test.text_result == "delivered" and test.call_result == "answered"):
        raise SystemExit(1)


def finished(result: str | None, in_flight: str) -> bool:
    return result is not None and result != in_flight


async def request(url: str, slug: str, key: str) -> int:
    database = Database.connect(url, pool_size=1)
    now = datetime.now(UTC)
    try:
        async with database.sessionmaker.begin() as session:
            found = await service.get_advocate(session, await service.get_agency(session, slug), key)
            test = await service.request_test(session, found, requested_by="cli", now=now)
            subject = f"POST /v1/directory/agencies/{slug}/advocates/{key}/tests"
            await audit.record(session, actor="cli", action="change", subject=subject, at=now)
            return test.id
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        await database.close()


async def read(url: str, test_id: int) -> ContactTest:
    database = Database.connect(url, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            return await session.get_one(ContactTest, test_id)
    finally:
        await database.close()
