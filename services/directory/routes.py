"""The directory's HTTP API: an admin creates agencies and keeps their integration (webhook secret, code map,
notify URL); an admin or the agency's own supervisors keep its program: areas, advocates, schedules (weekly,
rotations, calendars), overrides, escalation policies, hotline and feed watch, premise flags, and ask who is on
call; advocates subscribe to their own shift feeds."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import cover, schedules, service
from services.directory.coverage import contact_watch, coverage_gaps
from services.directory.policies import delete_policy, policy_for, put_policy
from services.directory.roster import on_call
from services.directory.schemas import (
    Address,
    AdvocateIn,
    AdvocateOut,
    AgencyIn,
    AgencyOut,
    AreaIn,
    AreaOut,
    CalendarOut,
    ContactTestOut,
    ContactWatchOut,
    CoverageOut,
    CoverRequestOut,
    FeedOut,
    Key,
    Language,
    OnCallOut,
    OverrideIn,
    OverrideOut,
    PolicyIn,
    PolicyOut,
    PremiseFlagIn,
    PremiseFlagOut,
    ProgramIn,
    ProgramOut,
    Role,
    RotationIn,
    RotationOut,
    ScheduleIn,
    Tier,
)
from shared import audit
from shared.audit import actor_of, audit_change
from shared.auth import AdminDep, Principal, PrincipalDep, authenticate
from shared.db import SessionDep
from shared.premises import premise_key
from shared.problems import Invalid, NotFound, UnsupportedMediaType
from shared.requests import RowId, form_example, read_bounded_body
from shared.sessions import refuse_cross_site
from shared.settings import Settings
from shared.tables import Agency, ContactTest, PremiseFlag
from shared.text import AreaCode


async def agency_for(session: AsyncSession, slug: str, principal: Principal | None) -> Agency:
    """The agency, for an admin or one of its own supervisors (None: the alerts worker, on the routes it reads);
    another agency's supervisor is told it does not exist, as for one that does not."""
    agency = await session.scalar(select(Agency).where(Agency.slug == slug))
    if agency is None or (principal is not None and not principal.may_see_agency(agency.id)):
        raise NotFound(f"No agency {slug!r}.")
    return agency


_bearer = HTTPBearer(auto_error=False, description="An admin or supervisor token, or the worker's directory token.")


