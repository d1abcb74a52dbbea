"""The alerts service's own tables: every message and call, the contacts that cannot be reached, and the events
owed back to each dispatch centre."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import Sealed
from shared.db import Base
from shared.tables import UTC_TIMESTAMP, Leased, leased_index


class NotificationStatus(StrEnum):
    pending = "pending"  # due at due_at (a first try, or a retry after a provider fault)
    sent = "sent"  # the provider took it: a text on its way, a phone ringing
    delivered = "delivered"  # the text reached the phone
    answered = "answered"  # the call was answered and a key pressed
    failed = "failed"  # will not reach the person: the step moves on without waiting
    cancelled = "cancelled"  # no longer needed (someone accepted, the call ended)


ALIVE = (NotificationStatus.pending, NotificationStatus.sent, NotificationStatus.delivered)


class Notification(Leased, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "due_at", postgresql_where=text("status = 'pending'")),
        Index("ix_notifications_to", "to", "created_at"),
        leased_index("notifications"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # None for a text that belongs to no callout: a phone's verification code.
    callout_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("callouts.id"), index=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incidents.id"))
    # alert: asks for an answer; info: tells (taken, cancelled); link: the acceptor's own link; bridge: a masked
    # call; verify: a phone's code
    kind: Mapped[str] = mapped_column(String(8))
    step_seq: Mapped[int | None]  # the escalation step an alert belongs to
    recipient: Mapped[str] = mapped_column(String(32))  # "advocate:12" or "hotline"
    role: Mapped[str] = mapped_column(String(16))  # primary, backup, supervisor, hotline
    advocate_id: Mapped[int | None]
    channel: Mapped[str] = mapped_column(String(8))  # sms or voice
    to: Mapped[str] = mapped_column(String(20))
    # The text (its link's token included), or what the call says: sealed, so that no working link lies in the
    # database, or in a backup of it, without the data key.
    body: Mapped[str] = mapped_column(Sealed)
    link_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    # The link's second factor: wrong PINs tried (five lock it), and the browser that gave the right one
    # (a cookie's hash) and until when it may see the details.
    pin_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    link_locked_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    viewer_hash: Mapped[str | None] = mapped_column(String(64))
    viewer_expires_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    status: Mapped[NotificationStatus] = mapped_column(String(16), default=NotificationStatus.pending)
    due_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    attempts: Mapped[int] = mapped_column(default=0)
    # When the first attempt was handed to the provider: a lookup of a lost outcome searches from here.
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    # Set while an attempt is in flight: found set by a later worker, the outcome is unknown and is reconciled.
    started_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    # Provider faults are retried until then (the end of the alert's step); None: until it goes (the hotline's).
    retry_until: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    sent_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    updated_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class CadNotice(Leased, Base):
    """An event owed to the agency's dispatchers (accepted, en route, on scene), posted signed until delivered,
    in order per incident."""

    __tablename__ = "cad_notices"
    __table_args__ = (
        Index("ix_cad_notices_due", "due_at", postgresql_where=text("status = 'pending'")),
        leased_index("cad_notices"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    delivered_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)


class KnownRoster(Base):
    """The directory's last answer for an area, language and tier: what the worker routes by while the directory
    cannot be reached. It holds phones, as callouts' rosters do; one row per question, replaced on each answer."""

    __tablename__ = "known_rosters"
    __table_args__ = (UniqueConstraint("agency_id", "area", "language", "tier", postgresql_nulls_not_distinct=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    area: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    tier: Mapped[str] = mapped_column(String(16))
    answer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    fetched_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class ProviderEvent(Base):
    """A request Twilio made of us — an inbound text, a key press, a status callback — applied once: keyed by
    Twilio's own id for it, with the answer it got. A repeat (Twilio retrying, or a captured request replayed)
    gets the same answer and changes nothing."""

    __tablename__ = "provider_events"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # "sms:SM…", "gather:CA…", "status:SM…:delivered"
    received_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    status_code: Mapped[int | None]
    media_type: Mapped[str | None] = mapped_column(String(64))
    # The TwiML answer: sealed, since one (a proven phone's) holds the link to choose a PIN.
    response: Mapped[str | None] = mapped_column(Sealed)


class StaffNotice(Base):
    """A text to an agency's supervisors about its people (an unproven phone on call tomorrow, an advocate who
    texted STOP), kept by what it is about so that each is sent once however often the watch looks."""

    __tablename__ = "staff_notices"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "unverified:12:area 1:primary:2026-12-02T…"
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
