"""What every answer tells the browser, and what production keeps to itself: a strict CSP on every HTML page (its
style allowed by a nonce of that answer alone), never framed, no Referer, HSTS over https; in production no
Swagger pages, the schema for admins only, /metrics behind its token. And readiness through a roll-out: a schema
newer than the code is ready, an older one is not."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from sqlalchemy import make_url

from callout.compose import Part, build
from services.alerts.settings import AlertsSettings
from services.alerts.worker import Worker
from shared.db import migrate
from shared.settings import Environment
from tests.conftest import ADMIN_TOKEN, PUBLIC_URL, admin_sql
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio
from tests.test_health import serving

METRICS_TOKEN = "metrics-token-of-enough-length-1"


def policy_of(response: httpx.Response) -> dict[str, str]:
    csp = response.headers["content-security-policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in csp.split("; ")}


async def a_callouts_link(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> str:
    """A DV call's alert to luis: the path of the page his text links to."""
    await make_program(client, admin)
    await post_event(client, dv_event())
    await worker.run_once()
    return fake_twilio.to(PHONES["luis"])[0].body.rsplit(" ", 1)[1].removeprefix(PUBLIC_URL)


async def test_every_html_page_has_a_strict_csp_whose_nonce_is_its_own(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    link = await a_callouts_link(client, admin, worker, fake_twilio)

    pages = [await client.get(link), await client.get(link), await client.get("/dashboard/sign-in")]
    api = await client.get("/v1/alerts/unreachable", headers=admin)

    nonces = []
    for page in pages:
        policy = policy_of(page)
        [nonce] = re.findall(r'<style nonce="([^"]+)">', page.text)
        nonces.append(nonce)
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
        assert (
            policy["style-src"] == f"'self' 'nonce-{nonce}'"
            and "unsafe-inline" not in page.headers["content-security-policy"]
        )
        assert policy["frame-ancestors"] == "'none'" and page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")  # the public URL is https
        assert "<script" not in page.text
    assert len(set(nonces)) == 3  # one per answer
    assert "content-security-policy" not in api.headers and api.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def production(settings: AlertsSettings, database_url: str) -> AlertsSettings:
    return settings.model_copy(
        update={"environment": Environment.production, "database_url": database_url, "data_key": "k" * 40}
    )


async def test_in_production_no_swagger_pages_the_schema_for_admins_and_metrics_behind_a_token(
    production: AlertsSettings, database_url: str
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with serving(Part.all, production, database_url) as client:
        docs, redoc = await client.get("/docs"), await client.get("/redoc")
        schema_anonymous, schema_admin = (
            await client.get("/openapi.json"),
            await client.get("/openapi.json", headers=admin),
        )
        metrics_off = await client.get("/metrics")
    with_token = production.model_copy(update={"metrics_token": METRICS_TOKEN})
    async with serving(Part.all, with_token, database_url) as client:
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-metrics-token"})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert (docs.status_code, redoc.status_code) == (404, 404)
    assert schema_anonymous.status_code == 401 and schema_admin.json()["openapi"].startswith("3.")
    assert metrics_off.status_code == 403 and "CALLOUT_METRICS_TOKEN" in metrics_off.json()["detail"]
    assert wrong.status_code == 401 and right.status_code == 200 and "callout_" in right.text


async def test_a_schema_newer_than_the_code_is_ready_and_an_older_one_is_not(
    settings: AlertsSettings, server_url: str
) -> None:
    name = f"callout_rollout_{uuid.uuid4().hex[:8]}"
    await admin_sql(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate, url)  # alembic runs its own event loop
        await admin_sql(url, "UPDATE alembic_version SET version_num = 'f00dcafe0001'")  # a release ahead migrated
        async with serving(Part.intake, settings, url) as client:
            ahead = await client.get("/readyz")
        await admin_sql(url, "UPDATE alembic_version SET version_num = '0011'")  # one this code knows is behind
        async with serving(Part.intake, settings, url) as client:
            behind = await client.get("/readyz")
    finally:
        await admin_sql(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')

    assert ahead.status_code == 200 and ahead.json()["schema_newer_than_this_code"] is True
    assert behind.status_code == 503 and "expected" in behind.json()["detail"]


async def test_the_development_docs_still_load_their_script(settings: AlertsSettings, database_url: str) -> None:
    app = build(Part.intake, settings, database_url, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        docs = await client.get("/docs")

    assert docs.status_code == 200 and "content-security-policy" not in docs.headers


async def test_another_sites_page_cannot_post_a_callouts_pin_or_cover_form(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker, fake_twilio: FakeTwilio
) -> None:
    link = await a_callouts_link(client, admin, worker, fake_twilio)
    forged = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}

    answers = [
        await client.post(link, data={"action": "accept"}, headers=forged),
        await client.post("/p/a-guess-at-a-token-of-length", data={"pin": "1234", "again": "1234"}, headers=forged),
        await client.post("/c/a-guess-at-a-token-of-length", data={"action": "take", "cover": "1"}, headers=forged),
    ]
    own = await client.post(link, data={"action": "accept"}, headers={"Sec-Fetch-Site": "same-origin"})

    assert [a.status_code for a in answers] == [403, 403, 403]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert "You accepted" in own.text  # nothing was done by the forged one: the real one accepts
