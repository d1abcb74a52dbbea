"""Times as a person reads them — on a page, in a text — in their agency's time zone, with the zone's abbreviation
(EST, EDT), never UTC unless the agency keeps UTC; and a time a person typed on the agency's clock, read back."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

MINUTE = "%Y-%m-%d %H:%M %Z"
SECOND = "%Y-%m-%d %H:%M:%S %Z"
DAY_MINUTE = "%a %d %b %H:%M %Z"  # on a page: "Tue 01 Dec 08:40 CST"


def local_time(moment: datetime, timezone: str, pattern: str = MINUTE) -> str:
    """`moment` (aware) on the agency's clock, "2026-11-16 07:00 EST" by default."""
    return moment.astimezone(ZoneInfo(timezone)).strftime(pattern)


def span(starts: datetime, ends: datetime, timezone: str) -> str:
    """From and to in `timezone`: "Tue 17 Nov 08:00 to 20:00 EST", or "... to Wed 18 Nov 08:00 EST"; across a
    daylight-saving change each end says its own ("Sun 14 Mar 01:00 EST to 04:00 EDT")."""
    zone = ZoneInfo(timezone)
    begins, finishes = starts.astimezone(zone), ends.astimezone(zone)
    until = f"{finishes:%H:%M}" if finishes.date() == begins.date() else f"{finishes:%a %d %b %H:%M}"
    own = f" {begins:%Z}" if begins.tzname() != finishes.tzname() else ""
    return f"{begins:%a %d %b %H:%M}{own} to {until} {finishes:%Z}"


class NotOnTheClock(ValueError):
    """A wall time that a daylight-saving change skips, or shows twice: which instant is meant cannot be known."""


def instant(wall: datetime, timezone: str) -> datetime:
    """A wall-clock time typed in `timezone` (naive) as the instant it names, in UTC. On the night the clocks change,
    a time they skip (02:30 when they go forward) names no instant and one they show twice (01:30 when they go
    back) names two: NotOnTheClock says so rather than guess."""
    zone = ZoneInfo(timezone)
    earlier, later = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return earlier.astimezone(UTC)
    day = f"{wall:%a %d %b %Y} in {timezone}"
    if earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        raise NotOnTheClock(f"There is no {wall:%H:%M} on {day}: the clocks go forward that night.")
    raise NotOnTheClock(
        f"{wall:%H:%M} comes twice on {day} ({earlier:%Z}, then {later:%Z}): the clocks go back that night. "
        "Choose a time outside the hour that repeats."
    )
