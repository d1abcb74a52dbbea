"""The texts of cover requests, which the directory decides (services/directory/cover.py) and marks due: an offer to
each advocate asked, with a link to their own cover page; what came of it, to the asker, the taker and the others
asked; and, to an advocate who texts COVER, a link to their own page. Texts name advocates by key only and say
nothing of any call; a link's token is kept only as its hash (the text's body is sealed)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import messages
from services.alerts.models import Notification
from services.alerts.settings import AlertsSettings
from shared import audit
from shared.auth import hash_token
from shared.localtime import span
from shared.tables import AdvocatePhone, Agency, CoverLink, CoverRequest, CoverStatus, Wake, wake_alerts

log = structlog.get_logger()
COVER_LINK_LIFE = timedelta(hours=72)  # past it, texting COVER gives a fresh one
COVER_TEXT_RETRY = timedelta(hours=1)  # how long a cover text is retried through provider faults


def new_cover_link(
    session: AsyncSession, advocate_id: int, *, sent_as: str, now: datetime, settings: AlertsSettings
) -> str:
    token = secrets.token_urlsafe(16)
    session.add(
        CoverLink(
            advocate_id=advocate_id,
            token_hash=hash_token(token),
            sent_as=sent_as,
            created_at=now,
            expires_at=now + COVER_LINK_LIFE,
        )
    )
    return settings.public_link(f"/c/{token}")


def queue_cover_text(session: AsyncSession, advocate_id: int, phone: str, body: str, *, now: datetime) -> None:
    session.add(
        Notification(
            kind="cover",
            recipient=f"advocate:{advocate_id}",
            role="advocate",
            advocate_id=advocate_id,
            channel="sms",
            to=phone,
            body=body,
            due_at=now,
            retry_until=now + COVER_TEXT_RETRY,
            created_at=now,
            updated_at=now,
        )
    )


async def send_cover_texts(session: AsyncSession, *, now: datetime, settings: AlertsSettings, limit: int) -> int:
    """Queue the texts of every cover request whose offers or outcome are due. Returns how many requests."""
    due = list(
        await session.scalars(
            select(CoverRequest)
            .where(or_(CoverRequest.offers_due_at <= now, CoverRequest.outcome_due_at <= now))
            .order_by(CoverRequest.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    agencies = select(Agency.id, Agency.timezone).where(Agency.id.in_({r.agency_id for r in due}))
    zones: dict[int, str] = dict((await session.execute(agencies)).all())
    for request in due:
        shift = messages.CoverShift(
            request.role, request.area, span(request.starts_at, request.ends_at, zones[request.agency_id])
        )
        if request.offers_due_at is not None and request.offers_due_at <= now:
            request.offers_due_at = None
            if request.status == CoverStatus.open:  # taken or withdrawn before the texts went: nothing to offer
                await offer(session, request, shift, now=now, settings=settings)
        if request.outcome_due_at is not None and request.outcome_due_at <= now:
            request.outcome_due_at = None
            await tell_outcome(session, request, shift, now=now)
    await wake_alerts(session, Wake.sends)
    return len(due)


async def offer(
    session: AsyncSession, request: CoverRequest, shift: messages.CoverShift, *, now: datetime, settings: AlertsSettings
) -> None:
    """Each advocate asked gets their own link: the page it opens is theirs, where the first to take it has it."""
    for person in request.offers:
        link = new_cover_link(session, person["advocate_id"], sent_as="offer", now=now, settings=settings)
        queue_cover_text(
            session, person["advocate_id"], person["phone"], messages.cover_offer_sms(shift, link), now=now
        )
    await audited(session, request.id, "offers texted", now, to=[person["key"] for person in request.offers])
    log.info("cover.offered", cover_request=request.id, advocates=len(request.offers))


async def tell_outcome(
    session: AsyncSession, request: CoverRequest, shift: messages.CoverShift, *, now: datetime
) -> None:
    """Taken: the asker is told who covers them, the taker thanked, the others told it is taken. Withdrawn: the
    others are told it is no longer needed."""
    taker = next((p for p in request.offers if p["advocate_id"] == request.filled_by), None)
    told = []
    if request.status == CoverStatus.filled and taker is not None:
        asker = await session.get(AdvocatePhone, request.advocate_id)
        if asker is not None:
            queue_cover_text(
                session, asker.advocate_id, asker.phone, messages.covered_sms(shift, taker["key"]), now=now
            )
            told.append("asker")
        queue_cover_text(session, taker["advocate_id"], taker["phone"], messages.cover_yours_sms(shift), now=now)
        told.append(taker["key"])
    others = [p for p in request.offers if p is not taker]
    for person in others:
        body = messages.cover_taken_sms(shift) if taker else messages.cover_withdrawn_sms(shift)
        queue_cover_text(session, person["advocate_id"], person["phone"], body, now=now)
        told.append(person["key"])
    await audited(session, request.id, f"{request.status} texted", now, to=told)
    log.info("cover.outcome_told", cover_request=request.id, status=request.status, texts=len(told))


async def cover_reply(session: AsyncSession, phone: str, *, now: datetime, settings: AlertsSettings) -> str:
    """The answer to COVER: a link to the sender's own cover page (one for each agency their phone is an advocate's
    in), or a word that this phone is nobody's."""
    advocates = list(
        await session.scalars(
            select(AdvocatePhone).where(AdvocatePhone.phone == phone).order_by(AdvocatePhone.advocate_id)
        )
    )
    if not advocates:
        return messages.NOT_AN_ADVOCATE
    links = [new_cover_link(session, a.advocate_id, sent_as="reply", now=now, settings=settings) for a in advocates]
    for advocate in advocates:
        await audit.record(
            session,
            actor=f"advocate:{advocate.advocate_id}",
            action="change",
            subject="cover page link",
            at=now,
            did="texted COVER",
        )
    log.info("cover.link_texted", advocates=len(advocates))
    return messages.cover_link_sms(links)


async def audited(session: AsyncSession, request_id: int, did: str, now: datetime, **detail: Any) -> None:
    """A step the alerts service took on a cover request, in the audit trail."""
    await audit.record(
        session, actor="alerts", action="change", subject=f"cover request {request_id}", at=now, did=did, **detail
    )
