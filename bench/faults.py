"""The faults phase: Callout's escalation engine under failure, measured as an independent fault campaign would.

Callout runs as an operator splits it: one `serve --service directory`, one `--service intake` and WORKERS
`--service worker` processes, in production, on a database of their own. The fake Twilio fails creates at random
(30 % 503, 10 % 429 with Retry-After: 1, 3 % hangs of 30 s, half of them after doing the work) and lookups too
(503, 429). A CAD posts priority-tier DV incidents (the first alert: one text to the primary) at BENCH_FAULT_RATE
a second for BENCH_FAULT_SECONDS, and meanwhile every BENCH_KILL_SECONDS or so one worker, at random, is SIGKILLed
and a replacement started. Once the first alerts have settled, what the fake recorded is held against what the
database says:

- first_text_s: from the 202 to the first text the fake recorded for that callout; never_texted: none at all.
- duplicates: alerts the fake recorded more than once (a text's body and a call's status callback are each
  unique to one alert), in all and per ten kills.
- lost: accepted events whose incident has no callout, or whose callout has no notification.
- unheard: open callouts none of whose notifications ever reached the provider.
- misattributed: notifications whose provider id names another alert's message at the fake;
  sent_not_at_provider: notification_sent entries whose provider id the fake never issued.

Targets are printed beside the figures, not asserted: the bench measures, the tests decide. Each process logs
to .callout/bench-faults-<name>.log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

from bench.common import (
    ADMIN,
    DATA_KEY,
    MEMORY_LIMIT_MB,
    fresh_database,
    over_limit,
    peak_memory_mb,
    priority_event,
    production_env,
)
from shared.crypto import Sealer
from shared.db import libpq_url
from tests.factories import make_program, signed
from tests.fake_twilio import FakeTwilio, FaultRates, Message
from tests.processes import CALLOUT, free_port

SEALER = Sealer([DATA_KEY])  # texts are sealed at rest: opened to compare with what the fake received

FAULT_RATE = float(os.environ.get("BENCH_FAULT_RATE", "5"))
FAULT_SECONDS = float(os.environ.get("BENCH_FAULT_SECONDS", "120"))
KILL_SECONDS = float(os.environ.get("BENCH_KILL_SECONDS", "4"))
KILL_JITTER = 0.2  # each interval between kills is KILL_SECONDS ± 20 %, so kills fall at no fixed phase
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "180"))
SEED = int(os.environ.get("BENCH_FAULT_SEED", "9"))  # the kills' victims and timing; the fake's faults have theirs
WORKERS = 3
LOGS = Path(".callout")
READY_WITHIN = 60.0  # seconds a process may take to migrate and come up
# Connections per process, as an operator sizes them for five processes on one PostgreSQL: the default (20, and
# half again in overflow, opened at start-up) times five is more than a max_connections of 100 allows.
POOL_SIZE = os.environ.get("BENCH_FAULT_POOL_SIZE", "8")

TARGETS = {
    "lost": "0",
    "unheard": "0",
    "first_text_p99": "<= 15 s",
    "first_text_max": "<= 60 s",
    "duplicates_per_10_kills": "<= 1",
    "misattributed": "0",
    "sent_not_at_provider": "0",
}


def code_version() -> dict[str, int]:
    """Each source file of Callout with its modification time. The campaign starts a worker every few seconds,
    each loading the code afresh: an edit during the run would have workers of different versions at once."""
    package_roots = [Path(name) for name in ("callout", "services", "shared")]
    return {str(path): path.stat().st_mtime_ns for root in package_roots for path in sorted(root.rglob("*.py"))}


def changed_files(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def faulty_rates() -> FaultRates:
    return FaultRates(server_error=0.30, rate_limited=0.10, hang=0.03, hang_seconds=30)


# -- the deployment ---------------------------------------------------------------------------------------------


@dataclass
class Process:
    """One `callout serve --service ...` process, its log in a file of its own."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path
    peak_mb: float | None = None  # its peak memory, read as it is stopped or killed

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, name: str, service: str, port: int, env: dict[str, str]) -> Process:
        log = LOGS / f"bench-faults-{name}.log"
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            process = await asyncio.create_subprocess_exec(
                CALLOUT, "serve", "--service", service, "--port", str(port), env=env, stdout=out, stderr=out
            )
        started = cls(name, port, process, log)
        try:
            await started.ready()
        except BaseException:  # not up, or the campaign is being torn down: no process outlives the bench
            await started.kill()
            raise
        return started

    async def ready(self) -> None:
        """Wait until /readyz answers 200 (the schema is current, the app is up), READY_WITHIN at most."""
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as http:
            deadline = time.perf_counter() + READY_WITHIN
            while time.perf_counter() < deadline:  # a person waiting for a server to come up, not a test
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}: see {self.log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {READY_WITHIN:g} s: see {self.log}")

    def note_peak(self) -> None:
        self.peak_mb = peak_memory_mb(self.process.pid) or self.peak_mb

    async def kill(self) -> None:
        self.note_peak()
        with contextlib.suppress(ProcessLookupError):  # it may have exited already (a failed start)
            self.process.kill()  # SIGKILL: no shutdown, no goodbye to the database, as a crash or an OOM kill
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.note_peak()
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=15)
            except TimeoutError:
                await self.kill()


