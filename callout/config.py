"""Settings as the command line reads them."""

from __future__ import annotations

import click
from pydantic import ValidationError

from services.alerts.settings import AlertsSettings
from shared.settings import Settings


def load_settings() -> AlertsSettings:
    """Every service's settings (the alerts' are the widest); a bad environment is a clear error, not a trace."""
    try:
        return AlertsSettings()
    except ValidationError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def local_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.port}"
