"""What every phase of the bench shares: a fresh database, the production environment Callout runs in, the
load's event, a percentile."""

from __future__ import annotations

import os
import random
import statistics
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import make_url

from callout import embedded
from shared.db import libpq_url
from tests.factories import dv_event
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio

ADMIN = "bench-admin-token-0123456789abcdef"
DATA_KEY = "bench-data-key-0123456789abcdef0123456789"


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    server = (
        os.environ.get("CALLOUT_BENCH_DATABASE_URL")
        or os.environ.get("CALLOUT_TEST_DATABASE_URL")
        or embedded.start(Path(".callout/bench"))
    )
    name = f"callout_bench_{uuid.uuid4().hex[:8]}"
    await admin_sql(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:  # a connection of its own: the server may have been restarted meanwhile (an operator's drill)
        await admin_sql(server, f'DROP DATABASE "{name}" WITH (FORCE)')


async def admin_sql(server: str, statement: str) -> None:
    admin = await asyncpg.connect(libpq_url(server))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def production_env(database_url: str, twilio: FakeTwilio, public_url: str) -> dict[str, str]:
    """The environment an operator gives Callout in production: its database, its secrets, and Twilio (here the
    fake, reached through CALLOUT_TWILIO_API_BASE)."""
    return {
        **os.environ,
        "CALLOUT_ENVIRONMENT": "production",
        "CALLOUT_DATABASE_URL": database_url,
        "CALLOUT_ADMIN_TOKEN": ADMIN,
        "CALLOUT_DATA_KEY": DATA_KEY,
        "CALLOUT_PUBLIC_URL": public_url,
        "CALLOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLOUT_TWILIO_FROM": FROM,
        "CALLOUT_TWILIO_API_BASE": twilio.base_url,
    }


def priority_event(**overrides: Any) -> dict[str, Any]:
    """The commonest screened-in call: the priority tier, whose first alert is one text. Each at an address of
    its own, as calls are: one address called from a thousand times is another test (premise signals)."""
    location = {"address": f"{random.randrange(1, 99999)} Ziggurat Lane", "city": "Springfield", "state": "IL"}  # noqa: S311
    return dv_event(screen={"instrument": "LAP", "answers": {"q3": "yes"}}, cautions=[], location=location, **overrides)
