"""Configuration from the environment (prefix CALLOUT_), one class per service on this base."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from pathlib import Path

from pydantic import AnyHttpUrl, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - refused outside development, see below
DEVELOPMENT_DATA_KEY = "dev-data-key-not-for-real-addresses"  # refused outside development, see below
# What deploy/k8s/base's Secret holds until an operator makes the real one: refused in production, as above.
PLACEHOLDER = "replace-me"


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLOUT_", extra="ignore")

    environment: Environment = Environment.development
    # None means: start the embedded PostgreSQL whose data lives in `data_dir`.
    database_url: str | None = None
    # Connections each process keeps open. Enough for a burst of CAD events and the worker's concurrent sends:
    # a connection opened mid-burst costs milliseconds of CPU that the burst needs.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    # How long a process starting waits for the database (restarting, or coming up beside it) before giving up.
    database_wait_seconds: float = Field(default=60, ge=0, le=3600)
    data_dir: Path = Path(".callout")
    port: int = Field(default=8000, ge=1, le=65535)
    admin_token: str = DEVELOPMENT_ADMIN_TOKEN
    # The secret that keys what Callout keeps in place of personal data (an address's premise key). Losing it
    # loses the link between old incidents and premise flags; keep it with the database backups' secrets.
    data_key: str = DEVELOPMENT_DATA_KEY
    # Personal data of an incident is removed this long after it closed; its timings stay for reports.
    retention_days: int = Field(default=365, ge=1, le=3650)
    # Keys being rotated out (comma-separated): still opened with, never sealed with. See shared/crypto.py.
    data_keys_previous: str = ""
    # What the worker shows the directory to ask who is on call (and nothing else). None: one derived from the admin
    # token, so that a deployment sharing that token needs nothing more, and the admin token never leaves a process.
    directory_token: str | None = None
    # Where Twilio and advocates reach Callout; default: this machine on CALLOUT_PORT.
    public_url: AnyHttpUrl | None = None
    log_json: bool | None = None  # None: JSON in production, console in development
    # What Prometheus presents to read /metrics (`Authorization: Bearer …`). Unset: /metrics is open in development
    # (which listens on this machine only) and refused in production.
    metrics_token: str | None = Field(default=None, min_length=24)
    # Where failed attempts are counted (shared/ratelimit.py): this process's memory, or a shared store such as
    # async+redis://host:6379 so that every process counts together.
    rate_limit_storage: str = "async+memory://"
    # A dashboard session ends after this long unused, and this long after its sign-in whatever happens.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment is not Environment.production:
            return self
        public = {DEVELOPMENT_ADMIN_TOKEN, DEVELOPMENT_DATA_KEY, PLACEHOLDER}  # every one written in this repository
        if self.admin_token in public or len(self.admin_token) < 24:
            raise ValueError("CALLOUT_ADMIN_TOKEN must be set to a secret of 24+ characters in production")
        if self.data_key in public or len(self.data_key) < 32:
            raise ValueError("CALLOUT_DATA_KEY must be set to a secret of 32+ characters in production")
        if public & set(self.data_keys[1:]):
            raise ValueError(
                "CALLOUT_DATA_KEYS_PREVIOUS holds the public development key: data sealed under it is anyone's to "
                "read; rekey it away in development (callout data rekey) before production"
            )
        if self.directory_token and (
            self.directory_token in public or len(self.directory_token) < 24 or self.directory_token == self.admin_token
        ):
            raise ValueError(
                "CALLOUT_DIRECTORY_TOKEN must be a secret of 24+ characters of its own (not the admin token) in "
                "production, or unset"
            )
        if self.database_url is None:
            raise ValueError("CALLOUT_DATABASE_URL is required in production")
        return self

    @property
    def data_keys(self) -> list[str]:
        """The sealing keys, the current first."""
        return [self.data_key, *(k.strip() for k in self.data_keys_previous.split(",") if k.strip())]

    @property
    def premise_secret(self) -> str:
        """What premise keys are made with: the oldest key held, so that a rotation keeps an address's history
        for as long as the old key stays in CALLOUT_DATA_KEYS_PREVIOUS."""
        return self.data_keys[-1]

    @property
    def directory_credential(self) -> str:
        """The bearer token the worker asks the directory with, which the directory's on-call and contact-watch
        routes alone accept besides admins' and supervisors' tokens."""
        if self.directory_token:
            return self.directory_token
        derived = hmac.new(self.admin_token.encode(), b"callout directory reader v1", hashlib.sha256)
        return "co_dir_" + derived.hexdigest()

    @property
    def json_logs(self) -> bool:
        return self.environment is Environment.production if self.log_json is None else self.log_json

    def public_link(self, path: str) -> str:
        base = str(self.public_url) if self.public_url else f"http://localhost:{self.port}"
        return base.rstrip("/") + path
