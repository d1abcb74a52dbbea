"""The areas and their weekly schedules, kept through forms that validate as the API does: an area added or
renamed as PUT …/areas/{code} does it, and a shift added or removed by building the whole new schedule and saving it
as PUT …/areas/{code}/schedule does, so that a page can never keep a schedule the API would refuse."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from services.directory import service
from services.directory.models import Advocate, Area, Shift, advocate_areas
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
    redirect,
    render,
    typed_form,
    valid,
    viewer,
)
from services.directory.roster import ROLE_ORDER
from services.directory.schemas import DAYS, AreaIn, ScheduleIn, ShiftIn
from shared.db import SessionDep
from shared.text import AreaCode

HELP = FIELD_HELP | {
    "code": "Letters, digits, spaces and . - _ (up to 64), starting with a letter or digit.",
    "advocate": "Choose an advocate who covers the area.",
    "day": "A day of the week.",
    "start": "A time of day from 00:00 to 23:59, like 08:00.",
    "end": "A time of day like 20:00; at or before the start, the shift ends the next day.",
}
AREA_CODE = TypeAdapter(AreaCode)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # in the order of DAYS
MINUTES_PER_DAY = 24 * 60

router = APIRouter(include_in_schema=False)


def clock_time(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def schedule_path(code: str) -> str:
    """The area's schedule page, under its agency's."""
    return f"areas/{quote(code)}/schedule"


# -- the areas ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AreaRow:
    code: str
    name: str
    advocates: int  # how many advocates cover it, active or not


@dataclass(frozen=True)
class AreaForm:
    """The form's values as typed (shown again as they were when something is wrong), and what is wrong."""

    code: str = ""
    name: str = ""
    new: bool = True  # adding an area; else renaming the area `code`, from its row in the list
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def sent(cls, form: FormData) -> AreaForm:
        if renamed := field_text(form, "rename"):
            return cls(code=renamed, name=field_text(form, "name"), new=False)
        return cls(code=field_text(form, "code"), name=field_text(form, "name"))

    def spec(self) -> tuple[str, AreaIn] | dict[str, str]:
        """The area's code as the API's path would read it and the body it would be sent, or what is wrong with
        them, field by field."""
        code = valid(AREA_CODE, self.code)
        problems = {} if code else {"code": HELP["code"]}
        try:
            spec = AreaIn.model_validate({"name": self.name})
        except ValidationError as exc:
            return field_problems(exc, HELP) | problems
        return (code, spec) if code else problems


async def area_rows(session: AsyncSession, found: Viewer) -> list[AreaRow]:
    covering: dict[int, int] = dict(
        (
            await session.execute(
                select(advocate_areas.c.area_id, func.count())
                .join(Area, Area.id == advocate_areas.c.area_id)
                .where(Area.agency_id == found.agency.id)
                .group_by(advocate_areas.c.area_id)
            )
        ).all()
    )
    return [AreaRow(a.code, a.name, covering.get(a.id, 0)) for a in await areas_of(session, found.agency)]


async def areas_page(
    session: AsyncSession, found: Viewer, form: AreaForm, status: int = 200, done: str | None = None
) -> HTMLResponse:
    rows = await area_rows(session, found)
    return render("areas.html", status, found.principal, found.agency, areas=rows, form=form, done=done)


@router.get(PREFIX + "/{slug}/areas", response_class=HTMLResponse)
async def areas(slug: str, request: Request, session: SessionDep, done: str | None = None) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    return await areas_page(session, found, AreaForm(), done=await done_note(session, found, done))