@dataclass
class Deployment:
    env: dict[str, str]
    directory: Process
    intake: Process
    workers: list[Process] = field(default_factory=list)
    killed: list[Process] = field(default_factory=list)
    kills: int = 0
    replacement_seconds: list[float] = field(default_factory=list)  # how long each replacement took to come up
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _up: asyncio.Condition = field(default_factory=asyncio.Condition)  # notified as a worker comes up

    async def start_worker(self) -> Process:
        name = f"worker-{next(self._numbers)}"
        worker = await Process.start(name, "worker", free_port(), self.env)
        async with self._up:
            self.workers.append(worker)
            self._up.notify_all()
        return worker

    async def kill_and_replace(self, rng: random.Random) -> None:
        """SIGKILL one of the workers that are up, at random, and start another in its place."""
        async with self._up:  # if every worker is still starting, the first to come up
            await self._up.wait_for(lambda: bool(self.workers))
            victim = rng.choice(self.workers)
            self.workers.remove(victim)
            self.killed.append(victim)
        self.kills += 1
        await victim.kill()
        started = time.perf_counter()
        await self.start_worker()
        self.replacement_seconds.append(time.perf_counter() - started)

    async def stop_workers(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers))

    async def stop(self) -> None:
        await asyncio.gather(self.stop_workers(), self.intake.stop(), self.directory.stop())

    def peaks(self) -> dict[str, float | None]:
        """Each process's peak memory: the directory, intake, and every worker (those killed, as they died)."""
        everyone = [
            self.directory,
            self.intake,
            *sorted(self.workers + self.killed, key=lambda w: int(w.name.rsplit("-", 1)[1])),
        ]
        return {p.name: p.peak_mb for p in everyone}


@asynccontextmanager
async def deployment(database_url: str, twilio: FakeTwilio) -> AsyncIterator[Deployment]:
    directory_port, intake_port = free_port(), free_port()
    env = {
        **production_env(database_url, twilio, f"http://127.0.0.1:{intake_port}"),
        "CALLOUT_DIRECTORY_URL": f"http://127.0.0.1:{directory_port}",
        "CALLOUT_DATABASE_POOL_SIZE": POOL_SIZE,
    }
    # The directory first: it migrates the empty database, which the others then find current (several
    # processes migrating an empty database at once would race each other).
    directory = await Process.start("directory", "directory", directory_port, env)
    try:
        running = Deployment(env, directory, await Process.start("intake", "intake", intake_port, env))
    except BaseException:
        await directory.stop()
        raise
    try:
        async with asyncio.TaskGroup() as group:  # one that fails to come up cancels the others' starts
            for _ in range(WORKERS):
                group.create_task(running.start_worker())
        yield running
    finally:
        await running.stop()


