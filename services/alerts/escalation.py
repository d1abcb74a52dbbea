"""Carrying out the decisions of `callout.py`: the one writer of a callout's and a notification's status.

Each function takes the session and flushes; the caller commits. A callout changes only with its row locked, so a
late callback, a reply and a timer racing each other apply one at a time, each to the state the last one left.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import messages, phones
from services.alerts.callout import (
    ROLES,
    Acceptance,
    Alert,
    AlertFailed,
    Answered,
    ChannelName,
    Decision,
    Due,
    Event,
    NotifyCad,
    Outcome,
    Person,
    Policy,
    Progressed,
    Record,
    Roster,
    Routed,
    SendAlert,
    SendLink,
    State,
    StopAlerting,
    Tell,
    Unheard,
    Unroutable,
    WakeWorker,
    decide,
)
from services.alerts.models import ALIVE, CadNotice, Notification, NotificationStatus
from services.alerts.settings import AlertsSettings
from shared import metrics
from shared.auth import hash_token
from shared.tables import (
    AdvocatePhone,
    Agency,
    Callout,
    CalloutStatus,
    Incident,
    Stage,
    Tier,
    Unreachable,
    Wake,
    record_stage,
    wake_alerts,
)

log = structlog.get_logger()
# The progress stages whose time from the CAD's event operators watch.
HANDOFFS = (Stage.en_route, Stage.on_scene, Stage.survivor_contacted)
NOTICE_EVENTS = {Stage.acknowledged: "accepted", Stage.en_route: "en_route", Stage.on_scene: "on_scene"}
# How long a courtesy text (taken, cancelled) is retried through provider faults.
INFO_RETRY = timedelta(minutes=10)


def record_for(session: AsyncSession, notification: Notification, stage: Stage, at: datetime, **data: Any) -> None:
    """A timeline row for what became of an alert, a link or a masked call: each belongs to a callout's incident."""
    assert notification.incident_id is not None, "a text of no incident has no timeline"
    record_stage(session, notification.incident_id, stage, at, **data)


def person_of(notification: Notification) -> Person:
    return Person.model_validate(
        {"role": notification.role, "phone": notification.to, "advocate_id": notification.advocate_id}
    )


# -- a callout's state, in and out of its row --------------------------------------------------------------------


async def lock_callout(session: AsyncSession, callout_id: Any) -> Callout:
    return await session.get_one(Callout, callout_id, with_for_update=True, populate_existing=True)


async def lock_notification(session: AsyncSession, condition: Any) -> Notification | None:
    """The notification `condition` finds, locked after its callout's row: every path that changes both takes
    the callout first, so that a callback, a reply and a worker never wait on each other in a circle."""
    found = (await session.execute(select(Notification.id, Notification.callout_id).where(condition))).first()
    if found is None:
        return None
    if found.callout_id is not None:  # a verification code belongs to no callout
        await lock_callout(session, found.callout_id)
    return await session.scalar(
        select(Notification).where(condition).with_for_update().execution_options(populate_existing=True)
    )


async def state_of(session: AsyncSession, callout: Callout, event: Event) -> State:
    """The callout as `decide` sees it: its row, its current step's alerts, and (when a step may start) which of
    its people's phones cannot be reached on which channel."""
    alerts: Any = ()
    if callout.step_seq > 0:  # before the first step (routing) there is none: spare the hot path a round trip
        alerts = await session.execute(
            select(Notification.recipient, Notification.channel, Notification.status).where(
                Notification.callout_id == callout.id,
                Notification.kind == "alert",
                Notification.step_seq == callout.step_seq,
            )
        )
    stored = Roster.model_validate(callout.roster) if callout.roster else None
    roster = event.roster if isinstance(event, Routed) else stored
    unreachable: frozenset[tuple[str, Any]] = frozenset()
    if roster is not None and isinstance(event, Routed | Due):
        phones = [p.phone for role in ROLES for p in roster.candidates(role)]
        rows = await session.execute(
            select(Unreachable.phone, Unreachable.channel).where(Unreachable.phone.in_(phones))
        )
        unreachable = frozenset((phone, channel) for phone, channel in rows)
    linked: frozenset[str] = frozenset()
    if isinstance(event, Answered) and event.accept:
        holders = await session.scalars(
            select(Notification.recipient).where(
                Notification.callout_id == callout.id,
                Notification.link_hash.is_not(None),
                Notification.status.in_(("sent", "delivered")),
            )
        )
        linked = frozenset(holders)
    return State(
        status=CalloutStatus(callout.status),
        due_at=callout.due_at,
        roster=stored,
        policy=Policy.model_validate(callout.policy) if callout.policy else None,
        step=callout.step,
        round=callout.round,
        step_seq=callout.step_seq,
        declined=frozenset(callout.declined),
        accepted_by=Acceptance.model_validate(callout.accepted_by) if callout.accepted_by else None,
        ending=callout.end_requested_at is not None,
        # A decliner's alert is dead whatever its row says (one in flight when they said no may be sent after).
        alerts=tuple(
            Alert(r, cast(ChannelName, c), alive=s in ALIVE and r not in callout.declined) for r, c, s in alerts
        ),
        unreachable=unreachable,
        linked=linked,
    )


