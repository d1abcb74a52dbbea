"""The escalation engine: steps of a policy, answers from people, and the end of a callout.

Functions take the session and flush; the caller commits. Every change of a callout's state happens with its
row locked, so a late callback, a reply and a timer racing each other apply one at a time.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import messages
from services.alerts.models import ALIVE, CadNotice, Notification, NotificationStatus, Unreachable
from services.alerts.settings import AlertsSettings
from shared import metrics
from shared.tables import (
    OPEN,
    Agency,
    Callout,
    CalloutStatus,
    Incident,
    Stage,
    Tier,
    Wake,
    record_stage,
    wake_alerts,
)

log = structlog.get_logger()
ROLES = ("primary", "backup", "supervisor")
PROGRESS = {
    Stage.en_route: "en route",
    Stage.on_scene: "on scene",
    Stage.survivor_contacted: "survivor contacted",
    Stage.survivor_declined: "survivor declined",
    Stage.closed: "closed",
}
NOTIFY_BACK = {Stage.acknowledged: "accepted", Stage.en_route: "en_route", Stage.on_scene: "on_scene"}


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def recipient_key(role: str, advocate_id: int | None) -> str:
    return "hotline" if role == "hotline" else f"advocate:{advocate_id}"


# The progress stages whose time from the CAD's event operators watch.
HANDOFFS = (Stage.en_route, Stage.on_scene, Stage.survivor_contacted)


def roster_from(chain: list[dict[str, Any]], hotline: str, source: dict[str, Any]) -> dict[str, Any]:
    """The directory's ordered chain, grouped by role, plus the hotline, and where the chain came from (the
    directory just now, or its last known answer while it cannot be reached)."""
    keep = ("advocate_id", "key", "phone", "language_match", "reason")
    roster: dict[str, Any] = {role: [] for role in ROLES}
    for entry in chain:
        roster[entry["role"]].append({k: entry[k] for k in keep})
    roster["hotline"] = hotline
    roster["source"] = source
    return roster


def step_recipients(callout: Callout, step: dict[str, Any]) -> list[dict[str, Any]]:
    """One person for each role the step names: the first on call who has not declined."""
    chosen: list[dict[str, Any]] = []
    for role in step["notify"]:
        if role == "hotline":
            candidates = [{"advocate_id": None, "key": None, "phone": callout.roster["hotline"]}]
        else:
            candidates = callout.roster.get(role, [])
        for person in candidates:
            key = recipient_key(role, person["advocate_id"])
            if key not in callout.declined and key not in {c["recipient"] for c in chosen}:
                chosen.append({**person, "role": role, "recipient": key})
                break
    return chosen


async def unreachable_phones(session: AsyncSession, phones: list[str]) -> set[tuple[str, str]]:
    rows = await session.execute(select(Unreachable.phone, Unreachable.channel).where(Unreachable.phone.in_(phones)))
    return {(phone, channel) for phone, channel in rows}


def queue(
    session: AsyncSession,
    callout: Callout,
    person: dict[str, Any],
    *,
    channel: str,
    kind: str,
    now: datetime,
    settings: AlertsSettings,
    body: str | None = None,
) -> Notification:
    """Queue one text or call, due now. An alert text carries a link bound to this person and this callout."""
    notification = Notification(
        id=uuid.uuid4(),
        callout_id=callout.id,
        incident_id=callout.incident_id,
        kind=kind,
        step_seq=callout.step_seq if kind == "alert" else None,
        recipient=person["recipient"],
        role=person["role"],
        advocate_id=person["advocate_id"],
        channel=channel,
        to=person["phone"],
        body=body or "",
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    if kind == "alert" and channel == "sms":
        token = secrets.token_urlsafe(16)
        notification.link_hash = hash_link_token(token)
        notification.link_expires_at = now + timedelta(hours=settings.link_ttl_hours)
        notification.body = messages.alert_sms(
            code=callout.code, tier=Tier(callout.tier), area=callout.area, link=settings.public_link(f"/l/{token}")
        )
    elif kind == "alert":
        notification.body = messages.alert_call(
            code=callout.code,
            tier=Tier(callout.tier),
            area=callout.area,
            gather_url=settings.public_link(f"/v1/twilio/voice/gather?n={notification.id}"),
        )
    session.add(notification)
    return notification


async def start_next_step(
    session: AsyncSession, callout: Callout, *, now: datetime, settings: AlertsSettings
) -> list[Notification]:
    """Start the policy's next step that has someone to alert; past the last (and its repeats), the hotline.
    (Why the previous step ended — its wait, a decline, a failure — is in the timeline just before.)
    Returns the alerts it queued."""
    steps, repeat = callout.policy["steps"], callout.policy["repeat"]
    index, round_ = callout.step + 1, callout.round
    skipped: list[str] = []
    for _ in range(len(steps) * (repeat + 1) + 1):
        if index >= len(steps):
            if round_ >= repeat:
                return await exhaust(session, callout, now=now, settings=settings, skipped=skipped)
            round_, index = round_ + 1, 0
        recipients = step_recipients(callout, steps[index])
        if recipients:
            break
        skipped.append(f"nobody on call for step {index + 1} ({'/'.join(steps[index]['notify'])})")
        index += 1
    else:  # every step of every round had nobody: only the hotline is left
        return await exhaust(session, callout, now=now, settings=settings, skipped=skipped)
    step = steps[index]
    first = callout.step_seq == 0
    callout.step, callout.round, callout.step_seq = index, round_, callout.step_seq + 1
    callout.status, callout.updated_at = CalloutStatus.alerting, now
    callout.due_at = now + timedelta(seconds=step["wait_seconds"])
    for person in recipients:
        if first and person["role"] != "hotline":
            record_stage(
                session,
                callout.incident_id,
                Stage.advocate_matched,
                now,
                advocate_id=person["advocate_id"],
                role=person["role"],
                reason=person["reason"],
                language=callout.language,
                language_match=person["language_match"],
                roster=callout.roster.get("source"),
            )
    if not first or any(p["role"] == "hotline" for p in recipients) or skipped:
        record_stage(
            session,
            callout.incident_id,
            Stage.escalated,
            now,
            step=index + 1,
            round=round_,
            to=[p["role"] for p in recipients],
            advocate_ids=[p["advocate_id"] for p in recipients],
            via=step["via"],
            reason="; ".join(skipped) or None,
            roster=callout.roster.get("source") if first else None,
        )
    blocked = await unreachable_phones(session, [p["phone"] for p in recipients])
    queued = [
        queue(session, callout, person, channel=channel, kind="alert", now=now, settings=settings)
        for person in recipients
        for channel in step["via"]
        if (person["phone"], channel) not in blocked
    ]
    if not queued:  # everyone this step names is unreachable on its channels: no point waiting
        callout.due_at = now
        await wake_alerts(session)
    await wake_alerts(session, Wake.sends)
    return queued


async def exhaust(
    session: AsyncSession, callout: Callout, *, now: datetime, settings: AlertsSettings, skipped: list[str]
) -> list[Notification]:
    """Every step is spent: alert the 24/7 hotline by text and call. A callout never ends unheard."""
    callout.status, callout.updated_at = CalloutStatus.exhausted, now
    callout.step_seq += 1
    reason = "; ".join(["every step spent" if callout.step >= 0 else "nobody on call", *skipped])
    record_stage(session, callout.incident_id, Stage.escalated, now, to=["hotline"], reason=reason)
    hotline = {
        "advocate_id": None,
        "key": None,
        "phone": callout.roster["hotline"],
        "role": "hotline",
        "recipient": "hotline",
    }
    queued = [
        queue(session, callout, hotline, channel=channel, kind="alert", now=now, settings=settings)
        for channel in ("sms", "voice")
    ]
    await wake_alerts(session, Wake.sends)
    log.warning("callout.exhausted", callout_id=str(callout.id), tier=callout.tier)
    return queued


async def lock_callout(session: AsyncSession, callout_id: Any) -> Callout:
    return await session.get_one(Callout, callout_id, with_for_update=True, populate_existing=True)


async def move_on_if_step_dead(session: AsyncSession, callout: Callout, step_seq: int | None, now: datetime) -> None:
    """When nothing of the current step can still reach anyone (failed, declined), start the next one now.
    When that was the hotline's last alert, nobody at all can be reached: the loudest log line there is."""
    if callout.status not in (CalloutStatus.alerting, CalloutStatus.exhausted) or step_seq != callout.step_seq:
        return
    alive = await session.scalar(
        select(Notification.id)
        .where(
            Notification.callout_id == callout.id,
            Notification.step_seq == step_seq,
            Notification.status.in_(ALIVE),
        )
        .limit(1)
    )
    if alive is None and callout.status == CalloutStatus.exhausted:
        log.critical("callout.unheard", callout_id=str(callout.id), tier=callout.tier)
    elif alive is None:
        callout.due_at = now
        await wake_alerts(session)


