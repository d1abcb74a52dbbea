"""Overrides: someone takes a role in an area for a while, covering for one person or added to whoever is on call.
Listed as a person says them, in the agency's time; added through a form whose from and to are typed on the
agency's clock, validated as the API validates; removed with a button. Every change audited."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Annotated, get_args
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from services.directory import schedules
from services.directory.models import Advocate
from services.directory.pages.common import (
    PREFIX,
    Refusal,
    Viewer,
    areas_of,
    audit_change,
    changer,
    field_problems,
    render,
    saved,
    viewer,
)
from services.directory.schemas import OverrideIn, OverrideOut, Role
from shared.db import SessionDep
from shared.localtime import NotOnTheClock, instant, span
from shared.problems import NotFound
from shared.tables import CoverRequest

ROLES: tuple[str, ...] = get_args(Role)
# What a field needs, said to a person (the API's own words name patterns and types).
FIELD_HELP = {
    "area": "Choose an area.",
    "role": "Choose primary, backup or supervisor.",
    "advocate": "Choose who takes the role.",
    "replaces": "Choose whom they cover for, or nobody.",
}

router = APIRouter(tags=["directory"], include_in_schema=False)


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
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        return cls(
            area=text("area"),
            role=text("role"),
            advocate=text("advocate"),
            replaces=text("replaces"),
            starts_date=text("starts_date"),
            starts_time=text("starts_time"),
            ends_date=text("ends_date"),
            ends_time=text("ends_time"),
            note=text("note"),
        )

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
            found = field_problems(exc, FIELD_HELP)
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
    try:
        return instant(wall, timezone)
    except NotOnTheClock as exc:
        return str(exc)


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
    saved: int | None = None,
    removed: bool = False,
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
        saved=next((row for row in rows if row.id == saved), None),  # a link can make it say nothing else
        removed=removed,
        timezone=found.agency.timezone,
    )


@router.get(PREFIX + "/{slug}/overrides", response_class=HTMLResponse)
async def overrides(
    slug: str,
    request: Request,
    session: SessionDep,
    saved: Annotated[int | None, Query()] = None,
    removed: Annotated[bool, Query()] = False,
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    now = request.app.state.clock.now()
    today = now.astimezone(ZoneInfo(found.agency.timezone)).date()
    blank = OverrideForm(starts_date=today.isoformat(), ends_date=(today + timedelta(days=1)).isoformat())
    return await overrides_page(session, found, blank, now, saved=saved, removed=removed)


@router.post(PREFIX + "/{slug}/overrides", response_class=HTMLResponse)
async def add_override(slug: str, request: Request, session: SessionDep) -> Response:
    """Put someone on call for a while as the API's POST does, or show what is wrong by each field with nothing
    changed."""
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, request.app.state.clock.now()
    form = OverrideForm.sent(await request.form())
    spec = form.spec(agency.timezone)
    if isinstance(spec, dict):
        return await overrides_page(session, found, replace(form, problems=spec), now, status=422)
    added = await saved(session, schedules.add_override(session, agency, spec, now=now))
    if isinstance(added, Refusal):  # an area gone; someone who does not cover the area
        where = "area" if added.not_found else "advocate"
        return await overrides_page(session, found, replace(form, problems={where: added.text}), now, status=422)
    await audit_change(session, found, request, override=str(added.id))
    return RedirectResponse(f"{PREFIX}/{agency.slug}/overrides?" + urlencode({"saved": added.id}), status_code=303)


@router.post(PREFIX + "/{slug}/overrides/{override_id}/remove", response_class=HTMLResponse)
async def remove_override(slug: str, override_id: int, request: Request, session: SessionDep) -> Response:
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    try:
        await schedules.delete_override(session, found.agency, override_id)
    except NotFound as exc:
        return render("message.html", 404, found.principal, found.agency, title="Not found", text=str(exc))
    await audit_change(session, found, request)
    return RedirectResponse(f"{PREFIX}/{found.agency.slug}/overrides?removed=true", status_code=303)
