"""The alerts service's HTTP surface: Twilio's callbacks and inbound texts, and the advocate's secure link."""

from __future__ import annotations

import html
import uuid
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Form, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import delete, select
from twilio.request_validator import RequestValidator

from services.alerts import escalation, messages
from services.alerts.escalation import hash_link_token, person_of
from services.alerts.models import Notification, NotificationStatus, Unreachable
from services.alerts.replies import Reply, parse
from services.alerts.settings import AlertsSettings
from shared import audit
from shared.auth import PrincipalDep, Role
from shared.db import SessionDep
from shared.problems import Forbidden, NotFound
from shared.tables import OPEN, Callout, CalloutStatus, Incident, Stage, Tier

log = structlog.get_logger()
router = APIRouter(tags=["alerts"])
TWIML = "application/xml"

DELIVERED = {"delivered", "read"}
NOT_DELIVERED = {"undelivered", "failed", "canceled"}
CALL_FAILED = {"busy", "no-answer", "failed", "canceled"}
# Texts that can never arrive at this phone (TWILIO.md): it is marked unreachable by text.
UNREACHABLE_BY_CALLBACK = {21610: "recipient opted out (STOP)", 21211: "invalid number", 30006: "landline"}
OPT_IN = {"START", "UNSTOP"}  # Twilio's opt-in words (YES is an acceptance here)
REPLY_WINDOW = timedelta(hours=48)  # a text answers the callouts that reached that phone lately


