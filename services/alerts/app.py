"""The alerts service and its worker, alone or as part of the whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from services.alerts import leases
from services.alerts.channels import Channel, ConsoleChannel, TwilioChannel
from services.alerts.directory_client import DirectoryClient
from services.alerts.models import CadNotice, Notification
from services.alerts.routes import router
from services.alerts.settings import AlertsSettings
from services.alerts.worker import REFUSED, Worker, oldest_overdue, waiting
from shared.app import Service
from shared.db import libpq_url
from shared.feeds import read_feed
from shared.metrics import CAD_FEED_EVENTS, CAD_FEED_QUIET, CAD_FEED_SILENT, OLDEST_OVERDUE, QUEUE_DEPTH, UNHELD_WORK
from shared.tables import Agency, Callout, FeedSilence

TransportFactory = Callable[[FastAPI], httpx.AsyncBaseTransport]


def channel_for(settings: AlertsSettings) -> Channel:
    if not settings.twilio_configured:
        return ConsoleChannel()
    return TwilioChannel(
        account_sid=settings.twilio_account_sid or "",
        auth_token=settings.twilio_auth_token or "",
        from_=settings.twilio_from or "",
        api_base=str(settings.twilio_api_base),
        timeout=settings.twilio_timeout_seconds,
        validity_seconds=settings.sms_validity_seconds,
    )


async def overdue_report(app: FastAPI) -> dict[str, Any]:
    """The oldest overdue escalation step or send, and the work a worker that died still holds, for /readyz: a
    stalled or dead worker shows here first. And each agency whose notify URL the worker refused to post to,
    with why: its dispatchers are not told of acceptances until an admin corrects it."""
    async with app.state.db.sessionmaker() as session:
        late = await oldest_overdue(session, app.state.clock.now())
        unheld, _ = await leases.unheld(session)
        refused = (
            await session.execute(
                select(Agency.slug, func.max(CadNotice.error))
                .join(Agency, Agency.id == CadNotice.agency_id)
                .where(CadNotice.status == "pending", CadNotice.error.startswith(REFUSED))
                .group_by(Agency.slug)
            )
        ).all()
    return {
        "oldest_overdue_seconds": None if late is None else round(late, 1),
        "work_held_by_no_worker": unheld,
        "notify_refused": {slug: error.removeprefix(REFUSED) for slug, error in refused},
    }


async def queue_metrics(app: FastAPI) -> None:
    """What is due now and waiting, by kind of work, how late the most overdue timer is, and each CAD feed."""
    now = app.state.clock.now()
    async with app.state.db.sessionmaker() as session:
        for kind, model in (("callouts", Callout), ("sends", Notification), ("cad_notices", CadNotice)):
            due = await session.scalar(select(func.count()).where(waiting(model), model.due_at <= now))
            QUEUE_DEPTH.labels(kind=kind).set(due or 0)
        OLDEST_OVERDUE.set(await oldest_overdue(session, now) or 0)
        UNHELD_WORK.set((await leases.unheld(session))[0])
        silent = set(await session.scalars(select(FeedSilence.agency_id)))
        for agency in await session.scalars(select(Agency)):
            feed = await read_feed(session, agency, now)
            quiet = (now - feed.last_sign).total_seconds() if feed.last_sign else float("nan")
            CAD_FEED_QUIET.labels(agency=agency.slug).set(quiet)
            CAD_FEED_EVENTS.labels(agency=agency.slug).set(feed.events_last_hour)
            CAD_FEED_SILENT.labels(agency=agency.slug).set(int(agency.id in silent))


def service() -> Service:
    return Service(
        "alerts",
        routers=[router],
        readiness=overdue_report,
        metrics=queue_metrics,
        tags=[{"name": "alerts", "description": "Twilio callbacks, replies, the advocate's link"}],
    )


def worker_service(
    settings: AlertsSettings,
    *,
    directory_transport: TransportFactory | None = None,
    run: bool = True,
) -> Service:
    """The worker's resources, opened and closed with the app; `run=False` leaves driving it to a test."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        channel = channel_for(settings)
        # Agencies' URLs are checked at every send, and reached at the address checked (shared/egress.py).
        notify_http = app.state.egress.client(timeout=10)
        http = httpx.AsyncClient(
            base_url=settings.directory_base,
            transport=directory_transport(app) if directory_transport else None,
            # Its own credential, good only for asking who is on call: never the admin token, over plain HTTP.
            headers={"Authorization": f"Bearer {settings.directory_credential}"},
            timeout=settings.directory_timeout_seconds,
        )
        worker = Worker(
            db=app.state.db,
            clock=app.state.clock,
            channel=channel,
            directory=DirectoryClient(
                http, clock=app.state.clock, fresh_for=timedelta(seconds=settings.roster_fresh_seconds)
            ),
            notify_http=notify_http,
            settings=settings,
        )
        app.state.worker = worker
        task = None
        if run:
            task = asyncio.create_task(worker.run_forever(libpq_url(app.state.db.url)), name="alerts-worker")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await http.aclose()
            await notify_http.aclose()
            await channel.close()

    return Service("worker", lifespan=lifespan, readiness=overdue_report)
