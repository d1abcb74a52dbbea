"""Who is on call. Every source of an area's schedule — the weekly schedule, rotations, the program's own
calendars — is read as time slots (who, which role, from when to when, why); overrides then cut out the people
they replace and add their own. The slots covering a moment, ordered, are the escalation chain."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]  # ships no types
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import Advocate, Area, Calendar, Override, Rotation, Shift, advocate_areas
from services.directory.schemas import OnCall, Role
from shared.tables import AdvocatePhone, Agency

ROLE_ORDER: tuple[Role, ...] = ("primary", "backup", "supervisor")
INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True)
class Slot:
    advocate_id: int
    role: str
    starts_at: datetime  # aware
    ends_at: datetime
    reason: str
    override: bool = False  # an override's person comes first in the role


@dataclass
class Schedule:
    """Everything that decides who is on call in one area."""

    timezone: str
    advocates: dict[int, Advocate]  # the area's active advocates
    verified: frozenset[int] = frozenset()  # those whose phone is proven (they texted back its code)
    shifts: Sequence[Shift] = ()
    rotations: Sequence[Rotation] = ()
    calendars: Sequence[Calendar] = ()
    overrides: Sequence[Override] = ()

    def slots(self, start: datetime, end: datetime) -> list[Slot]:
        """Who holds which role between `start` and `end`, overrides applied."""
        zone = ZoneInfo(self.timezone)
        scheduled = [
            *(slot for shift in self.shifts for slot in weekly_slots(shift, zone, start, end)),
            *(slot for rotation in self.rotations for slot in rotation_slots(rotation, start, end)),
            *(slot for cal in self.calendars for slot in calendar_slots(cal, self.advocates, zone, start, end)),
        ]
        return [
            slot
            for slot in apply_overrides(scheduled, self.overrides, self.advocates, zone)
            if slot.advocate_id in self.advocates and slot.starts_at < end and slot.ends_at > start
        ]

    def chain(self, at: datetime, language: str | None) -> list[OnCall]:
        return order_chain(self.slots(at, at + INSTANT), self.advocates, language, self.verified)


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as an instant. A time skipped by a daylight-saving change reads as the same
    wall time before the change (02:30 on a spring-forward night is 03:30 after it)."""
    return naive.replace(tzinfo=zone).astimezone(UTC)


