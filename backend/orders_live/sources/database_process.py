"""A database server run as the service's child process (nx-27017, PostgreSQL): a free port,
death with its parent, a stale server left on the same folder, and its stop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM when the service dies, even by SIGKILL. (Call it after any
    change of user: a change of credentials clears it.)"""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_stale_server(pid: int, marker: bytes, folder: Path, stop_signal: int, what: str) -> None:
    """A server ``pid`` left running on ``folder`` (its parent was killed) is stopped: only if its
    command line names ``marker`` and the folder, so that a reused pid is left alone."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if marker in command and str(folder).encode() in command:
        log.warning("stopping a stale %s (pid %d) left on %s", what, pid, folder)
        os.kill(pid, stop_signal)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


async def stop_server(process: asyncio.subprocess.Process | None, stop_signal: int, within: float) -> bool:
    """Stop a running server with ``stop_signal``, then SIGKILL after ``within`` seconds;
    False when there was nothing to stop."""
    if process is None or process.returncode is not None:
        return False
    process.send_signal(stop_signal)
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
    return True
