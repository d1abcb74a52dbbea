"""Leases that die with their worker.

Each worker takes a number and holds it as a PostgreSQL session-level advisory lock on its listening connection,
for as long as it lives. Work it takes up while it waits on the outside world (a directory answer, a Twilio
create, a CAD post) is marked with that number. When the worker dies — SIGKILL, OOM, a lost connection — the
server ends its session and the lock with it, at once: any other worker's sweep then sees work whose holder is gone
and makes it due now. A worker that is alive keeps its work however slow the provider is; the lease's own expiry
(CALLOUT_WORKER_LEASE_SECONDS) is only the backstop.

Why a session lock rather than a heartbeat: the server itself knows when a session ends, so there is no beat to
tune against the cost of writing it, nor a window in which a dead worker still looks alive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.tables import Wake

LOCK_SPACE = 0x434C  # the first key of every worker's lock, pg_advisory_lock(LOCK_SPACE, number)

# The tables whose pending rows are leased, and the loop each one wakes.
LEASED = {"callouts": Wake.callouts, "notifications": Wake.sends, "cad_notices": Wake.notices}

# The numbers that hold leases now and whose worker is gone: its lock can be taken (for this transaction only).
# Asked number by number, never by reading pg_locks, which stops every backend's locking while it is read.
DEAD_HOLDERS = f"""
WITH holders AS MATERIALIZED (
    {" UNION ".join(f"SELECT leased_by FROM {t} WHERE leased_by IS NOT NULL AND status = 'pending'" for t in LEASED)}
)
SELECT leased_by FROM holders WHERE pg_try_advisory_xact_lock({LOCK_SPACE}, leased_by)
"""  # noqa: S608 - names from constants


async def hold(conn: asyncpg.Connection) -> int:
    """Take a new number and hold it on `conn` for as long as the connection lives.

    Always a new one, also after a lost connection: what the worker had leased before may have been abandoned
    (a database restart fails the transactions that would have recorded it), and under a new number it is
    taken up at once instead of waiting out its lease."""
    while True:
        number = int(await conn.fetchval("SELECT nextval('worker_numbers')"))
        if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_SPACE, number):
            return number
        # held by another worker (the sequence went round): take the next


async def dead_holders(session: AsyncSession) -> list[int]:
    return list(await session.scalars(text(DEAD_HOLDERS)))


async def release_orphans(session: AsyncSession, now: datetime) -> int:
    """Make the work of dead workers due now, and wake the loops it belongs to. Returns how many rows."""
    dead = await dead_holders(session)
    if not dead:
        return 0
    released = 0
    for table, wake in LEASED.items():
        rows = await session.execute(
            text(
                f"UPDATE {table} SET due_at = :now, leased_by = NULL"  # noqa: S608 - names from constants
                " WHERE status = 'pending' AND leased_by = ANY(:dead) RETURNING 1"
            ),
            {"now": now, "dead": dead},
        )
        if count := len(rows.all()):
            released += count
            await session.execute(text(f"NOTIFY {wake.value}"))
    return released


async def unheld(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many rows of work no live worker holds, and since when the oldest was leased (for /readyz)."""
    dead = await dead_holders(session)
    if not dead:
        return 0, None
    count, oldest = 0, None
    for table in LEASED:
        row: Any = (
            await session.execute(
                text(
                    f"SELECT count(*), min(leased_at) FROM {table}"  # noqa: S608 - names from constants
                    " WHERE status = 'pending' AND leased_by = ANY(:dead)"
                ),
                {"dead": dead},
            )
        ).one()
        count += row[0]
        if row[1] is not None and (oldest is None or row[1] < oldest):
            oldest = row[1]
    return count, oldest