async def notification_failed(
    session: AsyncSession, notification: Notification, *, reason: str, code: int | None, now: datetime
) -> None:
    """A text or call will not reach its person: record it, and move on at once if the step is left empty."""
    notification.status, notification.error, notification.updated_at = NotificationStatus.failed, reason, now
    notification.started_at = None
    if notification.kind != "alert":  # a courtesy text (taken, cancelled) that did not arrive changes nothing
        return
    record_stage(
        session,
        notification.incident_id,
        Stage.notification_failed,
        now,
        channel=notification.channel,
        role=notification.role,
        advocate_id=notification.advocate_id,
        error=reason,
        code=code,
    )
    callout = await lock_callout(session, notification.callout_id)
    await move_on_if_step_dead(session, callout, notification.step_seq, now)


async def mark_unreachable(
    session: AsyncSession, notification: Notification, *, code: int, reason: str, now: datetime
) -> None:
    """This phone cannot get this channel (opted out, invalid): skip it from now on, and let supervisors see."""
    callout = await session.get_one(Callout, notification.callout_id)
    await session.execute(
        insert(Unreachable)
        .values(
            agency_id=callout.agency_id,
            advocate_id=notification.advocate_id,
            phone=notification.to,
            channel=notification.channel,
            code=code,
            reason=reason,
            at=now,
        )
        .on_conflict_do_nothing(index_elements=["phone", "channel"])
    )
    log.warning("contact.unreachable", advocate_id=notification.advocate_id, channel=notification.channel, code=code)


