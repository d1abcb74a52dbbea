"""Keeping the directory: agencies, areas, advocates, schedules. Functions flush; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.directory.models import Advocate, Area, Shift
from services.directory.schemas import AdvocateIn, AgencyIn, AreaIn, ProgramIn, ScheduleIn
from shared import webhooks
from shared.apco import DEFAULT_CODE_MAP
from shared.egress import Egress, Refused
from shared.problems import Invalid, NotFound
from shared.tables import AdvocatePhone, Agency, ContactTest, Wake, wake_alerts


async def get_agency(session: AsyncSession, slug: str) -> Agency:
    agency = await session.scalar(select(Agency).where(Agency.slug == slug))
    if agency is None:
        raise NotFound(f"No agency {slug!r}.")
    return agency


async def put_agency(
    session: AsyncSession, slug: str, spec: AgencyIn, *, now: datetime, egress: Egress
) -> tuple[Agency, str | None]:
    """Create or update an agency. Returns the webhook secret when it was created or set, else None. A notify URL
    Callout would not post to (shared/egress.py) is refused, saying why."""
    if spec.webhook_secret is not None and not webhooks.is_valid_secret(spec.webhook_secret):
        raise Invalid("webhook_secret must be a Standard Webhooks secret: whsec_ and base64.")
    if spec.notify_url is not None:
        try:
            await egress.check(str(spec.notify_url))
        except Refused as exc:
            raise Invalid(f"notify_url refused: {exc}.") from None
    agency = await session.scalar(select(Agency).where(Agency.slug == slug).with_for_update())
    new_secret, created = spec.webhook_secret, agency is None
    if agency is None:
        new_secret = new_secret or webhooks.new_secret()
        agency = Agency(slug=slug, webhook_secret=new_secret, code_map=dict(DEFAULT_CODE_MAP), created_at=now)
        session.add(agency)
    elif new_secret:
        agency.webhook_secret = new_secret
    agency.name, agency.timezone = spec.name, spec.timezone
    # The program keeps its feed watch itself (PUT …/program): an update that does not name it leaves it be.
    kept = {f: getattr(agency, f) for f in PROGRAM_KEPT if f not in spec.model_fields_set and not created}
    put_program(agency, spec.model_copy(update=kept))
    if spec.code_map is not None:
        agency.code_map = spec.code_map
    agency.notify_url = str(spec.notify_url) if spec.notify_url else None
    await session.flush()
    return agency, new_secret


PROGRAM_KEPT = ("feed_silence_minutes", "it_contact")


def put_program(agency: Agency, spec: ProgramIn) -> None:
    """The program's own part of its agency: its hotline, and whom to tell when the CAD falls silent."""
    agency.hotline = spec.hotline
    agency.feed_silence_minutes, agency.it_contact = spec.feed_silence_minutes, spec.it_contact


async def put_area(session: AsyncSession, agency: Agency, code: str, spec: AreaIn) -> Area:
    area = await session.scalar(select(Area).where(Area.agency_id == agency.id, Area.code == code))
    if area is None:
        area = Area(agency_id=agency.id, code=code, name=spec.name)
        session.add(area)
    area.name = spec.name
    await session.flush()
    return area


async def put_advocate(session: AsyncSession, agency: Agency, key: str, spec: AdvocateIn, *, now: datetime) -> Advocate:
    areas = list(await session.scalars(select(Area).where(Area.agency_id == agency.id, Area.code.in_(spec.areas))))
    if missing := sorted(set(spec.areas) - {a.code for a in areas}):
        raise Invalid(f"Unknown area(s): {', '.join(missing)}.")
    advocate = await session.scalar(
        select(Advocate)
        .where(Advocate.agency_id == agency.id, Advocate.key == key)
        .options(selectinload(Advocate.areas))
    )
    if advocate is None:
        advocate = Advocate(agency_id=agency.id, key=key, created_at=now, areas=[])
        session.add(advocate)
    advocate.name, advocate.phone, advocate.languages, advocate.active = (
        spec.name,
        spec.phone,
        spec.languages,
        spec.active,
    )
    advocate.areas = areas
    await session.flush()
    await ask_to_prove(session, advocate, now=now)
    return advocate


async def phone_verified(session: AsyncSession, advocate: Advocate) -> bool:
    proven = await session.get(AdvocatePhone, advocate.id)
    return proven is not None and proven.phone == advocate.phone and proven.verified_at is not None


