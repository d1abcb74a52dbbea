"""The intake service, alone or as part of the whole."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from services.intake import models  # noqa: F401 - the inbox table, which only SQL statements name
from services.intake.retention import purge_forever
from services.intake.routes import AgencyCache, router
from shared.app import Service
from shared.db import driver_pool
from shared.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.agencies = AgencyCache()
    settings: Settings = app.state.settings
    app.state.intake_pool = await driver_pool(app.state.db.url, max(1, settings.database_pool_size // 2))
    purging = asyncio.create_task(purge_forever(app.state.db, app.state.clock, timedelta(days=settings.retention_days)))
    try:
        yield
    finally:
        purging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purging
        await app.state.intake_pool.close()


def service() -> Service:
    return Service(
        "intake",
        routers=[router],
        lifespan=lifespan,
        tags=[{"name": "intake", "description": "CAD events and timelines"}],
    )
