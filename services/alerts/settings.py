"""The alerts service's settings: Twilio, the directory it asks, and its timings."""

from __future__ import annotations

import re

from pydantic import AnyHttpUrl, Field, PrivateAttr, model_validator

from shared.settings import PLACEHOLDER, Environment, Settings

ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")


class AlertsSettings(Settings):
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_api_base: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    # Twilio answers a create in well under a second: one that hangs longer is retried (and looked up) sooner.
    twilio_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # An alert that could not be delivered within this time is stale: Twilio drops it (ValidityPeriod).
    sms_validity_seconds: int = Field(default=900, ge=1, le=36_000)
    # Where the directory service answers; None: this process's own port (one-process mode).
    directory_url: AnyHttpUrl | None = None
    directory_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # How long an answer of the directory (who is on call, the policy) is used before asking again; 0: always ask.
    roster_fresh_seconds: float = Field(default=10.0, ge=0, le=300)
    link_ttl_hours: int = Field(default=24, ge=1, le=24 * 14)
    # A masked call to the survivor that lasted this long counts as contact; a shorter one as an attempt.
    contact_min_seconds: int = Field(default=30, ge=1, le=3600)
    # How many rows a worker takes up at once (and so how many texts or calls it has in flight).
    worker_concurrency: int = Field(default=16, ge=1, le=256)
    # The worker wakes on NOTIFY; this bounds how long it can miss one (a dropped connection, a timer).
    worker_poll_seconds: float = Field(default=2.0, gt=0, le=60)
    # How long a worker may take over a provider or directory call before another takes the work up, even while
    # it lives (a worker that dies loses its work within worker_sweep_seconds: services/alerts/leases.py).
    worker_lease_seconds: float = Field(default=90.0, gt=0, le=600)
    # How often each worker looks for work whose worker died.
    worker_sweep_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_audit_seconds: float = Field(default=10.0, gt=0, le=600)
    # How often the watch asks the directory who is on call soon with a phone that may fail them (a phone found
    # unreachable wakes it at once).
    contact_watch_seconds: float = Field(default=300.0, gt=0, le=3600)

    # Without Twilio, in development: the key `callout reply` on this machine signs with, made afresh by each
    # `callout serve` (callout/console_key.py). Never read from the environment: no fixed key is ever accepted.
    _console_signing_key: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _refuse_production_without_twilio(self) -> AlertsSettings:
        if self.environment is not Environment.production:
            return self
        if not self.twilio_configured:
            raise ValueError(
                "CALLOUT_TWILIO_ACCOUNT_SID, CALLOUT_TWILIO_AUTH_TOKEN and CALLOUT_TWILIO_FROM are required in "
                "production: without them no text or call would reach anyone"
            )
        if not ACCOUNT_SID.fullmatch(self.twilio_account_sid or "") or self.twilio_auth_token == PLACEHOLDER:
            raise ValueError("CALLOUT_TWILIO_ACCOUNT_SID (AC...) and CALLOUT_TWILIO_AUTH_TOKEN must be Twilio's own")
        return self

    def with_console_signing_key(self, key: str) -> AlertsSettings:
        """These settings, accepting Twilio's requests signed with `key` (development without Twilio only)."""
        if self.twilio_auth_token or self.environment is not Environment.development:
            raise ValueError("a console signing key is for development without Twilio only")
        copy = self.model_copy()
        copy._console_signing_key = key
        return copy

    @property
    def twilio_signing_token(self) -> str | None:
        """What Twilio's requests are signed with: Twilio's auth token; without Twilio, in development, this
        start's console key, if it has one. None: nothing is accepted."""
        return self.twilio_auth_token or self._console_signing_key

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from)

    @property
    def directory_base(self) -> str:
        return str(self.directory_url or f"http://127.0.0.1:{self.port}").rstrip("/")
