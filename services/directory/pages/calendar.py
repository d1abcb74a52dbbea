"""The calendar: every role in an area, from every source at once, day by day in the agency's time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.directory.coverage import uncovered
from services.directory.pages.common import (
    PREFIX,
    areas_of,
    render,
    viewer,
)
from services.directory.roster import INSTANT, ROLE_ORDER, Slot, local_to_utc, schedule_for
from shared.db import SessionDep

router = APIRouter(tags=["directory"], include_in_schema=False)


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
