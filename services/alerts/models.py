"""The alerts service's own table: every message it sends, queued, retried and tracked to delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.tables import UTC_TIMESTAMP


class NotificationStatus(StrEnum):
    pending = "pending"  # due to be sent at due_at (first try, or a retry after a provider fault)
    sent = "sent"  # the provider accepted it
    delivered = "delivered"
    failed = "failed"  # will not arrive: the callout has moved on


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "due_at", postgresql_where=text("status = 'pending'")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    callout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("callouts.id"), index=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"))
    position: Mapped[int]  # which entry of the callout's chain this alerts
    role: Mapped[str] = mapped_column(String(16))  # primary, backup, hotline
    advocate_id: Mapped[int | None]
    channel: Mapped[str] = mapped_column(String(8))
    to: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(String(1600))
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    status: Mapped[NotificationStatus] = mapped_column(String(16), default=NotificationStatus.pending)
    due_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    sent_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    updated_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
