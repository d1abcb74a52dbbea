"""A whole program in one declarative file: agencies, code maps, hotlines, areas, advocates, weekly schedules,
rotations, overrides and escalation policies. Importing makes the directory say what the file says, for the
agencies it names: the same file twice changes nothing; a bad file is refused whole, every problem listed,
nothing half-applied. Secrets (webhook secrets) never live in the file: a new agency's is printed once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.directory import service
from services.directory.models import Advocate, Area, EscalationPolicy, Override, Rotation, Shift
from services.directory.policies import put_policy
from services.directory.schedules import put_rotation
from services.directory.schemas import (
    DAYS,
    AdvocateIn,
    AgencyIn,
    AreaIn,
    CodeMap,
    In,
    Key,
    Name,
    OverrideIn,
    PolicyIn,
    RotationIn,
    ScheduleIn,
    ShiftIn,
    Tier,
    Timezone,
)
from shared.egress import Egress
from shared.phones import E164
from shared.tables import Agency
from shared.text import AreaCode


class RotationSpec(RotationIn):
    name: Key


class AreaSpec(In):
    code: AreaCode
    name: Name
    schedule: list[ShiftIn] = Field(default_factory=list, max_length=2000)
    rotations: list[RotationSpec] = Field(default_factory=list, max_length=100)
    policies: dict[Tier, PolicyIn] = Field(default_factory=dict, description="This area's own, over the agency's.")


class AdvocateSpec(AdvocateIn):
    key: Key


class AgencySpec(In):
    slug: Key
    name: Name
    hotline: E164
    timezone: Timezone = "UTC"
    code_map: CodeMap | None = None
    notify_url: AnyHttpUrl | None = None
    feed_silence_minutes: int | None = Field(default=None, ge=5, le=7 * 24 * 60)
    it_contact: E164 | None = None
    areas: list[AreaSpec] = Field(default_factory=list, max_length=500)
    advocates: list[AdvocateSpec] = Field(default_factory=list, max_length=5000)
    policies: dict[Tier, PolicyIn] = Field(default_factory=dict, description="Tiers not named keep the defaults.")
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=5000)


class Program(In):
    agencies: list[AgencySpec] = Field(max_length=100)


class ProgramInvalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def read(document: Any) -> Program:
    """The file's content as a program, or ProgramInvalid listing every problem in it."""
    try:
        program = Program.model_validate(document)
    except ValidationError as exc:
        raise ProgramInvalid(
            [f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()]
        ) from None
    if problems := cross_check(program):
        raise ProgramInvalid(problems)
    return program


def duplicates(values: list[str]) -> list[str]:
    return sorted({v for v in values if values.count(v) > 1})


def person(covering: dict[str, set[str]], where: str, key: str | None, area: str) -> list[str]:
    """A reference to an advocate, who must exist and cover the area."""
    if key is None:
        return []
    if key not in covering:
        return [f"{where}: unknown advocate {key!r}"]
    return [] if area in covering[key] else [f"{where}: {key!r} does not cover area {area}"]


def cross_check(program: Program) -> list[str]:
    """What a schema cannot see: names that must be unique, and references that must resolve."""
    problems = [f"agency {slug!r} appears twice" for slug in duplicates([a.slug for a in program.agencies])]
    for agency in program.agencies:
        at = f"agency {agency.slug}"
        areas = {a.code for a in agency.areas}
        covering = {adv.key: set(adv.areas) for adv in agency.advocates}
        problems += [f"{at}: area {c!r} appears twice" for c in duplicates([a.code for a in agency.areas])]
        problems += [f"{at}: advocate {k!r} appears twice" for k in duplicates([a.key for a in agency.advocates])]
        for advocate in agency.advocates:
            problems += [f"{at}: advocate {advocate.key}: unknown area {c!r}" for c in advocate.areas if c not in areas]

        for area in agency.areas:
            here = f"{at}, area {area.code}"
            for shift in area.schedule:
                problems += person(covering, f"{here}, schedule", shift.advocate, area.code)
            problems += [f"{here}: rotation {n!r} appears twice" for n in duplicates([r.name for r in area.rotations])]
            for rotation in area.rotations:
                for key in rotation.participants:
                    problems += person(covering, f"{here}, rotation {rotation.name}", key, area.code)
        for n, override in enumerate(agency.overrides, 1):
            where = f"{at}, override {n}"
            if override.area not in areas:
                problems.append(f"{where}: unknown area {override.area!r}")
                continue
            problems += person(covering, where, override.advocate, override.area)
            problems += person(covering, where, override.replaces, override.area)
    return problems