async def ask_to_prove(session: AsyncSession, advocate: Advocate, *, now: datetime) -> None:
    """A new or changed phone is unproven until its advocate texts back the code the alerts service sends it."""
    proven = await session.get(AdvocatePhone, advocate.id, with_for_update=True)  # a code may be proving it now
    if proven is not None and proven.phone == advocate.phone:
        return
    if proven is None:
        proven = AdvocatePhone(advocate_id=advocate.id, agency_id=advocate.agency_id)
        session.add(proven)
    proven.phone, proven.verified_at, proven.check_due_at = advocate.phone, None, now
    proven.code_hmac = proven.code_expires_at = None
    await wake_alerts(session, Wake.phones)


async def request_test(session: AsyncSession, advocate: Advocate, *, requested_by: str, now: datetime) -> ContactTest:
    """Ask the alerts service to send a test text and a test call to the advocate's phone now."""
    test = ContactTest(
        agency_id=advocate.agency_id,
        advocate_id=advocate.id,
        phone=advocate.phone,
        requested_at=now,
        requested_by=requested_by[:100],
        due_at=now,
    )
    session.add(test)
    await session.flush()
    await wake_alerts(session, Wake.phones)
    return test


async def find_advocates(session: AsyncSession, agency: Agency, keys: set[str]) -> dict[str, Advocate]:
    return {
        a.key: a
        for a in await session.scalars(
            select(Advocate)
            .where(Advocate.agency_id == agency.id, Advocate.key.in_(keys))
            .options(selectinload(Advocate.areas))
        )
    }


def refuse(problems: list[str]) -> None:
    if problems:
        raise Invalid("; ".join(problems) + ".")


def unknown(keys: set[str], found: dict[str, Advocate]) -> list[str]:
    return [f"unknown advocate {k!r}" for k in sorted(keys - found.keys())]


def not_covering(advocates: Iterable[Advocate], area: Area) -> list[str]:
    return sorted(f"{a.key!r} does not cover area {area.code}" for a in advocates if area not in a.areas)


async def advocates_of_area(session: AsyncSession, agency: Agency, area: Area, keys: set[str]) -> dict[str, Advocate]:
    """The advocates named, each known and covering the area, or Invalid naming every one that is not."""
    found = await find_advocates(session, agency, keys)
    refuse(unknown(keys, found) + not_covering(found.values(), area))
    return found


async def put_schedule(session: AsyncSession, agency: Agency, area: Area, spec: ScheduleIn) -> list[Shift]:
    """Replace the area's weekly schedule as a whole. Each shift names a known advocate; one it did not hold
    already, an advocate covering the area (one who since stopped covering it keeps the shifts they held until
    they are taken out: they are not on call in them, and taking them out must not be refused)."""
    held = {
        (advocate_id, role, start, length)
        for advocate_id, role, start, length in await session.execute(
            select(Shift.advocate_id, Shift.role, Shift.start_minute, Shift.minutes).where(Shift.area_id == area.id)
        )
    }
    keys = {s.advocate for s in spec.shifts}
    advocates = await find_advocates(session, agency, keys)
    refuse(unknown(keys, advocates))
    added = [s for s in spec.shifts if (advocates[s.advocate].id, s.role, s.start_minute, s.minutes) not in held]
    refuse(not_covering({advocates[s.advocate] for s in added}, area))
    await session.execute(delete(Shift).where(Shift.area_id == area.id))
    shifts = [
        Shift(
            area_id=area.id,
            advocate_id=advocates[s.advocate].id,
            role=s.role,
            start_minute=s.start_minute,
            minutes=s.minutes,
        )
        for s in spec.shifts
    ]
    session.add_all(shifts)
    await session.flush()
    return shifts


async def find_area(session: AsyncSession, agency: Agency, code: str) -> Area | None:
    return await session.scalar(select(Area).where(Area.agency_id == agency.id, Area.code == code))


async def get_area(session: AsyncSession, agency: Agency, code: str) -> Area:
    area = await find_area(session, agency, code)
    if area is None:
        raise NotFound(f"No area {code!r} in agency {agency.slug!r}.")
    return area


async def get_advocate(session: AsyncSession, agency: Agency, key: str) -> Advocate:
    advocate = await session.scalar(select(Advocate).where(Advocate.agency_id == agency.id, Advocate.key == key))
    if advocate is None:
        raise NotFound(f"No advocate {key!r} in agency {agency.slug!r}.")
    return advocate
