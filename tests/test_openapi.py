"""The OpenAPI schema every deployment serves (/openapi.json): each request body has an example, and each example
is one its route would take — read by the route's own model — so that the examples cannot drift from the API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from callout.compose import Part, build
from services.alerts import app as alerts
from services.alerts.settings import AlertsSettings
from services.directory import app as directory
from services.directory.schedules import read_calendar
from services.intake import app as intake
from services.intake.routes import read_eido, read_event
from services.reports import app as reports
from shared.tables import Agency

DOCUMENT = "urn:callout:openapi"  # what the served schema is named for its references to resolve within it
# The agency a CAD's example is read for: its own code for a DV call known, as make_program's is.
AGENCY = Agency(slug="metro", code_map={"10-16": "DVA"})
# Routes that read their body themselves (a signature over its bytes comes first), each read as its route reads it.
READ_BY_HAND: dict[tuple[str, str], Callable[[Any], object]] = {
    ("post", "/v1/cad/{agency}/events"): lambda example: read_event(json.dumps(example).encode(), AGENCY),
    ("post", "/v1/cad/{agency}/eido"): lambda example: read_eido(json.dumps(example).encode(), AGENCY),
    ("put", "/v1/directory/agencies/{slug}/areas/{code}/calendars/{name}"): lambda example: read_calendar(
        example.encode()
    ),
}
# Routes that change something but whose body the schema does not describe, and why.
WITHOUT_A_BODY = {
    ("post", "/v1/directory/agencies/{slug}/advocates/{key}/feed"): "takes none",
    ("post", "/v1/directory/agencies/{slug}/advocates/{key}/tests"): "takes none",
    ("post", "/v1/cad/{agency}/heartbeat"): "any body, signed: only the signature is read",
    ("post", "/v1/twilio/sms-status"): "Twilio's own form, as Twilio documents it",
    ("post", "/v1/twilio/call-status"): "Twilio's own form, as Twilio documents it",
    ("post", "/v1/twilio/voice/gather"): "Twilio's own form, as Twilio documents it",
    ("post", "/v1/twilio/bridge"): "Twilio's own form, as Twilio documents it",
    ("post", "/v1/twilio/sms"): "Twilio's own form, as Twilio documents it",
}
CHANGES = {"post", "put", "patch"}


@dataclass(frozen=True)
class Body:
    method: str
    path: str
    media_type: str
    pointer: str  # where its schema is in the document
    examples: list[Any]


def served_bodies(document: dict[str, Any]) -> Iterator[Body]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                examples = [
                    *([content["example"]] if "example" in content else []),
                    *(e["value"] for e in content.get("examples", {}).values()),
                    *resolved(document, content["schema"]).get("examples", []),
                ]
                pointer = "/".join(("#/paths", escaped(path), method, "requestBody/content", escaped(media_type)))
                yield Body(method, path, media_type, f"{pointer}/schema", examples)


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if not isinstance(reference, str):
        return schema
    found: dict[str, Any] = document
    for part in reference.removeprefix("#/").split("/"):
        found = found[part]
    return found


def escaped(name: str) -> str:
    """A name as one step of a JSON pointer (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer`, its references ("#/components/schemas/…") read in the document."""
    resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT, resource)
    return Draft202012Validator({"$ref": DOCUMENT + pointer}, registry=registry)


def declared_bodies() -> dict[tuple[str, str], TypeAdapter[Any]]:
    """Each route whose body FastAPI reads, and the type it reads it as (a form's is the model FastAPI builds)."""
    services = (intake.service(), directory.service(), alerts.service(), reports.service())
    declared: dict[tuple[str, str], TypeAdapter[Any]] = {}
    for route in (route for service in services for router in service.routers for route in router.routes):
        if isinstance(route, APIRoute) and route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            assert annotation is not None
            read_as = TypeAdapter[Any](annotation)
            declared |= {(method.lower(), route.path): read_as for method in route.methods or ()}
    return declared


async def served(part: Part, settings: AlertsSettings) -> dict[str, Any]:
    """/openapi.json as a deployment serves it (the schema needs no database)."""
    app = build(part, settings, "postgresql://unused@127.0.0.1/unused", run_worker=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://callout") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(params=[Part.all, Part.intake, Part.directory, Part.alerts, Part.reports], ids=str)
async def document(request: pytest.FixtureRequest, settings: AlertsSettings) -> dict[str, Any]:
    """The schema of the whole app, or of one service alone: each is served."""
    return await served(request.param, settings)


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, described in document["paths"].items() for method in described}


async def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    assert [f"{b.method} {b.path} ({b.media_type})" for b in served_bodies(document) if not b.examples] == []


async def test_every_example_is_one_the_schema_and_the_routes_own_model_take(document: dict[str, Any]) -> None:
    declared = declared_bodies()
    for body in served_bodies(document):
        key = (body.method, body.path)
        read = READ_BY_HAND.get(key) or (declared[key].validate_python if key in declared else None)
        assert read is not None, f"{body.method} {body.path}: no model known to read its body"
        for example in body.examples:
            check = validator(document, body.pointer)
            assert [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(example)] == [], key
            read(example)  # raises (a ValidationError, an Invalid problem) if the route would refuse it


async def test_every_example_of_a_named_schema_is_one_it_takes(document: dict[str, Any]) -> None:
    """Answers' examples too (a PolicyOut is a PolicyIn and more: it has its own, not PolicyIn's)."""
    for name, schema in document["components"].get("schemas", {}).items():
        for example in schema.get("examples", []):
            check = validator(document, f"#/components/schemas/{escaped(name)}")
            assert [e.message for e in check.iter_errors(example)] == [], name


async def test_a_route_that_changes_something_documents_its_body_or_is_known_to_take_none(
    document: dict[str, Any],
) -> None:
    """A route that reads its body itself shows none to FastAPI: this is what makes it say what it takes."""
    described = document["paths"]
    undocumented = {
        (method, path)
        for method, path in operations(document)
        if method in CHANGES and "requestBody" not in described[path][method]
    }

    assert undocumented <= set(WITHOUT_A_BODY)


async def test_the_whole_app_documents_the_body_of_every_route_that_reads_one(settings: AlertsSettings) -> None:
    """Nothing left out of the walk above (a body it did not find), and nothing in its lists that is gone."""
    document = await served(Part.all, settings)
    in_schema = operations(document)
    documented = {(b.method, b.path) for b in served_bodies(document) if b.examples}

    assert documented == (set(declared_bodies()) & in_schema) | set(READ_BY_HAND)
    assert len(documented) >= 16
    assert set(WITHOUT_A_BODY) <= in_schema
    assert set(WITHOUT_A_BODY).isdisjoint(documented)