def write_state(callout: Callout, state: State, now: datetime) -> None:
    if state.status == CalloutStatus.accepted and callout.status != CalloutStatus.accepted:
        callout.accepted_at = now
    if state.status == CalloutStatus.closed and callout.status != CalloutStatus.closed:
        callout.end_reason = "closed by the advocate"
    callout.status, callout.due_at, callout.updated_at = state.status, state.due_at, now
    callout.roster = state.roster.model_dump(mode="json") if state.roster else {}
    callout.policy = state.policy.model_dump(mode="json") if state.policy else {}
    callout.step, callout.round, callout.step_seq = state.step, state.round, state.step_seq
    callout.declined = sorted(state.declined)
    callout.accepted_by = state.accepted_by.model_dump(mode="json") if state.accepted_by else None


@dataclass(frozen=True)
class Applied:
    """What an event did: the decision, and the alerts it queued."""

    decision: Decision
    queued: list[Notification]

    @property
    def outcome(self) -> Outcome:
        return self.decision.outcome

    @property
    def link_sent(self) -> bool:
        return any(isinstance(effect, SendLink) for effect in self.decision.effects)


async def apply(
    session: AsyncSession, callout: Callout, event: Event, *, now: datetime, settings: AlertsSettings
) -> Applied:
    """Decide what `event` does to the callout (locked by the caller), write it and carry it out."""
    state = await state_of(session, callout, event)
    decision = decide(state, event, now)
    if decision.state != state or decision.effects:  # a late answer changes nothing, not even updated_at
        write_state(callout, decision.state, now)
    return Applied(decision, await carry_out(session, callout, decision, now=now, settings=settings))


async def carry_out(
    session: AsyncSession, callout: Callout, decision: Decision, *, now: datetime, settings: AlertsSettings
) -> list[Notification]:
    queued: list[Notification] = []
    wakes: set[Wake] = set()
    for effect in decision.effects:
        if isinstance(effect, Record):
            record_stage(session, callout.incident_id, effect.stage, now, **effect.data)
            if effect.stage == Stage.acknowledged:
                metrics.handoff("acceptance", callout.tier, callout.created_at, now)
                log.info("callout.accepted", callout_id=str(callout.id), via=effect.data["via"])
            elif effect.stage in HANDOFFS:
                metrics.handoff(effect.stage.value, callout.tier, callout.created_at, now)
            elif effect.stage == Stage.escalated and decision.state.status == CalloutStatus.exhausted:
                log.warning("callout.exhausted", callout_id=str(callout.id), tier=callout.tier)
        elif isinstance(effect, SendAlert):
            queued.append(queue_alert(session, callout, effect, now=now, settings=settings))
            wakes.add(Wake.sends)
        elif isinstance(effect, SendLink):
            queue_link(session, callout, effect.person, now=now, settings=settings)
            wakes.add(Wake.sends)
        elif isinstance(effect, StopAlerting):
            await stop_alerting(session, callout, now, recipient=effect.recipient)
        elif isinstance(effect, Tell):
            if await tell_everyone_alerted(session, callout, effect, now=now, settings=settings):
                wakes.add(Wake.sends)
        elif isinstance(effect, NotifyCad):
            if await queue_cad_notice(session, callout, effect, now=now):
                wakes.add(Wake.notices)
        elif isinstance(effect, WakeWorker):
            wakes.add(Wake.callouts)
        elif isinstance(effect, Unheard):
            log.critical("callout.unheard", callout_id=str(callout.id), tier=callout.tier)
    if decision.state.status == CalloutStatus.cancelled and callout.end_reason:
        log.info("callout.cancelled", callout_id=str(callout.id), reason=callout.end_reason)
    for wake in sorted(wakes):
        await wake_alerts(session, wake)
    return queued


