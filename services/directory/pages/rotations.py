"""Rotations and the program's own calendars, area by area: who takes turns in which role, who is on turn now
and who is next; each calendar as imported, with the events that put nobody on call. Kept through forms that
validate as the API does (its RotationIn, the same schedules functions) and show its problems by the fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import NaiveDatetime, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from services.directory import schedules
from services.directory.models import Advocate, Area, Calendar, Rotation
from services.directory.pages.common import (
    FIELD_HELP,
    PREFIX,
    Person,
    Refusal,
    Viewer,
    area_of,
    areas_of,
    audit_change,
    changer,
    done_note,
    field_problems,
    field_text,
    form_of,
    in_savepoint,
    not_found,
    on_the_clock,
    one_at_a_time,
    one_chunk,
    redirect,
    render,
    typed_form,
    valid,
    viewer,
)
from services.directory.roster import INSTANT, ROLE_ORDER, Slot, parsed, rotation_slots, schedule_for
from services.directory.schemas import CalendarOut, Key, Role, RotationIn, Timezone
from shared.db import SessionDep
from shared.localtime import DAY_MINUTE, local_time, span
from shared.problems import PayloadTooLarge
from shared.requests import read_bounded_body
from shared.tables import Agency

HELP = FIELD_HELP | {
    "name": FIELD_HELP["key"],  # a rotation's or a calendar's name is a key
    "participants": "One or more advocates' keys, in turn order, separated by commas or lines (dana, luis).",
    "unit": "Hours, days or weeks.",
    "length": "A whole number from 1 to 1000.",
    "handoff": "A date and time on the clock of the rotation's time zone, without an offset (2026-11-16 09:00).",
    "timezone": "An IANA time zone such as America/Chicago, or nothing for the agency's own.",
    "file": "Choose an iCalendar file (.ics) to import.",
}
KEY, ROLE, HANDOFF, ZONE = TypeAdapter(Key), TypeAdapter(Role), TypeAdapter(NaiveDatetime), TypeAdapter(Timezone)
# The upload's bound: the calendar as the API takes it, and room for the form's few short fields and the multipart
# framing around them. The whole body is read within it before any of it is parsed, so that no upload, whatever it
# declares, can hold more than this in memory or on disk.
FORM_ROOM = 16 * 1024
UPLOAD_LIMIT = schedules.MAX_CALENDAR_BYTES + FORM_ROOM
TOO_LARGE = f"The file may be at most {schedules.MAX_CALENDAR_BYTES // 1024} KiB: this one is larger."
FOREVER = datetime.max.replace(tzinfo=UTC)  # rotation_slots is lazy: only the turns asked for are worked out
WHEN = DAY_MINUTE

router = APIRouter(include_in_schema=False)


# -- what the page shows ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    who: Person
    when: str


@dataclass(frozen=True)
class RotationRow:
    name: str
    role: str
    participants: list[Person]
    each: str  # "1 week", "12 hours"
    handoff: str  # the first handoff, on its own time zone's clock
    timezone: str
    now: Turn | None  # none before the first handoff
    next: Turn | None


@dataclass(frozen=True)
class CalendarRow:
    name: str
    role: str
    events: int
    imported: str
    unmatched: list[str]  # summaries of events naming nobody of the area


@dataclass(frozen=True)
class AreaRotations:
    code: str
    name: str
    covering: list[Person]
    rotations: list[RotationRow]
    calendars: list[CalendarRow]


def turns(rotation: Rotation, now: datetime) -> tuple[Slot | None, Slot | None]:
    """The turn under way at `now` (none before the first handoff) and the one after it."""
    ahead = rotation_slots(rotation, now, FOREVER)
    first = next(ahead, None)
    if first is None or first.starts_at > now:
        return None, first
    return first, next(ahead, None)


def rotation_row(rotation: Rotation, people: Mapping[int, Person], now: datetime, timezone: str) -> RotationRow:
    def person(advocate_id: int) -> Person:
        return people.get(advocate_id, Person("?", "someone no longer in the program", False))

    current, following = turns(rotation, now)
    on_turn = (
        Turn(person(current.advocate_id), f"until {local_time(current.ends_at, timezone, WHEN)}") if current else None
    )
    up_next = (
        Turn(person(following.advocate_id), span(following.starts_at, following.ends_at, timezone))
        if following
        else None
    )
    unit = rotation.unit if rotation.length != 1 else rotation.unit.removesuffix("s")
    return RotationRow(
        name=rotation.name,
        role=rotation.role,
        participants=[person(i) for i in rotation.participants],
        each=f"{rotation.length} {unit}",
        handoff=f"{rotation.handoff:%a %d %b %Y %H:%M}",
        timezone=rotation.timezone,
        now=on_turn,
        next=up_next,
    )


async def area_rotations(session: AsyncSession, agency: Agency, now: datetime) -> list[AreaRotations]:
    everyone = list(await session.scalars(select(Advocate).where(Advocate.agency_id == agency.id)))
    shown = []
    for area in await areas_of(session, agency):
        schedule = await schedule_for(session, agency, area, now, now + INSTANT)
        people = {a.id: Person(a.key, a.name, a.id in schedule.advocates) for a in everyone}
        calendars = []
        for calendar in sorted(schedule.calendars, key=lambda c: c.name):
            events, unmatched = schedules.calendar_events(parsed(calendar.ics), schedule.advocates.values())
            imported = local_time(calendar.imported_at, agency.timezone)
            calendars.append(CalendarRow(calendar.name, calendar.role, events, imported, unmatched))
        shown.append(
            AreaRotations(
                code=area.code,
                name=area.name,
                covering=sorted((p for p in people.values() if p.on_call), key=lambda p: p.key),
                rotations=[
                    rotation_row(r, people, now, agency.timezone)
                    for r in sorted(schedule.rotations, key=lambda r: r.name)
                ],
                calendars=calendars,
            )
        )
    return shown


# -- the forms ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationForm:
    """The form's values as typed (shown again as they were when something is wrong), and what is wrong."""

    area: str = ""
    name: str = ""
    role: str = "primary"
    participants: str = ""
    unit: str = "weeks"
    length: str = "1"
    handoff: str = ""
    timezone: str = ""
    new: bool = True
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, area: Area, rotation: Rotation, keys: Mapping[int, str]) -> RotationForm:
        # A datetime-local field refuses seconds it was not told to take: minutes unless the handoff has some.
        handoff = rotation.handoff.isoformat(timespec="minutes" if rotation.handoff.second == 0 else "seconds")
        return cls(
            area=area.code,
            name=rotation.name,
            role=rotation.role,
            participants=", ".join(keys.get(i, "?") for i in rotation.participants),
            unit=rotation.unit,
            length=str(rotation.length),
            handoff=handoff,
            timezone=rotation.timezone,
            new=False,
        )

    @classmethod
    def sent(cls, form: FormData, area: str | None, name: str | None) -> RotationForm:
        """The form sent; an existing rotation's area and name come from its address, not the form."""
        named = {k: v for k, v in (("area", area), ("name", name)) if v is not None}
        return typed_form(cls, form, new=name is None, **named)

    def spec(self, timezone: str) -> RotationIn | dict[str, str]:
        """What the API would be sent, or what is wrong with it, field by field. `timezone` is the agency's, the
        rotation's own when it names none."""
        problems = {} if valid(KEY, self.name) else {"name": HELP["name"]}
        # The first handoff is one instant: not a time the clocks skip, nor one they show twice, that night (said in
        # the page's words, whatever the model says of it).
        wall, zone = valid(HANDOFF, self.handoff), valid(ZONE, self.timezone or timezone)
        if wall is not None and zone is not None and isinstance(handoff := on_the_clock(wall, zone), str):
            problems["handoff"] = handoff
        try:
            spec = RotationIn.model_validate(
                {
                    "role": self.role,
                    "participants": [k for k in re.split(r"[\s,]+", self.participants) if k],
                    "unit": self.unit,
                    "length": self.length,
                    "handoff": self.handoff,
                    "timezone": self.timezone or None,
                }
            )
        except ValidationError as exc:
            return field_problems(exc, HELP) | problems
        return problems or spec


