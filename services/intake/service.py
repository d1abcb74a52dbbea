"""Receiving a CAD event: idempotency, the incident, its triage, and the callout it queues — one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from services.intake.models import ReceivedEvent
from services.intake.schemas import CadEvent, EventReceipt, EventStatus
from services.intake.triage import Triage, triage
from shared.problems import Conflict
from shared.tables import OPEN, Agency, Callout, CalloutStatus, Incident, Stage, Tier, record_stage, wake_alerts

ENDED = {EventStatus.closed, EventStatus.cancelled}
# A callout still running (or accepted): a CAD close, cancel or reclassification ends it.
LIVE = (*OPEN, CalloutStatus.accepted)


async def claim_webhook_id(
    session: AsyncSession, *, agency: Agency, webhook_id: str, body_sha256: str, now: datetime
) -> ReceivedEvent | None:
    """Claim the webhook-id for this request, or return the earlier request that claimed it.

    A concurrent duplicate blocks on the unique index until the first commits, then sees its answer.
    """
    claimed = await session.scalar(
        insert(ReceivedEvent)
        .values(agency_id=agency.id, webhook_id=webhook_id, body_sha256=body_sha256, received_at=now)
        .on_conflict_do_nothing(index_elements=["agency_id", "webhook_id"])
        .returning(ReceivedEvent.id)
    )
    if claimed is not None:
        return None
    earlier = await session.scalar(
        select(ReceivedEvent).where(ReceivedEvent.agency_id == agency.id, ReceivedEvent.webhook_id == webhook_id)
    )
    assert earlier is not None and earlier.response is not None  # committed with its response, or not at all
    if earlier.body_sha256 != body_sha256:
        raise Conflict("This webhook-id was already used for a different body.", webhook_id=webhook_id)
    return earlier


async def lock_incident(session: AsyncSession, agency: Agency, event: CadEvent, now: datetime) -> tuple[Incident, bool]:
    """The incident this event belongs to, and whether it is new — in one statement, its row locked so that
    events for one incident apply one at a time."""
    upsert: ReturningInsert[Incident, bool] = (
        insert(Incident)
        .values(
            agency_id=agency.id,
            cad_incident_id=event.incident_id,
            status="open",
            type_code=event.type_code,
            tier=Tier.none,
            details={},
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(index_elements=["agency_id", "cad_incident_id"], set_={"updated_at": now})
        .returning(
            Incident, literal_column("xmax = 0", Boolean).label("inserted")
        )  # xmax 0: this statement inserted it
    )
    incident, inserted = (await session.execute(upsert, execution_options={"populate_existing": True})).one()
    return incident, bool(inserted)


def personal_details(event: CadEvent) -> dict[str, Any]:
    """What the advocate's details page will need; everything else of the event is not kept."""
    return event.model_dump(
        mode="json", include={"location", "persons", "screen", "cautions", "priority", "type_text"}, exclude_none=True
    )


def apply_event(incident: Incident, event: CadEvent, result: Triage, now: datetime) -> None:
    victim = event.victim
    incident.status = event.status.value if event.status in ENDED else "open"
    incident.type_code = event.type_code
    incident.apco_code = result.apco_code
    incident.tier = result.tier
    incident.area = event.area
    incident.language = victim.language if victim else None
    incident.interpreter_needed = bool(victim and victim.interpreter_needed)
    incident.details = personal_details(event)
    incident.updated_at = now


async def receive_event(
    session: AsyncSession,
    *,
    agency: Agency,
    webhook_id: str,
    body_sha256: str,
    event: CadEvent,
    now: datetime,
) -> EventReceipt:
    earlier = await claim_webhook_id(session, agency=agency, webhook_id=webhook_id, body_sha256=body_sha256, now=now)
    if earlier is not None:
        return EventReceipt.model_validate(earlier.response)

    incident, new = await lock_incident(session, agency, event, now)
    result = triage(event, agency.code_map)
    apply_event(incident, event, result, now)
    units = [u.model_dump(mode="json", exclude_none=True) for u in event.units]
    record_stage(
        session,
        incident.id,
        Stage.cad_received,
        now,
        source_at=event.occurred_at,
        status=event.status.value,
        type_code=event.type_code,
        units=units,
    )
    record_stage(
        session,
        incident.id,
        Stage.triaged,
        now,
        dv=result.dv,
        tier=result.tier.value,
        reasons=list(result.reasons),
        rule=result.screen.rule if result.screen else None,
        screened_in=result.screen.screened_in if result.screen else None,
    )

    callout = None
    if not new:  # a new incident has no callout yet: spare the query
        callout = await session.scalar(
            select(Callout).where(Callout.incident_id == incident.id, Callout.status.in_(LIVE)).with_for_update()
        )
    if event.status in ENDED:
        record_stage(
            session, incident.id, Stage.closed, now, source_at=event.occurred_at, by="cad", status=event.status.value
        )
        if callout is not None:
            await end_callout(session, callout, f"CAD {event.status.value} the call", now)
        callout = None
    elif callout is not None and result.tier is Tier.none:
        await end_callout(session, callout, "reclassified: no longer a DV call", now)
        callout = None
    elif callout is None and result.tier is not Tier.none:
        callout = Callout(
            incident_id=incident.id,
            agency_id=agency.id,
            tier=result.tier,
            area=event.area,
            language=incident.language,
            due_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(callout)
        await session.flush()  # assigns the callout's code for the receipt
        await wake_alerts(session)

    receipt = EventReceipt(
        incident_ref=incident.ref,
        status=incident.status,
        dv=result.dv,
        tier=result.tier.value,
        reasons=list(result.reasons),
        callout={"code": callout.code, "tier": callout.tier} if callout else None,
        received_at=now,
    )
    await session.execute(
        update(ReceivedEvent)
        .where(ReceivedEvent.agency_id == agency.id, ReceivedEvent.webhook_id == webhook_id)
        .values(
            incident_id=incident.id,
            event_status=event.status.value,
            occurred_at=event.occurred_at,
            response=receipt.model_dump(mode="json"),
        )
    )
    return receipt


async def end_callout(session: AsyncSession, callout: Callout, reason: str, now: datetime) -> None:
    """Stop a callout. One nobody was alerted for simply ends; otherwise the alerts worker tells whoever was."""
    callout.end_reason, callout.updated_at = reason, now
    if callout.status == CalloutStatus.pending:
        callout.status = CalloutStatus.cancelled
        return
    callout.status, callout.due_at = CalloutStatus.cancelling, now
    await wake_alerts(session)
