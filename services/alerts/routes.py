"""The alerts service's HTTP surface: Twilio's callbacks and inbound texts, and the advocate's secure link."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from twilio.request_validator import RequestValidator

from services.alerts import cover, escalation, messages, page, phones
from services.alerts.callout import Answered, Progressed
from services.alerts.escalation import person_of
from services.alerts.models import Notification, NotificationStatus, ProviderEvent
from services.alerts.replies import Reply, parse
from services.alerts.settings import AlertsSettings
from shared import audit
from shared.auth import PrincipalDep, Role, hash_token
from shared.db import SessionDep
from shared.problems import Forbidden, Invalid, NotFound
from shared.requests import form_example
from shared.sessions import refuse_cross_site
from shared.tables import OPEN, AdvocatePhone, Agency, Callout, CalloutStatus, Incident, Stage, Unreachable

log = structlog.get_logger()
router = APIRouter(tags=["alerts"])
TWIML = "application/xml"

DELIVERED = {"delivered", "read"}
NOT_DELIVERED = {"undelivered", "failed", "canceled"}
CALL_FAILED = {"busy", "no-answer", "failed", "canceled"}
# Texts that can never arrive at this phone (docs/twilio.md, "Status callbacks"): marked unreachable by text.
UNREACHABLE_BY_CALLBACK = {21610: "recipient opted out (STOP)", 21211: "invalid number", 30006: "landline"}
OPT_IN = {"START", "UNSTOP"}  # Twilio's opt-in words (YES is an acceptance here)
# Twilio's opt-out words: after one, Twilio delivers nothing to the phone until START (it tells us the text too).
OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}


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


async def first_time(session: SessionDep, key: str, now: Any) -> Response | None:
    """Claim Twilio's request `key` for this transaction; for a repeat, the answer the first one got.

    A concurrent repeat waits on the claim's unique key until the first commits, then reads its answer."""
    claimed = await session.scalar(
        insert(ProviderEvent)
        .values(key=key, received_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(ProviderEvent.key)
    )
    if claimed is not None:
        return None
    earlier = await session.get_one(ProviderEvent, key)
    log.info("twilio.repeat", kind=key.split(":", 1)[0])
    content = earlier.response.encode() if earlier.response is not None else None
    return Response(content, status_code=earlier.status_code or 204, media_type=earlier.media_type)


async def answer_kept(session: SessionDep, key: str, response: Response) -> Response:
    """Keep the answer to Twilio's request `key`, for its repeats."""
    await session.execute(
        update(ProviderEvent)
        .where(ProviderEvent.key == key)
        .values(
            status_code=response.status_code,
            media_type=response.media_type,
            response=bytes(response.body).decode() or None,
        )
    )
    return response


def provider_key(kind: str, form: dict[str, str], *fields: str) -> str:
    """What identifies one request of Twilio's: its own ids for it (a MessageSid, a CallSid and its status)."""
    values = [form.get(name, "") for name in fields]
    if not values[0]:
        raise Invalid(f"{fields[0]} is missing.")
    return ":".join([kind, *values])[:120]


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
        await escalation.sent(session, notification, sid, provider="twilio", now=now, found="by its status callback")
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
    key = provider_key("status", form, "MessageSid", "MessageStatus")
    if (repeat := await first_time(session, key, now)) is not None:
        return repeat
    notification = await called_back(request, session, n, form.get("MessageSid", ""))
    if notification is None:
        return await answer_kept(session, key, Response(status_code=204))
    if status in DELIVERED:
        await escalation.delivered(session, notification, now=now)
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
    key = provider_key("status", form, "CallSid", "CallStatus")
    if (repeat := await first_time(session, key, now)) is not None:
        return repeat
    notification = await called_back(request, session, n, form.get("CallSid", ""))
    if notification is None:  # answered with a key already, or unknown
        return await answer_kept(session, key, Response(status_code=204))
    if notification.kind == "bridge":  # the <Dial> action tells what the bridge came to; only a ring unanswered here
        if status in CALL_FAILED:
            await escalation.bridged(
                session, notification, party="advocate", status=status, seconds=0, now=now, settings=settings
            )
        return await answer_kept(session, key, Response(status_code=204))
    if status in CALL_FAILED:
        await escalation.failed(session, notification, reason=f"call {status}", code=None, now=now, settings=settings)
    elif status == "completed":
        # Completed without a key press: voicemail, or a person who did not answer. Neither accepts.
        voicemail = form.get("AnsweredBy", "").startswith("machine")
        reason = "call reached voicemail" if voicemail else "call answered without a key press"
        await escalation.failed(session, notification, reason=reason, code=None, now=now, settings=settings)
    return await answer_kept(session, key, Response(status_code=204))


@router.post("/v1/twilio/voice/gather", summary="The key an advocate pressed on a voice alert")
async def voice_gather(
    request: Request, session: SessionDep, n: Annotated[uuid.UUID, Query()], signature: TwilioSignature = None
) -> Response:
    form = await verified_twilio_form(request, signature)
    digit, now = form.get("Digits", ""), request.app.state.clock.now()
    key = provider_key("gather", form, "CallSid")
    if (repeat := await first_time(session, key, now)) is not None:
        return repeat
    if digit not in ("1", "2") and not await is_test_call(session, n):
        return await answer_kept(
            session, key, Response(messages.twiml_say("That key is not an answer. Goodbye."), media_type=TWIML)
        )
    notification = await escalation.lock_notification(session, Notification.id == n)
    if notification is None or notification.channel != "voice":
        raise NotFound("No such call.")
    if notification.kind == "test":  # any key: a person heard it
        notification.status, notification.updated_at = NotificationStatus.answered, now
        await phones.tested(session, notification, "answered", now)
        return await answer_kept(session, key, Response(messages.twiml_say(messages.TESTED_CALL), media_type=TWIML))
    applied = await escalation.pressed(session, notification, digit, now=now, settings=request.app.state.settings)
    said = spoken(applied.outcome, link_sent=applied.link_sent)
    return await answer_kept(session, key, Response(messages.twiml_say(said), media_type=TWIML))


@router.post("/v1/twilio/bridge", summary="What a masked call came to (the <Dial> action)")
async def bridge_status(
    request: Request,
    session: SessionDep,
    n: Annotated[uuid.UUID, Query()],
    party: Annotated[str, Query(pattern="^(survivor|hotline)$")],
    signature: TwilioSignature = None,
) -> Response:
    form = await verified_twilio_form(request, signature)
    now = request.app.state.clock.now()
    key = provider_key("bridge", form, "CallSid")
    if (repeat := await first_time(session, key, now)) is not None:
        return repeat
    notification = await escalation.lock_notification(session, Notification.id == n)
    if notification is None or notification.kind != "bridge":
        raise NotFound("No such call.")
    duration = form.get("DialCallDuration", "0")
    await escalation.bridged(
        session,
        notification,
        party=party,
        status=form.get("DialCallStatus", ""),
        seconds=int(duration) if duration.isdigit() else 0,
        now=now,
        settings=request.app.state.settings,
    )
    return await answer_kept(session, key, Response(messages.twiml_say("Goodbye."), media_type=TWIML))


async def is_test_call(session: SessionDep, alert: uuid.UUID) -> bool:
    return await session.scalar(select(Notification.kind).where(Notification.id == alert)) == "test"


def spoken(outcome: str, *, link_sent: bool) -> str:
    """What the call says back: true to what happened, the link included (it is texted now if they had none)."""
    if outcome == "accepted" and link_sent:
        return "Accepted. Thank you. We are texting you a link to the details now."
    return {
        "accepted": "Accepted. Thank you. The details are behind the link in your text message.",
        "declined": "Declined. Thank you.",
        "yours": "You have already accepted this callout.",
        "taken": "Someone else has already accepted this callout. Thank you.",
    }.get(outcome, "This callout is no longer open. Thank you.")


def reply_text(outcome: str, code: str, stage: Stage | None = None, *, link_sent: bool = False) -> str:
    if outcome == "recorded" and stage is not None:
        return f"Callout {code}: recorded {messages.PROGRESS_WORDS[stage]}."
    if outcome == "accepted" and link_sent:
        return f"Accepted callout {code}. A text with the link to the details follows. {messages.PROGRESS_HELP}"
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
    key = provider_key("sms", form, "MessageSid")
    if (repeat := await first_time(session, key, now)) is not None:
        return repeat
    return await answer_kept(session, key, await apply_text(request, session, form, now))


async def apply_text(request: Request, session: SessionDep, form: dict[str, str], now: Any) -> Response:
    """What an advocate's text does, once: START lifts an opt-out; a six-digit code proves the phone; COVER answers
    with a link to their cover page; else an answer or progress."""
    settings = request.app.state.settings
    if proven := await phones.prove(session, form.get("From", ""), form.get("Body", ""), now=now, settings=settings):
        return Response(messages.twiml_message(proven), media_type=TWIML)
    word = form.get("Body", "").strip().upper()
    if word in OPT_OUT or form.get("OptOutType") == "STOP":
        await opted_out(session, form.get("From", ""), now)
        return Response(messages.twiml_silence(), media_type=TWIML)  # Twilio sends its own confirmation
    if word in OPT_IN:  # texts reach this phone again (Twilio lifts the block)
        await session.execute(
            delete(Unreachable).where(Unreachable.phone == form.get("From", ""), Unreachable.channel == "sms")
        )
        return Response(messages.twiml_message("Callout texts are back on for this phone."), media_type=TWIML)
    if word == "COVER":  # a link to the sender's own cover page (services/alerts/cover.py)
        answer = await cover.cover_reply(session, form.get("From", ""), now=now, settings=settings)
        return Response(messages.twiml_message(answer), media_type=TWIML)
    reply = parse(form.get("Body", ""))
    if reply is None:
        return Response(messages.twiml_message(messages.HELP), media_type=TWIML)
    ttl = timedelta(hours=request.app.state.settings.link_ttl_hours)
    candidates = await callouts_for_phone(session, form.get("From", ""), reply, since=now - ttl)
    if len(candidates) != 1:
        text = (
            f"You have {len(candidates)} open callouts: add the code, for example {reply_example(reply, candidates)}."
            if candidates
            else "No open callout of yours" + (f" has the code {reply.code}." if reply.code else ".")
        )
        return Response(messages.twiml_message(text), media_type=TWIML)
    [(callout, notification)] = candidates
    callout, acted = await act(session, callout, notification, reply.action, via="sms", request=request)
    log.info("sms.reply", callout_id=str(callout.id), action=reply.action, outcome=acted.outcome)
    return Response(messages.twiml_message(acted.reply(callout.code)), media_type=TWIML)


async def opted_out(session: SessionDep, phone: str, now: Any) -> None:
    """An advocate texted STOP: texts no longer reach them (calls still do), and their supervisors are told at once
    (the watch, woken now). A phone that is nobody's in the directory changes nothing."""
    advocates = list(await session.scalars(select(AdvocatePhone).where(AdvocatePhone.phone == phone)))
    if not advocates:
        return
    await escalation.unreachable(
        session,
        agency_id=advocates[0].agency_id,
        advocate_id=advocates[0].advocate_id,
        phone=phone,
        channel="sms",
        code=messages.OPTED_OUT,
        reason="texted STOP",
        now=now,
    )


@dataclass(frozen=True)
class Acted:
    outcome: str
    stage: Stage | None = None
    link_sent: bool = False

    def reply(self, code: str) -> str:
        return reply_text(self.outcome, code, self.stage, link_sent=self.link_sent)


async def act(
    session: SessionDep, callout: Callout, notification: Notification, action: str, *, via: str, request: Request
) -> tuple[Callout, Acted]:
    """An advocate's answer (accept, decline) or progress, by text or on the page."""
    now, settings, person = request.app.state.clock.now(), request.app.state.settings, person_of(notification)
    answering = action in ("accept", "decline")
    stage = None if answering else Stage(action)
    event = Answered(person, action == "accept", via) if stage is None else Progressed(person, stage, via)
    callout, applied = await escalation.respond(session, callout.id, event, now=now, settings=settings)
    return callout, Acted(applied.outcome, stage, link_sent=applied.link_sent)


def reply_example(reply: Reply, candidates: list[tuple[Callout, Notification]]) -> str:
    word = {"accept": "1", "decline": "2"}.get(reply.action, "ONSCENE")
    return f"{word} {candidates[0][0].code}"


async def callouts_for_phone(
    session: SessionDep, phone: str, reply: Reply, *, since: Any
) -> list[tuple[Callout, Notification]]:
    """The callouts this reply can be about: alerted to this phone within an alert's life (its link's TTL) by an
    alert that went out, open (to answer) or accepted by this person (to report progress), narrowed by the code
    when one is given."""
    rows = await session.execute(
        select(Callout, Notification)
        .join(Notification, Notification.callout_id == Callout.id)
        .where(
            Notification.to == phone,
            Notification.kind == "alert",
            Notification.created_at > since,
            Notification.status.in_(("sent", "delivered", "answered")),
        )
        .order_by(Notification.created_at.desc())
    )
    found: dict[uuid.UUID, tuple[Callout, Notification]] = {}
    for callout, notification in rows:
        found.setdefault(callout.id, (callout, notification))
    pairs = [p for p in found.values() if reply.code is None or p[0].code == reply.code]
    if reply.action in ("accept", "decline"):
        open_ = [p for p in pairs if p[0].status in OPEN]
        return open_ if open_ or reply.code is None else pairs[:1]
    return [p for p in pairs if p[0].status == CalloutStatus.accepted and p[0].accepted_by_recipient(p[1].recipient)]


# -- the secure link ----------------------------------------------------------------------------------------------


async def link_target(session: SessionDep, token: str, now: Any) -> tuple[Notification, Callout]:
    notification = await session.scalar(select(Notification).where(Notification.link_hash == hash_token(token)))
    if notification is None or notification.link_expires_at is None or notification.link_expires_at <= now:
        raise NotFound("This link is unknown or has expired.")
    return notification, await session.get_one(Callout, notification.callout_id)


@router.get("/l/{token}", response_class=HTMLResponse, summary="The advocate's secure page for one callout")
async def open_link(
    request: Request, session: SessionDep, token: Annotated[str, Path(min_length=10, max_length=64)]
) -> HTMLResponse:
    """Changes nothing but the audit trail: a link-preview bot's fetch, like anyone's, sees only what the page
    shows to whoever holds the link before they act."""
    now = request.app.state.clock.now()
    notification, callout = await link_target(session, token, now)
    log.info("link.viewed", notification_id=str(notification.id), callout_id=str(callout.id), role=notification.role)
    rendered = await render_link(request, session, notification, callout, note=None)
    await audit_view(request, session, notification, callout, "opened", now, personal=bool(rendered.details))
    return page_response(rendered)


@router.post(
    "/l/{token}",
    response_class=HTMLResponse,
    summary="Answer a callout from its secure page",
    dependencies=[Depends(refuse_cross_site)],
    openapi_extra=form_example({"action": "accept"}),
)
async def answer_link(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Path(min_length=10, max_length=64)],
    action: Annotated[str, Form(max_length=32)],
    pin: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    now = request.app.state.clock.now()
    notification, callout = await link_target(session, token, now)
    if action not in page.ACTIONS:
        raise NotFound("No such action.")
    if action == "pin":
        return await give_pin(request, session, notification, callout, pin, now)
    if action in page.CALLS:
        return await call_from_page(request, session, notification, callout, action.removeprefix("call_"), now)
    if action in page.PROGRESS and await guard_of(request, session, notification, now) in ("ask", "locked"):
        # Progress is the acceptor's word for the timeline: not before their PIN (a forwarded link is not them).
        rendered = await render_link(request, session, notification, callout, note="Enter your PIN first.")
        await audit_view(request, session, notification, callout, action, now, personal=False, refused=True)
        return page_response(rendered)
    callout, acted = await act(session, callout, notification, action, via="link", request=request)
    log.info("link.answered", notification_id=str(notification.id), action=action, outcome=acted.outcome)
    rendered = await render_link(request, session, notification, callout, note=acted.reply(callout.code))
    await audit_view(request, session, notification, callout, action, now, personal=bool(rendered.details))
    return page_response(rendered)


async def call_from_page(
    request: Request, session: SessionDep, notification: Notification, callout: Callout, party: str, now: Any
) -> HTMLResponse:
    """Only the acceptor, while the callout runs: Callout rings their phone and bridges them."""
    callout = await escalation.lock_callout(session, callout.id)
    mine = callout.accepted_by_recipient(notification.recipient)
    queued = None
    unlocked = await guard_of(request, session, notification, now) in ("given", "none")
    if mine and unlocked and callout.status == CalloutStatus.accepted and callout.end_requested_at is None:
        queued = await escalation.queue_bridge(
            session, callout, notification, party, now=now, settings=request.app.state.settings
        )
    note = (
        f"Calling you now: answer, and you will be connected to {escalation.PARTIES[party]}. Your number stays hidden."
        if queued
        else "That call cannot be made."
    )
    rendered = await render_link(request, session, notification, callout, note=note)
    await audit_view(request, session, notification, callout, f"call {party}", now, personal=bool(rendered.details))
    return page_response(rendered)


VIEWER_COOKIE = "callout_view"


async def guard_of(request: Request, session: SessionDep, notification: Notification, now: Any) -> page.Guard:
    """Where the second factor stands for this browser on this link."""
    if notification.link_locked_at is not None:
        return "locked"
    proven = await phones.phone_of(session, notification.advocate_id)
    if proven is None or proven.pin_hash is None:
        return "none"
    return "given" if phones.is_viewer(notification, request.cookies.get(VIEWER_COOKIE), now) else "ask"


async def give_pin(
    request: Request, session: SessionDep, notification: Notification, callout: Callout, pin: str, now: Any
) -> HTMLResponse:
    """The acceptor's PIN: right, and this browser sees the details for a while; wrong five times, and the link
    locks and the supervisors are told."""
    locked = await escalation.lock_notification(session, Notification.id == notification.id)
    assert locked is not None
    notification, callout = locked, await session.get_one(Callout, callout.id)
    proven = await phones.phone_of(session, notification.advocate_id)
    mine = callout.accepted_by_recipient(notification.recipient)
    cookie, note = None, None
    if notification.link_locked_at is None and proven is not None and proven.pin_hash is not None and mine:
        if phones.pin_matches(proven, pin):
            cookie = phones.open_viewer(notification, now)
        else:
            notification.pin_failures += 1
            note = "That PIN is not right."
            if notification.pin_failures >= phones.MAX_PIN_FAILURES:
                notification.link_locked_at = now
                settings = request.app.state.settings
                await escalation.tell_supervisors(
                    session, callout, messages.pin_locked_sms(callout.code), now=now, settings=settings
                )
                log.warning("link.locked", notification_id=str(notification.id), callout_id=str(callout.id))
    rendered = await render_link(request, session, notification, callout, note=note, cookie=cookie)
    await audit_view(
        request, session, notification, callout, "pin", now, personal=bool(rendered.details), right=bool(cookie)
    )
    response = page_response(rendered)
    if cookie:
        response.set_cookie(
            VIEWER_COOKIE,
            cookie,
            max_age=int(phones.VIEWER_LIFE.total_seconds()),
            path=urlsplit(request.app.state.settings.public_link(request.url.path)).path,  # as the browser sees it
            secure=request.app.state.settings.public_link("/").startswith("https://"),
            httponly=True,
            samesite="strict",
        )
    return response


async def audit_view(
    request: Request,
    session: SessionDep,
    notification: Notification,
    callout: Callout,
    did: str,
    now: Any,
    *,
    personal: bool,
    **more: Any,
) -> None:
    """Every view and answer is in the audit trail, with the client's address and user agent: a preview bot's
    fetch shows as what it is, and whether it was shown anything personal."""
    who = f"advocate:{notification.advocate_id}" if notification.advocate_id else f"{notification.role}:link"
    await audit.record(
        session,
        actor=audit.Actor.at(who, request),
        action="view",
        subject=f"link page, callout {callout.code}",
        at=now,
        did=did,
        personal_data_shown=personal,
        **more,
    )


async def render_link(
    request: Request,
    session: SessionDep,
    notification: Notification,
    callout: Callout,
    note: str | None,
    *,
    cookie: str | None = None,
) -> page.Page:
    """`cookie`: the viewer cookie just given for the right PIN (the browser has not sent it back yet)."""
    now = request.app.state.clock.now()
    guard: page.Guard = "given" if cookie else await guard_of(request, session, notification, now)
    incident = await session.get_one(Incident, callout.incident_id)
    agency = await session.get_one(Agency, callout.agency_id)
    return page.page_for(
        recipient=notification.recipient,
        callout=callout,
        incident=incident,
        timezone=agency.timezone,
        expires_at=notification.link_expires_at,
        note=note,
        survivor_reachable=escalation.survivor_number(incident) is not None,
        guard=guard,
    )


def page_response(rendered: page.Page) -> HTMLResponse:
    return HTMLResponse(
        rendered.html(),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"},
    )


# -- choosing a PIN ------------------------------------------------------------------------------------------------


@router.get("/p/{token}", response_class=HTMLResponse, summary="Choose the PIN that guards callout details")
async def pin_page(
    request: Request, session: SessionDep, token: Annotated[str, Path(min_length=10, max_length=64)]
) -> HTMLResponse:
    if await phones.pin_setter(session, token, request.app.state.clock.now()) is None:
        raise NotFound("This link is unknown or has expired.")
    return pin_response(note=None, form=True)


@router.post(
    "/p/{token}",
    response_class=HTMLResponse,
    summary="Set the PIN",
    dependencies=[Depends(refuse_cross_site)],
    openapi_extra=form_example({"pin": "482913", "again": "482913"}),
)
async def set_pin(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Path(min_length=10, max_length=64)],
    pin: Annotated[str, Form(max_length=16)],
    again: Annotated[str, Form(max_length=16)],
) -> HTMLResponse:
    now = request.app.state.clock.now()
    proven = await phones.pin_setter(session, token, now)
    if proven is None:
        raise NotFound("This link is unknown or has expired.")
    if not phones.PIN.match(pin):
        return pin_response(note="A PIN is four to eight digits.", form=True, status=422)
    if pin != again:
        return pin_response(note="The two PINs differ. Try again.", form=True, status=422)
    phones.set_pin(proven, pin)
    await audit.record(
        session,
        actor=audit.Actor.at(f"advocate:{proven.advocate_id}", request),
        action="change",
        subject="PIN set",
        at=now,
    )
    log.info("pin.set", advocate_id=proven.advocate_id)
    return pin_response(
        note="Your PIN is set. Callout will ask for it before it shows a callout's details.", form=False
    )