async def cancel_alive(session: AsyncSession, callout: Callout, now: datetime, *, recipient: str | None = None) -> None:
    """Stop alerting: everyone (what has not gone out yet), or one person who said no (all that may still reach
    them: their ringing call no longer keeps the step waiting)."""
    query = update(Notification).where(Notification.callout_id == callout.id, Notification.kind == "alert")
    if recipient is None:
        query = query.where(Notification.status == NotificationStatus.pending)
    else:
        query = query.where(Notification.recipient == recipient, Notification.status.in_(ALIVE))
    await session.execute(query.values(status=NotificationStatus.cancelled, updated_at=now))


async def tell_everyone_alerted(
    session: AsyncSession, callout: Callout, body: str, *, now: datetime, settings: AlertsSettings, but: str | None
) -> None:
    """A text to each person an alert reached (or was on its way to), except `but`."""
    rows = await session.execute(
        select(Notification.recipient, Notification.role, Notification.advocate_id, Notification.to)
        .where(
            Notification.callout_id == callout.id,
            Notification.kind == "alert",
            Notification.status.in_(("sent", "delivered", "answered")),
        )
        .distinct()
    )
    told: set[str] = set()
    for recipient, role, advocate_id, phone in rows:
        if recipient == but or phone in told:
            continue
        told.add(phone)
        person = {"recipient": recipient, "role": role, "advocate_id": advocate_id, "phone": phone}
        queue(session, callout, person, channel="sms", kind="info", now=now, settings=settings, body=body)
    if told:
        await wake_alerts(session, Wake.sends)


async def queue_cad_notice(
    session: AsyncSession, callout: Callout, stage: Stage, *, now: datetime, **data: Any
) -> None:
    """An event for the dispatcher, if the agency wants them: posted in order, retried until delivered."""
    agency = await session.get_one(Agency, callout.agency_id)
    if not agency.notify_url:
        return
    incident = await session.get_one(Incident, callout.incident_id)
    payload = {
        "type": f"callout.{NOTIFY_BACK[stage]}",
        "incident_id": incident.cad_incident_id,
        "incident_ref": incident.ref,
        "callout_code": callout.code,
        "tier": callout.tier,
        "at": now.isoformat(),
        **data,
    }
    session.add(
        CadNotice(
            agency_id=agency.id,
            incident_id=incident.id,
            event=NOTIFY_BACK[stage],
            payload=payload,
            due_at=now,
            created_at=now,
        )
    )
    await wake_alerts(session, Wake.notices)


