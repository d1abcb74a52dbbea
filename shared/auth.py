"""Bearer tokens: the bootstrap admin token from settings, and issued tokens stored only as hashes, each with an
expiry and a revoked mark. A principal says who acts (the token, and the label naming whom it was issued to) and
from where (the client's address and user agent), for the audit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, SessionDep
from shared.problems import Forbidden, Unauthorized
from shared.tables import UTC_TIMESTAMP

TOKEN_LIFE = timedelta(days=365)  # an issued token's, unless `callout token create --days` says otherwise
# The bootstrap admin token is one secret shared by whoever holds the deployment's settings: it names no person.
BOOTSTRAP_LABEL = "bootstrap admin token (shared, names no person)"
USER_AGENT_LENGTH = 300
CLIENT_LENGTH = 64  # an IPv6 address is at most 45


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(String(16))
    # A supervisor sees one agency; an issued admin token sees all (agency_id is NULL).
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    expires_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    # Kept, not deleted: the audit names tokens by id, and a revoked token's row says whose it was.
    revoked_at: Mapped[datetime | None] = mapped_column(UTC_TIMESTAMP)

    def refusal(self, now: datetime) -> str | None:
        """Why this token may not act now, or None."""
        if self.revoked_at is not None:
            return "token revoked"
        if self.expires_at <= now:
            return "token expired"
        return None


@dataclass(frozen=True)
class Principal:
    role: Role
    agency_id: int | None = None
    token_id: int | None = None  # None: the bootstrap admin token
    label: str | None = None  # whom the token was issued to
    # From where, for the audit: the client's address as uvicorn gives it (FORWARDED_ALLOW_IPS decides whose
    # X-Forwarded-For it believes) and the user agent it sent.
    client: str | None = None
    user_agent: str | None = None

    def may_see_agency(self, agency_id: int) -> bool:
        return self.role is Role.admin or self.agency_id == agency_id

    @property
    def bootstrap(self) -> bool:
        return self.token_id is None


def client_address(request: Request) -> str | None:
    return request.client.host[:CLIENT_LENGTH] if request.client else None


def user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent", "")[:USER_AGENT_LENGTH] or None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    session: AsyncSession,
    *,
    role: Role,
    label: str,
    agency_id: int | None,
    now: datetime,
    life: timedelta = TOKEN_LIFE,
) -> str:
    """Returns the token once; only its hash is kept."""
    token = "co_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=hash_token(token),
            role=role,
            agency_id=agency_id,
            label=label,
            created_at=now,
            expires_at=now + life,
        )
    )
    await session.flush()
    return token


class TokenRefused(Exception):
    """A token that may not act: unknown, revoked or expired. `principal` is whose it is, when it names anyone."""

    def __init__(self, reason: str, principal: Principal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.principal = principal


_bearer = HTTPBearer(auto_error=False, description="An admin or supervisor token.")


async def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("A bearer token is required.")
    try:
        return await principal_for(request, session, credentials.credentials)
    except TokenRefused as refused:
        messages = {"token revoked": "The bearer token was revoked.", "token expired": "The bearer token expired."}
        raise Unauthorized(messages.get(refused.reason, "The bearer token is not valid.")) from None


async def principal_for(request: Request, session: AsyncSession, token: str) -> Principal:
    """Whose token this is: the bootstrap admin's, or an issued one still in force. Else TokenRefused."""
    if hmac.compare_digest(token.encode(), request.app.state.settings.admin_token.encode()):
        return Principal(
            Role.admin, label=BOOTSTRAP_LABEL, client=client_address(request), user_agent=user_agent(request)
        )
    issued = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if issued is None:
        raise TokenRefused("unknown token")
    if refusal := issued.refusal(request.app.state.clock.now()):
        raise TokenRefused(refusal, principal_of(issued, request))
    return principal_of(issued, request)


def principal_of(token: ApiToken, request: Request) -> Principal:
    return Principal(
        Role(token.role),
        token.agency_id,
        token_id=token.id,
        label=token.label,
        client=client_address(request),
        user_agent=user_agent(request),
    )


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.role is not Role.admin:
        raise Forbidden("This needs an admin token.")
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
AdminDep = Annotated[Principal, Depends(require_admin)]
