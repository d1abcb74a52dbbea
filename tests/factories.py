"""Building a program and its CAD events through the public API, as an operator and a CAD would."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.models import Notification
from shared import webhooks
from shared.auth import TOKEN_LIFE, Role, issue_token
from shared.db import Database
from shared.tables import Agency, Callout, Incident, ReceivedEvent, TimelineEntry

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test agency's fixed secret
HOTLINE = "+12025550100"
PHONES = {"dana": "+12025550101", "luis": "+12025550102", "mei": "+12025550103", "ada": "+12025550104"}


async def make_program(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    agency: str = "metro",
    secret: str = SECRET,
    notify_url: str | None = None,
    timezone: str = "UTC",
    shifts: list[dict[str, Any]] | None = None,
    advocates: dict[str, list[str]] | None = None,
) -> None:
    """An agency with area 1 and advocates on call around the clock: dana and luis primary, mei backup,
    ada the supervisor."""
    advocates = advocates or {"dana": ["en"], "luis": ["es", "en"], "mei": ["zh", "en"], "ada": ["en"]}
    if shifts is None:
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        roles = {"dana": "primary", "luis": "primary", "mei": "backup", "ada": "supervisor"}
        shifts = [{"advocate": k, "role": roles.get(k, "backup"), "day": d} for d in days for k in advocates]
    puts = [
        (
            f"/v1/directory/agencies/{agency}",
            {
                "name": f"{agency} 911",
                "hotline": HOTLINE,
                "webhook_secret": secret,
                "notify_url": notify_url,
                "timezone": timezone,
                "code_map": {"DVA": "DVA", "DVNA": "DVNA", "10-16": "DVA"},
            },
        ),
        (f"/v1/directory/agencies/{agency}/areas/1", {"name": "Downtown"}),
        *[
            (
                f"/v1/directory/agencies/{agency}/advocates/{key}",
                {"name": key.title(), "phone": PHONES[key], "languages": langs, "areas": ["1"]},
            )
            for key, langs in advocates.items()
        ],
        (f"/v1/directory/agencies/{agency}/areas/1/schedule", {"shifts": shifts}),
    ]
    for path, body in puts:
        response = await client.put(path, json=body, headers=admin)
        assert response.status_code < 300, (path, response.text)


def dv_event(**overrides: Any) -> dict[str, Any]:
    """A DV call that screens in (LAP q1 weapon): tier immediate, victim speaking Spanish."""
    event: dict[str, Any] = {
        "incident_id": f"CAD-{uuid.uuid4().hex[:10]}",
        "status": "new",
        "occurred_at": "2026-11-16T11:58:00-05:00",
        "type_code": "10-16",
        "area": "1",
        "location": {"address": "1234 Ziggurat Lane", "unit": "Apt 9", "city": "Springfield", "postal_code": "62704"},
        "persons": [
            {
                "role": "victim",
                "language": "es",
                "consents_to_contact": True,
                "safe_contact": {
                    "phone": "+12025557777",
                    "window": "weekday mornings",
                    "notes": "use the name Quetzal",
                },
            },
            {"role": "suspect"},
        ],
        "screen": {"instrument": "LAP", "version": "1", "answers": {"q1": "yes", "q2": "not_answered"}},
        "cautions": ["FIREARM"],
    }
    event.update(overrides)
    return event


def signed(
    body: bytes, *, secret: str = SECRET, webhook_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    return webhooks.signed_headers(secret, webhook_id or f"msg_{uuid.uuid4().hex}", at or datetime.now(UTC), body)


async def post_event(
    client: httpx.AsyncClient, event: dict[str, Any], *, agency: str = "metro", **signing: Any
) -> httpx.Response:
    body = json.dumps(event).encode()
    return await client.post(f"/v1/cad/{agency}/events", content=body, headers=signed(body, **signing))


async def count_rows(database_url: str) -> dict[str, int]:
    """How many rows each table an event could touch holds: the proof that a refusal changed nothing."""
    database = Database.connect(database_url, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            return {
                model.__tablename__: await _count(session, model)
                for model in (ReceivedEvent, Incident, Callout, TimelineEntry, Notification)
            }
    finally:
        await database.close()


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def issued_token(
    database: Database,
    *,
    role: Role,
    label: str,
    now: datetime,
    agency: str | None = None,
    life: timedelta = TOKEN_LIFE,
) -> str:
    """A token issued to a person, as `callout token create` issues one."""
    async with database.sessionmaker.begin() as session:
        agency_id = await session.scalar(select(Agency.id).where(Agency.slug == agency)) if agency else None
        return await issue_token(session, role=role, label=label, agency_id=agency_id, now=now, life=life)
