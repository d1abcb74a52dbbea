"""NENA EIDO intake: documents built on NENA's own schema, read onto the same event as schema v1; the NIEM
person's citizenship, immigration, SSN, race and religion never stored or logged; repeats of one incident update it."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from services.alerts.worker import Worker
from services.intake import eido
from shared.crypto import sealer
from shared.db import libpq_url
from tests.factories import PHONES, make_program, signed
from tests.fake_twilio import FakeTwilio

SCHEMA = Path(__file__).parent / "eido"  # NENA-STA-021's OpenAPI file and the NIEM components it uses
# Values that must never be kept: they are in the document, and nowhere else afterwards.
CANARIES = {
    "ssn": "078-05-1120",
    "citizenship": "Freedonia",
    "nationality": "Sylvania",
    "passport": "P-CANARY-55",
    "religion": "Canary Faith",
}


def fixed(node: Any) -> Any:
    """NENA's file writes one `minItems: 1,` (a string): read it as the number it means."""
    if isinstance(node, dict):
        return {
            k: int(v.rstrip(",")) if k in ("minItems", "maxItems") and isinstance(v, str) else fixed(v)
            for k, v in node.items()
        }
    return [fixed(x) for x in node] if isinstance(node, list) else node


# libyaml's loader where PyYAML has it (its wheels do): NENA's 0.9 MB of YAML in a tenth of the pure-Python time.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def schema_file(uri: str) -> Resource[Any]:
    """One of NENA's files, read once per run. A validator's registry is immutable: what it fetches while
    validating one document is forgotten by the next, so without this every check parsed the NIEM files again."""
    return Resource.from_contents(fixed(yaml.load((SCHEMA / uri).read_text(), Loader=YAML_LOADER)), DRAFT4)  # noqa: S506  # a safe loader, libyaml's


@cache
def validator() -> Draft4Validator:
    registry: Registry[Any] = Registry(retrieve=schema_file).with_resource("openapi.yaml", schema_file("openapi.yaml"))  # type: ignore[call-arg]  # attrs hides `retrieve` from mypy
    return Draft4Validator(
        {"$ref": "openapi.yaml#/components/schemas/EmergencyIncidentDataObjectType"}, registry=registry
    )


def conforming(document: dict[str, Any]) -> dict[str, Any]:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]
    assert not errors, errors
    return document


PIDF_LO = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
    ' xmlns:gml="http://www.opengis.net/gml" entity="pres:caller@example.com"><gp:geopriv><gp:location-info>'
    '<civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"><country>US</country><A1>IL</A1>'
    "<A3>Springfield</A3><RD>Ziggurat</RD><STS>Lane</STS><HNO>1234</HNO><UNIT>Apt 9</UNIT><PC>62704</PC>"
    "</civicAddress><gml:Point><gml:pos>39.78 -89.65</gml:pos></gml:Point></gp:location-info></gp:geopriv>"
    "</presence>"
)


