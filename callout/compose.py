"""Assembling services into apps: all in one process, or one service alone."""

from __future__ import annotations

from enum import StrEnum

from fastapi import FastAPI

from services.alerts import app as alerts
from services.alerts.settings import AlertsSettings
from services.directory import app as directory
from services.intake import app as intake
from services.reports import app as reports
from shared.app import create_app
from shared.clock import Clock
from shared.egress import Resolver


class Part(StrEnum):
    all = "all"
    intake = "intake"
    directory = "directory"
    alerts = "alerts"
    worker = "worker"
    reports = "reports"


def build(
    part: Part,
    settings: AlertsSettings,
    database_url: str,
    *,
    clock: Clock | None = None,
    run_worker: bool = True,
    directory_transport: alerts.TransportFactory | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """`run_worker=False` and a directory transport let tests drive the worker step by step, in-process; a
    resolver answers for DNS in their place."""
    worker = alerts.worker_service(settings, run=run_worker, directory_transport=directory_transport)
    services = {
        Part.all: [intake.service(), directory.service(), alerts.service(), reports.service(), worker],
        Part.intake: [intake.service()],
        Part.directory: [directory.service()],
        Part.alerts: [alerts.service()],
        Part.worker: [worker],
        Part.reports: [reports.service()],
    }[part]
    return create_app(settings, services, clock=clock, database_url=database_url, resolver=resolver)
