"""The figures, computed by PostgreSQL from each incident's handoff facts (services/reports/models.py, kept from
its timeline). Every interval starts when Callout received the CAD's first event for the incident
(`cad_received`) and ends at the first of its stage:

| interval | ends at |
| --- | --- |
| `first_alert` | the first `notification_sent` (an alert handed to the provider) |
| `acceptance` | the first `acknowledged` |
| `on_scene` | the first `on_scene` |
| `survivor_contact` | the first `survivor_contacted` |

A tier's target (docs/product.md) is met when its stage came within the time; a call where it never came did not meet
it. The database compares and sorts the intervals as whole microseconds (exact, as the timeline keeps its times)
and hands back only the values a median and a 90th percentile are drawn from, which are finished here exactly as
`statistics.median` and `statistics.quantiles(method="inclusive")` do (`tests/test_report_figures.py` holds
them to it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any, Literal

from sqlalchemy import (
    Date,
    Integer,
    Row,
    Select,
    and_,
    case,
    cast,
    column,
    extract,
    false,
    func,
    select,
    table,
    tuple_,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.reports.filters import Filters
from services.reports.models import Handoff
from shared.tables import Agency, Incident, Tier

INTERVALS = {
    "first_alert": "notification_sent",
    "acceptance": "acknowledged",
    "on_scene": "on_scene",
    "survivor_contact": "survivor_contacted",
}
# Per tier: (interval, seconds) that must hold.
TARGETS = {
    "immediate": (("acceptance", 5 * 60), ("on_scene", 30 * 60)),
    "priority": (("acceptance", 10 * 60), ("survivor_contact", 60 * 60)),
    "follow_up": (("survivor_contact", 48 * 3600),),
}
Grouping = Literal["advocate", "area", "hour", "tier", "language"]
GROUPINGS: tuple[Grouping, ...] = ("advocate", "area", "hour", "tier", "language")
MICROSECONDS = 1_000_000
BINS = (60, 120, 300, 600, 1800, 3600)  # seconds: the edges of the dashboard's acceptance-time histogram

Calls = Select[*tuple[Any, ...]]  # one row per call (see `calls`)
# The directory's table, read as data (no directory code): reports name who accepted by the program's own key.
ADVOCATES = table("advocates", column("id"), column("key"))


@dataclass(frozen=True)
class Scope:
    """Whose calls a report counts: one agency's, or every agency's (`agency_id` None); and the time zones of
    those agencies, which a period's dates are read in."""

    agency_id: int | None
    zones: dict[str, tuple[int, ...]]  # time zone -> the agencies in it


def calls(filters: Filters, scope: Scope) -> Calls:
    """One row per DV call of the period and filters, in scope: no person, only times and outcomes. Calls count
    by when their incident came; hours and days are the agency's own."""
    received = func.coalesce(Handoff.received_at, Incident.created_at)
    local = func.timezone(Agency.timezone, received)
    accepted = Handoff.acceptance_entry.is_not(None)
    hotline = and_(accepted, func.coalesce(Handoff.accepted_by_hotline, false()))
    after = {interval: getattr(Handoff, f"{interval}_us") for interval in INTERVALS}  # microseconds

    def met(tier: str) -> ColumnElement[bool]:
        return and_(*(func.coalesce(after[i] <= limit * MICROSECONDS, false()) for i, limit in TARGETS[tier]))

    query = (
        select(
            Agency.slug.label("agency"),
            cast(local, Date).label("day"),
            Incident.area,
            Incident.tier,
            Incident.language,
            accepted.label("accepted"),
            hotline.label("hotline"),
            *(us.label(f"{interval}_us") for interval, us in after.items()),
            func.coalesce(Handoff.escalations, 0).label("escalations"),
            func.coalesce(Handoff.declines, 0).label("declines"),
            func.coalesce(Handoff.screened, false()).label("screened"),
            func.coalesce(Handoff.screened_in, false()).label("screened_in"),
            case(*((Incident.tier == tier, met(tier)) for tier in TARGETS), else_=false()).label("within_target"),
            # Grouped as they always were: by a value, or "none" (hours are numbers, named as such).
            func.coalesce(ADVOCATES.c.key, "none").label("by_advocate"),
            func.coalesce(Incident.area, "none").label("by_area"),
            cast(extract("hour", local), Integer).label("by_hour"),
            Incident.tier.label("by_tier"),
            func.coalesce(Incident.language, "none").label("by_language"),
            (
                func.coalesce(func.nullif(Incident.area, ""), "?")
                + " · "
                + func.split_part(func.coalesce(func.nullif(Incident.language, ""), "?"), "-", 1)
            ).label("coverage_label"),
        )
        .select_from(Incident)
        .join(Agency, Agency.id == Incident.agency_id)
        .outerjoin(Handoff, Handoff.incident_id == Incident.id)
        .outerjoin(ADVOCATES, ADVOCATES.c.id == Handoff.accepted_advocate_id)
        .where(Incident.tier != Tier.none, filters.period.covers(Incident.created_at, Incident.agency_id, scope.zones))
    )
    if scope.agency_id is not None:
        query = query.where(Incident.agency_id == scope.agency_id)
    if filters.area:
        query = query.where(Incident.area == filters.area)
    if filters.tier:
        query = query.where(Incident.tier == filters.tier)
    if filters.language:
        primary = filters.language.split("-")[0].lower()
        query = query.where(Incident.language.ilike(primary) | Incident.language.ilike(f"{primary}-%"))
    if filters.advocate:
        query = query.where(ADVOCATES.c.key == filters.advocate)
    return query


