"""The app factory every service shares: database, problems, request logging and health checks."""

from __future__ import annotations

import hmac
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import crypto
from shared.auth import AdminDep
from shared.clock import Clock, SystemClock
from shared.db import (
    Database,
    DatabaseUnreachable,
    driver_error,
    head_revision,
    is_outage,
    is_unstorable_text,
    known_revisions,
    wait_for_database,
    where,
)
from shared.egress import Resolver, egress_for
from shared.logging import RequestContextMiddleware
from shared.problems import Forbidden, Problem, Unauthorized, invalid_payload
from shared.ratelimit import FailureLimits
from shared.security import SecurityHeaders
from shared.settings import Environment, Settings

PROBLEM_JSON = "application/problem+json"
# What a client is told to wait before trying again while the database is away: about a restart's length.
RETRY_AFTER_SECONDS = 5
log = structlog.get_logger()
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Service:
    """What one service brings to an app: its routes and the resources its lifespan opens."""

    name: str
    routers: Sequence[APIRouter] = ()
    lifespan: Lifespan | None = None
    tags: Sequence[dict[str, str]] = field(default_factory=list)
    # More for /readyz to report (figures, not verdicts: readiness itself is the database and the schema).
    readiness: Callable[[FastAPI], Awaitable[dict[str, Any]]] | None = None
    # Brings this service's gauges up to date before /metrics is read.
    metrics: Callable[[FastAPI], Awaitable[None]] | None = None


