"""The dashboard's sign-ins: one opaque server-side session each. The browser holds only a random id, in an
HttpOnly, SameSite=Strict cookie; the database holds its hash (as for tokens), the token it was opened with, and
when it was opened and last used. A session ends at sign-out, after CALLOUT_SESSION_IDLE_MINUTES unused,
CALLOUT_SESSION_MAX_HOURS after its sign-in, or when its token is revoked or expires."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import ForeignKey, String, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import ApiToken, Principal, hash_token, principal_of
from shared.db import Base
from shared.problems import Forbidden
from shared.settings import Settings
from shared.tables import UTC_TIMESTAMP

COOKIE = "callout_session"


class DashboardSession(Base):
    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)
    seen_at: Mapped[datetime] = mapped_column(UTC_TIMESTAMP)


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetime:
        return cls(timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours))

    def over(self, s: DashboardSession, now: datetime) -> bool:
        return s.seen_at + self.idle <= now or s.created_at + self.absolute <= now


async def open_session(session: AsyncSession, token_id: int, lifetime: Lifetime, now: datetime) -> str:
    """A new session for the token; returns its id, once. Sessions already over are swept away meanwhile."""
    await session.execute(
        delete(DashboardSession).where(
            or_(DashboardSession.seen_at <= now - lifetime.idle, DashboardSession.created_at <= now - lifetime.absolute)
        )
    )
    session_id = secrets.token_urlsafe(32)
    session.add(DashboardSession(id_hash=hash_token(session_id), token_id=token_id, created_at=now, seen_at=now))
    await session.flush()
    return session_id


async def resume(
    request: Request, session: AsyncSession, session_id: str, lifetime: Lifetime, now: datetime
) -> Principal | None:
    """Whose session this is, if it is still on (and its token still in force); using it keeps it from idling."""
    found = (
        await session.execute(
            select(DashboardSession, ApiToken)
            .join(ApiToken, ApiToken.id == DashboardSession.token_id)
            .where(DashboardSession.id_hash == hash_token(session_id))
        )
    ).first()
    if found is None:
        return None
    on, token = found
    if lifetime.over(on, now) or token.refusal(now) is not None:
        await session.delete(on)
        return None
    on.seen_at = now
    return principal_of(token, request)


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(DashboardSession).where(DashboardSession.id_hash == hash_token(session_id)))


async def revoke_token(session: AsyncSession, token_id: int, now: datetime) -> tuple[ApiToken, int] | None:
    """Mark the token revoked (if it is not already) and end its sessions: the token and how many ended."""
    token = await session.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        return None
    token.revoked_at = token.revoked_at or now
    ended = await session.scalars(
        delete(DashboardSession).where(DashboardSession.token_id == token_id).returning(DashboardSession.id_hash)
    )
    return token, len(ended.all())


def cross_site(request: Request) -> str | None:
    """Why a browser's POST did not come from our own pages, or None when it did. Browsers say where a request
    comes from: Sec-Fetch-Site (every current browser), else Origin. A request with neither comes from no
    browser (curl, a script), so it cannot carry someone's cookie against their will."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        # "none": the user's own doing (a bookmark, the address bar). "same-site" is refused too: a sibling
        # subdomain is another application.
        return None if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site[:40]}"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    public = urlsplit(request.app.state.settings.public_link("/"))
    ours = {f"{public.scheme}://{public.netloc}", f"{request.url.scheme}://{request.url.netloc}"}
    return None if origin in ours else f"Origin: {origin[:200]}"


def refuse_cross_site(request: Request) -> None:
    """For a page's own forms that change something (a callout's, a PIN's, a cover request's): another site's
    page cannot post them on a visitor's behalf."""
    if (why := cross_site(request)) is not None:
        raise Forbidden(f"This form can only be sent from Callout's own page ({why}).")


def cookie_is_secure(settings: Settings) -> bool:
    """Secure whenever the public URL is https: behind a TLS proxy the request itself may look like http."""
    return settings.public_link("/").startswith("https://")
