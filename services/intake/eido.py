"""NENA EIDO (NENA-STA-021) documents read onto the same CAD event as schema v1.

Only what Callout needs is read — incident type, status, priority, beat, the incident's location, the persons'
roles and languages, cautions, unit statuses — through models that name just those fields. Everything else in a
document (the NIEM person's citizenship, immigration status, SSN, race, religion, and the rest) is never read,
so it is never stored or logged: the raw body is kept as its hash only."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any
from xml.etree.ElementTree import Element

import langcodes
from defusedxml import ElementTree  # type: ignore[import-untyped]  # ships no types
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic.config import JsonDict

from services.intake.schemas import CadEvent, EventStatus, integer_as_text
from shared.text import Storable

Id = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(max_length=500)]
PIDF_LO_MAX = 64 * 1024
PriorityText = Annotated[
    Text,
    BeforeValidator(integer_as_text),
    WithJsonSchema({"anyOf": [TypeAdapter(Text).json_schema(), {"type": "integer"}]}, mode="validation"),
]


class Lenient(Storable):
    """A part of an EIDO document: the fields named are checked, the rest are ignored (and so never kept)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Ref(Lenient):
    ref: Id = Field(alias="$ref")


class Component(Lenient):
    id: Id = Field(alias="$id")
    last_update: AwareDatetime = Field(alias="lastUpdateTimeStamp")


class Incident(Component):
    common_type: Text = Field(alias="incidentTypeCommonRegistryText")
    internal_code: Text | None = Field(default=None, alias="incidentTypeInternalCode")
    internal_text: Text | None = Field(default=None, alias="incidentTypeInternalText")
    statuses: list[Text] = Field(default_factory=list, alias="incidentStatusCommonRegistryText", max_length=20)
    internal_id: Text | None = Field(default=None, alias="internalIncidentId")
    # Either kept as text. NENA's schema makes the internal priority a string and the common one an integer, but
    # CADs send the one as a number and the other as a string of digits; a boolean is neither (pydantic would
    # read true as 1).
    priority_text: PriorityText | None = Field(default=None, alias="incidentPriorityInternalText")
    priority_number: PriorityText | None = Field(default=None, alias="incidentCommonPriorityNumber")
    beat: Text | None = Field(default=None, alias="beatOrDispatchGroupText")
    locations: list[Ref] = Field(default_factory=list, alias="locationReference", max_length=50)
    persons: list[Ref] = Field(default_factory=list, alias="personReference", max_length=50)


class Location(Component):
    by_value: Annotated[str, StringConstraints(max_length=PIDF_LO_MAX)] | None = Field(
        default=None, alias="locationByValue"
    )


class Value(Lenient):
    value: Any = None
    simple_type: Any = Field(default=None, alias="simpleType")


class Language(Lenient):
    codes: list[Value] = Field(default_factory=list, alias="languageCode", max_length=10)


class NiemPerson(Lenient):
    """Of the NIEM person, only the language: nothing else of who they are is read."""

    primary_language: list[Language] = Field(default_factory=list, alias="primaryLanguage", max_length=10)
    english: list[Value] = Field(default_factory=list, alias="isLanguageEnglish", max_length=10)


class Person(Component):
    roles: list[Text] = Field(alias="personIncidentRoleRegistryText", max_length=10)
    niem: NiemPerson | None = Field(default=None, alias="ncPersonComponent")


class Caution(Component):
    common_type: Text = Field(alias="cautionTypeCommonRegistryText")


class Resource(Component):
    kind: Text = Field(alias="emergencyResourceTypeCommonRegistryText")
    name: Text | None = Field(default=None, alias="emergencyResourceName")
    status: Text = Field(alias="primaryUnitStatusRegistryText")