# -- a summary: what the database counts and sorts, and how it is finished here ----------------------------------


def aggregates(c: Any) -> list[ColumnElement[Any]]:
    """Each figure of a summary over the calls `c`, for any grouping of them."""
    columns: list[ColumnElement[Any]] = [func.count().label("calls")]
    for interval in INTERVALS:
        us = c[f"{interval}_us"]
        n = func.count(us)
        ordered = func.array_agg(aggregate_order_by(us, us)).filter(us.is_not(None))
        middle, p90 = (n - 1) // 2 + 1, (90 * (n - 1)) // 100 + 1  # 1-based, as PostgreSQL's arrays are
        columns += [
            n.label(f"{interval}_n"),
            ordered[middle].label(f"{interval}_middle"),
            ordered[n // 2 + 1].label(f"{interval}_middle_next"),
            ordered[p90].label(f"{interval}_p90"),
            ordered[p90 + 1].label(f"{interval}_p90_next"),
        ]
    for tier in TARGETS:
        columns += [
            func.count().filter(c.tier == tier).label(f"{tier}_calls"),
            func.count().filter(c.tier == tier, c.within_target).label(f"{tier}_within"),
        ]
    return [
        *columns,
        func.coalesce(func.sum(c.escalations), 0).label("escalations"),
        func.coalesce(func.sum(c.declines), 0).label("declines"),
        func.count().filter(c.hotline).label("hotline_only"),
        func.count().filter(~c.accepted).label("never_accepted"),
        func.count().filter(c.screened).label("calls_screened"),
        func.count().filter(c.screened_in).label("screened_in"),
        func.count().filter(c.accepted, ~c.hotline).label("advocate_reached"),
        func.count(c.survivor_contact_us).label("survivor_contacts"),
    ]


def seconds(microseconds: int) -> float:
    """As timedelta.total_seconds() has it."""
    return microseconds / MICROSECONDS


def median(n: int, middle: int | None, middle_next: int | None) -> float | None:
    """statistics.median of the n sorted values, from the one or two in the middle."""
    if n == 0 or middle is None or middle_next is None:
        return None
    low, high = seconds(middle), seconds(middle_next)
    return round(low if n % 2 == 1 else (low + high) / 2, 1)


def percentile_90(n: int, value: int | None, next_value: int | None) -> float | None:
    """statistics.quantiles(n=100, method="inclusive")[89] of the n sorted values, from the two it falls between
    (the only value, for one)."""
    if n == 0 or value is None:
        return None
    if n == 1:
        return round(seconds(value), 1)
    assert next_value is not None  # n >= 2: the 90th percentile's position is below the last
    _, delta = divmod(90 * (n - 1), 100)
    return round((seconds(value) * (100 - delta) + seconds(next_value) * delta) / 100, 1)


def summary_of(row: Row[Any]) -> dict[str, Any]:
    figures = row._mapping
    return {
        "calls": figures["calls"],
        "intervals": {
            interval: {
                "count": (n := figures[f"{interval}_n"]),
                "median_seconds": median(n, figures[f"{interval}_middle"], figures[f"{interval}_middle_next"]),
                "p90_seconds": percentile_90(n, figures[f"{interval}_p90"], figures[f"{interval}_p90_next"]),
            }
            for interval in INTERVALS
        },
        "within_target": {
            tier: round(figures[f"{tier}_within"] / figures[f"{tier}_calls"], 3)
            for tier in sorted(TARGETS)
            if figures[f"{tier}_calls"]
        },
        "escalations": figures["escalations"],
        "declines": figures["declines"],
        "hotline_only": figures["hotline_only"],
        "never_accepted": figures["never_accepted"],
        "lap": {
            "calls_screened": figures["calls_screened"],
            "screened_in": figures["screened_in"],
            "advocate_reached": figures["advocate_reached"],
            "survivor_spoke_with_advocate": figures["survivor_contacts"],
        },
    }


@dataclass(frozen=True)
class Summaries:
    overall: dict[str, Any]
    by: dict[str, dict[str, dict[str, Any]]]  # grouping -> its value ("none" for none) -> summary


async def summarise(session: AsyncSession, of: Calls, by: Sequence[Grouping] = ()) -> Summaries:
    """The summary of the calls `of` selects, and one per value of each grouping, in one pass over them."""
    c = of.subquery("calls").c
    keys = [c[f"by_{key}"] for key in by]
    query = select(*(func.grouping(key).label(f"apart_{i}") for i, key in enumerate(keys)), *keys, *aggregates(c))
    rows = (await session.execute(query.group_by(func.grouping_sets(tuple_(), *(tuple_(k) for k in keys))))).all()
    overall: dict[str, Any] | None = None
    grouped: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in by}
    for row in rows:
        kept = [i for i in range(len(keys)) if row._mapping[f"apart_{i}"] == 0]
        if not kept:
            overall = summary_of(row)
        else:
            grouped[by[kept[0]]][str(row._mapping[keys[kept[0]].name])] = summary_of(row)
    assert overall is not None  # the grand total comes even of no calls
    return Summaries(overall, {key: dict(sorted(groups.items())) for key, groups in grouped.items()})


