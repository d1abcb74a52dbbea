"""The reports API: figures for a period and filters, grouped as asked, and a de-identified CSV for grant reports.
An admin sees every agency; a supervisor, their own."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import column, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.figures import INTERVALS, Call, call_from, grouped, summary
from shared import audit
from shared.auth import Principal, PrincipalDep, Role
from shared.db import SessionDep
from shared.problems import Invalid, NotFound
from shared.tables import Agency, Incident, Tier, TimelineEntry
from shared.text import StorableStr

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses={401: {}, 404: {}, 422: {}})


class Filters:
    def __init__(
        self,
        start: Annotated[datetime, Query(alias="from", description="RFC 3339; calls received from then")],
        end: Annotated[datetime, Query(alias="to", description="RFC 3339; calls received before then")],
        agency: Annotated[StorableStr | None, Query(max_length=64)] = None,
        area: Annotated[StorableStr | None, Query(max_length=64)] = None,
        tier: Annotated[Literal["immediate", "priority", "follow_up"] | None, Query()] = None,
        advocate: Annotated[StorableStr | None, Query(max_length=64, description="Who accepted (their key)")] = None,
        language: Annotated[
            StorableStr | None, Query(max_length=35, description="The victim's (BCP 47 primary subtag)")
        ] = None,
    ) -> None:
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise Invalid("`from` and `to` need time zone offsets, and `to` must be after `from`.")
        self.start, self.end, self.agency, self.area = start, end, agency, area
        self.tier, self.advocate, self.language = tier, advocate, language


FiltersDep = Annotated[Filters, Depends()]


async def calls_for(session: AsyncSession, principal: Principal, filters: Filters) -> list[Call]:
    query = (
        select(Incident, Agency.slug, Agency.timezone)
        .join(Agency, Agency.id == Incident.agency_id)
        .where(Incident.created_at >= filters.start, Incident.created_at < filters.end, Incident.tier != Tier.none)
        .order_by(Incident.created_at)
    )
    if principal.role is not Role.admin:
        query = query.where(Incident.agency_id == principal.agency_id)
    if filters.agency:
        agency = await session.scalar(select(Agency).where(Agency.slug == filters.agency))
        if agency is None or not principal.may_see_agency(agency.id):
            raise NotFound(f"No agency {filters.agency!r}.")
        query = query.where(Incident.agency_id == agency.id)
    if filters.area:
        query = query.where(Incident.area == filters.area)
    if filters.tier:
        query = query.where(Incident.tier == filters.tier)
    if filters.language:
        primary = filters.language.split("-")[0].lower()
        query = query.where(or_(Incident.language.ilike(primary), Incident.language.ilike(f"{primary}-%")))
    rows = (await session.execute(query)).all()
    entries: dict[object, list[TimelineEntry]] = {row.Incident.id: [] for row in rows}
    if entries:
        for entry in await session.scalars(
            select(TimelineEntry).where(TimelineEntry.incident_id.in_(entries)).order_by(TimelineEntry.id)
        ):
            entries[entry.incident_id].append(entry)
    keys = await advocate_keys(session)
    calls = [call_from(row.Incident, row.slug, row.timezone, entries[row.Incident.id], keys) for row in rows]
    return [c for c in calls if filters.advocate is None or c.advocate == filters.advocate]


# The directory's table, read as data (no directory code): reports name who accepted by the program's own key.
ADVOCATES = table("advocates", column("id"), column("key"))


async def advocate_keys(session: AsyncSession) -> dict[int, str]:
    return {row.id: row.key for row in await session.execute(select(ADVOCATES.c.id, ADVOCATES.c.key))}


@router.get("/summary", summary="Response times and outcomes for a period, overall and grouped")
async def get_summary(
    filters: FiltersDep,
    session: SessionDep,
    principal: PrincipalDep,
    by: Annotated[list[Literal["advocate", "area", "hour", "tier", "language"]] | None, Query()] = None,
) -> dict[str, object]:
    calls = await calls_for(session, principal, filters)
    return {
        "from": filters.start,
        "to": filters.end,
        "overall": summary(calls),
        "by": {key: grouped(calls, key) for key in by or []},
    }


@router.get(
    "/incidents.csv",
    summary="De-identified per-call timings for grant reports (no reference, address or person)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_csv(filters: FiltersDep, session: SessionDep, principal: PrincipalDep, request: Request) -> Response:
    return await export_csv(session, principal, filters, request)


async def export_csv(session: AsyncSession, principal: Principal, filters: Filters, request: Request) -> Response:
    """The CSV, and its export in the audit trail (the API's, and the dashboard's link)."""
    calls = await calls_for(session, principal, filters)
    await audit.record(
        session,
        actor=principal,
        action="export",
        subject="reports/incidents.csv",
        at=request.app.state.clock.now(),
        start=filters.start.isoformat(),
        end=filters.end.isoformat(),
        agency=filters.agency,
        calls=len(calls),
    )
    out = io.StringIO()
    writer = csv.writer(out)
    seconds = [f"seconds_to_{interval}" for interval in INTERVALS]
    writer.writerow(
        [
            "agency",
            "date",
            "area",
            "tier",
            "language",
            "screened",
            "screened_in",
            "advocate_reached",
            "survivor_contacted",
            *seconds,
            "escalations",
            "declines",
            "within_target",
        ]
    )
    for c in calls:
        writer.writerow(
            [
                c.agency,
                c.received_at.date().isoformat(),
                c.area or "",
                c.tier,
                c.language or "",
                c.screened,
                c.screened_in,
                c.accepted and not c.accepted_by_hotline,
                "survivor_contact" in c.seconds,
                *(round(c.seconds[i]) if i in c.seconds else "" for i in INTERVALS),
                c.escalations,
                c.declines,
                c.within_target,
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="callout-incidents.csv"'},
    )
