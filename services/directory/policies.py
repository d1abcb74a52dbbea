"""Escalation policies: whom to alert, how, and how long to wait before the next step — per tier.

The defaults are docs/product.md's table ("Tiers"); an agency may replace one for all its areas, and an area for itself.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import Area, EscalationPolicy
from services.directory.schemas import PolicyIn, PolicyOut, Step
from shared.problems import NotFound
from shared.tables import Agency

MINUTE = 60
DEFAULTS: dict[str, PolicyIn] = {
    # SMS + voice to the primary; the backup after 2 min; supervisor and hotline after 4 min; then all once more.
    "immediate": PolicyIn(
        steps=[
            Step(notify=["primary"], via=["sms", "voice"], wait_seconds=2 * MINUTE),
            Step(notify=["backup"], via=["sms", "voice"], wait_seconds=2 * MINUTE),
            Step(notify=["supervisor", "hotline"], via=["sms", "voice"], wait_seconds=5 * MINUTE),
        ],
        repeat=1,
    ),
    # SMS to the primary, a call after 3 min; the backup after 6 min; the supervisor after 12 min.
    "priority": PolicyIn(
        steps=[
            Step(notify=["primary"], via=["sms"], wait_seconds=3 * MINUTE),
            Step(notify=["primary"], via=["voice"], wait_seconds=3 * MINUTE),
            Step(notify=["backup"], via=["sms", "voice"], wait_seconds=6 * MINUTE),
            Step(notify=["supervisor"], via=["sms", "voice"], wait_seconds=10 * MINUTE),
        ],
        repeat=0,
    ),
    # A text to the advocate on call; the supervisor the next day if nobody took it (target: contact in 48 h).
    "follow_up": PolicyIn(
        steps=[
            Step(notify=["primary"], via=["sms"], wait_seconds=24 * 60 * MINUTE),
            Step(notify=["supervisor"], via=["sms"], wait_seconds=24 * 60 * MINUTE),
        ],
        repeat=0,
    ),
}


async def policy_for(session: AsyncSession, agency: Agency, area: Area | None, tier: str) -> PolicyOut:
    """The area's own policy for the tier, else the agency's, else the default."""
    rows = await session.scalars(
        select(EscalationPolicy).where(
            EscalationPolicy.agency_id == agency.id,
            EscalationPolicy.tier == tier,
            EscalationPolicy.area_id.is_(None) | (EscalationPolicy.area_id == (area.id if area else None)),
        )
    )
    by_scope = {row.area_id is not None: row for row in rows}
    if chosen := by_scope.get(True) or by_scope.get(False):
        source = "area" if chosen.area_id is not None else "agency"
        return PolicyOut(tier=tier, source=source, steps=[Step(**s) for s in chosen.steps], repeat=chosen.repeat)
    default = DEFAULTS[tier]
    return PolicyOut(tier=tier, source="default", steps=default.steps, repeat=default.repeat)


async def own_policy(session: AsyncSession, agency: Agency, area: Area | None, tier: str) -> EscalationPolicy | None:
    """The agency's own policy for the tier (area None), or the area's own: not one it falls back to."""
    return await session.scalar(
        select(EscalationPolicy).where(
            EscalationPolicy.agency_id == agency.id,
            EscalationPolicy.tier == tier,
            EscalationPolicy.area_id.is_(None) if area is None else EscalationPolicy.area_id == area.id,
        )
    )


async def put_policy(session: AsyncSession, agency: Agency, area: Area | None, tier: str, spec: PolicyIn) -> None:
    policy = await own_policy(session, agency, area, tier)
    if policy is None:
        policy = EscalationPolicy(agency_id=agency.id, area_id=area.id if area else None, tier=tier, steps=[], repeat=0)
        session.add(policy)
    policy.steps = [step.model_dump() for step in spec.steps]
    policy.repeat = spec.repeat
    await session.flush()


async def delete_policy(session: AsyncSession, agency: Agency, area: Area | None, tier: str) -> None:
    """Drop the agency's (or the area's) own policy for the tier: the one above it applies again (the agency's for
    an area, else the default)."""
    policy = await own_policy(session, agency, area, tier)
    if policy is None:
        where = f"area {area.code}" if area else f"agency {agency.slug!r}"
        raise NotFound(f"No {tier} policy of its own in {where}: it follows the one above it already.")
    await session.delete(policy)
    await session.flush()
