"""Receiving a CAD event: idempotency, the incident, its triage, and the callout it queues — one transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Boolean, Table, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.intake.models import ReceivedEvent
from services.intake.schemas import CadEvent, EventReceipt, EventStatus
from services.intake.triage import Triage, triage
from shared.problems import Conflict
from shared.tables import (
    OPEN,
    Agency,
    Callout,
    CalloutStatus,
    Incident,
    Stage,
    Tier,
    TimelineEntry,
    new_code,
    stage_row,
    wake_alerts,
)

ENDED = {EventStatus.closed, EventStatus.cancelled}
EVENTS, INCIDENTS, CALLOUTS, TIMELINE = (
    cast(Table, model.__table__) for model in (ReceivedEvent, Incident, Callout, TimelineEntry)
)
# A callout still running (or accepted): a CAD close, cancel or reclassification ends it.
LIVE = (*OPEN, CalloutStatus.accepted)


async def claim_webhook_id(
    conn: AsyncConnection, *, agency: Agency, webhook_id: str, body_sha256: str, now: datetime
) -> dict[str, Any] | None:
    """Claim the webhook-id for this request, or return the answer of the earlier request that claimed it.

    A concurrent duplicate blocks on the unique index until the first commits, then sees its answer.
    """
    claimed = await conn.scalar(
        insert(EVENTS)
        .values(agency_id=agency.id, webhook_id=webhook_id, body_sha256=body_sha256, received_at=now)
        .on_conflict_do_nothing(index_elements=["agency_id", "webhook_id"])
        .returning(EVENTS.c.id)
    )
    if claimed is not None:
        return None
    earlier = (
        await conn.execute(
            select(EVENTS.c.body_sha256, EVENTS.c.response).where(
                EVENTS.c.agency_id == agency.id, EVENTS.c.webhook_id == webhook_id
            )
        )
    ).one()
    if earlier.body_sha256 != body_sha256:
        raise Conflict("This webhook-id was already used for a different body.", webhook_id=webhook_id)
    response: dict[str, Any] = earlier.response  # committed with its response, or not at all
    return response


def incident_fields(event: CadEvent, result: Triage, now: datetime) -> dict[str, Any]:
    """What the latest event says of the incident. Personal data is only what the details page will need."""
    victim = event.victim
    return {
        "status": event.status.value if event.status in ENDED else "open",
        "type_code": event.type_code,
        "apco_code": result.apco_code,
        "tier": result.tier,
        "area": event.area,
        "language": victim.language if victim else None,
        "interpreter_needed": bool(victim and victim.interpreter_needed),
        "details": event.model_dump(
            mode="json",
            include={"location", "persons", "screen", "cautions", "priority", "type_text"},
            exclude_none=True,
        ),
        "updated_at": now,
    }


async def upsert_incident(
    conn: AsyncConnection, agency: Agency, event: CadEvent, fields: dict[str, Any], now: datetime
) -> tuple[uuid.UUID, str, bool]:
    """Create the incident or bring it up to date — one statement, which also locks its row so that events for
    one incident apply one at a time. Returns its id, its reference, and whether it is new."""
    statement = (
        insert(INCIDENTS)
        .values(agency_id=agency.id, cad_incident_id=event.incident_id, created_at=now, **fields)
        .on_conflict_do_update(index_elements=["agency_id", "cad_incident_id"], set_=fields)
        # xmax is 0 on a row this very statement inserted
        .returning(INCIDENTS.c.id, INCIDENTS.c.ref, literal_column("xmax = 0", Boolean))
    )
    incident_id, ref, new = (await conn.execute(statement)).one()
    return incident_id, ref, bool(new)


async def receive_event(
    session: AsyncSession,
    *,
    agency: Agency,
    webhook_id: str,
    body_sha256: str,
    event: CadEvent,
    now: datetime,
) -> EventReceipt:
    """The hot path from a CAD to an advocate's phone: plain statements on the session's connection, few round
    trips, no ORM bookkeeping."""
    conn = await session.connection()
    earlier = await claim_webhook_id(conn, agency=agency, webhook_id=webhook_id, body_sha256=body_sha256, now=now)
    if earlier is not None:
        return EventReceipt.model_validate(earlier)

    result = triage(event, agency.code_map)
    fields = incident_fields(event, result, now)
    incident_id, ref, new = await upsert_incident(conn, agency, event, fields, now)
    stages = [
        stage_row(
            incident_id,
            Stage.cad_received,
            now,
            source_at=event.occurred_at,
            status=event.status.value,
            type_code=event.type_code,
            units=[u.model_dump(mode="json", exclude_none=True) for u in event.units],
        ),
        stage_row(
            incident_id,
            Stage.triaged,
            now,
            dv=result.dv,
            tier=result.tier.value,
            reasons=list(result.reasons),
            rule=result.screen.rule if result.screen else None,
            screened_in=result.screen.screened_in if result.screen else None,
        ),
    ]

    live = None
    if not new:  # a new incident has no callout yet: spare the query
        live = (
            await conn.execute(
                select(CALLOUTS.c.id, CALLOUTS.c.status, CALLOUTS.c.code, CALLOUTS.c.tier)
                .where(CALLOUTS.c.incident_id == incident_id, CALLOUTS.c.status.in_(LIVE))
                .with_for_update()
            )
        ).first()
    callout: dict[str, str] | None = {"code": live.code, "tier": live.tier} if live else None
    if event.status in ENDED:
        stages.append(
            stage_row(incident_id, Stage.closed, now, source_at=event.occurred_at, by="cad", status=event.status.value)
        )
        if live is not None:
            await end_callout(conn, live.id, live.status, f"CAD {event.status.value} the call", now)
        callout = None
    elif live is not None and result.tier is Tier.none:
        await end_callout(conn, live.id, live.status, "reclassified: no longer a DV call", now)
        callout = None
    elif live is None and result.tier is not Tier.none:
        callout = {"code": new_code(4), "tier": result.tier.value}
        await conn.execute(
            insert(CALLOUTS).values(
                incident_id=incident_id,
                agency_id=agency.id,
                code=callout["code"],
                tier=result.tier,
                area=event.area,
                language=fields["language"],
                due_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        await wake_alerts(conn)
    await conn.execute(insert(TIMELINE), stages)

    receipt = EventReceipt(
        incident_ref=ref,
        status=fields["status"],
        dv=result.dv,
        tier=result.tier.value,
        reasons=list(result.reasons),
        callout=callout,
        received_at=now,
    )
    await conn.execute(
        update(EVENTS)
        .where(EVENTS.c.agency_id == agency.id, EVENTS.c.webhook_id == webhook_id)
        .values(
            incident_id=incident_id,
            event_status=event.status.value,
            occurred_at=event.occurred_at,
            response=receipt.model_dump(mode="json"),
        )
    )
    return receipt


async def end_callout(conn: AsyncConnection, callout_id: uuid.UUID, status: str, reason: str, now: datetime) -> None:
    """Stop a callout. One nobody was alerted for simply ends; otherwise the alerts worker tells whoever was."""
    values: dict[str, Any] = {"end_reason": reason, "updated_at": now, "status": CalloutStatus.cancelled}
    if status != CalloutStatus.pending:
        values |= {"status": CalloutStatus.cancelling, "due_at": now}
        await wake_alerts(conn)
    await conn.execute(update(CALLOUTS).where(CALLOUTS.c.id == callout_id).values(**values))