@dataclass(frozen=True)
class CalendarForm:
    """The upload's fields as sent (a browser cannot be given the file back), and what is wrong."""

    area: str = ""
    name: str = ""
    role: str = "primary"
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Removal:
    """A removal refused for want of its confirmation: which one, to show the problem beside it."""

    area: str
    name: str
    problem: str = HELP["confirm"]


# -- the pages ----------------------------------------------------------------------------------------------------


async def rotations_page(
    session: AsyncSession,
    found: Viewer,
    now: datetime,
    *,
    status: int = 200,
    done: str | None = None,
    rotation: RotationForm | None = None,
    upload: CalendarForm | None = None,
    removal: Removal | None = None,
) -> HTMLResponse:
    areas = await area_rotations(session, found.agency, now)
    first = areas[0].code if areas else ""
    return render(
        "rotations.html",
        status,
        found.principal,
        found.agency,
        areas=areas,
        roles=ROLE_ORDER,
        form=rotation or RotationForm(area=first),
        upload=upload or CalendarForm(area=first),
        removal=removal,
        done=done,
        max_kib=schedules.MAX_CALENDAR_BYTES // 1024,
    )


async def rotation_page(
    session: AsyncSession, found: Viewer, area: Area, form: RotationForm, now: datetime, status: int = 200
) -> HTMLResponse:
    schedule = await schedule_for(session, found.agency, area, now, now + INSTANT)
    covering = sorted((Person(a.key, a.name, True) for a in schedule.advocates.values()), key=lambda p: p.key)
    values = {"form": form, "area": area, "covering": covering, "roles": ROLE_ORDER}
    return render("rotation.html", status, found.principal, found.agency, **values)