@router.post(PREFIX + "/{slug}/areas", response_class=HTMLResponse)
async def save_area(slug: str, request: Request, session: SessionDep) -> Response:
    """Add an area or rename one, as the API's PUT does, or show what is wrong next to each field with nothing
    changed."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = AreaForm.sent(sent)
    spec = form.spec()
    problems = spec if isinstance(spec, dict) else {}
    code = form.code if isinstance(spec, dict) else spec[0]
    existing = await area_of(session, found.agency, code)
    if not form.new and existing is None:
        return not_found(found, f"No area {code!r} in this agency.")
    taken = f"There is an area {code!r} already: rename it in the list."
    if form.new and existing is not None:
        problems.setdefault("code", taken)
    if isinstance(spec, dict) or problems:
        return await areas_page(session, found, replace(form, problems=problems), status=422)
    try:
        async with session.begin_nested():
            area = await service.put_area(session, found.agency, code, spec[1])
    except IntegrityError:  # the API's PUT, which takes no page's lock, added it since
        return await areas_page(session, found, replace(form, problems={"code": taken}), status=422)
    change = "added" if form.new else "renamed"
    note = f"Saved area {area.code}: {area.name}."
    done = await audit_change(session, found, request, note, change=change, code=area.code, name=area.name)
    return redirect(found.agency, "areas", done=done)


# -- an area's weekly schedule --------------------------------------------------------------------------------------


def minute(typed: str) -> bool:
    """Whether `typed` can be a minute of the week: up to five ASCII digits (int() of thousands of them is an
    error of its own)."""
    return typed.isascii() and typed.isdecimal() and len(typed) <= 5


@dataclass(frozen=True)
class WeeklyShift:
    """A shift as the schedule keeps it (services/directory/models.py, Shift): who, in which role, from which
    minute of the week (local wall time from Monday 00:00, as roster.weekly_slots reads it), for how long.

    Its `name` is what a Remove button sends: the shift itself, not its place in a list, so that a schedule changed
    since the page was shown loses that very shift or nothing, never another."""

    advocate: str  # the advocate's key
    role: str
    start_minute: int
    minutes: int

    @classmethod
    def of(cls, shift: ShiftIn) -> WeeklyShift:
        return cls(shift.advocate, shift.role, shift.start_minute, shift.minutes)

    @classmethod
    def named(cls, name: str) -> WeeklyShift | None:
        """The shift a name names, or None for one no shift could have."""
        parts = name.split(":")
        if len(parts) != 4 or parts[1] not in ROLE_ORDER or not all(minute(p) for p in parts[2:]):
            return None
        shift = cls(parts[0], parts[1], int(parts[2]), int(parts[3]))
        in_week = 0 <= shift.start_minute < 7 * MINUTES_PER_DAY and 0 < shift.minutes <= MINUTES_PER_DAY
        return shift if in_week else None

    @property
    def name(self) -> str:
        return f"{self.advocate}:{self.role}:{self.start_minute}:{self.minutes}"

    @property
    def day(self) -> int:
        return self.start_minute // MINUTES_PER_DAY

    @property
    def starts(self) -> str:
        return clock_time(self.start_minute % MINUTES_PER_DAY)

    @property
    def ends(self) -> str:
        """The wall time it ends, with the day when that is a later one ("Wed 08:00"); the midnight that ends its
        own day is 24:00."""
        end = self.start_minute % MINUTES_PER_DAY + self.minutes  # from the start of its day
        if end <= MINUTES_PER_DAY:
            return clock_time(end)
        return f"{DAY_NAMES[(self.day + end // MINUTES_PER_DAY) % 7][:3]} {clock_time(end % MINUTES_PER_DAY)}"

    @property
    def label(self) -> str:
        return f"{self.advocate} as {self.role}, {DAY_NAMES[self.day][:3]} {self.starts} to {self.ends}"

    def sent(self) -> dict[str, str]:
        """The shift as PUT …/schedule is sent it (ShiftIn), which reads back as the same start and length. Every
        shift kept was made from a ShiftIn (service.put_schedule), so none is longer than a day."""
        end = self.start_minute % MINUTES_PER_DAY + self.minutes
        return {
            "advocate": self.advocate,
            "role": self.role,
            "day": DAYS[self.day],
            "start": self.starts,
            "end": clock_time(end if end == MINUTES_PER_DAY else end % MINUTES_PER_DAY),
        }


@dataclass(frozen=True)
class ScheduleDay:
    name: str
    day: str  # as ShiftIn names it: mon … sun
    shifts: list[WeeklyShift]


@dataclass(frozen=True)
class ShiftForm:
    """The new shift's values as typed, and what is wrong."""

    advocate: str = ""
    role: str = "primary"
    day: str = "mon"
    start: str = "08:00"
    end: str = "20:00"
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def sent(cls, form: FormData) -> ShiftForm:
        return typed_form(cls, form)

    def body(self) -> dict[str, str]:
        return {"advocate": self.advocate, "role": self.role, "day": self.day, "start": self.start, "end": self.end}


async def weekly_shifts(session: AsyncSession, area: Area) -> list[WeeklyShift]:
    rows = await session.execute(
        select(Advocate.key, Shift.role, Shift.start_minute, Shift.minutes)
        .join(Advocate, Advocate.id == Shift.advocate_id)
        .where(Shift.area_id == area.id)
    )
    shifts = [WeeklyShift(*row) for row in rows]
    return sorted(shifts, key=lambda s: (s.start_minute, ROLE_ORDER.index(s.role), s.advocate))


async def covering(session: AsyncSession, area: Area) -> list[Person]:
    """Who covers the area, active or not (an inactive one is never on call)."""
    rows = await session.execute(
        select(Advocate.key, Advocate.name, Advocate.active)
        .join(advocate_areas, advocate_areas.c.advocate_id == Advocate.id)
        .where(advocate_areas.c.area_id == area.id)
        .order_by(Advocate.key)
    )
    return [Person(*row) for row in rows]


