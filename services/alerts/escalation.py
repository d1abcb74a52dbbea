"""Moving a callout along its chain: whom to alert next, and the text that alerts them."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.messages import alert_sms
from services.alerts.models import Notification
from services.alerts.settings import AlertsSettings
from shared.tables import Callout, CalloutStatus, Stage, Tier, record_stage, wake_alerts

log = structlog.get_logger()


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def queue_notification(
    session: AsyncSession, callout: Callout, position: int, *, now: datetime, settings: AlertsSettings
) -> Notification:
    """Queue the text for the chain's entry at `position`, due now, with a link bound to it alone."""
    recipient = callout.chain[position]
    token = secrets.token_urlsafe(16)
    body = alert_sms(
        code=callout.code,
        tier=Tier(callout.tier),
        area=callout.area,
        link=settings.public_link(f"/l/{token}"),
        role=recipient["role"],
    )
    notification = Notification(
        callout_id=callout.id,
        incident_id=callout.incident_id,
        position=position,
        role=recipient["role"],
        advocate_id=recipient["advocate_id"],
        channel="sms",
        to=recipient["phone"],
        body=body,
        link_hash=hash_link_token(token),
        link_expires_at=now + timedelta(hours=settings.link_ttl_hours),
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(notification)
    callout.position = position
    return notification


async def move_on(
    session: AsyncSession, failed: Notification, *, reason: str, now: datetime, settings: AlertsSettings
) -> None:
    """`failed` will not reach its recipient: alert the next in the chain at once, or, past the end, raise alarm."""
    callout = await session.get_one(Callout, failed.callout_id, with_for_update=True)
    if callout.position != failed.position or callout.status != CalloutStatus.alerting:
        return  # already moved on (a duplicate or late callback)
    position = failed.position + 1
    callout.updated_at = now
    if position >= len(callout.chain):
        callout.status = CalloutStatus.unheard
        log.critical("callout.unheard", callout_id=str(callout.id), reason=reason)
        return
    nxt = callout.chain[position]
    record_stage(
        session,
        callout.incident_id,
        Stage.escalated,
        now,
        to=nxt["role"],
        advocate_id=nxt["advocate_id"],
        reason=reason,
    )
    queue_notification(session, callout, position, now=now, settings=settings)
    await wake_alerts(session)
