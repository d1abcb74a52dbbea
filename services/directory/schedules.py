"""Keeping the schedule beyond the weekly pattern: rotations, the program's calendars, overrides, and each
advocate's shift feed. Functions flush; the caller commits."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]  # ships no types
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.directory.models import Advocate, Area, Calendar, Override, Rotation, advocate_areas
from services.directory.roster import named_in, parsed, schedule_for
from services.directory.schemas import YEARS, CalendarOut, OverrideIn, OverrideOut, Role, RotationIn, RotationOut
from services.directory.service import advocates_of_area, get_area
from shared.localtime import NotOnTheClock, instant
from shared.problems import Invalid, NotFound
from shared.tables import Agency
from shared.text import unstorable

FEED_PAST, FEED_AHEAD = timedelta(days=7), timedelta(days=56)
# A program's calendar, through the API or the page's upload: thousands of events, and under the 300 KiB the
# ingress passes to any service (deploy/nginx.conf, deploy/k8s/base/ingress.yaml) with room for the form around it.
MAX_CALENDAR_BYTES = 256 * 1024


async def put_rotation(session: AsyncSession, agency: Agency, area: Area, name: str, spec: RotationIn) -> RotationOut:
    """Create or replace a rotation. Its first handoff must be a time the clocks show once: on the night they
    change, 02:30 may not exist or 01:30 come twice, and a guess would start every turn an hour off."""
    try:
        instant(spec.handoff, spec.timezone or agency.timezone)
    except NotOnTheClock as exc:
        raise Invalid(f"handoff: {exc}") from None
    people = await advocates_of_area(session, agency, area, set(spec.participants))
    rotation = await session.scalar(select(Rotation).where(Rotation.area_id == area.id, Rotation.name == name))
    if rotation is None:
        rotation = Rotation(area_id=area.id, name=name)
        session.add(rotation)
    rotation.role, rotation.unit, rotation.length = spec.role, spec.unit, spec.length
    rotation.handoff, rotation.timezone = spec.handoff, spec.timezone or agency.timezone
    rotation.participants = [people[k].id for k in spec.participants]
    await session.flush()
    return RotationOut(name=name, **spec.model_dump(exclude={"timezone"}), timezone=rotation.timezone)


async def delete_rotation(session: AsyncSession, area: Area, name: str) -> None:
    rotation = await session.scalar(select(Rotation).where(Rotation.area_id == area.id, Rotation.name == name))
    if rotation is None:
        raise NotFound(f"No rotation {name!r} in area {area.code}.")
    await session.delete(rotation)


async def add_override(session: AsyncSession, agency: Agency, spec: OverrideIn, *, now: datetime) -> OverrideOut:
    area = await get_area(session, agency, spec.area)
    named = {spec.advocate, *([spec.replaces] if spec.replaces else [])}
    people = await advocates_of_area(session, agency, area, named)
    override = Override(
        area_id=area.id,
        role=spec.role,
        advocate_id=people[spec.advocate].id,
        replaces_id=people[spec.replaces].id if spec.replaces else None,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        note=spec.note,
        created_at=now,
    )
    session.add(override)
    await session.flush()
    return OverrideOut(id=override.id, **spec.model_dump())


async def list_overrides(session: AsyncSession, agency: Agency, *, ending_after: datetime) -> list[OverrideOut]:
    advocate, replaced = Advocate.__table__.alias("advocate"), Advocate.__table__.alias("replaced")
    rows = await session.execute(
        select(Override, Area.code, advocate.c.key, replaced.c.key)
        .join(Area, Area.id == Override.area_id)
        .join(advocate, advocate.c.id == Override.advocate_id)
        .outerjoin(replaced, replaced.c.id == Override.replaces_id)
        .where(Area.agency_id == agency.id, Override.ends_at > ending_after)
        .order_by(Override.starts_at, Override.id)
    )
    return [
        OverrideOut(
            id=o.id,
            area=code,
            role=o.role,
            advocate=key,
            replaces=replaces,
            starts_at=o.starts_at,
            ends_at=o.ends_at,
            note=o.note,
        )
        for o, code, key, replaces in rows
    ]


async def delete_override(session: AsyncSession, agency: Agency, override_id: int) -> None:
    override = await session.scalar(
        select(Override)
        .join(Area, Area.id == Override.area_id)
        .where(Override.id == override_id, Area.agency_id == agency.id)
    )
    if override is None:
        raise NotFound(f"No override {override_id}.")
    await session.delete(override)


def read_calendar(ics: bytes) -> tuple[str, icalendar.Calendar]:
    """The calendar as text, parsed, its times within the years a schedule may name (schemas.YEARS: none can
    overflow) and its recurrences readable — or Invalid saying why not."""
    try:
        text = ics.decode("utf-8")
        calendar = icalendar.Calendar.from_ical(text)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise Invalid(f"Not an iCalendar file (RFC 5545) Callout can read: {type(exc).__name__}.") from None
    if calendar.name != "VCALENDAR":
        raise Invalid("Not an iCalendar file: it must begin with BEGIN:VCALENDAR.")
    for event in calendar.walk("VEVENT"):
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if (when := event.get(name)) is None:
                continue
            year = getattr(getattr(when, "dt", None), "year", None)  # a repeated or malformed one has none
            if year not in YEARS:
                summary = str(event.get("SUMMARY", "(no summary)"))[:80]
                raise Invalid(f"The event {summary!r} has no {name} in the years {YEARS.start} to {YEARS.stop - 1}.")
    try:
        recurring_ical_events.of(calendar).at(datetime(2000, 1, 1))
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise Invalid(f"Not an iCalendar file (RFC 5545) Callout can read: {type(exc).__name__}.") from None
    if problem := unstorable(text):  # refused here, not by the database mid-transaction
        raise Invalid(f"Not an iCalendar file Callout can keep: it {problem}.")
    return text, calendar


def calendar_events(calendar: icalendar.Calendar, covering: Iterable[Advocate]) -> tuple[int, list[str]]:
    """How many events the calendar holds, and the summaries of those naming none of `covering` (the area's
    active advocates): nobody is on call by them."""
    events = [e for e in calendar.walk("VEVENT") if isinstance(e, icalendar.Event)]
    people = list(covering)
    unmatched = sorted({str(e.get("SUMMARY", "(no summary)")) for e in events if not named_in(e, people)})
    return len(events), unmatched


async def put_calendar(
    session: AsyncSession, agency: Agency, area: Area, name: str, role: Role, ics: bytes, *, now: datetime
) -> CalendarOut:
    """Keep a program's on-call calendar for an area as it is; say which events name nobody."""
    text, parsed_calendar = read_calendar(ics)
    covering = list(
        await session.scalars(
            select(Advocate)
            .join(advocate_areas, advocate_areas.c.advocate_id == Advocate.id)
            .where(advocate_areas.c.area_id == area.id, Advocate.active)
        )
    )
    calendar = await session.scalar(select(Calendar).where(Calendar.area_id == area.id, Calendar.name == name))
    if calendar is None:
        calendar = Calendar(area_id=area.id, name=name)
        session.add(calendar)
    calendar.role, calendar.ics, calendar.imported_at = role, text, now
    await session.flush()
    parsed(text)  # ready for the first question
    events, unmatched = calendar_events(parsed_calendar, covering)
    return CalendarOut(name=name, role=role, events=events, unmatched=unmatched)