async def rotation_of(session: AsyncSession, area: Area, name: str) -> Rotation | None:
    return await session.scalar(select(Rotation).where(Rotation.area_id == area.id, Rotation.name == name))


async def calendar_of(session: AsyncSession, area: Area, name: str) -> Calendar | None:
    return await session.scalar(select(Calendar).where(Calendar.area_id == area.id, Calendar.name == name))


@router.get(PREFIX + "/{slug}/rotations", response_class=HTMLResponse)
async def rotations(
    slug: str,
    request: Request,
    session: SessionDep,
    done: str | None = None,
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    note = await done_note(session, found, done)
    return await rotations_page(session, found, found.at, done=note)


@router.get(PREFIX + "/{slug}/rotations/{code}/{name}", response_class=HTMLResponse)
async def rotation(slug: str, code: str, name: str, request: Request, session: SessionDep) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    area = await area_of(session, found.agency, code)
    kept = await rotation_of(session, area, name) if area else None
    if area is None or kept is None:
        return not_found(found, f"No rotation {name!r} in area {code!r}.")
    keys = await advocate_keys(session, found.agency)
    return await rotation_page(session, found, area, RotationForm.of(area, kept, keys), found.at)


async def advocate_keys(session: AsyncSession, agency: Agency) -> dict[int, str]:
    rows = await session.execute(select(Advocate.id, Advocate.key).where(Advocate.agency_id == agency.id))
    return {advocate_id: key for advocate_id, key in rows}


@router.post(PREFIX + "/{slug}/rotations", response_class=HTMLResponse)
async def add_rotation(slug: str, request: Request, session: SessionDep) -> Response:
    return await save_rotation(slug, None, None, request, session)


@router.post(PREFIX + "/{slug}/rotations/{code}/{name}", response_class=HTMLResponse)
async def edit_rotation(slug: str, code: str, name: str, request: Request, session: SessionDep) -> Response:
    return await save_rotation(slug, code, name, request, session)


async def save_rotation(
    slug: str, code: str | None, name: str | None, request: Request, session: AsyncSession
) -> Response:
    """Add (code and name None: the form names them) or change a rotation, as the API's PUT does, or show what is
    wrong next to each field with nothing changed."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, found.at
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = RotationForm.sent(sent, code, name)
    spec = form.spec(agency.timezone)
    problems = spec if isinstance(spec, dict) else {}
    area = await area_of(session, agency, form.area)
    existing = await rotation_of(session, area, form.name) if area else None
    if not form.new and existing is None:
        return not_found(found, f"No rotation {form.name!r} in area {form.area!r}.")
    if area is None:
        problems["area"] = HELP["area"]
    elif form.new and existing is not None:
        problems.setdefault("name", f"Area {area.code} has a rotation {form.name!r} already: change it from the list.")
    if area is not None and isinstance(spec, RotationIn) and not problems:
        refused = await in_savepoint(session, schedules.put_rotation(session, agency, area, form.name, spec))
        if isinstance(refused, Refusal):
            problems["participants"] = refused.text
    if problems or area is None:
        wrong = replace(form, problems=problems)
        if area is None or form.new:
            return await rotations_page(session, found, now, status=422, rotation=wrong)
        return await rotation_page(session, found, area, wrong, now, status=422)
    note = f"Saved rotation {form.name} in area {area.code}."
    done = await audit_change(session, found, request, note, code=area.code, name=form.name)
    return redirect(agency, "rotations", done=done)


@router.post(PREFIX + "/{slug}/rotations/{code}/{name}/remove", response_class=HTMLResponse)
async def remove_rotation(slug: str, code: str, name: str, request: Request, session: SessionDep) -> Response:
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    now = found.at
    area = await area_of(session, found.agency, code)
    kept = await rotation_of(session, area, name) if area else None
    if area is None or kept is None:
        return not_found(found, f"No rotation {name!r} in area {code!r}.")
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    if sent.get("confirm") != "on":
        keys = await advocate_keys(session, found.agency)
        form = replace(RotationForm.of(area, kept, keys), problems={"confirm": HELP["confirm"]})
        return await rotation_page(session, found, area, form, now, status=422)
    await schedules.delete_rotation(session, area, name)
    done = await audit_change(session, found, request, f"Removed rotation {name} from area {area.code}.")
    return redirect(found.agency, "rotations", done=done)


# -- the program's calendars --------------------------------------------------------------------------------------


async def upload_of(request: Request) -> tuple[CalendarForm, bytes]:
    """The upload form's fields and its file, read within UPLOAD_LIMIT (PayloadTooLarge past it) by Starlette's
    own multipart parser (MultiPartException when the form is not one)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        raise MultiPartException("it was not sent as multipart/form-data")
    body = await read_bounded_body(request, UPLOAD_LIMIT)
    parser = MultiPartParser(request.headers, one_chunk(body), max_files=1, max_fields=8, max_part_size=1024)
    form = await parser.parse()
    try:
        file = form.get("file")
        ics = await file.read(schedules.MAX_CALENDAR_BYTES + 1) if isinstance(file, UploadFile) else b""
    finally:
        await form.close()
    fields = CalendarForm(area=field_text(form, "area"), name=field_text(form, "name"), role=field_text(form, "role"))
    return fields, ics


@router.post(PREFIX + "/{slug}/calendars", response_class=HTMLResponse)
async def import_calendar(slug: str, request: Request, session: SessionDep) -> Response:
    """Import a program's calendar for one role in an area, as the API's PUT does (importing again under the
    same name replaces it), or show what is wrong by its field with nothing changed."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, found.at
    try:
        form, ics = await upload_of(request)
    except PayloadTooLarge:
        return await rotations_page(session, found, now, status=413, upload=CalendarForm(problems={"file": TOO_LARGE}))
    except MultiPartException as exc:
        unread = CalendarForm(problems={"file": f"The form could not be read ({exc.message}): send it again."})
        return await rotations_page(session, found, now, status=400, upload=unread)
    await one_at_a_time(session, found)
    problems: dict[str, str] = {}
    area = await area_of(session, agency, form.area)
    if area is None:
        problems["area"] = HELP["area"]
    if valid(KEY, form.name) is None:
        problems["name"] = HELP["name"]
    if (role := valid(ROLE, form.role)) is None:
        problems["role"] = HELP["role"]
    if not ics:
        problems["file"] = HELP["file"]
    elif len(ics) > schedules.MAX_CALENDAR_BYTES:
        problems["file"] = TOO_LARGE
    kept: CalendarOut | Refusal | None = None
    if area is not None and role is not None and not problems:
        kept = await in_savepoint(session, schedules.put_calendar(session, agency, area, form.name, role, ics, now=now))
        if isinstance(kept, Refusal):
            problems["file"] = kept.text
    if area is None or not isinstance(kept, CalendarOut):
        status = 413 if problems.get("file") == TOO_LARGE else 422
        return await rotations_page(session, found, now, status=status, upload=replace(form, problems=problems))
    done = await audit_change(
        session, found, request, imported(kept, area), code=area.code, name=form.name, role=kept.role
    )
    return redirect(agency, "rotations", done=done)


def imported(calendar: CalendarOut, area: Area) -> str:
    """What importing the calendar did, said without its events' summaries: they may name anyone (the page lists
    those that name nobody of the area, under the calendar)."""
    said = f"Imported calendar {calendar.name} into area {area.code}: {calendar.events} events"
    if not calendar.unmatched:
        return f"{said}, each naming someone who covers the area."
    nobody = f"{len(calendar.unmatched)} of them naming nobody who covers the area"
    return f"{said}, {nobody}: nobody is on call by those, listed under the calendar."


@router.post(PREFIX + "/{slug}/calendars/{code}/{name}/remove", response_class=HTMLResponse)
async def remove_calendar(slug: str, code: str, name: str, request: Request, session: SessionDep) -> Response:
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    area = await area_of(session, found.agency, code)
    kept = await calendar_of(session, area, name) if area else None
    if area is None or kept is None:
        return not_found(found, f"No calendar {name!r} in area {code!r}.")
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    if sent.get("confirm") != "on":
        now = found.at
        return await rotations_page(session, found, now, status=422, removal=Removal(code, name))
    await schedules.delete_calendar(session, area, name)
    done = await audit_change(session, found, request, f"Removed calendar {name} from area {area.code}.")
    return redirect(found.agency, "rotations", done=done)