def create_app(
    settings: Settings,
    services: Sequence[Service],
    *,
    clock: Clock | None = None,
    database_url: str | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """Build one app from one or more services; the lifespan owns the engine and every service resource. `resolver`
    answers for DNS where Callout checks an agency's URL (tests bring their own)."""
    url = database_url or settings.database_url
    if url is None:
        raise ValueError("a database URL is required (the CLI starts the embedded PostgreSQL when none is set)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await wait_for_database(url, settings.database_wait_seconds)
        except DatabaseUnreachable as exc:
            log.error("database.unreachable", **where(url), detail=str(exc))
            raise
        app.state.db = Database.connect(url, pool_size=settings.database_pool_size)
        await app.state.db.warm()
        try:
            async with AsyncExitStack() as stack:
                for service in services:
                    if service.lifespan is not None:
                        await stack.enter_async_context(service.lifespan(app))
                yield
        finally:
            await app.state.db.close()

    # In production the schema is for admins (below), and Swagger's pages, which load script from a CDN, are off.
    development = settings.environment is Environment.development
    app = FastAPI(
        title="Callout" if len(services) > 1 else f"Callout {services[0].name}",
        version="1",
        lifespan=lifespan,
        openapi_tags=[tag for service in services for tag in service.tags],
        openapi_url="/openapi.json" if development else None,
        docs_url="/docs" if development else None,
        redoc_url="/redoc" if development else None,
    )
    app.state.settings = settings
    crypto.configure(settings.data_keys)
    app.state.clock = clock or SystemClock()
    app.state.egress = egress_for(settings, resolver)
    app.state.expected_revision = head_revision()
    app.state.known_revisions = known_revisions()
    install_problem_handlers(app)
    # Inside the request context (so that an error's log line and answer carry the request id, and the request
    # is logged with the status it was answered with), outside everything else of ours.
    app.add_middleware(ErrorBoundary)
    app.add_middleware(FailureLimits, storage=settings.rate_limit_storage)
    app.add_middleware(SecurityHeaders, https=settings.public_link("/").startswith("https://"))
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router([s.readiness for s in services if s.readiness]))
    app.include_router(metrics_router([s.metrics for s in services if s.metrics]))
    if not development:
        app.include_router(admin_schema_router())
    for service in services:
        for router in service.routers:
            app.include_router(router)
    return app


def health_router(reports: Sequence[Callable[[FastAPI], Awaitable[dict[str, Any]]]]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The database is reachable and its schema is current")
    async def readyz(request: Request) -> JSONResponse:
        expected = request.app.state.expected_revision
        try:
            current = await request.app.state.db.schema_revision()
        except (SQLAlchemyError, OSError) as exc:
            return problem_response(503, "Not ready", f"database unreachable ({type(exc).__name__})")
        # Older than this code: not ready. Newer (a revision it does not know): a roll-out is migrating ahead of
        # it, and migrations only add — this process keeps serving until it is replaced.
        if current != expected and (current is None or current in request.app.state.known_revisions):
            return problem_response(503, "Not ready", f"schema at {current}, expected {expected}")
        body: dict[str, Any] = {"status": "ready", "schema": current}
        if current != expected:
            body["schema_newer_than_this_code"] = True
        for report in reports:
            body.update(await report(request.app))
        return JSONResponse(body)

    return router


def admin_schema_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/openapi.json", summary="The API's OpenAPI schema (admins, in production)", include_in_schema=False)
    async def schema(request: Request, _: AdminDep) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    return router


def metrics_router(refreshers: Sequence[Callable[[FastAPI], Awaitable[None]]]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics", summary="Prometheus metrics (CALLOUT_METRICS_TOKEN)", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if settings.metrics_token is not None:
            if not hmac.compare_digest(presented.encode(), settings.metrics_token.encode()):
                raise Unauthorized("/metrics needs the metrics token (CALLOUT_METRICS_TOKEN).")
        elif settings.environment is not Environment.development:
            raise Forbidden("/metrics is off: set CALLOUT_METRICS_TOKEN for Prometheus to read it.")
        for refresh in refreshers:
            await refresh(request.app)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def problem_response(
    status: int, title: str, detail: str | None, headers: Mapping[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.title, exc.detail, headers, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _problem(request, invalid_payload(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), None, exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client hung up mid-request: nothing was done, and nobody is left to answer.
        log.info("request.client_disconnected")
        return problem_response(400, "Client disconnected", None)

    # Exceptions without a handler here (a bug, the database away) are answered by ErrorBoundary: a handler for
    # Exception would run in Starlette's ServerErrorMiddleware, which re-raises after answering — uvicorn then
    # logs the error a second time and closes the client's connection.


def error_response(exc: Exception) -> JSONResponse:
    """The answer to an exception no handler took, logged once: the database away is a 503 to retry (a warning,
    no traceback: nothing is wrong with Callout), text it cannot store a 422, anything else a bug — a 500, logged
    with its traceback and without payloads (the client learns only that we failed)."""
    if is_outage(exc):
        log.warning("request.database_unavailable", error=type(driver_error(exc)).__name__)
        return problem_response(
            503,
            "Service unavailable",
            "The database cannot be reached just now; nothing was done. Try again shortly.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if is_unstorable_text(exc):
        log.info("request.unstorable_text", error=type(driver_error(exc)).__name__)
        return problem_response(
            422, "Invalid request", "Text the database cannot store (a NUL character or a lone surrogate)."
        )
    log.exception("request.unhandled_error", error_type=type(exc).__name__)
    return problem_response(500, "Internal server error", None)


class ErrorBoundary:
    """Answers what escapes the app (see error_response) and returns normally, so the server keeps the client's
    connection: a keep-alive CAD adapter's next event comes on it. An error after the answer began cannot be
    answered any more; it is logged, and the server closes the connection on the half-sent answer.

    A start-up that gave up waiting for the database said so in one line (see create_app): its traceback is not
    handed to the server to print as well."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _without_unreachable_traceback(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            try:
                response = error_response(exc)
            except Exception:  # telling the error apart failed: a bug all the same
                log.exception("request.unhandled_error", error_type=type(exc).__name__)
                response = problem_response(500, "Internal server error", None)
            if not started:
                await response(scope, receive, send)


def _without_unreachable_traceback(send: Send) -> Send:
    async def send_quietly(message: Message) -> None:
        if message["type"] == "lifespan.startup.failed" and isinstance(sys.exception(), DatabaseUnreachable):
            message = {**message, "message": ""}
        await send(message)

    return send_quietly