async def kill_workers(running: Deployment, until: float, rng: random.Random) -> None:
    """Until `until` (perf_counter), every KILL_SECONDS or so SIGKILL a worker at random and start another in
    its place. Kills keep their schedule while replacements come up (a start takes seconds here, about as long
    as the interval): waiting for each would stretch the campaign past the load."""
    replacements = []
    next_kill = time.perf_counter() + KILL_SECONDS * rng.uniform(1 - KILL_JITTER, 1 + KILL_JITTER)
    while next_kill < until:
        await asyncio.sleep(max(0.0, next_kill - time.perf_counter()))
        replacements.append(asyncio.create_task(running.kill_and_replace(rng)))
        next_kill += KILL_SECONDS * rng.uniform(1 - KILL_JITTER, 1 + KILL_JITTER)
    await asyncio.gather(*replacements)


# -- the load ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """An event intake answered 202: its incident, its callout's code, and when the 202 came (perf_counter, and
    by the wall clock, as the processes' logs have it)."""

    ref: str
    code: str | None
    at: float
    wall: datetime


@dataclass
class Load:
    """What the CAD posted and how intake answered."""

    accepted: list[Accepted] = field(default_factory=list)
    refused: int = 0  # not answered 202 (an error, or no answer within 30 s)
    ended: datetime | None = None  # when the last event was answered
    ended_at: float = 0.0  # the same, as perf_counter
    settled_at: float | None = None  # when (perf_counter) every callout's first alert had settled, if it did


async def drive(base: str, rate: float, seconds: float) -> Load:
    """New priority incidents at `rate` a second for `seconds`."""
    load = Load()

    async def one(session: aiohttp.ClientSession) -> None:
        body = json.dumps(priority_event()).encode()
        try:
            async with session.post(f"{base}/v1/cad/metro/events", data=body, headers=signed(body)) as response:
                if response.status != 202:
                    load.refused += 1
                    return
                receipt = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            load.refused += 1
            return
        code = (receipt.get("callout") or {}).get("code")
        load.accepted.append(Accepted(receipt["incident_ref"], code, time.perf_counter(), datetime.now(UTC)))

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        start, tasks = time.perf_counter(), []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(session)))
        await asyncio.gather(*tasks)
    load.ended, load.ended_at = datetime.now(UTC), time.perf_counter()
    return load


# -- settling and reading back ----------------------------------------------------------------------------------

# Work the load left unfinished: callouts with no notification past pending yet, and alerts made by the load's
# end still pending. Later steps' alerts (the call to the primary 3 min after the text) are not waited for:
# they keep coming, and with a fault rate of 40 % some are always pending.
UNSETTLED = """
SELECT (SELECT count(*) FROM callouts c WHERE NOT EXISTS
          (SELECT 1 FROM notifications n WHERE n.callout_id = c.id AND n.status <> 'pending'))
     + (SELECT count(*) FROM notifications WHERE status = 'pending' AND created_at <= $1)
"""


async def settle(conn: asyncpg.Connection, load: Load, within: float) -> float | None:
    """When (perf_counter) the load's work had settled, polling the database from now; None if not `within` s."""
    assert load.ended is not None
    started = time.perf_counter()
    unsettled = await conn.fetchval(UNSETTLED, load.ended)
    print(f"  {started - load.ended_at:.1f} s after the last event, {unsettled} callouts or alerts unsettled")
    while time.perf_counter() - started < within:
        if not await conn.fetchval(UNSETTLED, load.ended):
            return time.perf_counter()
        await asyncio.sleep(0.5)  # polling a condition
    return None