async def delete_calendar(session: AsyncSession, area: Area, name: str) -> None:
    calendar = await session.scalar(select(Calendar).where(Calendar.area_id == area.id, Calendar.name == name))
    if calendar is None:
        raise NotFound(f"No calendar {name!r} in area {area.code}.")
    await session.delete(calendar)
    await session.flush()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_feed(session: AsyncSession, advocate: Advocate) -> str:
    """A new secret for the advocate's feed address; the old address stops working."""
    token = f"feed_{secrets.token_urlsafe(24)}"
    advocate.feed_token_sha256 = hash_token(token)
    await session.flush()
    return token


async def feed(session: AsyncSession, token: str, *, now: datetime) -> bytes:
    """The advocate's shifts, a week back and eight ahead, in every area they cover, as an iCalendar feed. It
    holds their own shifts only: no incident, no survivor."""
    advocate = await session.scalar(
        select(Advocate)
        .where(Advocate.feed_token_sha256 == hash_token(token), Advocate.active)
        .options(selectinload(Advocate.areas))
    )
    if advocate is None:
        raise NotFound("No such feed.")
    agency = await session.get_one(Agency, advocate.agency_id)
    out = icalendar.Calendar()
    out.add("PRODID", "-//Callout//on-call shifts//EN")
    out.add("VERSION", "2.0")
    out.add("X-WR-CALNAME", f"On call: {advocate.name}")
    start, end = now - FEED_PAST, now + FEED_AHEAD
    for area in advocate.areas:
        schedule = await schedule_for(session, agency, area, start, end)
        for slot in schedule.slots(start, end):
            if slot.advocate_id != advocate.id:
                continue
            event = icalendar.Event()
            uid = f"{area.id}-{slot.role}-{slot.starts_at:%Y%m%dT%H%M%SZ}-{advocate.id}@callout"
            event.add("UID", uid)
            event.add("SUMMARY", f"On call: {slot.role}, {area.name}")
            event.add("DTSTART", slot.starts_at)
            event.add("DTEND", slot.ends_at)
            event.add("DTSTAMP", now)
            event.add("DESCRIPTION", slot.reason)
            # Named as an attendee, so that the feed read back as a program's calendar means the same shifts.
            event.add("ATTENDEE", f"urn:callout:advocate:{advocate.key}", parameters={"CN": advocate.name})
            out.add_component(event)
    ical: bytes = out.to_ical()
    return ical
