"""The directory service, alone or as part of the whole."""

from services.directory.routes import router
from shared.app import Service


def service() -> Service:
    return Service(
        "directory", routers=[router], tags=[{"name": "directory", "description": "Agencies, advocates, on call"}]
    )
