"""Overrides: someone takes a role in an area for a while, covering for one person or added to whoever is on call.
Listed as a person says them, in the agency's time; added through a form whose from and to are typed on the
agency's clock, validated as the API validates; removed with a button. Every change audited."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import get_args
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from services.directory import schedules
from services.directory.models import Advocate, Area, Override
from services.directory.pages.common import (
    FIELD_HELP,
    PREFIX,
    Refusal,
    Viewer,
    areas_of,
    audit_change,
    changer,
    done_note,
    field_problems,
    form_of,
    in_savepoint,
    not_found,
    on_the_clock,
    redirect,
    render,
    typed_form,
    viewer,
)
from services.directory.schemas import OverrideIn, OverrideOut, Role
from shared.db import SessionDep
from shared.localtime import span
from shared.tables import Agency, CoverRequest

ROLES: tuple[str, ...] = get_args(Role)
HELP = FIELD_HELP | {"advocate": "Choose who takes the role.", "replaces": "Choose whom they cover for, or nobody."}
OVERRIDE_IDS = range(1, 2**31)  # an override's id is a PostgreSQL integer

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class OverrideRow:
    id: int
    said: str  # "Luis covers Dana as primary in area 1 from Tue 24 Nov 20:00 to Wed 25 Nov 08:00 EST"
    note: str | None
    cover: str | None  # how it came about, when a cover request made it
    week: str  # the week it starts in, on the week page


@dataclass(frozen=True)
class OverrideForm:
    """The form's values as typed (shown again as they were when something is wrong), and what is wrong."""

    area: str = ""
    role: str = "primary"
    advocate: str = ""
    replaces: str = ""
    starts_date: str = ""
    starts_time: str = ""
    ends_date: str = ""
    ends_time: str = ""
    note: str = ""
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def sent(cls, form: FormData) -> OverrideForm:
        return typed_form(cls, form)

    @classmethod
    def blank(cls, timezone: str, now: datetime) -> OverrideForm:
        """From today to tomorrow on the agency's clock, the times left to type."""
        today = now.astimezone(ZoneInfo(timezone)).date()
        return cls(starts_date=today.isoformat(), ends_date=(today + timedelta(days=1)).isoformat())

    def spec(self, timezone: str) -> OverrideIn | dict[str, str]:
        """What the API would be sent, or what is wrong with it, field by field."""
        problems: dict[str, str] = {}
        starts = moment(self.starts_date, self.starts_time, timezone)
        ends = moment(self.ends_date, self.ends_time, timezone)
        for name, typed in (("starts_at", starts), ("ends_at", ends)):
            if isinstance(typed, str):
                problems[name] = typed
        try:
            spec = OverrideIn.model_validate(
                {
                    "area": self.area,
                    "role": self.role,
                    "advocate": self.advocate,
                    "replaces": self.replaces or None,
                    "starts_at": starts if isinstance(starts, datetime) else None,
                    "ends_at": ends if isinstance(ends, datetime) else None,
                    "note": self.note or None,
                }
            )
        except ValidationError as exc:
            found = field_problems(exc, HELP)
            if whole := found.pop("form", None):  # the range as a whole: said by its end, in a person's words
                found["ends_at"] = whole.replace("ends_at", "the end").replace("starts_at", "the start").capitalize()
            return found | problems
        return problems or spec


def moment(day: str, clock: str, timezone: str) -> datetime | str:
    """A date and a time typed on the agency's clock as an instant, or what is wrong with them."""
    try:
        wall = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock))
    except ValueError:
        return "A date and a time, like 2026-11-24 and 20:00."
    return on_the_clock(wall, timezone)


def who(names: dict[str, str], key: str) -> str:
    return names.get(key, key)


def said(o: OverrideOut, names: dict[str, str], timezone: str) -> str:
    what = f"covers {who(names, o.replaces)} as {o.role}" if o.replaces else f"is added as {o.role}"
    return f"{who(names, o.advocate)} {what} in area {o.area} from {span(o.starts_at, o.ends_at, timezone)}"


