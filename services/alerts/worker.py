"""The alerts worker: routes each queued callout to whoever is on call and sends the texts, durably.

All state is in PostgreSQL, and the work is leased rather than held: a worker claims the oldest due row with
FOR UPDATE SKIP LOCKED, moves its due time past a lease and counts the attempt, and commits — so no connection is
held while the directory or Twilio answers. It then records the outcome only if the row is still its own (same
attempt, still pending). A worker that dies mid-way leaves a row that falls due again when the lease runs out,
and another worker takes it up: a duplicate text beats a missed callout. NOTIFY wakes the workers; a poll
bounds how long a missed wake-up or a timer can wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from services.alerts.channels import SendFailed, SmsChannel
from services.alerts.directory_client import DirectoryClient, DirectoryUnavailable
from services.alerts.escalation import move_on, queue_notification
from services.alerts.models import Notification, NotificationStatus
from services.alerts.settings import AlertsSettings
from shared.clock import Clock
from shared.db import Database
from shared.tables import CALLOUTS_CHANNEL, Callout, CalloutStatus, Stage, record_stage, wake_alerts

log = structlog.get_logger()

MAX_SEND_ATTEMPTS = 4
MAX_ROUTING_ATTEMPTS = 3
# Longer than any directory or provider call may take (their timeouts are at most 30 s and 60 s).
LEASE = timedelta(seconds=90)
Work = TypeVar("Work", Callout, Notification)


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
        """Act on everything due now, including what that work makes due; returns how many items were acted on."""
        total = 0
        while done := sum(await asyncio.gather(self._drain(self._route_next), self._drain(self._send_next))):
            total += done
        return total

    async def _drain(self, step: Callable[[], Awaitable[bool]]) -> int:
        async def lane() -> int:
            done = 0
            while await step():
                done += 1
            return done

        return sum(await asyncio.gather(*(lane() for _ in range(self.settings.worker_concurrency))))

    async def _lease(self, model: type[Work], *options: Any) -> Work | None:
        """Take up the oldest due row of `model`: count the attempt and push its due time past the lease."""
        async with self.db.sessionmaker.begin() as session:
            row = await session.scalar(
                select(model)
                .where(model.status == "pending", model.due_at <= self.clock.now())
                .order_by(model.due_at)
                .limit(1)
                .options(*options)
                .with_for_update(skip_locked=True, of=model)
            )
            if row is not None:
                row.attempts += 1
                row.due_at = self.clock.now() + LEASE
            return row

    @staticmethod
    async def _still_mine(session: AsyncSession, leased: Work) -> Work | None:
        """The row, locked, if no other worker has taken it up since (and nothing has ended it)."""
        row = await session.get(type(leased), leased.id, with_for_update=True, populate_existing=True)
        return row if row is not None and row.status == "pending" and row.attempts == leased.attempts else None

    # -- routing: find who is on call -------------------------------------------------------------------------

    async def _route_next(self) -> bool:
        leased = await self._lease(Callout, joinedload(Callout.agency))
        if leased is None:
            return False
        try:
            chain: list[dict[str, Any]] | None = await self.directory.on_call(
                leased.agency.slug, area=leased.area, at=self.clock.now(), language=leased.language
            )
        except DirectoryUnavailable as exc:
            log.warning(
                "callout.directory_unavailable", callout_id=str(leased.id), attempt=leased.attempts, error=str(exc)
            )
            chain = None
        async with self.db.sessionmaker.begin() as session:
            if (callout := await self._still_mine(session, leased)) is not None:
                await self._route(session, callout, chain, hotline=leased.agency.hotline)
        return True

    async def _route(
        self, session: AsyncSession, callout: Callout, chain: list[dict[str, Any]] | None, *, hotline: str
    ) -> None:
        now = self.clock.now()
        nobody = "nobody on call"
        if chain is None:
            if callout.attempts < MAX_ROUTING_ATTEMPTS:
                callout.due_at = now + backoff(callout.attempts)
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
                "phone": hotline,
                "language_match": None,
                "reason": "the agency's 24/7 hotline",
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
        await wake_alerts(session)
        log.info(
            "callout.routed",
            callout_id=str(callout.id),
            tier=callout.tier,
            recipients=len(callout.chain),
            first_role=first["role"],
        )

    # -- sending ----------------------------------------------------------------------------------------------

    async def _send_next(self) -> bool:
        leased = await self._lease(Notification)
        if leased is None:
            return False
        try:
            outcome: str | SendFailed = await self.channel.send_sms(
                to=leased.to, body=leased.body, status_callback=self.settings.public_link("/v1/twilio/sms-status")
            )
        except SendFailed as exc:
            outcome = exc
        async with self.db.sessionmaker.begin() as session:
            if (notification := await self._still_mine(session, leased)) is not None:
                await self._record_send(session, notification, outcome)
        return True

    async def _record_send(self, session: AsyncSession, notification: Notification, outcome: str | SendFailed) -> None:
        now = self.clock.now()
        notification.updated_at = now
        log_ = log.bind(notification_id=str(notification.id), role=notification.role, attempt=notification.attempts)
        if isinstance(outcome, str):
            notification.status, notification.provider_id, notification.sent_at = NotificationStatus.sent, outcome, now
            record_stage(
                session,
                notification.incident_id,
                Stage.notification_sent,
                now,
                channel="sms",
                provider=self.channel.name,
                provider_id=outcome,
                role=notification.role,
                advocate_id=notification.advocate_id,
            )
            log_.info("sms.sent", provider=self.channel.name)
            return
        notification.error = outcome.reason
        if outcome.retryable and notification.attempts < MAX_SEND_ATTEMPTS:
            notification.due_at = now + backoff(notification.attempts)
            log_.warning("sms.retrying", error=outcome.reason, code=outcome.code)
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
            error=outcome.reason,
            code=outcome.code,
        )
        log_.warning("sms.failed", error=outcome.reason, code=outcome.code)
        await move_on(
            session,
            notification,
            reason=f"sms to {notification.role} failed: {outcome.reason}",
            now=now,
            settings=self.settings,
        )

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
