"""The embedded database: nx-27017 (a MongoDB wire-protocol server on SQLite) as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from orders_live.sources.database_process import die_with_parent, free_port, stop_server, stop_stale_server
from orders_live.sources.mongo.nx_await import AWAIT_DATA
from orders_live.sources.options import MongoOptions

log = logging.getLogger(__name__)

STOP_WAIT = 3.0  # seconds nx-27017 has to exit on SIGTERM before SIGKILL
START_TIMEOUT = 30.0


class EmbeddedMongo:
    def __init__(self, data_dir: Path, port: int | None = None, options: MongoOptions | None = None) -> None:
        self.mode = "not started"
        self.data_dir = data_dir.resolve()
        self.port = port
        self.options = options or MongoOptions()  # nx_await: handed to the launcher
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nx-27017.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "nx-27017.log"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/orders_live?directConnection=true"

    async def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale_server()
        self.port = self.port or free_port()
        with (self.data_dir / "nx-27017.out").open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "orders_live.sources.mongo.nx_await",  # nx-27017 with awaitData, or as it is
                AWAIT_DATA,
                "true" if self.options.nx_await else "false",
                "--data-dir",
                str(self.data_dir / "db"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-file",
                str(self.log_file),
                "--pid-file",
                str(self.pid_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # Ctrl-C reaches us, not it: we stop it after closing our client
                preexec_fn=die_with_parent,
            )
        await self._wait_until_answering()
        self.mode = self._read_mode()
        log.info(
            "embedded database nx-27017 (pid %d) on port %d, files in %s (%s)",
            self.process.pid,
            self.port,
            self.data_dir,
            self.mode,
        )
        if self.mode != "awaitData":
            log.warning("nx-27017 runs without awaitData: other clients' writes wait for a paced read (%s)", self.mode)
        return self.url

    def _read_mode(self) -> str:
        """How the launcher ran it: ``awaitData``, or ``plain: <why>`` (``nx_await``)."""
        try:
            return (self.data_dir / "nx-27017.mode").read_text().strip()
        except OSError:
            return "plain: the launcher said nothing"

    async def _wait_until_answering(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"nx-27017 exited with {self.process.returncode}; see {self.log_file}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        await self.stop()
        raise RuntimeError(f"nx-27017 did not answer on port {self.port} within {START_TIMEOUT:.0f}s")

    def _stop_stale_server(self) -> None:
        """A server left running on this data folder (its parent was killed) is ended."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        stop_stale_server(pid, b"nx_await", self.data_dir, signal.SIGTERM, "nx-27017")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_WAIT``: the service's client is closed by then, and
        nx-27017 commits each write to SQLite as it answers it, so nothing acknowledged is lost.
        (After a busy run its exit was seen to take 10 s now and then, waiting for its threads.)"""
        process, self.process = self.process, None
        started = time.monotonic()
        if await stop_server(process, signal.SIGTERM, STOP_WAIT):
            took = time.monotonic() - started
            log.info("embedded database stopped%s", " (killed: it did not exit in time)" if took >= STOP_WAIT else "")