@dataclass
class Records:
    """What the database says, read once the workers are stopped (so that it and the fake's record agree)."""

    notifications: list[asyncpg.Record]
    callouts: list[asyncpg.Record]
    incidents: list[asyncpg.Record]  # ref, callout id (or None), how many notifications that callout has
    sent_entries: list[asyncpg.Record]  # notification_sent timeline entries: provider_id, reconciled, earlier


async def read_records(conn: asyncpg.Connection) -> Records:
    return Records(
        notifications=await conn.fetch(
            "SELECT n.id, n.callout_id, n.kind, n.channel, n.body, n.provider_id, n.status, n.attempts, n.error,"
            " c.code FROM notifications n JOIN callouts c ON c.id = n.callout_id"
        ),
        callouts=await conn.fetch("SELECT id, code, status FROM callouts"),
        incidents=await conn.fetch(
            "SELECT i.ref, c.id AS callout_id, count(n.id) AS notifications FROM incidents i"
            " LEFT JOIN callouts c ON c.incident_id = i.id LEFT JOIN notifications n ON n.callout_id = c.id"
            " GROUP BY i.ref, c.id"
        ),
        sent_entries=await conn.fetch(
            "SELECT data->>'provider_id' AS provider_id, data->>'reconciled' AS reconciled,"
            " data->>'earlier_attempt' AS earlier FROM timeline_entries WHERE stage = 'notification_sent'"
        ),
    )


# -- the figures ------------------------------------------------------------------------------------------------


def first_texts(accepted: list[Accepted], messages: list[Message]) -> tuple[dict[str, float], list[str]]:
    """Seconds from each 202 to the first text the fake recorded for its callout, by code; and the codes never
    texted. Codes are four characters: two callouts alike cannot be told apart at the fake, and are dropped."""
    counts = Counter(a.code for a in accepted if a.code)
    at = {a.code: a.at for a in accepted if a.code and counts[a.code] == 1}
    first: dict[str, float] = {}
    for message in messages:  # in the order the fake recorded them
        if message.kind == "sms" and message.body.startswith("Callout "):
            first.setdefault(message.body.split(":")[0].removeprefix("Callout "), message.received_at)
    latencies = {code: first[code] - accepted_at for code, accepted_at in at.items() if code in first}
    return latencies, sorted(code for code in at if code not in first)


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if len(ordered) < 2:
        return {"p50": None, "p90": None, "p99": None, "max": ordered[-1] if ordered else None}
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p90": round(cuts[89], 2),
        "p99": round(cuts[98], 2),
        "max": round(ordered[-1], 2),
    }


def duplicates(messages: list[Message]) -> int:
    """Alerts the fake recorded more than once, each extra copy counted: a text by its body (its link is one
    alert's own), a call by its status callback (…?n=<notification id>)."""
    keys = Counter(
        ("sms", m.body) if m.kind == "sms" else ("voice", m.form.get("StatusCallback", m.sid)) for m in messages
    )
    return sum(n - 1 for n in keys.values() if n > 1)


def lost(accepted: list[Accepted], records: Records) -> list[str]:
    """The refs of accepted events whose incident has no callout, or whose callout has no notification."""
    reached = {row["ref"] for row in records.incidents if row["callout_id"] is not None and row["notifications"]}
    return sorted({a.ref for a in accepted} - reached)


def unheard(records: Records) -> list[str]:
    """Codes of open callouts none of whose notifications reached the provider (nobody's phone got anything)."""
    heard = {n["callout_id"] for n in records.notifications if n["status"] in ("sent", "delivered", "answered")}
    ended = ("accepted", "cancelled", "closed")
    return sorted(c["code"] for c in records.callouts if c["status"] not in ended and c["id"] not in heard)


