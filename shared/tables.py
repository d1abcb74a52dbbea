"""The tables more than one service touches: in one database, they are the contract between services.

Directory writes agencies; intake reads them to verify and triage, writes incidents and queues callouts;
alerts works the callouts; every service writes the incident's timeline.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.crypto import Sealed
from shared.db import Base

UTC_TIMESTAMP = TIMESTAMP(timezone=True)
# No 0/O, 1/I/L: codes are read aloud and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class Wake(StrEnum):
    """NOTIFY channels, one per kind of work of the alerts worker: a wake-up reaches only the loop it is for."""

    callouts = "callouts"  # a callout to route, escalate or cancel
    sends = "callout_sends"  # a text or call to send
    notices = "callout_notices"  # an event owed to a CAD
    phones = "callout_phones"  # a phone to prove or test (the directory set it)
    watch = "callout_watch"  # a phone that cannot be reached: its advocate's supervisors are told


def new_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


class Tier(StrEnum):
    immediate = "immediate"
    priority = "priority"
    follow_up = "follow_up"
    none = "none"


class Stage(StrEnum):
    """The handoff, stage by stage (docs/product.md); every one is a timeline row."""

    cad_received = "cad_received"
    triaged = "triaged"
    advocate_matched = "advocate_matched"
    notification_sent = "notification_sent"
    notification_delivered = "notification_delivered"
    notification_failed = "notification_failed"
    acknowledged = "acknowledged"
    declined = "declined"
    escalated = "escalated"
    en_route = "en_route"
    on_scene = "on_scene"
    survivor_contacted = "survivor_contacted"
    contact_attempted = "contact_attempted"  # a masked call that did not reach the survivor (busy, no answer...)
    survivor_declined = "survivor_declined"
    closed = "closed"


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Whoever holds it can post the agency's calls, and forge its notices' signatures: sealed like personal data.
    webhook_secret: Mapped[str] = mapped_column(Sealed)
    # The agency's own incident-type codes mapped to APCO codes ("10-16" -> "DVA"); keys are upper-cased.
    code_map: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    hotline: Mapped[str] = mapped_column(String(20))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Where to post signed events back to the dispatcher (accepted, en route, on scene); none: don't.
    notify_url: Mapped[str | None] = mapped_column(String(500))
    # The CAD feed is called silent after this long without an event or heartbeat (None: only when far longer
    # than its usual gap for the hour of the week); its supervisors are told, and this phone (IT) too if set.
    feed_silence_minutes: Mapped[int | None]
    it_contact: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class ReceivedEvent(Base):
    """One accepted CAD request. Holds no personal data: that lives, minimised, on the incident. Intake writes it;
    the feed watch (services/alerts/feeds.py) reads when each agency's feed last spoke."""

    __tablename__ = "cad_events"
    __table_args__ = (
        UniqueConstraint("agency_id", "webhook_id"),
        Index("ix_cad_events_agency_received", "agency_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    webhook_id: Mapped[str] = mapped_column(String(128))
    body_sha256: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    event_status: Mapped[str | None] = mapped_column(String(16))
    occurred_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    received_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    # The first answer, replayed verbatim to any repeat of the same webhook-id and body.
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class CadHeartbeat(Base):
    """The last signed heartbeat of an agency's CAD adapter: it is up, whether or not calls come."""

    __tablename__ = "cad_heartbeats"

    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class FeedSilence(Base):
    """An agency's CAD feed, found silent and told: kept until it speaks again (then they are told that too).
    The feed watch (services/alerts/feeds.py) writes it; the board and the dashboard show it."""

    __tablename__ = "feed_silences"

    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)  # its last sign of life
    reason: Mapped[str] = mapped_column(String(200))
    told_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("agency_id", "cad_incident_id"),
        Index("ix_incidents_premise", "agency_id", "premise_key", "created_at"),
        Index("ix_incidents_created_at", "created_at"),  # a report's period
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    ref: Mapped[str] = mapped_column(String(16), unique=True, default=lambda: f"INC-{new_code(8)}")
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    cad_incident_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    type_code: Mapped[str] = mapped_column(String(64))
    apco_code: Mapped[str | None] = mapped_column(String(16))
    tier: Mapped[Tier] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    interpreter_needed: Mapped[bool] = mapped_column(default=False)
    # Personal data (location, persons, screen answers) of the latest event: sealed at rest, never logged, never
    # texted.
    details: Mapped[dict[str, Any]] = mapped_column(Sealed)
    # The address as a key (shared/premises.py), and what was known there when the call came: flags' kinds and
    # sources, and how many other DV calls the address had in the year before.
    premise_key: Mapped[str | None] = mapped_column(String(64))
    premise: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    purged_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)  # personal data removed (retention)
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    updated_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class PremiseFlagKind(StrEnum):
    dv_history = "dv_history"
    firearm = "firearm"
    protection_order = "protection_order"
    prior_strangulation = "prior_strangulation"
    other = "other"


