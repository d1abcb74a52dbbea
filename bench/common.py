"""What every phase of the bench shares: a fresh database, the production environment Callout runs in, a server
on it, the load's event, a percentile, and each process's peak memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import statistics
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy import make_url

from callout import embedded
from shared.db import libpq_url
from tests.factories import dv_event
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio

ADMIN = "bench-admin-token-0123456789abcdef"
PROCESSES = int(os.environ.get("BENCH_PROCESSES", str(os.cpu_count() or 1)))
MEMORY_LIMIT_MB = 150  # what each process may reach under the bench's load
DATA_KEY = "bench-data-key-0123456789abcdef0123456789"


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
    await admin_sql(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:  # a connection of its own: the server may have been restarted meanwhile (an operator's drill)
        await admin_sql(server, f'DROP DATABASE "{name}" WITH (FORCE)')


async def admin_sql(server: str, statement: str) -> None:
    admin = await asyncpg.connect(libpq_url(server))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def production_env(database_url: str, twilio: FakeTwilio, public_url: str) -> dict[str, str]:
    """The environment an operator gives Callout in production: its database, its secrets, and Twilio (here the
    fake, reached through CALLOUT_TWILIO_API_BASE)."""
    return {
        **os.environ,
        "CALLOUT_ENVIRONMENT": "production",
        "CALLOUT_DATABASE_URL": database_url,
        "CALLOUT_ADMIN_TOKEN": ADMIN,
        "CALLOUT_DATA_KEY": DATA_KEY,
        "CALLOUT_PUBLIC_URL": public_url,
        "CALLOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CALLOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CALLOUT_TWILIO_FROM": FROM,
        "CALLOUT_TWILIO_API_BASE": twilio.base_url,
    }


def priority_event(**overrides: Any) -> dict[str, Any]:
    """The commonest screened-in call: the priority tier, whose first alert is one text. Each at an address of
    its own, as calls are: one address called from a thousand times is another test (premise signals)."""
    location = {"address": f"{random.randrange(1, 99999)} Ziggurat Lane", "city": "Springfield", "state": "IL"}  # noqa: S311
    return dv_event(screen={"instrument": "LAP", "answers": {"q3": "yes"}}, cautions=[], location=location, **overrides)


def peak_memory_mb(pid: int) -> float | None:
    """The most memory the process has held so far (its resident set's high-water mark, Linux's VmHWM), in MiB;
    None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if kib is None else round(kib / 1024, 1)


def over_limit(peaks: dict[str, float | None]) -> list[str]:
    return [name for name, peak in peaks.items() if peak is not None and peak > MEMORY_LIMIT_MB]


def show_peaks(peaks: dict[str, float | None]) -> None:
    shown = ", ".join(f"{name} {peak:g}" if peak is not None else f"{name} ?" for name, peak in peaks.items())
    over = over_limit(peaks)
    verdict = f"OVER {MEMORY_LIMIT_MB} MiB: {', '.join(over)}" if over else f"each within {MEMORY_LIMIT_MB} MiB"
    print(f"  peak memory (VmHWM, MiB): {shown}; {verdict}", flush=True)


@dataclass
class Served:
    """`callout serve --processes N` running: its address, and its processes (a supervisor and N servers)."""

    base: str
    pid: int

    def peaks(self) -> dict[str, float | None]:
        """Each process's peak memory so far: the supervisor's, each server's, and the helper multiprocessing
        starts beside them (its resource tracker)."""
        try:
            children = sorted(psutil.Process(self.pid).children(recursive=True), key=lambda p: p.pid)
        except psutil.NoSuchProcess:
            children = []
        found = {"supervisor": peak_memory_mb(self.pid)}
        servers = 0
        for child in children:
            with contextlib.suppress(psutil.Error):
                if "resource_tracker" in " ".join(child.cmdline()):
                    found["resource tracker"] = peak_memory_mb(child.pid)
                    continue
            servers += 1
            found[f"server {servers}"] = peak_memory_mb(child.pid)
        return found


@asynccontextmanager
async def callout_server(database_url: str, twilio: FakeTwilio, log: Path) -> AsyncIterator[Served]:
    """`callout serve`, one process per core as an operator would run it on this machine, on `database_url`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**production_env(database_url, twilio, f"http://127.0.0.1:{port}"), "CALLOUT_PORT": str(port)}
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
            yield Served(base, process.pid)
        finally:
            process.terminate()
            await process.wait()