# The API schema's example: a DV call as a CAD that speaks EIDO sends it (the least NENA's schema asks of a
# document, and what Callout reads).
PROLOGUE: JsonDict = {
    "lastUpdateTimeStamp": "2026-11-16T11:58:00-05:00",
    "updatedByAgencyReference": {"$ref": "metro.example"},
}
EXAMPLE: JsonDict = {
    "$id": "urn:emergency:uid:incidentid:24-001234:metro.example",
    **PROLOGUE,
    "eidoVersion": "1.0",
    "issuingElementIdentification": "cad.metro.example",
    "agencyComponent": [
        {"$id": "metro.example", **PROLOGUE, "agencyRoleDescriptionRegistryText": ["Dispatch"], "agencyType": ["psap"]}
    ],
    "incidentComponent": {
        "$id": "urn:emergency:uid:incidentid:24-001234:metro.example",
        **PROLOGUE,
        "incidentTypeCommonRegistryText": "DVA",
        "incidentTypeInternalCode": "10-16",
        "incidentTypeInternalText": "Domestic disturbance",
        "incidentStatusCommonRegistryText": ["Dispatched"],
        "internalIncidentId": "24-001234",
        "incidentPriorityInternalText": "P1",
        "incidentCommonPriorityNumber": 1,
        "beatOrDispatchGroupText": "1",
        "locationReference": [{"$ref": "loc-incident"}],
        "personReference": [{"$ref": "person-victim"}, {"$ref": "person-suspect"}],
    },
    "locationComponent": [
        {
            "$id": "loc-incident",
            **PROLOGUE,
            "locationTypeDescriptionRegistryText": "Incident",
            "locationByValue": '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
            ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml"'
            ' entity="pres:caller@metro.example"><gp:geopriv><gp:location-info>'
            '<civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"><country>US</country>'
            "<A1>IL</A1><A3>Springfield</A3><RD>Ziggurat</RD><STS>Lane</STS><HNO>1234</HNO><UNIT>Apt 9</UNIT>"
            "<PC>62704</PC></civicAddress><gml:Point><gml:pos>39.78 -89.65</gml:pos></gml:Point>"
            "</gp:location-info></gp:geopriv></presence>",
        }
    ],
    "personComponent": [
        {
            "$id": "person-victim",
            **PROLOGUE,
            "personIncidentRoleRegistryText": ["Victim"],
            "ncPersonComponent": {
                "primaryLanguage": [{"languageCode": [{"simpleType": "spa"}]}],
                "isLanguageEnglish": [{"value": False}],
            },
        },
        {"$id": "person-suspect", **PROLOGUE, "personIncidentRoleRegistryText": ["Suspect"]},
    ],
    "cautionComponent": [
        {
            "$id": "caution-1",
            **PROLOGUE,
            "cautionTypeInternalText": "GUN",
            "cautionTypeCommonRegistryText": "Firearm",
            "cautionSeverity": "high",
        }
    ],
    "emergencyResourceComponent": [
        {
            "$id": "unit-a12",
            **PROLOGUE,
            "agentReference": [{"$ref": "a12@metro.example"}],
            "emergencyResourceTypeCommonRegistryText": "Law",
            "emergencyResourceName": "A12",
            "primaryUnitStatusRegistryText": "Enroute",
            "resourceAttributeRegistryText": ["Patrol"],
            "secondaryUnitStatusRegistryText": ["Emergent"],
        }
    ],
}