def pin_response(*, note: str | None, form: bool, status: int = 200) -> HTMLResponse:
    html = page.TEMPLATES.get_template("pin.html").render(note=note, form=form)
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


# -- for supervisors ------------------------------------------------------------------------------------------------


class UnreachableOut(BaseModel):
    advocate_id: int | None = Field(description="The advocate of the asking agency whose phone it is.")
    channel: str
    code: int | None
    reason: str
    at: datetime


@router.get("/v1/alerts/unreachable", response_model=list[UnreachableOut], summary="Phones a channel cannot reach")
async def list_unreachable(session: SessionDep, principal: PrincipalDep) -> list[UnreachableOut]:
    """An opt-out is the phone's, not one agency's: each agency with an advocate on that phone sees it, as theirs,
    and no other agency does. An admin sees every agency's."""
    query = (
        select(Unreachable, AdvocatePhone.advocate_id)
        .outerjoin(AdvocatePhone, AdvocatePhone.phone == Unreachable.phone)
        .order_by(Unreachable.at.desc(), AdvocatePhone.advocate_id)
    )
    if principal.role is not Role.admin:  # no advocate's phone (the hotline's): the agency that found it out
        query = query.where(
            (AdvocatePhone.agency_id == principal.agency_id)
            | (AdvocatePhone.advocate_id.is_(None) & (Unreachable.agency_id == principal.agency_id))
        )
    return [
        UnreachableOut(advocate_id=advocate_id, channel=u.channel, code=u.code, reason=u.reason, at=u.at)
        for u, advocate_id in await session.execute(query)
    ]
