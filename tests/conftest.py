"""Test fixtures: a fresh PostgreSQL database per run, a fake Twilio, a clock tests move, and the app."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import structlog
import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import make_url

from callout import embedded
from callout.compose import Part, build
from services.alerts.settings import AlertsSettings
from services.alerts.worker import Worker
from shared.auth import Role
from shared.clock import FakeClock
from shared.db import Base, libpq_url, migrate
from tests.browser import LAUNCH_ARGS, NoChromium, chromium_to_drive
from tests.factories import issued_token
from tests.fake_dns import FakeDns
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio
from tests.processes import free_port

# Only `callout serve` configures structlog (shared/logging.py); in the tests' own process its defaults render each
# logged exception with rich, every frame's locals and source: seconds for each one a test provokes. The defaults
# otherwise, with tracebacks as plain text.
structlog.configure(
    processors=[
        *(p for p in structlog.get_config()["processors"] if not isinstance(p, structlog.dev.ConsoleRenderer)),
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]
)

ADMIN_TOKEN = "test-admin-token-of-enough-length"
PUBLIC_URL = "https://callout.example.org"
# A Monday at noon, UTC: inside every weekday shift the tests set up.
MONDAY_NOON = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)


async def admin_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The PostgreSQL server: CALLOUT_TEST_DATABASE_URL when set (CI), otherwise an embedded one. The workers of
    one `pytest -n` run share one embedded server, kept in the run's directory above each worker's own (the first
    starts it, the others join it, the last to finish stops it); each has a database of its own (database_url)."""
    if url := os.environ.get("CALLOUT_TEST_DATABASE_URL"):
        return url
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return embedded.start(tmp_path_factory.getbasetemp().parent / "embedded")
    return embedded.start(tmp_path_factory.mktemp("embedded"))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this run, built by the migrations."""
    name = f"callout_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin_sql(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    asyncio.run(admin_sql(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


# Every sequence behind a table's serial ids set back to its start, as RESTART IDENTITY does, but in place.
RESTART_OWNED_SEQUENCES = """
SELECT setval(sequence.oid, pg_sequence.seqstart, false)
FROM pg_class sequence
JOIN pg_sequence ON pg_sequence.seqrelid = sequence.oid
JOIN pg_depend ON pg_depend.classid = 'pg_class'::regclass AND pg_depend.objid = sequence.oid
  AND pg_depend.refclassid = 'pg_class'::regclass AND pg_depend.deptype IN ('a', 'i')
JOIN pg_class owner ON owner.oid = pg_depend.refobjid
WHERE sequence.relkind = 'S' AND owner.relname = ANY($1::text[])
"""


async def empty_every_table(url: str) -> None:
    """Every table emptied and its ids restarted, as `TRUNCATE … RESTART IDENTITY CASCADE` would.

    DELETE, not TRUNCATE: TRUNCATE gives every table, index and TOAST table a new file, and the checkpoint each
    DROP DATABASE forces must then sync every file made since the one before — tens of thousands late in a run,
    20 s for that one test. Deleting a test's few rows makes no file. Children go before their parents, so no
    foreign key is broken."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    conn = await asyncpg.connect(libpq_url(url))
    try:
        async with conn.transaction():
            await conn.execute("; ".join(f'DELETE FROM "{table}"' for table in reversed(tables)))  # noqa: S608  # our own tables' names
            await conn.fetch(RESTART_OWNED_SEQUENCES, tables)
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
async def clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test starts on empty tables (tests commit for real, so a rolled-back transaction won't do)."""
    yield
    if "database_url" in request.fixturenames:
        await empty_every_table(request.getfixturevalue("database_url"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_NOON)


@pytest.fixture(scope="session")
async def twilio_server() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def fake_twilio(twilio_server: FakeTwilio) -> Iterator[FakeTwilio]:
    twilio_server.reset()
    yield twilio_server
    twilio_server.reset()


@pytest.fixture
def settings(fake_twilio: FakeTwilio) -> AlertsSettings:
    return AlertsSettings(
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from=FROM,
        twilio_api_base=fake_twilio.base_url,
        twilio_timeout_seconds=0.5,
        worker_concurrency=2,
        database_pool_size=4,
        roster_fresh_seconds=0,  # tests change programs mid-way; the cache has its own test
    )


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
async def app(settings: AlertsSettings, database_url: str, clock: FakeClock, fake_twilio: FakeTwilio, dns: FakeDns):  # type: ignore[no-untyped-def]
    """The whole of Callout in one app, its worker driven by the test, its directory reached in-process, and the
    names it looks up answered by the test's DNS."""
    application = build(
        Part.all,
        settings,
        database_url,
        clock=clock,
        run_worker=False,
        directory_transport=lambda a: httpx.ASGITransport(app=a),
        resolver=dns.resolve,
    )
    async with application.router.lifespan_context(application):
        fake_twilio.callback_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application))
        yield application
        await fake_twilio.callback_client.aclose()


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as http:
        yield http


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def issued_admin(app, clock: FakeClock) -> str:  # type: ignore[no-untyped-def]
    """An admin token issued to a person: the dashboard takes no other (the bootstrap token names nobody)."""
    return await issued_token(app.state.db, role=Role.admin, label="A. Admin", now=clock.now())


@pytest.fixture
def worker(app) -> Worker:  # type: ignore[no-untyped-def]
    return app.state.worker  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """One headless Chromium for the run (Playwright's driver and a browser cost half a second to start), found as
    `make test` finds it (tests/browser.py): where there is none, every browser test fails saying what to install."""
    async with async_playwright() as playwright:
        try:
            found = chromium_to_drive(playwright.chromium.executable_path)
        except NoChromium as exc:
            pytest.fail(str(exc), pytrace=False)
        launched = await playwright.chromium.launch(executable_path=found.executable, args=LAUNCH_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def browser(chromium: Browser) -> AsyncIterator[Browser]:
    """The run's Chromium, as a browser of the test's own: each page or context a test opens is a profile of its
    own (cookies, storage, cache), and every one is closed when the test ends, so none outlives it."""
    yield chromium
    for context in chromium.contexts:
        await context.close()


@pytest.fixture
async def served(app) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """The test's app over real HTTP, for the browser; its lifespan is the app fixture's."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):  # a server coming up, not a timer
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


def csp_violations(page: Page) -> list[str]:
    """What the browser refused on `page` under our Content-Security-Policy (filled as the page runs): the CSP
    must break nothing of our own pages."""
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    return refused
