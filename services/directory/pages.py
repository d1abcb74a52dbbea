"""The program's own pages, for the advocates and coordinators who run it: who is on call now in each area and
the gaps ahead (the board), a week of every role in an area from every source at once (the week), and the
advocates, kept through a form. Server-rendered (Jinja2, autoescaped), no script, usable on a phone; times are the
agency's own. They open with the dashboard's sign-in (its session cookie's path is /dashboard): an admin sees any
agency, a supervisor only their own (another is "not found", as the API says). A form that changes something
refuses a POST from another site and is audited as the API's changes are; keeping advocates is an admin's, as in
the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from starlette.datastructures import FormData

from services.directory import service
from services.directory.cover import cover_requests
from services.directory.coverage import COVERAGE_AHEAD, coverage_gaps, uncovered
from services.directory.models import Advocate, Area
from services.directory.roster import INSTANT, ROLE_ORDER, Slot, local_to_utc, schedule_for
from services.directory.schemas import AdvocateIn, Key
from shared import audit
from shared.auth import Principal, Role
from shared.db import SessionDep
from shared.localtime import span
from shared.problems import Invalid
from shared.security import csp_nonce
from shared.sessions import COOKIE, Lifetime, cross_site, resume
from shared.tables import AdvocatePhone, Agency, CoverStatus, Unreachable

PREFIX = "/dashboard/program"
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
)
TEMPLATES.globals["csp_nonce"] = csp_nonce  # each page's <style> nonce (shared/security.py)
# What a field needs, said to a person (the API's own words name regular expressions).
FIELD_HELP = {
    "key": "Lower-case letters, digits, - and _ (up to 64), starting with a letter or digit.",
    "name": "A name, up to 200 characters.",
    "phone": "A mobile number in international form: + and the country code, like +12025550102.",
    "languages": "One or more language codes (en, es, zh-Hant), separated by commas.",
    "areas": "The areas they cover.",
}
KEY = TypeAdapter(Key)

router = APIRouter(tags=["directory"], include_in_schema=False)


# -- who is asking ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    agency: Agency


async def viewer(request: Request, session: AsyncSession, slug: str) -> Viewer | Response:
    """The signed-in principal and the agency they may see, or the page to send them to instead."""
    session_id = request.cookies.get(COOKIE)
    principal = None
    if session_id:
        lifetime = Lifetime.of(request.app.state.settings)
        principal = await resume(request, session, session_id, lifetime, request.app.state.clock.now())
    if principal is None:  # the sign-in page drops a cookie whose session has ended
        return RedirectResponse("/dashboard/sign-in" + ("?ended=1" if session_id else ""), status_code=303)
    agency = await session.scalar(select(Agency).where(Agency.slug == slug))
    if agency is None or not principal.may_see_agency(agency.id):
        return render("message.html", 404, principal, None, title="Not found", text=f"No agency {slug!r}.")
    return Viewer(principal, agency)


def render(
    template: str, status: int, principal: Principal | None, agency: Agency | None, **values: object
) -> HTMLResponse:
    body = TEMPLATES.get_template(template).render(principal=principal, agency=agency, prefix=PREFIX, **values)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def refused(viewer: Viewer, request: Request) -> HTMLResponse | None:
    """Why this change may not be made here, as a page, or None when it may."""
    if cross_site(request) is not None:
        text = "Refused: the form was sent from another site."
        return render("message.html", 403, viewer.principal, viewer.agency, title="Refused", text=text)
    if viewer.principal.role is not Role.admin:
        text = "Only an admin keeps the advocates. Ask your admin to make this change."
        return render("message.html", 403, viewer.principal, viewer.agency, title="Refused", text=text)
    return None


async def areas_of(session: AsyncSession, agency: Agency) -> list[Area]:
    return list(await session.scalars(select(Area).where(Area.agency_id == agency.id).order_by(Area.code)))


async def unreachable_by_phone(session: AsyncSession, phones: set[str]) -> dict[str, list[str]]:
    """The channels that cannot reach each phone (a phone is cut off for every agency it is an advocate's in)."""
    cut_off: dict[str, list[str]] = {}
    rows = await session.execute(
        select(Unreachable.phone, Unreachable.channel)
        .where(Unreachable.phone.in_(phones))
        .order_by(Unreachable.channel)
    )
    for phone, channel in rows:
        cut_off.setdefault(phone, []).append(channel)
    return cut_off


# -- the board ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnCallNow:
    key: str
    name: str
    reason: str
    verified: bool
    unreachable: list[str]


@dataclass(frozen=True)
class AreaBoard:
    code: str
    name: str
    roles: Sequence[tuple[str, list[OnCallNow]]]  # every role, in escalation order; an empty list is nobody
    gaps: list[str] = field(default_factory=list)
    cover: list[str] = field(default_factory=list)


@router.get(PREFIX + "/{slug}", response_class=HTMLResponse)
async def board(slug: str, request: Request, session: SessionDep) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, request.app.state.clock.now()
    zone = agency.timezone
    coverage = await coverage_gaps(session, agency, now, COVERAGE_AHEAD)
    asked = [r for r in await cover_requests(session, agency, now) if r.status == CoverStatus.open]
    boards = []
    for area in await areas_of(session, agency):
        schedule = await schedule_for(session, agency, area, now, now + INSTANT)
        chain = schedule.chain(now, None)
        cut_off = await unreachable_by_phone(session, {p.phone for p in chain})
        roles = [
            (
                role,
                [
                    OnCallNow(p.key, p.name, p.reason, p.phone_verified, cut_off.get(p.phone, []))
                    for p in chain
                    if p.role == role
                ],
            )
            for role in ROLE_ORDER
        ]
        gaps = [
            f"{g.role}: {span(max(g.starts_at, now), g.ends_at, zone)}" for g in coverage.gaps if g.area == area.code
        ]
        gaps += [
            f"nobody on call speaks {g.language}: {span(max(g.starts_at, now), g.ends_at, zone)}"
            for g in coverage.language_gaps
            if g.area == area.code
        ]
        cover = [
            f"{r.role}, {span(r.starts_at, r.ends_at, zone)}, for {r.advocate}: "
            + (f"asked of {', '.join(r.offered)}, nobody has taken it" if r.offered else "nobody else is free then")
            for r in asked
            if r.area == area.code
        ]
        boards.append(AreaBoard(area.code, area.name, roles, gaps, cover))
    at = f"{now.astimezone(ZoneInfo(zone)):%a %d %b %H:%M %Z}"
    return render("board.html", 200, found.principal, agency, areas=boards, at=at, days=COVERAGE_AHEAD.days)


# -- the week -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stretch:
    """Someone in a role for part of a day, or nobody (a gap)."""

    role: str
    starts: str
    ends: str
    who: str | None
    reason: str = ""

    @property
    def gap(self) -> bool:
        return self.who is None


@dataclass(frozen=True)
class Day:
    label: str
    hours: int  # 23 or 25 on a daylight-saving change
    stretches: list[Stretch]


def clock_label(moment: datetime, day_end: datetime, zone: ZoneInfo, with_zone: bool) -> str:
    if moment >= day_end:
        return "24:00"
    local = moment.astimezone(zone)
    return f"{local:%H:%M %Z}" if with_zone else f"{local:%H:%M}"


def day_of(slots: Sequence[Slot], begins: datetime, ends: datetime, zone: ZoneInfo, keys: dict[int, str]) -> Day:
    mine = [s for s in slots if s.starts_at < ends and s.ends_at > begins]
    # On the day the clocks change, 01:30 comes twice (or not at all): each time then says its offset.
    changes = begins.astimezone(zone).utcoffset() != (ends - INSTANT).astimezone(zone).utcoffset()
    rows = []
    for role in ROLE_ORDER:
        in_role = [s for s in mine if s.role == role]
        pieces = [
            (max(s.starts_at, begins), Stretch(role, "", "", keys[s.advocate_id], s.reason), min(s.ends_at, ends))
            for s in in_role
        ]
        pieces += [(b, Stretch(role, "", "", None, "nobody on call"), e) for b, e in uncovered(in_role, begins, ends)]
        for b, piece, e in sorted(pieces, key=lambda p: (p[0], p[1].who or "")):
            label_b = clock_label(b, ends, zone, changes)
            label_e = clock_label(e, ends, zone, changes)
            rows.append(Stretch(piece.role, label_b, label_e, piece.who, piece.reason))
    hours = round((ends - begins) / timedelta(hours=1))
    return Day(f"{begins.astimezone(zone):%a %d %b}", hours, rows)


@router.get(PREFIX + "/{slug}/week", response_class=HTMLResponse)
async def week(
    slug: str,
    request: Request,
    session: SessionDep,
    area: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[date | None, Query(description="The first day, in the agency's time zone")] = None,
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, request.app.state.clock.now()
    zone = ZoneInfo(agency.timezone)
    areas = await areas_of(session, agency)
    chosen = next((a for a in areas if a.code == area), None) if area else (areas[0] if areas else None)
    if chosen is None:
        text = f"No area {area!r} in this agency." if area else "This agency has no areas yet."
        return render("message.html", 404, found.principal, agency, title="Not found", text=text)
    first = start or now.astimezone(zone).date()
    # Each day from local midnight to local midnight: 23, 24 or 25 hours, as the clocks have it.
    bounds = [local_to_utc(datetime.combine(first + timedelta(days=d), time()), zone) for d in range(8)]
    schedule = await schedule_for(session, agency, chosen, bounds[0], bounds[7])
    slots = schedule.slots(bounds[0], bounds[7])  # each with its own reason: a Sunday shift says Sunday
    keys = {i: a.key for i, a in schedule.advocates.items()}
    days = [day_of(slots, bounds[d], bounds[d + 1], zone, keys) for d in range(7)]

    def link(day: date) -> str:
        return f"{PREFIX}/{agency.slug}/week?" + urlencode({"area": chosen.code, "start": day.isoformat()})

    return render(
        "week.html",
        200,
        found.principal,
        agency,
        areas=areas,
        area=chosen,
        days=days,
        first=first,
        previous=link(first - timedelta(days=7)),
        next=link(first + timedelta(days=7)),
        timezone=agency.timezone,
    )


# -- the advocates ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvocateRow:
    key: str
    name: str
    phone: str
    languages: str
    areas: str
    active: bool
    verified: bool
    unreachable: list[str]


@dataclass(frozen=True)
class AdvocateForm:
    """The form's values as typed (shown again as they were when something is wrong), and what is wrong."""

    key: str = ""
    name: str = ""
    phone: str = ""
    languages: str = "en"
    areas: list[str] = field(default_factory=list)
    active: bool = True
    new: bool = True
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, advocate: Advocate) -> AdvocateForm:
        return cls(
            key=advocate.key,
            name=advocate.name,
            phone=advocate.phone,
            languages=", ".join(advocate.languages),
            areas=sorted(a.code for a in advocate.areas),
            active=advocate.active,
            new=False,
        )

    @classmethod
    def sent(cls, form: FormData, key: str | None) -> AdvocateForm:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        return cls(
            key=key if key is not None else text("key"),
            name=text("name"),
            phone=text("phone").replace(" ", "").replace("-", ""),
            languages=text("languages"),
            areas=[a for a in form.getlist("areas") if isinstance(a, str)],
            active=form.get("active") == "on",
            new=key is None,
        )

    def spec(self) -> AdvocateIn | dict[str, str]:
        """What the API would be sent, or what is wrong with it, field by field."""
        problems: dict[str, str] = {}
        try:
            KEY.validate_python(self.key)
        except ValidationError:
            problems["key"] = FIELD_HELP["key"]
        languages = [lang for lang in self.languages.replace(",", " ").split() if lang]
        try:
            spec = AdvocateIn.model_validate(
                {
                    "name": self.name,
                    "phone": self.phone,
                    "languages": languages,
                    "areas": self.areas,
                    "active": self.active,
                }
            )
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else "name"
                problems.setdefault(name, FIELD_HELP.get(name, error["msg"]))
            return problems
        return problems or spec


async def advocate_rows(session: AsyncSession, agency: Agency) -> list[AdvocateRow]:
    advocates = list(
        await session.scalars(
            select(Advocate)
            .where(Advocate.agency_id == agency.id)
            .options(selectinload(Advocate.areas))
            .order_by(Advocate.key)
        )
    )
    proven = {
        (p.advocate_id, p.phone)
        for p in await session.scalars(
            select(AdvocatePhone).where(AdvocatePhone.agency_id == agency.id, AdvocatePhone.verified_at.is_not(None))
        )
    }
    cut_off = await unreachable_by_phone(session, {a.phone for a in advocates})
    return [
        AdvocateRow(
            key=a.key,
            name=a.name,
            phone=a.phone,
            languages=", ".join(a.languages),
            areas=", ".join(sorted(area.code for area in a.areas)),
            active=a.active,
            verified=(a.id, a.phone) in proven,
            unreachable=cut_off.get(a.phone, []),
        )
        for a in advocates
    ]


async def advocates_page(
    session: AsyncSession, found: Viewer, form: AdvocateForm, status: int = 200, saved: str | None = None
) -> HTMLResponse:
    rows = await advocate_rows(session, found.agency)
    return render(
        "advocates.html",
        status,
        found.principal,
        found.agency,
        advocates=rows,
        form=form,
        areas=await areas_of(session, found.agency),
        saved=saved if any(row.key == saved for row in rows) else None,  # a link can make it say nothing else
        may_change=found.principal.role is Role.admin,
    )


async def advocate_page(session: AsyncSession, found: Viewer, form: AdvocateForm, status: int = 200) -> HTMLResponse:
    areas = await areas_of(session, found.agency)
    return render("advocate.html", status, found.principal, found.agency, form=form, areas=areas)


@router.get(PREFIX + "/{slug}/advocates", response_class=HTMLResponse)
async def advocates(
    slug: str, request: Request, session: SessionDep, saved: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    return await advocates_page(session, found, AdvocateForm(), saved=saved)


@router.get(PREFIX + "/{slug}/advocates/{key}", response_class=HTMLResponse)
async def advocate(slug: str, key: str, request: Request, session: SessionDep) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    advocate = await session.scalar(
        select(Advocate)
        .where(Advocate.agency_id == found.agency.id, Advocate.key == key)
        .options(selectinload(Advocate.areas))
    )
    if advocate is None:
        text = f"No advocate {key!r} in this agency."
        return render("message.html", 404, found.principal, found.agency, title="Not found", text=text)
    return await advocate_page(session, found, AdvocateForm.of(advocate))


@router.post(PREFIX + "/{slug}/advocates", response_class=HTMLResponse)
async def add_advocate(slug: str, request: Request, session: SessionDep) -> Response:
    return await save_advocate(slug, None, request, session)


@router.post(PREFIX + "/{slug}/advocates/{key}", response_class=HTMLResponse)
async def edit_advocate(slug: str, key: str, request: Request, session: SessionDep) -> Response:
    return await save_advocate(slug, key, request, session)


async def save_advocate(slug: str, key: str | None, request: Request, session: AsyncSession) -> Response:
    """Add (key None: the form names it) or change an advocate, as the API's PUT does, or show what is wrong
    next to each field with nothing changed."""
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    if (refusal := refused(found, request)) is not None:
        return refusal
    agency, now = found.agency, request.app.state.clock.now()
    form = AdvocateForm.sent(await request.form(), key)
    spec = form.spec()
    problems = spec if isinstance(spec, dict) else {}
    existing = await session.scalar(
        select(Advocate.id).where(Advocate.agency_id == agency.id, Advocate.key == form.key)
    )
    if form.new and existing is not None:
        problems.setdefault("key", f"There is an advocate {form.key!r} already: change them from the list.")
    if not form.new and existing is None:
        text = f"No advocate {form.key!r} in this agency."
        return render("message.html", 404, found.principal, agency, title="Not found", text=text)
    if isinstance(spec, AdvocateIn) and not problems:
        try:
            await service.put_advocate(session, agency, form.key, spec, now=now)
        except Invalid as exc:
            await session.rollback()  # nothing half-applied
            problems["areas"] = exc.detail or FIELD_HELP["areas"]
    if problems:
        wrong = replace(form, problems=problems)
        if form.new:
            return await advocates_page(session, found, wrong, status=422)
        return await advocate_page(session, found, wrong, status=422)
    await audit.record(
        session,
        actor=found.principal,
        action="change",
        subject=f"POST {PREFIX}/{{slug}}/advocates/{{key}}",
        at=now,
        slug=agency.slug,
        key=form.key,
    )
    return RedirectResponse(f"{PREFIX}/{agency.slug}/advocates?" + urlencode({"saved": form.key}), status_code=303)
