"""The embedded database: nx-27017 (a MongoDB wire-protocol server on SQLite) as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM when the service dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedMongo:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
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
                "-c",
                "from nx_27017.nx_27017 import main; main()",
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
                preexec_fn=_die_with_parent,
            )
        await self._wait_until_answering()
        log.info(
            "embedded database nx-27017 (pid %d) on port %d, files in %s", self.process.pid, self.port, self.data_dir
        )
        return self.url

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
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"nx_27017" in cmdline and str(self.data_dir).encode() in cmdline:
            log.warning("stopping a stale nx-27017 (pid %d) left on %s", pid, self.data_dir)
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.info("embedded database stopped")