async def verified_twilio_form(request: Request, signature: str | None) -> dict[str, str]:
    """The posted form, if X-Twilio-Signature proves Twilio sent it to our public URL; else 403."""
    settings: AlertsSettings = request.app.state.settings
    form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    url = settings.public_link(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    token = settings.twilio_signing_token
    if not (token and signature):
        raise Forbidden("Missing X-Twilio-Signature.")
    if not RequestValidator(token).validate(url, form, signature):
        raise Forbidden("X-Twilio-Signature does not match.")
    return form


TwilioSignature = Annotated[str | None, Header(alias="X-Twilio-Signature")]


async def called_back(request: Request, session: SessionDep, alert: uuid.UUID | None, sid: str) -> Notification | None:
    """The notification a status callback is about, locked, if it is still waiting on the provider's word.

    Each alert's callback URL names it (`?n=`): a callback for an alert whose create answer was lost tells us,
    exactly, that it went out — it is recorded as sent then. A callback for another send of the same alert (one
    sent again after a lost answer), an unknown one, a repeat or a late one (a "sent" after "delivered") changes
    nothing."""
    condition = Notification.id == alert if alert is not None else Notification.provider_id == sid
    notification = await escalation.lock_notification(session, condition)
    if notification is None or not sid:
        return None
    if notification.status == NotificationStatus.pending and notification.provider_id is None:
        if notification.started_at is None:  # never handed over by us: not its callback
            return None
        now = request.app.state.clock.now()
        escalation.sent(session, notification, sid, provider="twilio", now=now, found="by its status callback")
        log.info("send.reconciled", notification_id=str(notification.id), found=True, by="callback")
    if notification.provider_id != sid or notification.status != NotificationStatus.sent:
        return None
    return notification


AlertParam = Annotated[uuid.UUID | None, Query(alias="n", description="The alert the callback is for.")]


@router.post("/v1/twilio/sms-status", status_code=204, summary="Twilio message status callback")
async def sms_status(
    request: Request, session: SessionDep, n: AlertParam = None, signature: TwilioSignature = None
) -> Response:
    form = await verified_twilio_form(request, signature)
    status, now, settings = form.get("MessageStatus", ""), request.app.state.clock.now(), request.app.state.settings
    notification = await called_back(request, session, n, form.get("MessageSid", ""))
    if notification is None:
        return Response(status_code=204)
    if status in DELIVERED:
        escalation.delivered(session, notification, now=now)
    elif status in NOT_DELIVERED:
        code = int(form["ErrorCode"]) if form.get("ErrorCode", "").isdigit() else None
        if code in UNREACHABLE_BY_CALLBACK:
            await escalation.mark_unreachable(
                session, notification, code=code or 0, reason=UNREACHABLE_BY_CALLBACK[code or 0], now=now
            )
        await escalation.failed(session, notification, reason=f"text {status}", code=code, now=now, settings=settings)
    return Response(status_code=204)


@router.post("/v1/twilio/call-status", status_code=204, summary="Twilio call status callback")
async def call_status(
    request: Request, session: SessionDep, n: AlertParam = None, signature: TwilioSignature = None
) -> Response:
    form = await verified_twilio_form(request, signature)
    status, now, settings = form.get("CallStatus", ""), request.app.state.clock.now(), request.app.state.settings
    notification = await called_back(request, session, n, form.get("CallSid", ""))
    if notification is None:
        return Response(status_code=204)  # answered with a key already, or repeated, or unknown
    if status in CALL_FAILED:
        await escalation.failed(session, notification, reason=f"call {status}", code=None, now=now, settings=settings)
    elif status == "completed":
        # Completed without a key press: voicemail, or a person who did not answer. Neither accepts.
        voicemail = form.get("AnsweredBy", "").startswith("machine")
        reason = "call reached voicemail" if voicemail else "call answered without a key press"
        await escalation.failed(session, notification, reason=reason, code=None, now=now, settings=settings)
    return Response(status_code=204)


@router.post("/v1/twilio/voice/gather", summary="The key an advocate pressed on a voice alert")
async def voice_gather(
    request: Request, session: SessionDep, n: Annotated[uuid.UUID, Query()], signature: TwilioSignature = None
) -> Response:
    form = await verified_twilio_form(request, signature)
    digit, now = form.get("Digits", ""), request.app.state.clock.now()
    if digit not in ("1", "2"):
        return Response(messages.twiml_say("That key is not an answer. Goodbye."), media_type=TWIML)
    notification = await escalation.lock_notification(session, Notification.id == n)
    if notification is None or notification.channel != "voice":
        raise NotFound("No such call.")
    outcome = await escalation.pressed(session, notification, digit, now=now, settings=request.app.state.settings)
    return Response(messages.twiml_say(spoken(outcome)), media_type=TWIML)


def spoken(outcome: str) -> str:
    return {
        "accepted": "Accepted. Thank you. The details are in the link in your text message.",
        "declined": "Declined. Thank you.",
        "yours": "You have already accepted this callout.",
        "taken": "Someone else has already accepted this callout. Thank you.",
    }.get(outcome, "This callout is no longer open. Thank you.")


def reply_text(outcome: str, code: str, stage: Stage | None = None) -> str:
    if outcome == "recorded" and stage is not None:
        return f"Callout {code}: recorded {messages.PROGRESS_WORDS[stage]}."
    return {
        "accepted": f"Accepted callout {code}. Open the link in the first text for details. {messages.PROGRESS_HELP}",
        "declined": f"Declined callout {code}. Thank you.",
        "yours": f"You already accepted callout {code}.",
        "taken": f"Callout {code} was already accepted by someone else. Thank you.",
        "ended": f"Callout {code} is no longer open.",
        "not accepted": f"Accept callout {code} first: reply 1 {code}.",
    }.get(outcome, f"Callout {code} is no longer open.")


@router.post("/v1/twilio/sms", summary="An advocate's text: accept, decline or progress")
async def inbound_sms(request: Request, session: SessionDep, signature: TwilioSignature = None) -> Response:
    form = await verified_twilio_form(request, signature)
    now = request.app.state.clock.now()
    if form.get("Body", "").strip().upper() in OPT_IN:  # texts reach this phone again (Twilio lifts the block)
        await session.execute(
            delete(Unreachable).where(Unreachable.phone == form.get("From", ""), Unreachable.channel == "sms")
        )
        return Response(messages.twiml_message("Callout texts are back on for this phone."), media_type=TWIML)
    reply = parse(form.get("Body", ""))
    if reply is None:
        return Response(messages.twiml_message(messages.HELP), media_type=TWIML)
    candidates = await callouts_for_phone(session, form.get("From", ""), reply, now)
    if len(candidates) != 1:
        text = (
            f"You have {len(candidates)} open callouts: add the code, for example {reply_example(reply, candidates)}."
            if candidates
            else "No open callout of yours" + (f" has the code {reply.code}." if reply.code else ".")
        )
        return Response(messages.twiml_message(text), media_type=TWIML)
    [(callout, notification)] = candidates
    callout, outcome, stage = await act(session, callout, notification, reply.action, via="sms", request=request)
    log.info("sms.reply", callout_id=str(callout.id), action=reply.action, outcome=outcome)
    return Response(messages.twiml_message(reply_text(outcome, callout.code, stage)), media_type=TWIML)


async def act(
    session: SessionDep, callout: Callout, notification: Notification, action: str, *, via: str, request: Request
) -> tuple[Callout, str, Stage | None]:
    """An advocate's answer (accept, decline) or progress, by text or on the page."""
    now, settings, person = request.app.state.clock.now(), request.app.state.settings, person_of(notification)
    if action in ("accept", "decline"):
        callout, outcome = await escalation.answer(
            session, callout.id, person, accept=action == "accept", via=via, now=now, settings=settings
        )
        return callout, outcome, None
    stage = Stage(action)
    callout, outcome = await escalation.progress(session, callout.id, person, stage, now=now, settings=settings)
    return callout, outcome, stage


def reply_example(reply: Reply, candidates: list[tuple[Callout, Notification]]) -> str:
    word = {"accept": "1", "decline": "2"}.get(reply.action, "ONSCENE")
    return f"{word} {candidates[0][0].code}"


async def callouts_for_phone(
    session: SessionDep, phone: str, reply: Reply, now: Any
) -> list[tuple[Callout, Notification]]:
    """The callouts this reply can be about: alerted to this phone lately, open (to answer) or accepted by this
    person (to report progress), narrowed by the code when one is given."""
    rows = await session.execute(
        select(Callout, Notification)
        .join(Notification, Notification.callout_id == Callout.id)
        .where(Notification.to == phone, Notification.kind == "alert", Notification.created_at > now - REPLY_WINDOW)
        .order_by(Notification.created_at.desc())
    )
    found: dict[uuid.UUID, tuple[Callout, Notification]] = {}
    for callout, notification in rows:
        found.setdefault(callout.id, (callout, notification))
    pairs = [p for p in found.values() if reply.code is None or p[0].code == reply.code]
    if reply.action in ("accept", "decline"):
        open_ = [p for p in pairs if p[0].status in OPEN]
        return open_ if open_ or reply.code is None else pairs[:1]
    return [
        p
        for p in pairs
        if p[0].status == CalloutStatus.accepted
        and p[0].accepted_by
        and p[0].accepted_by["recipient"] == p[1].recipient
    ]


# -- the secure link ----------------------------------------------------------------------------------------------

ACTIONS = {
    "accept": "Accept",
    "decline": "Decline",
    Stage.en_route.value: "En route",
    Stage.on_scene.value: "On scene",
    Stage.survivor_contacted.value: "Survivor contacted",
    Stage.survivor_declined.value: "Survivor declined",
    Stage.closed.value: "Close",
}


async def link_target(session: SessionDep, token: str, now: Any) -> tuple[Notification, Callout]:
    notification = await session.scalar(select(Notification).where(Notification.link_hash == hash_link_token(token)))
    if notification is None or notification.link_expires_at is None or notification.link_expires_at <= now:
        raise NotFound("This link is unknown or has expired.")
    return notification, await session.get_one(Callout, notification.callout_id)


@router.get("/l/{token}", response_class=HTMLResponse, summary="The advocate's secure page for one callout")
async def open_link(
    request: Request, session: SessionDep, token: Annotated[str, Path(min_length=10, max_length=64)]
) -> HTMLResponse:
    now = request.app.state.clock.now()
    notification, callout = await link_target(session, token, now)
    log.info("link.viewed", notification_id=str(notification.id), callout_id=str(callout.id), role=notification.role)
    await audit_view(session, notification, callout, "view", now)
    return await render_link(session, notification, callout, note=None)


@router.post("/l/{token}", response_class=HTMLResponse, summary="Answer a callout from its secure page")
async def answer_link(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Path(min_length=10, max_length=64)],
    action: Annotated[str, Form(max_length=32)],
) -> HTMLResponse:
    now = request.app.state.clock.now()
    notification, callout = await link_target(session, token, now)
    if action not in ACTIONS:
        raise NotFound("No such action.")
    callout, outcome, stage = await act(session, callout, notification, action, via="link", request=request)
    log.info("link.answered", notification_id=str(notification.id), action=action, outcome=outcome)
    await audit_view(session, notification, callout, action, now)
    return await render_link(session, notification, callout, note=reply_text(outcome, callout.code, stage))