def already_settled(callout: Callout, person: dict[str, Any]) -> str | None:
    """Why an answer comes too late, if it does: accepted (by this person or another), or ended."""
    if callout.status == CalloutStatus.accepted:
        return "yours" if callout.accepted_by and callout.accepted_by["recipient"] == person["recipient"] else "taken"
    return None if callout.status in OPEN else "ended"


async def accept(
    session: AsyncSession,
    callout: Callout,
    person: dict[str, Any],
    *,
    via: str,
    now: datetime,
    settings: AlertsSettings,
) -> str:
    """The first acceptance wins: escalation stops, the others are told. Returns what happened, for the reply."""
    if (settled := already_settled(callout, person)) is not None:
        return settled
    callout.status, callout.accepted_at, callout.updated_at = CalloutStatus.accepted, now, now
    metrics.handoff("acceptance", callout.tier, callout.created_at, now)
    callout.accepted_by = {k: person[k] for k in ("recipient", "role", "advocate_id")} | {"via": via}
    record_stage(
        session,
        callout.incident_id,
        Stage.acknowledged,
        now,
        via=via,
        role=person["role"],
        advocate_id=person["advocate_id"],
    )
    await cancel_alive(session, callout, now)
    await tell_everyone_alerted(
        session, callout, messages.taken_sms(callout.code), now=now, settings=settings, but=person["recipient"]
    )
    await queue_cad_notice(session, callout, Stage.acknowledged, now=now, role=person["role"])
    log.info("callout.accepted", callout_id=str(callout.id), via=via, role=person["role"])
    return "accepted"


async def decline(session: AsyncSession, callout: Callout, person: dict[str, Any], *, via: str, now: datetime) -> str:
    """A no is an answer: stop alerting that person, and move on at once if nobody else in the step is left."""
    if (settled := already_settled(callout, person)) is not None:
        return settled
    if person["recipient"] not in callout.declined:
        callout.declined = [*callout.declined, person["recipient"]]
        record_stage(
            session,
            callout.incident_id,
            Stage.declined,
            now,
            via=via,
            role=person["role"],
            advocate_id=person["advocate_id"],
        )
        await cancel_alive(session, callout, now, recipient=person["recipient"])
        await session.flush()
        await move_on_if_step_dead(session, callout, callout.step_seq, now)
    return "declined"


async def progress(
    session: AsyncSession, callout: Callout, person: dict[str, Any], stage: Stage, *, now: datetime
) -> str:
    """En route, on scene, survivor contacted or declined, closed: only from the person who accepted."""
    if callout.status != CalloutStatus.accepted or not callout.accepted_by:
        return "not accepted" if callout.status in OPEN else "ended"
    if callout.accepted_by["recipient"] != person["recipient"]:
        return "taken"
    record_stage(session, callout.incident_id, stage, now, role=person["role"], advocate_id=person["advocate_id"])
    if stage in HANDOFFS:
        metrics.handoff(stage.value, callout.tier, callout.created_at, now)
    if stage == Stage.closed:
        callout.status, callout.end_reason = CalloutStatus.closed, "closed by the advocate"
    callout.updated_at = now
    if stage in NOTIFY_BACK:
        await queue_cad_notice(session, callout, stage, now=now, role=person["role"])
    return PROGRESS[stage]


async def finish_cancelling(
    session: AsyncSession, callout: Callout, *, now: datetime, settings: AlertsSettings
) -> None:
    """CAD ended the call (or it stopped being DV): stop alerting and tell whoever was alerted."""
    await cancel_alive(session, callout, now)
    await tell_everyone_alerted(
        session, callout, messages.cancelled_sms(callout.code), now=now, settings=settings, but=None
    )
    callout.status, callout.updated_at = CalloutStatus.cancelled, now
    log.info("callout.cancelled", callout_id=str(callout.id), reason=callout.end_reason)