class Document(Component):
    """An EIDO document (NENA-STA-021): only the fields named here are read; any others are ignored."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    incident: Incident | None = Field(default=None, alias="incidentComponent")
    locations: list[Location] = Field(default_factory=list, alias="locationComponent", max_length=100)
    persons: list[Person] = Field(default_factory=list, alias="personComponent", max_length=100)
    cautions: list[Caution] = Field(default_factory=list, alias="cautionComponent", max_length=100)
    resources: list[Resource] = Field(default_factory=list, alias="emergencyResourceComponent", max_length=200)


ROLES = {"victim": "victim", "suspect": "suspect", "caller": "caller"}
# EIDO caution registry entries, by the words they carry, onto the cautions triage knows.
CAUTIONS = (
    (re.compile(r"firearm|gun|weapon", re.I), "FIREARM"),
    (re.compile(r"protect|restrain", re.I), "PROTECTION_ORDER"),
    (re.compile(r"strangl|chok", re.I), "STRANGULATION"),
    (re.compile(r"at ?large|fled|flee", re.I), "SUSPECT_AT_LARGE"),
)
CIVIC = "{urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr}"
GML_POS = "{http://www.opengis.net/gml}pos"


def event_from(document: Document, code_map: dict[str, str]) -> CadEvent:
    """The v1 event an EIDO document amounts to; ValidationError (naming fields, never values) if it cannot."""
    incident = document.incident
    if incident is None:
        raise ValidationError.from_exception_data(
            "EIDO", [{"type": "missing", "loc": ("incidentComponent",), "input": None}]
        )
    locations = {loc.id: loc for loc in document.locations}
    people = {p.id: p for p in document.persons}
    statuses = {s.lower() for s in incident.statuses}
    return CadEvent.model_validate(
        {
            "incident_id": incident.internal_id or incident.id,
            "status": (
                EventStatus.cancelled
                if statuses & {"cancelled", "canceled"}
                else EventStatus.closed
                if statuses & {"closed", "completed"}
                else EventStatus.updated
            ),
            "occurred_at": incident.last_update,
            # The agency's own code when its map knows it, else the common registry's (APCO) code.
            "type_code": incident.internal_code
            if incident.internal_code and " ".join(incident.internal_code.upper().split()) in code_map
            else incident.common_type,
            "type_text": incident.internal_text,
            "priority": incident.priority_text or incident.priority_number,
            "area": incident.beat,
            "location": next(
                (place for ref in incident.locations if (place := civic_address(locations.get(ref.ref)))), None
            ),
            "persons": [person_of(people[ref.ref]) for ref in incident.persons if ref.ref in people],
            "cautions": sorted(
                {code for c in document.cautions for pattern, code in CAUTIONS if pattern.search(c.common_type)}
            ),
            "units": [
                {"unit": r.name or r.id[-64:], "kind": r.kind[:64], "status": r.status[:64], "at": r.last_update}
                for r in document.resources
            ],
        }
    )


def person_of(person: Person) -> dict[str, Any]:
    roles = [ROLES.get(role.lower()) for role in person.roles]
    out: dict[str, Any] = {"role": next((r for r in roles if r), "other")}
    niem = person.niem
    if niem is not None:
        codes = [c.simple_type or c.value for lang in niem.primary_language for c in lang.codes]
        if codes and isinstance(codes[0], str):
            out["language"] = bcp47(codes[0])
        english = [e.value for e in niem.english if isinstance(e.value, bool)]
        if english:
            out["interpreter_needed"] = not english[0]
    return out


def bcp47(code: str) -> str | None:
    """ISO 639-3 ("spa") as the shortest BCP 47 tag ("es"); None when it is no language tag at all."""
    try:
        return langcodes.standardize_tag(code)
    except (ValueError, LookupError):
        return None


def civic_address(location: Location | None) -> dict[str, Any] | None:
    """The PIDF-LO civic address (RFC 5139) and point of a location given by value; None when there is none."""
    if location is None or not location.by_value:
        return None
    try:
        root: Element = ElementTree.fromstring(location.by_value)
    except (ElementTree.ParseError, ValueError):  # defusedxml refuses entities and DTDs with ValueError kinds
        return None
    civic = root.find(f".//{CIVIC}civicAddress")
    address: dict[str, Any] = {}
    if civic is not None:

        def part(name: str) -> str:
            found = civic.find(f"{CIVIC}{name}")
            return (found.text or "").strip() if found is not None else ""

        street = " ".join(
            p for p in (part("HNO") + part("HNS"), part("PRD"), part("RD"), part("STS"), part("POD")) if p
        )
        unit = " ".join(p for p in (part("BLD"), part("FLR"), part("UNIT"), part("ROOM")) if p)
        address = {
            "address": street or None,
            "unit": unit or None,
            "city": part("A3") or None,
            "state": part("A1") or None,
            "postal_code": part("PC") or None,
        }
    pos = root.find(f".//{GML_POS}")
    if pos is not None and pos.text and len(coordinates := pos.text.split()) >= 2:
        with contextlib.suppress(ValueError):
            address |= {"lat": float(coordinates[0]), "lon": float(coordinates[1])}
    kept = {k: v for k, v in address.items() if v is not None}
    return kept or None
