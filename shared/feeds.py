"""What is known of an agency's CAD feed now, cheap to read (two index lookups and two rows): when it last spoke
(an event, a heartbeat), its events of the last hour, the rule that finds it silent, and whether the feed watch
(services/alerts/feeds.py, the only one that decides and tells) found it silent. /metrics reads it on every scrape;
the board and the dashboard show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.localtime import DAY_MINUTE, local_time
from shared.tables import Agency, CadHeartbeat, FeedSilence, ReceivedEvent

FAR_LONGER = 10  # silent: no event for this many times its usual gap at this hour of the week
QUIET_AT_LEAST = timedelta(minutes=15)


@dataclass(frozen=True)
class Feed:
    """What is known of one agency's feed now (cheap to read: /metrics reads it on every scrape)."""

    last_event_at: datetime | None
    last_heartbeat_at: datetime | None
    events_last_hour: int

    @property
    def last_sign(self) -> datetime | None:
        signs = [at for at in (self.last_event_at, self.last_heartbeat_at) if at is not None]
        return max(signs, default=None)

    def silence(self, now: datetime, window: timedelta | None, usual_per_hour: float | None) -> str | None:
        """Why the feed is silent now, or None while it speaks. A feed that never spoke has nothing to miss.
        `usual_per_hour`: its events an hour at this hour of the week (None: not enough history to say)."""
        if self.last_sign is None:
            return None
        if window is not None and now - self.last_sign > window:
            return f"no event or heartbeat for {minutes(now - self.last_sign)} (its window: {minutes(window)})"
        if usual_per_hour and self.last_event_at is not None:
            quiet, usual_gap = now - self.last_event_at, timedelta(hours=1 / usual_per_hour)
            if quiet >= max(QUIET_AT_LEAST, FAR_LONGER * usual_gap):
                return (
                    f"no event for {minutes(quiet)}; at this hour of the week it usually has one every "
                    f"{minutes(usual_gap)}"
                )
        return None


def minutes(span: timedelta) -> str:
    total = int(span.total_seconds() // 60)
    return f"{total} min" if total < 120 else f"{total // 60} h {total % 60} min"


def of_agency(agency: Agency) -> Any:
    return ReceivedEvent.agency_id == agency.id


async def read_feed(session: AsyncSession, agency: Agency, now: datetime) -> Feed:
    """Two index lookups (its last event; its events of the last hour) and its heartbeat."""
    last_event = await session.scalar(select(func.max(ReceivedEvent.received_at)).where(of_agency(agency)))
    last_hour = await session.scalar(
        select(func.count()).where(of_agency(agency), ReceivedEvent.received_at > now - timedelta(hours=1))
    )
    heartbeat = await session.get(CadHeartbeat, agency.id)
    return Feed(last_event, heartbeat.at if heartbeat else None, last_hour or 0)


@dataclass(frozen=True)
class FeedState:
    """A feed as people are shown it: what is known of it, and the silence the watch found and told, if any."""

    feed: Feed
    silent: FeedSilence | None

    def heard(self, timezone: str) -> str:
        """What came, and when, on the agency's clock."""
        feed, when = self.feed, DAY_MINUTE
        if feed.last_sign is None:
            return "Nothing received from the CAD yet."
        event = f"Last event {local_time(feed.last_event_at, timezone, when)}" if feed.last_event_at else "No event yet"
        beat = feed.last_heartbeat_at
        heartbeat = f"last heartbeat {local_time(beat, timezone, when)}" if beat else "no heartbeat (optional)"
        return f"{event} ({feed.events_last_hour} in the last hour); {heartbeat}."

    def silence(self, timezone: str) -> str | None:
        """The silence the watch found and told, in words, or None while the feed speaks."""
        if self.silent is None:
            return None
        when = DAY_MINUTE
        return (
            f"Silent since {local_time(self.silent.since, timezone, when)}: {self.silent.reason}. Told "
            f"{local_time(self.silent.told_at, timezone, when)}; told again when it speaks."
        )


async def feed_state(session: AsyncSession, agency: Agency, now: datetime) -> FeedState:
    return FeedState(await read_feed(session, agency, now), await session.get(FeedSilence, agency.id))
