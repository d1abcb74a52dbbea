"""Text PostgreSQL cannot store (a NUL, a lone surrogate) is a 422 naming its field wherever it comes in, and
changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db import libpq_url
from tests.factories import SECRET, count_rows, dv_event, make_program, post_event, signed
from tests.test_eido import eido_document

NUL, LONE_SURROGATE = "\u0000", "\ud800"
TEXTS = pytest.mark.parametrize("text", [NUL, LONE_SURROGATE], ids=["nul", "lone_surrogate"])


@pytest.fixture
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


def assert_names(response: httpx.Response, field: str) -> None:
    """A 422 problem whose one error is the field, named in the detail too."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Invalid request", 422)
    assert field in problem["detail"]
    assert [error["field"] for error in problem["errors"]] == [field]


def put_text(document: Any, field: str, text: str) -> None:
    """Spoil the string at `field` ("persons.0.safe_contact.notes") with `text`, mid-way."""
    *parents, name = [int(part) if part.isdigit() else part for part in field.split(".")]
    for part in parents:
        document = document[part]
    document[name] = f"{document[name]} {text} more"


async def directory_rows(database_url: str) -> list[Any]:
    """Everything a directory change could touch, its audit trail too."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        return [
            list(await conn.fetch(f"SELECT * FROM {table} ORDER BY 1"))  # noqa: S608 - names from this list
            for table in ("agencies", "areas", "advocates", "audit_log")
        ]
    finally:
        await conn.close()


@pytest.mark.usefixtures("program")
@TEXTS
@pytest.mark.parametrize(
    "field", ["type_text", "location.address", "persons.0.safe_contact.notes", "incident_id", "units.0.unit"]
)
async def test_text_postgresql_cannot_store_in_a_cad_event_is_a_422_naming_its_field_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str, field: str, text: str
) -> None:
    event = dv_event(type_text="Domestic", units=[{"unit": "A12", "status": "on_scene"}])
    put_text(event, field, text)
    before = await count_rows(database_url)

    response = await post_event(client, event)  # json.dumps writes them as \u0000 and \ud800

    assert_names(response, field)
    assert await count_rows(database_url) == before


@pytest.mark.usefixtures("program")
async def test_a_body_that_is_no_utf8_at_all_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    raw = "\ud800".encode(errors="surrogatepass")  # a lone surrogate as UTF-8 would write it: no UTF-8
    body = json.dumps(dv_event(type_text="marker")).encode().replace(b"marker", raw)
    # Signed as Standard Webhooks would sign these bytes, if they were text: they are not, so no signature holds.
    message_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signature = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(signature).decode(),
        "content-type": "application/json",
    }

    response = await client.post("/v1/cad/metro/events", content=body, headers=headers)

    assert response.status_code == 401  # not a 500
    assert response.headers["content-type"] == "application/problem+json"
    assert (await count_rows(database_url))["cad_events"] == 0


@pytest.mark.usefixtures("program")
async def test_an_escaped_surrogate_pair_is_text_like_any_other(client: httpx.AsyncClient) -> None:
    response = await post_event(client, dv_event(type_text="Domestic 🙂"))  # json.dumps writes \ud83d\ude42

    assert response.status_code == 202, response.text


def component(document: dict[str, Any], kind: str, component_id: str) -> int:
    return next(i for i, c in enumerate(document[kind]) if c["$id"] == component_id)


def in_type_text(document: dict[str, Any], text: str) -> str:
    put_text(document, "incidentComponent.incidentTypeInternalText", text)
    return "incidentComponent.incidentTypeInternalText"


def in_the_pidf_lo_address(document: dict[str, Any], text: str) -> str:
    at = component(document, "locationComponent", "loc-incident")
    location = document["locationComponent"][at]
    location["locationByValue"] = location["locationByValue"].replace("Ziggurat", f"Zig{text}gurat")
    return f"locationComponent.{at}.locationByValue"


def in_a_field_callout_does_not_read(document: dict[str, Any], text: str) -> str:
    field = (
        f"personComponent.{component(document, 'personComponent', 'person-victim')}.ncPersonComponent.religion.0.value"
    )
    put_text(document, field, text)
    return field


@pytest.mark.usefixtures("program")
@TEXTS
@pytest.mark.parametrize("spoil", [in_type_text, in_the_pidf_lo_address, in_a_field_callout_does_not_read])
async def test_text_postgresql_cannot_store_in_an_eido_document_is_a_422_naming_its_field_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str, spoil: Callable[[dict[str, Any], str], str], text: str
) -> None:
    document = eido_document()
    field = spoil(document, text)
    body = json.dumps(document).encode()

    response = await client.post("/v1/cad/metro/eido", content=body, headers=signed(body))

    assert_names(response, field)
    assert set((await count_rows(database_url)).values()) == {0}


DIRECTORY_PUTS = {
    "advocate": (
        "/v1/directory/agencies/metro/advocates/dana",
        {"name": "Dana", "phone": "+12025550101", "areas": ["1"]},
        "name",
    ),
    "area": ("/v1/directory/agencies/metro/areas/1", {"name": "Downtown"}, "name"),
    "agency": ("/v1/directory/agencies/metro", {"name": "Metro 911", "hotline": "+12025550100"}, "name"),
    "advocate_area": (
        "/v1/directory/agencies/metro/advocates/dana",
        {"name": "Dana", "phone": "+12025550101", "areas": ["1", "2"]},
        "areas.1",
    ),
}


@pytest.mark.usefixtures("program")
@TEXTS
@pytest.mark.parametrize("put", DIRECTORY_PUTS.values(), ids=DIRECTORY_PUTS.keys())
async def test_text_postgresql_cannot_store_in_a_directory_put_is_a_422_naming_its_field_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str, put: tuple[str, Any, str], text: str
) -> None:
    path, spec, field = put
    put_text(spec, field, text)
    before = await directory_rows(database_url)

    response = await client.put(path, content=json.dumps(spec), headers={**admin, "content-type": "application/json"})

    assert_names(response, field)
    assert await directory_rows(database_url) == before


@pytest.mark.usefixtures("program")
async def test_a_code_map_key_postgresql_cannot_store_is_a_422_naming_the_code_map(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    spec = {"name": "Metro 911", "hotline": "+12025550100", "code_map": {"DV\u0000A": "DVA"}}
    before = await directory_rows(database_url)

    response = await client.put("/v1/directory/agencies/metro", json=spec, headers=admin)

    assert_names(response, "code_map")
    assert await directory_rows(database_url) == before


@pytest.mark.usefixtures("program")
async def test_a_report_filter_postgresql_cannot_store_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    period = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}

    response = await client.get("/v1/reports/summary", params={**period, "area": "1\u0000"}, headers=admin)

    assert_names(response, "query.area")