async def apply(session: AsyncSession, program: Program, *, now: datetime, egress: Egress) -> dict[str, str]:
    """Make the directory say what the program says. Returns the webhook secrets of agencies it created. A notify
    URL refused (shared/egress.py) refuses the whole program: the caller's transaction changes nothing."""
    secrets = {}
    for spec in program.agencies:
        existed = await session.scalar(select(Agency.id).where(Agency.slug == spec.slug))
        agency, secret = await service.put_agency(
            session,
            spec.slug,
            AgencyIn(
                name=spec.name,
                hotline=spec.hotline,
                timezone=spec.timezone,
                code_map=spec.code_map,
                notify_url=spec.notify_url,
                feed_silence_minutes=spec.feed_silence_minutes,
                it_contact=spec.it_contact,
            ),
            now=now,
            egress=egress,
        )
        if existed is None and secret:
            secrets[spec.slug] = secret
        await apply_agency(session, agency, spec, now=now)
    return secrets


async def apply_agency(session: AsyncSession, agency: Agency, spec: AgencySpec, *, now: datetime) -> None:
    areas = {a.code: await service.put_area(session, agency, a.code, AreaIn(name=a.name)) for a in spec.areas}
    await session.execute(delete(Area).where(Area.agency_id == agency.id, Area.code.not_in(areas)))
    for advocate in spec.advocates:
        await service.put_advocate(
            session, agency, advocate.key, AdvocateIn(**advocate.model_dump(exclude={"key"})), now=now
        )
    # Advocates left out are kept, inactive: their past alerts and timelines still name them.
    for gone in await session.scalars(
        select(Advocate).where(
            Advocate.agency_id == agency.id, Advocate.key.not_in([a.key for a in spec.advocates]), Advocate.active
        )
    ):
        gone.active = False
    keys = await advocate_keys(session, agency)
    for area_spec in spec.areas:
        area = areas[area_spec.code]
        stored = await session.scalars(select(Shift).where(Shift.area_id == area.id))
        if weekly(stored, keys) != area_spec.schedule:  # rewritten only when it differs
            await service.put_schedule(session, agency, area, ScheduleIn(shifts=area_spec.schedule))
        for rotation in area_spec.rotations:
            await put_rotation(
                session, agency, area, rotation.name, RotationIn(**rotation.model_dump(exclude={"name"}))
            )
        await session.execute(
            delete(Rotation).where(
                Rotation.area_id == area.id, Rotation.name.not_in([r.name for r in area_spec.rotations])
            )
        )
        await keep_policies(session, agency, area, area_spec.policies)
    await keep_policies(session, agency, None, spec.policies)
    await keep_overrides(session, agency, areas, spec.overrides, now=now)


async def keep_policies(
    session: AsyncSession, agency: Agency, area: Area | None, policies: Mapping[Tier, PolicyIn]
) -> None:
    for tier, policy in policies.items():
        await put_policy(session, agency, area, tier, policy)
    await session.execute(
        delete(EscalationPolicy).where(
            EscalationPolicy.agency_id == agency.id,
            EscalationPolicy.area_id.is_(None) if area is None else EscalationPolicy.area_id == area.id,
            EscalationPolicy.tier.not_in(list(policies)),
        )
    )


def override_identity(o: OverrideIn) -> tuple[Any, ...]:
    return (o.area, o.role, o.advocate, o.replaces, o.starts_at, o.ends_at, o.note)


async def keep_overrides(
    session: AsyncSession, agency: Agency, areas: dict[str, Area], wanted: list[OverrideIn], *, now: datetime
) -> None:
    """Add the overrides the file names that are not there yet; remove those not yet over that it no longer
    names. Overrides already over are history, kept whatever the file says."""
    keys = await advocate_keys(session, agency)
    ids = {v: k for k, v in keys.items()}
    codes = {a.id: code for code, a in areas.items()}
    existing = list(await session.scalars(select(Override).where(Override.area_id.in_(codes))))
    have = {override_identity(override_in(o, codes, keys)): o for o in existing}
    want = {override_identity(o): o for o in wanted}
    for identity, row in have.items():
        if identity not in want and row.ends_at > now:
            await session.delete(row)
    for identity, o in want.items():
        if identity not in have:
            session.add(
                Override(
                    area_id=areas[o.area].id,
                    role=o.role,
                    advocate_id=ids[o.advocate],
                    replaces_id=ids[o.replaces] if o.replaces else None,
                    starts_at=o.starts_at,
                    ends_at=o.ends_at,
                    note=o.note,
                    created_at=now,
                )
            )
    await session.flush()


