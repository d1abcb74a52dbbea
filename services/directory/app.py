"""The directory service, alone or as part of the whole."""

from services.directory.routes import feed_router, reader_router, router
from shared.app import Service


def service() -> Service:
    return Service(
        "directory",
        routers=[router, reader_router, feed_router],
        tags=[{"name": "directory", "description": "Agencies, advocates, on call"}],
    )
