"""Ways to reach a phone: Twilio for real, the console for trying Callout out. One small interface."""

from __future__ import annotations

import secrets
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
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
# Of those, the ones that make a phone unreachable by text until the directory changes it.
UNREACHABLE_CODES = {21211, 21610, 21614}


class SendFailed(Exception):
    """`unknown`: no answer came (a timeout, a dropped connection), so the provider may have sent it anyway."""

    def __init__(self, reason: str, *, retryable: bool, code: int | None = None, unknown: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.code, self.unknown = reason, retryable, code, unknown


class Channel(Protocol):
    name: str

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        """Hand a text to the provider; return its id, or raise SendFailed."""
        ...

    async def place_call(self, *, to: str, twiml: str, status_callback: str | None) -> str:
        """Start a call that speaks `twiml`; return its id, or raise SendFailed."""
        ...

    async def find_sent(self, *, channel: str, to: str, since: datetime) -> list[tuple[str, str | None]]:
        """(id, text) of what the provider sent (or rang) to `to` since `since`, to reconcile an unknown outcome;
        a call has no text."""
        ...

    async def close(self) -> None: ...


class ConsoleChannel:
    """Prints each text and call, for `make run` without Twilio credentials."""

    name = "console"

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        print(f"\n📱 SMS to {masked(to)}: {body}\n", file=self.out, flush=True)
        return "console-" + secrets.token_hex(8)

    async def place_call(self, *, to: str, twiml: str, status_callback: str | None) -> str:
        said = ET.fromstring(twiml).findtext(".//Say") or ""  # noqa: S314 - TwiML we built ourselves
        print(f"\n📞 CALL to {masked(to)}: “{said}”\n", file=self.out, flush=True)
        return "console-" + secrets.token_hex(8)

    async def find_sent(self, *, channel: str, to: str, since: datetime) -> list[tuple[str, str | None]]:
        return []  # the console keeps nothing: an unknown outcome is sent again

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


@contextmanager
def provider_errors() -> Iterator[None]:
    """Twilio's failures, sorted into those worth retrying and those that will not heal."""
    try:
        yield
    except TwilioRestException as exc:
        if exc.code in PERMANENT_CODES:
            raise SendFailed(PERMANENT_CODES[exc.code], retryable=False, code=exc.code) from None
        retryable = exc.status == 429 or exc.status >= 500
        raise SendFailed(f"Twilio answered {exc.status} ({exc.code})", retryable=retryable, code=exc.code) from None
    except TimeoutError:
        raise SendFailed("Twilio did not answer in time", retryable=True, unknown=True) from None
    except (aiohttp.ClientError, TwilioException) as exc:
        raise SendFailed(f"Twilio unreachable ({type(exc).__name__})", retryable=True, unknown=True) from None


class TwilioChannel:
    name = "twilio"

    def __init__(
        self, *, account_sid: str, auth_token: str, from_: str, api_base: str, timeout: float, validity_seconds: int
    ) -> None:
        self.http = _RedirectingHttpClient(api_base, timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        # The client loads its API modules on first use (tens of ms): load them now, not on the first callout.
        _ = self.client.messages, self.client.calls
        self.from_ = from_
        self.validity_seconds = validity_seconds

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        with provider_errors():
            message = await self.client.messages.create_async(
                to=to,
                from_=self.from_,
                body=body,
                status_callback=status_callback,
                validity_period=self.validity_seconds,  # a stale alert is worse than none: it would mislead
                # The text stays at Twilio (no ContentRetention=discard): it carries no personal data, and its
                # unique link is how a send whose outcome was lost is recognised there.
            )
        return str(message.sid)

    async def place_call(self, *, to: str, twiml: str, status_callback: str | None) -> str:
        with provider_errors():
            call = await self.client.calls.create_async(
                to=to,
                from_=self.from_,
                twiml=twiml,
                status_callback=status_callback,
                timeout=30,  # ring for 30 s: the step's wait is what bounds a callout, not one call
                machine_detection="Enable",  # voicemail is not a person: AnsweredBy tells us
            )
        return str(call.sid)

    async def find_sent(self, *, channel: str, to: str, since: datetime) -> list[tuple[str, str | None]]:
        with provider_errors():
            if channel == "sms":
                texts = await self.client.messages.list_async(to=to, date_sent_after=since, limit=50)
                return [(str(m.sid), m.body) for m in texts]
            calls = await self.client.calls.list_async(to=to, start_time_after=since, limit=50)
        return [(str(c.sid), None) for c in calls]

    async def close(self) -> None:
        await self.http.close()
