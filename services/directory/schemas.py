"""The directory's API shapes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NaiveDatetime,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from shared.phones import E164
from shared.text import AreaCode, Storable

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", max_length=35)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Role = Literal["primary", "backup", "supervisor"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
StartTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
EndTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


# The years a schedule may name: any program's, and far enough from datetime's own ends that no turn, override or
# day built from them can overflow (a rotation's handoff in 9999 once broke every on-call answer of its area).
YEARS = range(2000, 2101)


def in_years(moment: datetime) -> datetime:
    if moment.year not in YEARS:
        raise ValueError(f"must be in the years {YEARS.start} to {YEARS.stop - 1}")
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(in_years)]
WallClock = Annotated[NaiveDatetime, AfterValidator(in_years)]


def known_timezone(name: str) -> str:
    if name not in available_timezones():
        raise ValueError("must be an IANA time zone such as America/Chicago")
    return name


def upper_keys(code_map: dict[str, str]) -> dict[str, str]:
    return {" ".join(k.upper().split()): v.upper() for k, v in code_map.items()}


CodeMap = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], str], AfterValidator(upper_keys)
]


class In(Storable):
    model_config = ConfigDict(extra="forbid")


class ProgramIn(In):
    """What the program itself keeps of its agency: the hotline, and whom to tell when its CAD falls silent."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"hotline": "+12025550100", "feed_silence_minutes": 120, "it_contact": None}]}
    )

    hotline: E164 = Field(description="The program's 24/7 hotline, alerted when nobody else can be reached.")
    feed_silence_minutes: int | None = Field(
        default=None,
        ge=5,
        le=7 * 24 * 60,
        description="The CAD feed is silent after this long without an event or heartbeat; none: only when far "
        "longer than its usual gap for the hour of the week.",
    )
    it_contact: E164 | None = Field(default=None, description="Also texted when the CAD feed falls silent.")


class ProgramOut(BaseModel):
    hotline: str
    feed_silence_minutes: int | None
    it_contact: str | None


