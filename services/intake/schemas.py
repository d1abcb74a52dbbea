"""The CAD event, schema v1 (docs/product.md, "The CAD contract"): strict, bounded, and nothing unknown accepted."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from shared.text import AreaCode, Storable

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
# BCP 47: a primary subtag and optional subtags ("es", "zh-Hant", "pt-BR").
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", max_length=35)]
Answer = Literal["yes", "no", "not_answered"]


def integer_as_text(value: object) -> object:
    """A priority as a CAD sends it: many send a number (1), others a code ("P1"); either is kept as text ("1").
    A boolean is no priority (True is an int to Python, and would be kept as "1"), and neither is a number with a
    fraction: 1.5 or 1.0 has no one text that is surely the CAD's."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PydanticCustomError("string_or_integer", "Input should be a string or an integer")


Priority = Annotated[
    Short,
    BeforeValidator(integer_as_text),
    WithJsonSchema({"anyOf": [TypeAdapter(Short).json_schema(), {"type": "integer"}]}, mode="validation"),
]
PRIORITY = 'The call\'s priority as the CAD gives it, a string ("P1") or an integer (1); kept as text ("1").'


class Strict(Storable):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventStatus(StrEnum):
    new = "new"
    updated = "updated"
    closed = "closed"
    cancelled = "cancelled"


class Location(Strict):
    address: Text | None = None
    unit: Short | None = None
    city: Short | None = None
    state: Short | None = None
    postal_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class SafeContact(Strict):
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    window: Text | None = None
    notes: Text | None = None


class Person(Strict):
    role: Literal["victim", "suspect", "caller", "other"]
    language: Language | None = None
    interpreter_needed: bool | None = None
    consents_to_contact: bool | None = None
    safe_contact: SafeContact | None = None


class Screen(Strict):
    instrument: Short
    version: Short | None = None
    answers: dict[Annotated[str, StringConstraints(pattern=r"^q([1-9]|1[01])$")], Answer] = Field(default_factory=dict)
    officer_belief: bool | None = None
    level: Short | None = None


class UnitStatus(Strict):
    unit: Short
    kind: Short | None = None
    status: Short
    at: AwareDatetime | None = None


# The API schema's examples: a new DV call, with everything a CAD may tell, and a later event that closes it.
NEW_CALL: JsonDict = {
    "incident_id": "24-001234",
    "status": "new",
    "occurred_at": "2026-11-16T11:58:00-05:00",
    "type_code": "10-16",
    "type_text": "Domestic disturbance",
    "priority": 1,
    "area": "1",
    "location": {
        "address": "1234 Ziggurat Lane",
        "unit": "Apt 9",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62704",
        "lat": 39.78,
        "lon": -89.65,
    },
    "persons": [
        {
            "role": "victim",
            "language": "es",
            "interpreter_needed": True,
            "consents_to_contact": True,
            "safe_contact": {"phone": "+12025557777", "window": "weekday mornings", "notes": "a friend's phone"},
        },
        {"role": "suspect"},
    ],
    "screen": {"instrument": "LAP", "version": "2.0", "answers": {"q1": "no", "q5": "yes"}, "officer_belief": True},
    "cautions": ["FIREARM", "PROTECTION_ORDER"],
    "advocate_requested": "on_scene",
    "units": [{"unit": "A12", "kind": "patrol", "status": "on_scene", "at": "2026-11-16T12:09:00-05:00"}],
}
CLOSED_CALL: JsonDict = {
    "incident_id": "24-001234",
    "status": "closed",
    "occurred_at": "2026-11-16T13:40:00-05:00",
    "type_code": "10-16",
    "priority": "P1",
    "units": [{"unit": "A12", "status": "available", "at": "2026-11-16T13:38:00-05:00"}],
}


class CadEvent(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [NEW_CALL, CLOSED_CALL]})

    incident_id: Short
    status: EventStatus
    occurred_at: AwareDatetime
    type_code: Short
    type_text: Text | None = None
    priority: Priority | None = Field(default=None, description=PRIORITY)
    area: AreaCode | None = Field(default=None, description="Letters, digits, spaces and . - _ (1-64).")
    location: Location | None = None
    persons: list[Person] = Field(default_factory=list, max_length=50)
    screen: Screen | None = None
    cautions: list[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,32}$")]] = Field(
        default_factory=list, max_length=50
    )
    advocate_requested: Literal["on_scene", "phone"] | None = None
    units: list[UnitStatus] = Field(default_factory=list, max_length=100)

    @property
    def victim(self) -> Person | None:
        return next((p for p in self.persons if p.role == "victim"), None)


class EventReceipt(BaseModel):
    """What intake answers with 202: the incident and what Callout did about it."""

    incident_ref: str
    status: str
    dv: bool
    tier: str
    reasons: list[str]
    callout: dict[str, Any] | None = Field(
        default=None, description="The callout queued by this event: its code and tier, or none."
    )
    received_at: datetime


class TimelineEntryOut(BaseModel):
    stage: str
    observed_at: datetime
    source_at: datetime | None
    data: dict[str, Any]


class TimelineOut(BaseModel):
    incident_ref: str
    agency: str
    status: str
    tier: str
    entries: list[TimelineEntryOut]


class AssessmentOut(BaseModel):
    id: int
    instrument: str
    instrument_version: str | None
    rule: str
    rule_version: str
    answers: dict[str, str] = Field(description='Every answer; "not_answered" is never "no".')
    officer_belief: bool | None
    level: str | None
    screened_in: bool
    reasons: list[str]
    created_at: datetime
    override: AssessmentOverride | None = None


OVERRIDE: JsonDict = {
    "screened_in": True,
    "by": "advocate",
    "name": "R. Alvarez",
    "reason": "Strangulation last week, told to the advocate by phone; the screen was taken before it came out.",
}


class AssessmentOverrideIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [OVERRIDE]})

    screened_in: bool = Field(description="The result a person judges right, whatever the rule computed.")
    by: Literal["officer", "advocate"]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]


class AssessmentOverride(AssessmentOverrideIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{**OVERRIDE, "at": "2026-11-16T17:20:00Z"}]})

    at: datetime


AssessmentOut.model_rebuild()
