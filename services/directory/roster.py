"""Who is on call: the weekly schedule read at one moment, ordered into an escalation chain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import MINUTES_PER_WEEK, Advocate, Area, Shift
from services.directory.schemas import DAYS, OnCall
from shared.tables import Agency

ROLE_ORDER = ("primary", "backup", "supervisor")


def minute_of_week(at: datetime, timezone: str) -> int:
    local = at.astimezone(ZoneInfo(timezone))
    return local.weekday() * 1440 + local.hour * 60 + local.minute


def covers(shift: Shift, minute: int) -> bool:
    return (minute - shift.start_minute) % MINUTES_PER_WEEK < shift.minutes


def speaks(languages: Iterable[str], wanted: str) -> bool:
    """BCP 47 by primary subtag: an advocate who speaks "es" serves a victim who speaks "es-MX"."""
    primary = wanted.split("-")[0].lower()
    return any(lang.split("-")[0].lower() == primary for lang in languages)


def describe(shift: Shift) -> str:
    day, minute = divmod(shift.start_minute, 1440)
    end = (shift.start_minute + shift.minutes) % MINUTES_PER_WEEK
    end_day, end_minute = divmod(end, 1440)
    return f"{DAYS[day]} {clock_time(minute)} to {DAYS[end_day]} {clock_time(end_minute)}"


def clock_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class OnShift:
    shift: Shift
    advocate: Advocate


def order_chain(on_shift: Iterable[OnShift], language: str | None) -> list[OnCall]:
    """Primaries, backups, then supervisors; within a role, speakers of the victim's language first; each once."""
    chain: list[OnCall] = []
    seen: set[int] = set()
    for role in ROLE_ORDER:
        in_role = [s for s in on_shift if s.shift.role == role]
        matches = {s.advocate.id: (speaks(s.advocate.languages, language) if language else None) for s in in_role}
        for entry in sorted(in_role, key=lambda s: (matches[s.advocate.id] is False, s.advocate.key)):
            advocate = entry.advocate
            if advocate.id in seen:
                continue
            seen.add(advocate.id)
            match = matches[advocate.id]
            reason = f"{role} on call {describe(entry.shift)}"
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
                )
            )
    return chain


async def on_call(
    session: AsyncSession, agency: Agency, area_code: str | None, at: datetime, language: str | None
) -> list[OnCall]:
    if area_code is None:
        return []
    rows = await session.execute(
        select(Shift, Advocate)
        .join(Area, Area.id == Shift.area_id)
        .join(Advocate, Advocate.id == Shift.advocate_id)
        .where(Area.agency_id == agency.id, Area.code == area_code, Advocate.active)
    )
    minute = minute_of_week(at, agency.timezone)
    return order_chain([OnShift(shift, advocate) for shift, advocate in rows if covers(shift, minute)], language)
