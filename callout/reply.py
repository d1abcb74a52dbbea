"""`callout reply PHONE TEXT` and `callout press URL DIGIT`: text Callout, or answer its call, as an advocate would,
to try Callout on the console."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import click
import httpx
from twilio.request_validator import RequestValidator

from callout import console_key
from callout.config import load_settings, local_url
from services.alerts.settings import AlertsSettings


@click.command()
@click.argument("phone")
@click.argument("text")
@click.option("--url", default=None, help="Callout's base URL (default: this machine, CALLOUT_PORT).")
def reply(phone: str, text: str, url: str | None) -> None:
    """Post TEXT from PHONE as Twilio posts an inbound text, signed; print Callout's answer.

    Example: callout reply +12025550102 "1"  (accept), "2" (decline), "ONSCENE", "1 K7Q2" (with a code).
    """
    settings = load_settings()
    token = signing_token(settings)
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "From": phone,
        "To": settings.twilio_from or "+10000000000",
        "Body": text,
        "NumMedia": "0",
    }
    # Twilio signs the URL it was given (the public one), whatever address the request travels to.
    signature = RequestValidator(token).compute_signature(settings.public_link("/v1/twilio/sms"), params)
    answer = post(f"{url or local_url(settings)}/v1/twilio/sms", params, signature)
    click.echo(ET.fromstring(answer).findtext("Message") or "(no answer)")  # noqa: S314 - our own server's TwiML


@click.command()
@click.argument("gather_url")
@click.argument("digit")
@click.option("--url", default=None, help="Callout's base URL (default: this machine, CALLOUT_PORT).")
def press(gather_url: str, digit: str, url: str | None) -> None:
    """Press DIGIT on a voice alert, as Twilio posts the key, signed; print what the call says back.

    GATHER_URL is the one the console printed with the call: callout press "<its URL>" 1  (2 declines).
    """
    settings = load_settings()
    params = {"CallSid": "CA" + secrets.token_hex(16), "Digits": digit, "CallStatus": "in-progress"}
    signature = RequestValidator(signing_token(settings)).compute_signature(gather_url, params)
    parts = urlsplit(gather_url)
    answer = post(f"{url or local_url(settings)}{parts.path}?{parts.query}", params, signature)
    click.echo(ET.fromstring(answer).findtext(".//Say") or "(nothing said)")  # noqa: S314 - our own TwiML


def signing_token(settings: AlertsSettings) -> str:
    """With Twilio, its auth token; without, the key the `callout serve` on this machine made at its start."""
    token = settings.twilio_auth_token or (console_key.read(settings) if console_key.needed(settings) else None)
    if token is None:
        raise click.ClickException(
            f"nothing to sign with: no CALLOUT_TWILIO_AUTH_TOKEN, and no {console_key.path(settings)} "
            "(it is made by `callout serve` on this machine, with the same CALLOUT_DATA_DIR, at its start)"
        )
    return token


def post(target: str, params: dict[str, str], signature: str) -> str:
    """Post as Twilio does; Callout's TwiML answer."""
    try:
        response = httpx.post(target, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {target}: {exc}") from None
    if response.is_error:
        raise click.ClickException(f"{response.status_code}: {response.text}")
    return response.text