class PremiseFlag(Base):
    """Something known about an address, kept by its premise key only: the address itself is not stored, so a
    flag is found by someone who knows the address, never listed with it."""

    __tablename__ = "premise_flags"
    __table_args__ = (Index("ix_premise_flags_key", "agency_id", "premise_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    premise_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[PremiseFlagKind] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200))  # who says so: "court order 2026-114", "RMS"
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    expires_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)


class CalloutStatus(StrEnum):
    pending = "pending"  # queued: the worker has yet to find who is on call
    alerting = "alerting"  # a step of the escalation policy is out; due_at is when the next one starts
    exhausted = "exhausted"  # every step spent and the hotline alerted; any acceptance still counts
    accepted = "accepted"  # a human took it; progress follows
    cancelled = "cancelled"  # CAD ended the call (or it stopped being DV), and whoever was alerted was told
    closed = "closed"


OPEN = (CalloutStatus.pending, CalloutStatus.alerting, CalloutStatus.exhausted)
# The callouts a worker acts on when their due_at comes: to route, to start the next step, or to end (intake asked).
DUE_CALLOUTS = (
    "status IN ('pending', 'alerting') OR (end_requested_at IS NOT NULL AND status IN ('exhausted', 'accepted'))"
)


class Leased:
    """Work a worker has taken up while it waits on the outside world (the directory, Twilio, a CAD).
    `leased_by` is the worker's number, which it holds as a PostgreSQL session lock for as long as it lives
    (services/alerts/leases.py): work whose holder is gone is taken up by another worker within seconds. Only
    rows in flight carry a number, and only they are indexed (migration 0009), for the sweep of every second."""

    leased_by: Mapped[int | None]
    leased_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)


def leased_index(table: str) -> Index:
    return Index(f"ix_{table}_leased_by", "leased_by", postgresql_where=text("leased_by IS NOT NULL"))


class Callout(Leased, Base):
    """The durable work intake hands to alerts: one row, committed with the event that caused it.

    It carries its own escalation state, so that any worker can take it up after a crash: the roster and policy
    the directory gave, the step reached and when the next is due. Its state is written only by
    services/alerts/escalation.py, as services/alerts/callout.py decides; intake only asks for its end.
    """

    __tablename__ = "callouts"
    __table_args__ = (
        Index("ix_callouts_due", "due_at", postgresql_where=text(DUE_CALLOUTS)),
        leased_index("callouts"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    code: Mapped[str] = mapped_column(String(8), default=lambda: new_code(4))
    tier: Mapped[Tier] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[CalloutStatus] = mapped_column(String(16), default=CalloutStatus.pending)
    due_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    attempts: Mapped[int] = mapped_column(default=0)  # times a worker took it up
    # As the directory answered when the callout was routed: {"primary": [...], "backup": [...], ...,
    # "hotline": "+1..."} and {"steps": [...], "repeat": n}.
    roster: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    step: Mapped[int] = mapped_column(default=-1)  # index into policy steps; -1 before the first
    round: Mapped[int] = mapped_column(default=0)  # 0, then 1.. for each repeat of the steps
    step_seq: Mapped[int] = mapped_column(default=0)  # counts every step started; notifications carry it
    declined: Mapped[list[str]] = mapped_column(JSONB, default=list)  # recipients who said no
    accepted_by: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    accepted_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    end_reason: Mapped[str | None] = mapped_column(String(200))
    # Set by intake when CAD ends the call or it stops being DV: a worker ends the callout and tells who was alerted.
    end_requested_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    updated_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    agency: Mapped[Agency] = relationship(lazy="raise")

    def accepted_by_recipient(self, recipient: str) -> bool:
        """Whether `recipient` ("advocate:12", "hotline") is who accepted this callout."""
        return self.accepted_by is not None and self.accepted_by["recipient"] == recipient


class AdvocatePhone(Base):
    """An advocate's phone as proven, and their PIN: the directory sets the phone (and so asks for it to be
    proven), the alerts service texts a code, hears it back, and keeps the PIN chosen then. Until proven the
    advocate is still alerted — an alert is never dropped — but shown as unverified."""

    __tablename__ = "advocate_phones"

    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    check_due_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)  # a code to text, from then
    code_hmac: Mapped[str | None] = mapped_column(String(64))  # keyed: six digits would fall to a plain hash
    code_expires_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    pin_hash: Mapped[str | None] = mapped_column(String(200))  # argon2
    pin_token_hash: Mapped[str | None] = mapped_column(String(64))  # the link to choose a PIN, once proven
    pin_token_expires_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)


