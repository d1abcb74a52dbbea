"""The board: who is on call now in each area, with the reason, and the gaps and open cover requests ahead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.directory.cover import cover_requests
from services.directory.coverage import COVERAGE_AHEAD, coverage_gaps
from services.directory.pages.common import (
    PREFIX,
    areas_of,
    render,
    unreachable_by_phone,
    viewer,
)
from services.directory.roster import INSTANT, ROLE_ORDER, schedule_for
from shared.db import SessionDep
from shared.feeds import feed_state
from shared.localtime import DAY_MINUTE, local_time, span
from shared.tables import CoverStatus

router = APIRouter(include_in_schema=False)


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
    agency, now = found.agency, found.at
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
    at = local_time(now, zone, DAY_MINUTE)
    feed = await feed_state(session, agency, now)
    values = {"areas": boards, "at": at, "days": COVERAGE_AHEAD.days}
    return render(
        "board.html", 200, found.principal, agency, feed=feed.heard(zone), silence=feed.silence(zone), **values
    )
