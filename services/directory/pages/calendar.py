"""The calendar: every role in an area from every source at once (the weekly schedule, rotations, calendars and
overrides), a week or a month, day by day in the agency's time; nobody on call is red."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.coverage import uncovered
from services.directory.models import Area
from services.directory.pages.common import PREFIX, Viewer, area_of, areas_of, message, not_found, render, viewer
from services.directory.roster import INSTANT, ROLE_ORDER, Slot, local_to_utc, schedule_for
from services.directory.schemas import YEARS
from shared.db import SessionDep
from shared.tables import Agency

router = APIRouter(include_in_schema=False)


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


async def chosen_area(session: AsyncSession, found: Viewer, code: str | None) -> Area | HTMLResponse:
    """The area asked for, or the agency's first; a page saying there is none instead."""
    if code:
        return await area_of(session, found.agency, code) or not_found(found, f"No area {code!r} in this agency.")
    areas = await areas_of(session, found.agency)
    return areas[0] if areas else not_found(found, "This agency has no areas yet.")


def not_shown(found: Viewer, text: str) -> HTMLResponse:
    """A page for a week or a month that cannot be shown (a date no calendar holds, or none the pages take)."""
    return message(found.principal, found.agency, 422, "No such date", text)


async def days_of(session: AsyncSession, agency: Agency, area: Area, first: date, count: int) -> list[Day]:
    """`count` days from `first`, each from local midnight to local midnight: 23, 24 or 25 hours, as the clocks
    have it, with every role's stretches from every source at once."""
    zone = ZoneInfo(agency.timezone)
    bounds = [local_to_utc(datetime.combine(first + timedelta(days=d), time()), zone) for d in range(count + 1)]
    schedule = await schedule_for(session, agency, area, bounds[0], bounds[-1])
    slots = schedule.slots(bounds[0], bounds[-1])  # each with its own reason: a Sunday shift says Sunday
    keys = {i: a.key for i, a in schedule.advocates.items()}
    return [day_of(slots, bounds[d], bounds[d + 1], zone, keys) for d in range(count)]


@router.get(PREFIX + "/{slug}/week", response_class=HTMLResponse)
async def week(
    slug: str,
    request: Request,
    session: SessionDep,
    area: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[str | None, Query(description="The first day (YYYY-MM-DD), in the agency's time zone")] = None,
) -> Response:
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    chosen = await chosen_area(session, found, area)
    if isinstance(chosen, Response):
        return chosen
    agency = found.agency
    first = week_start(start) if start else found.at.astimezone(ZoneInfo(agency.timezone)).date()
    if first is None:
        return not_shown(
            found, f"A week starts on a date from {YEARS.start}-01-01 to {YEARS.stop - 1}-12-31, like 2026-11-16."
        )

    def link(day: date) -> str:
        return f"{PREFIX}/{agency.slug}/week?" + urlencode({"area": chosen.code, "start": day.isoformat()})

    return render(
        "week.html",
        200,
        found.principal,
        agency,
        areas=await areas_of(session, agency),
        area=chosen,
        days=await days_of(session, agency, chosen, first, 7),
        first=first,
        previous=link(first - timedelta(days=7)),
        next=link(first + timedelta(days=7)),
        timezone=agency.timezone,
        month=f"{PREFIX}/{agency.slug}/month?" + urlencode({"area": chosen.code, "month": f"{first:%Y-%m}"}),
    )


# -- the month ----------------------------------------------------------------------------------------------------

Month = Annotated[str, Query(description="YYYY-MM, in the agency's time zone")]


@router.get(PREFIX + "/{slug}/month", response_class=HTMLResponse)
async def month(
    slug: str,
    request: Request,
    session: SessionDep,
    area: Annotated[str | None, Query(max_length=64)] = None,
    month: Month | None = None,
) -> Response:
    """A month of every role in an area, laid out Monday to Sunday; a day opens its week."""
    found = await viewer(request, session, slug)
    if isinstance(found, Response):
        return found
    chosen = await chosen_area(session, found, area)
    if isinstance(chosen, Response):
        return chosen
    agency = found.agency
    today = found.at.astimezone(ZoneInfo(agency.timezone)).date()
    first = first_of(month) if month else today.replace(day=1)
    if first is None:
        return not_shown(found, f"A month from {YEARS.start}-01 to {YEARS.stop - 1}-12, like 2026-11.")
    after = (first + timedelta(days=31)).replace(day=1)
    days = await days_of(session, agency, chosen, first, (after - first).days)

    def link(page: str, **query: str) -> str:
        return f"{PREFIX}/{agency.slug}/{page}?" + urlencode({"area": chosen.code, **query})

    cells = [
        MonthDay(first + timedelta(days=n), day, link("week", start=(first + timedelta(days=n)).isoformat()))
        for n, day in enumerate(days)
    ]
    return render(
        "month.html",
        200,
        found.principal,
        agency,
        areas=await areas_of(session, agency),
        area=chosen,
        title=f"{first:%B %Y}",
        month=f"{first:%Y-%m}",
        lead=first.weekday(),  # empty cells before the 1st, so that each column is one weekday
        days=cells,
        gaps=sum(1 for cell in cells if cell.gaps),
        today=today,
        previous=link("month", month=f"{first - timedelta(days=1):%Y-%m}"),
        next=link("month", month=f"{after:%Y-%m}"),
        timezone=agency.timezone,
    )


@dataclass(frozen=True)
class MonthDay:
    on: date
    day: Day
    week: str  # the week that starts on this day

    @property
    def gaps(self) -> list[Stretch]:
        return [s for s in self.day.stretches if s.gap]


def week_start(typed: str) -> date | None:
    """The date a week is asked to start on, or None: no date, or one outside the years the pages take."""
    try:
        day = date.fromisoformat(typed)
    except ValueError:
        return None
    return day if day.year in YEARS else None


def first_of(typed: str) -> date | None:
    """The first day of the month asked for (YYYY-MM), or None: no month, or one outside the years the pages take."""
    found = re.fullmatch(r"([0-9]{4})-(0[1-9]|1[0-2])", typed)
    if found is None or int(found[1]) not in YEARS:
        return None
    return date(int(found[1]), int(found[2]), 1)
