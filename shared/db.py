"""The database: declarative base, engine and sessions, migrations and their readiness."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
import structlog
from fastapi import Depends, Request
from sqlalchemy import MetaData, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger()
# How long a new connection may take: a server that does not answer at all (a host gone, packets dropped) is an
# outage after this, not a request hanging for asyncpg's default minute.
CONNECT_SECONDS = 10.0

MIGRATIONS = Path(__file__).parent / "migrations"
# Several replicas may start at once; one migrates while the others wait on this lock.
MIGRATION_LOCK_ID = 0x43414C4C  # "CALL"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    """Accept the URLs operators write (postgres://, postgresql://) and use the asyncpg driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same database as a plain libpq URL, for a raw asyncpg connection (LISTEN)."""
    return make_url(async_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def where(url: str) -> dict[str, Any]:
    """The server a URL names, for a log line: host, port and database, never the password."""
    parsed = make_url(async_url(url))
    host = parsed.host or parsed.query.get("host") or "localhost"
    return {"host": host if isinstance(host, str) else ",".join(host), "port": parsed.port, "database": parsed.database}


# -- the database away ------------------------------------------------------------------------------------------

# The server said it is going away or not yet there: shut down by an operator or a crash, starting up, full.
SERVER_AWAY = (
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# What asyncpg says of a connection the server closed, or one left mid-operation: by a failed or cancelled
# operation, or by a message the server sent unasked before closing it.
CONNECTION_GONE = ("connection is closed", "cannot switch to state", "pool is clos")
DRIVERS = ("asyncpg", "sqlalchemy")


def _raised_by_driver(exc: BaseException) -> bool:
    """Whether the traceback passes through asyncpg or SQLAlchemy: an OSError from anywhere else (a file, an HTTP
    client) is no database outage."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(DRIVERS):
            return True
        tb = tb.tb_next
    return False


def _driver_errors(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps, as SQLAlchemy wraps asyncpg's (DBAPIError, then the adapter's error)."""
    chain, current = [exc], exc
    while len(chain) < 4:
        if isinstance(current, sa_exc.DBAPIError) and current.orig is not None:
            current = current.orig
        elif type(current).__module__.startswith("sqlalchemy") and current.__cause__ is not None:
            current = current.__cause__
        else:
            break
        chain.append(current)
    return chain


def driver_error(exc: BaseException) -> BaseException:
    """What the driver raised, under SQLAlchemy's wrapping: the error a log line should name."""
    return _driver_errors(exc)[-1]


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or a connection to it was lost — as opposed to a
    statement it refused, or a bug: the server away, restarting, its connections killed, the pool exhausted."""
    for error in _driver_errors(exc):
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(error, (asyncpg.PostgresConnectionError, *SERVER_AWAY)):
            return True
        # "cannot switch to state 15; another operation (2) is in progress" is an InternalClientError: the server's
        # FATAL ("terminating connection") came while the connection was idle, and the close is yet to come.
        if isinstance(error, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError) and any(
            gone in str(error) for gone in CONNECTION_GONE
        ):
            return True
        # Refused, reset, timed out (TimeoutError is one), the socket gone: on the way to the database.
        if isinstance(error, OSError) and (error is not exc or _raised_by_driver(error)):
            return True
    return False


def is_unstorable_text(exc: BaseException) -> bool:
    """Whether PostgreSQL (or asyncpg, encoding) refused text it cannot store: a NUL, a lone surrogate. Inputs are
    checked for it (shared/text.py); this is what reaches the database from anywhere else."""
    for error in _driver_errors(exc):
        if isinstance(
            error, asyncpg.exceptions.CharacterNotInRepertoireError | asyncpg.exceptions.UntranslatableCharacterError
        ):
            return True
        if isinstance(error, asyncpg.exceptions.InvalidTextRepresentationError) and "surrogate" in str(error.detail):
            return True
        if isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError) and isinstance(
            error.__cause__, UnicodeEncodeError
        ):
            return True
    return False


def _mark_outage_as_disconnect(context: ExceptionContext) -> None:
    """An outage error invalidates its connection at once (and the pool's older ones): SQLAlchemy itself knows a
    disconnect only by a connection already closed, and would otherwise hand back one left mid-operation."""
    if not context.is_disconnect and is_outage(context.original_exception):
        context.is_disconnect = True


class DatabaseUnreachable(Exception):
    """The database did not answer within the time allowed at start."""


async def wait_for_database(url: str, seconds: float, *, logger: Any = None) -> None:
    """Return once the database answers; until then try again every second or so, saying so each time (to
    `logger`, by default this module's), for `seconds` at most (then DatabaseUnreachable). An error that waiting
    cannot mend (a wrong password, no such database) is raised at once."""
    say = logger or log
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        attempt += 1
        started = time.monotonic()
        try:
            connection = await asyncpg.connect(libpq_url(url), timeout=max(1.0, min(5.0, deadline - started)))
        except Exception as exc:
            if not is_outage(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnreachable(
                    "the database at {host}:{port} did not answer within {seconds:g} s ({error})".format(
                        **where(url), seconds=seconds, error=type(exc).__name__
                    )
                ) from None
            say.warning(
                "database.waiting",
                **where(url),
                attempt=attempt,
                seconds_left=round(left, 1),
                error=type(exc).__name__,
            )
            await asyncio.sleep(min(1.0, left))
            continue
        await connection.close()
        if attempt > 1:
            say.info("database.reachable", **where(url), attempt=attempt)
        return


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10) -> Database:
        engine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            # a database error in a log line must not carry the values (phones, addresses) it was about
            hide_parameters=True,
            connect_args={"timeout": CONNECT_SECONDS},
        )
        event.listen(engine.sync_engine, "checkout", _refuse_closed)
        event.listen(engine.sync_engine, "handle_error", _mark_outage_as_disconnect)
        return cls(url, engine, async_sessionmaker(engine, expire_on_commit=False))

    async def warm(self) -> None:
        """Open the pool's connections now: a first burst of CAD events should not wait on connection set-up."""
        size = self.engine.pool.size()  # type: ignore[attr-defined]  # QueuePool, as connect() makes it
        async with AsyncExitStack() as stack:  # held together, so that each is a connection of its own
            await asyncio.gather(*(stack.enter_async_context(self.engine.connect()) for _ in range(size)))

    async def close(self) -> None:
        await self.engine.dispose()

    async def schema_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()


class Sql:
    """A statement for a hot path, run by asyncpg itself rather than through SQLAlchemy (a third of intake's CPU
    went there). Written with named parameters; compiled once to asyncpg's positional ones."""

    def __init__(self, statement: str) -> None:
        compiled = text(statement).compile(dialect=postgresql_asyncpg.dialect())  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
        self.sql = compiled.string
        self.names = compiled.positiontup or []

    def _args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetchrow(self, conn: asyncpg.Connection, params: dict[str, Any]) -> asyncpg.Record | None:
        return await conn.fetchrow(self.sql, *self._args(params))

    async def execute(self, conn: asyncpg.Connection, params: dict[str, Any]) -> None:
        await conn.execute(self.sql, *self._args(params))


async def _json_codecs(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


ACQUIRE_SECONDS = 10.0  # how long a request waits for a free driver connection before it is told to come back


async def driver_pool(url: str, size: int) -> asyncpg.Pool:
    """A pool of plain asyncpg connections for the statements of a hot path (see Sql), opened at once. asyncpg
    replaces a connection the server closed when it is next taken. Its floor is 0, so that while the database is
    away nothing reconnects in the background (asyncpg logs a traceback for each try); connections are opened
    here instead, and kept (no idle timeout)."""
    pool = await asyncpg.create_pool(
        libpq_url(url),
        min_size=0,
        max_size=size,
        max_inactive_connection_lifetime=0,
        init=_json_codecs,
        timeout=CONNECT_SECONDS,
    )
    try:
        async with AsyncExitStack() as stack:  # held together, so that each is a connection of its own
            await asyncio.gather(*(stack.enter_async_context(pool.acquire()) for _ in range(size)))
    except BaseException:
        pool.terminate()
        raise
    return pool


@asynccontextmanager
async def driver_connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool for one unit of work. One that fails with an outage, or whose work is cancelled
    mid-statement, is terminated rather than given back: the next request gets a fresh one, never one the server
    closed or one still in the middle of an operation ("cannot switch to state ..."). An outage also expires the
    pool's other connections (each is replaced when next taken): they are likely gone with this one, unseen."""
    async with pool.acquire(timeout=ACQUIRE_SECONDS) as conn:
        try:
            yield conn
        except BaseException as exc:
            outage = is_outage(exc)
            if outage or isinstance(exc, asyncio.CancelledError):
                conn.terminate()
            if outage:
                await pool.expire_connections()
            raise


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a failover, an idle timeout) is replaced before it
    is used: the pool takes another. Cheaper than a ping per checkout (a round trip on every CAD event), and it
    covers the common case; a connection that died silently fails its first statement and is discarded (see
    _mark_outage_as_disconnect). One still in a transaction was left mid-way by a failure: replaced too."""
    driver = dbapi_connection.driver_connection
    if driver.is_closed() or driver.is_in_transaction():
        raise sa_exc.DisconnectionError("closed by the server, or left mid-transaction")


# Alembic (and, to know the head, every migration script with alembic's operations for every dialect) is ~19 MB
# in a process: it is imported only by what migrates, never by a process that only serves.


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


# The scripts are this code's own and do not change under it: read once per process, not by every app built in
# it (a test suite builds hundreds).
@cache
def head_revision() -> str:
    """The newest migration: the one no other revises. Read from each script's `revision` and `down_revision`
    without running it (tests/test_schema_head.py holds it to alembic's own answer)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        names = assigned(script)
        revisions.add(names["revision"])
        down = names.get("down_revision")
        revised.update([down] if isinstance(down, str) else down or ())
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {', '.join(sorted(heads)) or 'none'}")
    return heads.pop()


def assigned(script: Path) -> dict[str, Any]:
    """The literal values a migration script gives `revision` and `down_revision`."""
    found: dict[str, Any] = {}
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name in ("revision", "down_revision"):
            found[name] = ast.literal_eval(value)
    return found


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this code's migrations know: a schema at one it does not know is newer than it."""
    return frozenset(assigned(script)["revision"] for script in (MIGRATIONS / "versions").glob("*.py"))


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (blocking; run it before serving)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response leaves (see SessionDep)."""
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        yield session
        await session.commit()


# scope="function" runs the commit before the response is sent: a 2xx means the work is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
