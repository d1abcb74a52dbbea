"""An incident as supervisors see it, wherever they look (the API, the dashboard)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.problems import NotFound
from shared.tables import Incident, TimelineEntry


async def visible_incident(session: AsyncSession, ref: str, principal: Principal) -> Incident:
    """The incident, if this principal may see it. A supervisor of another agency learns no more than from a
    reference that does not exist."""
    incident = await session.scalar(select(Incident).where(Incident.ref == ref))
    if incident is None or not principal.may_see_agency(incident.agency_id):
        raise NotFound("No such incident.")
    return incident


async def timeline(session: AsyncSession, incident: Incident) -> Sequence[TimelineEntry]:
    """Its stages, in the order they were recorded."""
    return list(
        await session.scalars(
            select(TimelineEntry).where(TimelineEntry.incident_id == incident.id).order_by(TimelineEntry.id)
        )
    )