async def audit_view(session: SessionDep, notification: Notification, callout: Callout, did: str, now: Any) -> None:
    """The page shows personal data: every view and answer is in the audit trail."""
    who = f"advocate:{notification.advocate_id}" if notification.advocate_id else f"{notification.role}:link"
    await audit.record(session, actor=who, action="view", subject=f"link page, callout {callout.code}", at=now, did=did)


async def render_link(
    session: SessionDep, notification: Notification, callout: Callout, note: str | None
) -> HTMLResponse:
    incident = await session.get_one(Incident, callout.incident_id)
    mine = callout.accepted_by is not None and callout.accepted_by["recipient"] == notification.recipient
    details = incident.details if mine or callout.status in OPEN else {}
    if callout.status in OPEN:
        actions = ["accept", "decline"]
    elif mine and callout.status == CalloutStatus.accepted:
        actions = [a for a in ACTIONS if a not in ("accept", "decline")]
    else:
        actions = []
    page = LINK_PAGE.format(
        code=html.escape(callout.code),
        tier=messages.TIER_WORDS[Tier(callout.tier)],
        state=html.escape(state_words(callout, mine)),
        note=f'<p class="note">{html.escape(note)}</p>' if note else "",
        details=details_html(details, incident),
        buttons="".join(f'<button name="action" value="{a}">{ACTIONS[a]}</button>' for a in actions),
        expires=notification.link_expires_at.strftime("%Y-%m-%d %H:%M UTC") if notification.link_expires_at else "",
    )
    return HTMLResponse(
        page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    )


