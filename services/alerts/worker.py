"""The alerts worker: routes each queued callout, runs its escalation steps, sends the texts and calls, and
posts events back to dispatch — all from rows in PostgreSQL.

Work is claimed with FOR UPDATE SKIP LOCKED, so any number of workers share it and none acts twice. Whatever
waits on the outside world (the directory, Twilio, a CAD) is leased rather than held: the worker counts the
attempt, marks the row with its number (services/alerts/leases.py), pushes its due time past a lease, commits,
makes the call, and records the outcome only if the row is still its own. Work of a worker that died is taken
up by another within seconds; a text or call whose outcome is unknown is looked up at the provider, by what only
that alert carries, before it is sent again. NOTIFY wakes the workers; a poll bounds how long a missed wake-up or
a timer can wait. What a callout does next is decided by services/alerts/callout.py and written by escalation.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import structlog
from sqlalchemy import and_, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from services.alerts import cover, escalation, feeds, leases, phones, watch
from services.alerts.callout import Due, Person, Roster, RosterSource
from services.alerts.channels import UNREACHABLE_CODES, Channel, SendFailed
from services.alerts.directory_client import DirectoryClient, DirectoryUnavailable, OnCallAnswer
from services.alerts.models import CadNotice, KnownRoster, Notification
from services.alerts.settings import AlertsSettings
from shared import egress, metrics, webhooks
from shared.clock import Clock
from shared.db import Database, is_outage
from shared.tables import DUE_CALLOUTS, AdvocatePhone, Agency, Callout, CalloutStatus, Wake

log = structlog.get_logger()

MAX_ROUTING_ATTEMPTS = 3
OVERDUE = timedelta(seconds=5)  # how late a timer may run before the self-audit calls it out
# A lookup of a lost outcome that the provider cannot answer is tried again for this long before the alert is
# sent again regardless (a duplicate beats a missed callout).
LOOKUP_PATIENCE = timedelta(seconds=10)
# How far before the first attempt a lookup searches: the provider's clock is not ours.
CLOCK_SKEW = timedelta(minutes=5)
# A notice whose destination was refused (shared/egress.py) is kept, and tried again this long after: the
# agency's URL may be corrected meanwhile. Its error starts with REFUSED, which /readyz reports.
REFUSED_RETRY = timedelta(minutes=5)
REFUSED = "refused: "
KEEPALIVE = {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}


def roster_from(people: tuple[Person, ...], hotline: str, source: RosterSource) -> Roster:
    """The directory's ordered chain, grouped by role, plus the hotline, and where the chain came from."""
    return Roster(
        primary=tuple(p for p in people if p.role == "primary"),
        backup=tuple(p for p in people if p.role == "backup"),
        supervisor=tuple(p for p in people if p.role == "supervisor"),
        hotline=hotline,
        source=source,
    )


async def remember_roster(
    session: AsyncSession, agency_id: int, question: dict[str, Any], answer: OnCallAnswer, now: datetime
) -> None:
    """Keep the directory's answer, to route by while it cannot be reached."""
    kept = answer.model_dump(mode="json")
    statement = insert(KnownRoster).values(agency_id=agency_id, **question, answer=kept, fetched_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["agency_id", "area", "language", "tier"],
            set_={"answer": statement.excluded.answer, "fetched_at": statement.excluded.fetched_at},
        )
    )


def backoff(attempt: int, *, first: float = 0.5, cap: float = 4) -> timedelta:
    """0.5 s, 1 s, 2 s, 4 s, 4 s ... each jittered down to half of it, so that retries from many workers spread
    out. Five retries fit in 11.5 s: with four in ten of Twilio's answers failing, one alert in a hundred needs a
    sixth attempt, and its text still goes out within seconds."""
    base = min(first * 2 ** (attempt - 1), cap)
    return timedelta(seconds=random.uniform(base / 2, base))  # noqa: S311 - jitter, not security


def waiting(model: Any) -> Any:
    """The rows of `model` whose due_at is a live timer: callouts to route, escalate or end; pending sends and
    notices."""
    if model is AdvocatePhone:
        return model.check_due_at.is_not(None)
    return text(f"({DUE_CALLOUTS})") if model is Callout else model.status == "pending"


