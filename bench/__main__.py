"""Runs `callout serve` as a real process on a fresh database, drives it like a CAD, and prints the figures.

- webhook_to_sms_ms: from a CAD POST accepted (202 received) to the first Twilio request for it at the fake,
  at a steady BENCH_RATE new DV incidents/s (50) for BENCH_SECONDS (60), after BENCH_WARM_UP_SECONDS (5) of the
  same load whose figures are printed but not in the result (a fresh process prepares its statements then).
- intake_events_per_s, intake_p99_ms: signed events at saturation (BENCH_CONCURRENCY posters, 10 s), of the
  kind a CAD sends most: unit status updates to open incidents. intake_new_incidents_per_s: the same with new
  DV incidents, each also queueing a callout that the workers route and text meanwhile.
- timer_lateness_ms: 10,000 open callouts whose next escalation steps fall due over 10 minutes; how late each
  of those due in the first 30 s starts.
- reports: the summaries, the dashboard and the CSV at 100,000 incidents over a year (bench/reports.py).
- faults: the escalation engine under failure (bench/faults.py): split services, a fake Twilio failing 43 % of
  requests, a worker SIGKILLed every few seconds; first-text latency, duplicates, lost, unheard, misattributed.
The server runs one process per core (`serve --processes`), as an operator would run it on this machine. Every
phase prints the peak memory of each process it ran (VmHWM), against a limit of 150 MiB each.
BENCH_ONLY=quiet, reports or faults runs one phase alone. The last line printed is one JSON object with the
figures (the reports' and faults' phases under "reports" and "faults").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

from bench import faults, reports
from bench.common import (
    ADMIN,
    DATA_KEY,
    callout_server,
    fresh_database,
    over_limit,
    p99,
    priority_event,
    show_peaks,
)
from shared.crypto import Sealer
from shared.db import libpq_url
from tests.factories import HOTLINE, PHONES, make_program, signed
from tests.fake_twilio import FakeTwilio

RATE = float(os.environ.get("BENCH_RATE", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
# Each process's first seconds prepare its statements and fill its caches: timed apart, and printed.
WARM_UP = float(os.environ.get("BENCH_WARM_UP_SECONDS", "5"))
# Posters at once: a busy dispatch centre's CAD adapters. More only queue (p99 = posters / rate, roughly).
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
SATURATION_SECONDS = float(os.environ.get("BENCH_SATURATION_SECONDS", "10"))
OPEN_CALLOUTS = int(os.environ.get("BENCH_OPEN_CALLOUTS", "10000"))
TIMER_SPREAD = float(os.environ.get("BENCH_TIMER_SPREAD", "600"))  # next steps fall due over 10 minutes...
TIMER_WINDOW = float(os.environ.get("BENCH_TIMER_WINDOW", "30"))  # ...of which the bench watches the first 30 s
# One phase alone: "quiet" (the figures above), "reports" (bench/reports.py) or "faults" (bench/faults.py); unset,
# all three.
PHASES = ("quiet", "reports", "faults")
ONLY = os.environ.get("BENCH_ONLY", "")


async def webhook_to_sms(
    base: str, twilio: FakeTwilio, seconds: float
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Latency figures, and the events that made the incidents (for the updates that follow)."""
    count = int(RATE * seconds)
    already = len(twilio.messages)
    accepted: dict[str, float] = {}
    duplicate_codes: set[str] = set()
    incidents: list[dict[str, Any]] = []
    session = aiohttp.ClientSession()

    async def one() -> None:
        event = priority_event()
        body = json.dumps(event).encode()
        async with session.post(f"{base}/v1/cad/metro/events", data=body, headers=signed(body)) as response:
            assert response.status == 202, await response.text()
            receipt = await response.json()
        incidents.append(event)
        code = receipt["callout"]["code"]
        if code in accepted:  # codes are short: two alike cannot be told apart at the fake
            duplicate_codes.add(code)
        accepted[code] = time.perf_counter()

    start, tasks = time.perf_counter(), []
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / RATE - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    await session.close()
    messages = (await twilio.wait_for_messages(already + count, within=300))[already:]
    arrived = {m.body.split(":")[0].removeprefix("Callout "): m.received_at for m in messages}
    latencies = [
        (arrived[code] - at) * 1000 for code, at in accepted.items() if code not in duplicate_codes and code in arrived
    ]
    figures = {
        "p50": round(statistics.median(latencies), 1),
        "p99": round(p99(latencies), 1),
        "samples": len(latencies),
    }
    return figures, incidents


