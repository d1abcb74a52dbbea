"""Retention: personal data removed once an incident has been over for the configured period. What stays is what
reports need and holds no person: the timeline (stages and times), the tier and its reasons, screens' instruments
and results. An address's premise key goes too, so a purged call no longer counts towards that address.
Intake runs it every hour; `callout purge` runs it at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import Assessment
from shared.clock import Clock
from shared.db import Database
from shared.tables import Incident

ENDED = ("closed", "cancelled")
EVERY = timedelta(hours=1)
log = structlog.get_logger()


async def purge(session: AsyncSession, *, now: datetime, keep_for: timedelta) -> int:
    """Purge the incidents over for longer than `keep_for`; returns how many."""
    due = list(
        await session.scalars(
            select(Incident.id)
            .where(Incident.status.in_(ENDED), Incident.updated_at < now - keep_for, Incident.purged_at.is_(None))
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    await session.execute(
        update(Incident).where(Incident.id.in_(due)).values(details={}, premise_key=None, premise=None, purged_at=now)
    )
    await session.execute(
        update(Assessment)
        .where(Assessment.incident_id.in_(due))
        .values(answers={}, reasons=[], override_name=None, override_reason=None)
    )
    return len(due)


async def purge_forever(database: Database, clock: Clock, keep_for: timedelta) -> None:
    """Intake's hourly purge; several processes share it (rows are taken with SKIP LOCKED)."""
    while True:
        try:
            async with database.sessionmaker.begin() as session:
                if purged := await purge(session, now=clock.now(), keep_for=keep_for):
                    log.info("retention.purged", incidents=purged)
        except (OSError, SQLAlchemyError) as exc:
            log.error("retention.failed", error=type(exc).__name__)
        await asyncio.sleep(EVERY.total_seconds())
