"""Prometheus metrics, at /metrics on every service: request latency, the worker's queues and its oldest overdue
step, and how long each handoff took. Labels carry routes, tiers and kinds of work, never identifiers.

Each process counts for itself; with `serve --processes N`, set PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode) for one scrape to sum them."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge, Histogram

REQUEST_SECONDS = Histogram(
    "callout_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HANDOFF_SECONDS = Histogram(
    "callout_handoff_seconds",
    "From CAD's event being accepted to each handoff: first alert handed to the provider, acceptance, en route, "
    "on scene, survivor contacted",
    ["interval", "tier"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 86400),
)
QUEUE_DEPTH = Gauge("callout_queue_depth", "Work due now and waiting for a worker", ["kind"])
OLDEST_OVERDUE = Gauge("callout_oldest_overdue_seconds", "How late the most overdue timer is (0: none late)")
CAD_FEED_QUIET = Gauge(
    "callout_cad_feed_seconds_since_last_sign",
    "Seconds since the agency's CAD feed last sent an event or heartbeat",
    ["agency"],
)
CAD_FEED_EVENTS = Gauge(
    "callout_cad_feed_events_last_hour", "Events the agency's CAD feed sent in the last hour", ["agency"]
)
CAD_FEED_SILENT = Gauge(
    "callout_cad_feed_silent", "1 while the agency's CAD feed is silent (its people told)", ["agency"]
)
UNHELD_WORK = Gauge("callout_unheld_work", "Work leased by a worker that is gone, not yet taken up by another")


def handoff(interval: str, tier: str, since: datetime, now: datetime) -> None:
    HANDOFF_SECONDS.labels(interval=interval, tier=tier).observe(max((now - since).total_seconds(), 0.0))