def override_in(o: Override, codes: dict[int, str], keys: dict[int, str]) -> OverrideIn:
    return OverrideIn(
        area=codes[o.area_id],
        role=o.role,
        advocate=keys[o.advocate_id],
        replaces=keys[o.replaces_id] if o.replaces_id else None,
        starts_at=o.starts_at,
        ends_at=o.ends_at,
        note=o.note,
    )


def clock_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def weekly(shifts: Iterable[Shift], keys: dict[int, str]) -> list[ShiftIn]:
    """The stored weekly schedule as the file writes it."""
    out = []
    for s in sorted(shifts, key=lambda s: s.id):
        end = (s.start_minute + s.minutes) % 1440
        out.append(
            ShiftIn(
                advocate=keys[s.advocate_id],
                role=s.role,
                day=DAYS[s.start_minute // 1440],
                start=clock_time(s.start_minute % 1440),
                end="24:00" if end == 0 else clock_time(end),
            )
        )
    return out


async def advocate_keys(session: AsyncSession, agency: Agency) -> dict[int, str]:
    return {a.id: a.key for a in await session.scalars(select(Advocate).where(Advocate.agency_id == agency.id))}


def policies_of(policies: list[EscalationPolicy], area_id: int | None) -> dict[Tier, PolicyIn]:
    return {
        p.tier: PolicyIn.model_validate({"steps": p.steps, "repeat": p.repeat})  # type: ignore[misc]
        for p in sorted(policies, key=lambda p: p.tier)
        if p.area_id == area_id
    }


async def export(session: AsyncSession, *, now: datetime, slugs: list[str] | None = None) -> Program:
    """The directory as a program file says it (overrides not yet over)."""
    query = select(Agency).order_by(Agency.slug)
    if slugs:
        query = query.where(Agency.slug.in_(slugs))
    agencies = []
    for agency in await session.scalars(query):
        advocates = list(
            await session.scalars(
                select(Advocate)
                .where(Advocate.agency_id == agency.id, Advocate.active)
                .options(selectinload(Advocate.areas))
                .order_by(Advocate.key)
            )
        )
        keys = await advocate_keys(session, agency)
        areas = list(await session.scalars(select(Area).where(Area.agency_id == agency.id).order_by(Area.code)))
        policies = list(await session.scalars(select(EscalationPolicy).where(EscalationPolicy.agency_id == agency.id)))

        area_specs = []
        for area in areas:
            rotations = await session.scalars(
                select(Rotation).where(Rotation.area_id == area.id).order_by(Rotation.name)
            )
            area_specs.append(
                AreaSpec(
                    code=area.code,
                    name=area.name,
                    schedule=weekly(await session.scalars(select(Shift).where(Shift.area_id == area.id)), keys),
                    rotations=[
                        RotationSpec(
                            name=r.name,
                            role=r.role,
                            participants=[keys[p] for p in r.participants],
                            unit=r.unit,
                            length=r.length,
                            handoff=r.handoff,
                            timezone=None if r.timezone == agency.timezone else r.timezone,
                        )
                        for r in rotations
                    ],
                    policies=policies_of(policies, area.id),
                )
            )
        codes = {a.id: a.code for a in areas}
        overrides = await session.scalars(select(Override).where(Override.area_id.in_(codes), Override.ends_at > now))
        agencies.append(
            AgencySpec(
                slug=agency.slug,
                name=agency.name,
                hotline=agency.hotline,
                timezone=agency.timezone,
                code_map=agency.code_map,
                notify_url=AnyHttpUrl(agency.notify_url) if agency.notify_url else None,
                feed_silence_minutes=agency.feed_silence_minutes,
                it_contact=agency.it_contact,
                areas=area_specs,
                advocates=[
                    AdvocateSpec(
                        key=a.key,
                        name=a.name,
                        phone=a.phone,
                        languages=a.languages,
                        areas=sorted(x.code for x in a.areas),
                    )
                    for a in advocates
                ],
                policies=policies_of(policies, None),
                overrides=sorted(
                    (override_in(o, codes, keys) for o in overrides), key=lambda o: (o.starts_at, o.area, o.advocate)
                ),
            )
        )
    return Program(agencies=agencies)


def as_document(program: Program) -> dict[str, Any]:
    """The program as plain data for YAML: defaults left out, so that a file says only what it means."""
    document: dict[str, Any] = program.model_dump(mode="json", exclude_defaults=True)
    return document
