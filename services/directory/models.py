"""The directory's tables: coverage areas, advocates, and who is on call when — a weekly schedule, rotations,
the program's own calendars, and overrides over all of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base
from shared.tables import UTC_TIMESTAMP

MINUTES_PER_WEEK = 7 * 24 * 60
ROLES_CHECK = "role IN ('primary', 'backup', 'supervisor')"

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
    # The secret in the advocate's calendar feed address, kept as its hash; none until one is issued.
    feed_token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    areas: Mapped[list[Area]] = relationship(secondary=advocate_areas, lazy="raise")


class Shift(Base):
    """One weekly on-call slot for an area, in the agency's time zone; it may wrap past Sunday midnight."""

    __tablename__ = "shifts"
    __table_args__ = (
        CheckConstraint(f"start_minute >= 0 AND start_minute < {MINUTES_PER_WEEK}", name="start_in_week"),
        CheckConstraint(f"minutes > 0 AND minutes <= {MINUTES_PER_WEEK}", name="length_in_week"),
        CheckConstraint(ROLES_CHECK, name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    start_minute: Mapped[int]  # minutes since Monday 00:00
    minutes: Mapped[int]


class Rotation(Base):
    """People taking turns in one role for an area, each for `length` hours, days or weeks from a handoff.
    Days and weeks hand off at the same wall-clock time in `timezone`, across daylight-saving changes; hours
    are hours of elapsed time."""

    __tablename__ = "rotations"
    __table_args__ = (
        UniqueConstraint("area_id", "name"),
        CheckConstraint(ROLES_CHECK, name="role"),
        CheckConstraint("unit IN ('hours', 'days', 'weeks')", name="unit"),
        CheckConstraint("length > 0", name="length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(8))
    length: Mapped[int]
    handoff: Mapped[datetime] = mapped_column(DateTime(timezone=False))  # a first handoff, local wall time
    timezone: Mapped[str] = mapped_column(String(64))
    participants: Mapped[list[int]] = mapped_column(ARRAY(Integer))  # advocate ids, in turn order


class Calendar(Base):
    """A program's own on-call calendar (RFC 5545), kept as imported and read at the moment asked: each event
    then puts the advocates it names in `role` for the area."""

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("area_id", "name"), CheckConstraint(ROLES_CHECK, name="role"))

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    ics: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


class Override(Base):
    """For a time range, an advocate takes a role in an area: covering for one person (`replaces`), or added to
    whoever the schedule has."""

    __tablename__ = "overrides"
    __table_args__ = (CheckConstraint(ROLES_CHECK, name="role"), CheckConstraint("ends_at > starts_at", name="range"))

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    advocate_id: Mapped[int] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("advocates.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    ends_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


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
