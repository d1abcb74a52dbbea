"""Personal data at rest: `callout data rekey` seals it again under the current CALLOUT_DATA_KEY
(shared/crypto.py); `callout purge` removes it once its retention period is over (services/intake/retention.py)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy import Table, Text, select, type_coerce, update

from callout.compose import Part  # noqa: F401 - importing the services registers every model on Base.metadata
from callout.config import load_settings
from callout.server import database_url, migrate_when_reachable, stderr_log
from services.intake import retention
from shared import audit as audit_trail
from shared import crypto
from shared.db import Base, Database


def sealed_columns() -> list[tuple[Table, str]]:
    return [
        (table, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, crypto.Sealed)
    ]


async def rekey(url: str, batch: int = 500) -> int:
    """Reseal every sealed value under the current key, a batch per transaction. Returns how many."""
    sealer = crypto.sealer()
    database = Database.connect(url, pool_size=1)
    done = 0
    try:
        for table, name in sealed_columns():
            column, key = table.c[name], table.primary_key.columns.values()[0]
            last = None
            while True:
                async with database.engine.begin() as conn:
                    # Tokens as text both ways: the column's own type would open them on the way out and seal
                    # them again on the way in.
                    raw = type_coerce(column, Text())
                    query = select(key, raw).where(column.is_not(None)).order_by(key).limit(batch)
                    rows = (await conn.execute(query if last is None else query.where(key > last))).all()
                    for row_key, token in rows:
                        await conn.execute(
                            update(table)
                            .where(key == row_key)
                            .values({name: type_coerce(sealer.reseal(token), Text())})
                        )
                if not rows:
                    break
                last, done = rows[-1][0], done + len(rows)
    finally:
        await database.close()
    return done


@click.group()
def data() -> None:
    """Personal data at rest."""


@data.command("rekey")
def rekey_command() -> None:
    """Seal all personal data again under CALLOUT_DATA_KEY; then the keys in CALLOUT_DATA_KEYS_PREVIOUS can go."""
    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())
    crypto.configure(settings.data_keys)
    count = asyncio.run(rekey(url))
    click.echo(f"resealed {count} values under the current key")


@click.command("purge")
def purge_command() -> None:
    """Remove the personal data of incidents closed longer ago than CALLOUT_RETENTION_DAYS (intake also does
    this every hour); their timings stay for reports."""
    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())
    crypto.configure(settings.data_keys)

    async def run() -> int:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker.begin() as session:
                now = datetime.now(UTC)
                purged = await retention.purge(session, now=now, keep_for=timedelta(days=settings.retention_days))
                await audit_trail.record(
                    session, actor="cli", action="change", subject="purge", at=now, incidents=purged
                )
                return purged
        finally:
            await database.close()

    click.echo(f"purged the personal data of {asyncio.run(run())} incident(s)")


@click.group()
def audit() -> None:
    """The audit trail of views of personal data and admin changes."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the hash chain: any record altered or removed (but the newest) is named; exit 1 if any."""
    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())

    async def run() -> tuple[int, list[str], str | None]:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker() as session:
                count, problems = await audit_trail.verify(session)
                head = await session.scalar(
                    select(audit_trail.AuditRecord.hash).order_by(audit_trail.AuditRecord.seq.desc())
                )
                return count, problems, head
        finally:
            await database.close()

    count, problems, head = asyncio.run(run())
    for problem in problems:
        click.echo(f"BROKEN: {problem}", err=True)
    click.echo(f"{count} records, {'chain intact' if not problems else f'{len(problems)} break(s)'}; head {head}")
    if problems:
        sys.exit(1)
