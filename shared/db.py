"""The database: declarative base, engine and sessions, migrations and their readiness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import Depends, Request
from sqlalchemy import MetaData, event, make_url, text
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

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
        )
        event.listen(engine.sync_engine, "checkout", _refuse_closed)
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


async def driver_pool(url: str, size: int) -> asyncpg.Pool:
    """A pool of plain asyncpg connections for the statements of a hot path (see Sql), opened at once. asyncpg
    replaces a connection the server closed when it is next taken."""
    return await asyncpg.create_pool(libpq_url(url), min_size=size, max_size=size, init=_json_codecs)


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a failover, an idle timeout) is replaced before it
    is used: the pool takes another. Cheaper than a ping per checkout (a round trip on every CAD event), and it
    covers the common case; a connection that died silently fails its first statement and is discarded."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("closed by the server")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (blocking; run it before serving)."""
    command.upgrade(alembic_config(url), "head")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response leaves (see SessionDep)."""
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        yield session
        await session.commit()


# scope="function" runs the commit before the response is sent: a 2xx means the work is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
