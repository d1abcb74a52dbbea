"""The audit trail: every view of personal data, every admin change and every dashboard sign-in, appended with
who (the token, and the label naming whom it was issued to, or the advocate), from where (the client's address
and user agent), what and when, in the transaction that did it. Each record carries the hash of the one before
it, so that `callout audit verify` finds any record altered or removed (all but the newest: keep the head hash it
prints somewhere else)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import BigInteger, String, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import CLIENT_LENGTH, USER_AGENT_LENGTH, Principal, PrincipalDep, client_address, user_agent
from shared.db import Base, SessionDep
from shared.tables import UTC_TIMESTAMP

AUDIT_LOCK_ID = 7_317_001  # appends one at a time, so that each links to the one before
GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who acted, as the audit names them, and from where."""

    name: str  # admin:bootstrap, admin:token-<id>, supervisor:token-<id>, advocate:<id>, cli, unknown
    label: str | None = None  # whom the token was issued to
    client: str | None = None  # the client's address, as uvicorn gives it
    user_agent: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(actor_of(principal), principal.label, principal.client, principal.user_agent)

    @classmethod
    def at(cls, name: str, request: Request, label: str | None = None) -> Actor:
        """Someone who has no principal (an advocate's link, a sign-in refused), seen in this request."""
        return cls(name, label, client_address(request), user_agent(request))


class AuditRecord(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    actor: Mapped[str] = mapped_column(String(200))  # see Actor.name
    action: Mapped[str] = mapped_column(String(16))  # view | change | export | sign-in | sign-in-failed | sign-out
    subject: Mapped[str] = mapped_column(String(300))  # what: a route and its ids, never personal data
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    actor_label: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(CLIENT_LENGTH))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH))


def digest(prev_hash: str, seq: int, at: datetime, who: Actor, action: str, subject: str, detail: Any) -> str:
    fields = [prev_hash, seq, at.isoformat(), who.name, action, subject, detail]
    # The label, address and user agent came later: a record without them (every older one) hashes as before,
    # and one with them cannot lose them unseen.
    if (who.label, who.client, who.user_agent) != (None, None, None):
        fields.append({"actor_label": who.label, "client": who.client, "user_agent": who.user_agent})
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def record(
    session: AsyncSession, *, actor: str | Principal | Actor, action: str, subject: str, at: datetime, **detail: Any
) -> int:
    """Append a record in the caller's transaction: it stands or falls with what it records. The actor is a token's
    principal (who and from where), an Actor, or a bare name ("cli"). Returns the record's number."""
    who = Actor.of(actor) if isinstance(actor, Principal) else Actor(actor) if isinstance(actor, str) else actor
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": AUDIT_LOCK_ID})
    last = (await session.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()))).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = at.astimezone(UTC)  # as it reads back: the digest must come out the same
    session.add(
        AuditRecord(
            seq=seq,
            at=at,
            actor=who.name,
            action=action,
            subject=subject,
            detail=detail,
            prev_hash=prev,
            hash=digest(prev, seq, at, who, action, subject, detail),
            actor_label=who.label,
            client=who.client,
            user_agent=who.user_agent,
        )
    )
    await session.flush()
    return seq


def actor_of(principal: Principal) -> str:
    """The token that acted: its id (`callout token list` shows whose it is), or the bootstrap admin token."""
    role = principal.role.value
    return f"{role}:bootstrap" if principal.bootstrap else f"{role}:token-{principal.token_id}"


async def verify(session: AsyncSession) -> tuple[int, list[str]]:
    """How many records there are, and every break in the chain."""
    problems, prev, expected_seq, count = [], GENESIS, 1, 0
    for r in await session.scalars(select(AuditRecord).order_by(AuditRecord.seq)):
        count += 1
        if r.seq != expected_seq:
            problems.append(f"records {expected_seq} to {r.seq - 1} are missing")
        if r.prev_hash != prev:
            problems.append(f"record {r.seq} does not follow the one before it")
        who = Actor(r.actor, r.actor_label, r.client, r.user_agent)
        if digest(r.prev_hash, r.seq, r.at, who, r.action, r.subject, r.detail) != r.hash:
            problems.append(f"record {r.seq} was altered")
        prev, expected_seq = r.hash, r.seq + 1
    return count, problems


async def audit_change(request: Request, session: SessionDep, principal: PrincipalDep) -> AsyncIterator[None]:
    """For admin routes: a change is recorded with the request that made it (the route, its path values), after
    the route has made it and before it is committed — the audit's lock is taken last, as everywhere, so that a
    change holding rows while it waits for the audit never waits on one holding the audit while it waits for those
    rows. A route that fails records nothing: its change is rolled back."""
    yield
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    route = getattr(request.scope.get("route"), "path", request.url.path)
    await record(
        session,
        actor=principal,
        action="change",
        subject=f"{request.method} {route}",
        at=request.app.state.clock.now(),
        **{k: str(v) for k, v in request.path_params.items() if k != "token"},
    )
