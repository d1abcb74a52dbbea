"""The directory's HTTP API (admin token): keep agencies, areas, advocates and schedules; ask who is on call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from services.directory import service
from services.directory.policies import policy_for, put_policy
from services.directory.roster import on_call
from services.directory.schemas import (
    AdvocateIn,
    AdvocateOut,
    AgencyIn,
    AgencyOut,
    AreaIn,
    AreaOut,
    Key,
    Language,
    OnCallOut,
    PolicyIn,
    PolicyOut,
    ScheduleIn,
    Tier,
)
from shared.auth import AdminDep
from shared.db import SessionDep
from shared.problems import Invalid

router = APIRouter(prefix="/v1/directory", tags=["directory"], responses={401: {}, 403: {}, 404: {}, 422: {}})
Slug = Annotated[Key, Path(description="The agency's slug, as in its webhook URL.")]
AreaCode = Annotated[str, Path(min_length=1, max_length=64)]


@router.put("/agencies/{slug}", response_model=AgencyOut, summary="Create or update an agency")
async def put_agency(slug: Slug, spec: AgencyIn, session: SessionDep, _: AdminDep, request: Request) -> AgencyOut:
    agency, secret = await service.put_agency(session, slug, spec, now=request.app.state.clock.now())
    return AgencyOut(
        slug=agency.slug,
        name=agency.name,
        hotline=agency.hotline,
        timezone=agency.timezone,
        code_map=agency.code_map,
        webhook_secret=secret,
    )


@router.put("/agencies/{slug}/areas/{code}", response_model=AreaOut, summary="Create or rename a coverage area")
async def put_area(slug: Slug, code: AreaCode, spec: AreaIn, session: SessionDep, _: AdminDep) -> AreaOut:
    area = await service.put_area(session, await service.get_agency(session, slug), code, spec)
    return AreaOut(code=area.code, name=area.name)


@router.put("/agencies/{slug}/advocates/{key}", response_model=AdvocateOut, summary="Create or update an advocate")
async def put_advocate(
    slug: Slug, key: Key, spec: AdvocateIn, session: SessionDep, _: AdminDep, request: Request
) -> AdvocateOut:
    agency = await service.get_agency(session, slug)
    advocate = await service.put_advocate(session, agency, key, spec, now=request.app.state.clock.now())
    return AdvocateOut(
        key=advocate.key,
        name=advocate.name,
        phone=advocate.phone,
        languages=advocate.languages,
        areas=sorted(a.code for a in advocate.areas),
        active=advocate.active,
    )


@router.put(
    "/agencies/{slug}/areas/{code}/schedule", summary="Replace an area's weekly on-call schedule", status_code=204
)
async def put_schedule(slug: Slug, code: AreaCode, spec: ScheduleIn, session: SessionDep, _: AdminDep) -> None:
    agency = await service.get_agency(session, slug)
    await service.put_schedule(session, agency, await service.get_area(session, agency, code), spec)


@router.get("/agencies/{slug}/on-call", response_model=OnCallOut, summary="Who is on call for an area at a time")
async def get_on_call(
    slug: Slug,
    session: SessionDep,
    _: AdminDep,
    request: Request,
    area: Annotated[str | None, Query(max_length=64)] = None,
    at: Annotated[datetime | None, Query(description="RFC 3339; default now")] = None,
    language: Annotated[Language | None, Query(description="The victim's language (BCP 47)")] = None,
    tier: Annotated[Tier | None, Query(description="Include how this tier escalates here")] = None,
) -> OnCallOut:
    if at is not None and at.tzinfo is None:
        raise Invalid("`at` needs a time zone offset (RFC 3339).")
    moment = at or request.app.state.clock.now()
    agency = await service.get_agency(session, slug)
    chain = await on_call(session, agency, area, moment, language)
    area_row = await service.find_area(session, agency, area) if area else None
    policy = await policy_for(session, agency, area_row, tier) if tier else None
    return OnCallOut(
        agency=slug, area=area, at=moment, language=language, chain=chain, hotline=agency.hotline, policy=policy
    )


@router.put("/agencies/{slug}/policies/{tier}", summary="Set how a tier escalates in all of an agency's areas")
async def put_agency_policy(slug: Slug, tier: Tier, spec: PolicyIn, session: SessionDep, _: AdminDep) -> PolicyOut:
    agency = await service.get_agency(session, slug)
    await put_policy(session, agency, None, tier, spec)
    return await policy_for(session, agency, None, tier)


@router.put("/agencies/{slug}/areas/{code}/policies/{tier}", summary="Set how a tier escalates in one area")
async def put_area_policy(
    slug: Slug, code: AreaCode, tier: Tier, spec: PolicyIn, session: SessionDep, _: AdminDep
) -> PolicyOut:
    agency = await service.get_agency(session, slug)
    area = await service.get_area(session, agency, code)
    await put_policy(session, agency, area, tier, spec)
    return await policy_for(session, agency, area, tier)
