"""The alerts service's HTTP surface: Twilio's status callbacks and the advocate's secure link."""

from __future__ import annotations

import html
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from services.alerts.escalation import hash_link_token, move_on
from services.alerts.messages import TIER_WORDS
from services.alerts.models import Notification, NotificationStatus
from services.alerts.settings import AlertsSettings
from shared.db import SessionDep
from shared.problems import Forbidden, NotFound
from shared.tables import Callout, Stage, Tier, record_stage

log = structlog.get_logger()
router = APIRouter(tags=["alerts"])

# Twilio's terminal message states, and the order statuses may arrive in (a late "sent" changes nothing).
DELIVERED = {"delivered", "read"}
NOT_DELIVERED = {"undelivered", "failed", "canceled"}


async def verified_twilio_form(request: Request, signature: str | None) -> dict[str, str]:
    """The posted form, if X-Twilio-Signature proves Twilio sent it to our public URL; else 403."""
    settings: AlertsSettings = request.app.state.settings
    form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    url = settings.public_link(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    if not (settings.twilio_auth_token and signature):
        raise Forbidden("Missing X-Twilio-Signature.")
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        raise Forbidden("X-Twilio-Signature does not match.")
    return form


@router.post("/v1/twilio/sms-status", status_code=204, summary="Twilio message status callback")
async def sms_status(
    request: Request,
    session: SessionDep,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    form = await verified_twilio_form(request, x_twilio_signature)
    status, sid = form.get("MessageStatus", ""), form.get("MessageSid", "")
    notification = await session.scalar(select(Notification).where(Notification.provider_id == sid).with_for_update())
    if notification is None or notification.status in (NotificationStatus.delivered, NotificationStatus.failed):
        return Response(status_code=204)  # unknown, duplicate or out of order: nothing to change
    now = request.app.state.clock.now()
    common: dict[str, Any] = {"channel": "sms", "role": notification.role, "advocate_id": notification.advocate_id}
    if status in DELIVERED:
        notification.status, notification.updated_at = NotificationStatus.delivered, now
        record_stage(session, notification.incident_id, Stage.notification_delivered, now, **common)
    elif status in NOT_DELIVERED:
        code = form.get("ErrorCode") or None
        notification.status, notification.error, notification.updated_at = NotificationStatus.failed, status, now
        record_stage(
            session, notification.incident_id, Stage.notification_failed, now, **common, status=status, code=code
        )
        await move_on(
            session,
            notification,
            reason=f"sms to {notification.role} {status}",
            now=now,
            settings=request.app.state.settings,
        )
    log.info("sms.status", notification_id=str(notification.id), status=status)
    return Response(status_code=204)


@router.get("/l/{token}", response_class=HTMLResponse, summary="The advocate's secure link to a callout")
async def open_link(
    request: Request, session: SessionDep, token: Annotated[str, Path(min_length=10, max_length=64)]
) -> HTMLResponse:
    row = (
        await session.execute(
            select(Notification, Callout)
            .join(Callout, Callout.id == Notification.callout_id)
            .where(Notification.link_hash == hash_link_token(token))
        )
    ).first()
    now = request.app.state.clock.now()
    if row is None or row.Notification.link_expires_at <= now:
        raise NotFound("This link is unknown or has expired.")
    notification, callout = row
    log.info("link.viewed", notification_id=str(notification.id), callout_id=str(callout.id), role=notification.role)
    tier = TIER_WORDS[Tier(callout.tier)]
    return HTMLResponse(
        LINK_PAGE.format(
            code=html.escape(callout.code),
            tier=tier,
            area=html.escape(callout.area or "not given"),
            expires=notification.link_expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        ),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"},
    )


LINK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Callout {code}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:1rem auto;padding:0 1rem}}
.tier{{font-weight:700}}</style></head>
<body><h1>Callout {code}</h1>
<p class="tier">{tier} domestic-violence call</p>
<p>Area: {area}</p>
<p>Reply to the text with <b>1</b> to accept or <b>2</b> to decline.</p>
<p><small>This link is yours alone and expires {expires}. Every view is recorded.</small></p>
</body></html>"""