# -- effects ----------------------------------------------------------------------------------------------------


def new_notification(
    callout: Callout, person: Person, *, channel: str, kind: str, now: datetime, retry_until: datetime | None
) -> Notification:
    return Notification(
        id=uuid.uuid4(),
        callout_id=callout.id,
        incident_id=callout.incident_id,
        kind=kind,
        step_seq=callout.step_seq if kind == "alert" else None,
        recipient=person.recipient,
        role=person.role,
        advocate_id=person.advocate_id,
        channel=channel,
        to=person.phone,
        body="",
        due_at=now,
        retry_until=retry_until,
        created_at=now,
        updated_at=now,
    )


def queue_info(session: AsyncSession, callout: Callout, person: Person, body: str, *, now: datetime) -> None:
    """A courtesy text (taken, cancelled, a link locked): it asks nothing, and is tried for INFO_RETRY."""
    info = new_notification(callout, person, channel="sms", kind="info", now=now, retry_until=now + INFO_RETRY)
    info.body = body
    session.add(info)


@dataclass(frozen=True)
class ItContact:
    """The agency's IT contact: told when its CAD feed falls silent and speaks again, never alerted for a call."""

    phone: str
    role: str = "it"
    recipient: str = "it"
    advocate_id: None = None


def queue_staff_text(session: AsyncSession, person: Person | ItContact, body: str, *, now: datetime) -> None:
    """A text to a supervisor, the hotline or the IT contact about the program, of no callout."""
    session.add(
        Notification(
            kind="info",
            recipient=person.recipient,
            role=person.role,
            advocate_id=person.advocate_id,
            channel="sms",
            to=person.phone,
            body=body,
            due_at=now,
            retry_until=now + INFO_RETRY,
            created_at=now,
            updated_at=now,
        )
    )


def queue_alert(
    session: AsyncSession, callout: Callout, send: SendAlert, *, now: datetime, settings: AlertsSettings
) -> Notification:
    """One text or call, due now. A text carries a link bound to this person and this callout; each alert's
    status callbacks name it, so that Twilio's own records of it can be told from every other."""
    notification = new_notification(
        callout, send.person, channel=send.channel, kind="alert", now=now, retry_until=send.retry_until
    )
    if send.channel == "sms":
        link = new_link(notification, now=now, settings=settings)
        notification.body = messages.alert_sms(code=callout.code, tier=Tier(callout.tier), area=callout.area, link=link)
    else:
        notification.body = messages.alert_call(
            code=callout.code,
            tier=Tier(callout.tier),
            area=callout.area,
            gather_url=settings.public_link(f"/v1/twilio/voice/gather?n={notification.id}"),
        )
    session.add(notification)
    return notification


def new_link(notification: Notification, *, now: datetime, settings: AlertsSettings) -> str:
    """A link to the callout's page bound to this text's person; only its hash is kept, and the body that
    carries it is sealed."""
    token = secrets.token_urlsafe(16)
    notification.link_hash = hash_token(token)
    notification.link_expires_at = now + timedelta(hours=settings.link_ttl_hours)
    return settings.public_link(f"/l/{token}")


def queue_link(
    session: AsyncSession, callout: Callout, person: Person, *, now: datetime, settings: AlertsSettings
) -> Notification:
    """The acceptor's own link, for one who accepted without holding one; tried for as long as the link lives."""
    ttl = timedelta(hours=settings.link_ttl_hours)
    notification = new_notification(callout, person, channel="sms", kind="link", now=now, retry_until=now + ttl)
    notification.body = messages.link_sms(code=callout.code, link=new_link(notification, now=now, settings=settings))
    session.add(notification)
    return notification


PARTIES = {"survivor": "the survivor", "hotline": "the hotline"}
BRIDGE_RINGING = timedelta(minutes=2)  # a masked call asked for again within this is the same call
BRIDGE_RETRY = timedelta(minutes=5)  # an advocate waiting for their phone to ring will not wait longer


