"""Bearer tokens: the bootstrap admin token from settings, and issued tokens stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class Principal:
    role: Role
    agency_id: int | None = None

    def may_see_agency(self, agency_id: int) -> bool:
        return self.role is Role.admin or self.agency_id == agency_id


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(session: AsyncSession, *, role: Role, label: str, agency_id: int | None, now: datetime) -> str:
    """Returns the token once; only its hash is kept."""
    token = "co_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=hash_token(token), role=role, agency_id=agency_id, label=label, created_at=now))
    await session.flush()
    return token


_bearer = HTTPBearer(auto_error=False, description="An admin or supervisor token.")


async def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("A bearer token is required.")
    principal = await principal_for(request, session, credentials.credentials)
    if principal is None:
        raise Unauthorized("The bearer token is not valid.")
    return principal


async def principal_for(request: Request, session: AsyncSession, token: str) -> Principal | None:
    """Whose token this is: the bootstrap admin's, an issued one, or nobody's."""
    if hmac.compare_digest(token.encode(), request.app.state.settings.admin_token.encode()):
        return Principal(Role.admin)
    issued = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    return Principal(Role(issued.role), issued.agency_id) if issued else None


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.role is not Role.admin:
        raise Forbidden("This needs an admin token.")
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
AdminDep = Annotated[Principal, Depends(require_admin)]
