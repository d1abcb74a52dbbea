"""Times as a person reads them — on a page, in a text — in their agency's time zone, with the zone's abbreviation
(EST, EDT), never UTC unless the agency keeps UTC."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

MINUTE = "%Y-%m-%d %H:%M %Z"
SECOND = "%Y-%m-%d %H:%M:%S %Z"


def local_time(moment: datetime, timezone: str, pattern: str = MINUTE) -> str:
    """`moment` (aware) on the agency's clock, "2026-11-16 07:00 EST" by default."""
    return moment.astimezone(ZoneInfo(timezone)).strftime(pattern)


def span(starts: datetime, ends: datetime, timezone: str) -> str:
    """From and to in `timezone`: "Tue 17 Nov 08:00 to 20:00 EST", or "... to Wed 18 Nov 08:00 EST"."""
    zone = ZoneInfo(timezone)
    begins, finishes = starts.astimezone(zone), ends.astimezone(zone)
    until = f"{finishes:%H:%M}" if finishes.date() == begins.date() else f"{finishes:%a %d %b %H:%M}"
    return f"{begins:%a %d %b %H:%M} to {until} {finishes:%Z}"
