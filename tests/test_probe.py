"""A probe of every route the API documents, as an outsider and as another agency's supervisor would try it:
without a token, each one answers 401, 403 or 404 (those open by design — health, Twilio's and CAD's signed
webhooks, the advocate's own pages — answer as they were built to, and give nothing away); with a supervisor's
token of another agency, every route about this agency is 403 or 404, and the routes that answer for the asker's
own agency show nothing of this one. A route added without a check fails here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.alerts.worker import Worker
from tests.factories import dv_event, make_program, post_event
from tests.test_openapi import served_bodies
from tests.test_timeline import supervisor_token

# Path parameters, filled with what names this agency's own things.
VALUES = {
    "slug": "metro",
    "agency": "metro",
    "key": "luis",
    "code": "1",
    "tier": "immediate",
    "name": "nights",
    "override_id": "1",
    "flag_id": "1",
    "assessment_id": "1",
    "token": "a-guess-at-a-token-of-length",
}
# Required query parameters, filled with a value each route takes.
QUERY = {"role": "primary"}
# Open without a token by design, and what each answers a stranger instead.
OPEN = {
    "/healthz": {200},
    "/readyz": {200},
    "/metrics": {200},  # development: open (production: CALLOUT_METRICS_TOKEN, tests/test_security_headers.py)
    "/v1/cad/{agency}/events": {401},  # a Standard Webhooks signature, or nothing
    "/v1/cad/{agency}/eido": {401},
    "/v1/cad/{agency}/heartbeat": {401},
    "/v1/twilio/": {403, 422},  # Twilio's signature, or nothing (the query its URLs carry is read first)
    "/l/{token}": {404},  # the token is the key: a guess finds nothing
    "/p/{token}": {404},
    "/c/{token}": {404},
    "/v1/directory/feeds/{token}.ics": {404},
}
# Routes that answer a supervisor for their own agency (no agency in the path): they must hold nothing of metro's.
PERIOD = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
OWN_AGENCY = {"/v1/alerts/unreachable", "/v1/reports/summary", "/v1/reports/incidents.csv"}
DASHBOARD = ("/dashboard", "/dashboard/export.csv", "/dashboard/incidents/{ref}")


@pytest.fixture
async def metro(client: httpx.AsyncClient, admin: dict[str, str], worker: Worker) -> dict[str, str]:
    """Metro's program with one DV call handled; north exists beside it. Returns what names metro's things."""
    await make_program(client, admin)
    await make_program(client, admin, agency="north", advocates={"dana": ["en"]})
    ref: str = (await post_event(client, dv_event())).json()["incident_ref"]
    await worker.run_once()
    return {**VALUES, "ref": ref}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    body: dict[str, Any]  # the request as its documented example: a refusal is then never the body's fault


def operations(app: Any) -> list[Operation]:
    document = app.openapi()
    examples = {(b.method, b.path): (b.media_type, b.examples[0]) for b in served_bodies(document) if b.examples}
    found = []
    for path, item in document["paths"].items():
        for method in item:
            if method not in {"get", "post", "put", "delete", "patch"}:
                continue
            media_type, example = examples.get((method, path), ("application/json", {}))
            if media_type == "application/json":
                body: dict[str, Any] = {"json": example}
            elif media_type == "application/x-www-form-urlencoded":
                body = {"data": example}
            else:
                body = {"content": str(example)}
            required = [p["name"] for p in item[method].get("parameters", []) if p["in"] == "query" and p["required"]]
            if required:  # filled as the route needs, so that the answer is the check's, never the query's
                body["params"] = {name: QUERY[name] for name in required if name in QUERY}
            if path.startswith("/v1/reports/"):
                body["params"] = PERIOD
            found.append(Operation(method.upper(), path, {**body, "headers": {"content-type": media_type}}))
    return found


def filled(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def open_answers(path: str) -> set[int] | None:
    return next((codes for prefix, codes in OPEN.items() if path.startswith(prefix) or path == prefix), None)


async def test_without_a_token_every_route_refuses_or_is_open_by_design_and_gives_nothing_away(
    app: Any, client: httpx.AsyncClient, metro: dict[str, str]
) -> None:
    probed = 0
    for op in operations(app):
        response = await client.request(op.method, filled(op.path, metro), **op.body)
        expected = open_answers(op.path) or {401, 403, 404}
        assert response.status_code in expected, (op.method, op.path, response.status_code, response.text[:200])
        assert "Ziggurat" not in response.text and "+12025557777" not in response.text, (op.method, op.path)
        probed += 1
    for path in DASHBOARD:
        page = await client.get(filled(path, metro), follow_redirects=True)
        assert "Sign in" in page.text and metro["ref"] not in page.text and "agency,date" not in page.text, path

    assert probed >= 35  # the whole API, not a part of it


async def test_another_agencys_supervisor_is_refused_everything_of_this_agency(
    app: Any, client: httpx.AsyncClient, metro: dict[str, str], database_url: str
) -> None:
    north = {"Authorization": f"Bearer {await supervisor_token(database_url, 'north')}"}
    for op in operations(app):
        if open_answers(op.path) is not None:
            continue
        headers = {**op.body["headers"], **north}
        response = await client.request(op.method, filled(op.path, metro), **{**op.body, "headers": headers})
        where = (op.method, op.path, response.status_code, response.text[:200])
        if op.path in OWN_AGENCY:
            assert response.status_code == 200, where
            assert metro["ref"] not in response.text and "Ziggurat" not in response.text, where
        else:
            assert response.status_code in {403, 404}, where
    timeline = await client.get(f"/v1/incidents/{metro['ref']}/timeline", headers=north)

    assert timeline.status_code == 404  # as for one that does not exist: nothing to learn from the answer
