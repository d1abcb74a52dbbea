"""Times as a person reads them: in their agency's time zone, with the zone's abbreviation (EST, EDT), never UTC
unless the agency keeps UTC."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

MINUTE = "%Y-%m-%d %H:%M %Z"
SECOND = "%Y-%m-%d %H:%M:%S %Z"


def local_time(moment: datetime, timezone: str, pattern: str = MINUTE) -> str:
    """`moment` (aware) on the agency's clock, "2026-11-16 07:00 EST" by default."""
    return moment.astimezone(ZoneInfo(timezone)).strftime(pattern)