def state_words(callout: Callout, mine: bool) -> str:
    if callout.status == CalloutStatus.accepted:
        return "You accepted this callout." if mine else "Someone else accepted this callout."
    if callout.status in OPEN:
        return "Waiting for an advocate to accept."
    return "This callout is no longer open."


def details_html(details: dict[str, Any], incident: Incident) -> str:
    """What the advocate needs at the scene; shown only here, behind the link, never in a text."""
    if not details:
        return ""
    rows: list[tuple[str, str]] = [("Area", incident.area or "not given")]
    location = details.get("location") or {}
    address = ", ".join(
        str(location[k]) for k in ("address", "unit", "city", "state", "postal_code") if location.get(k)
    )
    if address:
        rows.append(("Address", address))
    victim: dict[str, Any] = next((p for p in details.get("persons", []) if p.get("role") == "victim"), {})
    if incident.language:
        rows.append(("Language", incident.language + (" (interpreter needed)" if incident.interpreter_needed else "")))
    if details.get("cautions"):
        rows.append(("Risk flags (from CAD)", ", ".join(details["cautions"])))
    premise = incident.premise or {}
    if premise.get("flags"):
        flags = (f"{f['kind'].replace('_', ' ')} ({f['source']})" for f in premise["flags"])
        rows.append(("Flags at this address", ", ".join(flags)))
    if premise.get("prior_dv_calls"):
        rows.append(("Earlier DV calls here", f"{premise['prior_dv_calls']} in the 12 months before this call"))
    contact = victim.get("safe_contact") or {}
    if victim.get("consents_to_contact") is True and contact:
        rows.append(
            ("Safe contact", " — ".join(str(contact[k]) for k in ("phone", "window", "notes") if contact.get(k)))
        )
    elif victim.get("consents_to_contact") is False:
        rows.append(("Safe contact", "The survivor declined contact. Do not call."))
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows) + "</dl>"


LINK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Callout {code}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:1rem auto;padding:0 1rem}}
.tier{{font-weight:700}} dt{{font-weight:600;margin-top:.5rem}} dd{{margin:0}}
button{{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1.1rem}} .note{{background:#eef;padding:.5rem}}
</style></head>
<body><h1>Callout {code}</h1>
<p class="tier">{tier} domestic-violence call</p>
<p>{state}</p>{note}
{details}
<form method="post">{buttons}</form>
<p><small>Never call the 911 callback number: it may be the abuser's phone. This link is yours alone and expires
{expires}. Every view is recorded.</small></p>
</body></html>"""


# -- for supervisors ------------------------------------------------------------------------------------------------


class UnreachableOut(BaseModel):
    advocate_id: int | None
    channel: str
    code: int | None
    reason: str
    at: Any


@router.get("/v1/alerts/unreachable", response_model=list[UnreachableOut], summary="Phones a channel cannot reach")
async def list_unreachable(session: SessionDep, principal: PrincipalDep) -> list[UnreachableOut]:
    query = select(Unreachable).order_by(Unreachable.at.desc())
    if principal.role is not Role.admin:
        query = query.where(Unreachable.agency_id == principal.agency_id)
    return [
        UnreachableOut(advocate_id=u.advocate_id, channel=u.channel, code=u.code, reason=u.reason, at=u.at)
        for u in await session.scalars(query)
    ]