class AgencyIn(ProgramIn):
    """An agency, created or updated. On an update, `feed_silence_minutes` and `it_contact` left out are kept: the
    program keeps them itself (`PUT …/program`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Metro 911",
                    "hotline": "+12025550100",
                    "timezone": "America/Chicago",
                    "code_map": {"10-16": "DVA", "DV-ASSLT": "DVA", "ORDER VIOL": "ORDERV"},
                    "notify_url": "https://cad.metro.example/callout/events",
                }
            ]
        }
    )

    name: Name
    timezone: Annotated[str, AfterValidator(known_timezone)] = "UTC"
    code_map: CodeMap | None = Field(
        default=None, max_length=500, description="Agency type codes to APCO codes; default: the DV codes."
    )
    webhook_secret: str | None = Field(
        default=None, description="Set the webhook secret (whsec_...); omitted, a new agency gets a fresh one."
    )
    notify_url: AnyHttpUrl | None = Field(
        default=None, description="Where Callout posts signed events when an advocate accepts, is en route, on scene."
    )


class AgencyOut(BaseModel):
    slug: str
    name: str
    hotline: str
    timezone: str
    code_map: dict[str, str]
    notify_url: str | None = None
    feed_silence_minutes: int | None = None
    it_contact: str | None = None
    webhook_secret: str | None = Field(default=None, description="Shown once: when created or set.")


class AreaIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Downtown"}]})

    name: Name


class AreaOut(BaseModel):
    code: str
    name: str


class AdvocateIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Luis Ortega", "phone": "+12025550102", "languages": ["es", "en"], "areas": ["1", "2"]}
            ]
        }
    )

    name: Name
    phone: E164
    languages: list[Language] = Field(default_factory=lambda: ["en"], min_length=1, max_length=20)
    areas: list[AreaCode] = Field(max_length=200)
    active: bool = True


class AdvocateOut(BaseModel):
    key: str
    name: str
    phone: str
    languages: list[str]
    areas: list[str]
    active: bool
    phone_verified: bool = Field(default=False, description="Whether they proved the phone by texting back its code.")


class ShiftIn(In):
    advocate: Key
    role: Role
    day: Day
    start: StartTime = "00:00"
    end: EndTime = Field(default="24:00", description="At or before start: the shift ends the next day.")

    @property
    def start_minute(self) -> int:
        return DAYS.index(self.day) * 1440 + minutes(self.start)

    @property
    def minutes(self) -> int:
        length = (minutes(self.end) - minutes(self.start)) % 1440
        return length or 1440


class ScheduleIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "shifts": [
                        {"advocate": "luis", "role": "primary", "day": "mon", "start": "08:00", "end": "20:00"},
                        {"advocate": "dana", "role": "primary", "day": "mon", "start": "20:00", "end": "08:00"},
                        {"advocate": "mei", "role": "backup", "day": "mon"},
                        {"advocate": "ada", "role": "supervisor", "day": "mon"},
                    ]
                }
            ]
        }
    )

    shifts: list[ShiftIn] = Field(max_length=2000)


DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def minutes(hour_minute: str) -> int:
    hours, mins = re.split(":", hour_minute)
    return int(hours) * 60 + int(mins)


Timezone = Annotated[str, AfterValidator(known_timezone)]


ROTATION: JsonDict = {
    "role": "backup",
    "participants": ["mei", "dana", "luis"],
    "unit": "weeks",
    "length": 1,
    "handoff": "2026-11-16T09:00:00",
    "timezone": "America/Chicago",
}


class RotationIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [ROTATION]})

    role: Role
    participants: list[Key] = Field(min_length=1, max_length=100, description="Advocate keys, in turn order.")
    unit: Literal["hours", "days", "weeks"] = Field(description="Days and weeks hand off at the same wall time.")
    length: int = Field(default=1, ge=1, le=1000, description="How many units each turn lasts.")
    handoff: WallClock = Field(
        description="The first handoff, wall-clock time in `timezone` (2026-11-16T09:00); nobody before it."
    )
    timezone: Timezone | None = Field(default=None, description="IANA time zone; the agency's by default.")


class RotationOut(RotationIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{**ROTATION, "name": "backups"}]})

    name: str
    timezone: str


OVERRIDE: JsonDict = {
    "area": "1",
    "role": "primary",
    "advocate": "mei",
    "replaces": "luis",
    "starts_at": "2026-11-20T18:00:00-06:00",
    "ends_at": "2026-11-21T08:00:00-06:00",
    "note": "covering a training night",
}


class OverrideIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [OVERRIDE]})

    area: AreaCode
    role: Role
    advocate: Key = Field(description="Who takes the role.")
    replaces: Key | None = Field(default=None, description="Who they cover for; none: added to whoever is on.")
    starts_at: Moment
    ends_at: Moment
    note: str | None = Field(default=None, max_length=200, description="Why (no personal data).")

    @model_validator(mode="after")
    def ordered(self) -> OverrideIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > timedelta(days=366):
            raise ValueError("an override lasts a year at most: for longer, change the schedule")
        return self


class OverrideOut(OverrideIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{**OVERRIDE, "id": 7}]})

    id: int


class CalendarOut(BaseModel):
    name: str
    role: Role
    events: int = Field(description="Events in the calendar (a recurring event counts once).")
    unmatched: list[str] = Field(description="Summaries of events naming no advocate of the area: nobody on call.")


class FeedOut(BaseModel):
    url: str = Field(description="The advocate's own shift feed: subscribe to it in a calendar app. Shown once.")


ADDRESS: JsonDict = {
    "address": "1234 Ziggurat Lane",
    "unit": "Apt 9",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62704",
}


class Address(In):
    """An address as a CAD sends it. Callout keeps only its premise key, never the address."""

    model_config = ConfigDict(json_schema_extra={"examples": [ADDRESS]})

    address: str = Field(min_length=1, max_length=500)
    unit: str | None = Field(default=None, max_length=64)
    city: str | None = Field(default=None, max_length=64)
    state: str | None = Field(default=None, max_length=64)
    postal_code: str | None = Field(default=None, max_length=16)


class PremiseFlagIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "address": ADDRESS,
                    "kind": "protection_order",
                    "source": "court order 2026-114",
                    "expires_at": "2027-05-14T00:00:00-05:00",
                }
            ]
        }
    )

    address: Address
    kind: Literal["dv_history", "firearm", "protection_order", "prior_strangulation", "other"]
    source: str = Field(min_length=1, max_length=200, description='Who says so: "court order 2026-114", "RMS".')
    expires_at: Moment | None = Field(default=None, description="None: until removed.")


class PremiseFlagOut(BaseModel):
    id: int
    kind: str
    source: str
    created_at: datetime
    expires_at: datetime | None


class OnCall(BaseModel):
    advocate_id: int
    key: str
    name: str
    phone: str
    role: Role
    languages: list[str]
    language_match: bool | None = Field(description="Whether the advocate speaks the language asked for, if any.")
    reason: str
    phone_verified: bool = Field(default=False, description="Whether they proved the phone by texting back its code.")


class CoverageGap(BaseModel):
    """A stretch of time in which nobody is on call in a role in an area."""

    area: str
    role: Role
    starts_at: datetime
    ends_at: datetime


class LanguageGap(BaseModel):
    """A stretch of time in which no advocate on call in an area (primary or backup) speaks a language its calls
    needed in the last 90 days."""

    area: str
    language: str
    starts_at: datetime
    ends_at: datetime


class CoverageOut(BaseModel):
    agency: str
    timezone: str
    checked_at: datetime
    until: datetime
    gaps: list[CoverageGap] = Field(description="Every area, role and time with nobody on call, soonest first.")
    language_gaps: list[LanguageGap]


class ShiftAhead(BaseModel):
    """Someone on call soon whose phone may fail them: not proven yet, or a channel that cannot reach it."""

    advocate_id: int
    key: str
    role: Role
    area: str
    starts_at: datetime
    ends_at: datetime
    phone_verified: bool
    unreachable: list[str] = Field(description="The channels (sms, voice) that cannot reach their phone.")


class CoverRequestOut(BaseModel):
    """An advocate's ask for cover of one shift, and what came of it."""

    id: int
    area: str
    role: Role
    advocate_id: int = Field(description="Who asked.")
    advocate: str = Field(description="Who asked (their key).")
    starts_at: datetime
    ends_at: datetime
    status: Literal["open", "filled", "withdrawn"]
    asked_at: datetime
    asked_via: str = Field(description='"page", or "COVER text" (the page opened from the answer to COVER).')
    offered: list[str] = Field(description="The keys of everyone asked: the eligible others, when it was asked.")
    filled_by: str | None = Field(description="Who took it (their key); an override puts them on call.")
    filled_at: datetime | None