class Unreachable(Base):
    """A phone a channel cannot reach (opted out, invalid, landline): skipped for that channel, shown to
    supervisors (of every agency the phone is an advocate's in), until the directory changes the number or the
    advocate texts START. Shared: the alerts service finds it out, the directory shows it."""

    __tablename__ = "unreachable_contacts"
    __table_args__ = (UniqueConstraint("phone", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    advocate_id: Mapped[int | None]
    phone: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(8))
    code: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class ContactTest(Base):
    """A test text and a test call to an advocate's phone: asked for by a supervisor (the directory writes the
    request), carried out by the alerts service, which writes what became of each as the provider tells it."""

    __tablename__ = "contact_tests"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    requested_by: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)  # to send from then; None once queued
    text_id: Mapped[uuid.UUID | None]  # the notifications that carry it
    call_id: Mapped[uuid.UUID | None]
    # None until the provider's word: "sent", then "delivered" or "failed: ..."; a call's "answered" needs a key.
    text_result: Mapped[str | None] = mapped_column(String(100))
    call_result: Mapped[str | None] = mapped_column(String(100))
    text_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    call_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)


class TimelineEntry(Base):
    """One stage of one incident. `data` holds reasons and ids, never personal data."""

    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    stage: Mapped[Stage] = mapped_column(String(32))
    observed_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    source_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


def stage_row(
    incident_id: uuid.UUID, stage: Stage, at: datetime, *, source_at: datetime | None = None, **data: Any
) -> dict[str, Any]:
    """A timeline row, as values to insert."""
    return {"incident_id": incident_id, "stage": stage, "observed_at": at, "source_at": source_at, "data": data}


def record_stage(
    session: AsyncSession,
    incident_id: uuid.UUID,
    stage: Stage,
    at: datetime,
    *,
    source_at: datetime | None = None,
    **data: Any,
) -> None:
    session.add(TimelineEntry(**stage_row(incident_id, stage, at, source_at=source_at, **data)))


async def wake_alerts(session: AsyncSession | AsyncConnection, wake: Wake = Wake.callouts) -> None:
    """Wake the alerts workers' loop for `wake` when this transaction commits (NOTIFY is delivered on commit)."""
    await session.execute(text(f"NOTIFY {wake.value}"))


class CoverStatus(StrEnum):
    open = "open"  # offered, nobody has taken it yet
    filled = "filled"  # taken: an override puts the taker on call in the asker's place
    withdrawn = "withdrawn"  # the asker took the shift back before anyone took it


class CoverOffer(TypedDict):
    """One advocate a cover request asks, as its JSON column keeps them."""

    advocate_id: int
    key: str
    phone: str


class CoverRequest(Base):
    """An advocate who cannot take a shift asks for cover. The directory decides who may take it (`offers`, when
    asked) and who did (the first, under this row's lock); the alerts service texts the offers when
    `offers_due_at` comes and what came of it when `outcome_due_at` comes. Holds advocates' ids, keys and phones
    (as a callout's roster does), never anything about a call."""

    __tablename__ = "cover_requests"
    __table_args__ = (
        Index("ix_cover_requests_agency_ends", "agency_id", "ends_at"),
        Index(
            "ix_cover_requests_due",
            "offers_due_at",
            "outcome_due_at",
            postgresql_where=text("offers_due_at IS NOT NULL OR outcome_due_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    area: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"))  # who asks
    starts_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    ends_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    status: Mapped[CoverStatus] = mapped_column(String(16), default=CoverStatus.open)
    asked_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    asked_via: Mapped[str] = mapped_column(String(16))  # "page", or "COVER text" (a page opened from its reply)
    filled_by: Mapped[int | None] = mapped_column(ForeignKey("advocates.id", ondelete="SET NULL"))
    filled_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    override_id: Mapped[int | None] = mapped_column(ForeignKey("overrides.id", ondelete="SET NULL"))
    offers: Mapped[list[CoverOffer]] = mapped_column(JSONB, default=list)  # who may take it, found when asked
    offers_due_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)  # the offers to text, from then
    outcome_due_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)  # taken or withdrawn: to tell, from then


class CoverLink(Base):
    """The secret address of an advocate's own cover page (`/c/{token}`, served by the directory), texted by the
    alerts service in an offer or in answer to COVER; only its hash is kept."""

    __tablename__ = "cover_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sent_as: Mapped[str] = mapped_column(String(8))  # "reply" (to a COVER text) or "offer"
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    expires_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
