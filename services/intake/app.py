"""The intake service, alone or as part of the whole."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.intake.routes import AgencyCache, router
from shared.app import Service


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.agencies = AgencyCache()
    yield


def service() -> Service:
    return Service(
        "intake",
        routers=[router],
        lifespan=lifespan,
        tags=[{"name": "intake", "description": "CAD events and timelines"}],
    )
