"""Standard Webhooks: the signed requests CADs send us (and that we send back to them)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.problems import Unauthorized

# Verifying against a throwaway secret when the agency is unknown keeps both answers alike, in body and in time.
_NOBODY = Webhook(base64.b64encode(secrets.token_bytes(32)).decode())
UNVERIFIED = "The request's Standard Webhooks signature is missing, wrong or outside the 5-minute tolerance."


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def is_valid_secret(secret: str) -> bool:
    try:
        Webhook(secret)
    except Exception:  # the library raises several types for a malformed secret; all mean "not valid"
        return False
    return secret.startswith("whsec_")


def verify(secret: str | None, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise Unauthorized unless the body is signed by `secret`, recently. `None` is an unknown sender."""
    webhook = Webhook(secret) if secret else _NOBODY
    try:
        webhook.verify(body, dict(headers), json_parse=False)
    except (WebhookVerificationError, ValueError):  # ValueError: a malformed signature header
        raise Unauthorized(UNVERIFIED) from None
    if secret is None:
        raise Unauthorized(UNVERIFIED)


def signed_headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body.decode()),
        "content-type": "application/json",
    }
