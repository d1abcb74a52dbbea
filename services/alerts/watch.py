"""Telling supervisors what may leave a DV call unanswered, before a callout finds out: someone on call within a day
whose phone is not proven or cannot be reached, and a phone found unreachable (an advocate who texted STOP, a
number the provider refuses) — at once, to the supervisors of every agency that advocate serves.

And a stretch of time with nobody on call in a role in an area, two days before it starts and again four hours
before; and cover an advocate asked for that nobody has taken, a day before the shift. The directory knows who is on
call and who supervises them (`ContactWatch`); this module decides what to say and to whom, and says each thing once
(`StaffNotice`), however often the watch looks."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import cover as cover_steps
from services.alerts import escalation, messages
from services.alerts.callout import Person
from services.alerts.directory_client import ContactWatch
from services.alerts.models import StaffNotice
from shared.localtime import local_time, span
from shared.tables import AdvocatePhone, Unreachable, Wake, wake_alerts

WINDOW_HOURS = 24  # how far ahead an unproven or unreachable phone on call is called out
GAP_TOLD_AGAIN = timedelta(hours=4)  # a gap is told when the directory first sees it (two days ahead), and again


async def tell(session: AsyncSession, watch: ContactWatch, *, agency_id: int, now: datetime) -> int:
    """Text the agency's supervisors what they have not been told yet. Returns how many things were told."""
    told = 0
    for shift in watch.at_risk:
        problem = "unverified" if not shift.phone_verified else "unreachable-" + "-".join(shift.unreachable)
        key = f"{problem}:{shift.advocate_id}:{shift.area}:{shift.role}:{shift.starts_at.isoformat()}"
        if await once(session, key, agency_id, now):
            body = messages.at_risk_sms(
                key=shift.key,
                role=shift.role,
                area=shift.area,
                when=local_time(max(shift.starts_at, now), watch.timezone),
                verified=shift.phone_verified,
                unreachable=shift.unreachable,
            )
            tell_supervisors(session, watch, (shift.area,), body, but=shift.advocate_id, now=now)
            told += 1
    for gap in watch.gaps:
        lead = gap.starts_at - now
        key = f"gap:{gap.area}:{gap.role}:{gap.starts_at.isoformat()}"
        told_now = [await once(session, f"{key}:48h", agency_id, now)]
        if lead <= GAP_TOLD_AGAIN:
            told_now.append(await once(session, f"{key}:4h", agency_id, now))
        if any(told_now):  # first seen within four hours: told once, not twice
            body = messages.gap_sms(
                area=gap.area,
                role=gap.role,
                starts=local_time(max(gap.starts_at, now), watch.timezone),
                ends=local_time(gap.ends_at, watch.timezone),
            )
            tell_supervisors(session, watch, (gap.area,), body, but=None, now=now)
            told += 1
    for cover in watch.unfilled_cover:
        if await once(session, f"cover:{cover.id}", agency_id, now):
            when = span(max(cover.starts_at, now), cover.ends_at, watch.timezone)
            body = messages.unfilled_cover_sms(messages.CoverShift(cover.role, cover.area, when), cover.advocate)
            tell_supervisors(session, watch, (cover.area,), body, but=cover.advocate_id, now=now)
            await cover_steps.audited(session, cover.id, "unfilled told", now)
            told += 1
    cut_off = await session.execute(
        select(Unreachable, AdvocatePhone.advocate_id)
        .join(AdvocatePhone, AdvocatePhone.phone == Unreachable.phone)
        .where(AdvocatePhone.agency_id == agency_id)
    )
    for unreachable, advocate_id in cut_off:
        key = f"unreachable:{unreachable.id}:{advocate_id}"
        if advocate_id in watch.keys and await once(session, key, agency_id, now):
            body = messages.unreachable_sms(
                key=watch.keys[advocate_id],
                channel=unreachable.channel,
                code=unreachable.code,
                reason=unreachable.reason,
            )
            tell_supervisors(session, watch, watch.areas_of.get(advocate_id, ()), body, but=advocate_id, now=now)
            told += 1
    if told:
        await wake_alerts(session, Wake.sends)
    return told


async def once(session: AsyncSession, key: str, agency_id: int, now: datetime) -> bool:
    """Whether `key` is new (and now kept): what was told is not told again."""
    kept = await session.scalar(
        insert(StaffNotice)
        .values(key=key[:200], agency_id=agency_id, at=now)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(StaffNotice.key)
    )
    return kept is not None


def tell_supervisors(
    session: AsyncSession, watch: ContactWatch, areas: tuple[str, ...], body: str, *, but: int | None, now: datetime
) -> None:
    """The supervisors on call now in `areas` (not the advocate it is about), or the hotline when there are none."""
    people: dict[str, Person] = {}
    for area in areas:
        for person in watch.supervisors.get(area, ()):
            if person.advocate_id != but:
                people.setdefault(person.phone, person)
    for person in people.values() or (Person(role="hotline", phone=watch.hotline),):
        escalation.queue_staff_text(session, person, body, now=now)
