"""The alerts worker: routes each queued callout to whoever is on call and sends the texts, durably.

All state is in PostgreSQL. Work is claimed with FOR UPDATE SKIP LOCKED, so any number of workers share it and
none acts twice; a row stays locked while its text is handed to the provider, so a worker that dies mid-send
leaves the row pending for another (a duplicate text beats a missed callout). NOTIFY wakes the workers; a poll
bounds how long a missed wake-up or a retry timer can wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.channels import SendFailed, SmsChannel
from services.alerts.directory_client import DirectoryClient, DirectoryUnavailable
from services.alerts.escalation import move_on, queue_notification
from services.alerts.models import Notification, NotificationStatus
from services.alerts.settings import AlertsSettings
from shared.clock import Clock
from shared.db import Database
from shared.tables import CALLOUTS_CHANNEL, Agency, Callout, CalloutStatus, Stage, record_stage

log = structlog.get_logger()

MAX_SEND_ATTEMPTS = 4
MAX_ROUTING_ATTEMPTS = 3


def backoff(attempt: int) -> timedelta:
    """1 s, 2 s, 4 s ... with full jitter on top, so that retries from many workers spread out."""
    base = min(2 ** (attempt - 1), 30)
    return timedelta(seconds=base + random.uniform(0, base))  # noqa: S311 - jitter, not security


class Worker:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        channel: SmsChannel,
        directory: DirectoryClient,
        settings: AlertsSettings,
    ) -> None:
        self.db, self.clock, self.channel, self.directory, self.settings = db, clock, channel, directory, settings
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Act on everything due now; returns how many items were acted on."""
        routed = await self._drain(self._route_next)
        sent = await self._drain(self._send_next)
        return routed + sent

    async def _drain(self, step: Callable[[], Awaitable[bool]]) -> int:
        async def lane() -> int:
            done = 0
            while await step():
                done += 1
            return done

        return sum(await asyncio.gather(*(lane() for _ in range(self.settings.worker_concurrency))))

    async def _claim(self, session: AsyncSession, model: type[Callout] | type[Notification]) -> Any:
        return await session.scalar(
            select(model)
            .where(model.status == "pending", model.due_at <= self.clock.now())
            .order_by(model.due_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )

    # -- routing: find who is on call -------------------------------------------------------------------------

    async def _route_next(self) -> bool:
        async with self.db.sessionmaker() as session, session.begin():
            callout: Callout | None = await self._claim(session, Callout)
            if callout is None:
                return False
            await self._route(session, callout)
            return True

    async def _route(self, session: AsyncSession, callout: Callout) -> None:
        now = self.clock.now()
        agency = await session.get_one(Agency, callout.agency_id)
        log_ = log.bind(callout_id=str(callout.id), tier=callout.tier)
        try:
            chain = await self.directory.on_call(agency.slug, area=callout.area, at=now, language=callout.language)
            nobody = "nobody on call"
        except DirectoryUnavailable as exc:
            callout.routing_attempts += 1
            log_.warning("callout.directory_unavailable", attempt=callout.routing_attempts, error=str(exc))
            if callout.routing_attempts < MAX_ROUTING_ATTEMPTS:
                callout.due_at = now + backoff(callout.routing_attempts)
                return
            chain, nobody = [], "directory unreachable"
        callout.chain = [
            {k: entry[k] for k in ("advocate_id", "key", "role", "phone", "language_match", "reason")}
            for entry in chain
        ] + [
            {
                "advocate_id": None,
                "key": None,
                "role": "hotline",
                "phone": agency.hotline,
                "language_match": None,
                "reason": f"24/7 hotline of {agency.slug}",
            }
        ]
        callout.status = CalloutStatus.alerting
        callout.updated_at = now
        first = callout.chain[0]
        if first["role"] == "hotline":
            record_stage(session, callout.incident_id, Stage.escalated, now, to="hotline", reason=nobody)
        else:
            record_stage(
                session,
                callout.incident_id,
                Stage.advocate_matched,
                now,
                advocate_id=first["advocate_id"],
                role=first["role"],
                reason=first["reason"],
                language=callout.language,
                language_match=first["language_match"],
            )
        queue_notification(session, callout, 0, now=now, settings=self.settings)
        log_.info("callout.routed", recipients=len(callout.chain), first_role=first["role"])

    # -- sending ----------------------------------------------------------------------------------------------

    async def _send_next(self) -> bool:
        async with self.db.sessionmaker() as session, session.begin():
            notification: Notification | None = await self._claim(session, Notification)
            if notification is None:
                return False
            await self._send(session, notification)
            return True

    async def _send(self, session: AsyncSession, notification: Notification) -> None:
        notification.attempts += 1
        log_ = log.bind(notification_id=str(notification.id), role=notification.role, attempt=notification.attempts)
        try:
            provider_id = await self.channel.send_sms(
                to=notification.to,
                body=notification.body,
                status_callback=self.settings.public_link("/v1/twilio/sms-status"),
            )
        except SendFailed as exc:
            now = self.clock.now()
            notification.error, notification.updated_at = exc.reason, now
            if exc.retryable and notification.attempts < MAX_SEND_ATTEMPTS:
                notification.due_at = now + backoff(notification.attempts)
                log_.warning("sms.retrying", error=exc.reason, code=exc.code)
                return
            notification.status = NotificationStatus.failed
            record_stage(
                session,
                notification.incident_id,
                Stage.notification_failed,
                now,
                channel="sms",
                role=notification.role,
                advocate_id=notification.advocate_id,
                error=exc.reason,
                code=exc.code,
            )
            log_.warning("sms.failed", error=exc.reason, code=exc.code)
            await move_on(
                session,
                notification,
                reason=f"sms to {notification.role} failed: {exc.reason}",
                now=now,
                settings=self.settings,
            )
            return
        now = self.clock.now()
        notification.status, notification.provider_id = NotificationStatus.sent, provider_id
        notification.sent_at = notification.updated_at = now
        record_stage(
            session,
            notification.incident_id,
            Stage.notification_sent,
            now,
            channel="sms",
            provider=self.channel.name,
            provider_id=provider_id,
            role=notification.role,
            advocate_id=notification.advocate_id,
        )
        log_.info("sms.sent", provider=self.channel.name)

    # -- waking -----------------------------------------------------------------------------------------------

    async def next_due_in(self) -> float:
        """Seconds until the earliest timer, capped by the poll interval."""
        async with self.db.sessionmaker() as session:
            due = [
                await session.scalar(select(func.min(m.due_at)).where(m.status == "pending"))
                for m in (Callout, Notification)
            ]
        soonest = min((d for d in due if d is not None), default=None)
        poll = self.settings.worker_poll_seconds
        if soonest is None:
            return poll
        return max(0.0, min(poll, (soonest - self.clock.now()).total_seconds()))

    async def run_forever(self, dsn: str) -> None:
        """Work until cancelled. Survives database outages: it logs, waits a poll interval and tries again."""
        listener: asyncpg.Connection | None = None
        log.info("worker.started", channel=self.channel.name)
        try:
            while True:
                self.wake.clear()
                try:
                    if listener is None or listener.is_closed():
                        listener = await asyncpg.connect(dsn)
                        await listener.add_listener(CALLOUTS_CHANNEL, lambda *_: self.wake.set())
                    await self.run_once()
                    wait = await self.next_due_in()
                except (OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
                    log.error("worker.database_error", error=type(exc).__name__)
                    wait = self.settings.worker_poll_seconds
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout=wait)
        finally:
            if listener is not None:
                await listener.close()
