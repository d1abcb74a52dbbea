"""Health, readiness, the schema the migrations build, and services split apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import make_url

from callout.compose import Part, build
from services.alerts.settings import AlertsSettings
from shared.db import Base, Database
from tests.conftest import PUBLIC_URL, admin_sql


@asynccontextmanager
async def serving(part: Part, settings: AlertsSettings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build(part, settings, database_url, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


async def test_ready_when_the_database_answers_and_its_schema_is_current(
    settings: AlertsSettings, database_url: str
) -> None:
    async with serving(Part.all, settings, database_url) as client:
        health, ready = await client.get("/healthz"), await client.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


async def test_not_ready_on_a_database_the_migrations_have_not_built(settings: AlertsSettings, server_url: str) -> None:
    name = "callout_unmigrated"
    await admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}"')
    await admin_sql(server_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        async with serving(Part.intake, settings, url) as client:
            ready = await client.get("/readyz")
    finally:
        await admin_sql(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')

    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"


async def test_the_migrations_build_exactly_the_schema_the_models_describe(database_url: str) -> None:
    database = Database.connect(database_url, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await database.close()

    assert differences == []


@pytest.mark.parametrize(
    ("part", "serves", "does_not_serve"),
    [
        (Part.intake, "/v1/incidents/INC-X/timeline", "/v1/directory/agencies/x/on-call"),
        (Part.directory, "/v1/directory/agencies/x/on-call", "/v1/incidents/INC-X/timeline"),
        (Part.alerts, "/l/a-token-that-is-long", "/v1/incidents/INC-X/timeline"),
        (Part.worker, "/readyz", "/l/a-token-that-is-long"),
    ],
)
async def test_each_service_alone_serves_only_its_own_prefixes(
    part: Part, serves: str, does_not_serve: str, settings: AlertsSettings, database_url: str
) -> None:
    async with serving(part, settings, database_url) as client:
        own, other = await client.get(serves), await client.get(does_not_serve)

    # Its own route answers (200, or a refusal that explains itself); another service's path matches no route.
    assert own.status_code == 200 or "detail" in own.json()
    assert other.json() == {"type": "about:blank", "title": "Not Found", "status": 404}