def misattributed(records: Records, messages: list[Message]) -> tuple[int, int]:
    """Notifications whose provider id names a message at the fake that is another alert's; and provider ids
    the fake never issued, that a notification or its notification_sent entry holds."""
    by_sid = {m.sid: m for m in messages}
    wrong = 0
    for n in records.notifications:
        message = by_sid.get(n["provider_id"]) if n["provider_id"] else None
        if message is None:
            continue
        if n["channel"] == "sms":  # the body is sealed at rest
            wrong += message.body != SEALER.open(n["body"])
        else:
            wrong += not message.form.get("StatusCallback", "").endswith(f"n={n['id']}")
    held = {e["provider_id"] for e in records.sent_entries} | {n["provider_id"] for n in records.notifications}
    return wrong, len(held - {None} - by_sid.keys())


def process_logs() -> list[Path]:
    return sorted(LOGS.glob("bench-faults-*.log"))


def clear_logs() -> None:
    """An earlier, longer run's worker logs would otherwise be counted with this run's."""
    LOGS.mkdir(exist_ok=True)
    for old in process_logs():
        old.unlink()


@dataclass(frozen=True)
class LogLine:
    process: str
    entry: dict[str, Any]  # a JSON log line; a line that is not JSON (a traceback, uvicorn) as {"raw": ...}


def read_logs(logs: Iterable[Path]) -> list[LogLine]:
    lines = []
    for log in logs:
        process = log.stem.removeprefix("bench-faults-")
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            lines.append(LogLine(process, entry if isinstance(entry, dict) else {"raw": line}))
    return lines


def logged_problems(lines: list[LogLine]) -> Counter[str]:
    """Warnings and errors the processes logged, by event name (the workers' own account of the run)."""
    counts: Counter[str] = Counter()
    for line in lines:
        if "raw" in line.entry:
            counts["(lines not JSON: tracebacks, uvicorn)"] += 1
        elif line.entry.get("level") in ("warning", "error", "critical"):
            counts[f"{line.entry['level']} {line.entry.get('event')}"] += 1
    return counts


def history(notification_id: str, lines: list[LogLine], origin: datetime) -> list[str]:
    """What the workers logged of one notification, in order: which worker, what, when (from `origin`)."""
    mine = sorted(
        (line for line in lines if line.entry.get("notification_id") == notification_id),
        key=lambda line: str(line.entry.get("timestamp")),
    )
    told = []
    for line in mine:
        at = (datetime.fromisoformat(str(line.entry["timestamp"])) - origin).total_seconds()
        detail = " ".join(
            f"{key}={line.entry[key]}" for key in ("attempt", "code", "in_s", "found", "error") if key in line.entry
        )
        told.append(f"+{at:.1f} s {line.process} {line.entry.get('event')} {detail}")
    return told


# -- printing ---------------------------------------------------------------------------------------------------


@dataclass
class Evidence:
    """What is shown beside the figures, to start looking from when they miss."""

    latencies: dict[str, float]  # seconds to the first text, by callout code
    never: list[str]  # codes never texted
    accepted: dict[str, Accepted]  # by code
    records: Records
    lines: list[LogLine]


def show_slowest(evidence: Evidence, count: int = 5) -> None:
    """The slowest callouts, what their first alerts went through, and (for the slowest three) what the workers
    logged of them, timed from the 202."""
    alerts: dict[str, list[asyncpg.Record]] = {}
    for n in evidence.records.notifications:
        if n["kind"] == "alert" and n["channel"] == "sms":
            alerts.setdefault(n["code"], []).append(n)
    slowest = sorted(evidence.latencies.items(), key=lambda item: -item[1])[:count]
    for rank, (code, seconds) in enumerate(slowest):
        tried = "; ".join(
            f"{n['status']} after {n['attempts']} attempts (last error: {n['error']})" for n in alerts.get(code, [])
        )
        print(f"    {code}: {seconds:.1f} s: {tried}")
        for n in alerts.get(code, []) if rank < 3 else []:
            for told in history(str(n["id"]), evidence.lines, evidence.accepted[code].wall):
                print(f"      {told}")


