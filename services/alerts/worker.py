"""The alerts worker: routes each queued callout, runs its escalation steps, sends the texts and calls, and
posts events back to dispatch — all from rows in PostgreSQL.

Work is claimed with FOR UPDATE SKIP LOCKED, so any number of workers share it and none acts twice. Whatever
waits on the outside world (the directory, Twilio, a CAD) is leased rather than held: the worker counts the
attempt, pushes the row's due time past a lease, commits, makes the call, and records the outcome only if the
row is still its own. A worker that dies mid-way leaves a row that falls due again when the lease runs out; a
text or call whose outcome is unknown is looked up at the provider before it is sent again. NOTIFY wakes the
workers; a poll bounds how long a missed wake-up or a timer can wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import structlog
from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from services.alerts.channels import UNREACHABLE_CODES, Channel, SendFailed
from services.alerts.directory_client import DirectoryClient, DirectoryUnavailable
from services.alerts.escalation import (
    exhaust,
    finish_cancelling,
    mark_unreachable,
    notification_failed,
    roster_from,
    start_next_step,
)
from services.alerts.models import CadNotice, KnownRoster, Notification, NotificationStatus
from services.alerts.settings import AlertsSettings
from shared import metrics, webhooks
from shared.clock import Clock
from shared.db import Database
from shared.tables import TIMED, Agency, Callout, CalloutStatus, Stage, Wake, record_stage

log = structlog.get_logger()

MAX_SEND_ATTEMPTS = 4
MAX_ROUTING_ATTEMPTS = 3
OVERDUE = timedelta(seconds=5)  # how late a timer may run before the self-audit calls it out


async def remember_roster(
    session: AsyncSession, agency_id: int, question: dict[str, Any], answer: dict[str, Any], now: datetime
) -> None:
    """Keep the directory's answer, to route by while it cannot be reached."""
    statement = insert(KnownRoster).values(agency_id=agency_id, **question, answer=answer, fetched_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["agency_id", "area", "language", "tier"],
            set_={"answer": statement.excluded.answer, "fetched_at": statement.excluded.fetched_at},
        )
    )


def backoff(attempt: int, cap: float = 30) -> timedelta:
    """1 s, 2 s, 4 s ... with full jitter on top, so that retries from many workers spread out."""
    base = min(2 ** (attempt - 1), cap)
    return timedelta(seconds=base + random.uniform(0, base))  # noqa: S311 - jitter, not security


def waiting(model: Any) -> Any:
    """The rows of `model` whose due_at is a live timer: callouts to route, escalate or cancel; pending sends and
    notices."""
    return model.status.in_(TIMED) if model is Callout else model.status == "pending"


async def soonest_due(session: AsyncSession, model: Any) -> datetime | None:
    due: datetime | None = await session.scalar(select(func.min(model.due_at)).where(waiting(model)))
    return due


async def oldest_overdue(session: AsyncSession, now: datetime) -> float | None:
    """Seconds the most overdue timer (an escalation step or a send) is late by, or None."""
    oldest = [await soonest_due(session, Callout), await soonest_due(session, Notification)]
    late = [(now - due).total_seconds() for due in oldest if due is not None and now - due > OVERDUE]
    return max(late, default=None)


