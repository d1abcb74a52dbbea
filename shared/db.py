"""The database: declarative base, engine and sessions, migrations and their readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import Depends, Request
from sqlalchemy import MetaData, make_url, text
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
        # hide_parameters: a database error in a log line must not carry the values (phones, addresses) it was about.
        engine = create_async_engine(async_url(url), pool_size=pool_size, pool_pre_ping=True, hide_parameters=True)
        return cls(url, engine, async_sessionmaker(engine, expire_on_commit=False))

    async def close(self) -> None:
        await self.engine.dispose()

    async def schema_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()


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
