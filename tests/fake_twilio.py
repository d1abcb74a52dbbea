"""A fake Twilio: a real HTTP server that answers the Messages and Calls APIs like Twilio — lists newest first,
page by page (`PageSize`, `next_page_uri`), each call's Events (the requests Twilio made for it) — signs the
callbacks it sends (status, key presses, inbound texts), and fails, hangs or rate-limits on demand, one request
at a time or at random rates. The real `twilio` client reaches it through CALLOUT_TWILIO_API_BASE."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import itertools
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-twilio-auth-token"
FROM = "+12025550000"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class Fault:
    """One answer to give instead of success: an HTTP error with a Twilio code, or no answer at all —
    before doing the work (`hang`) or after it (`hang_after`: the text goes out, the answer never comes)."""

    status: int = 500
    code: int | None = None
    hang: bool = False
    hang_after: bool = False
    # "sms" or "voice" (a create), "list" (a lookup): the first such request gets it; None: the first request
    only: str | None = None
    retry_after: int | None = None  # seconds, sent as Retry-After
    matching: str | None = None  # a create whose body (or TwiML) this regular expression finds; None: any


@dataclass
class FaultRates:
    """Faults at random, for load under failure: each create (and each lookup, but for hangs) gets one with
    these chances. `hang` leaves a create unanswered for `hang_seconds`, with the work done or not, at random."""

    server_error: float = 0.0  # 503
    rate_limited: float = 0.0  # 429, with Retry-After: 1
    hang: float = 0.0
    hang_seconds: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(9))

    def draw(self, kind: str) -> Fault | None:
        roll = self.rng.random()
        if roll < self.server_error:
            return Fault(status=503, code=20503)
        if roll < self.server_error + self.rate_limited:
            return Fault(status=429, retry_after=1)
        if kind != "list" and roll < self.server_error + self.rate_limited + self.hang:
            return Fault(hang=True) if self.rng.random() < 0.5 else Fault(hang_after=True)
        return None


@dataclass
class Message:
    """A text, or a call (`body` then holds its TwiML)."""

    sid: str
    to: str
    from_: str
    body: str
    form: dict[str, str]
    kind: str = "sms"
    status: str = "queued"
    received_at: float = field(default_factory=time.perf_counter)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    callback_events: list[str] = field(default_factory=list)  # StatusCallbackEvent, each value it was given
    # The requests Twilio made for a call (its status callbacks), as its Events list shows them.
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dial(self) -> tuple[str, str, str]:
        """A masked call's <Dial>: its action URL, the caller ID shown, and the number it bridges to."""
        found = re.search(r"<Dial ([^>]*)><Number>([^<]+)</Number></Dial>", self.body)
        assert found, "this call dials nobody"
        attributes = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
        assert attributes.get("record", "do-not-record") == "do-not-record", "a bridged call must not be recorded"
        return html.unescape(attributes["action"]), attributes["callerId"], found.group(2)

    @property
    def gather_url(self) -> str:
        found = re.search(r'<Gather[^>]* action="([^"]+)"', self.body)
        assert found, "this call gathers no key"
        return html.unescape(found.group(1))


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[Message] = field(default_factory=list)
    requests: int = 0
    faults: deque[Fault] = field(default_factory=deque)
    rates: FaultRates | None = None
    # Where signed callbacks go: the app under test, reached in-process or over the network.
    callback_client: httpx.AsyncClient | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    # The client ports of requests left hanging after the work was done: whoever holds one is mid-send.
    hanging: list[int] = field(default_factory=list)
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    _sids: itertools.count[int] = field(default_factory=itertools.count)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Calls.json", self._create_call)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list("sms", "messages", "DateSent>"))
        app.router.add_get("/2010-04-01/Accounts/{sid}/Calls.json", self._list("voice", "calls", "StartTime>"))
        app.router.add_get("/2010-04-01/Accounts/{sid}/Calls/{call}/Events.json", self._call_events)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner:
            await self._runner.cleanup()

    def reset(self) -> None:
        self.messages.clear()
        self.faults.clear()
        self.rates = None
        self.requests = 0
        self.hanging.clear()
        self.hung = asyncio.Event()
        self._release.set()  # let any hung request go before the next test
        self._release = asyncio.Event()
        self.callback_client = None

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def wait_for_messages(self, count: int, *, within: float = 10) -> list[Message]:
        """Wait (on a condition, `within` seconds at most) until `count` messages have arrived."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)

    async def wait_until(self, condition: Callable[[], bool], *, within: float = 10) -> None:
        """Wait (on a condition, `within` seconds at most) until `condition` holds of what has arrived."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(condition)

    def to(self, phone: str, kind: str = "sms") -> list[Message]:
        return [m for m in self.messages if m.to == phone and m.kind == kind]

    @property
    def texts(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "sms"]

    @property
    def calls(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "voice"]

    async def _create_message(self, request: web.Request) -> web.Response:
        return await self._create(request, "sms")

    async def _create_call(self, request: web.Request) -> web.Response:
        return await self._create(request, "voice")

    def _fault(self, kind: str, body: str = "") -> Fault | None:
        """The fault this request gets, if any: the next one queued for its kind (and body), else one drawn at
        random."""
        fault = next(
            (
                f
                for f in self.faults
                if f.only in (None, kind)
                and (kind != "list" or f.only)
                and (f.matching is None or re.search(f.matching, body))
            ),
            None,
        )
        if fault:
            self.faults.remove(fault)
            return fault
        return self.rates.draw(kind) if self.rates else None

    async def _hang(self) -> None:
        """No answer: until the test ends (a client must time out), or for the random faults' hang_seconds."""
        if self.rates is None:
            await self._release.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), timeout=self.rates.hang_seconds)

    async def _create(self, request: web.Request, kind: str) -> web.Response:
        self.requests += 1
        if request.match_info["sid"] != self.account_sid or not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        posted = await request.post()
        form = {k: v for k, v in posted.items() if isinstance(v, str)}
        fault = self._fault(kind, form.get("Body", "") if kind == "sms" else form.get("Twiml", ""))
        if fault and not fault.hang_after:
            if fault.hang:
                await self._hang()
            return self._fault_answer(fault)
        to, from_ = form.get("To", ""), form.get("From", "")
        body = form.get("Body", "") if kind == "sms" else form.get("Twiml", "")
        if not E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ or not body or len(body) > (1600 if kind == "sms" else 4000):
            return self._error(400, 21602 if kind == "sms" else 21205, "A body (or TwiML) is required, and bounded.")
        message = Message(f"{'SM' if kind == 'sms' else 'CA'}{next(self._sids):032x}", to, from_, body, form, kind)
        message.callback_events = [v for v in posted.getall("StatusCallbackEvent", []) if isinstance(v, str)]
        if "initiated" in message.callback_events:  # Twilio requests it as the call starts: an event at once
            message.events.append(
                self._event(form["StatusCallback"], {"CallSid": message.sid, "CallStatus": "initiated"})
            )
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        if fault:  # the work is done, but the answer never comes: the outcome is unknown to the sender
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.hanging.append(peer[1] if peer else 0)
            self.hung.set()
            await self._hang()
        return web.json_response(self._resource(message), status=201)

    def _fault_answer(self, fault: Fault) -> web.Response:
        response = self._error(fault.status, fault.code or (20429 if fault.status == 429 else 20500), "Fault")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    @staticmethod
    def _event(url: str, parameters: dict[str, str]) -> dict[str, Any]:
        return {
            "request": {"method": "POST", "url": url, "parameters": parameters},
            "response": {"response_code": 204, "content_type": None, "response_body": ""},
        }

    def _resource(self, message: Message) -> dict[str, Any]:
        collection = "Messages" if message.kind == "sms" else "Calls"
        return {
            "sid": message.sid,
            "account_sid": self.account_sid,
            "to": message.to,
            "from": message.from_,
            "status": "queued",
            "direction": "outbound-api",
            "error_code": None,
            "date_created": message.created.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "date_sent": None,  # not until it leaves Twilio: a text just queued has none
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/{collection}/{message.sid}.json",
        }

    def _list(self, kind: str, key: str, since_param: str) -> Any:
        """A list as Twilio answers it: newest first, `PageSize` records a page (50 by default, 1,000 at most),
        the next page's address in `next_page_uri`. The date filter works by the day, as Twilio documents it."""

        async def handler(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return self._error(401, 20003, "Authenticate")
            if fault := self._fault("list"):
                return self._fault_answer(fault)
            to = request.query.get("To")
            since = request.query.get(since_param)
            day = datetime.fromisoformat(since.replace("Z", "+00:00")).date() if since else None
            found = [
                {**self._resource(m), **({"body": m.body} if kind == "sms" else {})}
                for m in reversed(self.messages)
                if m.kind == kind and (to is None or m.to == to) and (day is None or m.created.date() >= day)
            ]
            size = min(int(request.query.get("PageSize", "50")), 1000)
            page = int(request.query.get("Page", "0"))
            records = found[page * size : (page + 1) * size]
            following = {**request.query, "Page": str(page + 1), "PageSize": str(size), "PageToken": f"PA{page + 1}"}
            more = (page + 1) * size < len(found)
            return web.json_response(
                {
                    key: records,
                    "first_page_uri": request.path,
                    "next_page_uri": f"{request.path}?{urlencode(following)}" if more else None,
                    "previous_page_uri": None,
                    "page": page,
                    "page_size": size,
                    "start": page * size,
                    "end": page * size + len(records) - 1,
                    "uri": request.path_qs,
                }
            )

        return handler

    async def _call_events(self, request: web.Request) -> web.Response:
        """The requests Twilio made for one call (its status callbacks), as Call Events lists them."""
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if fault := self._fault("list"):
            return self._fault_answer(fault)
        call = next((m for m in self.messages if m.sid == request.match_info["call"]), None)
        if call is None:
            return self._error(404, 20404, "The requested resource was not found")
        meta = {"key": "events", "page": 0, "page_size": 50, "first_page_url": request.path, "next_page_url": None}
        return web.json_response({"events": call.events, "meta": meta})

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )

    async def _post_signed(self, url: str, params: dict[str, str], *, forge: bool = False) -> httpx.Response:
        assert self.callback_client is not None, "no callback client: set FakeTwilio.callback_client"
        signature = RequestValidator("forged" if forge else self.auth_token).compute_signature(url, params)
        return await self.callback_client.post(url, data=params, headers={"X-Twilio-Signature": signature})

    async def replay(self, answered: httpx.Response) -> httpx.Response:
        """The very request Twilio sent, signature and all, sent again: Twilio retrying it, or a replay."""
        sent = answered.request
        assert self.callback_client is not None
        headers = {name: sent.headers[name] for name in ("X-Twilio-Signature", "Content-Type")}
        return await self.callback_client.post(str(sent.url), content=sent.content, headers=headers)

    async def press(self, call: Message, digits: str) -> httpx.Response:
        """The person who answered the call presses a key: Twilio posts it to the Gather's action."""
        return await self._post_signed(
            call.gather_url,
            {"CallSid": call.sid, "Digits": digits, "To": call.to, "From": call.from_, "CallStatus": "in-progress"},
        )

    async def bridge(self, call: Message, status: str, seconds: int = 0) -> httpx.Response:
        """The bridged leg of a masked call ends: Twilio posts its outcome to the <Dial>'s action."""
        action, _, _ = call.dial
        params = {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "DialCallSid": f"CA{next(self._sids):032x}",
            "DialCallStatus": status,
            "DialCallDuration": str(seconds),
            "CallStatus": "in-progress",
            "To": call.to,
            "From": call.from_,
        }
        return await self._post_signed(action, params)

    async def call_status(self, call: Message, status: str, *, answered_by: str | None = None) -> httpx.Response:
        params = {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "CallStatus": status,
            "To": call.to,
            "From": call.from_,
            "ApiVersion": "2010-04-01",
        }
        if answered_by:
            params["AnsweredBy"] = answered_by
        call.status = status
        call.events.append(self._event(call.form["StatusCallback"], params))
        return await self._post_signed(call.form["StatusCallback"], params)

    async def text_in(self, url: str, from_: str, body: str, *, forge: bool = False) -> httpx.Response:
        """A person texts our number: Twilio posts the inbound message to the messaging webhook."""
        params = {
            "MessageSid": f"SM{next(self._sids):032x}",
            "AccountSid": self.account_sid,
            "From": from_,
            "To": FROM,
            "Body": body,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        return await self._post_signed(url, params, forge=forge)

    async def send_status(
        self, message: Message, status: str, *, error_code: int | None = None, forge: bool = False
    ) -> httpx.Response:
        """Post a message status callback to its StatusCallback URL, signed as Twilio signs it."""
        url = message.form["StatusCallback"]
        params = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message.to,
            "From": message.from_,
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        message.status = status
        return await self._post_signed(url, params, forge=forge)
