"""Without Twilio, in development, Twilio's routes accept what `callout reply` signs on this machine, and nothing
else: each `callout serve` makes a random key, keeps it in CALLOUT_DATA_DIR readable by this user alone, and
`callout reply` signs with it. No fixed key is ever accepted, so a request forged from elsewhere is refused."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from services.alerts.settings import AlertsSettings
from shared.settings import Environment

FILE_NAME = "console-signing-key"


def path(settings: AlertsSettings) -> Path:
    return settings.data_dir / FILE_NAME


def needed(settings: AlertsSettings) -> bool:
    """Whether Twilio's requests are checked against a console key: development without Twilio's auth token."""
    return settings.environment is Environment.development and not settings.twilio_auth_token


def create(settings: AlertsSettings) -> str:
    """A new key for this start, written where only this user can read it (replacing the last start's)."""
    key = secrets.token_urlsafe(32)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = path(settings).with_suffix(".new")
    # Created anew, 0600 from the start (never readable by others, not even for an instant), then put in place whole.
    written.unlink(missing_ok=True)
    with os.fdopen(os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(key)
    written.replace(path(settings))
    return key


def read(settings: AlertsSettings) -> str | None:
    """The key of the running `callout serve` that shares this CALLOUT_DATA_DIR, if there is one."""
    try:
        return path(settings).read_text().strip() or None
    except FileNotFoundError:
        return None