class Worker:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        channel: Channel,
        directory: DirectoryClient,
        notify_http: httpx.AsyncClient,
        settings: AlertsSettings,
    ) -> None:
        self.db, self.clock, self.channel, self.directory = db, clock, channel, directory
        self.notify_http, self.settings = notify_http, settings
        self.lease = timedelta(seconds=settings.worker_lease_seconds)

    async def run_once(self) -> int:
        """Act on everything due now, and on what that makes due; returns how many items were acted on."""
        total = 0
        while done := sum(await asyncio.gather(self._callouts(), self._sends(), self._notices())):
            total += done
        return total

    async def _claim(self, session: AsyncSession, model: Any, now: datetime, *options: Any) -> list[Any]:
        """The oldest rows of `model` due by `now` that no other worker holds, locked for this transaction."""
        return list(
            await session.scalars(
                select(model)
                .where(waiting(model))
                .where(model.due_at <= now)
                .order_by(model.due_at)
                .limit(self.settings.worker_concurrency)
                .options(*options)
                .with_for_update(skip_locked=True, of=model)
            )
        )

    # -- callouts: route, escalate, cancel --------------------------------------------------------------------

    async def _callouts(self) -> int:
        now = self.clock.now()
        to_route: list[Callout] = []
        async with self.db.sessionmaker.begin() as session:
            due = await self._claim(session, Callout, now, joinedload(Callout.agency))
            for callout in due:
                if callout.status == CalloutStatus.alerting:  # the step's wait is over, or nobody is left in it
                    await start_next_step(session, callout, now=now, settings=self.settings)
                elif callout.status == CalloutStatus.cancelling:
                    await finish_cancelling(session, callout, now=now, settings=self.settings)
                else:  # pending: lease it while the directory answers
                    callout.attempts += 1
                    callout.due_at = now + self.lease
                    to_route.append(callout)
        await asyncio.gather(*(self._route(callout) for callout in to_route))
        return len(due)

    async def _route(self, leased: Callout) -> None:
        question: dict[str, Any] = {"area": leased.area, "language": leased.language, "tier": leased.tier}
        answer: dict[str, Any] | None
        try:
            answer, asked = await self.directory.on_call(leased.agency.slug, at=self.clock.now(), **question)
            source: dict[str, Any] = {"kind": "directory"}
        except DirectoryUnavailable as exc:
            log.warning(
                "callout.directory_unavailable", callout_id=str(leased.id), attempt=leased.attempts, error=str(exc)
            )
            answer, source, asked = *await self._last_known(leased.agency_id, question), False
        now = self.clock.now()
        async with self.db.sessionmaker.begin() as session:
            if asked:
                assert answer is not None
                await remember_roster(session, leased.agency_id, question, answer, now)
            callout = await self._still_mine(session, leased)
            if callout is None:
                return
            if answer is None and callout.attempts < MAX_ROUTING_ATTEMPTS:
                callout.due_at = now + backoff(callout.attempts)
                return
            callout.roster = roster_from(answer["chain"] if answer else [], leased.agency.hotline, source)
            if answer is None:  # the directory stayed out of reach and nothing is known: only the hotline is left
                callout.policy = {"steps": [], "repeat": 0}
                first = await exhaust(
                    session, callout, now=now, settings=self.settings, skipped=["directory unreachable"]
                )
            else:
                callout.policy = {"steps": answer["policy"]["steps"], "repeat": answer["policy"]["repeat"]}
                first = await start_next_step(session, callout, now=now, settings=self.settings)
                log.info(
                    "callout.routed",
                    callout_id=str(callout.id),
                    tier=callout.tier,
                    policy=answer["policy"]["source"],
                    roster=source["kind"],
                )
            for notification in first:  # this worker sends the first alerts itself, at once: leased to it already
                notification.attempts, notification.started_at = 1, now
                notification.due_at = now + self.lease
        await asyncio.gather(*(self._send(notification, None) for notification in first))
        if first:
            metrics.handoff("first_alert", leased.tier, leased.created_at, self.clock.now())

    async def _last_known(
        self, agency_id: int, question: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The directory's last answer to this question, and how old it is: better than waiting for it to
        come back while a survivor waits."""
        async with self.db.sessionmaker() as session:
            known = await session.scalar(
                select(KnownRoster).where(
                    KnownRoster.agency_id == agency_id,
                    KnownRoster.area.is_not_distinct_from(question["area"]),
                    KnownRoster.language.is_not_distinct_from(question["language"]),
                    KnownRoster.tier == question["tier"],
                )
            )
        if known is None:
            return None, {"kind": "none"}
        age = (self.clock.now() - known.fetched_at).total_seconds()
        return known.answer, {"kind": "last known", "fetched_at": known.fetched_at.isoformat(), "age_seconds": age}

    @staticmethod
    async def _still_mine(session: AsyncSession, leased: Any) -> Any:
        """The row, locked, if no other worker has taken it up since (and nothing has ended it)."""
        row = await session.get(type(leased), leased.id, with_for_update=True, populate_existing=True)
        return row if row is not None and row.status == "pending" and row.attempts == leased.attempts else None

    # -- texts and calls --------------------------------------------------------------------------------------

    async def _sends(self) -> int:
        now = self.clock.now()
        async with self.db.sessionmaker.begin() as session:
            due: list[Notification] = await self._claim(session, Notification, now)
            # started_at still set: an earlier attempt was handed over and its outcome never learned.
            leased = [(notification, notification.started_at) for notification in due]
            for notification in due:
                notification.attempts += 1
                notification.due_at, notification.started_at = now + self.lease, now
        await asyncio.gather(*(self._send(notification, in_flight_since) for notification, in_flight_since in leased))
        return len(leased)

    async def _send(self, notification: Notification, in_flight_since: datetime | None) -> None:
        outcome: str | SendFailed
        adopted = await self._reconcile(notification, in_flight_since) if in_flight_since else None
        if adopted:
            outcome = adopted
        else:
            try:
                outcome = await self._hand_over(notification)
            except SendFailed as exc:
                outcome = exc
        async with self.db.sessionmaker.begin() as session:
            current = await self._still_mine(session, notification)
            if current is not None:
                await self._record_send(session, current, outcome, adopted=bool(adopted))

    async def _hand_over(self, notification: Notification) -> str:
        if notification.channel == "voice":
            callback = self.settings.public_link("/v1/twilio/call-status")
            return await self.channel.place_call(to=notification.to, twiml=notification.body, status_callback=callback)
        callback = self.settings.public_link("/v1/twilio/sms-status")
        return await self.channel.send_sms(to=notification.to, body=notification.body, status_callback=callback)

    async def _reconcile(self, notification: Notification, since: datetime) -> str | None:
        """An earlier attempt was handed over and never answered (a timeout, a worker killed): did the provider
        get it? A text is known by its body, unique by its link; a call, by being one to this phone since then
        that no notification of ours claims. When the provider cannot say, send again: a duplicate beats a
        missed callout."""
        try:
            found = await self.channel.find_sent(
                channel=notification.channel, to=notification.to, since=since - timedelta(seconds=5)
            )
        except SendFailed:
            return None
        if notification.channel == "sms":
            found = [(sid, body) for sid, body in found if body == notification.body]
        if not found:
            return None
        async with self.db.sessionmaker() as session:
            sids = [sid for sid, _ in found]
            claimed = set(
                await session.scalars(select(Notification.provider_id).where(Notification.provider_id.in_(sids)))
            )
        unclaimed = [sid for sid in sids if sid not in claimed]
        log.info("send.reconciled", notification_id=str(notification.id), found=len(found), adopted=bool(unclaimed))
        return unclaimed[0] if unclaimed else None

    async def _record_send(
        self, session: AsyncSession, notification: Notification, outcome: str | SendFailed, *, adopted: bool
    ) -> None:
        now = self.clock.now()
        notification.updated_at = now
        log_ = log.bind(
            notification_id=str(notification.id),
            channel=notification.channel,
            role=notification.role,
            attempt=notification.attempts,
        )
        if isinstance(outcome, str):
            notification.status, notification.provider_id = NotificationStatus.sent, outcome
            notification.sent_at, notification.started_at = now, None
            if notification.kind == "alert":
                record_stage(
                    session,
                    notification.incident_id,
                    Stage.notification_sent,
                    now,
                    channel=notification.channel,
                    provider=self.channel.name,
                    provider_id=outcome,
                    role=notification.role,
                    advocate_id=notification.advocate_id,
                    reconciled=adopted or None,
                )
            log_.info("send.sent", kind=notification.kind, provider=self.channel.name, reconciled=adopted)
            return
        notification.error = outcome.reason
        if not outcome.unknown:  # an answer came: nothing is in flight; otherwise the retry reconciles first
            notification.started_at = None
        if outcome.retryable and notification.attempts < MAX_SEND_ATTEMPTS:
            notification.due_at = now + backoff(notification.attempts)
            log_.warning("send.retrying", error=outcome.reason, code=outcome.code)
            return
        log_.warning("send.failed", error=outcome.reason, code=outcome.code)
        if outcome.code in UNREACHABLE_CODES:
            await mark_unreachable(session, notification, code=outcome.code or 0, reason=outcome.reason, now=now)
        await notification_failed(session, notification, reason=outcome.reason, code=outcome.code, now=now)

    # -- events back to dispatch ------------------------------------------------------------------------------

    async def _notices(self) -> int:
        now = self.clock.now()
        earlier = aliased(CadNotice)
        async with self.db.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(CadNotice, Agency)
                    .join(Agency, Agency.id == CadNotice.agency_id)
                    .where(
                        CadNotice.status == "pending",
                        CadNotice.due_at <= now,
                        # In order per incident: nothing later goes before an earlier one is delivered.
                        ~select(earlier.id)
                        .where(
                            and_(
                                earlier.incident_id == CadNotice.incident_id,
                                earlier.id < CadNotice.id,
                                earlier.status == "pending",
                            )
                        )
                        .exists(),
                    )
                    .order_by(CadNotice.due_at)
                    .limit(self.settings.worker_concurrency)
                    .with_for_update(skip_locked=True, of=CadNotice)
                )
            ).all()
            for notice, _ in rows:
                notice.attempts += 1
                notice.due_at = now + self.lease
        await asyncio.gather(*(self._post_notice(notice, agency) for notice, agency in rows))
        return len(rows)

    async def _post_notice(self, notice: CadNotice, agency: Agency) -> None:
        body = json.dumps(notice.payload).encode()
        error: str | None = "the agency has no notify URL any more"
        if agency.notify_url:
            # The signature's timestamp is the wire's (the receiver checks it against its own clock), not the domain's.
            signed_at = datetime.now(UTC)
            headers = webhooks.signed_headers(agency.webhook_secret, f"notice_{notice.id}", signed_at, body)
            try:
                response = await self.notify_http.post(agency.notify_url, content=body, headers=headers)
                error = None if response.is_success else f"answered {response.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
        async with self.db.sessionmaker.begin() as session:
            current = await session.get(CadNotice, notice.id, with_for_update=True)
            if current is None or current.status != "pending" or current.attempts != notice.attempts:
                return
            now = self.clock.now()
            if error is None:
                current.status, current.delivered_at = "delivered", now
            else:  # a CAD may be down for hours: keep trying, five minutes apart at most
                current.error, current.due_at = error, now + backoff(current.attempts, cap=300)
                log.warning("cad_notice.retrying", notice_id=current.id, attempt=current.attempts, error=error)

    # -- waking and the self-audit ----------------------------------------------------------------------------

    async def next_due_in(self, model: Any) -> float:
        """Seconds until the earliest timer of `model`'s work, capped by the poll interval."""
        async with self.db.sessionmaker() as session:
            soonest = await soonest_due(session, model)
        poll = self.settings.worker_poll_seconds
        if soonest is None:
            return poll
        return max(0.0, min(poll, (soonest - self.clock.now()).total_seconds()))

    async def audit(self) -> float | None:
        """Call out any timer running late (a stalled worker, a lost wake-up); the next pass acts on it."""
        async with self.db.sessionmaker() as session:
            late = await oldest_overdue(session, self.clock.now())
        if late is not None:
            log.warning("worker.overdue", oldest_seconds=round(late, 1))
        return late

    async def run_forever(self, dsn: str) -> None:
        """Work until cancelled: callouts, sends and notices each in a loop of its own, woken by its own NOTIFY
        channel, so that a slow batch of one kind never holds up another and a wake-up costs only the loop it is
        for. Survives database outages: logs, waits a poll interval, tries again."""
        loops = {
            Wake.callouts: (self._callouts, Callout),
            Wake.sends: (self._sends, Notification),
            Wake.notices: (self._notices, CadNotice),
        }
        wakes = {wake: asyncio.Event() for wake in loops}
        log.info("worker.started", channel=self.channel.name)
        await asyncio.gather(
            self._listen(dsn, wakes),
            self._audit_forever(),
            *(self._loop(step, model, wakes[wake]) for wake, (step, model) in loops.items()),
        )

    async def _loop(self, step: Callable[[], Awaitable[int]], model: Any, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            try:
                if await step():
                    continue  # more may be due already
                wait = await self.next_due_in(model)
            except (OSError, SQLAlchemyError) as exc:
                log.error("worker.database_error", error=type(exc).__name__)
                wait = self.settings.worker_poll_seconds
            except Exception:  # a bug in one row must not stop every callout: say so loudly, go on
                log.exception("worker.unexpected_error", step=step.__name__)
                wait = self.settings.worker_poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)

    async def _listen(self, dsn: str, wakes: dict[Wake, asyncio.Event]) -> None:
        """Each NOTIFY channel wakes its loop; a lost connection is made again (the loops poll meanwhile)."""

        def waker(_: object, __: object, channel: str, ___: object) -> None:
            wakes[Wake(channel)].set()

        while True:
            try:
                listener = await asyncpg.connect(dsn)
                closed = asyncio.Event()
                listener.add_termination_listener(lambda _, closed=closed: closed.set())
                try:
                    for wake in wakes:
                        await listener.add_listener(wake.value, waker)
                    await closed.wait()
                finally:
                    await listener.close()
            except (OSError, asyncpg.PostgresError) as exc:
                log.error("worker.listen_error", error=type(exc).__name__)
                await asyncio.sleep(self.settings.worker_poll_seconds)

    async def _audit_forever(self) -> None:
        while True:
            with contextlib.suppress(OSError, SQLAlchemyError):
                await self.audit()
            await asyncio.sleep(self.settings.worker_audit_seconds)
