"""What every program page shares: who is asking and which agency they may see, how a page is rendered, and
why a change may be refused."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import Area
from shared import audit
from shared.auth import Principal
from shared.problems import Invalid, NotFound
from shared.security import csp_nonce
from shared.sessions import COOKIE, Lifetime, cross_site, resume
from shared.tables import Agency, Unreachable

PREFIX = "/dashboard/program"
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"), autoescape=select_autoescape(["html"])
)
TEMPLATES.globals["csp_nonce"] = csp_nonce  # each page's <style> nonce (shared/security.py)

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


async def changer(request: Request, session: AsyncSession, slug: str) -> Viewer | Response:
    """As `viewer`, for a form that changes something: a POST from another site is refused (a page saying so)."""
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    if cross_site(request) is not None:
        text = "Refused: the form was sent from another site."
        return render("message.html", 403, found.principal, found.agency, title="Refused", text=text)
    return found


async def audit_change(session: AsyncSession, found: Viewer, request: Request, **detail: str) -> None:
    """Record a change made from a page as the API records its own (shared/audit.py): the route, its values."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    await audit.record(
        session,
        actor=found.principal,
        action="change",
        subject=f"{request.method} {route}",
        at=request.app.state.clock.now(),
        **({k: str(v) for k, v in request.path_params.items()} | detail),
    )


T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """Why the API's own function refused a change: what it said, and whether it was something named that is
    not there (NotFound) rather than something wrong (Invalid)."""

    text: str
    not_found: bool = False


async def saved(session: AsyncSession, change: Coroutine[Any, Any, T]) -> T | Refusal:
    """Make one change with the API's own function, in a savepoint: when it refuses, all it did is undone (nothing
    half-applied) and the session still holds what the page shows again (a full rollback would expire it all)."""
    try:
        async with session.begin_nested():
            return await change
    except (Invalid, NotFound) as exc:
        return Refusal(str(exc), not_found=isinstance(exc, NotFound))


def field_problems(exc: ValidationError, help: Mapping[str, str], depth: int = 1) -> dict[str, str]:
    """The API's model's complaints, one per field on the form: a field is named by the first `depth` parts of
    where the model found the fault ("languages"; "shifts.2.start" at depth 3), in words for a person where `help`
    has them for its last part."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        where = [str(part) for part in error["loc"][:depth]] or ["form"]
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.setdefault(".".join(where), help.get(where[-1], message))
    return problems


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