def eido_document(*, incident_id: str = "CAD-EIDO-1", statuses: tuple[str, ...] = ("Dispatched",)) -> dict[str, Any]:
    """A DV call as a CAD that speaks EIDO sends it: built on the sample NENA publishes, then checked against the
    schema. The victim's NIEM person carries the fields that must be dropped at the door."""
    document = copy.deepcopy(json.loads((SCHEMA / "sample-call-transfer.json").read_text()))
    prologue = {"lastUpdateTimeStamp": "2026-11-16T11:58:00-05:00", "updatedByAgencyReference": {"$ref": "state.pa.us"}}
    document["incidentComponent"] = {
        "$id": f"urn:emergency:uid:incidentid:{incident_id}:metro.example",
        **prologue,
        "incidentTypeCommonRegistryText": "DVA",
        "incidentTypeInternalCode": "10-16",
        "incidentTypeInternalText": "Domestic disturbance",
        "incidentStatusCommonRegistryText": list(statuses),
        "internalIncidentId": incident_id,
        "incidentPriorityInternalText": "P1",
        "beatOrDispatchGroupText": "1",
        "locationReference": [{"$ref": "loc-incident"}],
        "personReference": [{"$ref": "person-victim"}, {"$ref": "person-suspect"}],
    }
    document["locationComponent"].append(
        {
            "$id": "loc-incident",
            **prologue,
            "locationTypeDescriptionRegistryText": "Incident",
            "locationByValue": PIDF_LO,
        }
    )
    document["personComponent"] += [
        {
            "$id": "person-victim",
            **prologue,
            "personIncidentRoleRegistryText": ["Victim"],
            "ncPersonComponent": {
                "primaryLanguage": [{"languageCode": [{"simpleType": "spa"}]}],
                "isLanguageEnglish": [{"value": False}],
                "ssnIdentification": [{"identificationId": [{"value": CANARIES["ssn"]}]}],
                "citizenship": [{"value": CANARIES["citizenship"]}],
                "nationality": [{"value": CANARIES["nationality"]}],
                "isUsCitizen": [{"value": False}],
                "passportIdentification": [{"identificationId": [{"value": CANARIES["passport"]}]}],
                "raceCode": [{"simpleType": "W"}],
                "religion": [{"value": CANARIES["religion"]}],
                "religionCode": [{"simpleType": "ABC"}],
            },
        },
        {"$id": "person-suspect", **prologue, "personIncidentRoleRegistryText": ["Suspect"]},
    ]
    document["cautionComponent"] = [
        {
            "$id": "caution-1",
            **prologue,
            "cautionTypeInternalText": "GUN",
            "cautionTypeCommonRegistryText": "Firearm",
            "cautionSeverity": "high",
        }
    ]
    document["emergencyResourceComponent"] = [
        {
            "$id": "unit-a12",
            **prologue,
            "agentReference": [{"$ref": "tjones.atroop@state.pa.us"}],
            "emergencyResourceTypeCommonRegistryText": "Law",
            "emergencyResourceName": "A12",
            "primaryUnitStatusRegistryText": "Enroute",
            "resourceAttributeRegistryText": ["Patrol"],
            "secondaryUnitStatusRegistryText": ["Emergent"],
        }
    ]
    return conforming(document)


async def post_eido(client: httpx.AsyncClient, document: dict[str, Any], **signing: Any) -> httpx.Response:
    body = json.dumps(document).encode()
    return await client.post("/v1/cad/metro/eido", content=body, headers=signed(body, **signing))


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def test_an_eido_document_alerts_the_advocate_who_speaks_the_victims_language(
    client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio, admin: dict[str, str]
) -> None:
    response = await post_eido(client, eido_document())
    await worker.run_once()

    assert response.status_code == 202, response.text
    receipt = response.json()
    assert (receipt["dv"], receipt["tier"]) == (True, "follow_up")  # 10-16 is DV here; no screen came with it
    assert [m.to for m in fake_twilio.messages if m.kind == "sms"] == [PHONES["luis"]]  # he speaks Spanish
    timeline = (await client.get(f"/v1/incidents/{receipt['incident_ref']}/timeline", headers=admin)).json()
    received = timeline["entries"][0]["data"]
    assert received["units"] == [{"unit": "A12", "kind": "Law", "status": "Enroute", "at": "2026-11-16T11:58:00-05:00"}]
    assert timeline["entries"][1]["data"]["language"] == "es"


