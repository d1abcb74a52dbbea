"""Failures limited per client address: wrong sign-ins, unknown link, PIN, cover-page and feed tokens, CAD posts
whose signature fails. Only failures count, so legitimate traffic — a dispatch centre posting hundreds of signed
events a second from one address — is never limited; a client over its limit is answered 429 (problem+json,
Retry-After) before any of its requests of that kind reaches a route (or the database).

Counts are kept by `limits` (moving windows) in CALLOUT_RATE_LIMIT_STORAGE: this process's memory by default, or a
shared store (`async+redis://…`) so that several processes count together. The client address is the one the
server gives (uvicorn, trusting X-Forwarded-For only from FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger()


@dataclass(frozen=True)
class FailureLimit:
    name: str
    methods: frozenset[str]
    prefix: str
    rate: RateLimitItem
    failed: Callable[[int], bool]  # which answers are failures


LIMITS = (
    FailureLimit("sign_in", frozenset({"POST"}), "/dashboard/sign-in", parse("10/15 minutes"), lambda s: s != 303),
    FailureLimit("link", frozenset({"GET", "POST"}), "/l/", parse("30/10 minutes"), lambda s: s == 404),
    FailureLimit("pin_link", frozenset({"GET", "POST"}), "/p/", parse("30/10 minutes"), lambda s: s == 404),
    FailureLimit("cover_link", frozenset({"GET", "POST"}), "/c/", parse("30/10 minutes"), lambda s: s == 404),
    FailureLimit("feed", frozenset({"GET"}), "/v1/directory/feeds/", parse("30/10 minutes"), lambda s: s == 404),
    FailureLimit("cad_signature", frozenset({"POST"}), "/v1/cad/", parse("60/minute"), lambda s: s == 401),
)


class FailureLimits:
    def __init__(self, app: ASGIApp, *, storage: str) -> None:
        self.app = app
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit_for(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if not await self.limiter.test(limit.rate, limit.name, client):
            await self._refuse(limit, client, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if limit.failed(status):
            await self.limiter.hit(limit.rate, limit.name, client)

    @staticmethod
    def _limit_for(scope: Scope) -> FailureLimit | None:
        if scope["type"] != "http":
            return None
        path, method = scope["path"], scope["method"]
        return next((lim for lim in LIMITS if method in lim.methods and path.startswith(lim.prefix)), None)

    async def _refuse(self, limit: FailureLimit, client: str, send: Send) -> None:
        stats = await self.limiter.get_window_stats(limit.rate, limit.name, client)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        log.warning("request.rate_limited", limit=limit.name, retry_after=retry_after)
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Too many requests",
                "status": 429,
                "detail": f"Too many failed attempts from this address; try again in {retry_after} s.",
            }
        ).encode()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
