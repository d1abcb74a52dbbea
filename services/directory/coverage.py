"""What may leave a DV call unanswered, found before it happens.

Coverage gaps: every area, role and time with nobody on call, from every source of the
schedule at once (weekly shifts, rotations, calendars, overrides), and the languages an area's calls needed in the
last 90 days that nobody on call then speaks.

A gap that is already running starts where it started, not "now": the look-back keeps its start the same on every
look, so that it is told once. One with no start in sight (an area nobody has ever covered) starts at the look-back,
which moves a day at a time.

The contact watch: everyone on call soon whose phone may fail them (not proven, or a channel that cannot reach
it), with the gaps starting within two days and the cover asked for and not taken a day before its shift — what
the alerts service tells supervisors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.cover import unfilled_soon
from services.directory.models import Area
from services.directory.roster import ROLE_ORDER, Slot, schedule_for, speaks
from services.directory.schemas import ContactWatchOut, CoverageGap, CoverageOut, LanguageGap, OnCall, ShiftAhead
from shared.tables import Agency, Callout, Unreachable

LOOK_BACK = timedelta(days=1)
LANGUAGES_FROM = timedelta(days=90)
COVERAGE_AHEAD = timedelta(days=14)
GAPS_TOLD_AHEAD = timedelta(hours=48)  # a gap starting this soon is texted to the supervisors
ANSWERING = ("primary", "backup")  # who must speak the caller's language: the advocates who take the call


def uncovered(slots: Iterable[Slot], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of `start`..`end` that no slot covers."""
    gaps, reached = [], start
    for slot in sorted(slots, key=lambda s: s.starts_at):
        if slot.starts_at > reached:
            gaps.append((reached, min(slot.starts_at, end)))
        reached = max(reached, slot.ends_at)
        if reached >= end:
            break
    if reached < end:
        gaps.append((reached, end))
    return [(s, e) for s, e in gaps if e > s]


def look_back_from(now: datetime) -> datetime:
    """Midnight (UTC) a day back: stable through the day."""
    return datetime.combine((now - LOOK_BACK).date(), time(), tzinfo=UTC)


async def coverage_gaps(session: AsyncSession, agency: Agency, now: datetime, ahead: timedelta) -> CoverageOut:
    start, end = look_back_from(now), now + ahead
    areas = list(await session.scalars(select(Area).where(Area.agency_id == agency.id).order_by(Area.code)))
    needed = await languages_needed(session, agency, now)
    gaps: list[CoverageGap] = []
    language_gaps: list[LanguageGap] = []
    for area in areas:
        schedule = await schedule_for(session, agency, area, start, end)
        slots = schedule.slots(start, end)
        for role in ROLE_ORDER:
            for begins, ends in uncovered((s for s in slots if s.role == role), start, end):
                if ends > now:
                    gaps.append(CoverageGap(area=area.code, role=role, starts_at=begins, ends_at=ends))
        for language in sorted(needed.get(area.code, ())):
            speakers = [
                s
                for s in slots
                if s.role in ANSWERING and speaks(schedule.advocates[s.advocate_id].languages, language)
            ]
            for begins, ends in uncovered(speakers, start, end):
                if ends > now:
                    language_gaps.append(LanguageGap(area=area.code, language=language, starts_at=begins, ends_at=ends))
    return CoverageOut(
        agency=agency.slug,
        timezone=agency.timezone,
        checked_at=now,
        until=end,
        gaps=sorted(gaps, key=lambda g: (g.starts_at, g.area, ROLE_ORDER.index(g.role))),
        language_gaps=sorted(language_gaps, key=lambda g: (g.starts_at, g.area, g.language)),
    )


async def languages_needed(session: AsyncSession, agency: Agency, now: datetime) -> dict[str, set[str]]:
    """The languages each area's DV calls needed in the last 90 days."""
    rows = await session.execute(
        select(Callout.area, Callout.language)
        .distinct()
        .where(
            Callout.agency_id == agency.id,
            Callout.created_at > now - LANGUAGES_FROM,
            Callout.area.is_not(None),
            Callout.language.is_not(None),
        )
    )
    needed: dict[str, set[str]] = {}
    for area, language in rows:
        if area and language:  # (the query keeps only those)
            needed.setdefault(area, set()).add(language.split("-")[0].lower())
    return needed


def stretches(slots: Iterable[Slot]) -> list[Slot]:
    """Slots of one person in one role that meet or overlap, joined: a week on call is one stretch, not seven."""
    joined: list[Slot] = []
    for slot in sorted(slots, key=lambda s: (s.advocate_id, s.role, s.starts_at)):
        last = joined[-1] if joined else None
        if last and (last.advocate_id, last.role) == (slot.advocate_id, slot.role) and slot.starts_at <= last.ends_at:
            joined[-1] = replace(last, ends_at=max(last.ends_at, slot.ends_at))
        else:
            joined.append(slot)
    return sorted(joined, key=lambda s: (s.starts_at, s.role, s.advocate_id))


async def contact_watch(session: AsyncSession, agency: Agency, now: datetime, window: timedelta) -> ContactWatchOut:
    """Everyone on call in the agency's areas from now to `now + window` whose phone may fail them (not proven,
    or a channel that cannot reach it), each area's supervisors on call now, and each advocate's areas."""
    areas = list(await session.scalars(select(Area).where(Area.agency_id == agency.id).order_by(Area.code)))
    at_risk: list[ShiftAhead] = []
    supervisors: dict[str, list[OnCall]] = {}
    areas_of: dict[int, list[str]] = {}
    keys: dict[int, str] = {}
    for area in areas:
        schedule = await schedule_for(session, agency, area, now, now + window)
        supervisors[area.code] = [p for p in schedule.chain(now, None) if p.role == "supervisor"]
        for advocate_id, advocate in schedule.advocates.items():
            areas_of.setdefault(advocate_id, []).append(area.code)
            keys[advocate_id] = advocate.key
        phones = {a.phone for a in schedule.advocates.values()}
        cut_off: dict[str, list[str]] = {}
        for phone, channel in await session.execute(
            select(Unreachable.phone, Unreachable.channel).where(Unreachable.phone.in_(phones))
        ):
            cut_off.setdefault(phone, []).append(channel)
        for slot in stretches(schedule.slots(now, now + window)):
            advocate = schedule.advocates[slot.advocate_id]
            verified, unreachable = advocate.id in schedule.verified, sorted(cut_off.get(advocate.phone, []))
            if not verified or unreachable:
                at_risk.append(
                    ShiftAhead(
                        advocate_id=advocate.id,
                        key=advocate.key,
                        role=slot.role,
                        area=area.code,
                        starts_at=slot.starts_at,
                        ends_at=slot.ends_at,
                        phone_verified=verified,
                        unreachable=unreachable,
                    )
                )
    coverage = await coverage_gaps(session, agency, now, COVERAGE_AHEAD)  # far enough to see where they end
    return ContactWatchOut(
        gaps=[gap for gap in coverage.gaps if gap.starts_at < now + GAPS_TOLD_AHEAD],
        agency=agency.slug,
        timezone=agency.timezone,
        hotline=agency.hotline,
        at=now,
        at_risk=at_risk,
        supervisors=supervisors,
        areas_of=areas_of,
        keys=keys,
        unfilled_cover=await unfilled_soon(session, agency, now),
    )
