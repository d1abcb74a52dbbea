"""Alembic environment: runs the migrations over asyncpg, one migrator at a time."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import MIGRATION_LOCK_ID


def run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    connection.commit()  # the lock is the session's; the migrations bring their own transactions
    try:
        # Autogenerate (`callout db revision`) hands in the models' metadata; shared/ imports no service itself.
        context.configure(
            connection=connection,
            transaction_per_migration=True,
            target_metadata=context.config.attributes.get("target_metadata"),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()


async def main() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(run)
    await engine.dispose()


asyncio.run(main())