class ContactWatchOut(BaseModel):
    """What the alerts service needs to tell supervisors about their people's phones."""

    agency: str
    timezone: str
    hotline: str
    at: datetime
    at_risk: list[ShiftAhead] = Field(description="On call within the hours asked, with a phone that may fail.")
    supervisors: dict[str, list[OnCall]] = Field(description="Each area's supervisors on call now.")
    areas_of: dict[int, list[str]] = Field(description="Each active advocate's areas, by advocate id.")
    keys: dict[int, str] = Field(description="Each active advocate's key, by advocate id.")
    gaps: list[CoverageGap] = Field(description="Nobody on call in a role and area, starting within 48 hours.")
    unfilled_cover: list[CoverRequestOut] = Field(
        default_factory=list, description="Cover asked for and not taken, for shifts starting within 24 hours."
    )


class ContactTestOut(BaseModel):
    """A test text and call to an advocate's phone; each result is null until the provider says."""

    id: int
    advocate: str
    requested_at: datetime
    requested_by: str
    text_result: str | None = Field(description='"sent", "delivered", or "failed: ..." (null: not yet known).')
    text_at: datetime | None
    call_result: str | None = Field(
        description='"ringing", "answered" (a key was pressed), "answered without a key press", "voicemail", or '
        '"failed: ..." (null: not yet known).'
    )
    call_at: datetime | None


class OnCallOut(BaseModel):
    agency: str
    area: str | None
    at: AwareDatetime | datetime
    language: str | None
    chain: list[OnCall] = Field(
        description="Who is on call, in order: primaries, backups, supervisors; speakers first."
    )
    hotline: str
    policy: PolicyOut | None = Field(default=None, description="How the tier asked for escalates here.")


Tier = Literal["immediate", "priority", "follow_up"]


class Step(In):
    notify: list[Literal["primary", "backup", "supervisor", "hotline"]] = Field(min_length=1, max_length=4)
    via: list[Literal["sms", "voice"]] = Field(min_length=1, max_length=2)
    wait_seconds: int = Field(ge=1, le=7 * 24 * 3600, description="How long to wait for an acceptance.")


POLICY: JsonDict = {
    "steps": [
        {"notify": ["primary"], "via": ["sms", "voice"], "wait_seconds": 120},
        {"notify": ["backup"], "via": ["sms"], "wait_seconds": 180},
        {"notify": ["supervisor", "hotline"], "via": ["sms", "voice"], "wait_seconds": 300},
    ],
    "repeat": 1,
}


class PolicyIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [POLICY]})

    steps: list[Step] = Field(min_length=1, max_length=10)
    repeat: int = Field(default=0, ge=0, le=5, description="How many times to run the steps again.")


class PolicyOut(PolicyIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{**POLICY, "tier": "immediate", "source": "agency"}]})

    tier: Tier
    source: Literal["default", "agency", "area"]