def prepare(events: Callable[[], dict[str, Any]], count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Events made and signed beforehand: a load generator that signs as it goes measures itself."""
    prepared = []
    for _ in range(count):
        body = json.dumps(events()).encode()
        prepared.append((body, signed(body)))
    return prepared


async def post(session: aiohttp.ClientSession, base: str, body: bytes, headers: dict[str, str]) -> float:
    """One event; how long intake took to accept it, in ms."""
    started = time.perf_counter()
    async with session.post(f"{base}/v1/cad/metro/events", data=body, headers=headers) as response:
        assert response.status == 202, await response.text()
        await response.read()
    return (time.perf_counter() - started) * 1000


async def intake_saturation(base: str, events: Callable[[], dict[str, Any]]) -> dict[str, float]:
    """Signed events from CONCURRENCY posters as fast as intake takes them, for SATURATION_SECONDS.
    Posted with aiohttp: httpx alone used most of a core here."""
    queue = iter(prepare(events, int(SATURATION_SECONDS * 1500)))  # more than intake takes in the time
    latencies: list[float] = []
    deadline = time.perf_counter() + SATURATION_SECONDS

    async def poster(session: aiohttp.ClientSession) -> None:
        for body, headers in queue:
            if time.perf_counter() >= deadline:
                return
            latencies.append(await post(session, base, body, headers))

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY * 2)) as session:
        await asyncio.gather(*(poster(session) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {
        "events_per_s": round(len(latencies) / elapsed, 1),
        "p99_ms": round(p99(latencies), 1),
        "p50_ms": round(statistics.median(latencies), 1),
    }


def unit_updates(incidents: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """What a CAD sends most: status changes of the units on incidents already open, each as its first event
    with the units' new status."""
    statuses = itertools.cycle(["dispatched", "en_route", "on_scene", "transporting", "cleared"])

    def next_event() -> dict[str, Any]:
        first = random.choice(incidents)  # noqa: S311 - load mix
        return {**first, "status": "updated", "units": [{"unit": "A12", "status": next(statuses)}]}

    return next_event


async def drained(database_url: str) -> None:
    """Wait (two minutes at most) until the worker has caught up with the callouts the runs before made."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        for _ in range(1200):
            pending = await conn.fetchval(
                "SELECT (SELECT count(*) FROM callouts WHERE status = 'pending')"
                " + (SELECT count(*) FROM notifications WHERE status = 'pending')"
            )
            if not pending:
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def timer_lateness(database_url: str) -> dict[str, float]:
    """OPEN_CALLOUTS callouts waiting on their first step, their timers falling due over TIMER_SPREAD seconds:
    how late does each next step due in the first TIMER_WINDOW seconds start? Seeded straight into the
    database, as if intake had made them."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        agency_id, roster = (
            await conn.fetchval("SELECT id FROM agencies WHERE slug = 'metro'"),
            {
                "primary": [
                    {
                        "role": "primary",
                        "advocate_id": 1,
                        "key": "luis",
                        "phone": PHONES["luis"],
                        "language_match": None,
                        "reason": "bench",
                    }
                ],
                "backup": [
                    {
                        "role": "backup",
                        "advocate_id": 3,
                        "key": "mei",
                        "phone": PHONES["mei"],
                        "language_match": None,
                        "reason": "bench",
                    }
                ],
                "supervisor": [],
                "hotline": HOTLINE,
            },
        )
        policy = {
            "steps": [
                {"notify": ["primary"], "via": ["sms"], "wait_seconds": 600},
                {"notify": ["backup"], "via": ["sms"], "wait_seconds": 600},
            ],
            "repeat": 0,
        }
        start = datetime.now(UTC) + timedelta(seconds=5)
        incidents, callouts = [], []
        for n in range(OPEN_CALLOUTS):
            incident_id, due = uuid.uuid4(), start + timedelta(seconds=TIMER_SPREAD * n / OPEN_CALLOUTS)
            incidents.append(
                (
                    incident_id,
                    f"INC-B{n:07d}",
                    agency_id,
                    f"BENCH-{n}",
                    "open",
                    "DVA",
                    "priority",
                    Sealer([DATA_KEY]).seal({}),
                    False,
                    start,
                    start,
                )
            )
            callouts.append(
                (
                    uuid.uuid4(),
                    incident_id,
                    agency_id,
                    "BNCH",
                    "priority",
                    "1",
                    "alerting",
                    due,
                    json.dumps(roster),
                    json.dumps(policy),
                    0,
                    1,
                    start,
                    start,
                )
            )
        await conn.copy_records_to_table(
            "incidents",
            records=incidents,
            columns=[
                "id",
                "ref",
                "agency_id",
                "cad_incident_id",
                "status",
                "type_code",
                "tier",
                "details",
                "interpreter_needed",
                "created_at",
                "updated_at",
            ],
        )
        await conn.executemany(
            "INSERT INTO callouts (id, incident_id, agency_id, code, tier, area, status, due_at, roster, policy, step,"
            " step_seq, created_at, updated_at, attempts, round, declined) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
            " $9::jsonb, $10::jsonb, $11, $12, $13, $14, 0, 0, '[]')",
            callouts,
        )
        await asyncio.sleep(5 + TIMER_WINDOW + 3)  # the bench lets the timers fall due in real time
        rows = await conn.fetch(
            "SELECT c.id, t.observed_at FROM callouts c"
            " JOIN timeline_entries t ON t.incident_id = c.incident_id AND t.stage = 'escalated'"
            " WHERE c.code = 'BNCH'"
        )
        watched = {c[0]: c[7] for c in callouts if c[7] <= start + timedelta(seconds=TIMER_WINDOW)}
        late = [(r["observed_at"] - watched[r["id"]]).total_seconds() * 1000 for r in rows if r["id"] in watched]
        missing = len(watched) - len(late)
    finally:
        await conn.close()
    return {"p50": round(statistics.median(late), 1), "p99": round(p99(late), 1), "missed": missing}


