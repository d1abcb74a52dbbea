"""The advocates, kept through a form that validates as the API does and shows its problems by the fields."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from starlette.datastructures import FormData

from services.directory import service
from services.directory.models import Advocate
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
    field_text,
    form_of,
    in_savepoint,
    not_found,
    phone_number,
    redirect,
    render,
    unreachable_by_phone,
    valid,
    viewer,
)
from services.directory.schemas import AdvocateIn, Key
from shared.db import SessionDep
from shared.tables import AdvocatePhone, Agency

HELP = FIELD_HELP | {
    "languages": "One or more language codes (en, es, zh-Hant), separated by commas.",
    "areas": "The areas they cover.",
}
KEY = TypeAdapter(Key)

router = APIRouter(include_in_schema=False)


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
        return cls(
            key=key if key is not None else field_text(form, "key"),
            name=field_text(form, "name"),
            phone=phone_number(field_text(form, "phone")),
            languages=field_text(form, "languages"),
            areas=[a for a in form.getlist("areas") if isinstance(a, str)],
            active=form.get("active") == "on",
            new=key is None,
        )

    def spec(self) -> AdvocateIn | dict[str, str]:
        """What the API would be sent, or what is wrong with it, field by field."""
        problems = {} if valid(KEY, self.key) else {"key": HELP["key"]}
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
            return field_problems(exc, HELP) | problems
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
    session: AsyncSession, found: Viewer, form: AdvocateForm, status: int = 200, done: str | None = None
) -> HTMLResponse:
    return render(
        "advocates.html",
        status,
        found.principal,
        found.agency,
        advocates=await advocate_rows(session, found.agency),
        form=form,
        areas=await areas_of(session, found.agency),
        done=done,
    )


async def advocate_page(session: AsyncSession, found: Viewer, form: AdvocateForm, status: int = 200) -> HTMLResponse:
    areas = await areas_of(session, found.agency)
    return render("advocate.html", status, found.principal, found.agency, form=form, areas=areas)


@router.get(PREFIX + "/{slug}/advocates", response_class=HTMLResponse)
async def advocates(slug: str, request: Request, session: SessionDep, done: str | None = None) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    return await advocates_page(session, found, AdvocateForm(), done=await done_note(session, found, done))


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
        return not_found(found, f"No advocate {key!r} in this agency.")
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
    found = await changer(request, session, slug)
    if isinstance(found, Response):
        return found
    agency, now = found.agency, found.at
    sent = await form_of(request, session, found)
    if isinstance(sent, Response):
        return sent
    form = AdvocateForm.sent(sent, key)
    spec = form.spec()
    problems = spec if isinstance(spec, dict) else {}
    existing = await session.scalar(
        select(Advocate.id).where(Advocate.agency_id == agency.id, Advocate.key == form.key)
    )
    if form.new and existing is not None:
        problems.setdefault("key", f"There is an advocate {form.key!r} already: change them from the list.")
    if not form.new and existing is None:
        return not_found(found, f"No advocate {form.key!r} in this agency.")
    if isinstance(spec, AdvocateIn) and not problems:
        refused = await in_savepoint(session, service.put_advocate(session, agency, form.key, spec, now=now))
        if isinstance(refused, Refusal):
            problems["areas"] = refused.text
    if problems:
        wrong = replace(form, problems=problems)
        if form.new:
            return await advocates_page(session, found, wrong, status=422)
        return await advocate_page(session, found, wrong, status=422)
    done = await audit_change(session, found, request, f"Saved {form.key}.", key=form.key)
    return redirect(agency, "advocates", done=done)
