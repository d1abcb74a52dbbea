"""Intake's HTTP surface: the signed CAD webhook, and incident timelines for supervisors."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.intake import eido
from services.intake.models import Assessment
from services.intake.schemas import (
    AssessmentOut,
    AssessmentOverride,
    AssessmentOverrideIn,
    CadEvent,
    EventReceipt,
    TimelineEntryOut,
    TimelineOut,
)
from services.intake.service import receive_event
from shared import audit, webhooks
from shared.auth import PrincipalDep
from shared.db import Database, SessionDep, driver_connection, is_outage
from shared.incidents import timeline, visible_incident
from shared.problems import NotFound, Unauthorized, UnsupportedMediaType, invalid_payload
from shared.requests import RowId, documented_body, read_bounded_body
from shared.tables import Agency, CadHeartbeat, Stage, record_stage
from shared.text import find_unstorable

MAX_BODY_BYTES = 256 * 1024
HEARTBEAT_BYTES = 4096

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
        try:
            agency = await self._read(database, slug)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # A pooled connection the server closed an instant ago, before this process heard of it, fails its
            # first statement (and the pool's older ones are replaced): a read, so once more on a fresh one.
            agency = await self._read(database, slug)
        if len(self._kept) > 10_000:  # slugs of unknown agencies must not grow it without bound
            self._kept.clear()
        self._kept[slug] = (time.monotonic(), agency)
        return agency, False

    @staticmethod
    async def _read(database: Database, slug: str) -> Agency | None:
        async with database.sessionmaker() as session:
            agency = await session.scalar(select(Agency).where(Agency.slug == slug))
            if agency is not None:
                session.expunge(agency)  # kept beyond this session, read only
            return agency


# How text PostgreSQL cannot store comes in JSON: escaped (raw control characters and invalid UTF-8 are no JSON).
UNSTORABLE_ESCAPE = re.compile(rb"\\u0000|\\u[dD][89abcdefABCDEF]")


def refuse_unstorable(body: bytes) -> None:
    """A NUL or a lone surrogate anywhere in the document, read or not, is a 422 naming where it is, in the
    document's own terms ("location.address"). pydantic's JSON parser would stop at a lone surrogate short of any
    field; the standard library's reads it. Only a body that looks as if it holds one is parsed twice (an escaped
    surrogate pair, an emoji, is text like any other)."""
    if not UNSTORABLE_ESCAPE.search(body):
        return
    try:
        document = json.loads(body)
    except ValueError:
        return  # not JSON: the reader says so
    if found := find_unstorable(document):
        path, problem = found
        raise invalid_payload([{"loc": path, "msg": problem}])


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
    refuse_unstorable(body)
    try:
        event = read(body, known)
    except ValidationError as exc:
        raise invalid_payload(exc.errors()) from None
    pool: asyncpg.Pool = request.app.state.intake_pool
    now = request.app.state.clock.now()

    async def apply() -> EventReceipt:
        async with driver_connection(pool) as conn, conn.transaction():
            return await receive_event(
                conn,
                agency=known,
                webhook_id=webhook_id,
                body_sha256=hashlib.sha256(body).hexdigest(),
                event=event,
                now=now,
                data_key=request.app.state.settings.premise_secret,
            )

    try:
        receipt = await apply()
    except Exception as exc:
        if not is_outage(exc):
            raise
        # A pooled connection that died unseen (the server never said so) fails its first statement, and the
        # pool's others are now replaced: once more, on a fresh one. Safe even if the first attempt committed
        # unheard — a repeat of a webhook-id is answered as the first was. The database away fails it again: 503.
        receipt = await apply()
    return Response(receipt.model_dump_json(), status_code=202, media_type="application/json")


@router.post(
    "/v1/cad/{agency}/events",
    status_code=202,
    response_model=EventReceipt,
    summary="Receive a CAD event (schema v1), signed with Standard Webhooks",
    responses={401: {}, 409: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=documented_body(CadEvent),
)
async def post_event(agency: str, request: Request, webhook_id: WebhookId = None) -> Response:
    return await accept(request, agency, webhook_id, read_event)


def read_event(body: bytes, _: Agency) -> CadEvent:
    return CadEvent.model_validate_json(body)


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
    openapi_extra=documented_body(eido.Document),
)
async def post_eido(agency: str, request: Request, webhook_id: WebhookId = None) -> Response:
    return await accept(request, agency, webhook_id, read_eido)


def read_eido(body: bytes, agency: Agency) -> CadEvent:
    return eido.event_from(eido.Document.model_validate_json(body), agency.code_map)


@router.post(
    "/v1/cad/{agency}/heartbeat",
    status_code=204,
    summary="A CAD adapter's heartbeat, signed like events: it is up, whether or not calls come",
    description="Send one every minute or so, with any body (`{}`), signed with the agency's webhook secret. The "
    "feed watch calls a feed silent when neither events nor heartbeats come within the agency's window.",
    responses={401: {}, 413: {}},
)
async def post_heartbeat(agency: str, request: Request, session: SessionDep, webhook_id: WebhookId = None) -> None:
    body = await read_bounded_body(request, HEARTBEAT_BYTES)
    known = await request.app.state.agencies.verified(request.app.state.db, agency, body, request.headers)
    at = request.app.state.clock.now()
    statement = insert(CadHeartbeat).values(agency_id=known.id, at=at)
    await session.execute(statement.on_conflict_do_update(index_elements=["agency_id"], set_={"at": at}))


@router.get(
    "/v1/incidents/{ref}/timeline",
    response_model=TimelineOut,
    summary="Every stage of an incident's handoff, in order (admin, or a supervisor of its agency)",
    responses={401: {}, 403: {}, 404: {}},
)
async def get_timeline(ref: str, session: SessionDep, principal: PrincipalDep) -> TimelineOut:
    incident = await visible_incident(session, ref, principal)
    slug = await session.scalar(select(Agency.slug).where(Agency.id == incident.agency_id))
    entries = await timeline(session, incident)
    return TimelineOut(
        incident_ref=incident.ref,
        agency=slug or "",
        status=incident.status,
        tier=incident.tier,
        entries=[
            TimelineEntryOut(stage=e.stage, observed_at=e.observed_at, source_at=e.source_at, data=e.data)
            for e in entries
        ],
    )


def assessment_out(a: Assessment) -> AssessmentOut:
    override = None
    if a.override_screened_in is not None and a.overridden_at is not None:
        override = AssessmentOverride(
            screened_in=a.override_screened_in,
            by=a.override_by,
            name=a.override_name or "",
            reason=a.override_reason or "",
            at=a.overridden_at,
        )
    return AssessmentOut.model_validate(a, from_attributes=True).model_copy(update={"override": override})


@router.get(
    "/v1/incidents/{ref}/assessments",
    response_model=list[AssessmentOut],
    summary="An incident's danger screens as given, each with its rule, result and any override",
    responses={401: {}, 403: {}, 404: {}},
)
async def get_assessments(
    ref: str, session: SessionDep, principal: PrincipalDep, request: Request
) -> list[AssessmentOut]:
    incident = await visible_incident(session, ref, principal)
    await audit.record(
        session,
        actor=principal,
        action="view",
        subject=f"assessments of {incident.ref}",
        at=request.app.state.clock.now(),
    )
    rows = await session.scalars(
        select(Assessment).where(Assessment.incident_id == incident.id).order_by(Assessment.id)
    )
    return [assessment_out(a) for a in rows]


@router.post(
    "/v1/incidents/{ref}/assessments/{assessment_id}/override",
    response_model=AssessmentOut,
    summary="Record an officer's or advocate's judgement over a screen's computed result, with the reason",
    responses={401: {}, 403: {}, 404: {}, 422: {}},
)
async def override_assessment(
    ref: str,
    assessment_id: RowId,
    spec: AssessmentOverrideIn,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
) -> AssessmentOut:
    incident = await visible_incident(session, ref, principal)
    assessment = await session.scalar(
        select(Assessment).where(Assessment.id == assessment_id, Assessment.incident_id == incident.id)
    )
    if assessment is None:
        raise NotFound("No such assessment for this incident.")
    now = request.app.state.clock.now()
    assessment.override_screened_in, assessment.override_by = spec.screened_in, spec.by
    assessment.override_name, assessment.override_reason, assessment.overridden_at = spec.name, spec.reason, now
    await audit.record(
        session,
        actor=principal,
        action="change",
        subject=f"override of assessment {assessment.id} of {incident.ref}",
        at=now,
    )
    # The timeline says that a person decided, and what; the reason stays with the assessment.
    record_stage(
        session,
        incident.id,
        Stage.triaged,
        now,
        assessment_id=assessment.id,
        override_by=spec.by,
        screened_in=spec.screened_in,
        computed=assessment.screened_in,
    )
    await session.flush()
    return assessment_out(assessment)
