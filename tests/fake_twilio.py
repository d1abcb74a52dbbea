"""A fake Twilio: a real HTTP server that answers the Messages API like Twilio, signs its status callbacks,
and fails, hangs or rate-limits on demand. The real `twilio` client reaches it through CALLOUT_TWILIO_API_BASE."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-twilio-auth-token"
FROM = "+12025550000"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class Fault:
    """One answer to give instead of success: an HTTP error with a Twilio code, or no answer at all."""

    status: int = 500
    code: int | None = None
    hang: bool = False


@dataclass
class Message:
    sid: str
    to: str
    from_: str
    body: str
    form: dict[str, str]
    status: str = "queued"
    received_at: float = field(default_factory=time.perf_counter)


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[Message] = field(default_factory=list)
    requests: int = 0
    faults: deque[Fault] = field(default_factory=deque)
    # Where signed callbacks go: the app under test, reached in-process or over the network.
    callback_client: httpx.AsyncClient | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _sids: itertools.count[int] = field(default_factory=itertools.count)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
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
        self.requests = 0
        self._release.set()  # let any hung request go before the next test
        self._release = asyncio.Event()
        self.callback_client = None

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def wait_for_messages(self, count: int) -> list[Message]:
        """Wait (on a condition, up to 10 s) until `count` messages have arrived."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)

    def to(self, phone: str) -> list[Message]:
        return [m for m in self.messages if m.to == phone]

    async def _create_message(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["sid"] != self.account_sid or not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if self.faults:
            fault = self.faults.popleft()
            if fault.hang:
                await self._release.wait()  # never answers while the test runs: the client must time out
            return self._error(fault.status, fault.code or (20429 if fault.status == 429 else 20500), "Fault")
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ or not body or len(body) > 1600:
            return self._error(400, 21602, "Message body is required and at most 1600 characters.")
        message = Message(f"SM{next(self._sids):032x}", to, from_, body, form)
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        return web.json_response(
            {
                "sid": message.sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": from_,
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "error_code": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.sid}.json",
            },
            status=201,
        )

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

    async def send_status(
        self, message: Message, status: str, *, error_code: int | None = None, forge: bool = False
    ) -> httpx.Response:
        """Post a message status callback to its StatusCallback URL, signed as Twilio signs it."""
        assert self.callback_client is not None, "no callback client: set FakeTwilio.callback_client"
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
        signature = RequestValidator("forged" if forge else self.auth_token).compute_signature(url, params)
        message.status = status
        return await self.callback_client.post(url, data=params, headers={"X-Twilio-Signature": signature})
