"""The alerts service's settings: Twilio, the directory it asks, and its timings."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from shared.settings import Environment, Settings

CONSOLE_SIGNING_TOKEN = "console-development-only"  # noqa: S105 - a stand-in, refused in production


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

    @property
    def twilio_signing_token(self) -> str | None:
        """What Twilio's requests are signed with. Without Twilio, in development, `callout reply` signs with a
        fixed stand-in so that replies can be tried on the console; in production, nothing is accepted."""
        if self.twilio_auth_token:
            return self.twilio_auth_token
        return CONSOLE_SIGNING_TOKEN if self.environment is Environment.development else None

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from)

    @property
    def directory_base(self) -> str:
        return str(self.directory_url or f"http://127.0.0.1:{self.port}").rstrip("/")
