"""Commands that run or administer Callout itself: serve, migrate, agencies, tokens (create, list, revoke)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import click
import structlog
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select

from callout import console_key, embedded
from callout.compose import Part, build  # importing the services registers every model on Base.metadata
from callout.config import load_settings
from services.alerts.settings import AlertsSettings
from services.directory import service as directory
from services.directory.schemas import AgencyIn
from shared import audit, crypto
from shared.auth import ApiToken, Role, issue_token
from shared.db import Base, Database, DatabaseUnreachable, alembic_config, migrate, wait_for_database, where
from shared.egress import egress_for
from shared.logging import configure_logging
from shared.sessions import revoke_token
from shared.settings import DEVELOPMENT_ADMIN_TOKEN, Environment, Settings
from shared.tables import Agency


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded.start(settings.data_dir)


def stderr_log() -> Any:
    """For a command that prints its result (a token, a secret) on stdout: its log lines go to stderr, without
    configuring logging for the whole process."""
    return structlog.wrap_logger(structlog.PrintLogger(sys.stderr))


def migrate_when_reachable(url: str, settings: Settings, *, logger: Any = None) -> None:
    """Wait for the database (CALLOUT_DATABASE_WAIT_SECONDS at most, a log line per try), then migrate, and open
    what is sealed in it (agencies' secrets, personal data) with this process's keys. A database that never
    answers, or refuses us, is a one-line error and exit status 1, not a traceback."""
    try:
        asyncio.run(wait_for_database(url, settings.database_wait_seconds, logger=logger))
    except DatabaseUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise click.ClickException(
            "the database at {host}:{port} refused Callout: {error}".format(**where(url), error=exc)
        ) from None
    migrate(url)
    crypto.configure(settings.data_keys)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_public_development(settings: Settings, host: str) -> None:
    """Development's admin token is written in this repository: on an interface others reach, it would let
    anyone in. Listening there (an explicit --host) needs a token of one's own."""
    public = settings.environment is Environment.development and settings.admin_token == DEVELOPMENT_ADMIN_TOKEN
    if public and not is_loopback(host):
        raise click.ClickException(
            f"--host {host} in development would accept the public development admin token from anyone who can "
            "reach this machine: set CALLOUT_ADMIN_TOKEN (or listen on 127.0.0.1)"
        )


# The parts that answer Twilio's requests, and so check their signatures.
ANSWERS_TWILIO = {Part.all, Part.alerts}


def with_console_key(settings: AlertsSettings, part: Part, *, new: bool) -> AlertsSettings:
    """Without Twilio, in development: Twilio's routes accept only what `callout reply` on this machine signs,
    with a key made afresh for this start (`new`) or, in a process of `serve --processes`, its parent's."""
    if part not in ANSWERS_TWILIO or not console_key.needed(settings):
        return settings
    key = console_key.create(settings) if new else console_key.read(settings)
    return settings.with_console_signing_key(key) if key else settings


@click.command()
@click.option(
    "--service",
    "part",
    type=click.Choice([p.value for p in Part]),
    default=Part.all.value,
    help="Run one service alone (split deployments); default: everything in one process.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on: this machine alone unless told (0.0.0.0 in containers).",
)
@click.option("--port", type=int, default=None, help="Port (default CALLOUT_PORT, 8000).")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes sharing the port, each with its own worker (they coordinate in the database).",
)
def serve(part: str, host: str, port: int | None, processes: int) -> None:
    """Migrate the database, then serve."""
    settings = load_settings()
    refuse_public_development(settings, host)
    configure_logging(json=settings.json_logs)
    url = database_url(settings)
    migrate_when_reachable(url, settings)
    settings = with_console_key(settings, Part(part), new=True)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; a normal exit instead lets the embedded
    # PostgreSQL stop with us (it stops at exit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A CAD adapter keeps its connection open between events; closing it after 5 s idle (uvicorn's default)
    # races the adapter's next request on the same connection.
    options: dict[str, Any] = {
        "host": host,
        "port": port or settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_keep_alive": 75,
        "ws": "none",  # nothing here speaks WebSocket: its protocol would be ~3 MB in each process
    }
    if processes == 1:
        uvicorn.run(build(Part(part), settings, url), **options)
        return
    # Each process builds its own app from the environment (uvicorn starts them afresh).
    os.environ.update({"CALLOUT_DATABASE_URL": url, SERVE_PART: part})
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=processes, **options)


SERVE_PART = "CALLOUT_SERVE_PART"


def app_from_environment() -> FastAPI:
    """The app of one of several `serve --processes` processes."""
    settings = load_settings()
    configure_logging(json=settings.json_logs)
    assert settings.database_url is not None  # set by the parent
    part = Part(os.environ[SERVE_PART])
    return build(part, with_console_key(settings, part, new=False), settings.database_url)


