"""Ways to reach a phone: Twilio for real, the console for trying Callout out. One small interface."""

from __future__ import annotations

import secrets
import sys
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from shared.phones import masked

# Errors that no retry will heal (TWILIO.md): a bad number, a landline, an opted-out recipient.
PERMANENT_CODES = {21211: "invalid number", 21614: "not a mobile number", 21610: "recipient opted out (STOP)"}


class SendFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.code = reason, retryable, code


class SmsChannel(Protocol):
    name: str

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        """Hand the message to the provider and return its id, or raise SendFailed."""
        ...

    async def close(self) -> None: ...


class ConsoleSms:
    """Prints each text, for `make run` without Twilio credentials."""

    name = "console"

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        print(f"\n📱 SMS to {masked(to)}: {body}\n", file=self.out, flush=True)
        return "console-" + secrets.token_hex(8)

    async def close(self) -> None:
        return None


class _RedirectingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """Sends Twilio's requests to another host (a fake, staging), keeping path and query; owns the timeout.

    The library's own retries stay off: a re-POSTed create can text twice. Our worker owns the retry policy.
    """

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base = urlsplit(api_base)

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        moved = urlunsplit((self.base.scheme, self.base.netloc, parts.path, parts.query, parts.fragment))
        # The library passes timeout=None, which aiohttp reads as "wait forever".
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return await super().request(method, moved, *args, **kwargs)


class TwilioSms:
    name = "twilio"

    def __init__(
        self, *, account_sid: str, auth_token: str, from_: str, api_base: str, timeout: float, validity_seconds: int
    ) -> None:
        self.http = _RedirectingHttpClient(api_base, timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.from_ = from_
        self.validity_seconds = validity_seconds

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        try:
            message = await self.client.messages.create_async(
                to=to,
                from_=self.from_,
                body=body,
                status_callback=status_callback,
                validity_period=self.validity_seconds,
                content_retention="discard",  # keep the text out of Twilio's logs
            )
        except TwilioRestException as exc:
            if exc.code in PERMANENT_CODES:
                raise SendFailed(PERMANENT_CODES[exc.code], retryable=False, code=exc.code) from None
            retryable = exc.status == 429 or exc.status >= 500
            raise SendFailed(f"Twilio answered {exc.status} ({exc.code})", retryable=retryable, code=exc.code) from None
        except TimeoutError:
            raise SendFailed("Twilio did not answer in time", retryable=True) from None
        except (aiohttp.ClientError, TwilioException) as exc:
            raise SendFailed(f"Twilio unreachable ({type(exc).__name__})", retryable=True) from None
        return str(message.sid)

    async def close(self) -> None:
        await self.http.close()
