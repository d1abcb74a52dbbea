"""Prometheus metrics at /metrics: request latency by route, the worker's queues and oldest overdue timer, and how
long each handoff took."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.alerts.worker import Worker
from shared.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.factories import PHONES, dv_event, make_program, post_event
from tests.fake_twilio import FakeTwilio


@pytest.fixture(autouse=True)
async def program(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await make_program(client, admin)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_timed_by_route_never_by_path(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    await post_event(client, dv_event())
    after = await scrape(client)

    route = {"method": "POST", "route": "/v1/cad/{agency}/events", "status": "202"}
    assert value(after, "callout_http_request_duration_seconds_count", **route) == (
        value(before, "callout_http_request_duration_seconds_count", **route) + 1
    )
    # No path's identifiers in a request's labels (the CAD feed gauges are per agency, by design: a bounded set).
    http = [labels for name, labels in after if name.startswith("callout_http_")]
    assert http and not any("metro" in str(labels) for labels in http)


async def test_queues_and_the_oldest_overdue_timer_show_what_waits_for_a_worker(
    client: httpx.AsyncClient, worker: Worker, clock: FakeClock
) -> None:
    await post_event(client, dv_event())
    clock.advance(timedelta(seconds=30))

    waiting = await scrape(client)
    await worker.run_once()
    done = await scrape(client)

    assert value(waiting, "callout_queue_depth", kind="callouts") == 1
    assert value(waiting, "callout_oldest_overdue_seconds") == 30
    assert value(done, "callout_queue_depth", kind="callouts") == 0
    assert value(done, "callout_oldest_overdue_seconds") == 0


async def test_each_handoff_is_timed_from_the_cad_event(
    client: httpx.AsyncClient, worker: Worker, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    before = await scrape(client)
    await post_event(client, dv_event())
    clock.advance(timedelta(seconds=3))
    await worker.run_once()
    clock.advance(timedelta(seconds=40))
    await fake_twilio.text_in(f"{PUBLIC_URL}/v1/twilio/sms", PHONES["luis"], "1")
    after = await scrape(client)

    def added(interval: str, suffix: str) -> float:
        name = f"callout_handoff_seconds_{suffix}"
        labels = {"interval": interval, "tier": "immediate"}
        return value(after, name, **labels) - value(before, name, **labels)

    assert (added("first_alert", "count"), added("first_alert", "sum")) == (1, 3)
    assert (added("acceptance", "count"), added("acceptance", "sum")) == (1, 43)
