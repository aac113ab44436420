"""The service under attack (``orders-live bench --attack``): started as its own process on a
fresh database of its own, its output kept in a log, and what Linux says of the process while a
hostile client works on it: resident memory (``VmRSS`` in ``/proc/<pid>/status``), open files
(``/proc/<pid>/fd``), and the log's ``WARNING`` lines.

The databases are the caller's (``Scratch``: a fresh one per scenario and a bulk insert), so
this module touches no driver."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orders_live.bench.balancer import Deployment, start_deployment

Insert = Callable[[str, int], Coroutine[Any, Any, None]]  # (database url, how many orders)


@dataclass(frozen=True)
class Scratch:
    """Where the scenarios' databases come from: ``kind`` (nx-27017, postgres, mongodb), a
    fresh empty database per name, and a bulk insert of N orders into one."""

    kind: str
    fresh: Callable[[str], Awaitable[str]]
    insert: Insert


@dataclass
class Attacked:
    """One running instance: its address, its process id and its log."""

    deployment: Deployment
    log: Path

    @property
    def url(self) -> str:
        return self.deployment.url

    @property
    def pid(self) -> int:
        return self.deployment.services[0].pid

    def resident_mb(self) -> float:
        return resident_mb(self.pid)

    def open_files(self) -> int:
        return open_files(self.pid)

    def log_offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def warnings_since(self, offset: int) -> int:
        return warning_lines(self.log, offset)


@asynccontextmanager
async def attacked(
    folder: Path, database_url: str, env: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[Attacked]:
    """``orders-live serve`` on ``database_url`` (log level WARNING), stopped on the way out."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    log = folder / "serve.log"
    try:
        deployment = await start_deployment(folder, database_url, False, env=env, headers=headers, log=log)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
    try:
        yield Attacked(deployment, log)
    finally:
        await deployment.stop()


def resident_mb(pid: int) -> float:
    """The process's resident set (``VmRSS``), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_files(pid: int) -> int:
    """File descriptors the process holds (sockets included)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def warning_lines(log: Path, offset: int = 0) -> int:
    """Lines from byte ``offset`` on that are a WARNING (text or JSON log format)."""
    if not log.exists():
        return 0
    with log.open("rb") as file:
        file.seek(offset)
        text = file.read().decode(errors="replace")
    return sum("WARNING" in line for line in text.splitlines())


class PeakSampler:
    """The peak of ``read()`` sampled every ``period`` seconds while running (``async with``)."""

    def __init__(self, read: Callable[[], float], period: float = 0.1) -> None:
        self.read, self.period = read, period
        self.peak = read()
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.read())
            await asyncio.sleep(self.period)  # the sampling period

    async def __aenter__(self) -> PeakSampler:
        self._task = asyncio.create_task(self._sample(), name="bench-attack-sampler")
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, self.read())


def since(started: float) -> float:
    """Seconds since ``started`` (a ``time.monotonic()``), rounded to ms."""
    return round(time.monotonic() - started, 3)
