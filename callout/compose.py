"""Assembling services into apps: all in one process, or one service alone."""

from __future__ import annotations

from enum import StrEnum

from fastapi import FastAPI

from services.alerts import app as alerts
from services.alerts.settings import AlertsSettings
from services.directory import app as directory
from services.intake import app as intake
from shared.app import create_app
from shared.clock import Clock


class Part(StrEnum):
    all = "all"
    intake = "intake"
    directory = "directory"
    alerts = "alerts"
    worker = "worker"


def build(part: Part, settings: AlertsSettings, database_url: str, *, clock: Clock | None = None) -> FastAPI:
    services = {
        Part.all: [intake.service(), directory.service(), alerts.service(), alerts.worker_service(settings)],
        Part.intake: [intake.service()],
        Part.directory: [directory.service()],
        Part.alerts: [alerts.service()],
        Part.worker: [alerts.worker_service(settings)],
    }[part]
    return create_app(settings, services, clock=clock, database_url=database_url)
