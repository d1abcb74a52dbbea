"""The directory service, alone or as part of the whole."""

from services.directory.pages import router as pages_router
from services.directory.routes import cover_router, feed_router, reader_router, router
from shared.app import Service


def service() -> Service:
    return Service(
        "directory",
        routers=[router, reader_router, feed_router, cover_router, pages_router],
        tags=[{"name": "directory", "description": "Agencies, advocates, on call"}],
    )
