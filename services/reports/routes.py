"""The reports API: figures for a period and filters, grouped as asked, and a de-identified CSV for grant reports,
streamed as it is read. An admin sees every agency; a supervisor, their own."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.figures import GROUPINGS, INTERVALS, Calls, Grouping, Scope, calls, seconds, summarise
from services.reports.filters import Filters, filters
from shared import audit
from shared.auth import Principal, PrincipalDep, Role
from shared.db import Database, SessionDep
from shared.problems import Forbidden, NotFound
from shared.tables import Agency, Incident

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses={401: {}, 404: {}, 422: {}})
FiltersDep = Annotated[Filters, Depends(filters)]
CSV_BATCH = 1000  # rows read and written at a time: the export's memory stays this size however long the period


async def agency_in_view(session: AsyncSession, principal: Principal, asked: str | None) -> int | None:
    """The agency whose calls are counted: the one asked for, else a supervisor's own; None is every agency (an
    admin who asked for none)."""
    if asked:
        agency_id = await session.scalar(select(Agency.id).where(Agency.slug == asked))
        if agency_id is None or not principal.may_see_agency(agency_id):
            raise NotFound(f"No agency {asked!r}.")
        return agency_id
    if principal.role is Role.admin:
        return None
    if principal.agency_id is None:
        raise Forbidden("This token sees no agency.")
    return principal.agency_id


async def scope_of(session: AsyncSession, principal: Principal, asked: str | None) -> Scope:
    agency_id = await agency_in_view(session, principal, asked)
    query = select(Agency.id, Agency.timezone).order_by(Agency.id)
    if agency_id is not None:
        query = query.where(Agency.id == agency_id)
    zones: dict[str, tuple[int, ...]] = defaultdict(tuple)
    for found, zone in await session.execute(query):
        zones[zone] += (found,)
    return Scope(agency_id, dict(zones))


async def calls_in_view(session: AsyncSession, principal: Principal, filters: Filters) -> Calls:
    return calls(filters, await scope_of(session, principal, filters.agency))


@router.get("/summary", summary="Response times and outcomes for a period, overall and grouped")
async def get_summary(
    filters: FiltersDep,
    session: SessionDep,
    principal: PrincipalDep,
    by: Annotated[list[Grouping] | None, Query()] = None,
) -> dict[str, object]:
    figures = await summarise(
        session, await calls_in_view(session, principal, filters), [g for g in GROUPINGS if g in (by or [])]
    )
    return {
        "from": filters.period.start.shown,
        "to": filters.period.end.shown,
        "overall": figures.overall,
        "by": {key: figures.by[key] for key in by or []},
    }


@router.get(
    "/incidents.csv",
    summary="De-identified per-call timings for grant reports (no reference, address or person)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_csv(
    filters: FiltersDep, session: SessionDep, principal: PrincipalDep, request: Request
) -> StreamingResponse:
    return await export_csv(session, principal, filters, request)


CSV_HEADER = [
    "agency",
    "date",  # the day the call came, in its agency's time zone
    "area",
    "tier",
    "language",
    "screened",
    "screened_in",
    "advocate_reached",
    "survivor_contacted",
    *(f"seconds_to_{interval}" for interval in INTERVALS),
    "escalations",
    "declines",
    "within_target",
]


# What a spreadsheet would read as a formula (or a cell break) at the start of a cell: such a cell is written with a
# leading apostrophe, which spreadsheets show as text. Areas are refused in that shape now; older rows may hold one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def csv_row(call: Any) -> list[object]:
    return [
        as_text(call.agency),
        call.day.isoformat(),
        as_text(call.area or ""),
        call.tier,
        as_text(call.language or ""),
        call.screened,
        call.screened_in,
        call.accepted and not call.hotline,
        call.survivor_contact_us is not None,
        *(round(seconds(us)) if (us := call._mapping[f"{i}_us"]) is not None else "" for i in INTERVALS),
        call.escalations,
        call.declines,
        call.within_target,
    ]


async def export_csv(
    session: AsyncSession, principal: Principal, filters: Filters, request: Request
) -> StreamingResponse:
    """The CSV, and its export in the audit trail (the API's, and the dashboard's link). The record is committed
    with the request, before the first row leaves; the rows are then read in a transaction of their own, a batch
    at a time, as the client takes them."""
    rows = await calls_in_view(session, principal, filters)
    count = await session.scalar(select(func.count()).select_from(rows.subquery()))
    await audit.record(
        session,
        actor=principal,
        action="export",
        subject="reports/incidents.csv",
        at=request.app.state.clock.now(),
        start=filters.period.start.shown,
        end=filters.period.end.shown,
        agency=filters.agency,
        calls=count,
    )
    return StreamingResponse(
        csv_lines(request.app.state.db, rows.order_by(Incident.created_at, Incident.id)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="callout-incidents.csv"'},
    )


async def csv_lines(database: Database, rows: Calls) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    yield out.getvalue()
    async with database.sessionmaker() as session, session.begin():
        result = await session.stream(rows.execution_options(yield_per=CSV_BATCH))
        async for batch in result.partitions():
            out.seek(0)
            out.truncate()
            writer.writerows(csv_row(call) for call in batch)
            yield out.getvalue()
