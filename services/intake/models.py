"""Intake's own table: the inbox of CAD events, keyed by webhook-id for idempotency."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import Sealed
from shared.db import Base
from shared.tables import UTC_TIMESTAMP


class Assessment(Base):
    """One danger screen as given for an incident: the instrument, every answer ("not_answered" kept distinct
    from "no"), the rule Callout applied and its version, the result — and a person's override with its reason.
    Answers and the override's words are personal data: sealed at rest, never logged, never texted."""

    __tablename__ = "assessments"
    __table_args__ = (UniqueConstraint("incident_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"))  # indexed by the unique key
    instrument: Mapped[str] = mapped_column(String(64))  # LAP, DA, DASH, or a program's own
    instrument_version: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))  # how Callout read it: LAP-classic, LAP-2.0, DA-...
    rule_version: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, str]] = mapped_column(Sealed)
    officer_belief: Mapped[bool | None]
    level: Mapped[str | None] = mapped_column(String(64))
    screened_in: Mapped[bool]
    reasons: Mapped[list[str]] = mapped_column(JSONB)
    fingerprint: Mapped[str] = mapped_column(String(64))  # the same screen sent again is not a new assessment
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    override_screened_in: Mapped[bool | None]
    override_by: Mapped[str | None] = mapped_column(String(16))  # officer | advocate
    override_name: Mapped[str | None] = mapped_column(Sealed)
    override_reason: Mapped[str | None] = mapped_column(Sealed)
    overridden_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
