"""What every program page shares: who is asking and which agency they may see, how a form is read and a page
rendered, why a change may be refused, and how a change is recorded and then said."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Coroutine, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.formparsers import FormParser

from services.directory.models import Area
from services.directory.schemas import YEARS
from shared import audit
from shared.auth import Principal
from shared.localtime import NotOnTheClock, instant
from shared.problems import Invalid, NotFound, PayloadTooLarge
from shared.requests import read_bounded_body
from shared.security import csp_nonce
from shared.sessions import COOKIE, Lifetime, cross_site, resume
from shared.tables import Agency, Unreachable

PREFIX = "/dashboard/program"
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"), autoescape=select_autoescape(["html"])
)
TEMPLATES.globals["csp_nonce"] = csp_nonce  # each page's <style> nonce (shared/security.py)
# The first key of the lock the pages' changes to one agency take (one_at_a_time): pg_advisory_xact_lock(PAGE_LOCK,
# agency id). Two keys cannot meet the audit's one-key lock, and this first key is not the workers' (alerts/leases.py).
PAGE_LOCK = 0x5047
FORM_LIMIT = 64 * 1024  # far above any page's form (a policy's ten steps are a few hundred bytes)

# What a field needs, said to a person (the API's own words name regular expressions and types): the fields more
# than one form has. Each page adds its own.
INTERNATIONAL = "in international form: + and the country code, like +12025550102"
FIELD_HELP = {
    "key": "Lower-case letters, digits, - and _ (up to 64), starting with a letter or digit.",
    "name": "A name, up to 200 characters.",
    "role": "Primary, backup or supervisor.",
    "area": "Choose one of the agency's areas.",
    "phone": f"A mobile number {INTERNATIONAL}.",
    "confirm": "Tick the box to say you mean it.",
}

# -- who is asking ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    agency: Agency
    at: datetime  # when they asked (the app's clock, read once for the request)


async def viewer(request: Request, session: AsyncSession, slug: str) -> Viewer | Response:
    """The signed-in principal and the agency they may see, or the page to send them to instead."""
    session_id, now = request.cookies.get(COOKIE), request.app.state.clock.now()
    principal = None
    if session_id:
        lifetime = Lifetime.of(request.app.state.settings)
        principal = await resume(request, session, session_id, lifetime, now)
    if principal is None:  # the sign-in page drops a cookie whose session has ended
        return RedirectResponse("/dashboard/sign-in" + ("?ended=1" if session_id else ""), status_code=303)
    agency = await session.scalar(select(Agency).where(Agency.slug == slug))
    if agency is None or not principal.may_see_agency(agency.id):
        return message(principal, None, 404, "Not found", f"No agency {slug!r}.")
    return Viewer(principal, agency, now)


async def changer(request: Request, session: AsyncSession, slug: str) -> Viewer | Response:
    """As `viewer`, for a form that changes something: a POST from another site is refused (a page saying so)."""
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    if cross_site(request) is not None:
        return message(found.principal, found.agency, 403, "Refused", "Refused: the form was sent from another site.")
    return found


async def one_at_a_time(session: AsyncSession, found: Viewer) -> None:
    """The agency's page changes are made one at a time, to the transaction's end: a form checks what is there
    ("there is an area 2 already") before it saves, and two people sending one at once must not both pass. Taken
    once the form is read, never while a slow client is still sending it. (The API's routes take no such lock: a
    page still meets the tables' own uniqueness, in_savepoint.)"""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :agency)"), {"space": PAGE_LOCK, "agency": found.agency.id}
    )


# -- pages --------------------------------------------------------------------------------------------------------


def render(
    template: str, status: int, principal: Principal | None, agency: Agency | None, **values: object
) -> HTMLResponse:
    body = TEMPLATES.get_template(template).render(principal=principal, agency=agency, prefix=PREFIX, **values)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def message(principal: Principal | None, agency: Agency | None, status: int, title: str, text: str) -> HTMLResponse:
    return render("message.html", status, principal, agency, title=title, text=text)


def not_found(found: Viewer, text: str) -> HTMLResponse:
    return message(found.principal, found.agency, 404, "Not found", text)


def redirect(agency: Agency, page: str, **query: str | int) -> RedirectResponse:
    """To the agency's page (a path under it: "areas/1/schedule"), as a 303: the browser GETs it."""
    return RedirectResponse(f"{PREFIX}/{agency.slug}/{page}" + (f"?{urlencode(query)}" if query else ""), 303)


# -- forms --------------------------------------------------------------------------------------------------------