@click.command("migrate")
def migrate_command() -> None:
    """Bring the database schema to the newest revision."""
    settings = load_settings()
    migrate_when_reachable(database_url(settings), settings, logger=stderr_log())
    click.echo("schema is current")


@click.group()
def db() -> None:
    """For developers: the schema's migrations."""


@db.command()
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    from alembic import command as alembic_command  # only here: a serving process does without alembic (shared/db.py)

    config = alembic_config(database_url(load_settings()))
    config.attributes["target_metadata"] = Base.metadata
    alembic_command.revision(config, message=message, autogenerate=True)


@click.group()
def agency() -> None:
    """Agencies: the dispatch centres that post events."""


@agency.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--hotline", required=True, help="The program's 24/7 hotline, E.164 (+15551234567).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of its schedules.")
def agency_create(slug: str, name: str, hotline: str, timezone: str) -> None:
    """Create an agency and print its webhook secret, once."""
    try:
        spec = AgencyIn(name=name, hotline=hotline, timezone=timezone)
    except ValidationError as exc:
        raise click.ClickException("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from None

    async def create(url: str) -> str:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker.begin() as session:
                if await session.scalar(Agency.__table__.select().where(Agency.slug == slug)):
                    raise click.ClickException(f"agency {slug!r} exists already")
                now = datetime.now(UTC)
                _, secret = await directory.put_agency(session, slug, spec, now=now, egress=egress_for(settings))
                await audit.record(session, actor="cli", action="change", subject=f"agency create {slug}", at=now)
                assert secret is not None
                return secret
        finally:
            await database.close()

    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())
    secret = asyncio.run(create(url))
    click.echo(f"Agency {slug} created. Its webhook secret, shown only this once:\n{secret}")
    click.echo(f"CAD posts to {settings.public_link(f'/v1/cad/{slug}/events')}")


@click.group()
def token() -> None:
    """Bearer tokens for supervisors and admins."""


@token.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--agency", "slug", help="The agency a supervisor oversees.")
@click.option("--label", required=True, help="Whose token this is: the audit names them by it.")
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True, help="How long it works.")
def token_create(role: str, slug: str | None, label: str, days: int) -> None:
    """Issue a token and print it, once; only its hash is kept."""
    if (role == Role.supervisor) != (slug is not None):
        raise click.ClickException("a supervisor token needs --agency; an admin token takes none")

    async def create(url: str) -> str:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker.begin() as session:
                agency_id = (await directory.get_agency(session, slug)).id if slug else None
                now = datetime.now(UTC)
                subject = f"token create {role}" + (f" for {slug}" if slug else "")
                await audit.record(session, actor="cli", action="change", subject=subject, at=now, label=label)
                life = timedelta(days=days)
                return await issue_token(session, role=Role(role), label=label, agency_id=agency_id, now=now, life=life)
        finally:
            await database.close()

    click.echo(asyncio.run(create(in_migrated_database())))
    click.echo(f"It works for {days} days; `callout token revoke` ends it sooner.", err=True)


def in_migrated_database() -> str:
    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())
    return url


@token.command("list")
def token_list() -> None:
    """Every issued token: its id (as the audit names it), role, agency, label, and whether it still works."""

    async def listed(url: str) -> list[tuple[ApiToken, str | None]]:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker() as session:
                query = select(ApiToken, Agency.slug).outerjoin(Agency, Agency.id == ApiToken.agency_id)
                return [(token, slug) for token, slug in await session.execute(query.order_by(ApiToken.id))]
        finally:
            await database.close()

    now = datetime.now(UTC)
    rows = [
        (
            str(t.id),
            t.role,
            slug or "(all)",
            f"{t.created_at:%Y-%m-%d}",
            f"{t.expires_at:%Y-%m-%d}",
            f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "expired" if t.refusal(now) else "active",
            t.label,
        )
        for t, slug in asyncio.run(listed(in_migrated_database()))
    ]
    header = ("id", "role", "agency", "created", "expires", "state", "label")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]))


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `callout token list`): it stops working at once, its dashboard sessions
    end."""

    async def revoke(url: str) -> tuple[str, int, bool]:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker.begin() as session:
                now = datetime.now(UTC)
                revoked = await revoke_token(session, token_id, now)
                if revoked is None:
                    raise click.ClickException(f"no token {token_id}")
                token, ended = revoked
                await audit.record(
                    session,
                    actor="cli",
                    action="change",
                    subject=f"token revoke {token_id}",
                    at=now,
                    label=token.label,
                    sessions_ended=ended,
                )
                return token.label, ended, token.revoked_at != now
        finally:
            await database.close()

    label, ended, already = asyncio.run(revoke(in_migrated_database()))
    state = "was already revoked" if already else "revoked"
    click.echo(f"token {token_id} ({label}) {state}; {ended} dashboard session(s) ended")