def survivor_number(incident: Incident) -> str | None:
    """The safe contact the survivor gave, and only if they consented: never the 911 callback number."""
    persons: list[dict[str, Any]] = (incident.details or {}).get("persons", [])
    victim = next((p for p in persons if p.get("role") == "victim"), {})
    phone: str | None = (victim.get("safe_contact") or {}).get("phone")
    return phone if victim.get("consents_to_contact") is True else None


async def queue_bridge(
    session: AsyncSession,
    callout: Callout,
    holder: Notification,
    party: str,
    *,
    now: datetime,
    settings: AlertsSettings,
) -> Notification | None:
    """A masked call: Callout calls the advocate who holds `holder`'s link, then bridges them to the survivor's
    safe contact or the hotline, with the program's number as caller ID. None when there is nobody to call."""
    ringing = await session.scalar(  # a second press (or a reloaded page) while the first call is on its way
        select(Notification).where(
            Notification.callout_id == callout.id,
            Notification.kind == "bridge",
            Notification.to == holder.to,
            Notification.status.in_((NotificationStatus.pending, NotificationStatus.sent)),
            Notification.created_at > now - BRIDGE_RINGING,
        )
    )
    if ringing is not None:
        return ringing
    incident = await session.get_one(Incident, callout.incident_id)
    agency = await session.get_one(Agency, callout.agency_id)
    number = survivor_number(incident) if party == "survivor" else agency.hotline
    if number is None:
        return None
    notification = new_notification(
        callout, person_of(holder), channel="voice", kind="bridge", now=now, retry_until=now + BRIDGE_RETRY
    )
    notification.body = messages.bridge_call(  # sealed at rest: it holds the number called
        code=callout.code,
        party=PARTIES[party],
        number=number,
        caller_id=settings.twilio_from or "",
        action_url=settings.public_link(f"/v1/twilio/bridge?n={notification.id}&party={party}"),
    )
    session.add(notification)
    await wake_alerts(session, Wake.sends)
    log.info("bridge.queued", callout_id=str(callout.id), party=party)
    return notification


async def bridged(
    session: AsyncSession,
    notification: Notification,
    *,
    party: str,
    status: str,
    seconds: int,
    now: datetime,
    settings: AlertsSettings,
) -> None:
    """What a masked call came to. A call to the survivor answered and long enough is contact, recorded as the
    acceptor's progress; anything else an attempt, with its outcome. No audio is ever recorded."""
    callout = await lock_callout(session, notification.callout_id)  # locked already, with the notification
    notification.updated_at = now  # over: the next press places a new call
    notification.status = NotificationStatus.answered if status == "completed" else NotificationStatus.failed
    if party == "survivor" and status == "completed" and seconds >= settings.contact_min_seconds:
        event = Progressed(person_of(notification), Stage.survivor_contacted, via="call", detail={"seconds": seconds})
        if (await apply(session, callout, event, now=now, settings=settings)).outcome != "recorded":
            # The callout ended while they talked: the contact still happened, and the timeline says so.
            record_for(
                session,
                notification,
                Stage.survivor_contacted,
                now,
                via="call",
                after_end=True,
                seconds=seconds,
            )
        return
    outcome = "answered, too short to count" if status == "completed" else status
    record_for(
        session,
        notification,
        Stage.contact_attempted,
        now,
        party=party,
        outcome=outcome,
        seconds=seconds,
        role=notification.role,
        advocate_id=notification.advocate_id,
    )


async def stop_alerting(session: AsyncSession, callout: Callout, now: datetime, *, recipient: str | None) -> None:
    """Stop alerting: everyone (what has not gone out yet), or one person who said no (all that may still reach
    them: their ringing call no longer keeps the step waiting)."""
    query = update(Notification).where(Notification.callout_id == callout.id, Notification.kind == "alert")
    if recipient is None:
        query = query.where(Notification.status == NotificationStatus.pending)
    else:
        query = query.where(Notification.recipient == recipient, Notification.status.in_(ALIVE))
    await session.execute(query.values(status=NotificationStatus.cancelled, updated_at=now))