async def override_rows(session: AsyncSession, found: Viewer, now: datetime) -> list[OverrideRow]:
    agency = found.agency
    overrides = await schedules.list_overrides(session, agency, ending_after=now)
    names = dict(
        (await session.execute(select(Advocate.key, Advocate.name).where(Advocate.agency_id == agency.id))).all()
    )
    # A cover request taken is kept with the override it made (cover.take): the override says it came from one.
    from_cover = set(
        await session.scalars(
            select(CoverRequest.override_id).where(
                CoverRequest.agency_id == agency.id, CoverRequest.override_id.in_([o.id for o in overrides])
            )
        )
    )
    zone = ZoneInfo(agency.timezone)
    return [
        OverrideRow(
            id=o.id,
            said=said(o, names, agency.timezone),
            note=o.note,
            cover=(
                f"From a cover request: {who(names, o.replaces)} asked, {who(names, o.advocate)} took it."
                if o.id in from_cover and o.replaces
                else None
            ),
            week=f"{PREFIX}/{agency.slug}/week?"
            + urlencode({"area": o.area, "start": o.starts_at.astimezone(zone).date().isoformat()}),
        )
        for o in overrides
    ]


async def overrides_page(
    session: AsyncSession,
    found: Viewer,
    form: OverrideForm,
    now: datetime,
    status: int = 200,
    done: str | None = None,
    removal: dict[str, str] | None = None,
) -> HTMLResponse:
    rows = await override_rows(session, found, now)
    advocates = list(
        await session.scalars(select(Advocate).where(Advocate.agency_id == found.agency.id).order_by(Advocate.name))
    )
    return render(
        "overrides.html",
        status,
        found.principal,
        found.agency,
        overrides=rows,
        form=form,
        areas=await areas_of(session, found.agency),
        roles=ROLES,
        advocates=advocates,
        done=done,
        removal=removal or {},  # by the override's id: why it was not removed
        timezone=found.agency.timezone,
    )


@router.get(PREFIX + "/{slug}/overrides", response_class=HTMLResponse)
async def overrides(
    slug: str,
    request: Request,
    session: SessionDep,
    done: str | None = None,
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    now = found.at
    blank = OverrideForm.blank(found.agency.timezone, now)
    return await overrides_page(session, found, blank, now, done=await done_note(session, found, done))


@router.post(PREFIX + "/{slug}/overrides", response_class=HTMLResponse)
async def add_override(slug: str, request: Request, session: SessionDep) -> Response:
    """Put someone on call for a while as the API's POST does, or show what is wrong by each field with nothing
    changed."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, found.at
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = OverrideForm.sent(sent)
    spec = form.spec(agency.timezone)
    if isinstance(spec, dict):
        return await overrides_page(session, found, replace(form, problems=spec), now, status=422)
    added = await in_savepoint(session, schedules.add_override(session, agency, spec, now=now))
    if isinstance(added, Refusal):  # an area gone; someone unknown, or who does not cover the area
        where = "area" if added.not_found else refused_field(added.text, spec)
        return await overrides_page(session, found, replace(form, problems={where: added.text}), now, status=422)
    note = f"Saved: {said(added, {}, agency.timezone)}."  # by their keys: an audit record holds no names
    done = await audit_change(session, found, request, note, override=str(added.id))
    return redirect(agency, "overrides", done=done)


async def override_of(session: AsyncSession, agency: Agency, typed: str) -> int | None:
    """The id of the agency's override that a path names, or None: none of theirs, or no id an override has."""
    if not (typed.isascii() and typed.isdigit() and len(typed) <= 10) or int(typed) not in OVERRIDE_IDS:
        return None
    return await session.scalar(
        select(Override.id)
        .join(Area, Area.id == Override.area_id)
        .where(Override.id == int(typed), Area.agency_id == agency.id)
    )


def refused_field(text: str, spec: OverrideIn) -> str:
    """Which field the service's refusal is about: the one whose advocate it names (it names each by key), or the
    form as a whole when it names both."""
    keys = (("advocate", spec.advocate), ("replaces", spec.replaces))
    named = [name for name, key in keys if key is not None and repr(key) in text]
    return named[0] if len(named) == 1 else "form"


@router.post(PREFIX + "/{slug}/overrides/{override_id}/remove", response_class=HTMLResponse)
async def remove_override(slug: str, override_id: str, request: Request, session: SessionDep) -> Response:
    """Remove an override of the agency's, once the box saying so is ticked."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    kept = await override_of(session, found.agency, override_id)
    if kept is None:
        return not_found(found, f"No override {override_id}.")
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    if sent.get("confirm") != "on":
        now = found.at
        blank, removal = OverrideForm.blank(found.agency.timezone, now), {str(kept): HELP["confirm"]}
        return await overrides_page(session, found, blank, now, status=422, removal=removal)
    await schedules.delete_override(session, found.agency, kept)
    note = f"Removed override {kept}: the schedule applies again for its time."
    done = await audit_change(session, found, request, note)
    return redirect(found.agency, "overrides", done=done)
