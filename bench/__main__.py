"""Runs `callout serve` as a real process on a fresh database, drives it like a CAD, and prints the figures.

- webhook_to_sms_ms: from a CAD POST accepted (202 received) to the first Twilio request for it at the fake,
  at a steady BENCH_RATE incidents/s (50) for BENCH_SECONDS (60).
- intake_events_per_s, intake_p99_ms: signed DV events at saturation (BENCH_CONCURRENCY posters, 10 s); every
  one also queues a callout that the worker texts meanwhile.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import make_url

from callout import embedded
from shared.db import libpq_url
from tests.factories import dv_event, make_program, signed
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio

ADMIN = "bench-admin-token-0123456789abcdef"
RATE = float(os.environ.get("BENCH_RATE", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", str(os.cpu_count() or 1)))
SATURATION_SECONDS = float(os.environ.get("BENCH_SATURATION_SECONDS", "10"))


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    server = (
        os.environ.get("CALLOUT_BENCH_DATABASE_URL")
        or os.environ.get("CALLOUT_TEST_DATABASE_URL")
        or embedded.start(Path(".callout/bench"))
    )
    name = f"callout_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(libpq_url(server))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def callout_server(database_url: str, twilio: FakeTwilio, log: Path) -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "CALLOUT_ENVIRONMENT": "production",
        "CALLOUT_DATABASE_URL": database_url,
        "CALLOUT_PORT": str(port),
        "CALLOUT_ADMIN_TOKEN": ADMIN,
        "CALLOUT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CALLOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLOUT_TWILIO_FROM": FROM,
        "CALLOUT_TWILIO_API_BASE": twilio.base_url,
    }
    callout = str(Path(sys.executable).with_name("callout"))
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            callout, "serve", "--processes", str(PROCESSES), env=env, stdout=out, stderr=out
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                for _ in range(300):  # a person waiting for a server to come up, not a test
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            yield base
        finally:
            process.terminate()
            await process.wait()


def priority_event() -> dict[str, Any]:
    """The commonest screened-in call: the priority tier, whose first alert is one text."""
    return dv_event(screen={"instrument": "LAP", "answers": {"q3": "yes"}}, cautions=[])


async def post(http: httpx.AsyncClient) -> tuple[float, httpx.Response]:
    body = json.dumps(priority_event()).encode()
    started = time.perf_counter()
    response = await http.post("/v1/cad/metro/events", content=body, headers=signed(body))
    return started, response


async def webhook_to_sms(http: httpx.AsyncClient, twilio: FakeTwilio) -> dict[str, float]:
    count = int(RATE * SECONDS)
    accepted: dict[str, float] = {}
    duplicate_codes: set[str] = set()

    async def one() -> None:
        _, response = await post(http)
        assert response.status_code == 202, response.text
        code = response.json()["callout"]["code"]
        (duplicate_codes.add(code) if code in accepted else accepted.__setitem__(code, time.perf_counter()))

    start, tasks = time.perf_counter(), []
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / RATE - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    messages = await twilio.wait_for_messages(count, within=300)
    arrived = {m.body.split(":")[0].removeprefix("Callout "): m.received_at for m in messages}
    latencies = [
        (arrived[code] - at) * 1000 for code, at in accepted.items() if code not in duplicate_codes and code in arrived
    ]
    return {
        "p50": round(statistics.median(latencies), 1),
        "p99": round(p99(latencies), 1),
        "samples": len(latencies),
    }


async def intake_saturation(http: httpx.AsyncClient) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + SATURATION_SECONDS

    async def poster() -> None:
        while time.perf_counter() < deadline:
            started, response = await post(http)
            assert response.status_code == 202, response.text
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(poster() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {
        "events_per_s": round(len(latencies) / elapsed, 1),
        "p99_ms": round(p99(latencies), 1),
        "p50_ms": round(statistics.median(latencies), 1),
    }


async def main() -> None:
    twilio = FakeTwilio()
    await twilio.start()
    log = Path(".callout/bench-server.log")
    log.parent.mkdir(exist_ok=True)
    try:
        async with fresh_database() as url, callout_server(url, twilio, log) as base:
            limits = httpx.Limits(max_connections=CONCURRENCY * 4)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
                await make_program(http, {"Authorization": f"Bearer {ADMIN}"})
                print(f"webhook -> SMS: {RATE:g} incidents/s for {SECONDS:g} s ...", flush=True)
                sms = await webhook_to_sms(http, twilio)
                print(f"  p50 {sms['p50']} ms, p99 {sms['p99']} ms over {sms['samples']} incidents", flush=True)
                print(f"intake at saturation: {CONCURRENCY} posters for {SATURATION_SECONDS:g} s ...", flush=True)
                intake = await intake_saturation(http)
                print(f"  {intake['events_per_s']} events/s, p50 {intake['p50_ms']} ms, p99 {intake['p99_ms']} ms")
    finally:
        await twilio.stop()
    figures: dict[str, Any] = {
        "webhook_to_sms_ms": {"p50": sms["p50"], "p99": sms["p99"]},
        "intake_events_per_s": intake["events_per_s"],
        "intake_p99_ms": intake["p99_ms"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
