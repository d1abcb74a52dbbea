"""The reports service, alone or as part of the whole."""

from services.reports import dashboard
from services.reports.routes import router
from shared.app import Service


def service() -> Service:
    return Service(
        "reports",
        routers=[router, dashboard.router],
        tags=[{"name": "reports", "description": "Response times and outcomes, for supervisors and grant reports"}],
    )