async def quiet_figures() -> dict[str, Any]:
    """The figures of a quiet day: latency, intake's capacity, timers; printed, and returned."""
    twilio = FakeTwilio()
    await twilio.start()
    log = Path(".callout/bench-server.log")
    log.parent.mkdir(exist_ok=True)
    try:
        async with fresh_database() as url, callout_server(url, twilio, log) as served:
            base = served.base
            limits = httpx.Limits(max_connections=CONCURRENCY * 4)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
                await make_program(http, {"Authorization": f"Bearer {ADMIN}"})
                print(f"warm-up: {RATE:g} incidents/s for {WARM_UP:g} s, not measured", flush=True)
                cold, _ = await webhook_to_sms(base, twilio, WARM_UP)
                print(f"  p50 {cold['p50']} ms, p99 {cold['p99']} ms (a fresh start)", flush=True)
                print(f"webhook -> SMS: {RATE:g} incidents/s for {SECONDS:g} s ...", flush=True)
                sms, sms_incidents = await webhook_to_sms(base, twilio, SECONDS)
                print(f"  p50 {sms['p50']} ms, p99 {sms['p99']} ms over {sms['samples']} incidents", flush=True)
                print(
                    f"intake at saturation, unit updates: {CONCURRENCY} posters, {SATURATION_SECONDS:g} s", flush=True
                )
                intake = await intake_saturation(base, unit_updates(sms_incidents))
                print(f"  {intake['events_per_s']} events/s, p50 {intake['p50_ms']} ms, p99 {intake['p99_ms']} ms")
                print(f"intake at saturation, new DV incidents (each a callout): {SATURATION_SECONDS:g} s", flush=True)
                new = await intake_saturation(base, priority_event)
                print(f"  {new['events_per_s']} events/s, p50 {new['p50_ms']} ms, p99 {new['p99_ms']} ms")
            await drained(url)
            print(
                f"timer lateness: {OPEN_CALLOUTS} open callouts due over {TIMER_SPREAD:g} s, first {TIMER_WINDOW:g} s",
                flush=True,
            )
            timers = await timer_lateness(url)
            print(f"  p50 {timers['p50']} ms, p99 {timers['p99']} ms, {timers['missed']} not started", flush=True)
            peaks = served.peaks()
            show_peaks(peaks)
    finally:
        await twilio.stop()
    figures: dict[str, Any] = {
        "webhook_to_sms_ms": {"p50": sms["p50"], "p99": sms["p99"]},
        "intake_events_per_s": intake["events_per_s"],
        "intake_p99_ms": intake["p99_ms"],
        "intake_new_incidents_per_s": new["events_per_s"],
        "timer_lateness_ms": {"p50": timers["p50"], "p99": timers["p99"]},
        "peak_memory_mb": peaks,
        "peak_memory_over_limit": over_limit(peaks),
    }
    return figures


async def main() -> None:
    if ONLY not in ("", *PHASES):
        sys.exit(f"BENCH_ONLY={ONLY!r}: {', '.join(PHASES)}, or unset for all")
    figures: dict[str, Any] = {}
    if ONLY in ("", "quiet"):
        figures.update(await quiet_figures())
    if ONLY in ("", "reports"):
        figures["reports"] = await reports.figures()
    if ONLY in ("", "faults"):
        figures["faults"] = await faults.figures()
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