def local_label(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %d %b %H:%M")


def weekly_slots(shift: Shift, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Slot]:
    """The weekly slot's occurrences: the same wall-clock times every week, whatever the offset that week."""
    local_start = start.astimezone(zone).replace(tzinfo=None)
    monday = datetime.combine(local_start.date() - timedelta(days=local_start.weekday() + 7), time())
    while (begins := monday + timedelta(minutes=shift.start_minute)) and local_to_utc(begins, zone) < end:
        ends = begins + timedelta(minutes=shift.minutes)
        if local_to_utc(ends, zone) > start:
            reason = f"{shift.role} on call {begins:%a %H:%M} to {ends:%a %H:%M}".lower()
            yield Slot(shift.advocate_id, shift.role, local_to_utc(begins, zone), local_to_utc(ends, zone), reason)
        monday += timedelta(weeks=1)


def rotation_slots(rotation: Rotation, start: datetime, end: datetime) -> Iterator[Slot]:
    """Turns from the first handoff on (nobody before it). Days and weeks step in wall-clock time, so a daily
    09:00 handoff stays at 09:00 across a daylight-saving change; hours step in elapsed time."""
    people = rotation.participants
    if not people:
        return
    zone = ZoneInfo(rotation.timezone)
    if rotation.unit == "hours":
        first, step = local_to_utc(rotation.handoff, zone), timedelta(hours=rotation.length)

        def handoff(turn: int) -> datetime:
            return first + turn * step

        turn = (start - first) // step
    else:
        step = timedelta(days=rotation.length * (7 if rotation.unit == "weeks" else 1))

        def handoff(turn: int) -> datetime:
            return local_to_utc(rotation.handoff + turn * step, zone)

        turn = (start.astimezone(zone).replace(tzinfo=None) - rotation.handoff) // step
    turn = max(turn - 1, 0)  # one turn early: an offset change can move a handoff across `start`
    while (begins := handoff(turn)) < end:
        ends = handoff(turn + 1)
        if ends > start:
            reason = f"{rotation.role} by rotation {rotation.name!r} until {local_label(ends, zone)}"
            yield Slot(people[turn % len(people)], rotation.role, begins, ends, reason)
        turn += 1


@lru_cache(maxsize=64)
def parsed(ics: str) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(ics)


def calendar_slots(
    calendar: Calendar, advocates: dict[int, Advocate], zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Slot]:
    """Each occurrence of each event (recurrences and their exceptions expanded) for the advocates it names."""
    for event in recurring_ical_events.of(parsed(calendar.ics)).between(start, end):
        begins, ends = event_range(event, zone)
        for advocate_id in named_in(event, advocates.values()):
            reason = f"{calendar.role} by calendar {calendar.name!r}: {event.get('SUMMARY', '')}".strip()
            yield Slot(advocate_id, calendar.role, begins, ends, reason)


def as_instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """All-day dates and floating times are the program's own wall time."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return local_to_utc(value, zone) if value.tzinfo is None else value.astimezone(UTC)


def event_range(event: icalendar.Event, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begins = event.decoded("DTSTART")
    if "DTEND" in event:
        ends = event.decoded("DTEND")
    elif "DURATION" in event:
        ends = begins + event.decoded("DURATION")
    else:  # RFC 5545: a day for an all-day event, an instant otherwise
        ends = begins + timedelta(days=1) if not isinstance(begins, datetime) else begins
    return as_instant(begins, zone), as_instant(ends, zone)


def names_of(event: icalendar.Event) -> list[str]:
    attendees = event.get("ATTENDEE", [])
    attendees = attendees if isinstance(attendees, list) else [attendees]
    return [str(a.params.get("CN", "")) for a in attendees] + [str(event.get("SUMMARY", ""))]


def named_in(event: icalendar.Event, advocates: Iterable[Advocate]) -> list[int]:
    """Advocates an event names — by an attendee's name or in its summary ("Dana on call"), by key or name."""
    text = " | ".join(names_of(event)).lower()
    return [
        a.id
        for a in advocates
        if any(re.search(rf"(?<!\w){re.escape(handle.lower())}(?!\w)", text) for handle in (a.key, a.name))
    ]


def subtract(
    pieces: list[tuple[datetime, datetime]], cut: tuple[datetime, datetime]
) -> list[tuple[datetime, datetime]]:
    left = []
    for begins, ends in pieces:
        if cut[1] <= begins or cut[0] >= ends:
            left.append((begins, ends))
            continue
        if begins < cut[0]:
            left.append((begins, cut[0]))
        if cut[1] < ends:
            left.append((cut[1], ends))
    return left


def apply_overrides(
    slots: list[Slot], overrides: Sequence[Override], advocates: dict[int, Advocate], zone: ZoneInfo
) -> list[Slot]:
    result = []
    for slot in slots:
        pieces = [(slot.starts_at, slot.ends_at)]
        for o in overrides:
            if o.replaces_id == slot.advocate_id and o.role == slot.role:
                pieces = subtract(pieces, (o.starts_at, o.ends_at))
        result += [replace(slot, starts_at=b, ends_at=e) for b, e in pieces]
    for o in overrides:
        reason = f"{o.role} by override until {local_label(o.ends_at, zone)}"  # the wall time, as a rotation's
        if o.replaces_id is not None:
            replaced = advocates.get(o.replaces_id)
            reason += f", covering for {replaced.key if replaced else 'someone no longer active'}"
        # Someone covering who is covered in turn (they took a shift, then asked cover for it): a later override
        # replacing them cuts their override as it cuts a scheduled slot.
        pieces = [(o.starts_at, o.ends_at)]
        for later in overrides:
            if later.id > o.id and later.replaces_id == o.advocate_id and later.role == o.role:
                pieces = subtract(pieces, (later.starts_at, later.ends_at))
        result += [Slot(o.advocate_id, o.role, b, e, reason, override=True) for b, e in pieces]
    return result


def speaks(languages: Iterable[str], wanted: str) -> bool:
    """BCP 47 by primary subtag: an advocate who speaks "es" serves a victim who speaks "es-MX"."""
    primary = wanted.split("-")[0].lower()
    return any(lang.split("-")[0].lower() == primary for lang in languages)


def order_chain(
    slots: Iterable[Slot], advocates: dict[int, Advocate], language: str | None, verified: frozenset[int] = frozenset()
) -> list[OnCall]:
    """Primaries, backups, then supervisors; within a role, speakers of the victim's language first, then whoever
    an override put there; each person once."""
    chain: list[OnCall] = []
    seen: set[int] = set()
    for role in ROLE_ORDER:
        in_role = [s for s in slots if s.role == role]
        matches = {
            s.advocate_id: speaks(advocates[s.advocate_id].languages, language) if language else None for s in in_role
        }
        ranked = sorted(
            in_role, key=lambda s: (matches[s.advocate_id] is False, not s.override, advocates[s.advocate_id].key)
        )
        for slot in ranked:
            advocate = advocates[slot.advocate_id]
            if advocate.id in seen:
                continue
            seen.add(advocate.id)
            match = matches[advocate.id]
            reason = slot.reason
            if match is not None:
                reason += f"; {'speaks' if match else 'does not speak'} {language}"
            chain.append(
                OnCall(
                    advocate_id=advocate.id,
                    key=advocate.key,
                    name=advocate.name,
                    phone=advocate.phone,
                    role=role,
                    languages=advocate.languages,
                    language_match=match,
                    reason=reason,
                    phone_verified=advocate.id in verified,
                )
            )
    return chain


async def schedule_for(session: AsyncSession, agency: Agency, area: Area, start: datetime, end: datetime) -> Schedule:
    """An area's schedule, with the overrides that touch `start`..`end`."""
    advocates = list(
        await session.scalars(
            select(Advocate)
            .join(advocate_areas, advocate_areas.c.advocate_id == Advocate.id)
            .where(advocate_areas.c.area_id == area.id, Advocate.active)
        )
    )
    proven = await session.scalars(
        select(AdvocatePhone.advocate_id).where(
            AdvocatePhone.advocate_id.in_([a.id for a in advocates]), AdvocatePhone.verified_at.is_not(None)
        )
    )
    return Schedule(
        timezone=agency.timezone,
        advocates={a.id: a for a in advocates},
        verified=frozenset(proven),
        shifts=list(await session.scalars(select(Shift).where(Shift.area_id == area.id))),
        rotations=list(await session.scalars(select(Rotation).where(Rotation.area_id == area.id))),
        calendars=list(await session.scalars(select(Calendar).where(Calendar.area_id == area.id))),
        overrides=list(
            await session.scalars(
                select(Override).where(Override.area_id == area.id, Override.starts_at < end, Override.ends_at > start)
            )
        ),
    )


async def on_call(
    session: AsyncSession, agency: Agency, area_code: str | None, at: datetime, language: str | None
) -> list[OnCall]:
    if area_code is None:
        return []
    area = await session.scalar(select(Area).where(Area.agency_id == agency.id, Area.code == area_code))
    if area is None:
        return []
    return (await schedule_for(session, agency, area, at, at + INSTANT)).chain(at, language)
