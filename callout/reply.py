"""`callout reply PHONE TEXT`: text Callout as an advocate would, to try replies on the console."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

import click
import httpx
from twilio.request_validator import RequestValidator

from callout import console_key
from callout.config import load_settings, local_url


@click.command()
@click.argument("phone")
@click.argument("text")
@click.option("--url", default=None, help="Callout's base URL (default: this machine, CALLOUT_PORT).")
def reply(phone: str, text: str, url: str | None) -> None:
    """Post TEXT from PHONE as Twilio posts an inbound text, signed; print Callout's answer.

    Example: callout reply +12025550102 "1"  (accept), "2" (decline), "ONSCENE", "1 K7Q2" (with a code).
    """
    settings = load_settings()
    # With Twilio, its auth token; without, the key the `callout serve` on this machine made at its start.
    token = settings.twilio_auth_token or (console_key.read(settings) if console_key.needed(settings) else None)
    if token is None:
        raise click.ClickException(
            f"nothing to sign with: no CALLOUT_TWILIO_AUTH_TOKEN, and no {console_key.path(settings)} "
            "(it is made by `callout serve` on this machine, with the same CALLOUT_DATA_DIR, at its start)"
        )
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "From": phone,
        "To": settings.twilio_from or "+10000000000",
        "Body": text,
        "NumMedia": "0",
    }
    # Twilio signs the URL it was given (the public one), whatever address the request travels to.
    signature = RequestValidator(token).compute_signature(settings.public_link("/v1/twilio/sms"), params)
    target = f"{url or local_url(settings)}/v1/twilio/sms"
    try:
        response = httpx.post(target, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {target}: {exc}") from None
    if response.is_error:
        raise click.ClickException(f"{response.status_code}: {response.text}")
    answer = ET.fromstring(response.text).findtext("Message")  # noqa: S314 - our own server's TwiML
    click.echo(answer or "(no answer)")