async def one_chunk(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def form_of(request: Request, session: AsyncSession, found: Viewer) -> FormData | HTMLResponse:
    """A page's form as a browser sends it (URL-encoded), read within FORM_LIMIT, or the page refusing it: any
    other kind of body (a multipart one would be spooled to disk, files and all) or a larger one. A POST that says
    no type (one with no body) is an empty form, its body unread. Once it is read, the change waits its turn
    (one_at_a_time)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not kind:
        await one_at_a_time(session, found)
        return FormData()
    if kind != "application/x-www-form-urlencoded":
        return message(
            found.principal, found.agency, 415, "Refused", "Refused: the form was not sent as a page's form is."
        )
    try:
        body = await read_bounded_body(request, FORM_LIMIT)
    except PayloadTooLarge:
        text = f"Refused: a form may be at most {FORM_LIMIT // 1024} KiB, and this one was larger."
        return message(found.principal, found.agency, 413, "Too large", text)
    await one_at_a_time(session, found)
    return await FormParser(request.headers, one_chunk(body)).parse()


def field_text(form: FormData, name: str) -> str:
    """A field as typed, trimmed; nothing for one not sent (or sent as a file)."""
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


F = TypeVar("F")


def typed_form(form_type: type[F], form: FormData, **given: object) -> F:
    """A form dataclass filled from the form sent: each of its text fields (annotated `str`) as typed, by its own
    name; the rest (lists, flags, problems) as `given` or its default."""
    texts = {f.name: field_text(form, f.name) for f in fields(form_type) if f.type in ("str", str)}  # type: ignore[arg-type]
    return form_type(**(texts | given))


def phone_number(typed: str) -> str:
    """A phone number as a person types it ("+1 202-555-0100") as the API takes it."""
    return typed.replace(" ", "").replace("-", "")


T = TypeVar("T")


def valid(adapter: TypeAdapter[T], value: object) -> T | None:
    """The value as the API's type reads it, or None when the type refuses it."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def on_the_clock(wall: datetime, timezone: str) -> datetime | str:
    """A wall time typed on `timezone`'s clock as the instant it names, or what is wrong with it: a year the API
    takes none in, or a time the clocks skip or show twice that night (shared/localtime.py)."""
    if wall.year not in YEARS:
        return f"A date in the years {YEARS.start} to {YEARS.stop - 1}."
    try:
        return instant(wall, timezone)
    except NotOnTheClock as exc:
        return str(exc)


def field_problems(exc: ValidationError, help: Mapping[str, str], depth: int = 1) -> dict[str, str]:
    """The API's model's complaints, one per field on the form: a field is named by the first `depth` parts of
    where the model found the fault ("languages"; "shifts.2.start" at depth 3), in words for a person where `help`
    has them for its last part."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        where = [str(part) for part in error["loc"][:depth]] or ["form"]
        said = str(error["msg"]).removeprefix("Value error, ")
        problems.setdefault(".".join(where), help.get(where[-1], said))
    return problems


# -- changes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why the API's own function refused a change: what it said, and whether it was something named that is
    not there (NotFound) rather than something wrong (Invalid)."""

    text: str
    not_found: bool = False


async def in_savepoint(session: AsyncSession, change: Coroutine[Any, Any, T]) -> T | Refusal:
    """Make one change with the API's own function, in a savepoint: when it refuses, all it did is undone (nothing
    half-applied) and the session still holds what the page shows again (a full rollback would expire it all)."""
    try:
        async with session.begin_nested():
            return await change
    except (Invalid, NotFound) as exc:
        return Refusal(str(exc), not_found=isinstance(exc, NotFound))
    except IntegrityError:  # the API made the same thing at the same moment (it takes no page lock)
        return Refusal("It was changed elsewhere at the same moment: look at it again, then send the form again.")


async def audit_change(session: AsyncSession, found: Viewer, request: Request, note: str, **detail: str) -> int:
    """Record a change made from a page as the API records its own (shared/audit.py): the route, its values, and
    `note`, the sentence saying what was done (keys, roles, areas, local times: never a name or a phone), which
    the page the change redirects to shows (`done_note`). Returns the record's number, for that redirect."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return await audit.record(
        session,
        actor=found.principal,
        action="change",
        subject=f"{request.method} {route}",
        at=found.at,
        **({k: str(v) for k, v in request.path_params.items()} | detail | {"note": note}),
    )


DONE_LATELY = timedelta(minutes=10)  # a page's redirect is followed at once; an older record is not "just done"


async def done_note(session: AsyncSession, found: Viewer, done: str | None) -> str | None:
    """What a change said it did (?done=<its audit record>), shown only when that record is a change this same
    principal (the token) made to this agency in the last few minutes: a crafted link can show its reader nothing
    but what they just did."""
    if done is None or not (done.isascii() and done.isdigit() and len(done) <= 18):
        return None
    record = await session.get(audit.AuditRecord, int(done))
    if (
        record is None
        or record.action != "change"
        or record.actor != audit.actor_of(found.principal)
        or record.detail.get("slug") != found.agency.slug
        or not timedelta(0) <= found.at - record.at <= DONE_LATELY
    ):
        return None
    note = record.detail.get("note")
    return note if isinstance(note, str) else None


# -- what pages look up -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """An advocate as a page lists them by an area."""

    key: str
    name: str
    on_call: bool  # active and covering the area: may be put on call there


async def areas_of(session: AsyncSession, agency: Agency) -> list[Area]:
    return list(await session.scalars(select(Area).where(Area.agency_id == agency.id).order_by(Area.code)))


async def area_of(session: AsyncSession, agency: Agency, code: str) -> Area | None:
    return await session.scalar(select(Area).where(Area.agency_id == agency.id, Area.code == code))


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
