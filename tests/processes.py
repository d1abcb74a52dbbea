"""Running `callout` as real processes from a test: start, wait until serving, stop, read their logs."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

CALLOUT = str(Path(sys.executable).with_name("callout"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `callout serve` process; its log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.started = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], *args: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            CALLOUT, "serve", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        server = cls(process)
        try:
            async with asyncio.timeout(30):
                await server.started.wait()
        except TimeoutError:
            await server.stop()
            raise AssertionError(f"callout serve {' '.join(args)} did not start:\n{server.log[-3000:]}") from None
        return server

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode()
            self.lines.append(line)
            # Serving once the lifespan (and the worker) is up and the socket is bound, in whichever order: one
            # process binds after its start-up, several share a socket their parent bound first.
            if "Application startup complete" in self.log and "Uvicorn running on" in self.log:
                self.started.set()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
        await self.process.wait()
        await self.reader

    @property
    def log(self) -> str:
        return "".join(self.lines)


async def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run a `callout` command to its end; its exit code and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        CALLOUT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()
