"""The watch on every CAD feed: Callout cannot alert anyone about a call that never reaches it, so an adapter that
went down, or a filter that started dropping DV codes, must be seen as silence.

A feed is silent when nothing — no event, no heartbeat — came for longer than the agency's own window
(`feed_silence_minutes`), or when no event came for far longer than its usual gap at this hour of the week, learned
from its last eight weeks (heartbeats keep an adapter alive, but not a filter that drops every call). Its
supervisors (and its IT contact) are told once when it falls silent and once when it speaks again. A silent CAD is
not Callout's fault: readiness is untouched; /metrics, the board and the dashboard show it (shared/feeds.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import escalation, messages
from services.alerts.callout import Person
from services.alerts.directory_client import ContactWatch
from shared.feeds import of_agency, read_feed
from shared.localtime import local_time
from shared.tables import Agency, FeedSilence, ReceivedEvent

HISTORY = timedelta(weeks=8)
LEARNING = timedelta(weeks=2)  # less history than this teaches nothing about an hour of the week


async def usual_per_hour(session: AsyncSession, agency: Agency, now: datetime) -> float | None:
    """Events an hour at this hour of the week (in the agency's time zone), over the weeks it has history for
    (eight at most); None with less than two weeks of it. Read by the watch alone: it scans weeks of events."""
    first = await session.scalar(select(func.min(ReceivedEvent.received_at)).where(of_agency(agency)))
    if first is None or now - first < LEARNING:
        return None
    weeks = min(now - first, HISTORY) / timedelta(weeks=1)
    local = func.timezone(agency.timezone, ReceivedEvent.received_at)
    here = func.timezone(agency.timezone, now)
    count = await session.scalar(
        select(func.count()).where(
            of_agency(agency),
            ReceivedEvent.received_at > now - HISTORY,
            ReceivedEvent.received_at <= now - timedelta(hours=1),
            func.extract("isodow", local) == func.extract("isodow", here),
            func.extract("hour", local) == func.extract("hour", here),
        )
    )
    return (count or 0) / weeks or None


async def watch(session: AsyncSession, agency: Agency, people: ContactWatch, now: datetime) -> int:
    """Tell the agency's supervisors (and IT) that its feed fell silent, or speaks again. Returns how many told."""
    feed = await read_feed(session, agency, now)
    window = timedelta(minutes=agency.feed_silence_minutes) if agency.feed_silence_minutes else None
    reason = feed.silence(now, window, await usual_per_hour(session, agency, now))
    told = await session.get(FeedSilence, agency.id, with_for_update=True)
    if reason is not None and told is None and feed.last_sign is not None:
        fresh = await session.scalar(
            insert(FeedSilence)
            .values(agency_id=agency.id, since=feed.last_sign, reason=reason[:200], told_at=now)
            .on_conflict_do_nothing(index_elements=["agency_id"])  # another worker told it just now
            .returning(FeedSilence.agency_id)
        )
        if fresh is None:
            return 0
        body = messages.feed_silent_sms(since=local_time(feed.last_sign, agency.timezone), reason=reason)
    elif reason is None and told is not None and feed.last_sign is not None and feed.last_sign > told.since:
        await session.execute(delete(FeedSilence).where(FeedSilence.agency_id == agency.id))
        body = messages.feed_back_sms(since=local_time(told.since, agency.timezone))
    else:
        return 0
    tell_everyone(session, people, agency, body, now)
    return 1


def tell_everyone(session: AsyncSession, people: ContactWatch, agency: Agency, body: str, now: datetime) -> None:
    """Every area's supervisors on call now (the hotline if none), and the agency's IT contact."""
    supervisors = {p.phone: p for area in people.supervisors.values() for p in area}
    for person in supervisors.values() or (Person(role="hotline", phone=people.hotline),):
        escalation.queue_staff_text(session, person, body, now=now)
    if agency.it_contact and agency.it_contact not in supervisors:
        escalation.queue_staff_text(session, escalation.ItContact(agency.it_contact), body, now=now)
