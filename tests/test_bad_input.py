"""Text PostgreSQL cannot store (a NUL, a lone surrogate) is a 422 naming its field wherever it comes in, and
changes nothing; a bug is a 500 problem logged once, and the client's keep-alive connection serves on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from callout.compose import Part, build
from services.alerts.settings import AlertsSettings
from shared.db import libpq_url
from tests.factories import SECRET, count_rows, dv_event, make_program, post_event, signed
from tests.processes import free_port
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


@pytest.mark.usefixtures("program")
async def test_such_text_that_reaches_the_database_unchecked_is_a_422_not_a_500(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    # An incident's reference is a path segment the route takes as it comes: PostgreSQL is the first to refuse it.
    response = await client.get("/v1/incidents/a%00b/timeline", headers=admin)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "cannot store" in response.json()["detail"]
    # An area's code, once taken as it came, is now held to the letters an area's code has, before anything.
    before = await directory_rows(database_url)
    area = await client.put("/v1/directory/agencies/metro/areas/a%00b", json={"name": "Nowhere"}, headers=admin)
    assert area.status_code == 422 and await directory_rows(database_url) == before


# -- a bug, on a real server -------------------------------------------------------------------------------------


class Bug(Exception):
    pass


@pytest.fixture
async def served(settings: AlertsSettings, database_url: str) -> AsyncIterator[tuple[FastAPI, str]]:
    """The whole app behind a real uvicorn on a free port, configured as `callout serve` runs it."""
    app = build(Part.all, settings, database_url, run_worker=False)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, timeout_keep_alive=75)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)  # polling a condition: the lifespan is up and the socket bound
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


def client_port(response: httpx.Response) -> int:
    """The client's own port of the connection a response came on: the same port, the same connection."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


async def test_a_bug_is_a_500_problem_logged_once_and_the_same_connection_serves_the_next_request(
    served: tuple[FastAPI, str],
    admin: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    app, url = served

    async def broken() -> None:
        raise Bug("a bug")

    app.add_api_route("/test/broken", broken)
    caplog.set_level(logging.INFO)
    capfd.readouterr()

    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1)) as client:
        failed = await client.get("/test/broken")
        after = await client.get("/v1/directory/agencies/nowhere/on-call", headers=admin)
        again = await client.get("/test/broken")
        ports = {client_port(failed), client_port(after), client_port(again)}

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json() == {"type": "about:blank", "title": "Internal server error", "status": 500}
    assert failed.headers.get("connection") != "close"
    assert after.status_code == 404  # the app answers on, on the connection the bug came on
    assert len(ports) == 1
    printed = capfd.readouterr()
    logged = printed.out + printed.err + caplog.text
    assert logged.count("request.unhandled_error") == 2  # once each
    assert "Exception in ASGI application" not in logged


FORMULAS = ['=HYPERLINK("http://evil.example/x","open")', "+1", "-3+2", "@SUM(A1)", "1\r\n2"]


@pytest.mark.usefixtures("program")
@pytest.mark.parametrize("area", FORMULAS)
async def test_an_area_that_could_be_a_formula_or_break_a_text_is_a_422_everywhere_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str, area: str
) -> None:
    before, directory_before = await count_rows(database_url), await directory_rows(database_url)

    event = await post_event(client, dv_event(area=area))
    advocate = await client.put(
        "/v1/directory/agencies/metro/advocates/dana",
        json={"name": "Dana", "phone": "+12025550101", "areas": ["1", area]},
        headers=admin,
    )
    path = await client.put(
        f"/v1/directory/agencies/metro/areas/{quote(area, safe='')}", json={"name": "x"}, headers=admin
    )

    assert_names(event, "area")
    assert_names(advocate, "areas.1")
    assert path.status_code == (404 if "/" in area else 422)  # a "/" makes it no area route at all
    assert await count_rows(database_url) == before and await directory_rows(database_url) == directory_before


async def test_areas_as_programs_name_them_are_kept(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for area in ("1", "Beat 12", "Zona Norte", "Área 5", "D-4_b", "N.3"):
        response = await client.put(
            f"/v1/directory/agencies/x/areas/{quote(area, safe='')}", json={"name": "x"}, headers=admin
        )
        assert response.status_code == 404, (area, response.text)  # no such agency: the code itself is good


async def test_an_id_past_what_a_row_can_hold_is_a_422_not_a_database_error(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await make_program(client, admin)
    for path in ("/v1/directory/agencies/metro/overrides/", "/v1/directory/agencies/metro/premise-flags/"):
        for row in ("99999999999", "0"):
            response = await client.delete(path + row, headers=admin)
            assert response.status_code == 422, (path, row, response.text)
        assert (await client.delete(path + "2147483647", headers=admin)).status_code == 404
