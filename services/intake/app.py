"""The intake service, alone or as part of the whole."""

from services.intake.routes import router
from shared.app import Service


def service() -> Service:
    return Service("intake", routers=[router], tags=[{"name": "intake", "description": "CAD events and timelines"}])