async def soonest_due(session: AsyncSession, model: Any) -> datetime | None:
    column = model.check_due_at if model is AdvocatePhone else model.due_at
    due: datetime | None = await session.scalar(select(func.min(column)).where(waiting(model)))
    return due


async def oldest_overdue(session: AsyncSession, now: datetime) -> float | None:
    """Seconds the most overdue timer (an escalation step or a send) is late by, or None. Work that no live
    worker holds is overdue from when it was leased."""
    _, unheld_since = await leases.unheld(session)
    oldest = [await soonest_due(session, Callout), await soonest_due(session, Notification), unheld_since]
    late = [(now - due).total_seconds() for due in oldest if due is not None and now - due > OVERDUE]
    return max(late, default=None)


@dataclass(frozen=True)
class Lookup:
    """What the provider says of an attempt whose answer was lost: its id there, none (`provider_id` None), or
    nothing (`error`: the lookup itself failed)."""

    provider_id: str | None = None
    error: SendFailed | None = None


UNKNOWN_SENT_AGAIN = "outcome unknown; sent again"
ABSENT_SENT_AGAIN = "not found at the provider; sent again"


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
        # How long a create handed to the provider can still land there: the client's timeout, and a second.
        self.in_flight_for = timedelta(seconds=settings.twilio_timeout_seconds + 1)
        # This worker's number while its listening connection holds it (leases.py); None: not held (yet).
        self.number: int | None = None
        self.alive = asyncio.Event()

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

    def _take(self, row: Any, now: datetime) -> None:
        """Lease `row` to this worker while it waits on the outside world."""
        row.attempts += 1
        row.due_at, row.leased_by, row.leased_at = now + self.lease, self.number, now

    @staticmethod
    def _release(row: Any) -> None:
        row.leased_by = row.leased_at = None

    async def _alone(self, work: Awaitable[None], leased: Any) -> None:
        """One row's work, failing alone: a bug or a lost database in one must not hold up the others, nor keep
        its row leased to this (live) worker until the lease runs out. The row is given back, due again soon."""
        try:
            await work
        except Exception as exc:
            if is_outage(exc):  # the database away: said in one line; the row is given back once it returns
                log.warning("worker.database_unavailable", kind=type(leased).__name__, error=type(exc).__name__)
            else:
                log.exception("worker.row_failed", kind=type(leased).__name__, id=str(leased.id))
            with contextlib.suppress(Exception):  # the database may be what failed: then the sweep gives it back
                async with self.db.sessionmaker.begin() as session:
                    row = await self._still_mine(session, leased)
                    if row is not None:
                        self._release(row)
                        row.due_at = self.clock.now() + backoff(row.attempts)

    # -- callouts: route, escalate, end -----------------------------------------------------------------------

    async def _callouts(self) -> int:
        now = self.clock.now()
        to_route: list[Callout] = []
        async with self.db.sessionmaker.begin() as session:
            due = await self._claim(session, Callout, now, joinedload(Callout.agency))
            for callout in due:
                if callout.status == CalloutStatus.pending and callout.end_requested_at is None:
                    self._take(callout, now)  # leased while the directory answers
                    to_route.append(callout)
                else:  # the step's wait is over, nobody is left in it, or intake asked for its end
                    await self._due(session, callout, now)
        await asyncio.gather(*(self._alone(self._route(callout), callout) for callout in to_route))
        return len(due)

    async def send_codes(self) -> int:
        """Text a code to each phone the directory asked to prove, send the tests supervisors asked for, and the
        texts of cover requests (a loop of its own, woken by the directory)."""
        async with self.db.sessionmaker.begin() as session:
            now, limit = self.clock.now(), self.settings.worker_concurrency
            codes = await phones.send_codes(session, now=now, settings=self.settings, limit=limit)
            tests = await phones.send_tests(session, now=now, settings=self.settings, limit=limit)
            return codes + tests + await cover.send_cover_texts(session, now=now, settings=self.settings, limit=limit)

    async def watch_contacts(self) -> int:
        """Tell each agency's supervisors what may leave a call unanswered: their people's phones, coverage gaps
        (services/alerts/watch.py) and a silent CAD feed (feeds.py).
        An agency whose directory answer cannot be had is looked at again on the next round."""
        async with self.db.sessionmaker() as session:
            agencies = (await session.execute(select(Agency.id, Agency.slug).order_by(Agency.id))).all()
        told = 0
        for agency_id, slug in agencies:
            try:
                answer = await self.directory.contact_watch(slug, hours=watch.WINDOW_HOURS)
            except DirectoryUnavailable as exc:
                log.warning("watch.directory_unavailable", agency=slug, error=str(exc))
                continue
            async with self.db.sessionmaker.begin() as session:
                now, agency = self.clock.now(), await session.get_one(Agency, agency_id)
                told += await watch.tell(session, answer, agency_id=agency_id, now=now)
                told += await feeds.watch(session, agency, answer, now)
        if told:
            log.info("watch.told", things=told)
        return told

    async def _due(self, session: AsyncSession, callout: Callout, now: datetime) -> None:
        """One callout's timer, failing alone (a savepoint): a bug in one must not hold up every due callout."""
        try:
            async with session.begin_nested():
                await escalation.apply(session, callout, Due(), now=now, settings=self.settings)
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception("worker.row_failed", kind="Callout", id=str(callout.id))
            callout.due_at = now + backoff(callout.attempts + 1)

    async def _route(self, leased: Callout) -> None:
        question: dict[str, Any] = {"area": leased.area, "language": leased.language, "tier": leased.tier}
        answer: OnCallAnswer | None
        try:
            answer, asked = await self.directory.on_call(leased.agency.slug, at=self.clock.now(), **question)
            source = RosterSource(kind="directory")
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
            self._release(callout)
            if answer is None and callout.attempts < MAX_ROUTING_ATTEMPTS:
                callout.due_at = now + backoff(callout.attempts, first=1)
                return
            hotline = leased.agency.hotline
            roster, policy = (roster_from(answer.chain, hotline, source), answer.policy) if answer else (None, None)
            first = await escalation.route(
                session, callout, roster, policy, hotline=hotline, now=now, settings=self.settings
            )
            if answer:
                log.info("callout.routed", callout_id=str(callout.id), tier=callout.tier, roster=source.kind)
            for notification in first:  # this worker sends the first alerts itself, at once: leased to it already
                self._take(notification, now)
                notification.first_attempt_at = notification.started_at = now
        await asyncio.gather(*(self._alone(self._send(n, in_flight=False), n) for n in first))
        if first:
            metrics.handoff("first_alert", leased.tier, leased.created_at, self.clock.now())

    async def _last_known(self, agency_id: int, question: dict[str, Any]) -> tuple[OnCallAnswer | None, RosterSource]:
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
            return None, RosterSource(kind="none")
        age = (self.clock.now() - known.fetched_at).total_seconds()
        answer = OnCallAnswer.model_validate(known.answer)
        return answer, RosterSource(kind="last known", fetched_at=known.fetched_at.isoformat(), age_seconds=age)

    @staticmethod
    async def _still_mine(
        session: AsyncSession, leased: Any, *, with_callout: bool = False, cancelled_too: bool = False
    ) -> Any:
        """The row, locked, if no other worker has taken it up since (and nothing has ended it). `with_callout`:
        what follows may change the callout (a failure moves its step on), so its row is locked first, as on
        every path that changes both; a send recorded as sent touches the notification alone."""
        if with_callout and isinstance(leased, Notification) and leased.callout_id is not None:
            await escalation.lock_callout(session, leased.callout_id)
        row = await session.get(type(leased), leased.id, with_for_update=True, populate_existing=True)
        statuses = ("pending", "cancelled") if cancelled_too else ("pending",)
        return row if row is not None and row.status in statuses and row.attempts == leased.attempts else None

    # -- texts and calls --------------------------------------------------------------------------------------

    async def _sends(self) -> int:
        now = self.clock.now()
        async with self.db.sessionmaker.begin() as session:
            due: list[Notification] = await self._claim(session, Notification, now)
            # started_at still set: an earlier attempt was handed over and its answer never came; leased_at still
            # set: when that attempt's worker took it (and never recorded it: it died, or lost its connection).
            leased = [(n, n.started_at is not None, n.leased_at if n.started_at else None) for n in due]
            for notification in due:
                self._take(notification, now)
                notification.first_attempt_at = notification.first_attempt_at or now
                notification.started_at = notification.started_at or now  # in flight since the oldest unknown
        await asyncio.gather(
            *(self._alone(self._send(n, in_flight=unknown, taken_at=at), n) for n, unknown, at in leased)
        )
        return len(leased)

    async def _send(self, notification: Notification, *, in_flight: bool, taken_at: datetime | None = None) -> None:
        """Hand the alert over — unless an earlier attempt whose answer was lost turns out to have gone, or may
        still be on its way (`taken_at`: when a worker that is gone took up that attempt)."""
        earlier: str | None = None
        if in_flight:
            lookup = await self._reconcile(notification)
            if lookup.provider_id is not None:
                await self._record(notification, lookup.provider_id, found="found at the provider")
                return
            if lookup.error is not None:
                assert notification.started_at is not None
                if self.clock.now() - notification.started_at < LOOKUP_PATIENCE:  # ask again; nothing is sent
                    failure = lookup.error
                    reason = f"its outcome could not be learned: {failure.reason}"
                    unlearned = SendFailed(reason, retryable=True, retry_after=failure.retry_after)
                    await self._record(notification, unlearned, in_flight=True)
                    return
                earlier = UNKNOWN_SENT_AGAIN
            elif taken_at is not None and self.clock.now() < taken_at + self.in_flight_for:
                # Its worker lost its connection rather than died, perhaps: that attempt may still reach the
                # provider. Not found yet is not absent until it would have timed out.
                left = (taken_at + self.in_flight_for - self.clock.now()).total_seconds()
                wait = SendFailed("an earlier attempt may still reach the provider", retryable=True, retry_after=left)
                await self._record(notification, wait, in_flight=True)
                return
            else:
                earlier = ABSENT_SENT_AGAIN
        outcome: str | SendFailed
        try:
            outcome = await self._hand_over(notification)
        except SendFailed as exc:
            outcome = exc
        unknown = isinstance(outcome, SendFailed) and (outcome.unknown or earlier == UNKNOWN_SENT_AGAIN)
        await self._record(notification, outcome, earlier=earlier, in_flight=unknown)

    def _status_callback(self, notification: Notification) -> str:
        """Unique to this alert: Twilio's callbacks for it, and its record of them, name the alert itself."""
        path = "/v1/twilio/call-status" if notification.channel == "voice" else "/v1/twilio/sms-status"
        return self.settings.public_link(f"{path}?n={notification.id}")

    async def _hand_over(self, notification: Notification) -> str:
        callback = self._status_callback(notification)
        if notification.channel == "voice":
            return await self.channel.place_call(to=notification.to, twiml=notification.body, status_callback=callback)
        return await self.channel.send_sms(to=notification.to, body=notification.body, status_callback=callback)

    async def _reconcile(self, notification: Notification) -> Lookup:
        """An earlier attempt was handed over and never answered (a timeout, a worker killed): did the provider
        get it? Only what this alert alone carries counts — a text's body with its link, a call's own callback
        URL — and never a record another notification has claimed."""
        assert notification.first_attempt_at is not None
        marker = notification.body if notification.channel == "sms" else self._status_callback(notification)
        try:
            found = await self.channel.find_sent(
                channel=notification.channel,
                to=notification.to,
                since=notification.first_attempt_at - CLOCK_SKEW,
                marker=marker,
            )
        except SendFailed as exc:
            log.warning("send.lookup_failed", notification_id=str(notification.id), error=exc.reason)
            return Lookup(error=exc)
        if found is not None:
            async with self.db.sessionmaker() as session:
                owner = await session.scalar(select(Notification.id).where(Notification.provider_id == found))
            if owner is not None and owner != notification.id:  # cannot happen by the marker; never adopt it
                log.error("send.reconciled_to_another", notification_id=str(notification.id))
                found = None
        log.info("send.reconciled", notification_id=str(notification.id), found=found is not None)
        return Lookup(provider_id=found)

    async def _record(
        self,
        leased: Notification,
        outcome: str | SendFailed,
        *,
        found: str | None = None,
        earlier: str | None = None,
        in_flight: bool = False,
    ) -> None:
        """What became of the attempt, if the notification is still this worker's to record. `in_flight`: an
        attempt of ours whose outcome is unknown may still be out there (the next one looks it up first). Logged
        once committed: a log line says what the database holds."""
        async with self.db.sessionmaker.begin() as session:
            failure = isinstance(outcome, SendFailed)
            # A send that went out is recorded even if the alert was cancelled meanwhile: it happened.
            notification: Notification | None = await self._still_mine(
                session, leased, with_callout=failure, cancelled_too=not failure
            )
            if notification is None:
                return
            self._release(notification)
            said = await self._apply_outcome(session, notification, outcome, found, earlier, in_flight)
        level, event, fields = said
        log.log(
            level,
            event,
            notification_id=str(notification.id),
            channel=notification.channel,
            role=notification.role,
            attempt=notification.attempts,
            **fields,
        )

    async def _apply_outcome(
        self,
        session: AsyncSession,
        notification: Notification,
        outcome: str | SendFailed,
        found: str | None,
        earlier: str | None,
        in_flight: bool,
    ) -> tuple[int, str, dict[str, Any]]:
        now = self.clock.now()
        if isinstance(outcome, str):
            cancelled = notification.status == "cancelled"
            await escalation.sent(
                session, notification, outcome, provider=self.channel.name, now=now, found=found, earlier=earlier
            )
            if cancelled:
                await escalation.sent_after_all(session, notification, now=now, settings=self.settings)
            return logging.INFO, "send.sent", {"kind": notification.kind, "reconciled": bool(found)}
        notification.error, notification.updated_at = outcome.reason[:200], now
        if not in_flight:
            notification.started_at = None
        problem = {"error": outcome.reason, "code": outcome.code}
        if outcome.retryable:
            delay = backoff(notification.attempts)
            if outcome.retry_after is not None:
                delay = max(delay, timedelta(seconds=outcome.retry_after))
            if notification.retry_until is None or now + delay < notification.retry_until:
                notification.due_at = now + delay
                return logging.WARNING, "send.retrying", {**problem, "in_s": round(delay.total_seconds(), 1)}
        if outcome.code in UNREACHABLE_CODES:
            await escalation.mark_unreachable(
                session, notification, code=outcome.code or 0, reason=outcome.reason, now=now
            )
        reason = outcome.reason if not outcome.retryable else f"{outcome.reason}; its step ended first"
        await escalation.failed(
            session,
            notification,
            reason=reason,
            code=outcome.code,
            now=now,
            settings=self.settings,
            outcome="unknown" if notification.started_at is not None else None,
        )
        return logging.WARNING, "send.failed", problem

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
                self._take(notice, now)
        await asyncio.gather(*(self._post_notice(notice, agency) for notice, agency in rows))
        return len(rows)

    async def _post_notice(self, notice: CadNotice, agency: Agency) -> None:
        body = json.dumps(notice.payload).encode()
        error: str | None = "the agency has no notify URL any more"
        refused = False
        if agency.notify_url:
            # The signature's timestamp is the wire's (the receiver checks it against its own clock), not the domain's.
            signed_at = datetime.now(UTC)
            headers = webhooks.signed_headers(agency.webhook_secret, f"notice_{notice.id}", signed_at, body)
            try:  # the client checks the destination again, now, and follows no redirect (shared/egress.py)
                response = await self.notify_http.post(agency.notify_url, content=body, headers=headers)
                error = None if response.is_success else f"answered {response.status_code}"
            except egress.Refused as exc:
                error, refused = f"{REFUSED}{exc}"[:200], True
            except httpx.HTTPError as exc:
                error = type(exc).__name__
        async with self.db.sessionmaker.begin() as session:
            current = await session.get(CadNotice, notice.id, with_for_update=True)
            if current is None or current.status != "pending" or current.attempts != notice.attempts:
                return
            now = self.clock.now()
            self._release(current)
            if error is None:
                current.status, current.delivered_at = "delivered", now
            elif refused:  # heals only when the agency's URL (or its DNS) changes: looked at again every 5 minutes
                current.error, current.due_at = error, now + REFUSED_RETRY
                log.warning("cad_notice.refused", notice_id=current.id, agency_id=agency.id, error=error)
            else:  # a CAD may be down for hours: keep trying, five minutes apart at most
                current.error, current.due_at = error, now + backoff(current.attempts, first=1, cap=300)
                log.warning("cad_notice.retrying", notice_id=current.id, attempt=current.attempts, error=error)

    # -- waking and the self-audit ----------------------------------------------------------------------------

    async def next_due_in(self, model: Any) -> float:
        """Seconds until the earliest timer of `model`'s work, capped by the poll interval; None: the watch's."""
        if model is None:
            return self.settings.contact_watch_seconds
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

    async def sweep(self) -> int:
        """Make the work of workers that died due now (any live worker then takes it up). A worker that does not
        hold its own number right now sweeps nothing: it could not tell its own work from a dead worker's."""
        if not self.alive.is_set():
            return 0
        async with self.db.sessionmaker.begin() as session:
            released = await leases.release_orphans(session, self.clock.now())
        if released:
            log.warning("worker.took_over", rows=released)
        return released

    async def run_forever(self, dsn: str) -> None:
        """Work until cancelled: callouts, sends and notices each in a loop of its own, woken by its own NOTIFY
        channel, so that a slow batch of one kind never holds up another and a wake-up costs only the loop it is
        for. Nothing is taken up before this worker holds its number. Survives database outages: logs, waits a
        poll interval, tries again."""
        loops = {
            Wake.callouts: (self._callouts, Callout),
            Wake.sends: (self._sends, Notification),
            Wake.notices: (self._notices, CadNotice),
            Wake.phones: (self.send_codes, AdvocatePhone),
            Wake.watch: (self.watch_contacts, None),
        }
        wakes = {wake: asyncio.Event() for wake in loops}
        listening = asyncio.create_task(self._listen(dsn, wakes))
        try:
            await self.alive.wait()
            log.info("worker.started", channel=self.channel.name, number=self.number)
            await asyncio.gather(
                listening,
                self._every(self.settings.worker_audit_seconds, self.audit),
                self._every(self.settings.worker_sweep_seconds, self.sweep),
                *(self._loop(step, model, wakes[wake]) for wake, (step, model) in loops.items()),
            )
        finally:
            listening.cancel()

    async def _loop(self, step: Callable[[], Awaitable[int]], model: Any, wake: asyncio.Event) -> None:
        while True:
            await self.alive.wait()  # work is leased under this worker's number: only while it holds one
            wake.clear()
            try:
                if await step():
                    continue  # more may be due already
                wait = await self.next_due_in(model)
            except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("worker.database_error", error=type(exc).__name__)
                wait = self.settings.worker_poll_seconds
            except Exception:  # a bug in one row must not stop every callout: say so loudly, go on
                log.exception("worker.unexpected_error", step=step.__name__)
                wait = self.settings.worker_poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)

    async def _listen(self, dsn: str, wakes: dict[Wake, asyncio.Event]) -> None:
        """Hold this worker's number and hear each NOTIFY channel on one connection; a lost connection is made
        again, with a new number (leases.hold says why; the loops poll meanwhile)."""

        def waker(_: object, __: object, channel: str, ___: object) -> None:
            wakes[Wake(channel)].set()

        while True:
            try:
                # Idle but for NOTIFY: keepalives stop a proxy or NAT from cutting it (and with it this worker's
                # number, whose work others would take up while it is still being done).
                listener = await asyncpg.connect(dsn, server_settings=KEEPALIVE)
                closed = asyncio.Event()
                listener.add_termination_listener(lambda _, closed=closed: closed.set())
                try:
                    self.number = await leases.hold(listener)
                    for wake in wakes:
                        await listener.add_listener(wake.value, waker)
                    self.alive.set()
                    await closed.wait()
                finally:
                    self.alive.clear()
                    await listener.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("worker.listen_error", error=type(exc).__name__)
                await asyncio.sleep(self.settings.worker_poll_seconds)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            with contextlib.suppress(OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await job()
            await asyncio.sleep(seconds)
