"""Headers every answer carries so that a browser holds our pages to what they are: no script but our own (there
is none: the pages are server-rendered), never framed, no link token leaking out in a Referer, nothing sniffed.

Each HTML page's own inline style is allowed by a nonce made for that answer (`csp_nonce()` while it is made),
never by 'unsafe-inline'. HSTS is sent when the public URL is https. The development-only API docs (/docs, /redoc),
which load Swagger's script from a CDN, are served without the CSP and do not exist in production."""

from __future__ import annotations

import secrets
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEVELOPMENT_DOCS = ("/docs", "/redoc")
HSTS = "max-age=31536000; includeSubDomains"
_nonce: ContextVar[str] = ContextVar("csp_nonce", default="")


def csp_nonce() -> str:
    """The nonce of the answer being made: what a page puts on its <style> tag."""
    return _nonce.get()


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app, self.https = app, https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        _nonce.set(nonce)  # this request's task (and what it runs) sees it; no other request does
        documentation = scope["path"].startswith(DEVELOPMENT_DOCS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")  # a page's address holds its link token
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if headers.get("content-type", "").startswith("text/html") and not documentation:
                    headers["Content-Security-Policy"] = content_security_policy(nonce)
            await send(message)

        await self.app(scope, receive, with_headers)
