"""Intake's HTTP surface: the signed CAD webhook, and incident timelines for supervisors."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError
from sqlalchemy import select

from services.intake import eido
from services.intake.schemas import CadEvent, EventReceipt, TimelineEntryOut, TimelineOut
from services.intake.service import receive_event
from shared import webhooks
from shared.auth import PrincipalDep
from shared.db import Database, SessionDep
from shared.problems import NotFound, Unauthorized, UnsupportedMediaType, invalid_payload
from shared.requests import read_bounded_body
from shared.tables import Agency, Incident, TimelineEntry

MAX_BODY_BYTES = 256 * 1024

router = APIRouter(tags=["intake"])


class AgencyCache:
    """Agencies as intake needs them (secret, code map), read from the database at most every few seconds:
    a busy dispatch centre posts many events a second. A signature that fails against a kept secret is checked
    again against the database before it is refused: the secret may have just been rotated."""

    def __init__(self, fresh_for: float = 5.0) -> None:
        self.fresh_for = fresh_for
        self._kept: dict[str, tuple[float, Agency | None]] = {}

    async def verified(self, database: Database, slug: str, body: bytes, headers: Mapping[str, str]) -> Agency:
        """The agency that signed this request, or Unauthorized (the same for an unknown agency)."""
        known, kept = await self._get(database, slug)
        try:
            webhooks.verify(known.webhook_secret if known else None, body, headers)
        except Unauthorized:
            if not kept:
                raise
            known, _ = await self._get(database, slug, fresh=True)
            webhooks.verify(known.webhook_secret if known else None, body, headers)
        assert known is not None  # verify() refuses unknown agencies
        return known

    async def _get(self, database: Database, slug: str, *, fresh: bool = False) -> tuple[Agency | None, bool]:
        """The agency (None if unknown), and whether it came from what was kept."""
        kept = self._kept.get(slug)
        if kept is not None and not fresh and time.monotonic() - kept[0] < self.fresh_for:
            return kept[1], True
        async with database.sessionmaker() as session:
            agency = await session.scalar(select(Agency).where(Agency.slug == slug))
            if agency is not None:
                session.expunge(agency)  # kept beyond this session, read only
        if len(self._kept) > 10_000:  # slugs of unknown agencies must not grow it without bound
            self._kept.clear()
        self._kept[slug] = (time.monotonic(), agency)
        return agency, False


WebhookId = Annotated[str | None, Header(max_length=128, description="Standard Webhooks message id; idempotency key")]


async def accept(
    request: Request, agency: str, webhook_id: str | None, read: Callable[[bytes, Agency], CadEvent]
) -> Response:
    """A signed CAD request, whatever its format: verified, read into an event, applied — committed before the
    answer leaves, so a 202 means the event is durable."""
    body = await read_bounded_body(request, MAX_BODY_BYTES)
    database: Database = request.app.state.db
    agencies: AgencyCache = request.app.state.agencies
    known = await agencies.verified(database, agency, body, request.headers)
    assert webhook_id is not None  # verify() refuses requests without one
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise UnsupportedMediaType("Events are JSON: send Content-Type: application/json.")
    try:
        event = read(body, known)
    except ValidationError as exc:
        raise invalid_payload(exc.errors()) from None
    pool: asyncpg.Pool = request.app.state.intake_pool
    async with pool.acquire() as conn, conn.transaction():
        receipt = await receive_event(
            conn,
            agency=known,
            webhook_id=webhook_id,
            body_sha256=hashlib.sha256(body).hexdigest(),
            event=event,
            now=request.app.state.clock.now(),
        )
    return Response(receipt.model_dump_json(), status_code=202, media_type="application/json")


@router.post(
    "/v1/cad/{agency}/events",
    status_code=202,
    response_model=EventReceipt,
    summary="Receive a CAD event (schema v1), signed with Standard Webhooks",
    responses={401: {}, 409: {}, 413: {}, 415: {}, 422: {}},
)
async def post_event(agency: str, request: Request, webhook_id: WebhookId = None) -> Response:
    return await accept(request, agency, webhook_id, lambda body, _: CadEvent.model_validate_json(body))


@router.post(
    "/v1/cad/{agency}/eido",
    status_code=202,
    response_model=EventReceipt,
    summary="Receive a NENA EIDO document (NENA-STA-021), signed with Standard Webhooks",
    description="Read onto the same event as schema v1: incident type (the agency's internal code when its code "
    "map knows it, else the common registry's), status, priority, beat, the incident's location (PIDF-LO civic "
    "address), persons' roles and languages, cautions and unit statuses. Nothing else in the document is read "
    "or kept. Documents for one incident (its internalIncidentId, else its $id) update it.",
    responses={401: {}, 409: {}, 413: {}, 415: {}, 422: {}},
)
async def post_eido(agency: str, request: Request, webhook_id: WebhookId = None) -> Response:
    return await accept(
        request,
        agency,
        webhook_id,
        lambda body, known: eido.event_from(eido.Document.model_validate_json(body), known.code_map),
    )


@router.get(
    "/v1/incidents/{ref}/timeline",
    response_model=TimelineOut,
    summary="Every stage of an incident's handoff, in order (admin, or a supervisor of its agency)",
    responses={401: {}, 403: {}, 404: {}},
)
async def get_timeline(ref: str, session: SessionDep, principal: PrincipalDep) -> TimelineOut:
    row = (
        await session.execute(
            select(Incident, Agency.slug).join(Agency, Agency.id == Incident.agency_id).where(Incident.ref == ref)
        )
    ).first()
    # A supervisor of another agency learns no more than from a reference that does not exist.
    if row is None or not principal.may_see_agency(row.Incident.agency_id):
        raise NotFound("No such incident.")
    incident, slug = row
    entries = await session.scalars(
        select(TimelineEntry).where(TimelineEntry.incident_id == incident.id).order_by(TimelineEntry.id)
    )
    return TimelineOut(
        incident_ref=incident.ref,
        agency=slug,
        status=incident.status,
        tier=incident.tier,
        entries=[
            TimelineEntryOut(stage=e.stage, observed_at=e.observed_at, source_at=e.source_at, data=e.data)
            for e in entries
        ],
    )