def show_by_attempts(latencies: dict[str, float], records: Records) -> None:
    """The first text's latency by how many attempts its alert took: how much of the tail the retries' schedule
    makes (each fault costs a backoff), rather than the kills."""
    texts = (n for n in records.notifications if n["kind"] == "alert" and n["channel"] == "sms")
    attempts = {n["code"]: n["attempts"] for n in texts}
    by: dict[int, list[float]] = {}
    for code, seconds in latencies.items():
        by.setdefault(attempts.get(code, 0), []).append(seconds)
    print(
        "  first text by attempts:",
        ", ".join(f"{k}: {statistics.median(v):.1f} s (n={len(v)})" for k, v in sorted(by.items())),
    )


def show(figures: dict[str, Any], evidence: Evidence) -> None:
    texts = figures["first_text_s"]
    print(f"  accepted {figures['accepted']} events ({figures['refused']} refused), {figures['kills']} workers killed")
    print(
        f"  first text: p50 {texts['p50']} s, p90 {texts['p90']} s, p99 {texts['p99']} s, max {texts['max']} s"
        f" (target p99 {TARGETS['first_text_p99']}, max {TARGETS['first_text_max']}) over"
        f" {len(evidence.latencies)} callouts of unique code; never texted {figures['never_texted']}"
    )
    print(
        f"  duplicates {figures['duplicates']}, {figures['duplicates_per_10_kills']} per ten kills"
        f" (target {TARGETS['duplicates_per_10_kills']})"
    )
    for name in ("lost", "unheard", "misattributed", "sent_not_at_provider"):
        print(f"  {name} {figures[name]} (target {TARGETS[name]})")
    reconciled = sum(1 for e in evidence.records.sent_entries if e["reconciled"])
    again = sum(1 for e in evidence.records.sent_entries if e["earlier"])
    print(f"  sends found at the provider after a lost answer {reconciled}; sent again after one {again}")
    show_by_attempts(evidence.latencies, evidence.records)
    print("  slowest first texts:")
    show_slowest(evidence)
    if evidence.never:
        print(f"  never texted: {', '.join(evidence.never[:10])}")
    problems = logged_problems(evidence.lines)
    print("  warnings and errors logged:", ", ".join(f"{k} x{n}" for k, n in problems.most_common()) or "none")


# -- the phase --------------------------------------------------------------------------------------------------


async def run_campaign(database_url: str, twilio: FakeTwilio) -> tuple[Load, Deployment]:
    """Deploy, load, kill; return once the load's work has settled (or SETTLE_SECONDS passed) and the
    workers are stopped."""
    async with deployment(database_url, twilio) as running:
        async with httpx.AsyncClient(base_url=running.directory.base, timeout=30) as http:
            await make_program(http, {"Authorization": f"Bearer {ADMIN}"})
        twilio.rates = faulty_rates()
        kills = random.Random(SEED)  # noqa: S311 - which worker dies, and when: not security
        async with asyncio.TaskGroup() as group:
            driving = group.create_task(drive(running.intake.base, FAULT_RATE, FAULT_SECONDS))
            group.create_task(kill_workers(running, time.perf_counter() + FAULT_SECONDS, kills))
        load = driving.result()
        up = running.replacement_seconds
        started = f" (a replacement up in {statistics.median(up):.1f} s, at most {max(up):.1f} s)" if up else ""
        print(f"  load done: {len(load.accepted)} accepted, {running.kills} kills{started}", flush=True)
        conn = await asyncpg.connect(libpq_url(database_url))
        try:
            load.settled_at = await settle(conn, load, SETTLE_SECONDS)
        finally:
            await conn.close()
        if load.settled_at is None:
            print(f"  NOT settled within {SETTLE_SECONDS:g} s")
        else:
            print(f"  settled {load.settled_at - load.ended_at:.1f} s after the last event")
        # Stopped before reading back, so the database and the fake's record describe the same moment.
        await running.stop_workers()
    return load, running


