"""Times as people on call read them: in the agency's own time zone, the same on a page and in a text."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def span(starts: datetime, ends: datetime, timezone: str) -> str:
    """From and to in `timezone`: "Tue 17 Nov 08:00 to 20:00 EST", or "... to Wed 18 Nov 08:00 EST"."""
    zone = ZoneInfo(timezone)
    begins, finishes = starts.astimezone(zone), ends.astimezone(zone)
    until = f"{finishes:%H:%M}" if finishes.date() == begins.date() else f"{finishes:%a %d %b %H:%M}"
    return f"{begins:%a %d %b %H:%M} to {until} {finishes:%Z}"
