"""The reports' own table: per incident, what its timeline says of the handoff, so that a year's figures read one
narrow row per call rather than every stage of it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Computed, ForeignKey, false, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.tables import UTC_TIMESTAMP


def microseconds_after(column: str) -> Computed:
    return Computed(f"((EXTRACT(epoch FROM ({column} - received_at)) * (1000000)::numeric))::bigint", persisted=True)


class Handoff(Base):
    """One incident's handoff facts, written only by the database: a row is made with its incident, and every
    timeline row recorded updates it (triggers of migration 0012), whichever service writes it and however —
    so no writer can forget, and a transaction that rolls back takes its facts with it.

    Each `*_entry` is the id of the first timeline row of that stage and `*_at` its time: "first" is in the
    timeline's own order (its ids), as the figures have always read it, even when transactions commit out of
    order. `received_at` is the first `cad_received`'s time, or the incident's creation until one comes. Each
    interval is kept in whole microseconds from it (`*_us`, computed by PostgreSQL as the row is written), so that
    a year of them is compared and sorted as plain integers. Counts and flags cover every row."""

    __tablename__ = "incident_handoffs"

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    received_entry: Mapped[int | None]  # cad_received
    received_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    first_alert_entry: Mapped[int | None]  # notification_sent
    first_alert_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    first_alert_us: Mapped[int | None] = mapped_column(BigInteger, microseconds_after("first_alert_at"))
    acceptance_entry: Mapped[int | None]  # acknowledged, and who
    acceptance_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    acceptance_us: Mapped[int | None] = mapped_column(BigInteger, microseconds_after("acceptance_at"))
    accepted_by_hotline: Mapped[bool] = mapped_column(server_default=false())
    accepted_advocate_id: Mapped[int | None]
    on_scene_entry: Mapped[int | None]
    on_scene_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    on_scene_us: Mapped[int | None] = mapped_column(BigInteger, microseconds_after("on_scene_at"))
    survivor_contact_entry: Mapped[int | None]  # survivor_contacted
    survivor_contact_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)
    survivor_contact_us: Mapped[int | None] = mapped_column(BigInteger, microseconds_after("survivor_contact_at"))
    escalations: Mapped[int] = mapped_column(server_default=text("0"))
    declines: Mapped[int] = mapped_column(server_default=text("0"))
    screened: Mapped[bool] = mapped_column(server_default=false())  # a triage said whether the screen screened in
    screened_in: Mapped[bool] = mapped_column(server_default=false())
