"""`callout cad send`: for CAD integrators testing their setup. Light: it loads no server code."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from typing import BinaryIO

import click
import httpx

from callout.config import load_settings, local_url
from shared import webhooks


@click.group()
def cad() -> None:
    """For CAD integrators: test your setup."""


@cad.command("send")
@click.option("--agency", "slug", required=True)
@click.option("--secret", required=True, envvar="CALLOUT_CAD_SECRET", help="The agency's whsec_ secret.")
@click.option("--url", default=None, help="Callout's base URL (default: this machine, CALLOUT_PORT).")
@click.option("--id", "message_id", default=None, help="webhook-id (default: a new one; reuse it to test idempotency).")
@click.argument("file", type=click.File("rb"))
def cad_send(slug: str, secret: str, url: str | None, message_id: str | None, file: BinaryIO) -> None:
    """Sign FILE.json with Standard Webhooks and post it as an event."""
    body = file.read()
    base = url or local_url(load_settings())
    headers = webhooks.signed_headers(secret, message_id or f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body)
    try:
        response = httpx.post(f"{base}/v1/cad/{slug}/events", content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {base}: {exc}") from None
    click.echo(f"{response.status_code} {response.reason_phrase}")
    click.echo(json.dumps(response.json(), indent=2))
    if response.is_error:
        sys.exit(1)
