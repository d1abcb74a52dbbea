"""Intake's own table: the inbox of CAD events, keyed by webhook-id for idempotency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.tables import UTC_TIMESTAMP


class ReceivedEvent(Base):
    """One accepted CAD request. Holds no personal data: that lives, minimised, on the incident."""

    __tablename__ = "cad_events"
    __table_args__ = (UniqueConstraint("agency_id", "webhook_id"),)

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
