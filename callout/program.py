"""`callout directory import FILE` / `export`: a whole program as one YAML file (services/directory/program.py)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import yaml

from callout.config import load_settings
from callout.server import database_url, migrate_when_reachable, stderr_log
from services.directory import program
from shared import audit
from shared.db import Database
from shared.egress import Egress, egress_for
from shared.problems import Problem


@click.group()
def directory() -> None:
    """The directory as one declarative YAML file: import it, export it."""


@directory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Make the directory say what FILE says, for the agencies it names. A bad file changes nothing."""
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
        spec = program.read(document)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file} is not YAML: {exc}") from None
    except program.ProgramInvalid as exc:
        click.echo(f"{file} was not imported; nothing changed. {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())
    try:
        changed, secrets = asyncio.run(apply(url, spec, egress_for(settings)))
    except Problem as exc:  # found only against the database or the network (a notify URL refused)
        raise click.ClickException(f"{file} was not imported; nothing changed: {exc}") from None
    click.echo(f"imported {', '.join(a.slug for a in spec.agencies)}: {'changed' if changed else 'no changes'}")
    for slug, secret in secrets.items():
        click.echo(f"webhook secret for the new agency {slug} (shown once): {secret}")


async def apply(url: str, spec: program.Program, egress: Egress) -> tuple[bool, dict[str, str]]:
    database = Database.connect(url, pool_size=1)
    now = datetime.now(UTC)
    try:
        async with database.sessionmaker.begin() as session:
            slugs = [a.slug for a in spec.agencies]
            before = await program.export(session, now=now, slugs=slugs)
            secrets = await program.apply(session, spec, now=now, egress=egress)
            after = await program.export(session, now=now, slugs=slugs)
            subject = f"directory import {', '.join(slugs)}"
            await audit.record(session, actor="cli", action="change", subject=subject, at=now, changed=before != after)
            return before != after, secrets
    finally:
        await database.close()


@directory.command("export")
@click.option("--agency", "agencies", multiple=True, help="Only these agencies (slugs); default: all.")
def export_command(agencies: tuple[str, ...]) -> None:
    """Print the directory as a program file (YAML)."""

    settings = load_settings()
    url = database_url(settings)
    migrate_when_reachable(url, settings, logger=stderr_log())

    async def export() -> program.Program:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.sessionmaker() as session:
                return await program.export(session, now=datetime.now(UTC), slugs=list(agencies) or None)
        finally:
            await database.close()

    document = program.as_document(asyncio.run(export()))
    click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)