async def on_call_reader(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """Who asks who is on call: an admin, a supervisor (for their own agency), or the alerts worker (None) with
    its directory credential (CALLOUT_DIRECTORY_TOKEN), which opens these read routes and no other."""
    worker = request.app.state.settings.directory_credential
    if credentials is not None and hmac.compare_digest(credentials.credentials.encode(), worker.encode()):
        return None
    return await authenticate(request, session, credentials)


ReaderDep = Annotated[Principal | None, Depends(on_call_reader)]


# Every change made through it is audited; the advocates' feeds (no token: the address is the secret) are apart.
router = APIRouter(
    prefix="/v1/directory",
    tags=["directory"],
    responses={401: {}, 403: {}, 404: {}, 422: {}},
    dependencies=[Depends(audit_change, scope="function")],
)
feed_router = APIRouter(prefix="/v1/directory", tags=["directory"])
# What the alerts worker reads (as well as admins and supervisors): apart, so that its credential opens nothing else.
reader_router = APIRouter(prefix="/v1/directory", tags=["directory"], responses={401: {}, 404: {}, 422: {}})
# The advocates' own cover pages: no token, the link is the secret; each view and step is audited as theirs.
cover_router = APIRouter(tags=["directory"])
Slug = Annotated[Key, Path(description="The agency's slug, as in its webhook URL.")]
AreaPath = Annotated[AreaCode, Path(description="The area's code: letters, digits, spaces and . - _.")]


@router.put("/agencies/{slug}", response_model=AgencyOut, summary="Create or update an agency")
async def put_agency(slug: Slug, spec: AgencyIn, session: SessionDep, _: AdminDep, request: Request) -> AgencyOut:
    agency, secret = await service.put_agency(
        session, slug, spec, now=request.app.state.clock.now(), egress=request.app.state.egress
    )
    return AgencyOut(
        slug=agency.slug,
        name=agency.name,
        hotline=agency.hotline,
        timezone=agency.timezone,
        code_map=agency.code_map,
        notify_url=agency.notify_url,
        feed_silence_minutes=agency.feed_silence_minutes,
        it_contact=agency.it_contact,
        webhook_secret=secret,
    )


@router.put(
    "/agencies/{slug}/program",
    response_model=ProgramOut,
    summary="Set the program's hotline, and whom to tell (and when) if its CAD feed falls silent",
)
async def put_program(slug: Slug, spec: ProgramIn, session: SessionDep, principal: PrincipalDep) -> ProgramOut:
    agency = await agency_for(session, slug, principal)
    service.put_program(agency, spec)
    await session.flush()
    return ProgramOut(
        hotline=agency.hotline, feed_silence_minutes=agency.feed_silence_minutes, it_contact=agency.it_contact
    )


@router.put("/agencies/{slug}/areas/{code}", response_model=AreaOut, summary="Create or rename a coverage area")
async def put_area(slug: Slug, code: AreaPath, spec: AreaIn, session: SessionDep, principal: PrincipalDep) -> AreaOut:
    area = await service.put_area(session, await agency_for(session, slug, principal), code, spec)
    return AreaOut(code=area.code, name=area.name)


@router.put("/agencies/{slug}/advocates/{key}", response_model=AdvocateOut, summary="Create or update an advocate")
async def put_advocate(
    slug: Slug, key: Key, spec: AdvocateIn, session: SessionDep, principal: PrincipalDep, request: Request
) -> AdvocateOut:
    agency = await agency_for(session, slug, principal)
    advocate = await service.put_advocate(session, agency, key, spec, now=request.app.state.clock.now())
    return AdvocateOut(
        key=advocate.key,
        name=advocate.name,
        phone=advocate.phone,
        languages=advocate.languages,
        areas=sorted(a.code for a in advocate.areas),
        active=advocate.active,
        phone_verified=await service.phone_verified(session, advocate),
    )


@router.post(
    "/agencies/{slug}/advocates/{key}/tests",
    response_model=ContactTestOut,
    status_code=202,
    summary="Send a test text and a test call to an advocate's phone",
)
async def post_contact_test(
    slug: Slug, key: Key, session: SessionDep, principal: PrincipalDep, request: Request
) -> ContactTestOut:
    """The alerts service sends both at once and records what each came to: read it back with GET."""
    agency = await agency_for(session, slug, principal)
    advocate = await service.get_advocate(session, agency, key)
    test = await service.request_test(
        session, advocate, requested_by=actor_of(principal), now=request.app.state.clock.now()
    )
    return contact_test_out(test, advocate.key)


@router.get(
    "/agencies/{slug}/advocates/{key}/tests",
    response_model=list[ContactTestOut],
    summary="An advocate's phone tests, newest first, and what each came to",
)
async def get_contact_tests(slug: Slug, key: Key, session: SessionDep, principal: PrincipalDep) -> list[ContactTestOut]:
    agency = await agency_for(session, slug, principal)
    advocate = await service.get_advocate(session, agency, key)
    tests = await session.scalars(
        select(ContactTest)
        .where(ContactTest.advocate_id == advocate.id)
        .order_by(ContactTest.requested_at.desc(), ContactTest.id.desc())
        .limit(20)
    )
    return [contact_test_out(test, advocate.key) for test in tests]


def contact_test_out(test: ContactTest, key: str) -> ContactTestOut:
    return ContactTestOut(
        id=test.id,
        advocate=key,
        requested_at=test.requested_at,
        requested_by=test.requested_by,
        text_result=test.text_result,
        text_at=test.text_at,
        call_result=test.call_result,
        call_at=test.call_at,
    )


@router.get(
    "/agencies/{slug}/coverage-gaps",
    response_model=CoverageOut,
    summary="Every area, role and time with nobody on call in the days ahead, and languages nobody on call speaks",
)
async def get_coverage_gaps(
    slug: Slug,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
    days: Annotated[int, Query(ge=1, le=62)] = 14,
) -> CoverageOut:
    agency = await agency_for(session, slug, principal)
    return await coverage_gaps(session, agency, request.app.state.clock.now(), timedelta(days=days))


@reader_router.get(
    "/agencies/{slug}/contact-watch",
    response_model=ContactWatchOut,
    summary="Who is on call soon with a phone that may fail them, and whom to tell",
)
async def get_contact_watch(
    slug: Slug,
    session: SessionDep,
    principal: ReaderDep,
    request: Request,
    hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24,
) -> ContactWatchOut:
    agency = await agency_for(session, slug, principal)
    return await contact_watch(session, agency, request.app.state.clock.now(), timedelta(hours=hours))


@router.get(
    "/agencies/{slug}/cover-requests",
    response_model=list[CoverRequestOut],
    summary="Cover advocates asked for, for shifts not yet over: open ones first",
)
async def get_cover_requests(
    slug: Slug, session: SessionDep, principal: PrincipalDep, request: Request
) -> list[CoverRequestOut]:
    agency = await agency_for(session, slug, principal)
    return await cover.cover_requests(session, agency, request.app.state.clock.now())


@router.put(
    "/agencies/{slug}/areas/{code}/schedule", summary="Replace an area's weekly on-call schedule", status_code=204
)
async def put_schedule(
    slug: Slug, code: AreaPath, spec: ScheduleIn, session: SessionDep, principal: PrincipalDep
) -> None:
    agency = await agency_for(session, slug, principal)
    await service.put_schedule(session, agency, await service.get_area(session, agency, code), spec)


@reader_router.get("/agencies/{slug}/on-call", response_model=OnCallOut, summary="Who is on call for an area at a time")
async def get_on_call(
    slug: Slug,
    session: SessionDep,
    principal: ReaderDep,
    request: Request,
    area: Annotated[str | None, Query(max_length=64)] = None,
    at: Annotated[datetime | None, Query(description="RFC 3339; default now")] = None,
    language: Annotated[Language | None, Query(description="The victim's language (BCP 47)")] = None,
    tier: Annotated[Tier | None, Query(description="Include how this tier escalates here")] = None,
) -> OnCallOut:
    if at is not None and at.tzinfo is None:
        raise Invalid("`at` needs a time zone offset (RFC 3339).")
    moment = at or request.app.state.clock.now()
    agency = await agency_for(session, slug, principal)
    chain = await on_call(session, agency, area, moment, language)
    area_row = await service.find_area(session, agency, area) if area else None
    policy = await policy_for(session, agency, area_row, tier) if tier else None
    return OnCallOut(
        agency=slug, area=area, at=moment, language=language, chain=chain, hotline=agency.hotline, policy=policy
    )


@router.put("/agencies/{slug}/policies/{tier}", summary="Set how a tier escalates in all of an agency's areas")
async def put_agency_policy(
    slug: Slug, tier: Tier, spec: PolicyIn, session: SessionDep, principal: PrincipalDep
) -> PolicyOut:
    agency = await agency_for(session, slug, principal)
    await put_policy(session, agency, None, tier, spec)
    return await policy_for(session, agency, None, tier)


@router.put("/agencies/{slug}/areas/{code}/policies/{tier}", summary="Set how a tier escalates in one area")
async def put_area_policy(
    slug: Slug, code: AreaPath, tier: Tier, spec: PolicyIn, session: SessionDep, principal: PrincipalDep
) -> PolicyOut:
    agency = await agency_for(session, slug, principal)
    area = await service.get_area(session, agency, code)
    await put_policy(session, agency, area, tier, spec)
    return await policy_for(session, agency, area, tier)


@router.delete(
    "/agencies/{slug}/policies/{tier}",
    status_code=204,
    summary="Go back to the default for how a tier escalates in an agency's areas (those without their own)",
)
async def delete_agency_policy(slug: Slug, tier: Tier, session: SessionDep, principal: PrincipalDep) -> None:
    await delete_policy(session, await agency_for(session, slug, principal), None, tier)


@router.delete(
    "/agencies/{slug}/areas/{code}/policies/{tier}",
    status_code=204,
    summary="Go back to the agency's policy (or the default) for how a tier escalates in one area",
)
async def delete_area_policy(
    slug: Slug, code: AreaPath, tier: Tier, session: SessionDep, principal: PrincipalDep
) -> None:
    agency = await agency_for(session, slug, principal)
    await delete_policy(session, agency, await service.get_area(session, agency, code), tier)


# -- the schedule beyond the weekly pattern -------------------------------------------------------------------

RotationName = Annotated[Key, Path(description="The rotation's name, unique in the area.")]


@router.put(
    "/agencies/{slug}/areas/{code}/rotations/{name}",
    response_model=RotationOut,
    summary="Create or replace a rotation: people taking turns in one role",
)
async def put_rotation(
    slug: Slug, code: AreaPath, name: RotationName, spec: RotationIn, session: SessionDep, principal: PrincipalDep
) -> RotationOut:
    agency = await agency_for(session, slug, principal)
    return await schedules.put_rotation(session, agency, await service.get_area(session, agency, code), name, spec)


@router.delete("/agencies/{slug}/areas/{code}/rotations/{name}", status_code=204, summary="Remove a rotation")
async def delete_rotation(
    slug: Slug, code: AreaPath, name: RotationName, session: SessionDep, principal: PrincipalDep
) -> None:
    agency = await agency_for(session, slug, principal)
    await schedules.delete_rotation(session, await service.get_area(session, agency, code), name)


@router.post(
    "/agencies/{slug}/overrides",
    response_model=OverrideOut,
    status_code=201,
    summary="Put someone on call for a time range, covering for one person or added to the schedule",
)
async def post_override(
    slug: Slug, spec: OverrideIn, session: SessionDep, principal: PrincipalDep, request: Request
) -> OverrideOut:
    agency = await agency_for(session, slug, principal)
    return await schedules.add_override(session, agency, spec, now=request.app.state.clock.now())


@router.get("/agencies/{slug}/overrides", response_model=list[OverrideOut], summary="Overrides not yet over")
async def get_overrides(
    slug: Slug, session: SessionDep, principal: PrincipalDep, request: Request
) -> list[OverrideOut]:
    agency = await agency_for(session, slug, principal)
    return await schedules.list_overrides(session, agency, ending_after=request.app.state.clock.now())


@router.delete("/agencies/{slug}/overrides/{override_id}", status_code=204, summary="Remove an override")
async def delete_override(slug: Slug, override_id: RowId, session: SessionDep, principal: PrincipalDep) -> None:
    await schedules.delete_override(session, await agency_for(session, slug, principal), override_id)


CalendarName = Annotated[Key, Path(description="The calendar's name, unique in the area.")]
# A program's calendar as its own calendar app keeps it: Luis on weekday days; the weekend by attendee.
CALENDAR_EXAMPLE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Metro DV program//on-call//EN
BEGIN:VEVENT
UID:weekday-days@program.example
SUMMARY:Luis on call
DTSTART;TZID=America/Chicago:20261116T080000
DTEND;TZID=America/Chicago:20261116T200000
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR
END:VEVENT
BEGIN:VEVENT
UID:weekends@program.example
SUMMARY:Weekend
DTSTART;VALUE=DATE:20261121
DTEND;VALUE=DATE:20261123
RRULE:FREQ=WEEKLY
ATTENDEE;CN=Dana:mailto:oncall@program.example
END:VEVENT
END:VCALENDAR
"""


@router.put(
    "/agencies/{slug}/areas/{code}/calendars/{name}",
    response_model=CalendarOut,
    summary="Import a program's on-call calendar (iCalendar, text/calendar) for one role in an area",
    description="Each event puts the advocates it names (by attendee name or in its summary, by key or name) in "
    "the role while it lasts; recurring events and their exceptions are read as the calendar says. Importing "
    "again replaces the calendar.",
    openapi_extra={
        "requestBody": {
            "content": {"text/calendar": {"schema": {"type": "string"}, "example": CALENDAR_EXAMPLE}},
            "required": True,
        }
    },
)
async def put_calendar(
    slug: Slug,
    code: AreaPath,
    name: CalendarName,
    role: Annotated[Role, Query()],
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> CalendarOut:
    if request.headers.get("content-type", "").split(";")[0].strip() != "text/calendar":
        raise UnsupportedMediaType("Send the calendar as Content-Type: text/calendar.")
    body = await read_bounded_body(request, schedules.MAX_CALENDAR_BYTES)
    agency = await agency_for(session, slug, principal)
    area = await service.get_area(session, agency, code)
    return await schedules.put_calendar(session, agency, area, name, role, body, now=request.app.state.clock.now())


@router.delete("/agencies/{slug}/areas/{code}/calendars/{name}", status_code=204, summary="Remove a program's calendar")
async def delete_calendar(
    slug: Slug, code: AreaPath, name: CalendarName, session: SessionDep, principal: PrincipalDep
) -> None:
    agency = await agency_for(session, slug, principal)
    await schedules.delete_calendar(session, await service.get_area(session, agency, code), name)


@router.post(
    "/agencies/{slug}/advocates/{key}/feed",
    response_model=FeedOut,
    summary="Issue an advocate's shift feed address (iCalendar), replacing any earlier one",
)
async def post_feed(slug: Slug, key: Key, session: SessionDep, principal: PrincipalDep, request: Request) -> FeedOut:
    advocate = await service.get_advocate(session, await agency_for(session, slug, principal), key)
    token = await schedules.issue_feed(session, advocate)
    settings: Settings = request.app.state.settings
    return FeedOut(url=settings.public_link(f"/v1/directory/feeds/{token}.ics"))


@feed_router.get(
    "/feeds/{token}.ics",
    summary="An advocate's shifts as an iCalendar feed (the address is the secret)",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def get_feed(token: Annotated[str, Path(max_length=100)], session: SessionDep, request: Request) -> Response:
    body = await schedules.feed(session, token, now=request.app.state.clock.now())
    return Response(body, media_type="text/calendar", headers={"Cache-Control": "private, max-age=300"})


# -- an advocate's own cover page -----------------------------------------------------------------------------

CoverToken = Annotated[str, Path(min_length=10, max_length=64, description="The secret of the advocate's link.")]


@cover_router.get(
    "/c/{token}",
    response_class=HTMLResponse,
    summary="An advocate's own cover page: their shifts in the next 14 days, and the shifts they are asked to cover",
)
async def get_cover_page(token: CoverToken, session: SessionDep, request: Request) -> HTMLResponse:
    """Changes nothing but the audit trail: a link-preview bot's fetch asks for no cover and takes no shift."""
    now = request.app.state.clock.now()
    link, advocate = await cover.link_owner(session, token, now)
    agency = await session.get_one(Agency, advocate.agency_id)
    page = await cover.page_for(session, agency, advocate, link, now, note=None)
    await audit_cover(request, session, advocate.id, cover.Acted("", "opened"), now)
    return cover_response(page)


@cover_router.post(
    "/c/{token}",
    response_class=HTMLResponse,
    summary="From an advocate's cover page: ask for cover of a shift, take a shift offered, or withdraw an ask",
    dependencies=[Depends(refuse_cross_site)],
    openapi_extra=form_example({"action": "take", "cover": "1"}),
)
async def post_cover_page(
    token: CoverToken,
    session: SessionDep,
    request: Request,
    action: Annotated[str, Form(max_length=16, description="ask, take or withdraw")],
    shift: Annotated[str, Form(max_length=200, description="To ask: the shift, as the page names it.")] = "",
    cover_request: Annotated[str, Form(alias="cover", max_length=12, description="To take or withdraw.")] = "",
) -> HTMLResponse:
    now = request.app.state.clock.now()
    link, advocate = await cover.link_owner(session, token, now)
    if action not in cover.ACTIONS:
        raise NotFound("No such action.")
    agency = await session.get_one(Agency, advocate.agency_id)
    if action == "ask":
        acted = await cover.ask(session, agency, advocate, link, shift, now)
    elif not cover_request.isdigit():
        raise NotFound("No such cover request.")
    elif action == "take":
        acted = await cover.take(session, agency, advocate, int(cover_request), now)
    else:
        acted = await cover.withdraw(session, agency, advocate, int(cover_request), now)
    await audit_cover(request, session, advocate.id, acted, now, did=action)
    return cover_response(await cover.page_for(session, agency, advocate, link, now, note=acted.note))


async def audit_cover(
    request: Request, session: AsyncSession, advocate_id: int, acted: cover.Acted, now: datetime, did: str = "opened"
) -> None:
    """Recorded after the request's row is locked (cover.take): the trail's own lock is always taken last."""
    await audit.record(
        session,
        actor=f"advocate:{advocate_id}",
        action="change" if acted.changed else "view",
        subject=f"cover request {acted.cover_request}" if acted.cover_request else "cover page",
        at=now,
        did=did,
        outcome=acted.outcome,
        client=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent", "")[:200],
    )


def cover_response(page: cover.CoverPage) -> HTMLResponse:
    return HTMLResponse(
        page.html(), headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    )


# -- premise flags: kept by an address's key, never with the address ----------------------------------------


def key_of(address: Address, request: Request) -> str:
    settings: Settings = request.app.state.settings
    key = premise_key(address.model_dump(), settings.premise_secret)
    if key is None:
        raise Invalid("This address cannot be read as a street address (number, street, city or postal code).")
    return key


@router.post(
    "/agencies/{slug}/premise-flags",
    response_model=PremiseFlagOut,
    status_code=201,
    summary="Flag an address: DV history, firearm, protection order, prior strangulation, other",
    description="The address is normalised and kept as a keyed hash only; calls from it raise their tier.",
)
async def post_premise_flag(
    slug: Slug, spec: PremiseFlagIn, session: SessionDep, principal: PrincipalDep, request: Request
) -> PremiseFlagOut:
    agency = await agency_for(session, slug, principal)
    flag = PremiseFlag(
        agency_id=agency.id,
        premise_key=key_of(spec.address, request),
        kind=spec.kind,
        source=spec.source,
        created_at=request.app.state.clock.now(),
        expires_at=spec.expires_at,
    )
    session.add(flag)
    await session.flush()
    return PremiseFlagOut.model_validate(flag, from_attributes=True)


@router.post(
    "/agencies/{slug}/premise-flags/search",
    response_model=list[PremiseFlagOut],
    summary="The flags on an address (asked in a body, so that the address stays out of URLs and their logs)",
)
async def search_premise_flags(
    slug: Slug, address: Address, session: SessionDep, principal: PrincipalDep, request: Request
) -> list[PremiseFlagOut]:
    agency = await agency_for(session, slug, principal)
    flags = await session.scalars(
        select(PremiseFlag)
        .where(PremiseFlag.agency_id == agency.id, PremiseFlag.premise_key == key_of(address, request))
        .order_by(PremiseFlag.id)
    )
    return [PremiseFlagOut.model_validate(f, from_attributes=True) for f in flags]


@router.delete("/agencies/{slug}/premise-flags/{flag_id}", status_code=204, summary="Remove a premise flag")
async def delete_premise_flag(slug: Slug, flag_id: RowId, session: SessionDep, principal: PrincipalDep) -> None:
    agency = await agency_for(session, slug, principal)
    flag = await session.scalar(
        select(PremiseFlag).where(PremiseFlag.id == flag_id, PremiseFlag.agency_id == agency.id)
    )
    if flag is None:
        raise NotFound(f"No premise flag {flag_id}.")
    await session.delete(flag)