async def test_the_location_persons_and_cautions_are_what_the_details_page_will_have(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await post_eido(client, eido_document())

    details = await fetch(database_url, "SELECT details FROM incidents")
    assert sealer().open(details[0][0]) == {
        "location": {
            "address": "1234 Ziggurat Lane",
            "unit": "Apt 9",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62704",
            "lat": 39.78,
            "lon": -89.65,
        },
        "persons": [{"role": "victim", "language": "es", "interpreter_needed": True}, {"role": "suspect"}],
        "cautions": ["FIREARM"],
        "priority": "P1",
        "type_text": "Domestic disturbance",
    }


async def test_citizenship_immigration_ssn_race_and_religion_are_never_stored_or_logged(
    client: httpx.AsyncClient, database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    response = await post_eido(client, eido_document())
    assert response.status_code == 202

    everything = await fetch(
        database_url,
        "SELECT string_agg(row_to_json(t)::text, ' ') FROM ("
        " SELECT * FROM incidents) t UNION ALL SELECT string_agg(row_to_json(t)::text, ' ') FROM ("
        " SELECT * FROM cad_events) t UNION ALL SELECT string_agg(row_to_json(t)::text, ' ') FROM ("
        " SELECT * FROM timeline_entries) t",
    )
    stored = " ".join(row[0] or "" for row in everything)
    [(sealed,)] = await fetch(database_url, "SELECT details FROM incidents")
    stored += json.dumps(sealer().open(sealed))  # what is stored sealed counts as stored
    logged = "".join(capfd.readouterr())
    assert "1234 Ziggurat" in stored  # the checks see what is stored and what is logged
    assert "/v1/cad/{agency}/eido" in logged
    for field, value in CANARIES.items():
        assert value not in stored, field
        assert value not in logged, field
    for key in ("ssnIdentification", "citizenship", "isUsCitizen", "passportIdentification", "raceCode", "religion"):
        assert key not in stored


async def test_repeated_documents_for_one_incident_update_it_and_a_closing_one_ends_the_callout(
    client: httpx.AsyncClient, worker: Worker, database_url: str
) -> None:
    first = await post_eido(client, eido_document())
    await worker.run_once()
    closed = await post_eido(client, eido_document(statuses=("Closed",)))

    assert closed.json()["incident_ref"] == first.json()["incident_ref"]
    assert closed.json()["status"] == "closed"
    assert await fetch(database_url, "SELECT count(*), min(status) FROM incidents") == [(1, "closed")]
    asked = await fetch(database_url, "SELECT status, end_requested_at IS NOT NULL FROM callouts")
    await worker.run_once()  # intake asks for the end; the worker carries it out
    assert asked == [("alerting", True)]
    assert await fetch(database_url, "SELECT status FROM callouts") == [("cancelled",)]


async def test_documents_that_are_not_eido_or_are_unsigned_are_refused_and_change_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    no_incident = eido_document()
    del no_incident["incidentComponent"]
    wrong_types = eido_document()
    wrong_types["incidentComponent"]["lastUpdateTimeStamp"] = "yesterday"
    body = json.dumps(eido_document()).encode()

    refused = [
        await post_eido(client, no_incident),
        await post_eido(client, wrong_types),
        await post_eido(client, {"just": "json"}),
        await client.post("/v1/cad/metro/eido", content=body, headers={"Content-Type": "application/json"}),
    ]

    assert [r.status_code for r in refused] == [422, 422, 422, 401]
    assert refused[0].json()["errors"][0]["field"] == "incidentComponent"
    assert "yesterday" not in refused[1].text  # errors name the field, never echo the value
    assert await fetch(database_url, "SELECT count(*) FROM incidents") == [(0,)]


@pytest.mark.parametrize(
    ("internal", "common", "kept"),
    [(None, 2, "2"), (1, None, "1"), ("P1", 3, "P1"), (None, "4", "4")],
    ids=["the common number", "an internal number", "the internal text first", "a common number as digits"],
)
async def test_a_priority_comes_as_a_string_or_an_integer_and_is_kept_as_text(
    internal: object, common: object, kept: str, client: httpx.AsyncClient, database_url: str
) -> None:
    document = priority_of(eido_document(), internal, common)

    response = await post_eido(client, document)

    assert response.status_code == 202, response.text
    [(details,)] = await fetch(database_url, "SELECT details FROM incidents")
    assert sealer().open(details)["priority"] == kept


@pytest.mark.parametrize(
    ("internal", "common", "field"),
    [
        (None, True, "incidentCommonPriorityNumber"),  # pydantic alone would read true as 1
        (False, None, "incidentPriorityInternalText"),
        (None, 1.5, "incidentCommonPriorityNumber"),
    ],
)
async def test_a_priority_that_is_no_string_or_integer_is_a_422_naming_it_and_changes_nothing(
    internal: object, common: object, field: str, client: httpx.AsyncClient, database_url: str
) -> None:
    response = await post_eido(client, priority_of(eido_document(), internal, common))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": f"incidentComponent.{field}", "message": "Input should be a string or an integer"}
    ]
    assert await fetch(database_url, "SELECT count(*) FROM incidents") == [(0,)]


async def test_the_example_in_the_api_schema_is_an_eido_document_nenas_schema_and_intake_take(
    client: httpx.AsyncClient,
) -> None:
    response = await post_eido(client, conforming(copy.deepcopy(eido.EXAMPLE)))

    assert response.status_code == 202, response.text
    assert (response.json()["dv"], response.json()["tier"]) == (True, "follow_up")


def priority_of(document: dict[str, Any], internal: object, common: object) -> dict[str, Any]:
    """The document with these priorities (None: without that field)."""
    incident = document["incidentComponent"]
    incident.pop("incidentPriorityInternalText", None)
    for name, value in (("incidentPriorityInternalText", internal), ("incidentCommonPriorityNumber", common)):
        if value is not None:
            incident[name] = value
    return document


async def fetch(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        return [tuple(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()