async def schedule_page(
    session: AsyncSession,
    found: Viewer,
    area: Area,
    form: ShiftForm,
    status: int = 200,
    done: str | None = None,
    refused: str | None = None,
) -> HTMLResponse:
    shifts = await weekly_shifts(session, area)
    days = [ScheduleDay(name, DAYS[i], [s for s in shifts if s.day == i]) for i, name in enumerate(DAY_NAMES)]
    return render(
        "schedule.html",
        status,
        found.principal,
        found.agency,
        area=area,
        schedule=f"{PREFIX}/{found.agency.slug}/{schedule_path(area.code)}",
        week=f"{PREFIX}/{found.agency.slug}/week?" + urlencode({"area": area.code}),
        days=days,
        form=form,
        advocates=await covering(session, area),
        roles=ROLE_ORDER,
        day_names=list(zip(DAYS, DAY_NAMES, strict=True)),
        done=done,
        refused=refused,
    )


@router.get(PREFIX + "/{slug}/areas/{code}/schedule", response_class=HTMLResponse)
async def schedule(
    slug: str,
    code: str,
    request: Request,
    session: SessionDep,
    done: str | None = None,
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    area = await area_of(session, found.agency, code)
    if area is None:
        return not_found(found, f"No area {code!r} in this agency.")
    return await schedule_page(session, found, area, ShiftForm(), done=await done_note(session, found, done))


async def saved_schedule(
    session: AsyncSession, found: Viewer, area: Area, shifts: list[dict[str, str]]
) -> dict[str, str] | ScheduleIn:
    """The whole new schedule validated by the API's model and saved as PUT …/schedule saves it, or what is wrong
    (by where the model found it: "shifts.3.start"; "service" for what the service refused) with nothing changed."""
    try:
        spec = ScheduleIn.model_validate({"shifts": shifts})
    except ValidationError as exc:
        return field_problems(exc, HELP, depth=3)
    refused = await in_savepoint(session, service.put_schedule(session, found.agency, area, spec))
    if isinstance(refused, Refusal):
        return {"service": refused.text}
    return spec


@router.post(PREFIX + "/{slug}/areas/{code}/schedule/add", response_class=HTMLResponse)
async def add_shift(slug: str, code: str, request: Request, session: SessionDep) -> Response:
    """Add a shift: the schedule as it is plus the new one, saved whole, or the problem by its field."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    area = await area_of(session, found.agency, code)
    if area is None:
        return not_found(found, f"No area {code!r} in this agency.")
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = ShiftForm.sent(sent)
    current = await weekly_shifts(session, area)
    saved = await saved_schedule(session, found, area, [*(s.sent() for s in current), form.body()])
    if isinstance(saved, dict):
        new = f"shifts.{len(current)}."
        problems: dict[str, str] = {}
        for where, message in saved.items():
            if where.startswith(new):
                problems.setdefault(where.removeprefix(new), message)
            elif where == "service" and form.advocate not in {a.key for a in await covering(session, area)}:
                problems.setdefault("advocate", message)  # the service names who does not cover the area
            else:
                problems.setdefault("form", message)  # the schedule as a whole, or a shift already in it
        return await schedule_page(session, found, area, replace(form, problems=problems), status=422)
    shift = WeeklyShift.of(saved.shifts[-1])
    done = await audit_change(session, found, request, f"Added {shift.label}.", change="added", shift=shift.label)
    return redirect(found.agency, schedule_path(area.code), done=done)


@router.post(PREFIX + "/{slug}/areas/{code}/schedule/remove", response_class=HTMLResponse)
async def remove_shift(slug: str, code: str, request: Request, session: SessionDep) -> Response:
    """Remove the shift named: the schedule as it is without it, saved whole. One no longer there (the schedule
    changed since the page was shown) is said so, and nothing changes."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    area = await area_of(session, found.agency, code)
    if area is None:
        return not_found(found, f"No area {code!r} in this agency.")
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    shift = WeeklyShift.named(field_text(sent, "shift"))
    current = await weekly_shifts(session, area)
    if shift is None or shift not in current:
        refused = "That shift is no longer in the schedule (it changed since the page was shown): nothing was removed."
        return await schedule_page(session, found, area, ShiftForm(), status=409, refused=refused)
    left = list(current)
    left.remove(shift)  # one of them, were the very same shift there twice
    saved = await saved_schedule(session, found, area, [s.sent() for s in left])
    if isinstance(saved, dict):
        refused = "Nothing was removed: " + " ".join(saved.values())
        return await schedule_page(session, found, area, ShiftForm(), status=422, refused=refused)
    note = f"Removed {shift.label}."
    done = await audit_change(session, found, request, note, change="removed", shift=shift.label)
    return redirect(found.agency, schedule_path(area.code), done=done)
