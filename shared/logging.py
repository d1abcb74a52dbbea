"""structlog, configured once: stable event names, key-values, a request id, and no personal data."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import REQUEST_SECONDS

# Keys whose values are personal data or secrets. A log line keeps the key (so the gap is visible) but never
# the value; a test scans every line of a full flow for the values themselves.
REDACTED_KEYS = frozenset(
    {
        "address",
        "body",
        "caller",
        "location",
        "name",
        "notes",
        "payload",
        "persons",
        "phone",
        "safe_contact",
        "secret",
        "text",
        "to",
        "token",
        "unit",
        "victim",
        "authorization",
    }
)


def redact_personal_data(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event.keys() & REDACTED_KEYS:
        event[key] = "[redacted]"
    return event


def configure_logging(*, json: bool, level: int = logging.INFO) -> None:
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_personal_data,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared_processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library; route them through the same redaction and renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Twilio's client logs request parameters (recipient numbers, message bodies) at INFO; uvicorn's access
    # log prints raw paths, which carry link tokens. Our own request log below replaces it.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry query strings
    logging.getLogger("uvicorn.access").disabled = True


class RequestContextMiddleware:
    """Binds a request id to every log line of a request and logs the request by its route, not its path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - started
            REQUEST_SECONDS.labels(method=scope["method"], route=route, status=status).observe(seconds)
            self.log.info(
                "http.request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