async def figures() -> dict[str, Any]:
    """Run the faults phase on a database and a fake Twilio of its own; print and return its figures."""
    clear_logs()
    print(
        f"faults: {WORKERS} workers, one SIGKILLed every ~{KILL_SECONDS:g} s; Twilio failing 43 % of requests;"
        f" {FAULT_RATE:g} priority incidents/s for {FAULT_SECONDS:g} s",
        flush=True,
    )
    version, busy = code_version(), os.getloadavg()[0]
    twilio = FakeTwilio()
    await twilio.start()
    try:
        async with fresh_database() as url:
            load, running = await run_campaign(url, twilio)
            conn = await asyncpg.connect(libpq_url(url))
            try:
                records = await read_records(conn)
            finally:
                await conn.close()
        messages = list(twilio.messages)
    finally:
        await twilio.stop()
    result, evidence = measure(load, records, messages, running.kills)
    if changed := changed_files(version, code_version()):
        print(f"  WARNING: Callout's code changed during the run, workers ran mixed versions: {', '.join(changed)}")
    result["code_changed_during_run"] = bool(changed)
    result |= peak_memory(running.peaks())
    # What else ran on the machine meanwhile shows here: the figures are timings, and a start-up takes a core.
    after = os.getloadavg()[0]
    print(f"  load average (1 min) {busy:.1f} before the phase, {after:.1f} after, on {os.cpu_count()} cores")
    show(result, evidence)
    return result


def peak_memory(peaks: dict[str, float | None]) -> dict[str, Any]:
    """Printed: the services' peaks, the workers' median and highest; returned: the same, and any over the limit."""
    workers = {name: peak for name, peak in peaks.items() if name.startswith("worker-") and peak is not None}
    highest = max(workers, key=lambda name: workers[name]) if workers else None
    over = over_limit(peaks)
    verdict = f"OVER {MEMORY_LIMIT_MB} MiB: {', '.join(over)}" if over else f"each within {MEMORY_LIMIT_MB} MiB"
    print(
        f"  peak memory (VmHWM, MiB): directory {peaks['directory']}, intake {peaks['intake']}, {len(workers)} workers"
        f" median {statistics.median(workers.values()) if workers else None}, highest"
        f" {workers.get(highest) if highest else None} ({highest}); {verdict}",
        flush=True,
    )
    summary = {"directory": peaks["directory"], "intake": peaks["intake"], "workers_max": workers.get(highest or "")}
    return {"peak_memory_mb": summary, "peak_memory_over_limit": over}


def measure(load: Load, records: Records, messages: list[Message], kills: int) -> tuple[dict[str, Any], Evidence]:
    """The figures, and the evidence to show beside them."""
    latencies, never = first_texts(load.accepted, messages)
    dupes = duplicates(messages)
    wrong, phantom = misattributed(records, messages)
    lost_refs, unheard_codes = lost(load.accepted, records), unheard(records)
    if load.settled_at is not None:  # the bench's own check: settled means no first text is still to come
        late = [m for m in messages if m.kind == "sms" and m.received_at > load.settled_at]
        print(f"  texts the fake recorded after the bench judged the work settled: {len(late)} (expected 0)")
    if lost_refs or unheard_codes:
        print(f"  lost: {', '.join(lost_refs[:10]) or 'none'}; unheard: {', '.join(unheard_codes[:10]) or 'none'}")
    result: dict[str, Any] = {
        "first_text_s": percentiles(latencies.values()),
        "never_texted": len(never),
        "kills": kills,
        "duplicates": dupes,
        "duplicates_per_10_kills": round(10 * dupes / kills, 2) if kills else None,
        "lost": len(lost_refs),
        "unheard": len(unheard_codes),
        "misattributed": wrong,
        "sent_not_at_provider": phantom,
        "accepted": len(load.accepted),
        "refused": load.refused,
    }
    by_code = {a.code: a for a in load.accepted if a.code}
    return result, Evidence(latencies, never, by_code, records, read_logs(process_logs()))