async def tell_everyone_alerted(
    session: AsyncSession, callout: Callout, tell: Tell, *, now: datetime, settings: AlertsSettings
) -> bool:
    """A text to each person an alert reached (or was on its way to), except `tell.but`. Whether any was queued."""
    rows = await session.execute(
        select(Notification.recipient, Notification.role, Notification.advocate_id, Notification.to)
        .where(
            Notification.callout_id == callout.id,
            Notification.kind == "alert",
            Notification.status.in_(("sent", "delivered", "answered")),
        )
        .distinct()
    )
    body = messages.taken_sms(callout.code) if tell.message == "taken" else messages.cancelled_sms(callout.code)
    told: set[str] = set()
    for recipient, role, advocate_id, phone in rows:
        if recipient == tell.but or phone in told:
            continue
        told.add(phone)
        person = Person.model_validate({"role": role, "phone": phone, "advocate_id": advocate_id})
        queue_info(session, callout, person, body, now=now)
    return bool(told)


async def tell_supervisors(
    session: AsyncSession, callout: Callout, body: str, *, now: datetime, settings: AlertsSettings
) -> None:
    """A text to the supervisors on call for this callout (as the directory named them when it was routed), or to
    the hotline when it named none."""
    roster = Roster.model_validate(callout.roster) if callout.roster else None
    if roster is None:
        return
    for person in roster.supervisor or (roster.hotline_person,):
        queue_info(session, callout, person, body, now=now)
    await wake_alerts(session, Wake.sends)


async def queue_cad_notice(session: AsyncSession, callout: Callout, notify: NotifyCad, *, now: datetime) -> bool:
    """An event for the dispatcher, if the agency wants them: posted in order, retried until delivered."""
    agency = await session.get_one(Agency, callout.agency_id)
    if not agency.notify_url:
        return False
    incident = await session.get_one(Incident, callout.incident_id)
    event = NOTICE_EVENTS[notify.stage]
    payload = {
        "type": f"callout.{event}",
        "incident_id": incident.cad_incident_id,
        "incident_ref": incident.ref,
        "callout_code": callout.code,
        "tier": callout.tier,
        "at": now.isoformat(),
        "role": notify.role,
    }
    session.add(
        CadNotice(
            agency_id=agency.id, incident_id=incident.id, event=event, payload=payload, due_at=now, created_at=now
        )
    )
    return True


# -- answers from people -----------------------------------------------------------------------------------------


async def respond(
    session: AsyncSession,
    callout_id: uuid.UUID,
    event: Answered | Progressed,
    *,
    now: datetime,
    settings: AlertsSettings,
) -> tuple[Callout, Applied]:
    """A person's answer (accept, decline) or progress, applied to the callout, locked."""
    callout = await lock_callout(session, callout_id)
    applied = await apply(session, callout, event, now=now, settings=settings)
    if applied.outcome == "declined":
        log.info("callout.declined", callout_id=str(callout.id), via=event.via, role=event.person.role)
    return callout, applied


async def route(
    session: AsyncSession,
    callout: Callout,
    roster: Roster | None,
    policy: Policy | None,
    *,
    hotline: str,
    now: datetime,
    settings: AlertsSettings,
) -> list[Notification]:
    """The directory's answer (or none at all): the first step starts. Returns its alerts."""
    event: Event = Routed(roster, policy) if roster is not None and policy is not None else Unroutable(hotline)
    return (await apply(session, callout, event, now=now, settings=settings)).queued


# -- what became of a text or call -------------------------------------------------------------------------------


async def sent(
    session: AsyncSession,
    notification: Notification,
    provider_id: str,
    *,
    provider: str,
    now: datetime,
    found: str | None = None,
    earlier: str | None = None,
) -> None:
    """The provider took it. `found`: how an attempt whose answer was lost was recognised at the provider;
    `earlier`: what is known of an earlier attempt whose answer was lost (this one was sent after it)."""
    notification.status, notification.provider_id = NotificationStatus.sent, provider_id
    notification.sent_at, notification.started_at, notification.updated_at = now, None, now
    if notification.kind == "test":
        await phones.tested(session, notification, "sent" if notification.channel == "sms" else "ringing", now)
    if notification.kind == "alert":
        record_for(
            session,
            notification,
            Stage.notification_sent,
            now,
            channel=notification.channel,
            provider=provider,
            provider_id=provider_id,
            role=notification.role,
            advocate_id=notification.advocate_id,
            reconciled=found,
            earlier_attempt=earlier,
        )


