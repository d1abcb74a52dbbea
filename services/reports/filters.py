"""What a report covers: its period and filters, as the API and the dashboard take them.

A period's ends are dates or times. A date, or a time without an offset, is read in each call's agency's time
zone — the day as the agency lives it: `from=2026-11-01` starts at its midnight, and a date `to` includes that
whole day. A time with an offset (`Z`, `-05:00`) is that instant everywhere. Left out, the period is the last 30
days."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from sqlalchemy import SQLColumnExpression, and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from shared.problems import Invalid
from shared.text import StorableStr

DEFAULT_DAYS = 30
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
# A `+` typed into a URL's query arrives as a space: "2026-11-01T08:00 01:00" meant "+01:00".
SPACED_OFFSET = re.compile(r"(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})")
FORMS = "a date (2026-11-01) or a date and time (2026-11-01T08:00, with an offset such as -05:00 or Z if wanted)"


@dataclass(frozen=True)
class Bound:
    """One end of a period. `at` is aware for an instant; naive for a wall-clock time, read in each call's
    agency's time zone. `shown` is how the period is given back."""

    at: datetime
    shown: str

    @property
    def is_instant(self) -> bool:
        return self.at.tzinfo is not None

    def instant(self, zone: str) -> datetime:
        """The instant this end is for an agency in `zone`. A wall-clock time that a change of clocks skips or
        repeats is read with the offset before the change (the earlier, for one repeated)."""
        return self.at if self.is_instant else self.at.replace(tzinfo=ZoneInfo(zone))


@dataclass(frozen=True)
class Period:
    start: Bound
    end: Bound

    def length(self) -> timedelta:
        """How long the period is (as UTC's clock would read a wall-clock end: near enough to choose a chart)."""
        return self.end.instant("UTC") - self.start.instant("UTC")

    def covers(
        self,
        received: SQLColumnExpression[datetime],
        agency: SQLColumnExpression[int],
        zones: Mapping[str, Sequence[int]],
    ) -> ColumnElement[bool]:
        """Calls received in the period, their agencies being in `zones` (time zone -> agency ids): one range of
        time per zone, which PostgreSQL can count the calls of before it plans."""
        if self.start.is_instant and self.end.is_instant:
            return and_(received >= self.start.at, received < self.end.at)
        return or_(
            false(),
            *(
                and_(agency.in_(ids), received >= self.start.instant(zone), received < self.end.instant(zone))
                for zone, ids in sorted(zones.items())
            ),
        )


def rfc3339(at: datetime) -> str:
    """A time as RFC 3339 writes it (UTC as `Z`, as the API writes every time)."""
    return at.isoformat().replace("+00:00", "Z")


def parse_bound(value: str, name: Literal["from", "to"]) -> Bound:
    """One end as written; a date `to` is the end of that day."""
    spaced = SPACED_OFFSET.fullmatch(value)
    written = f"{spaced[1]}+{spaced[2]}" if spaced else value
    try:
        if DATE.fullmatch(written):
            day = date.fromisoformat(written)
            return Bound(datetime.combine(day + timedelta(days=1 if name == "to" else 0), datetime.min.time()), written)
        if DATETIME.fullmatch(written):
            at = datetime.fromisoformat(written.upper().replace("Z", "+00:00"))
            return Bound(at, rfc3339(at))
    except ValueError:
        pass  # the shape of a date, but no such day or time (2026-02-30, 25:00)
    raise Invalid(f"`{name}` must be {FORMS}.", errors=[{"field": f"query.{name}", "message": "not a date or time"}])


def period_of(start: str | None, end: str | None, now: datetime) -> Period:
    """The period asked for; an end left out (or empty, as a form sends it) is now, or 30 days before the
    other end."""
    upper = (
        parse_bound(end, "to")
        if end
        else Bound(
            upto := now.replace(second=0, microsecond=0) + timedelta(minutes=1),  # this minute's calls too
            rfc3339(upto),
        )
    )
    if start:
        lower = parse_bound(start, "from")
    else:
        at = upper.at - timedelta(days=DEFAULT_DAYS)
        lower = Bound(at, at.date().isoformat() if end and DATE.fullmatch(end) else rfc3339(at))
    if lower.is_instant == upper.is_instant and upper.at <= lower.at:
        raise Invalid("`to` must be after `from`.", errors=[{"field": "query.to", "message": "not after `from`"}])
    return Period(lower, upper)


Tier = Literal["immediate", "priority", "follow_up"]
FROM_HELP = f"Calls received from then: {FORMS}; a date or a time without offset is in the agency's time zone"
TO_HELP = "Calls received before then, in the same forms; a date includes that whole day"


@dataclass(frozen=True)
class Filters:
    period: Period
    agency: str | None = None
    area: str | None = None
    tier: Tier | None = None
    advocate: str | None = None  # who accepted, by their key
    language: str | None = None


def filters(
    request: Request,
    start: Annotated[str | None, Query(alias="from", max_length=64, description=FROM_HELP)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description=TO_HELP)] = None,
    agency: Annotated[StorableStr | None, Query(max_length=64)] = None,
    area: Annotated[StorableStr | None, Query(max_length=64)] = None,
    tier: Annotated[Tier | None, Query()] = None,
    advocate: Annotated[StorableStr | None, Query(max_length=64, description="Who accepted (their key)")] = None,
    language: Annotated[
        StorableStr | None, Query(max_length=35, description="The victim's (BCP 47 primary subtag)")
    ] = None,
) -> Filters:
    """The reports API's filters (the dashboard's form gives the same ones)."""
    return Filters(
        period=period_of(start, end, request.app.state.clock.now()),
        agency=agency or None,
        area=area or None,
        tier=tier,
        advocate=advocate or None,
        language=language or None,
    )