# -- the dashboard's charts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Charts:
    acceptance_bins: list[int]  # calls accepted within each of BINS, then after the last
    days: list[tuple[date, int, int]]  # a day (the agency's), its calls, those within target
    coverage: list[tuple[str, int]]  # "area · language", calls


async def charts(session: AsyncSession, of: Calls) -> Charts:
    c = of.subquery("calls").c
    acceptance = c.acceptance_us
    edges = [edge * MICROSECONDS for edge in BINS]
    bins = [
        func.count(acceptance).filter(acceptance <= edges[0]),
        *(func.count(acceptance).filter(acceptance > low, acceptance <= high) for low, high in pairwise(edges)),
        func.count(acceptance).filter(acceptance > edges[-1]),
    ]
    query = select(
        func.grouping(c.day).label("apart_day"),
        func.grouping(c.coverage_label).label("apart_coverage"),
        c.day,
        c.coverage_label,
        func.count().label("calls"),
        func.count().filter(c.within_target).label("within"),
        *(b.label(f"bin_{i}") for i, b in enumerate(bins)),
    ).group_by(func.grouping_sets(tuple_(), tuple_(c.day), tuple_(c.coverage_label)))
    found = Charts([], [], [])
    for row in await session.execute(query):
        if row.apart_day and row.apart_coverage:
            found.acceptance_bins.extend(row._mapping[f"bin_{i}"] for i in range(len(bins)))
        elif not row.apart_day:
            found.days.append((row.day, row.calls, row.within))
        else:
            found.coverage.append((row.coverage_label, row.calls))
    found.days.sort()
    found.coverage.sort()
    return found