async def sent_after_all(
    session: AsyncSession, notification: Notification, *, now: datetime, settings: AlertsSettings
) -> None:
    """An alert cancelled while it was on its way (someone accepted, CAD ended the call) went out: its person is
    told as the others were, so that nobody is left answering a callout that is over."""
    if notification.kind != "alert" or notification.callout_id is None:
        return
    callout = await session.get_one(Callout, notification.callout_id)
    mine = callout.accepted_by_recipient(notification.recipient)
    if callout.status == CalloutStatus.accepted and not mine:
        body = messages.taken_sms(callout.code)
    elif callout.status == CalloutStatus.cancelled:
        body = messages.cancelled_sms(callout.code)
    else:
        return
    queue_info(session, callout, person_of(notification), body, now=now)
    await wake_alerts(session, Wake.sends)


async def delivered(session: AsyncSession, notification: Notification, *, now: datetime) -> None:
    notification.status, notification.updated_at = NotificationStatus.delivered, now
    if notification.kind == "test":
        await phones.tested(session, notification, "delivered", now)
    if notification.kind == "alert":
        record_for(
            session,
            notification,
            Stage.notification_delivered,
            now,
            channel=notification.channel,
            role=notification.role,
            advocate_id=notification.advocate_id,
        )


async def pressed(
    session: AsyncSession, notification: Notification, digit: str, *, now: datetime, settings: AlertsSettings
) -> Applied:
    """A key pressed on a voice alert: 1 accepts, 2 declines."""
    callout = await lock_callout(session, notification.callout_id)  # locked already, with the notification
    notification.status, notification.updated_at = NotificationStatus.answered, now
    await session.flush()
    return await apply(
        session, callout, Answered(person_of(notification), digit == "1", "voice"), now=now, settings=settings
    )


async def failed(
    session: AsyncSession,
    notification: Notification,
    *,
    reason: str,
    code: int | None,
    now: datetime,
    settings: AlertsSettings,
    outcome: str | None = None,
) -> None:
    """A text or call will not reach its person: record it, and move on at once if the step is left empty.
    `outcome`: "unknown" when the last attempt's answer never came (it may have gone out after all)."""
    notification.status, notification.error, notification.updated_at = NotificationStatus.failed, reason, now
    notification.started_at = None
    if notification.kind == "test":
        await phones.tested(session, notification, f"failed: {reason}", now)
    if notification.kind != "alert":  # a courtesy text (taken, cancelled) that did not arrive changes nothing
        return
    record_for(
        session,
        notification,
        Stage.notification_failed,
        now,
        channel=notification.channel,
        role=notification.role,
        advocate_id=notification.advocate_id,
        error=reason,
        code=code,
        outcome=outcome,
    )
    await session.flush()
    callout = await lock_callout(session, notification.callout_id)  # locked already by whoever holds the notification
    await apply(session, callout, AlertFailed(notification.step_seq), now=now, settings=settings)


async def mark_unreachable(
    session: AsyncSession, notification: Notification, *, code: int, reason: str, now: datetime
) -> None:
    """This phone cannot get this channel (opted out, invalid): skip it from now on, and tell supervisors."""
    if notification.callout_id is not None:
        agency_id: int | None = (await session.get_one(Callout, notification.callout_id)).agency_id
    else:  # a text of no callout (a phone's code, a test): the advocate's agency
        phone = await session.get(AdvocatePhone, notification.advocate_id) if notification.advocate_id else None
        agency_id = phone.agency_id if phone else None
    if agency_id is None:  # a supervisors' notice to the hotline: nobody's phone of the directory's
        log.warning("contact.unreachable", channel=notification.channel, code=code, hotline=True)
        return
    await unreachable(
        session,
        agency_id=agency_id,
        advocate_id=notification.advocate_id,
        phone=notification.to,
        channel=notification.channel,
        code=code,
        reason=reason,
        now=now,
    )


async def unreachable(
    session: AsyncSession,
    *,
    agency_id: int,
    advocate_id: int | None,
    phone: str,
    channel: str,
    code: int,
    reason: str,
    now: datetime,
) -> None:
    """Record that `channel` cannot reach `phone`; the watch then tells the supervisors of its advocates."""
    await session.execute(
        insert(Unreachable)
        .values(
            agency_id=agency_id,
            advocate_id=advocate_id,
            phone=phone,
            channel=channel,
            code=code,
            reason=reason,
            at=now,
        )
        .on_conflict_do_nothing(index_elements=["phone", "channel"])
    )
    await wake_alerts(session, Wake.watch)
    log.warning("contact.unreachable", advocate_id=advocate_id, channel=channel, code=code)
