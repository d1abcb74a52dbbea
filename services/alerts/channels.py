"""Ways to reach a phone: Twilio for real, the console for trying Callout out. One small interface."""

from __future__ import annotations

import secrets
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from shared.phones import masked

# Errors that no retry will heal (docs/twilio.md, "Error codes"): a bad number, a landline, an opted-out recipient.
PERMANENT_CODES = {21211: "invalid number", 21614: "not a mobile number", 21610: "recipient opted out (STOP)"}
# Of those, the ones that make a phone unreachable by text until the directory changes it.
UNREACHABLE_CODES = {21211, 21610, 21614}
PAGE_SIZE = 1000  # Twilio's largest page: a lookup after a lost answer reads every page of its window


class SendFailed(Exception):
    """`unknown`: no answer came (a timeout, a dropped connection), so the provider may have sent it anyway.
    `retry_after`: seconds the provider asked us to wait (429, 503), if it said."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        code: int | None = None,
        unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.code, self.unknown = reason, retryable, code, unknown
        self.retry_after = retry_after


class Channel(Protocol):
    name: str

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        """Hand a text to the provider; return its id, or raise SendFailed."""
        ...

    async def place_call(self, *, to: str, twiml: str, status_callback: str | None) -> str:
        """Start a call that speaks `twiml`; return its id, or raise SendFailed."""
        ...

    async def find_sent(self, *, channel: str, to: str, since: datetime, marker: str) -> str | None:
        """The id of the one text or call to `to`, made since `since`, that carries `marker` — a text's whole
        body (unique by its link), a call's own status-callback URL — or None when the provider has none.
        Raises SendFailed when the provider cannot say."""
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
        call = ET.fromstring(twiml)  # noqa: S314 - TwiML we built ourselves
        said, gather = call.findtext(".//Say") or "", call.find(".//Gather")
        answer = f'\n   answer it: callout press "{gather.get("action")}" 1' if gather is not None else ""
        print(f"\n📞 CALL to {masked(to)}: “{said}”{answer}\n", file=self.out, flush=True)
        return "console-" + secrets.token_hex(8)

    async def find_sent(self, *, channel: str, to: str, since: datetime, marker: str) -> str | None:
        return None  # the console keeps nothing: an unknown outcome is sent again

    async def close(self) -> None:
        return None


# What the last answer in this task said of when to ask again: the library's exceptions drop response headers.
_retry_after: ContextVar[float | None] = ContextVar("twilio_retry_after", default=None)


def seconds(header: str | None) -> float | None:
    """Retry-After as seconds (Twilio sends a number; an HTTP date is read as no advice)."""
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


class _RedirectingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """Sends Twilio's requests to another host (a fake, staging), keeping path and query; owns the timeout;
    keeps the Retry-After of each answer for the caller.

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
        _retry_after.set(None)
        response: Response = await super().request(method, moved, *args, **kwargs)
        _retry_after.set(seconds((response.headers or {}).get("Retry-After")))
        return response


@contextmanager
def provider_errors() -> Iterator[None]:
    """Twilio's failures, sorted into those worth retrying and those that will not heal."""
    try:
        yield
    except TwilioRestException as exc:
        if exc.code in PERMANENT_CODES:
            raise SendFailed(PERMANENT_CODES[exc.code], retryable=False, code=exc.code) from None
        retryable = exc.status == 429 or exc.status >= 500
        raise SendFailed(
            f"Twilio answered {exc.status} ({exc.code})",
            retryable=retryable,
            code=exc.code,
            retry_after=_retry_after.get() if retryable else None,
        ) from None
    except TimeoutError:
        raise SendFailed("Twilio did not answer in time", retryable=True, unknown=True) from None
    except TwilioException as exc:
        # A list's page that came back with an error is raised bare, with the response beside the message.
        status = getattr(exc.args[1], "status_code", None) if len(exc.args) > 1 else None
        if isinstance(status, int):
            retryable = status == 429 or status >= 500
            retry_after = _retry_after.get() if retryable else None
            raise SendFailed(f"Twilio answered {status}", retryable=retryable, retry_after=retry_after) from None
        raise SendFailed(f"Twilio unreachable ({type(exc).__name__})", retryable=True, unknown=True) from None
    except aiohttp.ClientError as exc:
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
                # Twilio requests the status callback as soon as it starts the call: its Events then hold the
                # callback's URL, unique to this alert, by which a call whose create answer was lost is found.
                status_callback_event=["initiated", "completed"],
                timeout=30,  # ring for 30 s: the step's wait is what bounds a callout, not one call
                machine_detection="Enable",  # voicemail is not a person: AnsweredBy tells us
            )
        return str(call.sid)

    async def find_sent(self, *, channel: str, to: str, since: datetime, marker: str) -> str | None:
        """Reads every page, newest first, back to `since` (by date created: a text still queued has no date
        sent, so the DateSent filter could miss the very one sought)."""
        with provider_errors():
            if channel == "sms":
                async for message in await self.client.messages.stream_async(to=to, page_size=PAGE_SIZE):
                    if message.date_created is not None and message.date_created < since:
                        return None
                    if message.body == marker:
                        return str(message.sid)
                return None
            async for call in await self.client.calls.stream_async(to=to, page_size=PAGE_SIZE):
                if call.date_created is not None and call.date_created < since:
                    return None
                async for event in await self.client.calls(call.sid).events.stream_async(page_size=PAGE_SIZE):
                    if (event.request or {}).get("url") == marker:
                        return str(call.sid)
        return None

    async def close(self) -> None:
        await self.http.close()
