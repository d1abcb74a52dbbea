"""The directory's tables: coverage areas, advocates and the weekly on-call schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base
from shared.tables import UTC_TIMESTAMP

MINUTES_PER_WEEK = 7 * 24 * 60

advocate_areas = Table(
    "advocate_areas",
    Base.metadata,
    Column("advocate_id", ForeignKey("advocates.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
)


class Area(Base):
    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("agency_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class Advocate(Base):
    __tablename__ = "advocates"
    __table_args__ = (UniqueConstraint("agency_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))  # the program's own handle for the person ("dana")
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(35)))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    areas: Mapped[list[Area]] = relationship(secondary=advocate_areas, lazy="raise")


class Shift(Base):
    """One weekly on-call slot for an area, in the agency's time zone; it may wrap past Sunday midnight."""

    __tablename__ = "shifts"
    __table_args__ = (
        CheckConstraint(f"start_minute >= 0 AND start_minute < {MINUTES_PER_WEEK}", name="start_in_week"),
        CheckConstraint(f"minutes > 0 AND minutes <= {MINUTES_PER_WEEK}", name="length_in_week"),
        CheckConstraint("role IN ('primary', 'backup', 'supervisor')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    start_minute: Mapped[int]  # minutes since Monday 00:00
    minutes: Mapped[int]


class EscalationPolicy(Base):
    """How a tier escalates for an agency, or for one of its areas (which then wins)."""

    __tablename__ = "escalation_policies"
    __table_args__ = (UniqueConstraint("agency_id", "area_id", "tier", postgresql_nulls_not_distinct=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    tier: Mapped[str] = mapped_column(String(16))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    repeat: Mapped[int]
